/*
 * test_sshkey — OpenSSH public key lines (src/common/sshkey.h).  The valid
 * keys were made once with ssh-keygen; their fingerprints are what
 * `ssh-keygen -lf` printed for them.  The broken ones are made from them
 * (relabelled, truncated) or built blob by blob.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/sshkey.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ED25519_B64 "AAAAC3NzaC1lZDI1NTE5AAAAIGVvfdKMQheBupJMwSl1b5Tidm7uFpdvhrSaCsn3j6UH"
#define ED25519 "ssh-ed25519 " ED25519_B64 " alice@laptop"
#define ED25519_FP "SHA256:cVA72Y5jqCuZ+gIskxj4oxoJJJvuUBXLAoF57PKwPGg"

#define RSA3072 "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDGYAoV4xXczdUbVqU5QHddniyR8jMcbWE3mYNSZkJj" \
	"98qZFcspKy1P+7lBhXvuDkmk1D0nDjz/+LFt7MYHD/LLo7y5uKaNN5BsAt4CnY2snVYJQW3ulfXTujY3kDAX+QbSbl03l" \
	"j2eB3rvaYty2q8MCKz7l9EW3ZdWj52pOOFkzKU/k6fQLWAK10oFV8MJ7ZYhQvQD8fQdFhkN5WFYSmoUxUNN/YAEKBgI7F" \
	"Kyy9FcRxaNp6Wv5gmY4XqxaBIfnlT7/vapV/QGY9C1ZlI8aqIRCNKjw+ifCKlCI5z9k1PwAU5tkXLJK4DAbR1+4v/Egl" \
	"MO9Lyp2FhQwLqBokmMoPXXfGG+wGNsDHKNJ71pw79z08GBj3PYhjQfQ7gYZvGDONwJC3ASVu07rWwSiWD+GUBclmX9Nq" \
	"fa4nEj5i6lAarbsDEUNDknyr2zC0ZW/9MvUSEa9C+iQGLpRwVCqye/dnJkHzRhOLyQFWIG7lgUHbOXKz7hoSNcDwbZJy" \
	"/mdSFuEA8= bob@desk"
#define RSA3072_FP "SHA256:O992jNKnaZj9QCxA8f/rRhSSPXChV6SVHhCCnh/e6+k"

#define EC256_B64 "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBssZKHOPneweSLQ9NHAmTMg" \
	"9T4rmgt9HpPrUp3zV8wB/CAvJSxOwQAAYxN3HWCJMwLdplmaSD5BdlBtY/EpX1A="
#define EC256 "ecdsa-sha2-nistp256 " EC256_B64 " carol"
#define EC256_FP "SHA256:wuPSEQNTAdNq9qgOgLNHlvOyDcG6ark4ucduBLvJJ9Q"

#define EC384 "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBOOcCuMv" \
	"pI3ujFC42UXYubBixEa/jUXuQ9PuYaffRjiq2S6ntTYlE/wRWqjIxvl/21yVuDgBbMaXkAGYzyW52qkzIvVB+JTdnywd" \
	"Qb8xTjNt5jB9FpT9qpPNAqMZQAowvQ== "
#define EC384_FP "SHA256:ujKUzKzbLzpzBoZ7c5MQJRaA+cFtP3tKCyle5CdMk1o"

#define EC521 "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAEKsHfr" \
	"9F2BjH6C3feRtN/1qbCmrQ6zdmPoO4T/Gc9n5RBFCbNgBSUB2R7rgziukHkJoB3CI16W1X461lQodK3/mwGqNye4Am" \
	"lpOPamXGodrRMJ+4Z0tbRLKUymnIVfdjgO5ic86HgVir2fhXBJ5tKNWJ9R1Sj4VAPkK9ThOXKeFfnFcQ== root@vm"
#define EC521_FP "SHA256:zzEEsdH9qQ1OCPW7vghYTd2G4rP/poOUg7Yvf2Tt+Sw"

#define RSA1024 "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCpw5HjkrubF40a4mu1+OnRghg3iifVTpdJ5LA9Sx9SSQ" \
	"/Lz47QItcSPVjvgJnUh5RcHbPlR8SDHW5vdMwVwuzRm3PUEXIfduPrRSN1Kxc9LIK1iophQJvzP07NgnkGjgMi9z0b" \
	"WNKAuGxb2oeMKm/tiFznpD4arDMSDQhY6qskNw== weak"

/* Parse, expect success, and compare the interesting fields. */
static void accepts(const char *text, const char *type, unsigned bits, const char *fp,
		    const char *comment)
{
	struct sshkey k;
	char err[SSHKEY_ERR_LEN];

	if (sshkey_parse(text, &k, err) != 0)
		fail_msg("refused a valid %s key: %s", type, err);
	assert_string_equal(k.type, type);
	assert_int_equal(k.bits, bits);
	assert_string_equal(k.fingerprint, fp);
	assert_string_equal(k.comment, comment);
	sshkey_free(&k);
}

