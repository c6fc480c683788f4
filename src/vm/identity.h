/*
 * identity — the unprivileged uid/gid each VM's QEMU runs as (DESIGN §3).
 *
 * Every VM gets its own uid and a gid of the same number from the range
 * [qemu_uid_base, qemu_uid_base + qemu_uid_count) of hcd.conf:
 *
 *     uid = gid = qemu_uid_base + (VM ID mod qemu_uid_count)
 *
 * so one escaped QEMU can neither signal another nor open its disks, and
 * the number says which VM a process or file belongs to.  The range must
 * be nobody else's: identity_range_check() refuses one that overlaps an
 * account or group (NSS: /etc/passwd, LDAP, …), a subordinate id range
 * of /etc/subuid or /etc/subgid (a user's containers map those), nobody
 * (65534), the 16-bit -1 (65535), or that reaches 2^31.  Two VMs of this
 * host whose IDs differ by a multiple of the count would share a number:
 * the agent refuses to start the second one.
 */
#ifndef HC_IDENTITY_H
#define HC_IDENTITY_H

#include "common/proc.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The uid (= gid) of a VM (pure). */
uid_t identity_uid(long long base, long long count, uint64_t vm_id);

/* 0 when [base, base+count) is free for VMs; else -1 and a message. */
int identity_range_check(long long base, long long count, char **err);

/*
 * How QEMU runs (common/proc.h): as the VM's uid/gid and, with KVM, in the
 * group that may open /dev/kvm (QEMU opens it as the VM's uid, so the
 * device must be group-accessible, e.g. root:kvm 0660 as udev makes it).
 * -1 and a message when KVM is wanted but its device is root's alone.
 */
int identity_qemu(long long base, long long count, uint64_t vm_id, bool kvm,
		  struct proc_opts *out, char **err);

/* How a short helper (qemu-img, genisoimage) working on a VM's files
 * runs: as the VM's uid/gid, its address space and CPU time limited. */
void identity_tool(long long base, long long count, uint64_t vm_id, struct proc_opts *out);

#endif
