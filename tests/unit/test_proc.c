/*
 * Unit tests for common/proc's fork pause: a descriptor opened and closed
 * between proc_forks_pause and proc_forks_resume is never copied into a
 * child, however busy another thread is forking (proc_run in a loop) —
 * what net/tap.c relies on when it creates a tap (a copy would keep the
 * tap attached, and the launch that opens it next would get EBUSY).  The
 * test's own pipe stands for the tap: its read end sees EOF at once only
 * when no copy of the write end lives anywhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/proc.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define ROUNDS 3000

static atomic_int stop, forks;

static void *forker(void *arg)
{
	char *argv[] = { "true", NULL };

	(void)arg;
	while (!atomic_load(&stop)) {
		proc_run(argv, 0, NULL, 0, false);
		atomic_fetch_add(&forks, 1);
	}
	return NULL;
}

static void test_no_copy_while_paused(void **state)
{
	pthread_t t;
	int copied = 0;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, forker, NULL), 0);
	while (atomic_load(&forks) < 5)
		usleep(1000);
	for (int i = 0; i < ROUNDS; i++) {
		int p[2];
		proc_forks_pause();
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		usleep(50);     /* a tap's creation takes a few system calls */
		close(p[1]);
		proc_forks_resume();
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		char c;
		if (poll(&pfd, 1, 0) != 1 || read(p[0], &c, 1) != 0)
			copied++;
		close(p[0]);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	print_message("%d rounds, %d forks beside them, %d copies seen\n", ROUNDS,
		      atomic_load(&forks), copied);
	assert_true(atomic_load(&forks) > 10);
	assert_int_equal(copied, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_copy_while_paused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
