/* fuzz — see fuzz.h. */
#include "fuzz.h"

#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Directories of earlier harness processes that died without their
 * atexit (a crash aborts): "hc-fuzz-NAME-PID" whose PID is gone. */
static void remove_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		const char *dash = strrchr(de->d_name, '-');
		char *end;
		if (strncmp(de->d_name, "hc-fuzz-", 8) != 0 || dash == NULL)
			continue;
		long pid = strtol(dash + 1, &end, 10);
		if (*end != '\0' || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
			char *path = str_printf("%s/%s", base, de->d_name);
			if (path)
				dir_remove_tree(path);
			free(path);
		}
	}
	closedir(d);
}

const char *fuzz_dir(const char *name)
{
	if (scratch[0])
		return scratch;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	remove_stale(base);
	snprintf(scratch, sizeof(scratch), "%s/hc-fuzz-%s-%ld", base, name, (long)getpid());
	dir_remove_tree(scratch);
	if (mkdir(scratch, 0700) < 0) {
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
