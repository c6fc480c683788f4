/*
 * password — argon2id password hashes (libsodium) and the passwd file that
 * holds them (DESIGN §8, the "file" backend).
 *
 * The file has one user per line, "NAME:HASH:" — further ':'-separated
 * fields are ignored and kept; '#' comment lines and blank lines are kept
 * too, so a rewrite changes only the line of the user it is about.  NAME
 * is a resource name (validate.h name_valid); HASH is what
 * crypto_pwhash_str writes ("$argon2id$…"), or anything else — empty, "!"
 * — for a user who cannot log in with a password.  A missing file holds no
 * users.  A malformed line (bad name, no ':', a duplicate name, a NUL byte)
 * makes the whole file unusable until it is fixed: every lookup fails with
 * PASSWD_ERR_FORMAT rather than guess what the administrator meant.
 *
 * Invariants:
 *   - the file is re-read when, and only when, its inode, size or mtime
 *     changed since it was last read or written by us (an in-place edit
 *     that keeps the size within one tick of the file system's clock goes
 *     unnoticed until the next change; editors that save by rename, and
 *     our own writes, always change the inode);
 *   - it is only ever replaced whole (temporary file in the same
 *     directory, mode 0600, fsync, rename): a reader sees the old or the
 *     new file, never a partial one; we never rewrite a file we could not
 *     parse;
 *   - passwd_verify takes about the same time whether or not the user
 *     exists or has a usable hash: it always runs one argon2id verification
 *     (against a dummy hash when there is nothing real to check).
 *
 * Not thread-safe: one caller at a time per struct passwd_file.
 */
#ifndef HC_AUTH_PASSWORD_H
#define HC_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Room for a hash string with its NUL (crypto_pwhash_STRBYTES). */
#define PASSWORD_HASH_LEN 128
/* Longest password we hash; longer ones are refused, not truncated. */
#define PASSWORD_MAX 1024

enum passwd_status {
	PASSWD_OK = 0,
	PASSWD_ERR_SYSTEM = -1,    /* I/O or allocation failure; errno is set */
	PASSWD_ERR_FORMAT = -2,    /* the file has a malformed line (passwd_error_line) */
	PASSWD_ERR_NAME = -3,      /* the user name is not a valid name */
	PASSWD_ERR_NOUSER = -4,    /* no such user */
	PASSWD_ERR_DENIED = -5,    /* wrong password, unknown user or no usable hash */
	PASSWD_ERR_PASSWORD = -6,  /* a password we refuse to set: empty or too long */
	PASSWD_ERR_HASH = -7,      /* a hash string that is not argon2id or has ':' */
};

/* A short English phrase for a status, for error messages. */
const char *passwd_strerror(int status);

/*
 * The argon2id cost of new hashes.  Defaults to libsodium's
 * OPSLIMIT_INTERACTIVE / MEMLIMIT_INTERACTIVE; unit tests lower it to the
 * minimum so they run fast.  Verification reads the cost from the hash
 * itself, so changing this never breaks existing hashes.
 */
void password_set_limits(unsigned long long opslimit, size_t memlimit);

/* Hash a password with a fresh salt.  0, or -1 (empty or too long, or out
 * of memory). */
int password_hash(const char *password, char out[PASSWORD_HASH_LEN]);

/* True when password matches hash (an argon2id string). */
bool password_verify(const char *hash, const char *password);

/* True when hash was made with other limits than the current ones: the
 * caller may re-hash after a successful login. */
bool password_needs_rehash(const char *hash);

struct passwd_file;

/* Remember the path and read the file if it exists.  NULL (errno set) only
 * when out of memory; a file that cannot be read or parsed shows up as the
 * status of the first lookup. */
struct passwd_file *passwd_open(const char *path);
void passwd_close(struct passwd_file *pf);

/* Re-read the file when it changed on disk.  PASSWD_OK, _FORMAT or _SYSTEM. */
int passwd_reload(struct passwd_file *pf);

/* 1-based line number of the malformed line after PASSWD_ERR_FORMAT. */
unsigned passwd_error_line(const struct passwd_file *pf);

/* Copy a user's hash (reloading first when the file changed).
 * PASSWD_OK, _NOUSER, _NAME, _FORMAT or _SYSTEM. */
int passwd_lookup(struct passwd_file *pf, const char *name, char hash[PASSWORD_HASH_LEN]);

/* Check a user's password.  PASSWD_OK or PASSWD_ERR_DENIED (the two cases
 * a client may learn about), or _FORMAT / _SYSTEM when the file is broken. */
int passwd_verify(struct passwd_file *pf, const char *name, const char *password);

/*
 * The hash a check of name's password runs against, for callers that run
 * the (slow) verification elsewhere, e.g. on another thread with
 * password_verify: the user's own hash when it is usable, else the dummy
 * one of the same cost, which no password matches.  True when it is the
 * user's own.  (passwd_verify in two halves; a broken file gives the dummy.)
 */
bool passwd_hash_for(struct passwd_file *pf, const char *name, char hash[PASSWORD_HASH_LEN]);

/* Set (add or replace) a user's password, hashing it, and rewrite the file.
 * PASSWD_OK, _NAME, _PASSWORD, _FORMAT or _SYSTEM. */
int passwd_set(struct passwd_file *pf, const char *name, const char *password);

/* The same with a ready hash (made earlier by password_hash).
 * PASSWD_ERR_HASH when hash is not an argon2id string. */
int passwd_set_hash(struct passwd_file *pf, const char *name, const char *hash);

/* Remove a user and rewrite the file.  PASSWD_OK, _NOUSER, _NAME, _FORMAT
 * or _SYSTEM. */
int passwd_remove(struct passwd_file *pf, const char *name);

/* Call fn for each user name in file order (after a reload).  The status of
 * the reload. */
int passwd_foreach(struct passwd_file *pf, void (*fn)(void *ctx, const char *name), void *ctx);

#endif
