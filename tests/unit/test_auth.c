/*
 * test_auth — the authentication building blocks (the headers in src/auth/) and the
 * token-bucket arithmetic (src/common/ratelimit.h).  Time is always given,
 * never read; files live in a mkdtemp directory removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/backoff.h"
#include "auth/credfile.h"
#include "auth/ldap.h"
#include "auth/password.h"
#include "auth/policy.h"
#include "auth/seal.h"
#include "auth/token.h"
#include "auth/throttle.h"
#include "auth/totp.h"
#include "common/fsutil.h"
#include "common/ratelimit.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/hc-test-auth.XXXXXX";

static char *tmp_path(const char *name)
{
	char *p = str_printf("%s/%s", tmpdir, name);
	assert_non_null(p);
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	char *buf;
	assert_int_equal(file_read(path, 1 << 20, &buf, NULL), 0);
	return buf;
}

/* ---- password ----------------------------------------------------------- */

static void password_hash_and_verify(void **state)
{
	char hash[PASSWORD_HASH_LEN];

	assert_int_equal(password_hash("correct horse", hash), 0);
	assert_true(strncmp(hash, "$argon2id$", 10) == 0);
	assert_true(password_verify(hash, "correct horse"));
	assert_false(password_verify(hash, "correct hors"));
	assert_false(password_verify(hash, ""));
	assert_false(password_verify("", "correct horse"));
	assert_false(password_verify("$2y$10$notargon", "correct horse"));
	assert_int_equal(password_hash("", hash), -1);
	assert_false(password_needs_rehash(hash));
}

static void passwd_verify_users(void **state)
{
	char *path = tmp_path("passwd1");
	char hash[PASSWORD_HASH_LEN], *text;
	struct passwd_file *pf;

	assert_int_equal(password_hash("alicepw", hash), 0);
	text = str_printf("# users\n\nalice:%s:admin:ignored\nlocked:!:\n", hash);
	write_file(path, text);
	free(text);
	pf = passwd_open(path);
	assert_non_null(pf);
	assert_int_equal(passwd_verify(pf, "alice", "alicepw"), PASSWD_OK);
	assert_int_equal(passwd_verify(pf, "alice", "wrong"), PASSWD_ERR_DENIED);
	assert_int_equal(passwd_verify(pf, "alice", ""), PASSWD_ERR_DENIED);
	/* Unknown, unusable and invalid names all look the same to a client. */
	assert_int_equal(passwd_verify(pf, "mallory", "alicepw"), PASSWD_ERR_DENIED);
	assert_int_equal(passwd_verify(pf, "locked", "!"), PASSWD_ERR_DENIED);
	assert_int_equal(passwd_verify(pf, "a:b", "x"), PASSWD_ERR_DENIED);
	assert_int_equal(passwd_lookup(pf, "alice", hash), PASSWD_OK);
	assert_int_equal(passwd_lookup(pf, "mallory", hash), PASSWD_ERR_NOUSER);
	assert_int_equal(passwd_lookup(pf, "Bad:Name", hash), PASSWD_ERR_NAME);
	passwd_close(pf);
	free(path);
}

static void count_name(void *ctx, const char *name)
{
	(*(int *)ctx)++;
	(void)name;
}

