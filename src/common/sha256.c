/* sha256 — see sha256.h. */
#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

long long sha256_update_fd(crypto_hash_sha256_state *st, int fd, long long len)
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
		crypto_hash_sha256_update(st, buf, (unsigned long long)n);
		done += n;
	}
	return done;
}

void sha256_final_hex(crypto_hash_sha256_state *st, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_final(st, digest);
	sodium_bin2hex(hex, SHA256_HEX_LEN + 1, digest, sizeof(digest));
}

int sha256_file(const char *path, char hex[SHA256_HEX_LEN + 1], long long *size)
{
	crypto_hash_sha256_state st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long long n;

	if (fd < 0)
		return -1;
	crypto_hash_sha256_init(&st);
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
