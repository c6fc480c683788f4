/*
 * sshkey — see sshkey.h.  The blob format is RFC 4253 §6.6 (ssh-rsa),
 * RFC 5656 §3.1 (ecdsa), RFC 8709 §4 (ed25519) and OpenSSH's PROTOCOL.u2f
 * (sk- keys): a sequence of SSH strings, each a big-endian uint32 length
 * followed by that many bytes.
 *
 * What is not checked: that an ECDSA point lies on its curve or that an
 * RSA modulus is a product of two primes — that needs a bignum library,
 * and a bogus key only locks its own owner out; the checks here exist so
 * that what we store and later hand to guests is well-formed.
 */
#include "common/sshkey.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RSA_BITS_MIN 2048u
#define RSA_BITS_MAX 16384u
#define RSA_E_MAX_BYTES 8
#define SK_APP_MAX 1024

enum kind { K_ED25519, K_RSA, K_ECDSA };

static const struct keytype {
	const char *name;
	enum kind kind;
	const char *curve;       /* ECDSA: the curve string inside the blob */
	size_t point_len;        /* ECDSA: uncompressed point 04 || X || Y */
	unsigned bits;
	bool sk;                 /* FIDO: an application string follows */
} keytypes[] = {
	{ "ssh-ed25519", K_ED25519, NULL, 0, 256, false },
	{ "ssh-rsa", K_RSA, NULL, 0, 0, false },
	{ "ecdsa-sha2-nistp256", K_ECDSA, "nistp256", 65, 256, false },
	{ "ecdsa-sha2-nistp384", K_ECDSA, "nistp384", 97, 384, false },
	{ "ecdsa-sha2-nistp521", K_ECDSA, "nistp521", 133, 521, false },
	{ "sk-ssh-ed25519@openssh.com", K_ED25519, NULL, 0, 256, true },
	{ "sk-ecdsa-sha2-nistp256@openssh.com", K_ECDSA, "nistp256", 65, 256, true },
};

#define N_KEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

static const struct keytype *keytype_find(const char *s, size_t len)
{
	for (size_t i = 0; i < N_KEYTYPES; i++)
		if (strlen(keytypes[i].name) == len && memcmp(keytypes[i].name, s, len) == 0)
			return &keytypes[i];
	return NULL;
}

/* ---- reading the blob --------------------------------------------------- */

struct rd {
	const unsigned char *p;
	size_t n;
};

static bool rd_string(struct rd *r, const unsigned char **s, size_t *len)
{
	uint32_t l;

	if (r->n < 4)
		return false;
	l = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	if (l > r->n - 4)
		return false;
	*s = r->p + 4;
	*len = l;
	r->p += 4 + l;
	r->n -= 4 + l;
	return true;
}

static bool str_is(const unsigned char *s, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(s, want, len) == 0;
}

/* A positive mpint in canonical form (RFC 4251 §5): no needless leading
 * zero byte, no sign bit.  Yields its size in bits. */
static bool rd_mpint_positive(struct rd *r, const unsigned char **v, size_t *len, unsigned *bits)
{
	const unsigned char *s;
	size_t l;

	if (!rd_string(r, &s, &l) || l == 0 || (s[0] & 0x80))
		return false;
	if (s[0] == 0) {
		if (l == 1 || !(s[1] & 0x80))
			return false;
		s++;
		l--;
	}
	if (l > RSA_BITS_MAX / 8 + 1)
		return false;
	unsigned top = 0;
	for (unsigned c = s[0]; c; c >>= 1)
		top++;
	*bits = (unsigned)(l - 1) * 8 + top;
	*v = s;
	*len = l;
	return true;
}

#define FAIL(...) do { snprintf(err, SSHKEY_ERR_LEN, __VA_ARGS__); return false; } while (0)

