/*
 * worker — a small pool of threads for the slow steps that must not run
 * on hcd's event loop (DESIGN §3): password hashing, LDAP binds, hashing
 * and checking uploads, qemu-img, building seed ISOs.
 *
 * A job is two functions and an argument:
 *   work(arg)      runs on a pool thread.  It must not touch the store,
 *                  libmicrohttpd or anything else the loop owns: it reads
 *                  what the job carries and writes its result back into
 *                  the job.
 *   done(arg, ran) runs on the loop thread, inside worker_pool_run(),
 *                  after work has returned (ran = true), or when the pool
 *                  is freed before the job started (ran = false: work never
 *                  ran).  It is called exactly once per submitted job and
 *                  owns arg from then on (typically: store the result,
 *                  resume a suspended request, free the job).
 *
 * The loop polls worker_pool_fd() for input and calls worker_pool_run()
 * when it is readable.  Jobs run in submission order per thread pick-up;
 * their done callbacks run in completion order.
 */
#ifndef HC_WORKER_H
#define HC_WORKER_H

#include <stdbool.h>
#include <stddef.h>

struct worker_pool;

typedef void (*worker_fn)(void *arg);
typedef void (*worker_done_fn)(void *arg, bool ran);

/* threads >= 1.  NULL and a malloc'd message on failure. */
struct worker_pool *worker_pool_new(int threads, char **err);
/* Waits for the jobs that are running, then calls done(arg, false) for
 * those that never started and done(arg, true) for finished ones whose
 * done had not run yet.  NULL is fine. */
void worker_pool_free(struct worker_pool *p);
/* Queue a job.  0, or -1 (out of memory, or the pool is stopping): then
 * nothing was queued and neither function will be called. */
int worker_submit(struct worker_pool *p, worker_fn work, worker_done_fn done, void *arg);
/* Readable when finished jobs wait for their done callback. */
int worker_pool_fd(const struct worker_pool *p);
/* Never blocks: runs the done callbacks of every finished job. */
void worker_pool_run(struct worker_pool *p);
/* Jobs submitted whose done has not run yet (queued, running or finished). */
size_t worker_pool_pending(const struct worker_pool *p);

#endif
