/*
 * trigbench — trigger latency of the store, for bench/triggers.sh.  Not
 * part of the product.
 *
 *   trigbench [-n WRITES] STORE_URI STATE_DIR
 *
 * Two store handles on one database, as two hosts would have: a writer
 * (this process) and a listener (a child process, so that it waits in
 * poll() while the writer waits for its COMMIT, as another hcd would).
 * The writer changes a VM's desired state WRITES times (200), one
 * transaction each, and for every write takes three times on the same
 * monotonic clock:
 *
 *   t0  before store_vm_set_desired
 *   t1  when it returned (committed)
 *   t2  when the listener's store_notify_fd turned readable and
 *       store_notify_drain counted the announcement (the child sends t2
 *       through a pipe)
 *
 * and prints one line per write, "write <t1-t0> trigger <t2-t0> after
 * <t2-t1>" in microseconds (after may be negative: the listener can hear
 * of the commit before the writer has read the server's answer).  Then,
 * as the baseline, the same UPDATE WRITES times in transactions that are
 * not announced (store_q: no change of intent as far as the store
 * knows): "quiet <t1-t0>".
 */
#include "store/store.h"
#include "store/store_internal.h" /* white-box: an unannounced write */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "trigbench: %s failed\n", what);
	exit(1);
}

static struct store *open_store(const char *uri, const char *dir)
{
	char *err = NULL;
	struct store *st = store_open(uri, dir, &err);

	if (st == NULL) {
		fprintf(stderr, "trigbench: %s: %s\n", uri, err ? err : "?");
		exit(1);
	}
	free(err);
	return st;
}

/* The listener: for every announcement, the time it was drained, until
 * the writer closes its end of the ready pipe. */
static int listen_loop(const char *uri, const char *dir, int ready_fd, int out_fd)
{
	struct store *st = open_store(uri, dir);
	struct pollfd p[2];
	char go = 1;

	if (store_notify_fd(st) < 0)
		die("store_notify_fd (is this PostgreSQL?)");
	/* Listening now: the writer may start. */
	if (write(ready_fd, &go, 1) != 1)
		die("ready");
	for (;;) {
		p[0] = (struct pollfd){ .fd = store_notify_fd(st), .events = POLLIN };
		p[1] = (struct pollfd){ .fd = ready_fd, .events = POLLIN };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			die("poll");
		if (p[1].revents)
			break;
		int n = store_notify_drain(st);
		int64_t t2 = now_us();
		for (int i = 0; i < n; i++)
			if (write(out_fd, &t2, sizeof(t2)) != (ssize_t)sizeof(t2))
				die("pipe");
	}
	store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 200, opt, ready[2], times[2];
	struct store *st;
	uint64_t vm_id;
	pid_t child;
	char go;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n')
			goto usage;
		n = atoi(optarg);
	}
	if (argc - optind != 2 || n <= 0)
		goto usage;
	const char *uri = argv[optind], *dir = argv[optind + 1];

	st = open_store(uri, dir);
	struct image im = { .name = "bench", .owner = OWNER_ROOT, .format = "kernel",
			    .boot = "kernel", .state = "ready" };
	struct vm vm = { .name = "bench", .owner = OWNER_ROOT, .cpus = 1, .memory_mib = 128,
			 .desired = "stopped", .state = "stopped" };
	if (store_image_create(st, &im) != STORE_OK)
		die("store_image_create");
	vm.image = im.id;
	if (store_vm_create(st, &vm, NULL, 0) != STORE_OK)
		die("store_vm_create");
	vm_id = vm.id;

	/* ready: child → parent "listening", then parent → child "stop"
	 * (by closing); a socketpair is both directions in one. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ready) < 0 || pipe(times) < 0)
		die("pipes");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(ready[0]);
		close(times[0]);
		_exit(listen_loop(uri, dir, ready[1], times[1]));
	}
	close(ready[1]);
	close(times[1]);
	if (read(ready[0], &go, 1) != 1)
		die("the listener did not start");

	for (int i = 0; i < n; i++) {
		int64_t t0 = now_us(), t1, t2;
		if (store_vm_set_desired(st, vm_id, i % 2 ? "stopped" : "running") != STORE_OK)
			die("store_vm_set_desired");
		t1 = now_us();
		struct pollfd p = { .fd = times[0], .events = POLLIN };
		if (poll(&p, 1, 5000) != 1 || read(times[0], &t2, sizeof(t2)) != (ssize_t)sizeof(t2))
			die("no announcement within 5 s");
		printf("write %" PRId64 " trigger %" PRId64 " after %" PRId64 "\n", t1 - t0, t2 - t0,
		       t2 - t1);
	}
	close(ready[0]);
	waitpid(child, NULL, 0);
	close(times[0]);

	for (int i = 0; i < n; i++) {
		int64_t t0 = now_us();
		int rc = store_tx_begin(st);
		if (rc == STORE_OK) {
			struct sval p[] = { SV_S(i % 2 ? "stopped" : "running"), SV_I(vm_id) };
			rc = store_q(st, "UPDATE vms SET desired = ?, error = NULL WHERE id = ?", p, 2,
				     NULL, NULL);
		}
		if (store_tx_end(st, rc) != STORE_OK)
			die("quiet write");
		printf("quiet %" PRId64 "\n", now_us() - t0);
	}
	store_close(st);   /* im and vm point at literals: nothing else to free */
	return 0;
usage:
	fprintf(stderr, "usage: trigbench [-n WRITES] STORE_URI STATE_DIR\n");
	return 2;
}