static void passwd_change_detection(void **state)
{
	char *path = tmp_path("passwd2");
	char h1[PASSWORD_HASH_LEN], h2[PASSWORD_HASH_LEN], got[PASSWORD_HASH_LEN], *text;
	struct passwd_file *pf;
	int n = 0;

	/* Missing file: no users, and the first set creates it. */
	pf = passwd_open(path);
	assert_non_null(pf);
	assert_int_equal(passwd_verify(pf, "bob", "x"), PASSWD_ERR_DENIED);
	assert_int_equal(passwd_foreach(pf, count_name, &n), PASSWD_OK);
	assert_int_equal(n, 0);

	assert_int_equal(password_hash("one", h1), 0);
	assert_int_equal(password_hash("two", h2), 0);
	text = str_printf("bob:%s:\n", h1);
	write_file(path, text);
	free(text);
	assert_int_equal(passwd_lookup(pf, "bob", got), PASSWD_OK);
	assert_string_equal(got, h1);

	/* Rewritten under another inode (an editor's save): reread. */
	char *other = tmp_path("passwd2.new");
	text = str_printf("bob:%s:\n", h2);
	write_file(other, text);
	free(text);
	assert_int_equal(rename(other, path), 0);
	free(other);
	assert_int_equal(passwd_verify(pf, "bob", "two"), PASSWD_OK);
	assert_int_equal(passwd_verify(pf, "bob", "one"), PASSWD_ERR_DENIED);

	/* A malformed line makes the file unusable, with the line named; our
	 * writes then refuse rather than clobber it. */
	write_file(path, "# ok\nbob\n");
	assert_int_equal(passwd_verify(pf, "bob", "two"), PASSWD_ERR_FORMAT);
	assert_int_equal(passwd_error_line(pf), 2);
	assert_int_equal(passwd_set(pf, "carol", "pw"), PASSWD_ERR_FORMAT);
	text = read_text(path);
	assert_string_equal(text, "# ok\nbob\n");
	free(text);
	text = str_printf("bob:%s:\nbob:%s:\n", h1, h2);
	write_file(path, text);
	free(text);
	assert_int_equal(passwd_reload(pf), PASSWD_ERR_FORMAT);
	assert_int_equal(passwd_error_line(pf), 2);
	write_file(path, "Bob:x:\n");
	assert_int_equal(passwd_reload(pf), PASSWD_ERR_FORMAT);
	passwd_close(pf);
	free(path);
}

