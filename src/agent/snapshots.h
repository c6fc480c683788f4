/*
 * agent/snapshots — a VM's snapshot operations between the store and its
 * files (vm/snapshot.h): the job an operation runs, built from the rows
 * on the loop; what its outcome does to the rows; and, at start, the
 * operations a killed hcd left unfinished, run again to their end.
 *
 * Invariant: a snapshot row is ready only once its files are whole, and
 * goes only once its layers are merged away or discarded; the files of
 * an operation are changed only while its rows say it is under way (the
 * agent then starts no QEMU on them: reconcile.c).
 */
#ifndef HC_AGENT_SNAPSHOTS_H
#define HC_AGENT_SNAPSHOTS_H

#include "common/config.h"
#include "store/store.h"
#include "vm/snapshot.h"

/* The job of op on snapshot target of vm (its image im, its snapshot
 * rows snaps[0..n) bottom up, target among them).  NULL and a message
 * when the VM has no disk at all. */
struct snap_job *snap_job_new(const struct config *cfg, const struct vm *vm, const struct image *im,
			      const struct snapshot *snaps, size_t n, enum snap_op op, uint64_t target,
			      char **err);

/* The rows after the job ran: ok → ready / removed as the operation
 * wants; a failed creation was undone on disk (snapshot_undo_create) and
 * its row goes; a failed restore or delete stays under way (the files
 * are half way) and is retried at the next start. */
void snap_job_settle(struct store *st, struct snap_job *j, bool ok);

/* At start, before the agent's first pass: finish every snapshot
 * operation of this host's VMs that a crash interrupted. */
void snapshots_recover(struct store *st, const struct config *cfg);

#endif
