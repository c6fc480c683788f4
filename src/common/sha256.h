/*
 * sha256 — SHA-256 of files and of byte streams, hex-encoded.
 *
 * A stream is hashed as it is written (an upload or an import computes the
 * checksum on the fly, never reading the file twice); a resumed stream
 * first hashes what an earlier run already wrote, then goes on from there,
 * and ends with the same digest as one pass over the whole.
 *
 * Nettle does the hashing: uploads are hashed on hcd's loop as they
 * arrive, and nettle uses the CPU's SHA instructions where there are any
 * (measured here: 684 MB/s, against 119–214 MB/s for libsodium's portable
 * code — docs/BENCHMARKS.md).  A stream is a plain struct: nothing to free.
 */
#ifndef HC_SHA256_H
#define HC_SHA256_H

#include <nettle/sha2.h>
#include <stddef.h>
#include <sys/types.h>

#define SHA256_HEX_LEN 64

struct sha256_stream {
	struct sha256_ctx ctx;
};

void sha256_begin(struct sha256_stream *st);
void sha256_feed(struct sha256_stream *st, const void *data, size_t len);

/* Feed up to `len` bytes read from fd's current offset into st (len < 0:
 * until end of file).  Returns the bytes hashed, or -1 with errno set on a
 * read error; fewer than len means the file ended early. */
long long sha256_update_fd(struct sha256_stream *st, int fd, long long len);

/* Finish st into 64 lowercase hex digits. */
void sha256_final_hex(struct sha256_stream *st, char hex[SHA256_HEX_LEN + 1]);

/* SHA-256 and size of a whole file; -1 with errno set when unreadable. */
int sha256_file(const char *path, char hex[SHA256_HEX_LEN + 1], long long *size);

#endif