static void passwd_safe_rewrite(void **state)
{
	char *path = tmp_path("passwd3");
	char hash[PASSWORD_HASH_LEN], *text, *expect;
	struct passwd_file *pf;
	struct stat st;
	int n = 0;

	assert_int_equal(password_hash("alicepw", hash), 0);
	text = str_printf("# the users\nalice:%s:extra:fields\n\n# end\n", hash);
	write_file(path, text);
	assert_int_equal(chmod(path, 0644), 0);
	pf = passwd_open(path);
	assert_non_null(pf);

	/* Add: appended; every other line kept byte for byte; mode 0600. */
	assert_int_equal(passwd_set(pf, "bob", "bobpw"), PASSWD_OK);
	assert_int_equal(passwd_verify(pf, "bob", "bobpw"), PASSWD_OK);
	expect = read_text(path);
	assert_true(strncmp(expect, text, strlen(text)) == 0);
	assert_true(strncmp(expect + strlen(text), "bob:$argon2id$", 14) == 0);
	free(expect);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* Replace: alice's extra fields survive. */
	assert_int_equal(passwd_set(pf, "alice", "newpw"), PASSWD_OK);
	assert_int_equal(passwd_verify(pf, "alice", "newpw"), PASSWD_OK);
	assert_int_equal(passwd_verify(pf, "alice", "alicepw"), PASSWD_ERR_DENIED);
	expect = read_text(path);
	assert_non_null(strstr(expect, ":extra:fields\n"));
	assert_true(strncmp(expect, "# the users\nalice:$argon2id$", 28) == 0);
	free(expect);

	/* A second reader sees what the first wrote. */
	struct passwd_file *pf2 = passwd_open(path);
	assert_int_equal(passwd_verify(pf2, "alice", "newpw"), PASSWD_OK);

	/* Remove. */
	assert_int_equal(passwd_remove(pf, "bob"), PASSWD_OK);
	assert_int_equal(passwd_remove(pf, "bob"), PASSWD_ERR_NOUSER);
	assert_int_equal(passwd_verify(pf2, "bob", "bobpw"), PASSWD_ERR_DENIED);
	assert_int_equal(passwd_foreach(pf2, count_name, &n), PASSWD_OK);
	assert_int_equal(n, 1);

	/* Refusals. */
	assert_int_equal(passwd_set(pf, "a:b", "x"), PASSWD_ERR_NAME);
	assert_int_equal(passwd_set(pf, "x\ny", "x"), PASSWD_ERR_NAME);
	assert_int_equal(passwd_set(pf, "dave", ""), PASSWD_ERR_PASSWORD);
	assert_int_equal(passwd_set_hash(pf, "dave", "plain"), PASSWD_ERR_HASH);
	assert_int_equal(passwd_set_hash(pf, "dave", "$argon2id$v=19:x"), PASSWD_ERR_HASH);
	assert_int_equal(passwd_set_hash(pf, "dave", hash), PASSWD_OK);
	assert_int_equal(passwd_verify(pf2, "dave", "alicepw"), PASSWD_OK);

	/* No temporary file is left behind. */
	char *tmp = str_printf("%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);
	passwd_close(pf2);
	passwd_close(pf);
	free(text);
	free(path);

	/* The first user creates the file. */
	path = tmp_path("passwd4");
	pf = passwd_open(path);
	assert_int_equal(passwd_set(pf, "erin", "erinpw"), PASSWD_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(passwd_verify(pf, "erin", "erinpw"), PASSWD_OK);
	passwd_close(pf);
	free(path);
}

/* ---- TOTP --------------------------------------------------------------- */

static const unsigned char rfc_secret[] = "12345678901234567890";

static void totp_rfc6238_vectors(void **state)
{
	static const struct { time_t t; const char *code; } v[] = {
		{ 59, "94287082" }, { 1111111109, "07081804" }, { 1111111111, "14050471" },
		{ 1234567890, "89005924" }, { 2000000000, "69279037" },
	};
	struct totp_params p = { .digits = 8, .period = 30, .alg = TOTP_SHA1 };
	char code[TOTP_DIGITS_MAX + 1];
	int64_t step;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(totp_generate(&p, rfc_secret, 20, v[i].t, code), 0);
		assert_string_equal(code, v[i].code);
		assert_int_equal(totp_verify_params(&p, rfc_secret, 20, v[i].t, v[i].code, 0, &step),
				 TOTP_OK);
		assert_int_equal(step, v[i].t / 30);
	}
	/* SHA256 and SHA512 vectors of the RFC (their own longer keys). */
	static const unsigned char k256[] = "12345678901234567890123456789012";
	static const unsigned char k512[] =
		"1234567890123456789012345678901234567890123456789012345678901234";
	p.alg = TOTP_SHA256;
	assert_int_equal(totp_verify_params(&p, k256, 32, 59, "46119246", 0, &step), TOTP_OK);
	p.alg = TOTP_SHA512;
	assert_int_equal(totp_verify_params(&p, k512, 64, 59, "90693936", 0, &step), TOTP_OK);
}

static void totp_window_and_replay(void **state)
{
	const time_t now = 1700000000;          /* step 56666666, 20 s into it */
	char prev[9], cur[9], next[9], far[9];
	int64_t step, last = 0;

	assert_int_equal(totp_generate(NULL, rfc_secret, 20, now - 30, prev), 0);
	assert_int_equal(totp_generate(NULL, rfc_secret, 20, now, cur), 0);
	assert_int_equal(totp_generate(NULL, rfc_secret, 20, now + 30, next), 0);
	assert_int_equal(totp_generate(NULL, rfc_secret, 20, now + 60, far), 0);
	assert_int_equal(strlen(cur), 6);

	/* ±1 step, not 2. */
	assert_int_equal(totp_verify(rfc_secret, 20, now, far, 0, &step), TOTP_WRONG);
	assert_int_equal(totp_verify(rfc_secret, 20, now, next, 0, &step), TOTP_OK);
	assert_int_equal(step, now / 30 + 1);
	assert_int_equal(totp_verify(rfc_secret, 20, now, prev, 0, &step), TOTP_OK);
	assert_int_equal(step, now / 30 - 1);

	/* Replay: the same code twice, then an older one after a newer one. */
	assert_int_equal(totp_verify(rfc_secret, 20, now, cur, last, &step), TOTP_OK);
	last = step;
	assert_int_equal(totp_verify(rfc_secret, 20, now, cur, last, &step), TOTP_REPLAY);
	assert_int_equal(totp_verify(rfc_secret, 20, now, prev, last, &step), TOTP_REPLAY);
	assert_int_equal(totp_verify(rfc_secret, 20, now + 30, next, last, &step), TOTP_OK);
	assert_int_equal(step, last + 1);

	/* Junk. */
	assert_int_equal(totp_verify(rfc_secret, 20, now, "12345", 0, &step), TOTP_WRONG);
	assert_int_equal(totp_verify(rfc_secret, 20, now, "12345a", 0, &step), TOTP_WRONG);
	assert_int_equal(totp_verify(rfc_secret, 20, now, "", 0, &step), TOTP_WRONG);
	assert_int_equal(totp_step(NULL, now), now / 30);
}

static void totp_uri_and_secret(void **state)
{
	unsigned char s1[TOTP_SECRET_LEN], s2[TOTP_SECRET_LEN];
	char *uri;

	uri = totp_uri("hackcloud", "alice", rfc_secret, 20);
	assert_string_equal(uri, "otpauth://totp/hackcloud:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
			    "&issuer=hackcloud&algorithm=SHA1&digits=6&period=30");
	free(uri);
	/* Percent-encoding, and base32 without its padding (5 bytes pad none,
	 * 1 byte would pad six '='). */
	uri = totp_uri("Hack Cloud", "a:b@c/d", (const unsigned char *)"a", 1);
	assert_string_equal(uri, "otpauth://totp/Hack%20Cloud:a%3Ab%40c%2Fd?secret=ME"
			    "&issuer=Hack%20Cloud&algorithm=SHA1&digits=6&period=30");
	free(uri);

	totp_secret_new(s1);
	totp_secret_new(s2);
	assert_memory_not_equal(s1, s2, sizeof(s1));
}

static void totp_qr(void **state)
{
	char *path = tmp_path("qr.txt");
	FILE *f = fopen(path, "w+");
	char *text;
	int lines = 0;

	assert_non_null(f);
	assert_int_equal(totp_qr_render("otpauth://totp/x:y?secret=ME", f), 0);
	assert_int_equal(fclose(f), 0);
	text = read_text(path);
	for (char *p = text; *p; p++)
		lines += *p == '\n';
	/* 28 bytes need version 3 at level M: 29 modules, 37 rows with the
	 * quiet zone, 19 lines of two. */
	assert_int_equal(lines, 19);
	assert_non_null(strstr(text, "\u2588"));
	assert_true(strncmp(text, "\033[30;107m", 9) == 0);
	free(text);
	free(path);
}

/* ---- seal --------------------------------------------------------------- */

static void seal_round_trip(void **state)
{
	char *path = tmp_path("host.key"), *err = NULL, *text;
	unsigned char key[SEAL_KEY_LEN], again[SEAL_KEY_LEN], *plain;
	struct stat st;
	size_t len;

	assert_int_equal(seal_key_load(path, key, &err), 0);
	assert_null(err);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, SEAL_KEY_LEN);
	assert_int_equal(seal_key_load(path, again, &err), 0);
	assert_memory_equal(key, again, SEAL_KEY_LEN);

	text = seal_encrypt(key, rfc_secret, 20);
	assert_non_null(text);
	assert_int_equal(seal_decrypt(key, text, &plain, &len), 0);
	assert_int_equal(len, 20);
	assert_memory_equal(plain, rfc_secret, 20);
	sodium_memzero(plain, len);
	free(plain);

	/* Fresh nonce each time. */
	char *text2 = seal_encrypt(key, rfc_secret, 20);
	assert_string_not_equal(text, text2);
	free(text2);

	/* Tampering anywhere is detected; so is another key and junk. */
	for (size_t i = 0; i < strlen(text); i += 7) {
		char saved = text[i];
		text[i] = saved == 'A' ? 'B' : 'A';
		assert_int_equal(seal_decrypt(key, text, &plain, &len), -1);
		assert_null(plain);
		text[i] = saved;
	}
	again[0] ^= 1;
	assert_int_equal(seal_decrypt(again, text, &plain, &len), -1);
	assert_int_equal(seal_decrypt(key, "", &plain, &len), -1);
	assert_int_equal(seal_decrypt(key, "not base64!", &plain, &len), -1);
	free(text);

	/* A key file others can read, or of the wrong size, is refused. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(seal_key_load(path, again, &err), -1);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(truncate(path, 16), 0);
	assert_int_equal(seal_key_load(path, again, &err), -1);
	assert_non_null(err);
	free(err);
	free(path);
}

/* ---- token -------------------------------------------------------------- */

static void token_format_and_hash(void **state)
{
	char t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1], h[TOKEN_HASH_LEN + 1];

	token_new(t1);
	token_new(t2);
	assert_int_equal(strlen(t1), 47);
	assert_true(strncmp(t1, "hct_", 4) == 0);
	assert_string_not_equal(t1, t2);
	assert_true(token_looks_valid(t1));

	token_hash("abc", h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	token_hash(t1, h);
	assert_int_equal(strlen(h), 64);

	assert_false(token_looks_valid(NULL));
	assert_false(token_looks_valid(""));
	assert_false(token_looks_valid("hct_"));
	t2[10] = '+';
	assert_false(token_looks_valid(t2));
	t2[10] = 'a';
	t2[0] = 'x';
	assert_false(token_looks_valid(t2));
	char longer[TOKEN_LEN + 2];
	memcpy(longer, t1, TOKEN_LEN);
	longer[TOKEN_LEN] = 'a';
	longer[TOKEN_LEN + 1] = '\0';
	assert_false(token_looks_valid(longer));
	t1[TOKEN_LEN - 1] = '\0';
	assert_false(token_looks_valid(t1));
}

static void credfile_store_load(void **state)
{
	char *path = tmp_path("config/hackcloud/credentials"), *tok, *dir;
	struct stat st;

	assert_int_equal(credfile_load(path, "https://a", &tok), 1);
	assert_null(tok);
	assert_int_equal(credfile_store(path, "https://a", "hct_one"), 0);
	assert_int_equal(credfile_store(path, "unix:/run/x.sock", "hct_two"), 0);
	assert_int_equal(credfile_store(path, "https://a", "hct_three"), 0);
	assert_int_equal(credfile_load(path, "https://a", &tok), 0);
	assert_string_equal(tok, "hct_three");
	free(tok);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	dir = tmp_path("config/hackcloud");
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	free(dir);
	assert_int_equal(credfile_remove(path, "https://a"), 0);
	assert_int_equal(credfile_remove(path, "https://a"), 0);
	assert_int_equal(credfile_load(path, "https://a", &tok), 1);
	assert_int_equal(credfile_load(path, "unix:/run/x.sock", &tok), 0);
	assert_string_equal(tok, "hct_two");
	free(tok);

	/* Not ours to overwrite. */
	write_file(path, "[1, 2]");
	assert_int_equal(credfile_store(path, "https://a", "hct_x"), -1);
	assert_int_equal(credfile_load(path, "https://a", &tok), -1);

	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	tok = credfile_path();
	assert_string_equal(tok, "/xdg/hackcloud/credentials");
	free(tok);
	setenv("XDG_CONFIG_HOME", "relative", 1);
	setenv("HOME", "/home/u", 1);
	tok = credfile_path();
	assert_string_equal(tok, "/home/u/.config/hackcloud/credentials");
	free(tok);
	free(path);
}

/* ---- ratelimit ---------------------------------------------------------- */

static void ratelimit_arithmetic(void **state)
{
	struct rate_bucket b;
	double retry;

	/* 2/s, burst 3: three at once, then a wait of half a second. */
	ratelimit_fill(&b, 3, 1000);
	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_take(&b, 2, 3, 1000, &retry));
	assert_false(ratelimit_take(&b, 2, 3, 1000, &retry));
	assert_float_equal(retry, 0.5, 1e-9);
	assert_false(ratelimit_take(&b, 2, 3, 1250, &retry));
	assert_float_equal(retry, 0.25, 1e-9);
	assert_true(ratelimit_take(&b, 2, 3, 1500, &retry));
	assert_float_equal(retry, 0, 1e-9);
	/* A long pause refills to the burst, not beyond. */
	assert_true(ratelimit_take(&b, 2, 3, 100000, NULL));
	assert_float_equal(b.tokens, 2, 1e-9);
	/* The clock going back adds nothing. */
	assert_true(ratelimit_take(&b, 2, 3, 50000, NULL));
	assert_true(ratelimit_take(&b, 2, 3, 50000, NULL));
	assert_false(ratelimit_take(&b, 2, 3, 50000, NULL));
	/* Rate 0: unlimited. */
	assert_true(ratelimit_take(&b, 0, 3, 50000, &retry));
}

