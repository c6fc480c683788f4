/*
 * spawn — running the programs of a VM under the VM's own unprivileged
 * identity (DESIGN §3, §5): QEMU itself, and the qemu-img and genisoimage
 * runs that prepare its files.
 *
 * Contract:
 *   - the child gets exactly the identity in struct spawn_id: no
 *     supplementary group but the listed one, real = effective = saved
 *     uid/gid, so it cannot get root back;
 *   - it inherits no descriptor of ours beyond 0-2 and the ones listed in
 *     `keep` (renumbered to 3, 4, … in that order), no blocked signal,
 *     stdin /dev/null;
 *   - nothing here goes through a shell: argv arrays only.
 *
 * spawn_daemon() is how a VM's QEMU starts without -daemonize and without
 * -runas (both need privileges that QEMU's seccomp filter would then have
 * to allow): hcd forks twice, the middle child starts a new session and
 * exits, so QEMU is a child of nobody and outlives hcd (it is re-adopted
 * from the pidfile that hcd writes).
 *
 * Both functions fork from a multi-threaded process (they run on worker
 * threads): between fork and exec the child only makes system calls.
 */
#ifndef HC_SPAWN_H
#define HC_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_id {
	uid_t uid;
	gid_t gid;
	gid_t extra_gid;        /* one supplementary group (e.g. /dev/kvm's), or (gid_t)-1 */
	unsigned long long as_limit;   /* RLIMIT_AS bytes, 0 = unlimited */
	unsigned long cpu_limit;       /* RLIMIT_CPU seconds, 0 = unlimited */
};

/*
 * Run argv as id and wait at most timeout_ms (then SIGKILL).  stdout and
 * stderr are captured: up to max bytes of them come back in *out
 * (malloc'd, NUL-terminated) when out is not NULL.  Returns the exit
 * status (0..255), 128+signal, or -1 with errno set when it could not run.
 */
int spawn_wait(char *const argv[], const struct spawn_id *id, int timeout_ms,
	       char **out, size_t max);

/*
 * Start argv as id, detached (new session, reparented away from hcd).
 * keep[0..n_keep) become descriptors 3.. in the child; stderr goes to
 * err_fd (stdout to /dev/null).  Returns the daemon's pid, or -1 with
 * errno set (including an exec failure, reported through a pipe).
 */
pid_t spawn_daemon(char *const argv[], const struct spawn_id *id, const int *keep,
		   size_t n_keep, int err_fd);

#endif
