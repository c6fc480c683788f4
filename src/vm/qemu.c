/* qemu — see qemu.h. */
#include "vm/qemu.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/sock.h"
#include "vm/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* QEMU answers QMP once its machine is built; a loaded host may need a
 * while for that, a wedged QEMU is given up on. */
#define LAUNCH_TIMEOUT_MS 30000
/* How long a QEMU that got SIGKILL may take to be gone (the kernel frees
 * its guest memory first). */
#define KILL_WAIT_MS 30000
#define QEMU_IMG_TIMEOUT_MS 30000
#define SERIAL_LOG_MAX (16LL << 20)
#define SERIAL_LOG_KEEP (4LL << 20)

char *image_file(const char *state_dir, const char *sha256, const char *part)
{
	return str_printf("%s/images/%s/%s", state_dir, sha256, part);
}

/* Others may pass through dir (search, not list). */
static int dir_searchable(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return -1;
	if (st.st_mode & S_IXOTH)
		return 0;
	return chmod(dir, (st.st_mode & 07777) | S_IXOTH);
}

int qemu_image_readable(const char *state_dir, const char *file)
{
	char *images = str_printf("%s/images", state_dir);
	char *copy = strdup(file);
	struct stat st;
	int rc = -1;

	if (images && copy && dir_searchable(state_dir) == 0 && dir_searchable(images) == 0 &&
	    dir_searchable(dirname(copy)) == 0 && stat(file, &st) == 0)
		rc = (st.st_mode & 07777) == 0444 ? 0 : chmod(file, 0444);
	free(images);
	free(copy);
	return rc;
}

int vm_paths_init(struct vm_paths *p, const char *state_dir, uint64_t vm_id)
{
	vm_id_str id = vm_id_format(vm_id);

	memset(p, 0, sizeof(*p));
	p->dir = str_printf("%s/vms/%s", state_dir, id.s);
	if (p->dir == NULL)
		return -1;
	p->qmp = str_printf("%s/qmp.sock", p->dir);
	p->serial = str_printf("%s/serial.sock", p->dir);
	p->log = str_printf("%s/serial.log", p->dir);
	p->pid = str_printf("%s/qemu.pid", p->dir);
	p->disk = str_printf("%s/disk.qcow2", p->dir);
	p->err = str_printf("%s/qemu.err", p->dir);
	if (!p->qmp || !p->serial || !p->log || !p->pid || !p->disk || !p->err) {
		vm_paths_free(p);
		return -1;
	}
	return 0;
}

void vm_paths_free(struct vm_paths *p)
{
	free(p->dir);
	free(p->qmp);
	free(p->serial);
	free(p->log);
	free(p->pid);
	free(p->disk);
	free(p->err);
	memset(p, 0, sizeof(*p));
}

char *vm_data_disk_path(const struct vm_paths *p, size_t index)
{
	return str_printf("%s/data%zu.qcow2", p->dir, index);
}

