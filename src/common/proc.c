/* proc — see proc.h. */
#include "common/proc.h"

#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
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
 * threads).  -1 when any confinement asked for could not be applied. */
static int child_confine(const struct proc_opts *o)
{
	if (o->pass_fd >= 0) {
		if (o->pass_fd == 3) {
			if (fcntl(3, F_SETFD, 0) < 0) /* dup2 onto itself keeps CLOEXEC */
				return -1;
		} else if (dup2(o->pass_fd, 3) < 0) {
			return -1;
		}
	}
	close_range(o->pass_fd >= 0 ? 4 : 3, ~0U, 0);
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
		if (setgroups(0, NULL) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
		    setresuid(o->uid, o->uid, o->uid) < 0)
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
	int pipefd[2] = { -1, -1 };
	char *buf = NULL;
	size_t n = 0;
	long long deadline = o->timeout_ms > 0 ? now_ms() + o->timeout_ms : 0;
	pid_t pid;
	int st;

	if (out && pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	if (out && (buf = malloc(max + 1)) == NULL)
		goto fail;
	pid = fork();
	if (pid < 0)
		goto fail;
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
		if (child_confine(o) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
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
