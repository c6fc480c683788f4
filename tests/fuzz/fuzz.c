/* fuzz — see fuzz.h. */
#include "fuzz.h"

#include "common/fsutil.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char scratch[128];
static pid_t scratch_owner;

static void scratch_remove(void)
{
	/* A forked child (a helper process of the code under test) must not
	 * remove its parent's directory when it exits. */
	if (scratch[0] && getpid() == scratch_owner)
		dir_remove_tree(scratch);
}

const char *fuzz_dir(const char *name)
{
	if (scratch[0])
		return scratch;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(scratch, sizeof(scratch), "%s/hc-fuzz-%s-XXXXXX", base, name);
	if (mkdtemp(scratch) == NULL) {
		perror(scratch);
		abort();
	}
	scratch_owner = getpid();
	atexit(scratch_remove);
	return scratch;
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void fuzz_write(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (size > 0) {
		ssize_t w = write(fd, p, size);
		if (w <= 0) {
			perror(path);
			abort();
		}
		p += w;
		size -= (size_t)w;
	}
	close(fd);
}

char *fuzz_line(struct fuzz_in *in)
{
	const char *nl;
	char *s;
	size_t n;

	if (in->p >= in->end)
		return NULL;
	nl = memchr(in->p, '\n', (size_t)(in->end - in->p));
	n = nl ? (size_t)(nl - in->p) : (size_t)(in->end - in->p);
	s = fuzz_cstr((const uint8_t *)in->p, n);
	in->p += n + (nl ? 1 : 0);
	return s;
}

long long fuzz_num(struct fuzz_in *in, long long lo, long long hi)
{
	char *s = fuzz_line(in);
	unsigned long long v, span = (unsigned long long)hi - (unsigned long long)lo + 1;

	if (s == NULL)
		return lo;
	v = strtoull(s, NULL, 10);
	free(s);
	/* span 0: [lo, hi] is the whole range of long long. */
	return (long long)((unsigned long long)lo + (span ? v % span : v));
}

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s:%d: FUZZ_ASSERT(%s) failed: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
