/*
 * totp — time-based one-time passwords (RFC 6238, through liboath) and what
 * enrolment needs: a fresh secret, the otpauth:// URI authenticator apps
 * read, and that URI drawn as a QR code on a terminal (libqrencode).
 *
 * Invariants:
 *   - a code is accepted for the current 30 s step or one step either side
 *     (clock drift between the phone and us);
 *   - a step is accepted at most once, and never one at or before the last
 *     accepted step (`last_step`, which the caller stores per user): a code
 *     seen on the wire cannot be replayed, nor an older one used after a
 *     newer one;
 *   - codes are compared in constant time;
 *   - time is a parameter: nothing here reads the clock.
 */
#ifndef HC_AUTH_TOTP_H
#define HC_AUTH_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define TOTP_SECRET_LEN 20      /* bytes; RFC 4226 recommends 160 bits */
#define TOTP_DIGITS_MAX 8
#define TOTP_WINDOW     1       /* steps accepted either side of now */

enum totp_alg { TOTP_SHA1, TOTP_SHA256, TOTP_SHA512 };

struct totp_params {
	unsigned digits;        /* 6 or 8 */
	unsigned period;        /* seconds per step */
	enum totp_alg alg;
};

/* What authenticator apps assume when the URI says nothing: SHA1, 6, 30. */
extern const struct totp_params totp_default;

enum totp_result {
	TOTP_OK = 0,
	TOTP_WRONG = -1,        /* not a code for any step in the window */
	TOTP_REPLAY = -2,       /* right code, but its step was already used */
	TOTP_ERROR = -3,        /* bad parameters or a liboath failure */
};

/* The step now falls in (now / period). */
int64_t totp_step(const struct totp_params *p, time_t now);

/*
 * Check code against secret at time now with the default parameters.
 * On TOTP_OK *accepted_step is the step the code belongs to; the caller
 * must store it as the user's new last_step before answering.
 */
int totp_verify(const unsigned char *secret, size_t secret_len, time_t now, const char *code,
		int64_t last_step, int64_t *accepted_step);

/* The same with explicit parameters (NULL = totp_default). */
int totp_verify_params(const struct totp_params *p, const unsigned char *secret,
		       size_t secret_len, time_t now, const char *code, int64_t last_step,
		       int64_t *accepted_step);

/* The code for time now (tests, and the e2e client side).  0 or -1. */
int totp_generate(const struct totp_params *p, const unsigned char *secret, size_t secret_len,
		  time_t now, char out[TOTP_DIGITS_MAX + 1]);

/* Fill secret with TOTP_SECRET_LEN random bytes. */
void totp_secret_new(unsigned char secret[TOTP_SECRET_LEN]);

/*
 * "otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1
 * &digits=6&period=30" with issuer and account percent-encoded and the
 * base32 unpadded.  malloc'd; NULL when out of memory.
 */
char *totp_uri(const char *issuer, const char *account, const unsigned char *secret,
	       size_t secret_len);

/*
 * Draw text as a QR code with Unicode half blocks (two module rows per line)
 * in black on white set by ANSI colours, with a 4-module quiet zone.
 * 0, or -1 when the text does not fit in a QR code or out of memory.
 */
int totp_qr_render(const char *text, FILE *out);

#endif
