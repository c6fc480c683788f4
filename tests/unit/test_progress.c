/*
 * test_progress — how hc shows a transfer's progress (src/cli/progress.h):
 * off a terminal, plain "LABEL: N%" lines at most every PROGRESS_STEP
 * percent, 100% exactly once and nothing while the total is unknown; on a
 * terminal, one line redrawn in place with a bar, only when the
 * percentage changes, finished by a newline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/progress.h"

#include <stdlib.h>
#include <string.h>

/* Render every step of a transfer; return everything printed. */
static char *run(struct progress *p, long long total, long long step)
{
	size_t len = 0;
	char *all = calloc(1, 1);

	for (long long done = 0;; done += step) {
		if (total >= 0 && done > total)
			done = total;
		char *t = progress_render(p, done, total);
		if (t) {
			all = realloc(all, len + strlen(t) + 1);
			strcpy(all + len, t);
			len += strlen(t);
			free(t);
		}
		if (done == total || (total < 0 && done >= 10 * step))
			break;
	}
	return all;
}

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void plain_lines_every_few_percent(void **state)
{
	(void)state;
	struct progress p;
	char *out;

	progress_init(&p, "alpine", false);
	/* 1000 updates of 0.1 % each: 21 lines (0, 5, …, 100). */
	out = run(&p, 1000000, 1000);
	assert_int_equal(count(out, "\n"), 100 / PROGRESS_STEP + 1);
	assert_true(strncmp(out, "alpine: 0%\nalpine: 5%\nalpine: 10%\n", 34) == 0);
	assert_int_equal(count(out, "alpine: 100%\n"), 1);
	assert_non_null(strstr(out, "alpine: 95%\nalpine: 100%\n"));
	/* no terminal control characters in a log */
	assert_null(strchr(out, '\r'));
	assert_null(strchr(out, '\033'));
	free(out);
	/* nothing to finish off a terminal */
	progress_end(&p, stdout);
	assert_false(p.on_screen);
}

static void plain_lines_big_jumps_and_repeats(void **state)
{
	(void)state;
	struct progress p;
	char *t;

	progress_init(&p, "d", false);
	t = progress_render(&p, 3, 100);
	assert_string_equal(t, "d: 3%\n");
	free(t);
	assert_null(progress_render(&p, 7, 100));   /* under a step since 3 % */
	t = progress_render(&p, 64, 100);            /* a jump prints where it is */
	assert_string_equal(t, "d: 64%\n");
	free(t);
	assert_null(progress_render(&p, 64, 100));
	t = progress_render(&p, 99 * 100 + 99, 100 * 100); /* 99 %, not rounded up */
	assert_string_equal(t, "d: 99%\n");
	free(t);
	t = progress_render(&p, 100, 100);
	assert_string_equal(t, "d: 100%\n");
	free(t);
	assert_null(progress_render(&p, 100, 100));  /* 100 % once */
}

static void plain_unknown_total_is_silent(void **state)
{
	(void)state;
	struct progress p;

	progress_init(&p, "d", false);
	char *out = run(&p, -1, 4096);
	assert_string_equal(out, "");
	free(out);
	/* once the total is known, lines start */
	char *t = progress_render(&p, 50, 100);
	assert_string_equal(t, "d: 50%\n");
	free(t);
	/* an empty transfer is complete */
	progress_init(&p, "e", false);
	t = progress_render(&p, 0, 0);
	assert_string_equal(t, "e: 100%\n");
	free(t);
}

static void terminal_line_redrawn_in_place(void **state)
{
	(void)state;
	struct progress p;
	char *t;

	progress_init(&p, "disk", true);
	t = progress_render(&p, 512 * 1024, 1024 * 1024);
	assert_non_null(t);
	assert_int_equal(t[0], '\r');
	assert_non_null(strstr(t, "disk ["));
	assert_non_null(strstr(t, " 50%"));
	assert_non_null(strstr(t, "512.0 KiB of 1.0 MiB"));
	assert_int_equal(count(t, "#"), PROGRESS_BAR / 2);
	assert_null(strchr(t, '\n'));
	free(t);
	assert_null(progress_render(&p, 512 * 1024 + 1, 1024 * 1024)); /* same percent */
	t = progress_render(&p, 1024 * 1024, 1024 * 1024);
	assert_int_equal(count(t, "#"), PROGRESS_BAR);
	assert_non_null(strstr(t, "100%"));
	free(t);
	assert_true(p.on_screen);

	/* unknown total: the bytes so far, redrawn when they change */
	progress_init(&p, "disk", true);
	t = progress_render(&p, 2048, -1);
	assert_non_null(strstr(t, "\rdisk: 2.0 KiB"));
	free(t);
	assert_null(progress_render(&p, 2048, -1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_lines_every_few_percent),
		cmocka_unit_test(plain_lines_big_jumps_and_repeats),
		cmocka_unit_test(plain_unknown_total_is_silent),
		cmocka_unit_test(terminal_line_redrawn_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
