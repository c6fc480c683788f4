/* totp — see totp.h. */
#include "auth/totp.h"

#include <liboath/oath.h>
#include <pthread.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const struct totp_params totp_default = { .digits = 6, .period = 30, .alg = TOTP_SHA1 };

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static bool oath_ready;

static void oath_start(void)
{
	oath_ready = oath_init() == OATH_OK;
}

static bool params_valid(const struct totp_params *p)
{
	return (p->digits == 6 || p->digits == 8) && p->period > 0 &&
	       (p->alg == TOTP_SHA1 || p->alg == TOTP_SHA256 || p->alg == TOTP_SHA512);
}

static int oath_flags(enum totp_alg alg)
{
	switch (alg) {
	case TOTP_SHA256: return OATH_TOTP_HMAC_SHA256;
	case TOTP_SHA512: return OATH_TOTP_HMAC_SHA512;
	case TOTP_SHA1:   break;
	}
	return 0;
}

int64_t totp_step(const struct totp_params *p, time_t now)
{
	if (p == NULL)
		p = &totp_default;
	return now < 0 ? -1 : (int64_t)now / p->period;
}

/* liboath calls this with each candidate code of the window; 0 = match.
 * Both have the same length here, so the comparison leaks nothing. */
static int code_compare(void *handle, const char *candidate)
{
	const char *given = handle;
	size_t n = strlen(given);

	if (strlen(candidate) != n)
		return 1;
	return sodium_memcmp(given, candidate, n) == 0 ? 0 : 1;
}

int totp_verify_params(const struct totp_params *p, const unsigned char *secret,
		       size_t secret_len, time_t now, const char *code, int64_t last_step,
		       int64_t *accepted_step)
{
	uint64_t step = 0;
	int pos = 0, rc;

	if (p == NULL)
		p = &totp_default;
	if (!params_valid(p) || secret == NULL || secret_len == 0 || code == NULL || now < 0)
		return TOTP_ERROR;
	if (pthread_once(&oath_once, oath_start) != 0 || !oath_ready)
		return TOTP_ERROR;
	if (strlen(code) != p->digits || strspn(code, "0123456789") != p->digits)
		return TOTP_WRONG;
	rc = oath_totp_validate4_callback((const char *)secret, secret_len, now, p->period,
					  OATH_TOTP_DEFAULT_START_TIME, p->digits, TOTP_WINDOW,
					  &pos, &step, oath_flags(p->alg), code_compare,
					  (void *)code);
	if (rc == OATH_INVALID_OTP)
		return TOTP_WRONG;
	if (rc < 0)
		return TOTP_ERROR;
	/* The replay guard: each step once, and never going back. */
	if ((int64_t)step <= last_step)
		return TOTP_REPLAY;
	if (accepted_step)
		*accepted_step = (int64_t)step;
	return TOTP_OK;
}

int totp_verify(const unsigned char *secret, size_t secret_len, time_t now, const char *code,
		int64_t last_step, int64_t *accepted_step)
{
	return totp_verify_params(&totp_default, secret, secret_len, now, code, last_step,
				  accepted_step);
}

int totp_generate(const struct totp_params *p, const unsigned char *secret, size_t secret_len,
		  time_t now, char out[TOTP_DIGITS_MAX + 1])
{
	if (p == NULL)
		p = &totp_default;
	if (!params_valid(p) || secret == NULL || secret_len == 0 || now < 0)
		return -1;
	if (pthread_once(&oath_once, oath_start) != 0 || !oath_ready)
		return -1;
	return oath_totp_generate2((const char *)secret, secret_len, now, p->period,
				   OATH_TOTP_DEFAULT_START_TIME, p->digits, oath_flags(p->alg),
				   out) == OATH_OK ? 0 : -1;
}

void totp_secret_new(unsigned char secret[TOTP_SECRET_LEN])
{
	if (sodium_init() < 0)
		abort();        /* no randomness source: nothing safe to return */
	randombytes_buf(secret, TOTP_SECRET_LEN);
}

/* Append s percent-encoded (RFC 3986: all but unreserved characters). */
static size_t percent_encode(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
	return n;
}

static const char *alg_name(enum totp_alg alg)
{
	switch (alg) {
	case TOTP_SHA256: return "SHA256";
	case TOTP_SHA512: return "SHA512";
	case TOTP_SHA1:   break;
	}
	return "SHA1";
}

char *totp_uri(const char *issuer, const char *account, const unsigned char *secret,
	       size_t secret_len)
{
	const struct totp_params *p = &totp_default;
	char *b32 = NULL, *iss = NULL, *acc = NULL, *uri = NULL;
	size_t b32_len = 0, len;

	if (pthread_once(&oath_once, oath_start) != 0 || !oath_ready)
		return NULL;
	if (oath_base32_encode((const char *)secret, secret_len, &b32, &b32_len) != OATH_OK)
		return NULL;
	while (b32_len > 0 && b32[b32_len - 1] == '=')
		b32[--b32_len] = '\0';
	iss = malloc(strlen(issuer) * 3 + 1);
	acc = malloc(strlen(account) * 3 + 1);
	if (iss == NULL || acc == NULL)
		goto out;
	percent_encode(iss, issuer);
	percent_encode(acc, account);
	len = strlen("otpauth://totp/:?secret=&issuer=&algorithm=SHA512&digits=8&period=")
	      + 2 * strlen(iss) + strlen(acc) + b32_len + 24;
	uri = malloc(len);
	if (uri == NULL)
		goto out;
	snprintf(uri, len, "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=%s&digits=%u&period=%u",
		 iss, acc, b32, iss, alg_name(p->alg), p->digits, p->period);
out:
	/* The base32 text is the secret itself. */
	sodium_memzero(b32, b32_len);
	free(b32);
	free(iss);
	free(acc);
	return uri;
}

#define QUIET 4                 /* light modules around the code (ISO 18004) */

/* One module of the code with its quiet zone around it; true = dark. */
static bool module_dark(const QRcode *qr, int x, int y)
{
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return false;
	return qr->data[y * qr->width + x] & 1;
}

int totp_qr_render(const char *text, FILE *out)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);

	if (qr == NULL)
		return -1;
	/*
	 * Colours are set explicitly, black on white, because a terminal's own
	 * colours may be light on dark, which draws the code inverted, and not
	 * every authenticator's scanner reads inverted codes.  With the colours
	 * fixed, dark modules are always the foreground: ▀ (top dark), ▄
	 * (bottom dark), █ (both), space (neither).
	 */
	for (int y = -QUIET; y < qr->width + QUIET; y += 2) {
		fputs("\033[30;107m", out);
		for (int x = -QUIET; x < qr->width + QUIET; x++) {
			bool top = module_dark(qr, x, y), bottom = module_dark(qr, x, y + 1);
			fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", out);
		}
		/* Reset before the newline so the white does not spill to the
		 * right edge of the terminal. */
		fputs("\033[0m\n", out);
	}
	QRcode_free(qr);
	return ferror(out) ? -1 : 0;
}
