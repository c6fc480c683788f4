/*
 * fuzz — what every libFuzzer harness in tests/fuzz shares: a private
 * scratch directory on tmpfs, NUL-terminated copies of the input, and the
 * way a harness reports a broken promise (abort, so libFuzzer keeps the
 * input as a crash).
 *
 * A harness is one file with LLVMFuzzerTestOneInput (and, when it needs
 * set-up, LLVMFuzzerInitialize).  It must be deterministic enough that a
 * crash input replays, must free everything it allocates on every path
 * (LeakSanitizer runs after each input), and must check a property of the
 * result, not only survive: a parser that accepts must yield something
 * that parses back the same.
 */
#ifndef HC_FUZZ_H
#define HC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The harness entry points (libFuzzer's names). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A scratch directory for this process ("/dev/shm/hc-fuzz-NAME-PID", else
 * under /tmp), made on the first call and removed at exit; the ones of
 * harness processes that crashed are removed by the next one. */
const char *fuzz_dir(const char *name);

/* A malloc'd copy of data with a NUL appended (inner NULs stay: C string
 * functions then see a prefix, as they would of such input). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* Replace path with exactly these bytes; aborts when it cannot. */
void fuzz_write(const char *path, const void *data, size_t size);

/*
 * Text inputs read line by line, so that seeds stay readable and a
 * mutation of one field leaves the others where they were.
 */
struct fuzz_in {
	const char *p, *end;
};
/* The next line without its newline (malloc'd, may be ""), or NULL once
 * the input is used up. */
char *fuzz_line(struct fuzz_in *in);
/* The next line as a decimal number folded into [lo, hi]; lo when none. */
long long fuzz_num(struct fuzz_in *in, long long lo, long long hi);

/* A broken promise: print what and where, then abort. */
#define FUZZ_ASSERT(cond, ...)                                                  \
	do {                                                                    \
		if (!(cond))                                                    \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);      \
	} while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