/* ---- backoff ------------------------------------------------------------ */

static void backoff_arithmetic(void **state)
{
	struct backoff *t = backoff_new(NULL);
	static const double expect[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300 };
	int64_t now = 10000, until;
	unsigned failures;
	double delay, retry;

	assert_non_null(t);
	assert_true(backoff_check(t, "user:alice", now, &retry));
	assert_false(backoff_get(t, "user:alice", &failures, &delay, &until));
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		backoff_fail(t, "user:alice", now);
		assert_true(backoff_get(t, "user:alice", &failures, &delay, &until));
		assert_int_equal(failures, i + 1);
		assert_float_equal(delay, expect[i], 1e-9);
		assert_int_equal(until, now + (int64_t)(expect[i] * 1000));
		assert_false(backoff_check(t, "user:alice", now, &retry));
		assert_float_equal(retry, expect[i], 1e-9);
		assert_false(backoff_check(t, "user:alice", until - 1, &retry));
		assert_float_equal(retry, 0.001, 1e-9);
		now = until;
		assert_true(backoff_check(t, "user:alice", now, &retry));
		assert_float_equal(retry, 0, 1e-9);
	}
	/* Keys are independent; success clears. */
	assert_true(backoff_check(t, "addr:192.0.2.1", now, NULL));
	backoff_success(t, "user:alice");
	assert_false(backoff_get(t, "user:alice", NULL, NULL, NULL));
	backoff_fail(t, "user:alice", now);
	assert_true(backoff_get(t, "user:alice", &failures, &delay, NULL));
	assert_int_equal(failures, 1);
	assert_float_equal(delay, 1, 1e-9);
	/* Forgotten after an hour of quiet. */
	backoff_fail(t, "user:alice", now + 1000);
	backoff_fail(t, "user:alice", now + 3000 + 3600 * 1000);
	assert_true(backoff_get(t, "user:alice", &failures, NULL, NULL));
	assert_int_equal(failures, 1);
	backoff_free(t);
}

