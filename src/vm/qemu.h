/*
 * qemu — QEMU processes on this host: where a VM's runtime files live and
 * who owns them, launching (hcd daemonizes QEMU itself, so it outlives
 * hcd), finding a running VM again after hcd restarts (pidfile + cmdline
 * check against PID reuse), stopping it, and keeping its serial log in
 * bounds.
 *
 * Layout of STATE_DIR/vms/<id>/ (root:<VM gid> 0710: the VM's QEMU may
 * enter it but not create, rename or remove anything in it):
 *   qmp.sock  serial.sock   root 0600, bound by hcd, QEMU gets the descriptors
 *   qemu.pid  qemu.err      root, written by hcd (QEMU's stderr goes to .err)
 *   disk.qcow2 data<N>.qcow2 serial.log
 *                           the VM's uid 0600: what its QEMU writes
 *   seed.iso  seed/         the NoCloud seed (vm/seed.h), the VM's uid
 * Images (STATE_DIR/images/<sha256>/) stay root's and read-only; QEMU
 * reads them through mode 0444 (qemu_image_readable()).
 *
 * Everything that takes more than microseconds (qemu_launch, the disk
 * creators, qemu_end) is for worker threads: it touches only the paths
 * and descriptors it is given.
 */
#ifndef HC_QEMU_H
#define HC_QEMU_H

#include "vm/qemu_argv.h"
#include "common/proc.h"

#include <stdint.h>
#include <sys/types.h>

struct vm_paths {
	char *dir, *qmp, *serial, *log, *pid, *disk, *err;
};

/*
 * Images live content-addressed in STATE_DIR/images/<sha256>/ as the files
 * "kernel", "initrd" (kernel images) or "disk" (disk images).
 */
char *image_file(const char *state_dir, const char *sha256, const char *part);

/* Let every VM's QEMU read an image file: the file 0444 and the
 * directories down to it searchable (not listable) by others. */
int qemu_image_readable(const char *state_dir, const char *file);

int vm_paths_init(struct vm_paths *p, const char *state_dir, uint64_t vm_id);
void vm_paths_free(struct vm_paths *p);

/* STATE_DIR/vms/<id>/data<index>.qcow2 (malloc'd). */
char *vm_data_disk_path(const struct vm_paths *p, size_t index);

/* The VM's directory as the layout above says, STATE_DIR and vms/
 * searchable; its serial log created and owned by the VM. */
int qemu_dir_ensure(const struct vm_paths *p, const struct proc_opts *id, char **err);

/* An empty file at path (whatever was there goes), the VM's: a tool that
 * runs as the VM writes its output there, since it may not create files
 * in the VM's directory. */
int qemu_file_for_tool(const char *path, const struct proc_opts *id, char **err);

/* Hand a file of the VM's directory to the VM (chown uid:gid, mode). */
int qemu_file_give(const char *path, const struct proc_opts *id, mode_t mode, char **err);

/* The PID of this VM's QEMU when it runs, else 0. */
pid_t qemu_running_pid(const struct vm_paths *p);

/*
 * Launch: bind the QMP and serial sockets, open the taps of spec->nics
 * (by .ifname; their .fd and the spec's socket fields are filled in
 * here), start QEMU as `id`, write the pidfile, and wait until QMP says
 * the guest runs.  *pid is set as soon as QEMU exists (also on failure,
 * then it is killed).  -1 and a message on failure (QEMU's own stderr,
 * kept in qemu.err, when it said something).
 */
int qemu_launch(struct qemu_spec *spec, const struct vm_paths *p, const struct proc_opts *id,
		pid_t *pid, char **err);

/* Create the VM's qcow2 overlay on a base image (never written to, never
 * opened: its format is named and its size given), of `size` bytes (0:
 * the base's size; never smaller than the base).  qemu-img runs as the VM
 * (id), into a temporary name that is renamed when whole. */
int qemu_overlay_create(const char *base, const char *base_format, long long base_size,
			const char *overlay, long long size, const struct proc_opts *id, char **err);
/* Create an empty qcow2 disk of `size` bytes, the same way. */
int qemu_disk_create(const char *path, long long size, const struct proc_opts *id, char **err);

int qemu_powerdown(const struct vm_paths *p, char **err);  /* ACPI power button */
int qemu_reset(const struct vm_paths *p, char **err);      /* QMP system_reset */
void qemu_kill(const struct vm_paths *p);                  /* SIGKILL, last resort */

/*
 * End the VM's QEMU now, for a forced stop or a delete: QMP quit, SIGKILL
 * when it has not quit within grace_ms (the QMP exchange included; with
 * grace_ms 0, SIGKILL at once), and wait until the process is gone.
 * killed(arg), when given, runs once SIGKILL is sent, before the wait:
 * what can go while the kernel tears the process down.
 * 0 when no QEMU of this VM runs any more; -1 and a message otherwise.
 */
int qemu_end(const struct vm_paths *p, int grace_ms, void (*killed)(void *), void *arg,
	     char **err);

/* QEMU appends everything the guest prints to serial.log; a chatty (or
 * hostile) guest must not fill the disk: past 16 MiB the head is cut. */
void qemu_serial_log_cap(const struct vm_paths *p);

#endif
