/* seal — see seal.h. */
#include "auth/seal.h"

#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_LEN crypto_secretbox_NONCEBYTES
#define MAC_LEN   crypto_secretbox_MACBYTES

_Static_assert(SEAL_KEY_LEN == crypto_secretbox_KEYBYTES, "secretbox key size");

static int fail(char **err, const char *what, const char *path)
{
	if (err)
		*err = str_printf("%s: %s%s%s", path, what, errno ? ": " : "",
				  errno ? strerror(errno) : "");
	return -1;
}

/* Read exactly SEAL_KEY_LEN bytes from an existing key file after checking
 * what it is. */
static int key_read(const char *path, unsigned char key[SEAL_KEY_LEN], char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned char buf[SEAL_KEY_LEN + 1];
	struct stat st;
	size_t n = 0;
	int rc = -1;

	if (fd < 0)
		return fail(err, "cannot open the key file", path);
	if (fstat(fd, &st) < 0) {
		fail(err, "cannot stat the key file", path);
		goto out;
	}
	errno = 0;
	if (!S_ISREG(st.st_mode)) {
		fail(err, "the key file is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		fail(err, "the key file is accessible to group or others (chmod 600 it)", path);
		goto out;
	}
	if (st.st_size != SEAL_KEY_LEN) {
		fail(err, "the key file does not hold exactly 32 bytes", path);
		goto out;
	}
	/* Read one byte more than we want to notice a file that grew. */
	while (n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(err, "cannot read the key file", path);
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	errno = 0;
	if (n != SEAL_KEY_LEN) {
		fail(err, "the key file does not hold exactly 32 bytes", path);
		goto out;
	}
	memcpy(key, buf, SEAL_KEY_LEN);
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* Write a new random key under a temporary name, then link it to path:
 * link fails with EEXIST when another process was first, and then we use
 * its key.  1 when created, 0 when someone else's appeared, -1 on errors. */
static int key_create(const char *path, char **err)
{
	unsigned char key[SEAL_KEY_LEN];
	char *tmp = str_printf("%s.new.%ld", path, (long)getpid());
	const unsigned char *p = key;
	size_t left = sizeof(key);
	int fd, rc = -1;

	if (tmp == NULL)
		return fail(err, "out of memory", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fail(err, "cannot create the key file", tmp);
		free(tmp);
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fail(err, "cannot write the key file", tmp);
			goto out;
		}
		p += w;
		left -= (size_t)w;
	}
	/* A umask could have narrowed 0600 but never widened it; set it
	 * anyway so the file is exactly what key_read accepts. */
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		fail(err, "cannot write the key file", tmp);
		goto out;
	}
	if (link(tmp, path) == 0)
		rc = 1;
	else if (errno == EEXIST)
		rc = 0;
	else
		fail(err, "cannot create the key file", path);
out:
	sodium_memzero(key, sizeof(key));
	close(fd);
	unlink(tmp);
	free(tmp);
	return rc;
}

int seal_key_load(const char *path, unsigned char key[SEAL_KEY_LEN], char **err)
{
	if (err)
		*err = NULL;
	if (sodium_init() < 0) {
		errno = 0;
		return fail(err, "libsodium cannot start", path);
	}
	if (access(path, F_OK) < 0 && errno == ENOENT && key_create(path, err) < 0)
		return -1;
	return key_read(path, key, err);
}

char *seal_encrypt(const unsigned char key[SEAL_KEY_LEN], const void *plain, size_t len)
{
	size_t box_len = NONCE_LEN + MAC_LEN + len;
	size_t b64_len = sodium_base64_ENCODED_LEN(box_len, sodium_base64_VARIANT_ORIGINAL);
	unsigned char *box;
	char *text;

	if (len > SEAL_PLAIN_MAX || sodium_init() < 0)
		return NULL;
	box = malloc(box_len);
	text = malloc(b64_len);
	if (box == NULL || text == NULL) {
		free(box);
		free(text);
		return NULL;
	}
	randombytes_buf(box, NONCE_LEN);
	crypto_secretbox_easy(box + NONCE_LEN, plain, len, box, key);
	sodium_bin2base64(text, b64_len, box, box_len, sodium_base64_VARIANT_ORIGINAL);
	free(box);              /* ciphertext only: nothing secret to wipe */
	return text;
}

int seal_decrypt(const unsigned char key[SEAL_KEY_LEN], const char *text, unsigned char **out,
		 size_t *len)
{
	size_t text_len = strlen(text);
	size_t cap = text_len / 4 * 3 + 3, box_len = 0;
	unsigned char *box, *plain;
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (sodium_init() < 0 || cap > NONCE_LEN + MAC_LEN + SEAL_PLAIN_MAX + 3)
		return -1;
	box = malloc(cap);
	if (box == NULL)
		return -1;
	if (sodium_base642bin(box, cap, text, text_len, NULL, &box_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    box_len < NONCE_LEN + MAC_LEN) {
		free(box);
		return -1;
	}
	plain = malloc(box_len - NONCE_LEN - MAC_LEN + 1);
	if (plain != NULL &&
	    crypto_secretbox_open_easy(plain, box + NONCE_LEN, box_len - NONCE_LEN, box, key) == 0) {
		*len = box_len - NONCE_LEN - MAC_LEN;
		plain[*len] = '\0';
		*out = plain;
		rc = 0;
	} else {
		free(plain);
	}
	free(box);
	return rc;
}