static void count_entry(void *ctx, const char *key, unsigned failures, double delay_s,
			int64_t until_ms)
{
	(*(int *)ctx)++;
}

static void backoff_bounded(void **state)
{
	struct backoff_config cfg = { .capacity = 4 };
	struct backoff *t = backoff_new(&cfg);
	char key[32];
	int n = 0;

	/* alice earns a long wait; a flood of fresh keys must not evict her. */
	for (int i = 0; i < 5; i++)
		backoff_fail(t, "user:alice", 0);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "addr:10.0.0.%d", i);
		backoff_fail(t, key, 1000 + i);
	}
	backoff_foreach(t, count_entry, &n);
	assert_int_equal(n, 4);
	assert_false(backoff_check(t, "user:alice", 2000, NULL));
	assert_true(backoff_get(t, "addr:10.0.0.99", NULL, NULL, NULL));
	assert_false(backoff_get(t, "addr:10.0.0.0", NULL, NULL, NULL));
	backoff_free(t);
}

/* ---- throttle: users and addresses apart (issue 11 §8) ------------------- */

static void throttle_users_survive_address_floods(void **state)
{
	struct throttle *t = throttle_new(&(struct throttle_config){ .users = 4, .addrs = 4 });
	struct backoff *one = backoff_new(&(struct backoff_config){ .capacity = 8 });
	char addr[32];
	unsigned failures;
	double delay, wait;

	/* alice earns 5 failures (16 s), and her wait ends. */
	for (int i = 0; i < 5; i++) {
		throttle_fail(t, "alice", "192.0.2.1", 0);
		backoff_fail(one, "user:alice", 0);
	}
	/* Then cheap failures from many fresh addresses.  In one shared table
	 * (what hcd had) they evict her finished entry: her next failure would
	 * start again at 1 s. */
	for (int i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "198.51.100.%d", i % 250);
		throttle_fail(t, "x", addr, 20000 + i);
		backoff_fail(one, addr, 20000 + i);
	}
	assert_false(backoff_get(one, "user:alice", NULL, NULL, NULL));
	throttle_user_state(t, "alice", &failures, &delay);
	assert_int_equal(failures, 5);
	assert_float_equal(delay, 16, 1e-9);
	/* Her next failure doubles the wait as earned. */
	throttle_fail(t, "alice", "203.0.113.9", 30000);
	throttle_user_state(t, "alice", &failures, &delay);
	assert_int_equal(failures, 6);
	assert_float_equal(delay, 32, 1e-9);
	/* Either key waiting makes an attempt wait; success clears both. */
	assert_false(throttle_check(t, "alice", "203.0.113.10", 30500, &wait));
	assert_float_equal(wait, 31.5, 1e-9);
	assert_false(throttle_check(t, "bob", "203.0.113.9", 30500, &wait));
	assert_float_equal(wait, 0.5, 1e-9);
	assert_true(throttle_check(t, "bob", "203.0.113.10", 30500, &wait));
	throttle_success(t, "alice", "203.0.113.9");
	assert_true(throttle_check(t, "alice", "203.0.113.9", 30500, NULL));
	backoff_free(one);
	throttle_free(t);
}

