/*
 * resize — a VM's QEMU made to match the size in its row (issue 14 §3):
 * vCPUs, memory and disks.  The store decides what is allowed
 * (store_vm_resize, store_vm_disk_grow); this only converges, like
 * hotplug.h does for NICs, so QEMU's own answers are all the state there
 * is and every step can be re-run after a crash.
 *
 * A running VM, through QMP:
 *   - memory: the balloon's target is the row's memory_mib.  QEMU keeps
 *     the memory it started with (-m) as the ceiling: the guest gives
 *     pages back to the host and takes them again, never more;
 *   - vCPUs: the slots of -smp N,maxcpus=M (query-hotpluggable-cpus), in
 *     (socket, core, thread) order: missing ones are filled from the
 *     lowest (device_add "cpu-<slot>"), surplus ones asked to go from the
 *     highest (device_del by QOM path; the guest ejects it through ACPI,
 *     so it completes on a later pass).  Slot 0, the boot processor,
 *     never goes.  The guest onlines a new CPU itself (udev, or
 *     /sys/devices/system/cpu/cpuN/online);
 *   - disks: a format node ("disk", "data<N>": qemu_argv.h) smaller than
 *     the row's size grows with block_resize; the guest's virtio-blk
 *     sees the new capacity at once.
 * A stopped VM: resize_disk_offline at its next start (vm/launch.h);
 * cpus and memory are simply the next argv.
 */
#ifndef HC_RESIZE_H
#define HC_RESIZE_H

#include "common/proc.h"
#include "store/store.h"
#include "vm/qemu.h"

#include <stdint.h>

/* QEMU's maxcpus on this host: configured (vm_max_cpus), or this host's
 * CPU count when 0; the VM's own cpus when it has more. */
int resize_max_cpus(int configured, int cpus);

/* The size a VM's row asks for (vCPUs, memory, disks) in one number,
 * never 0: QEMU is asked only when this differs from what it was last
 * made to match. */
uint64_t resize_sig(const struct vm *vm);

/* One pass over a running VM; failures are logged.  0 when QEMU now has
 * exactly the row's size (nothing to retry), else -1. */
int resize_running(const struct vm *vm, const struct vm_paths *p);

/* The qcow2 file at path grown to size bytes when its header says less
 * (never shrunk): qemu-img resize as the VM (id), the format named and
 * the backing given as none, so nothing but this file is opened.  0, or
 * -1 and a message.  For worker threads. */
int resize_disk_offline(const char *path, long long size, const struct proc_opts *id, char **err);

#endif
