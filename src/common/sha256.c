/* sha256 — see sha256.h. */
#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

void sha256_begin(struct sha256_stream *st)
{
	sha256_init(&st->ctx);
}

void sha256_feed(struct sha256_stream *st, const void *data, size_t len)
{
	sha256_update(&st->ctx, len, data);
}

long long sha256_update_fd(struct sha256_stream *st, int fd, long long len)
{
	unsigned char buf[1 << 16];
	long long done = 0;

	while (len < 0 || done < len) {
		size_t want = sizeof(buf);
		if (len >= 0 && (long long)want > len - done)
			want = (size_t)(len - done);
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		sha256_feed(st, buf, (size_t)n);
		done += n;
	}
	return done;
}

void sha256_final_hex(struct sha256_stream *st, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char digest[SHA256_DIGEST_SIZE];

	sha256_digest(&st->ctx, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

int sha256_file(const char *path, char hex[SHA256_HEX_LEN + 1], long long *size)
{
	struct sha256_stream st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long long n;

	if (fd < 0)
		return -1;
	sha256_begin(&st);
	n = sha256_update_fd(&st, fd, -1);
	int saved = errno;
	close(fd);
	if (n < 0) {
		errno = saved;
		return -1;
	}
	*size = n;
	sha256_final_hex(&st, hex);
	return 0;
}