int qemu_file_give(const char *path, const struct proc_opts *id, mode_t mode, char **err)
{
	/* The directory is root's: nobody can swap the file for a link. */
	if (chown(path, id->uid, id->gid) < 0 || chmod(path, mode) < 0) {
		*err = str_printf("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int qemu_file_for_tool(const char *path, const struct proc_opts *id, char **err)
{
	int fd;

	file_remove(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchown(fd, id->uid, id->gid) < 0) {
		*err = str_printf("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int qemu_dir_ensure(const struct vm_paths *p, const struct proc_opts *id, char **err)
{
	/* dirname() cuts its argument in place: vms = STATE_DIR/vms, then
	 * state = STATE_DIR. */
	char *vms = strdup(p->dir), *state = NULL;
	int fd = -1, rc = -1;

	*err = NULL;
	if (vms == NULL || (state = strdup(dirname(vms))) == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	if (dir_searchable(dirname(state)) < 0 || dir_searchable(vms) < 0 ||
	    mkdir_p(p->dir, 0710) < 0 || chown(p->dir, 0, id->gid) < 0 || chmod(p->dir, 0710) < 0) {
		*err = str_printf("%s: %s", p->dir, strerror(errno));
		goto out;
	}
	fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchown(fd, id->uid, id->gid) < 0 || fchmod(fd, 0600) < 0) {
		*err = str_printf("%s: %s", p->log, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(vms);
	free(state);
	return rc;
}

pid_t qemu_running_pid(const struct vm_paths *p)
{
	pid_t pid = pidfile_read(p->pid);

	/* The serial log's path is unique to this VM and in every QEMU's
	 * argv: a recycled PID that now belongs to another program does not
	 * carry it. */
	if (pid > 0 && proc_alive(pid) && proc_cmdline_contains(pid, p->log))
		return pid;
	return 0;
}

/*
 * The pidfile, whole or not at all (rename), but not synced: it matters
 * while the host runs (a restarted hcd adopts QEMU by it, and must never
 * start a second one), and a host that crashed runs no QEMU anyway.
 */
static int pidfile_write(const char *path, pid_t pid)
{
	char *tmp = str_printf("%s.tmp", path), text[32];
	int fd = -1, rc = -1, n = snprintf(text, sizeof(text), "%ld\n", (long)pid);

	if (tmp == NULL)
		return -1;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && write(fd, text, (size_t)n) == n && close(fd) == 0) {
		fd = -1;
		rc = rename(tmp, path);
	}
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* The first line QEMU wrote to stderr, or NULL. */
static char *launch_message(const struct vm_paths *p)
{
	char *out = NULL;
	size_t n;

	if (file_read(p->err, 4096, &out, &n) < 0)
		return NULL;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

int qemu_launch(struct qemu_spec *spec, const struct vm_paths *p, const struct proc_opts *id,
		pid_t *pid, char **err)
{
	size_t n_keep = 2 + spec->n_nics;
	int *keep = calloc(n_keep, sizeof(*keep)), errfd = -1, rc = -1;
	struct qemu_nic *nics = calloc(spec->n_nics + 1, sizeof(*nics));
	char **argv = NULL;
	json_t *status = NULL;
	char *qerr = NULL;

	*err = NULL;
	*pid = 0;
	if (keep == NULL || nics == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_keep; i++)
		keep[i] = -1;
	file_remove(p->pid);
	/* Sockets first: QMP's queue takes our connection below even before
	 * QEMU accepts, so there is nothing to poll for. */
	if ((keep[0] = unix_listen(p->qmp, 8)) < 0 || (keep[1] = unix_listen(p->serial, 4)) < 0) {
		*err = str_printf("%s: %s", keep[0] < 0 ? p->qmp : p->serial, strerror(errno));
		goto out;
	}
	errfd = open(p->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (errfd < 0) {
		*err = str_printf("%s: %s", p->err, strerror(errno));
		goto out;
	}
	/* In QEMU: 3 = QMP, 4 = serial, 5… = the taps in order. */
	for (size_t i = 0; i < spec->n_nics; i++) {
		nics[i] = spec->nics[i];
		keep[2 + i] = spec->nics[i].fd;
		nics[i].fd = 5 + (int)i;
	}
	struct qemu_spec local = *spec;
	local.qmp_fd = 3;
	local.serial_fd = 4;
	local.nics = nics;
	if ((argv = qemu_argv(&local)) == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	struct proc_opts o = *id;
	o.keep = keep;
	o.n_keep = n_keep;
	*pid = proc_daemon(argv, &o, errfd);
	if (*pid < 0) {
		*err = str_printf("cannot start qemu-system-x86_64: %s", strerror(errno));
		*pid = 0;
		goto out;
	}
	/* Only QEMU holds the listening sockets now: should it die, our QMP
	 * connection is refused or reset at once instead of timing out. */
	close(keep[0]);
	close(keep[1]);
	keep[0] = keep[1] = -1;
	if (pidfile_write(p->pid, *pid) < 0) {
		*err = str_printf("%s: %s", p->pid, strerror(errno));
		kill(*pid, SIGKILL);
		goto out;
	}
	/* A migration's destination waits for its stream instead. */
	if (qmp_command_within(p->qmp, LAUNCH_TIMEOUT_MS, "query-status", NULL, &status, &qerr) < 0 ||
	    (spec->incoming ? !json_is_string(json_object_get(status, "status")) ||
	     strcmp(json_string_value(json_object_get(status, "status")), "inmigrate") != 0
			    : !json_is_true(json_object_get(status, "running")))) {
		char *said = launch_message(p);
		*err = str_printf("qemu did not start: %s", said ? said : qerr ? qerr : "not running");
		free(said);
		kill(*pid, SIGKILL);
		goto out;
	}
	rc = 0;
out:
	if (keep) {
		close(keep[0]);
		close(keep[1]);
	}
	if (errfd >= 0)
		close(errfd);
	json_decref(status);
	free(qerr);
	strv_free(argv);
	free(nics);
	free(keep);
	return rc;
}

/*
 * qemu-img create into a temporary name, then rename: a disk that exists
 * is always whole, so "create it when missing" can be re-run after a
 * crash at any point.  qemu-img runs as the VM, into a file made for it.
 */
static int qemu_img_create(const char *path, const char *base, const char *base_format,
			   long long size, const struct proc_opts *id, char **err)
{
	char *tmp = str_printf("%s.tmp", path), sz[32], *out = NULL;
	char *argv[16];
	size_t n = 0;
	int rc;

	*err = NULL;
	if (tmp == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	if (qemu_file_for_tool(tmp, id, err) < 0)
		goto out;
	snprintf(sz, sizeof(sz), "%lld", size);
	argv[n++] = "qemu-img";
	argv[n++] = "create";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = "qcow2";
	if (base) {
		/* -u: the base is not opened (its size is given), so nothing
		 * its header names is either; -F: its format is not probed. */
		argv[n++] = "-u";
		argv[n++] = "-F";
		argv[n++] = (char *)base_format;
		argv[n++] = "-b";
		argv[n++] = (char *)base;
	}
	argv[n++] = tmp;
	argv[n++] = sz;
	argv[n] = NULL;
	struct proc_opts o = *id;
	o.timeout_ms = QEMU_IMG_TIMEOUT_MS;
	rc = proc_run_opts(argv, &o, &out, 4096, true);
	if (rc != 0)
		*err = rc < 0 ? str_printf("cannot run qemu-img: %s", strerror(errno))
			      : str_printf("qemu-img create failed (%d): %s", rc, out ? out : "");
	else if (rename(tmp, path) < 0)
		*err = str_printf("%s: %s", path, strerror(errno));
out:
	if (*err)
		file_remove(tmp);
	free(out);
	free(tmp);
	return *err ? -1 : 0;
}

int qemu_overlay_create(const char *base, const char *base_format, long long base_size,
			const char *overlay, long long size, const struct proc_opts *id, char **err)
{
	if (base_size <= 0) {
		*err = strdup("the image's size is unknown");
		return -1;
	}
	return qemu_img_create(overlay, base, base_format, size > base_size ? size : base_size, id,
			       err);
}

int qemu_disk_create(const char *path, long long size, const struct proc_opts *id, char **err)
{
	return qemu_img_create(path, NULL, NULL, size, id, err);
}

int qemu_powerdown(const struct vm_paths *p, char **err)
{
	return qmp_command(p->qmp, "system_powerdown", NULL, NULL, err);
}

int qemu_reset(const struct vm_paths *p, char **err)
{
	return qmp_command(p->qmp, "system_reset", NULL, NULL, err);
}

void qemu_kill(const struct vm_paths *p)
{
	pid_t pid = qemu_running_pid(p);

	if (pid > 0)
		kill(pid, SIGKILL);
}

/* Wait until the process behind pidfd has exited; false at the timeout. */
static bool pidfd_wait(int pidfd, int timeout_ms)
{
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	long long deadline = now_ms() + timeout_ms;
	int r;

	for (;;) {
		long long left = deadline - now_ms();
		r = poll(&pf, 1, left > 0 ? (int)left : 0);
		if (r > 0)
			return true;
		if (r == 0 || errno != EINTR)
			return false;
	}
}

int qemu_end(const struct vm_paths *p, int grace_ms, void (*killed)(void *), void *arg, char **err)
{
	pid_t pid = qemu_running_pid(p);
	char *qerr = NULL;
	int pidfd, rc = -1;

	*err = NULL;
	if (pid <= 0)
		return 0;
	/* A pidfd: the signal cannot hit a recycled pid, and poll() says the
	 * moment the process is gone. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		if (errno == ESRCH)
			return 0;
		*err = str_printf("pidfd of %ld: %s", (long)pid, strerror(errno));
		return -1;
	}
	/* The grace covers the QMP exchange too: a wedged monitor gets no
	 * more time than a QEMU that is slow to exit.  No grace: nothing of
	 * the VM is kept, so nothing is asked of QEMU either. */
	if (grace_ms > 0) {
		long long deadline = now_ms() + grace_ms;
		int qrc = qmp_command_within(p->qmp, grace_ms, "quit", NULL, NULL, &qerr);
		long long left = deadline - now_ms();
		if (qrc == 0 && pidfd_wait(pidfd, left > 0 ? (int)left : 0)) {
			rc = 0;
			goto out;
		}
	}
	if (pidfd_send_signal(pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		*err = str_printf("kill %ld: %s", (long)pid, strerror(errno));
		goto out;
	}
	if (killed)
		killed(arg);
	if (!pidfd_wait(pidfd, KILL_WAIT_MS)) {
		*err = str_printf("QEMU %ld is still there after SIGKILL", (long)pid);
		goto out;
	}
	rc = 0;
out:
	free(qerr);
	close(pidfd);
	return rc;
}

/*
 * Past SERIAL_LOG_MAX the head is cut off in place (collapse range keeps
 * the inode QEMU appends to and the last SERIAL_LOG_KEEP bytes); where the
 * file system cannot do that, the log starts over.
 */
void qemu_serial_log_cap(const struct vm_paths *p)
{
	struct stat sb;
	int fd;

	if (stat(p->log, &sb) < 0 || sb.st_size <= SERIAL_LOG_MAX)
		return;
	fd = open(p->log, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	off_t cut = (sb.st_size - SERIAL_LOG_KEEP) & ~((off_t)sb.st_blksize - 1);
	if (cut <= 0 || fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, cut) < 0) {
		if (ftruncate(fd, 0) == 0)
			log_warn("%s: over %lld bytes, started over", p->log, SERIAL_LOG_MAX);
	}
	close(fd);
}
