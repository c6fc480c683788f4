/*
 * hotplug — a running VM's NICs made to match its row, through QMP.
 *
 * A NIC in the row but not in QEMU gets its tap (made when missing), the
 * tap's descriptor handed over (QMP getfd: QEMU cannot open taps itself),
 * a netdev on it and a virtio-net device at the NIC's PCI slot (store.h:
 * where a QEMU launched from the row puts it too, so a live migration's
 * destination has this layout); a NIC in QEMU but not in the
 * row is asked to go (device_del needs the guest's consent, so it
 * completes on a later pass, when its netdev is deleted too and the
 * agent's sweep removes the tap).  Device IDs carry the NIC's ID
 * (qemu_argv.h), so QEMU's device list is all the state there is.
 */
#ifndef HC_HOTPLUG_H
#define HC_HOTPLUG_H

#include "store/store.h"
#include "vm/qemu.h"

/* One pass over a running VM; failures are logged.  0 when QEMU's NICs
 * are now exactly the row's (nothing left to retry), else -1. */
int hotplug_nics(const struct vm *vm, const struct vm_paths *p);

/* Delete the netdev of tap (a NIC whose device is gone) so that QEMU lets
 * go of the tap. */
void hotplug_netdev_release(const struct vm_paths *p, const char *tap);

#endif
