/*
 * sha256 — SHA-256 of files and of byte streams (libsodium), hex-encoded.
 *
 * A stream is hashed as it is written (an import computes the checksum on
 * the fly, never reading the file twice); a resumed stream first hashes
 * what an earlier run already wrote, then goes on from there, and ends
 * with the same digest as one pass over the whole.
 */
#ifndef HC_SHA256_H
#define HC_SHA256_H

#include <sodium.h>
#include <sys/types.h>

#define SHA256_HEX_LEN 64

/* Feed up to `len` bytes read from fd's current offset into st (len < 0:
 * until end of file).  Returns the bytes hashed, or -1 with errno set on a
 * read error; fewer than len means the file ended early. */
long long sha256_update_fd(crypto_hash_sha256_state *st, int fd, long long len);

/* Finish st into 64 lowercase hex digits. */
void sha256_final_hex(crypto_hash_sha256_state *st, char hex[SHA256_HEX_LEN + 1]);

/* SHA-256 and size of a whole file; -1 with errno set when unreadable. */
int sha256_file(const char *path, char hex[SHA256_HEX_LEN + 1], long long *size);

#endif
