/*
 * seal — authenticated encryption of small secrets (users' TOTP secrets)
 * under a key kept in a file of this host, so that a copy of the database
 * alone does not yield them.  XSalsa20-Poly1305 (libsodium secretbox).
 *
 * Invariants:
 *   - the key file holds exactly SEAL_KEY_LEN bytes, is a regular file and
 *     gives no access to group or others; anything else is refused, never
 *     repaired or replaced (replacing it would lose every sealed secret);
 *   - a missing key file is created whole or not at all: it is written
 *     under a temporary name and linked into place, so a crash cannot leave
 *     a short key behind, and two processes racing agree on one key;
 *   - sealed text is base64 of nonce || ciphertext+tag with a fresh random
 *     nonce each time; any change to it makes seal_decrypt fail;
 *   - buffers that held keys or plaintext are wiped before they are freed.
 */
#ifndef HC_AUTH_SEAL_H
#define HC_AUTH_SEAL_H

#include <stddef.h>

#define SEAL_KEY_LEN 32
/* Sealed secrets are small; longer input is refused. */
#define SEAL_PLAIN_MAX 4096

/*
 * Read the key from path, creating the file (mode 0600) with a random key
 * when it does not exist.  0, or -1 with a one-line reason in *err
 * (malloc'd; the caller frees it).
 */
int seal_key_load(const char *path, unsigned char key[SEAL_KEY_LEN], char **err);

/* Seal plain (len bytes).  malloc'd NUL-terminated base64; NULL when len
 * exceeds SEAL_PLAIN_MAX or out of memory. */
char *seal_encrypt(const unsigned char key[SEAL_KEY_LEN], const void *plain, size_t len);

/*
 * Open text sealed by seal_encrypt under the same key.  0 with *out (len
 * bytes, plus a NUL for convenience, malloc'd) — wipe it with
 * sodium_memzero and free it when done; -1 when the text is malformed,
 * tampered with or sealed under another key.
 */
int seal_decrypt(const unsigned char key[SEAL_KEY_LEN], const char *text, unsigned char **out,
		 size_t *len);

#endif
