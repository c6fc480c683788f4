/* spawn — see spawn.h. */
#include "vm/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Tell the parent why the child could not start, then give up. */
static void child_fail(int report_fd)
{
	int e = errno;

	if (report_fd >= 0 && write(report_fd, &e, sizeof(e)) < 0)
		e = 0;
	_exit(127);
}

/*
 * In the child, between fork and exec: descriptors, limits, identity.
 * Only system calls: the parent has other threads, whose locks the child
 * inherited in whatever state they were.  Returns the report descriptor
 * (it moves).
 */
static int child_enter(const struct spawn_id *id, const int *keep, size_t n_keep,
			int out_fd, int err_fd, int report_fd)
{
	sigset_t none;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int park[n_keep + 3];
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* Everything is first copied above the numbers it goes to, so that
	 * renumbering the kept ones to 3, 4, … cannot overwrite one that is
	 * still to be moved. */
	int above = 3 + (int)n_keep;

	/* hcd blocks TERM/INT/HUP/PIPE for its signalfd; a blocked mask
	 * survives exec. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	if (nul < 0)
		child_fail(report_fd);
	if (out_fd < 0)
		out_fd = nul;
	if (err_fd < 0)
		err_fd = nul;
	for (size_t i = 0; i < n_keep; i++)
		if ((park[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, above)) < 0)
			child_fail(report_fd);
	if ((park[n_keep] = fcntl(out_fd, F_DUPFD_CLOEXEC, above)) < 0 ||
	    (park[n_keep + 1] = fcntl(err_fd, F_DUPFD_CLOEXEC, above)) < 0 ||
	    (report_fd >= 0 && (report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, above)) < 0))
		child_fail(report_fd);
	/* dup2 clears close-on-exec on the new number: exactly these pass. */
	if (dup2(nul, 0) < 0 || dup2(park[n_keep], 1) < 0 || dup2(park[n_keep + 1], 2) < 0)
		child_fail(report_fd);
	for (size_t i = 0; i < n_keep; i++)
		if (dup2(park[i], 3 + (int)i) < 0)
			child_fail(report_fd);
	/* Everything else goes, except the report pipe (it closes on exec). */
	if (report_fd >= 0) {
		close_range(3 + (unsigned)n_keep, (unsigned)report_fd - 1, 0);
		close_range((unsigned)report_fd + 1, ~0U, 0);
	} else {
		close_range(3 + (unsigned)n_keep, ~0U, 0);
	}

	if (id->as_limit) {
		struct rlimit rl = { id->as_limit, id->as_limit };
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			child_fail(report_fd);
	}
	if (id->cpu_limit) {
		struct rlimit rl = { id->cpu_limit, id->cpu_limit };
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			child_fail(report_fd);
	}
	/* Groups first: after setuid there is no privilege left to drop them. */
	if (setgroups(id->extra_gid == (gid_t)-1 ? 0 : 1, &id->extra_gid) < 0 ||
	    setresgid(id->gid, id->gid, id->gid) < 0 ||
	    setresuid(id->uid, id->uid, id->uid) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    chdir("/") < 0)
		child_fail(report_fd);
	umask(077);
	return report_fd;
}

/* Read exactly len bytes unless EOF comes first; returns what was read. */
static size_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* After fork: did the child reach exec?  0, or -1 with its errno. */
static int exec_result(int report_rd)
{
	int e;

	if (read_full(report_rd, &e, sizeof(e)) == sizeof(e)) {
		errno = e ? e : EIO;
		return -1;
	}
	return 0;
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

int spawn_wait(char *const argv[], const struct spawn_id *id, int timeout_ms,
	       char **out, size_t max)
{
	int report[2] = { -1, -1 }, pidfd = -1, st = 0, rc = -1, e = 0;
	int mem = memfd_create("spawn-out", MFD_CLOEXEC);
	pid_t pid = -1;

	if (out)
		*out = NULL;
	if (mem < 0 || pipe2(report, O_CLOEXEC) < 0)
		goto out;
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		close(report[0]);
		int rep = child_enter(id, NULL, 0, mem, mem, report[1]);
		execvp(argv[0], argv);
		child_fail(rep);
	}
	close(report[1]);
	report[1] = -1;
	if (exec_result(report[0]) < 0) {
		e = errno;
		waitpid(pid, &st, 0);
		goto out;
	}
	/* The child is ours: a pidfd says when it ends, poll() bounds the wait. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r;
		while ((r = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1)) < 0 && errno == EINTR)
			;
		if (r == 0)
			kill(pid, SIGKILL);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rc = status_code(st);
	if (out) {
		char *buf = malloc(max + 1);
		size_t n = 0;
		if (buf && lseek(mem, 0, SEEK_SET) == 0)
			n = read_full(mem, buf, max);
		if (buf)
			buf[n] = '\0';
		*out = buf;
	}
out:
	if (e == 0)
		e = errno;
	if (mem >= 0)
		close(mem);
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < 2; i++)
		if (report[i] >= 0)
			close(report[i]);
	errno = e;
	return rc;
}

pid_t spawn_daemon(char *const argv[], const struct spawn_id *id, const int *keep,
		   size_t n_keep, int err_fd)
{
	/* Two pipes: the middle child sends the daemon's pid on one; the
	 * other carries an errno from whichever child failed, and reaches
	 * EOF without one when the daemon has exec'd. */
	int pids[2] = { -1, -1 }, report[2] = { -1, -1 };
	pid_t mid, pid = -1;
	int st, e = EIO;

	if (pipe2(pids, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0 || (mid = fork()) < 0) {
		e = errno;
		goto out;
	}
	if (mid == 0) {
		/* The middle child: a new session, the daemon, and out. */
		if (setsid() < 0)
			child_fail(report[1]);
		pid_t d = fork();
		if (d < 0)
			child_fail(report[1]);
		if (d == 0) {
			int rep = child_enter(id, keep, n_keep, -1, err_fd, report[1]);
			execvp(argv[0], argv);
			child_fail(rep);
		}
		_exit(write(pids[1], &d, sizeof(d)) == sizeof(d) ? 0 : 1);
	}
	close(pids[1]);
	close(report[1]);
	pids[1] = report[1] = -1;
	/* The pid, then the exec, then the middle child's end: each as soon
	 * as it is there (on a loaded host every wait is a turn of the
	 * scheduler). */
	pid_t d = 0;
	bool have_pid = read_full(pids[0], &d, sizeof(d)) == sizeof(d) && d > 0;
	if (exec_result(report[0]) < 0)
		e = errno;
	else if (have_pid)
		pid = d;
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
out:
	for (int i = 0; i < 2; i++) {
		if (pids[i] >= 0)
			close(pids[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	if (pid < 0)
		errno = e;
	return pid;
}
