/* qemu — see qemu.h. */
#include "vm/qemu.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/proc.h"
#include "vm/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *image_file(const char *state_dir, const char *sha256, const char *part)
{
	return str_printf("%s/images/%s/%s", state_dir, sha256, part);
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

pid_t qemu_running_pid(const struct vm_paths *p)
{
	pid_t pid = pidfile_read(p->pid);

	/* The QMP socket path is unique to this VM: a recycled PID that now
	 * belongs to another program does not carry it. */
	if (pid > 0 && proc_alive(pid) && proc_cmdline_contains(pid, p->qmp))
		return pid;
	return 0;
}

int qemu_launch(const struct qemu_spec *spec, const struct vm_paths *p, char **err)
{
	char **argv = qemu_argv(spec);
	char *out = NULL;
	int rc;

	*err = NULL;
	if (argv == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	file_remove(p->pid);
	/* Stale sockets of a previous run would make QEMU's bind fail. */
	file_remove(p->qmp);
	file_remove(p->serial);
	rc = proc_run(argv, 60000, &out, 4096, true);
	strv_free(argv);
	if (rc != 0) {
		size_t n = out ? strlen(out) : 0;
		while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			out[--n] = '\0';
		if (rc < 0)
			*err = str_printf("cannot run qemu-system-x86_64: %s", strerror(errno));
		else
			*err = str_printf("qemu exited with %d: %s", rc, n ? out : "no message");
		if (out)
			file_write_atomic(p->err, out, strlen(out), 0644);
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

char *vm_data_disk_path(const struct vm_paths *p, size_t index)
{
	return str_printf("%s/data%zu.qcow2", p->dir, index);
}

/*
 * qemu-img create into a temporary name, then rename: a disk that exists
 * is always whole, so "create it when missing" can be re-run after a
 * crash at any point.
 */
static int qemu_img_create(const char *path, const char *base, const char *base_format,
			   long long size, char **err)
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
	argv[n++] = "qemu-img";
	argv[n++] = "create";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = "qcow2";
	if (base) {
		argv[n++] = "-F";
		argv[n++] = (char *)base_format;
		argv[n++] = "-b";
		argv[n++] = (char *)base;
	}
	argv[n++] = tmp;
	if (size > 0) {
		snprintf(sz, sizeof(sz), "%lld", size);
		argv[n++] = sz;
	}
	argv[n] = NULL;
	file_remove(tmp);
	rc = proc_run(argv, 30000, &out, 4096, true);
	if (rc != 0)
		*err = str_printf("qemu-img create failed (%d): %s", rc, out ? out : "");
	else if (rename(tmp, path) < 0)
		*err = str_printf("%s: %s", path, strerror(errno));
	if (*err)
		file_remove(tmp);
	free(out);
	free(tmp);
	return *err ? -1 : 0;
}

int qemu_overlay_create(const char *base, const char *base_format, const char *overlay,
			long long size, char **err)
{
	return qemu_img_create(overlay, base, base_format, size, err);
}

int qemu_disk_create(const char *path, long long size, char **err)
{
	return qemu_img_create(path, NULL, NULL, size, err);
}

int qemu_powerdown(const struct vm_paths *p, char **err)
{
	return qmp_command(p->qmp, "system_powerdown", NULL, NULL, err);
}

int qemu_quit(const struct vm_paths *p, char **err)
{
	return qmp_command(p->qmp, "quit", NULL, NULL, err);
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