/* The structure after the type string, per kind. */
static bool check_blob(const struct keytype *kt, struct rd *r, unsigned *bits, char *err)
{
	const unsigned char *s;
	size_t l;

	switch (kt->kind) {
	case K_ED25519:
		if (!rd_string(r, &s, &l) || l != 32)
			FAIL("%s key data does not hold a 32-byte public key", kt->name);
		*bits = kt->bits;
		break;
	case K_RSA: {
		unsigned ebits, nbits;
		if (!rd_mpint_positive(r, &s, &l, &ebits) || l > RSA_E_MAX_BYTES || !(s[l - 1] & 1) ||
		    ebits < 2)
			FAIL("ssh-rsa key data has an invalid public exponent");
		if (!rd_mpint_positive(r, &s, &l, &nbits))
			FAIL("ssh-rsa key data has an invalid modulus");
		if (nbits < RSA_BITS_MIN)
			FAIL("ssh-rsa key of %u bits is too weak (at least %u)", nbits, RSA_BITS_MIN);
		if (nbits > RSA_BITS_MAX)
			FAIL("ssh-rsa key of %u bits is too large (at most %u)", nbits, RSA_BITS_MAX);
		*bits = nbits;
		break;
	}
	case K_ECDSA:
		if (!rd_string(r, &s, &l) || !str_is(s, l, kt->curve))
			FAIL("%s key data names another curve", kt->name);
		if (!rd_string(r, &s, &l) || l != kt->point_len || s[0] != 0x04)
			FAIL("%s key data does not hold an uncompressed %zu-byte point", kt->name,
			     kt->point_len);
		*bits = kt->bits;
		break;
	}
	if (kt->sk && (!rd_string(r, &s, &l) || l == 0 || l > SK_APP_MAX))
		FAIL("%s key data lacks its application string", kt->name);
	if (r->n != 0)
		FAIL("%s key data has trailing bytes", kt->name);
	return true;
}

/* ---- the line ----------------------------------------------------------- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Split the trimmed line into its fields and check what can be checked
 * on text alone. */
static bool split(const char *text, const char **type, size_t *type_len, const char **b64,
		  size_t *b64_len, const char **comment, size_t *comment_len, char *err)
{
	size_t len = strnlen(text, SSHKEY_LINE_MAX + 1);
	const char *p = text, *end;

	if (len > SSHKEY_LINE_MAX)
		FAIL("key line is over %d bytes", SSHKEY_LINE_MAX);
	end = text + len;
	while (p < end && is_ws(*p))
		p++;
	while (end > p && is_ws(end[-1]))
		end--;
	if (p == end)
		FAIL("empty key");
	for (const char *q = p; q < end; q++)
		if (*q == '\n' || *q == '\r')
			FAIL("expected one key line, got several");
	*type = p;
	while (p < end && !is_ws(*p))
		p++;
	*type_len = (size_t)(p - *type);
	while (p < end && is_ws(*p))
		p++;
	*b64 = p;
	while (p < end && !is_ws(*p))
		p++;
	*b64_len = (size_t)(p - *b64);
	while (p < end && is_ws(*p))
		p++;
	*comment = p;
	*comment_len = (size_t)(end - p);
	if (*comment_len > SSHKEY_COMMENT_MAX)
		FAIL("key comment is over %d bytes", SSHKEY_COMMENT_MAX);
	for (const char *q = *comment; q < end; q++)
		if (*q < 0x20 || *q > 0x7e)
			FAIL("key comment must be printable ASCII");
	return true;
}

/* Text that begins (after white space) with a PEM header naming a
 * private key: "-----BEGIN OPENSSH PRIVATE KEY-----" and its kin. */
static bool private_key_file(const char *text)
{
	text += strspn(text, " \t\r\n");
	if (strncmp(text, "-----BEGIN ", 11) != 0)
		return false;
	return memmem(text, strcspn(text, "\r\n"), "PRIVATE KEY-----", 16) != NULL;
}