/* ---- policy: one answer and one cost for every failure (issue 11 §7) ----- */

static void login_policy_uniform(void **state)
{
	/* Every way a login can fail without the right secrets. */
	static const struct { const char *what; struct login_facts f; } fails[] = {
		{ "unknown user", { .password_given = true } },
		{ "unknown user, code", { .password_given = true, .otp_given = true } },
		{ "disabled user", { .found = true, .file = true, .password_given = true } },
		{ "no backend", { .found = true, .enabled = true, .password_given = true } },
		{ "OTP-only, no code", { .found = true, .enabled = true, .otp = true, .password_given = true } },
		{ "OTP-only, nothing", { .found = true, .enabled = true, .otp = true } },
		{ "file, no password", { .found = true, .enabled = true, .file = true } },
		{ "ldap, no password", { .found = true, .enabled = true, .ldap = true, .otp_given = true } },
	};

	for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
		const struct login_facts *f = &fails[i].f;
		/* One argon2id run against the dummy hash: the cost of a real one. */
		assert_int_equal(login_check_for(f), CHECK_DUMMY);
		/* The dummy never passes; a code, when wanted, is wrong. */
		enum check_result otp = login_wants_otp(f, CHECK_FAILED) ? CHECK_FAILED : CHECK_SKIPPED;
		if (login_result(f, CHECK_FAILED, otp) != LOGIN_DENIED)
			fail_msg("%s: not denied", fails[i].what);
		assert_int_equal(proof_result(f, CHECK_FAILED, otp), LOGIN_DENIED);
	}
	/* Users with a password backend run their own check. */
	struct login_facts file = { .found = true, .enabled = true, .file = true, .password_given = true };
	struct login_facts ldap = { .found = true, .enabled = true, .ldap = true, .password_given = true };
	assert_int_equal(login_check_for(&file), CHECK_FILE);
	assert_int_equal(login_check_for(&ldap), CHECK_LDAP);
	assert_int_equal(login_result(&file, CHECK_PASSED, CHECK_SKIPPED), LOGIN_OK);
	assert_int_equal(login_result(&file, CHECK_FAILED, CHECK_SKIPPED), LOGIN_DENIED);
	assert_int_equal(login_result(&ldap, CHECK_ERROR, CHECK_SKIPPED), LOGIN_UNAVAILABLE);
	/* A code is asked for only after a right password; a wrong password
	 * with a code never looks at (or burns) the code. */
	struct login_facts two = { .found = true, .enabled = true, .file = true, .otp = true,
				   .password_given = true };
	assert_false(login_wants_otp(&two, CHECK_PASSED));
	assert_int_equal(login_result(&two, CHECK_PASSED, CHECK_SKIPPED), LOGIN_OTP_REQUIRED);
	assert_int_equal(login_result(&two, CHECK_FAILED, CHECK_SKIPPED), LOGIN_DENIED);
	two.otp_given = true;
	assert_false(login_wants_otp(&two, CHECK_FAILED));
	assert_true(login_wants_otp(&two, CHECK_PASSED));
	assert_int_equal(login_result(&two, CHECK_PASSED, CHECK_FAILED), LOGIN_DENIED);
	assert_int_equal(login_result(&two, CHECK_PASSED, CHECK_PASSED), LOGIN_OK);
	/* OTP-only: the code alone. */
	struct login_facts otp = { .found = true, .enabled = true, .otp = true, .otp_given = true };
	assert_int_equal(login_check_for(&otp), CHECK_DUMMY);
	assert_true(login_wants_otp(&otp, CHECK_FAILED));
	assert_int_equal(login_result(&otp, CHECK_FAILED, CHECK_PASSED), LOGIN_OK);
	/* A proof: the password or a code, either suffices. */
	assert_int_equal(proof_result(&two, CHECK_PASSED, CHECK_SKIPPED), LOGIN_OK);
	assert_true(proof_wants_otp(&two, CHECK_FAILED));
	assert_int_equal(proof_result(&two, CHECK_FAILED, CHECK_PASSED), LOGIN_OK);
	assert_int_equal(proof_result(&two, CHECK_FAILED, CHECK_FAILED), LOGIN_DENIED);
}

