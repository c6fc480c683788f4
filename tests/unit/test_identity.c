/*
 * Unit tests for vm/identity and the way VMs' programs run under it
 * (common/proc.h): the uid of a VM from the configured range; ranges that
 * hold accounts, nobody or 2^31 refused; a tool run as a VM has exactly
 * its uid/gid, no other group, its limits and only 0-2; QEMU's way
 * (proc_daemon) is nobody's child, as the VM, with the descriptors it was
 * given at 3, 4, …, and an exec failure comes back as an errno.  What
 * changes uid needs root and is skipped without it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vm/identity.h"
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#define BASE 300000
#define COUNT 1000

static void uid_is_base_plus_id_mod_count(void **state)
{
	(void)state;
	assert_int_equal(identity_uid(BASE, COUNT, 0), BASE);
	assert_int_equal(identity_uid(BASE, COUNT, 0x2a), BASE + 42);
	assert_int_equal(identity_uid(BASE, COUNT, 999), BASE + 999);
	assert_int_equal(identity_uid(BASE, COUNT, 1000), BASE);
	assert_int_equal(identity_uid(BASE, COUNT, 1001), BASE + 1);
	/* The largest VM ID (40 bits) stays in the range. */
	assert_int_equal(identity_uid(BASE, COUNT, 0xffffffffffULL), BASE + 0xffffffffffULL % COUNT);
	assert_int_equal(identity_uid(200000, 65536, 0x10000 + 7), 200007);
}

static void bad_ranges_are_refused(void **state)
{
	(void)state;
	char *err = NULL;

	assert_int_equal(identity_range_check(BASE, 0, &err), -1);
	assert_non_null(err);
	free(err);
	assert_int_equal(identity_range_check(0, 10, &err), -1); /* root */
	free(err);
	assert_int_equal(identity_range_check(0x7fffffffLL - 5, 10, &err), -1);
	free(err);
	assert_int_equal(identity_range_check(65000, 1000, &err), -1); /* nobody */
	assert_non_null(strstr(err, "65534"));
	free(err);
}

/* Any account of this machine other than root, inside the range, is
 * named in the refusal. */
static void a_range_holding_an_account_is_refused(void **state)
{
	(void)state;
	struct passwd *pw;
	long uid = -1;
	char name[64] = "", want[128], *err = NULL;

	setpwent();
	while ((pw = getpwent()) != NULL)
		if (pw->pw_uid > 0 && pw->pw_uid < 65534) {
			uid = pw->pw_uid;
			snprintf(name, sizeof(name), "%s", pw->pw_name);
			break;
		}
	endpwent();
	if (uid < 0)
		skip();
	assert_int_equal(identity_range_check(uid, 1, &err), -1);
	snprintf(want, sizeof(want), "account %s (uid %ld)", name, uid);
	assert_non_null(strstr(err, want));
	free(err);
}

static void qemu_and_tools_identities(void **state)
{
	(void)state;
	struct proc_opts o;
	char *err = NULL;

	assert_int_equal(identity_qemu(BASE, COUNT, 5, false, &o, &err), 0);
	assert_true(o.drop);
	assert_int_equal(o.uid, BASE + 5);
	assert_int_equal(o.gid, BASE + 5);
	assert_false(o.with_group);
	assert_int_equal(o.limit_as, 0);
	assert_int_equal(o.pass_fd, -1);
	identity_tool(BASE, COUNT, 5, &o);
	assert_true(o.drop);
	assert_int_equal(o.uid, BASE + 5);
	assert_true(o.limit_as > 0 && o.limit_cpu > 0);
	assert_int_equal(o.pass_fd, -1);
}

static struct proc_opts as_vm(int timeout_ms)
{
	struct proc_opts o;

	identity_tool(BASE, COUNT, 7, &o);
	o.timeout_ms = timeout_ms;
	return o;
}

static void runs_as_the_vm_with_limits(void **state)
{
	(void)state;
	char *out = NULL;
	char *argv[] = { "sh", "-c",
			 "echo $(id -u) $(id -g) $(id -G) $(ulimit -v) $(ulimit -t);"
			 " ls /proc/self/fd | sort -n | tr '\\n' ' '", NULL };

	struct proc_opts o = as_vm(10000);

	if (geteuid() != 0)
		skip();
	/* A descriptor of ours that must not reach the child. */
	int leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	assert_int_equal(proc_run_opts(argv, &o, &out, 4096, true), 0);
	assert_non_null(out);
	assert_true(strncmp(out, "300007 300007 300007 1048576 30\n", 32) == 0);
	/* 0-2, and the one ls opens for /proc/self/fd. */
	assert_string_equal(out + 32, "0 1 2 3 ");
	free(out);
	close(leak);
}

static void exec_failure_is_an_errno(void **state)
{
	(void)state;
	char *argv[] = { "/nonexistent/program", NULL };
	int keep[1] = { 0 };
	struct proc_opts o = as_vm(0);

	if (geteuid() != 0)
		skip();
	o.keep = keep;
	o.n_keep = 1;
	errno = 0;
	assert_int_equal(proc_daemon(argv, &o, -1), -1);
	assert_int_equal(errno, ENOENT);
}

static void timeout_kills(void **state)
{
	(void)state;
	char *argv[] = { "sleep", "30", NULL };
	struct proc_opts o = as_vm(100);

	if (geteuid() != 0)
		skip();
	assert_int_equal(proc_run_opts(argv, &o, NULL, 0, false), 128 + SIGKILL);
}

/* The daemon: detached (not our child), as the VM, with the descriptors
 * it was given at 3, 4, … */
static void daemon_is_nobodys_child(void **state)
{
	(void)state;
	int p[2];
	char buf[256] = "";
	char *argv[] = { "sh", "-c", "echo $(id -u) $(id -G) $PPID $(pwd) >&4; exec sleep 30", NULL };
	struct proc_opts o;
	char *err = NULL;

	if (geteuid() != 0)
		skip();
	assert_int_equal(identity_qemu(BASE, COUNT, 7, false, &o, &err), 0);
	o.with_group = true;          /* as /dev/kvm's group would be */
	o.group = 12345;
	assert_int_equal(pipe(p), 0);
	int keep[2] = { p[0], p[1] }; /* 3: a descriptor it merely holds; 4: the pipe it writes to */
	o.keep = keep;
	o.n_keep = 2;
	pid_t pid = proc_daemon(argv, &o, -1);
	assert_true(pid > 0);
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	long uid, gid, group, ppid;
	char cwd[64];
	assert_int_equal(sscanf(buf, "%ld %ld %ld %ld %63s", &uid, &gid, &group, &ppid, cwd), 5);
	assert_int_equal(uid, BASE + 7);
	assert_int_equal(gid, BASE + 7);
	assert_int_equal(group, 12345);
	assert_int_not_equal(ppid, getpid());
	assert_string_equal(cwd, "/");
	int pidfd = pidfd_open(pid, 0);
	assert_true(pidfd >= 0);
	assert_int_equal(pidfd_send_signal(pidfd, SIGKILL, NULL, 0), 0);
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 10000), 1);
	close(pidfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uid_is_base_plus_id_mod_count),
		cmocka_unit_test(bad_ranges_are_refused),
		cmocka_unit_test(a_range_holding_an_account_is_refused),
		cmocka_unit_test(qemu_and_tools_identities),
		cmocka_unit_test(runs_as_the_vm_with_limits),
		cmocka_unit_test(exec_failure_is_an_errno),
		cmocka_unit_test(timeout_kills),
		cmocka_unit_test(daemon_is_nobodys_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
