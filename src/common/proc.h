/*
 * proc — running programs from argv arrays (never through a shell) and
 * looking at processes we started earlier.
 */
#ifndef HC_PROC_H
#define HC_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Run argv[0] (searched in PATH) and wait for it, at most timeout_ms
 * (0 = no limit; on timeout the child is killed).  stdin is /dev/null and
 * the child inherits no descriptor of ours beyond 0-2 (a daemonizing child
 * such as QEMU must not keep our listening sockets alive after we exit)
 * and no blocked signal.
 * When out is not NULL, up to max bytes of stdout (and of stderr too when
 * merge_stderr) are returned in a malloc'd NUL-terminated buffer;
 * otherwise stderr is passed through to ours.
 * Returns the exit status (0..255), 128+signal when killed, or -1 with
 * errno set when the program could not be run.
 */
int proc_run(char *const argv[], int timeout_ms, char **out, size_t max, bool merge_stderr);

/*
 * How proc_run_opts runs a child beyond proc_run: for a program that reads
 * untrusted input (qemu-img on an uploaded image), as an unprivileged user
 * with resource limits, seeing one descriptor of ours as fd 3 — the file
 * it is to read, opened by us, so that the user needs no access to the
 * directory it is in.  A setting that cannot be applied in the child makes
 * it exit 126 before the program runs: it never runs with less confinement
 * than asked.
 */
struct proc_opts {
	int timeout_ms;               /* as proc_run; 0 = no limit */
	bool drop;                    /* run as uid/gid, no supplementary groups, no new privileges */
	uid_t uid;
	gid_t gid;
	bool with_group;              /* with drop: keep this one supplementary group */
	gid_t group;
	unsigned long long limit_as;  /* RLIMIT_AS in bytes; 0 = unchanged */
	unsigned long long limit_cpu; /* RLIMIT_CPU in seconds; 0 = unchanged */
	int pass_fd;                  /* >= 0: becomes the child's fd 3; -1: none */
	const int *keep;              /* instead of pass_fd: these become 3, 4, … in order */
	size_t n_keep;
};
int proc_run_opts(char *const argv[], const struct proc_opts *o, char **out, size_t max,
		  bool merge_stderr);

/*
 * Start argv detached, confined as o says (its timeout is not used): a
 * double fork and a new session, so that it is nobody's child and
 * outlives us — how hcd starts a VM's QEMU (vm/qemu.h), which must
 * neither daemonize nor change user itself.  stdin and stdout are
 * /dev/null, stderr err_fd (or /dev/null when -1), the working directory
 * /.  Returns the daemon's pid once it has exec'd, or -1 with errno set,
 * also when it could not be confined or exec'd (the child reports its
 * errno through a pipe).
 */
pid_t proc_daemon(char *const argv[], const struct proc_opts *o, int err_fd);

/*
 * A fork copies every descriptor of hcd, and the child holds the copies
 * until it closes what it was not given: a moment, stretched by a busy
 * machine.  For most descriptors that is harmless; not for the one a tap
 * is created with (net/tap.c): while a copy lives the tap stays attached,
 * and the launch that opens it next gets EBUSY.  Between proc_forks_pause
 * and proc_forks_resume no child of hcd holds copies: proc_run_opts and
 * proc_daemon wait for their child to close them before they let a pause
 * begin, and none forks during one.  Keep a pause to a few system calls.
 */
void proc_forks_pause(void);
void proc_forks_resume(void);

/* The uid and primary gid of a user name (thread-safe).  0, or -1 when
 * there is no such user. */
int proc_user_lookup(const char *name, uid_t *uid, gid_t *gid);

/* True when pid exists (and is not a zombie we could reap). */
bool proc_alive(pid_t pid);

/* Read a decimal pid from a pidfile; 0 when missing or malformed. */
pid_t pidfile_read(const char *path);

/*
 * True when /proc/PID/cmdline contains needle as one of its arguments or
 * inside one: guards against acting on a recycled PID.
 */
bool proc_cmdline_contains(pid_t pid, const char *needle);

/* Milliseconds of CLOCK_MONOTONIC. */
long long now_ms(void);
/* The sooner of two waits in ms, where -1 means none. */
static inline int wait_sooner(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

#endif