/* ---- LDAP filter escaping ----------------------------------------------- */

static void ldap_escape(void **state)
{
	static const struct { const char *in; size_t len; const char *out; } v[] = {
		{ "alice", 5, "alice" },
		{ "*", 1, "\\2a" },
		{ "a)(uid=*", 8, "a\\29\\28uid=\\2a" },
		{ "back\\slash", 10, "back\\5cslash" },
		{ "nul\0x", 5, "nul\\00x" },
		{ "caf\xc3\xa9", 5, "caf\\c3\\a9" },
		{ "tab\t", 4, "tab\\09" },
		{ "", 0, "" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = ldap_filter_escape(v[i].in, v[i].len);
		assert_string_equal(e, v[i].out);
		free(e);
	}
}

static void ldap_refusals(void **state)
{
	struct ldap_auth_cfg cfg = { .uri = "ldap://127.0.0.1:1/", .base = "dc=x" };
	char *err = NULL;

	/* Refused before any connection is tried. */
	assert_int_equal(ldap_authenticate(&cfg, "alice", "", &err), AUTH_DENIED);
	assert_non_null(err);
	free(err);
	assert_int_equal(ldap_authenticate(&cfg, "", "pw", &err), AUTH_DENIED);
	free(err);
	cfg.filter = "(&(uid=%s)(cn=%s))";
	assert_int_equal(ldap_authenticate(&cfg, "alice", "pw", &err), AUTH_UNAVAILABLE);
	free(err);
	cfg.filter = "(uid=%d)";
	assert_int_equal(ldap_authenticate(&cfg, "alice", "pw", &err), AUTH_UNAVAILABLE);
	free(err);
	/* Nothing listens on port 1: unavailable, not denied. */
	cfg.filter = NULL;
	cfg.timeout_s = 2;
	assert_int_equal(ldap_authenticate(&cfg, "alice", "pw", &err), AUTH_UNAVAILABLE);
	assert_non_null(err);
	free(err);
}

static int setup(void **state)
{
	if (mkdtemp(tmpdir) == NULL || sodium_init() < 0)
		return -1;
	/* The cheapest argon2id cost: these tests check logic, not cost. */
	password_set_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
	return 0;
}

static int teardown(void **state)
{
	return dir_remove_tree(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(password_hash_and_verify),
		cmocka_unit_test(passwd_verify_users),
		cmocka_unit_test(passwd_change_detection),
		cmocka_unit_test(passwd_safe_rewrite),
		cmocka_unit_test(totp_rfc6238_vectors),
		cmocka_unit_test(totp_window_and_replay),
		cmocka_unit_test(totp_uri_and_secret),
		cmocka_unit_test(totp_qr),
		cmocka_unit_test(seal_round_trip),
		cmocka_unit_test(token_format_and_hash),
		cmocka_unit_test(credfile_store_load),
		cmocka_unit_test(ratelimit_arithmetic),
		cmocka_unit_test(backoff_arithmetic),
		cmocka_unit_test(backoff_bounded),
		cmocka_unit_test(throttle_users_survive_address_floods),
		cmocka_unit_test(login_policy_uniform),
		cmocka_unit_test(ldap_escape),
		cmocka_unit_test(ldap_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