int sshkey_parse(const char *text, struct sshkey *out, char err[SSHKEY_ERR_LEN])
{
	const char *type, *b64, *comment;
	size_t type_len, b64_len, comment_len, bin_len = 0;
	const struct keytype *kt;
	unsigned char *bin = NULL, hash[crypto_hash_sha256_BYTES];
	const unsigned char *inner;
	size_t inner_len;
	char *canon = NULL;
	struct rd r;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (sodium_init() < 0) {
		snprintf(err, SSHKEY_ERR_LEN, "libsodium failed to initialise");
		return -1;
	}
	if (text == NULL)
		text = "";
	/* A pasted private key file is the likeliest mistake: say so before
	 * complaining about its many lines.  Only by its PEM header: the
	 * words alone may span a key's base64 and its comment, and then the
	 * canonical line of an accepted key would be refused (fuzz_sshkey). */
	if (private_key_file(text)) {
		snprintf(err, SSHKEY_ERR_LEN, "this is a private key; give the public one (.pub)");
		return -1;
	}
	if (!split(text, &type, &type_len, &b64, &b64_len, &comment, &comment_len, err))
		return -1;
	kt = keytype_find(type, type_len);
	if (kt == NULL) {
		/* Say why in the cases people actually hit. */
		if (type_len == 7 && memcmp(type, "ssh-dss", 7) == 0)
			snprintf(err, SSHKEY_ERR_LEN, "ssh-dss (DSA) keys are obsolete and not accepted");
		else if (memchr(type, '=', type_len) || memchr(type, ',', type_len))
			snprintf(err, SSHKEY_ERR_LEN, "authorized_keys options are not accepted, only the key");
		else
			snprintf(err, SSHKEY_ERR_LEN, "unknown key type (known: ssh-ed25519, ssh-rsa,"
				 " ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com,"
				 " sk-ecdsa-sha2-nistp256@openssh.com)");
		return -1;
	}
	if (b64_len == 0) {
		snprintf(err, SSHKEY_ERR_LEN, "%s key has no key data", kt->name);
		return -1;
	}
	bin = malloc(b64_len / 4 * 3 + 3);
	if (bin == NULL) {
		snprintf(err, SSHKEY_ERR_LEN, "out of memory");
		return -1;
	}
	if (sodium_base642bin(bin, b64_len / 4 * 3 + 3, b64, b64_len, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		snprintf(err, SSHKEY_ERR_LEN, "%s key data is not valid base64 (truncated?)", kt->name);
		goto fail;
	}
	r = (struct rd){ bin, bin_len };
	if (!rd_string(&r, &inner, &inner_len)) {
		snprintf(err, SSHKEY_ERR_LEN, "%s key data is truncated", kt->name);
		goto fail;
	}
	if (!str_is(inner, inner_len, kt->name)) {
		/* Name the inner type only when it is one we know: never echo
		 * arbitrary bytes. */
		const struct keytype *ik = keytype_find((const char *)inner, inner_len);
		if (ik)
			snprintf(err, SSHKEY_ERR_LEN, "key data is an %s key but the line says %s",
				 ik->name, kt->name);
		else
			snprintf(err, SSHKEY_ERR_LEN, "key data is not an %s key", kt->name);
		goto fail;
	}
	if (!check_blob(kt, &r, &out->bits, err))
		goto fail;

	crypto_hash_sha256(hash, bin, bin_len);
	memcpy(out->fingerprint, "SHA256:", 7);
	sodium_bin2base64(out->fingerprint + 7, sizeof(out->fingerprint) - 7, hash, sizeof(hash),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	size_t canon_size = sodium_base64_ENCODED_LEN(bin_len, sodium_base64_VARIANT_ORIGINAL);
	canon = malloc(canon_size);
	out->comment = strndup(comment, comment_len);
	if (canon == NULL || out->comment == NULL) {
		snprintf(err, SSHKEY_ERR_LEN, "out of memory");
		goto fail;
	}
	sodium_bin2base64(canon, canon_size, bin, bin_len, sodium_base64_VARIANT_ORIGINAL);
	size_t line_size = strlen(kt->name) + 1 + strlen(canon) + 1 + comment_len + 1;
	out->line = malloc(line_size);
	if (out->line == NULL) {
		snprintf(err, SSHKEY_ERR_LEN, "out of memory");
		goto fail;
	}
	snprintf(out->line, line_size, "%s %s%s%s", kt->name, canon, comment_len ? " " : "",
		 out->comment);
	snprintf(out->type, sizeof(out->type), "%s", kt->name);
	free(canon);
	free(bin);
	return 0;
fail:
	free(canon);
	free(bin);
	sshkey_free(out);
	return -1;
}

void sshkey_free(struct sshkey *k)
{
	if (k == NULL)
		return;
	free(k->comment);
	free(k->line);
	memset(k, 0, sizeof(*k));
}
