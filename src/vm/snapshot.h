/*
 * snapshot — disk snapshots of a VM as qcow2 layers in its directory
 * (issue 14 §2), and the flattened copy of its root disk that becomes an
 * image.  The slow halves (qemu-img, QMP) run on worker threads: a job
 * carries everything it needs and touches only the VM's own files.
 *
 * Layout: each disk of the VM ("disk" the root disk, "data<N>" the data
 * disks) is a chain, bottom up:
 *
 *     [image]  ←  snap-<S1>-<disk>.qcow2  ←  …  ←  snap-<Sn>-<disk>.qcow2  ←  <disk>.qcow2
 *
 * where S1 < … < Sn are the IDs of the VM's snapshots (store rows, the
 * truth about which layers exist) and <disk>.qcow2 is always the disk the
 * guest writes.  Layer S holds what the disk had at snapshot S beyond the
 * layers below it; it is never written after the snapshot is taken.
 *
 * Invariants:
 *   - every chain QEMU opens is named node by node in its argv
 *     (vm/qemu_argv.h): no backing file is taken from a header.  The
 *     headers are still kept right (each names the file below it, with
 *     its format), because qemu-img follows them when it rebases or
 *     flattens; every such header was written by hackcloud (a layer
 *     is never uploaded) and images carry no backing file (image/files.h);
 *   - qemu-img runs as the VM's unprivileged user with resource limits and
 *     every format named (-f, -F), never as root;
 *   - every step is idempotent, so an operation a crash interrupted is
 *     finished by running it again (snapshot_run): creating renames the
 *     top to the layer only when the layer is missing and makes a top only
 *     when it is missing; restoring makes the top anew; deleting rebases
 *     the layer above onto the one below before the layer's file goes;
 *   - a live snapshot (VM running) cuts all disks at one instant: one QMP
 *     transaction of blockdev-snapshot actions puts a new top node over
 *     every disk's current one.  That is crash-consistent (as if the power
 *     was cut at that instant), not application-consistent: hackcloud has
 *     no guest agent to quiesce file systems.
 */
#ifndef HC_SNAPSHOT_H
#define HC_SNAPSHOT_H

#include "vm/qemu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum snap_op {
	SNAP_CREATE,       /* stopped VM: qemu-img */
	SNAP_CREATE_LIVE,  /* running VM: QMP transaction */
	SNAP_RESTORE,      /* stopped VM: every disk back to the target */
	SNAP_DELETE,       /* stopped VM: the target's layers merged away */
};

struct snap_disk {
	char node[32];      /* "disk" | "data<N>": its node (and device "vd-<node>") in QEMU */
	char *top;          /* the file the guest writes */
	long long size;     /* its virtual size, for a new top */
};

struct snap_job {
	/* in */
	enum snap_op op;
	uint64_t target;              /* the snapshot operated on */
	struct vm_paths paths;
	struct proc_opts tool;        /* qemu-img: as the VM, limited */
	int copy_timeout_s;           /* for qemu-img runs that copy data (rebase, convert) */
	struct snap_disk *disks;
	size_t n_disks;
	char *base, *base_format;     /* the image under the root disk, or NULL */
	uint64_t *chain;              /* the VM's snapshot IDs, bottom up (target included) */
	size_t n_chain;
	/* out */
	long long bytes;              /* create: the new layers' bytes on disk */
	char *err;
};

/* STATE_DIR/vms/<id>/snap-<8 hex>-<node>.qcow2 (malloc'd). */
char *snap_layer_path(const struct vm_paths *p, uint64_t snap, const char *node);

/* Pure: the QEMU node name a live snapshot gives a disk's new top:
 * "<node>-t<8 hex>". */
void snap_live_node(const char *node, uint64_t snap, char out[32]);

/* Pure: where in chain[0..n) id is, or -1. */
long snap_chain_index(const uint64_t *chain, size_t n, uint64_t id);

/* Run the job's operation (idempotent, see above).  0, or -1 with j->err. */
int snapshot_run(struct snap_job *j);

/* A creation that failed, taken back: every disk's layer becomes its top
 * again (over a new, empty top).  For a stopped VM only. */
void snapshot_undo_create(struct snap_job *j);

/* The root disk (j->disks[0]) flattened into `out` (a qcow2 of its own,
 * no backing), written by qemu-img as the VM into a file made for it.
 * 0, or -1 with j->err. */
int snapshot_flatten(struct snap_job *j, const char *out);

void snap_job_free(struct snap_job *j);

#endif