/* Parse, expect refusal with a message that contains `why`. */
static void refuses(const char *text, const char *why)
{
	struct sshkey k;
	char err[SSHKEY_ERR_LEN];

	if (sshkey_parse(text, &k, err) == 0) {
		sshkey_free(&k);
		fail_msg("accepted a bad key (wanted: %s)", why);
	}
	if (strstr(err, why) == NULL)
		fail_msg("message '%s' does not say '%s'", err, why);
	assert_null(k.line);
	assert_null(k.comment);
}

/* "TYPE BASE64" of a blob built from SSH strings (len < 0: raw bytes of -len). */
static char *line_of(const char *type, const unsigned char *blob, size_t len)
{
	size_t b64_size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64_size), *line = malloc(strlen(type) + b64_size + 2);

	assert_non_null(b64);
	assert_non_null(line);
	sodium_bin2base64(b64, b64_size, blob, len, sodium_base64_VARIANT_ORIGINAL);
	sprintf(line, "%s %s", type, b64);
	free(b64);
	return line;
}

struct blob {
	unsigned char b[4096];
	size_t n;
};

static void put_str(struct blob *bl, const void *s, size_t len)
{
	bl->b[bl->n++] = (unsigned char)(len >> 24);
	bl->b[bl->n++] = (unsigned char)(len >> 16);
	bl->b[bl->n++] = (unsigned char)(len >> 8);
	bl->b[bl->n++] = (unsigned char)len;
	memcpy(bl->b + bl->n, s, len);
	bl->n += len;
}

static void put_cstr(struct blob *bl, const char *s) { put_str(bl, s, strlen(s)); }

static void refuses_blob(const char *type, const struct blob *bl, const char *why)
{
	char *line = line_of(type, bl->b, bl->n);
	refuses(line, why);
	free(line);
}

/* ---- valid keys --------------------------------------------------------- */

static void valid_keys(void **state)
{
	(void)state;
	accepts(ED25519, "ssh-ed25519", 256, ED25519_FP, "alice@laptop");
	accepts(RSA3072, "ssh-rsa", 3072, RSA3072_FP, "bob@desk");
	accepts(EC256, "ecdsa-sha2-nistp256", 256, EC256_FP, "carol");
	accepts(EC384, "ecdsa-sha2-nistp384", 384, EC384_FP, "");
	accepts(EC521, "ecdsa-sha2-nistp521", 521, EC521_FP, "root@vm");
}

static void canonical_line(void **state)
{
	(void)state;
	struct sshkey k;
	char err[SSHKEY_ERR_LEN];

	/* Surrounding white space, tabs and a trailing newline (a .pub file) go. */
	assert_int_equal(sshkey_parse("  ssh-ed25519\t" ED25519_B64 "   my  laptop \r\n", &k, err), 0);
	assert_string_equal(k.line, "ssh-ed25519 " ED25519_B64 " my  laptop");
	assert_string_equal(k.comment, "my  laptop");
	sshkey_free(&k);
	/* No comment: no trailing space. */
	assert_int_equal(sshkey_parse("ssh-ed25519 " ED25519_B64 "\n", &k, err), 0);
	assert_string_equal(k.line, "ssh-ed25519 " ED25519_B64);
	assert_string_equal(k.fingerprint, ED25519_FP);
	sshkey_free(&k);
	assert_int_equal(sshkey_parse(EC384, &k, err), 0);
	assert_int_equal(strlen(k.fingerprint), SSHKEY_FP_LEN);
	sshkey_free(&k);
	/* Base64 that ends in "PRIVATE" and a comment "KEY": the canonical
	 * line reads "PRIVATE KEY" and must parse again all the same (it was
	 * taken for a private key file; found by fuzz_sshkey). */
	const char *pk = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP7xNi4/JXTSKo8fQUK/4+8oBlce/yhmRKvNYPRIVATE KEY";
	struct sshkey again;
	assert_int_equal(sshkey_parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP7xNi4/JXTSKo8fQUK/4+8oBlce/"
				      "yhmRKvNYPRIVATE    KEY\n", &k, err), 0);
	assert_string_equal(k.line, pk);
	assert_int_equal(sshkey_parse(k.line, &again, err), 0);
	assert_string_equal(again.fingerprint, k.fingerprint);
	sshkey_free(&again);
	sshkey_free(&k);
}

