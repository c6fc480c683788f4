/*
 * qemu — QEMU processes on this host: where a VM's runtime files live,
 * launching (QEMU daemonizes, so it outlives hcd), finding a running VM
 * again after hcd restarts (pidfile + cmdline check against PID reuse),
 * and the three steps of stopping it.
 *
 * Layout of STATE_DIR/vms/<id>/:
 *   qmp.sock  serial.sock  serial.log  qemu.pid  disk.qcow2  qemu.err
 *   data0.qcow2 data1.qcow2 …   (extra data disks, in the VM's order)
 */
#ifndef HC_QEMU_H
#define HC_QEMU_H

#include "vm/qemu_argv.h"

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

int vm_paths_init(struct vm_paths *p, const char *state_dir, uint64_t vm_id);
void vm_paths_free(struct vm_paths *p);

/* The PID of this VM's QEMU when it runs, else 0. */
pid_t qemu_running_pid(const struct vm_paths *p);

/* Launch; returns once QEMU has daemonized.  -1 and a message on failure. */
int qemu_launch(const struct qemu_spec *spec, const struct vm_paths *p, char **err);

/* STATE_DIR/vms/<id>/data<index>.qcow2 (malloc'd). */
char *vm_data_disk_path(const struct vm_paths *p, size_t index);

/* Create the VM's qcow2 overlay on a base image (never written to), of
 * `size` bytes (0: the base's size; never smaller than the base). */
int qemu_overlay_create(const char *base, const char *base_format, const char *overlay,
			long long size, char **err);
/* Create an empty qcow2 disk of `size` bytes. */
int qemu_disk_create(const char *path, long long size, char **err);

int qemu_powerdown(const struct vm_paths *p, char **err);  /* ACPI power button */
int qemu_quit(const struct vm_paths *p, char **err);       /* QMP quit */
int qemu_reset(const struct vm_paths *p, char **err);      /* QMP system_reset */
void qemu_kill(const struct vm_paths *p);                  /* SIGKILL, last resort */

#endif
