/* worker — see worker.h.
 *
 * One mutex guards two singly linked FIFO lists: `queued` (not started)
 * and `finished` (work returned, done not yet called).  Threads take from
 * the head of `queued`; the loop swaps out the whole `finished` list under
 * the lock and calls the done callbacks without it, so a done callback may
 * submit new jobs.  An eventfd counts finished jobs for the loop's poll.
 */
#include "common/worker.h"

#include "common/fsutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
	worker_fn work;
	worker_done_fn done;
	void *arg;
	struct job *next;
};

struct job_list {
	struct job *head, *tail;
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t more;       /* a job was queued, or the pool stops */
	struct job_list queued, finished;
	bool stopping;
	size_t pending;            /* touched only by the loop thread */
	int efd;
	pthread_t *threads;
	int n_threads;
};

static void list_push(struct job_list *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct job *list_pop(struct job_list *l)
{
	struct job *j = l->head;

	if (j) {
		l->head = j->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return j;
}

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->queued.head == NULL && !p->stopping)
			pthread_cond_wait(&p->more, &p->lock);
		if (p->stopping)
			break;
		struct job *j = list_pop(&p->queued);
		pthread_mutex_unlock(&p->lock);
		j->work(j->arg);
		pthread_mutex_lock(&p->lock);
		list_push(&p->finished, j);
		uint64_t one = 1;
		/* An eventfd write of 1 fails only at the counter's maximum. */
		(void)!write(p->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct worker_pool *worker_pool_new(int threads, char **err)
{
	struct worker_pool *p = calloc(1, sizeof(*p));

	if (p == NULL || threads < 1) {
		*err = strdup(p ? "a worker pool needs at least one thread" : "out of memory");
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->threads = calloc((size_t)threads, sizeof(*p->threads));
	if (p->efd < 0 || p->threads == NULL) {
		*err = str_printf("worker pool: %s", strerror(errno ? errno : ENOMEM));
		worker_pool_free(p);
		return NULL;
	}
	for (int i = 0; i < threads; i++) {
		int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
		if (rc != 0) {
			*err = str_printf("worker pool: thread: %s", strerror(rc));
			worker_pool_free(p);
			return NULL;
		}
		p->n_threads++;
	}
	return p;
}

void worker_pool_free(struct worker_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	worker_pool_run(p);
	struct job *j;
	while ((j = list_pop(&p->queued)) != NULL) {
		p->pending--;
		j->done(j->arg, false);
		free(j);
	}
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->more);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

int worker_submit(struct worker_pool *p, worker_fn work, worker_done_fn done, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (j == NULL)
		return -1;
	*j = (struct job){ .work = work, .done = done, .arg = arg };
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -1;
	}
	list_push(&p->queued, j);
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->lock);
	p->pending++;
	return 0;
}

int worker_pool_fd(const struct worker_pool *p)
{
	return p ? p->efd : -1;
}

void worker_pool_run(struct worker_pool *p)
{
	uint64_t n;
	struct job_list done;

	if (p == NULL)
		return;
	(void)!read(p->efd, &n, sizeof(n));
	pthread_mutex_lock(&p->lock);
	done = p->finished;
	p->finished = (struct job_list){ 0 };
	pthread_mutex_unlock(&p->lock);
	struct job *j;
	while ((j = list_pop(&done)) != NULL) {
		p->pending--;
		j->done(j->arg, true);
		free(j);
	}
}

size_t worker_pool_pending(const struct worker_pool *p)
{
	return p ? p->pending : 0;
}