static void fido_keys(void **state)
{
	(void)state;
	struct blob bl = { .n = 0 };
	unsigned char pk[32] = { 1, 2, 3 };
	struct sshkey k;
	char err[SSHKEY_ERR_LEN];

	put_cstr(&bl, "sk-ssh-ed25519@openssh.com");
	put_str(&bl, pk, sizeof(pk));
	put_cstr(&bl, "ssh:");
	char *line = line_of("sk-ssh-ed25519@openssh.com", bl.b, bl.n);
	assert_int_equal(sshkey_parse(line, &k, err), 0);
	assert_string_equal(k.type, "sk-ssh-ed25519@openssh.com");
	sshkey_free(&k);
	free(line);

	/* Without its application string. */
	bl.n = 0;
	put_cstr(&bl, "sk-ssh-ed25519@openssh.com");
	put_str(&bl, pk, sizeof(pk));
	refuses_blob("sk-ssh-ed25519@openssh.com", &bl, "application string");
}

/* ---- refusals ----------------------------------------------------------- */

static void refuses_text(void **state)
{
	(void)state;
	refuses("", "empty key");
	refuses(" \t\n", "empty key");
	refuses(NULL, "empty key");
	refuses("garbage", "unknown key type");
	refuses("hello world, this is not a key", "unknown key type");
	refuses("ssh-ed25519", "no key data");
	refuses("ssh-ed25519 !!!notbase64!!!", "not valid base64");
	refuses("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "obsolete");
	refuses("from=\"10.0.0.1\" " ED25519, "options");
	refuses("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
		"-----END OPENSSH PRIVATE KEY-----\n", "private key");
	refuses("\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n", "private key");
	refuses(ED25519 "\n" EC256, "one key line");
	refuses("ssh-ed25519 " ED25519_B64 " bad\x01comment", "printable");
	refuses("ssh-ed25519 " ED25519_B64 " caf\xc3\xa9", "printable");
}

static void refuses_truncated(void **state)
{
	(void)state;
	char b64[] = ED25519_B64;
	char line[256];

	/* Not a multiple of 4: the base64 itself is broken. */
	snprintf(line, sizeof(line), "ssh-ed25519 %.*s", (int)strlen(b64) - 3, b64);
	refuses(line, "not valid base64");
	/* Cut at a quantum boundary: decodes, but the key is short. */
	snprintf(line, sizeof(line), "ssh-ed25519 %.*s", (int)strlen(b64) - 8, b64);
	refuses(line, "32-byte");
	/* Cut inside the type string. */
	refuses("ssh-ed25519 AAAAC3NzaC1l", "truncated");
	/* RSA cut in the middle of its modulus. */
	char rsa[] = RSA3072;
	rsa[200] = '\0';
	refuses(rsa, "modulus");
}

static void refuses_wrong_type(void **state)
{
	(void)state;
	refuses("ssh-rsa " ED25519_B64, "key data is an ssh-ed25519 key but the line says ssh-rsa");
	refuses("ecdsa-sha2-nistp384 " EC256_B64, "line says ecdsa-sha2-nistp384");
	refuses("ssh-ed25519 " EC256_B64 " x", "line says ssh-ed25519");

	/* Right type string, wrong contents. */
	struct blob bl = { .n = 0 };
	unsigned char pt[97] = { 0x04 };
	put_cstr(&bl, "ecdsa-sha2-nistp256");
	put_cstr(&bl, "nistp384");
	put_str(&bl, pt, 65);
	refuses_blob("ecdsa-sha2-nistp256", &bl, "another curve");

	bl.n = 0;
	put_cstr(&bl, "ecdsa-sha2-nistp384");
	put_cstr(&bl, "nistp384");
	put_str(&bl, pt, 65);
	refuses_blob("ecdsa-sha2-nistp384", &bl, "97-byte point");

	bl.n = 0;
	pt[0] = 0x02;   /* compressed form */
	put_cstr(&bl, "ecdsa-sha2-nistp384");
	put_cstr(&bl, "nistp384");
	put_str(&bl, pt, 97);
	refuses_blob("ecdsa-sha2-nistp384", &bl, "97-byte point");

	unsigned char pk[33] = { 0 };
	bl.n = 0;
	put_cstr(&bl, "ssh-ed25519");
	put_str(&bl, pk, 31);
	refuses_blob("ssh-ed25519", &bl, "32-byte");

	bl.n = 0;
	put_cstr(&bl, "ssh-ed25519");
	put_str(&bl, pk, 32);
	bl.b[bl.n++] = 0;
	refuses_blob("ssh-ed25519", &bl, "trailing bytes");
}

static void refuses_rsa(void **state)
{
	(void)state;
	refuses(RSA1024, "1024 bits is too weak");

	/* Hand-made RSA blobs: exponent and modulus sanity. */
	unsigned char n[2049 + 1], e3[] = { 0x03 }, eneg[] = { 0x81 }, eeven[] = { 0x01, 0x00 };
	struct blob bl = { .n = 0 };

	memset(n, 0xc5, sizeof(n));
	n[0] = 0;     /* sign byte: 0x00 then a byte with the top bit set */
	put_cstr(&bl, "ssh-rsa");
	put_str(&bl, e3, 1);
	put_str(&bl, n, 257);           /* 2048 bits: accepted */
	char *line = line_of("ssh-rsa", bl.b, bl.n);
	struct sshkey k;
	char err[SSHKEY_ERR_LEN];
	assert_int_equal(sshkey_parse(line, &k, err), 0);
	assert_int_equal(k.bits, 2048);
	sshkey_free(&k);
	free(line);

	bl.n = 0;
	put_cstr(&bl, "ssh-rsa");
	put_str(&bl, eneg, 1);
	put_str(&bl, n, 257);
	refuses_blob("ssh-rsa", &bl, "exponent");

	bl.n = 0;
	put_cstr(&bl, "ssh-rsa");
	put_str(&bl, eeven, 2);
	put_str(&bl, n, 257);
	refuses_blob("ssh-rsa", &bl, "exponent");

	bl.n = 0;
	put_cstr(&bl, "ssh-rsa");
	put_str(&bl, e3, 1);
	put_str(&bl, n + 1, 256);        /* top bit set without the sign byte: negative */
	refuses_blob("ssh-rsa", &bl, "modulus");

	bl.n = 0;
	put_cstr(&bl, "ssh-rsa");
	put_str(&bl, e3, 1);
	put_str(&bl, n, 256);
	bl.b[bl.n - 256 + 1] = 0x45;     /* 00 45 …: a zero byte that is not needed */
	refuses_blob("ssh-rsa", &bl, "modulus");
}

static void refuses_overlong(void **state)
{
	(void)state;
	char comment[SSHKEY_COMMENT_MAX + 2];
	char line[SSHKEY_COMMENT_MAX + 200];
	struct sshkey k;
	char err[SSHKEY_ERR_LEN];

	memset(comment, 'c', SSHKEY_COMMENT_MAX);
	comment[SSHKEY_COMMENT_MAX] = '\0';
	snprintf(line, sizeof(line), "ssh-ed25519 %s %s", ED25519_B64, comment);
	assert_int_equal(sshkey_parse(line, &k, err), 0);    /* at the limit */
	sshkey_free(&k);
	comment[SSHKEY_COMMENT_MAX] = 'c';
	comment[SSHKEY_COMMENT_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "ssh-ed25519 %s %s", ED25519_B64, comment);
	refuses(line, "comment is over");

	size_t big = SSHKEY_LINE_MAX + 100;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, 'A', big);
	memcpy(huge, "ssh-rsa ", 8);
	huge[big] = '\0';
	refuses(huge, "key line is over");
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_keys),
		cmocka_unit_test(canonical_line),
		cmocka_unit_test(fido_keys),
		cmocka_unit_test(refuses_text),
		cmocka_unit_test(refuses_truncated),
		cmocka_unit_test(refuses_wrong_type),
		cmocka_unit_test(refuses_rsa),
		cmocka_unit_test(refuses_overlong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
