/*
 * fuzz_passwd — the password file of the "file" backend
 * (auth/password.h): any text an administrator (or an editor) may leave
 * in it.
 *
 * Input: the file's bytes.  Promises checked:
 *   - a file that parses lists valid, distinct names, and each name's hash
 *     is exactly the field after "NAME:" (CR dropped);
 *   - a file that does not parse is never rewritten: setting a hash and
 *     removing a user fail with PASSWD_ERR_FORMAT and leave every byte;
 *   - a rewrite changes only the line of the user it is about: every other
 *     line is kept, in order, byte for byte;
 *   - a set hash reads back; a removed user is gone.
 * Hashes found in the file are never verified here: their cost parameters
 * are the file's, and the file is the administrator's to make expensive.
 */
#include "fuzz.h"

#include "auth/password.h"
#include "common/fsutil.h"
#include "common/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define NAMES_MAX 64

/* A real argon2id hash of "fuzz-password" at libsodium's minimum cost. */
static char fuzz_hash[PASSWORD_HASH_LEN];

struct names {
	char *v[NAMES_MAX];
	size_t n;
	bool overflow;
};

static void collect(void *ctx, const char *name)
{
	struct names *ns = ctx;

	if (ns->n == NAMES_MAX) {
		ns->overflow = true;
		return;
	}
	ns->v[ns->n++] = strdup(name);
}

/* The line of name in text and its length, or NULL. */
static const char *line_of(const char *text, size_t len, const char *name, size_t *linelen)
{
	size_t nl = strlen(name);

	for (const char *p = text, *end = text + len; p < end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t n = e ? (size_t)(e - p) : (size_t)(end - p);
		if (n > nl && memcmp(p, name, nl) == 0 && p[nl] == ':') {
			*linelen = n;
			return p;
		}
		p += n + 1;
	}
	return NULL;
}

/* Every line of before except the one of name appears in after, in order. */
static void check_other_lines_kept(const char *before, size_t blen, const char *after,
				   size_t alen, const char *name)
{
	const char *q = after, *qend = after + alen;
	size_t skip_len = 0;
	const char *skip = line_of(before, blen, name, &skip_len);

	for (const char *p = before, *end = before + blen; p < end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t n = e ? (size_t)(e - p) : (size_t)(end - p);
		if (p != skip) {
			bool found = false;
			while (q < qend && !found) {
				const char *qe = memchr(q, '\n', (size_t)(qend - q));
				size_t qn = qe ? (size_t)(qe - q) : (size_t)(qend - q);
				found = qn == n && memcmp(p, q, n) == 0;
				q += qn + 1;
			}
			FUZZ_ASSERT(found, "a line other than '%s''s was lost or changed", name);
		}
		p += n + 1;
	}
}

static char *read_back(const char *path, size_t *len)
{
	char *buf = NULL;

	FUZZ_ASSERT(file_read(path, 16 << 20, &buf, len) == 0, "cannot read %s back", path);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[256];
	struct names ns = { .n = 0 };
	char hash[PASSWORD_HASH_LEN];
	const char *target;
	size_t len;
	char *after;

	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "%s/passwd", fuzz_dir("passwd"));
		password_set_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
		FUZZ_ASSERT(password_hash("fuzz-password", fuzz_hash) == 0, "cannot hash");
	}
	fuzz_write(path, data, size);
	struct passwd_file *pf = passwd_open(path);
	FUZZ_ASSERT(pf != NULL, "passwd_open failed");
	int status = passwd_foreach(pf, collect, &ns);

	if (status != PASSWD_OK) {
		FUZZ_ASSERT(status == PASSWD_ERR_FORMAT, "status %d", status);
		FUZZ_ASSERT(passwd_error_line(pf) >= 1, "no line for the error");
		FUZZ_ASSERT(passwd_set_hash(pf, "fuzz", fuzz_hash) == PASSWD_ERR_FORMAT &&
			    passwd_remove(pf, "fuzz") == PASSWD_ERR_FORMAT, "a broken file was used");
		after = read_back(path, &len);
		FUZZ_ASSERT(len == size && memcmp(after, data, size) == 0, "a broken file was rewritten");
		free(after);
		passwd_close(pf);
		return 0;
	}
	for (size_t i = 0; i < ns.n; i++) {
		size_t ll;
		const char *line = line_of((const char *)data, size, ns.v[i], &ll);
		FUZZ_ASSERT(name_valid(ns.v[i]) && line != NULL, "listed '%s'", ns.v[i]);
		for (size_t j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(ns.v[i], ns.v[j]) != 0, "'%s' listed twice", ns.v[i]);
		FUZZ_ASSERT(passwd_lookup(pf, ns.v[i], hash) == PASSWD_OK, "lookup of '%s'", ns.v[i]);
		const char *h = line + strlen(ns.v[i]) + 1, *he = memchr(h, ':', ll - (size_t)(h - line));
		size_t hl = he ? (size_t)(he - h) : ll - (size_t)(h - line);
		while (hl > 0 && h[hl - 1] == '\r')
			hl--;
		if (hl >= PASSWORD_HASH_LEN)
			hl = 0;
		FUZZ_ASSERT(strlen(hash) == hl && memcmp(hash, h, hl) == 0, "hash of '%s'", ns.v[i]);
	}
	/* Rewrite the first user (or add one), then remove it. */
	target = ns.n ? ns.v[0] : "fuzz";
	FUZZ_ASSERT(passwd_set_hash(pf, target, fuzz_hash) == PASSWD_OK, "set '%s'", target);
	after = read_back(path, &len);
	check_other_lines_kept((const char *)data, size, after, len, target);
	free(after);
	passwd_close(pf);
	pf = passwd_open(path);
	FUZZ_ASSERT(passwd_lookup(pf, target, hash) == PASSWD_OK && strcmp(hash, fuzz_hash) == 0,
		    "the hash set for '%s' did not read back", target);
	FUZZ_ASSERT(passwd_verify(pf, target, "fuzz-password") == PASSWD_OK &&
		    passwd_verify(pf, target, "wrong") == PASSWD_ERR_DENIED, "verify '%s'", target);
	FUZZ_ASSERT(passwd_remove(pf, target) == PASSWD_OK, "remove '%s'", target);
	FUZZ_ASSERT(passwd_lookup(pf, target, hash) == PASSWD_ERR_NOUSER, "'%s' still there", target);
	after = read_back(path, &len);
	check_other_lines_kept((const char *)data, size, after, len, target);
	free(after);
	passwd_close(pf);
	for (size_t i = 0; i < ns.n; i++)
		free(ns.v[i]);
	return 0;
}
