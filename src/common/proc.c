/* proc — see proc.h. */
#include "common/proc.h"

#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Forks hold it shared from before the fork until the child has closed
 * the copies it was not given; a pause holds it alone (proc.h). */
static pthread_rwlock_t fork_lock = PTHREAD_RWLOCK_INITIALIZER;

void proc_forks_pause(void)
{
	pthread_rwlock_wrlock(&fork_lock);
}

void proc_forks_resume(void)
{
	pthread_rwlock_unlock(&fork_lock);
}

/* Waits for the end of report (close-on-exec, so closed by the child with
 * every copy it was not given, or by its exit), then lets pauses in. */
static void forks_settled(int report[2])
{
	char c;

	close(report[1]);
	report[1] = -1;
	for (;;) {
		ssize_t r = read(report[0], &c, 1);
		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	close(report[0]);
	report[0] = -1;
	pthread_rwlock_unlock(&fork_lock);
}

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int proc_user_lookup(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (name == NULL || name[0] == '\0' || getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL)
		return -1;
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

/* In the forked child, before exec: only async-signal-safe calls (hcd has
 * threads).  -1 when any confinement asked for could not be applied.
 * *spare (when not NULL and >= 0) is a descriptor that must stay open
 * until exec: it is moved out of the way and its new number returned. */
static int child_confine(const struct proc_opts *o, int *spare)
{
	int one = o->pass_fd;
	const int *fds = o->keep ? o->keep : &one;
	size_t n = o->keep ? o->n_keep : (one >= 0 ? 1 : 0);
	int above = 3 + (int)n, park[n + 1];

	/* Everything is first copied above the numbers it goes to, so that
	 * renumbering to 3, 4, … cannot overwrite one still to be moved. */
	for (size_t i = 0; i < n; i++)
		if ((park[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, above)) < 0)
			return -1;
	if (spare && *spare >= 0 && (*spare = fcntl(*spare, F_DUPFD_CLOEXEC, above)) < 0)
		return -1;
	/* dup2 clears close-on-exec on the new number: exactly these pass. */
	for (size_t i = 0; i < n; i++)
		if (dup2(park[i], 3 + (int)i) < 0)
			return -1;
	if (spare && *spare >= 0) {
		close_range((unsigned)above, (unsigned)*spare - 1, 0);
		close_range((unsigned)*spare + 1, ~0U, 0);
	} else {
		close_range((unsigned)above, ~0U, 0);
	}
	if (o->limit_as) {
		struct rlimit rl = { o->limit_as, o->limit_as };
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			return -1;
	}
	if (o->limit_cpu) {
		struct rlimit rl = { o->limit_cpu, o->limit_cpu };
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			return -1;
	}
	if (o->drop) {
		/* Groups first: after setuid we could not drop them any more. */
		if (setgroups(o->with_group ? 1 : 0, &o->group) < 0 ||
		    setresgid(o->gid, o->gid, o->gid) < 0 || setresuid(o->uid, o->uid, o->uid) < 0)
			return -1;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return -1;
	}
	return 0;
}

int proc_run(char *const argv[], int timeout_ms, char **out, size_t max, bool merge_stderr)
{
	struct proc_opts o = { .timeout_ms = timeout_ms, .pass_fd = -1 };

	return proc_run_opts(argv, &o, out, max, merge_stderr);
}

int proc_run_opts(char *const argv[], const struct proc_opts *o, char **out, size_t max,
		  bool merge_stderr)
{
	int pipefd[2] = { -1, -1 }, report[2] = { -1, -1 };
	char *buf = NULL;
	size_t n = 0;
	long long deadline = o->timeout_ms > 0 ? now_ms() + o->timeout_ms : 0;
	pid_t pid;
	int st;

	if (out && pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	if (out && (buf = malloc(max + 1)) == NULL)
		goto fail;
	pthread_rwlock_rdlock(&fork_lock);
	if (pipe2(report, O_CLOEXEC) < 0) {
		pthread_rwlock_unlock(&fork_lock);
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		forks_settled(report);
		errno = e;
		goto fail;
	}
	if (pid == 0) {
		/* hcd blocks TERM/INT/HUP/PIPE for its signalfd; a blocked mask
		 * survives exec, and a dnsmasq that never sees SIGHUP or SIGTERM
		 * cannot be reloaded or stopped. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			if (!out)
				dup2(devnull, 1);
		}
		if (out) {
			dup2(pipefd[1], 1);
			if (merge_stderr)
				dup2(pipefd[1], 2);
		}
		if (child_confine(o, NULL) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	forks_settled(report);
	if (out) {
		close(pipefd[1]);
		pipefd[1] = -1;
		for (;;) {
			struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
			int wait_ms = -1;
			if (deadline) {
				long long left = deadline - now_ms();
				if (left <= 0) {
					kill(pid, SIGKILL);
					break;
				}
				wait_ms = (int)left;
			}
			int pr = poll(&pfd, 1, wait_ms);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr <= 0)
				continue;
			char tmp[4096];
			ssize_t r = read(pipefd[0], tmp, sizeof(tmp));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			size_t take = (size_t)r;
			if (take > max - n)
				take = max - n;
			memcpy(buf + n, tmp, take);
			n += take;
		}
		close(pipefd[0]);
		pipefd[0] = -1;
		buf[n] = '\0';
	}
	for (;;) {
		pid_t w = waitpid(pid, &st, deadline ? WNOHANG : 0);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			goto fail;
		if (deadline && now_ms() > deadline)
			kill(pid, SIGKILL);
		if (w == 0)
			usleep(10000);
	}
	if (out)
		*out = buf;
	return status_code(st);
fail:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(buf);
	return -1;
}

bool proc_alive(pid_t pid)
{
	char path[64], *stat = NULL;
	bool alive;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	/* A zombie still answers kill(0); its state letter says it is dead. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (file_read(path, 4096, &stat, NULL) < 0)
		return false;
	const char *rp = strrchr(stat, ')');
	alive = !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
	free(stat);
	return alive;
}

pid_t pidfile_read(const char *path)
{
	char *s = NULL;
	long v;
	char *end;

	if (file_read(path, 64, &s, NULL) < 0)
		return 0;
	v = strtol(s, &end, 10);
	if (end == s || v <= 0 || (*end != '\0' && *end != '\n'))
		v = 0;
	free(s);
	return (pid_t)v;
}

bool proc_cmdline_contains(pid_t pid, const char *needle)
{
	char path[64], *buf = NULL;
	size_t len;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	if (file_read(path, 1 << 16, &buf, &len) < 0)
		return false;
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		if (strstr(buf + i, needle)) {
			found = true;
			break;
		}
	free(buf);
	return found;
}

/* Tell the parent why the child could not start, then give up. */
static void child_fail(int report_fd)
{
	int e = errno;

	if (write(report_fd, &e, sizeof(e)) < 0)
		e = 0;
	_exit(127);
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

pid_t proc_daemon(char *const argv[], const struct proc_opts *o, int err_fd)
{
	/* Two pipes: the middle child sends the daemon's pid on one; the
	 * other carries an errno from whichever child failed, and reaches
	 * EOF without one when the daemon has exec'd (close-on-exec). */
	int pids[2] = { -1, -1 }, report[2] = { -1, -1 };
	pid_t mid, pid = -1, d = 0;
	int st, e = EIO, got;

	/* Shared until the report's end: the daemon exec'd (or failed), and
	 * the middle child, the only other holder of copies, is waited for. */
	pthread_rwlock_rdlock(&fork_lock);
	if (pipe2(pids, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0 || (mid = fork()) < 0) {
		e = errno;
		goto out;
	}
	if (mid == 0) {
		/* The middle child: a new session, the daemon, and out. */
		if (setsid() < 0 || (d = fork()) < 0)
			child_fail(report[1]);
		if (d == 0) {
			sigset_t none;
			struct sigaction dfl = { .sa_handler = SIG_DFL };
			int nul = open("/dev/null", O_RDWR | O_CLOEXEC), rep = report[1];
			/* A blocked mask survives exec (see proc_run_opts). */
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			sigaction(SIGPIPE, &dfl, NULL);
			if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 ||
			    dup2(err_fd >= 0 ? err_fd : nul, 2) < 0 || child_confine(o, &rep) < 0 ||
			    chdir("/") < 0)
				child_fail(rep);
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
	bool have_pid = read_full(pids[0], &d, sizeof(d)) == sizeof(d) && d > 0;
	if (read_full(report[0], &got, sizeof(got)) == sizeof(got))
		e = got ? got : EIO;
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
	pthread_rwlock_unlock(&fork_lock);
	if (pid < 0)
		errno = e;
	return pid;
}
