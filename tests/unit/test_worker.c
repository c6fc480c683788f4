/*
 * Unit tests for common/worker: every job's work runs off the calling
 * thread, its done runs exactly once on the thread that calls
 * worker_pool_run, and freeing the pool completes jobs that never ran.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/worker.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct sq_job {
	int in;
	int out;
	pthread_t worked_on;
	int done_calls;
	bool ran;
	atomic_int *gate;        /* work waits while *gate == 0 (NULL: no wait) */
	atomic_int started;      /* work has begun */
};

static void square(void *arg)
{
	struct sq_job *j = arg;

	atomic_store(&j->started, 1);
	while (j->gate && atomic_load(j->gate) == 0)
		usleep(1000);
	j->worked_on = pthread_self();
	j->out = j->in * j->in;
}

static void sq_done(void *arg, bool ran)
{
	struct sq_job *j = arg;

	j->done_calls++;
	j->ran = ran;
}

/* Wait (bounded) for the pool's fd, then run what finished. */
static void drain(struct worker_pool *p, size_t until_pending)
{
	for (int i = 0; i < 5000 && worker_pool_pending(p) > until_pending; i++) {
		struct pollfd pfd = { .fd = worker_pool_fd(p), .events = POLLIN };
		if (poll(&pfd, 1, 10) > 0)
			worker_pool_run(p);
	}
}

static void jobs_run_off_the_loop_and_complete_once(void **state)
{
	char *err = NULL;
	struct worker_pool *p = worker_pool_new(3, &err);
	struct sq_job jobs[50] = { 0 };

	assert_non_null(p);
	for (int i = 0; i < 50; i++) {
		jobs[i].in = i;
		assert_int_equal(worker_submit(p, square, sq_done, &jobs[i]), 0);
	}
	assert_true(worker_pool_pending(p) > 0);
	drain(p, 0);
	assert_int_equal(worker_pool_pending(p), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(jobs[i].out, i * i);
		assert_int_equal(jobs[i].done_calls, 1);
		assert_true(jobs[i].ran);
		assert_false(pthread_equal(jobs[i].worked_on, pthread_self()));
	}
	/* Nothing finished: run is a no-op and the fd is not readable. */
	worker_pool_run(p);
	struct pollfd pfd = { .fd = worker_pool_fd(p), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 0), 0);
	worker_pool_free(p);
	for (int i = 0; i < 50; i++)
		assert_int_equal(jobs[i].done_calls, 1);
}

/* One thread held by a gated job: the jobs queued behind it never start,
 * and freeing the pool still calls each done once, with ran = false. */
static void free_completes_jobs_that_never_ran(void **state)
{
	char *err = NULL;
	struct worker_pool *p = worker_pool_new(1, &err);
	atomic_int gate = 0;
	struct sq_job first = { .in = 3, .gate = &gate };
	struct sq_job rest[5] = { 0 };

	assert_non_null(p);
	assert_int_equal(worker_submit(p, square, sq_done, &first), 0);
	for (int i = 0; i < 5; i++) {
		rest[i].in = i;
		assert_int_equal(worker_submit(p, square, sq_done, &rest[i]), 0);
	}
	/* The thread must hold the gated job before the pool stops, or that
	 * job too would be dropped (a sleep here made the test flaky). */
	for (int i = 0; i < 10000 && !atomic_load(&first.started); i++)
		usleep(1000);
	assert_true(atomic_load(&first.started));
	atomic_store(&gate, 1);
	worker_pool_free(p);
	assert_int_equal(first.done_calls, 1);
	assert_int_equal(first.out, 9);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(rest[i].done_calls, 1);
		/* Either it slipped in before the stop or it was dropped: never both. */
		assert_true(rest[i].ran ? rest[i].out == i * i : rest[i].out == 0);
	}
}

static void zero_threads_is_refused(void **state)
{
	char *err = NULL;

	assert_null(worker_pool_new(0, &err));
	assert_non_null(err);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jobs_run_off_the_loop_and_complete_once),
		cmocka_unit_test(free_completes_jobs_that_never_ran),
		cmocka_unit_test(zero_threads_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
