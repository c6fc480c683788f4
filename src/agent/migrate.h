/*
 * migrate (agent) — this host's part of live migrations (issue 14 §1),
 * driven from the store's rows (store/migrations.c) on every agent pass.
 *
 * Who takes which step (each a conditional update of the row, so that
 * when two hosts race for one, exactly one wins):
 *   destination  requested → prepared     its QEMU waits: fresh disks
 *                                          exported over NBD, -incoming
 *                transferred → done        its QEMU holds the whole VM:
 *                                          vms.host flips, then `cont`
 *   source       prepared → transferring   mirrors and RAM (a job)
 *                transferring → transferred  its QEMU paused at the end
 *                → failed                  anything went wrong, the
 *                                          destination did not prepare or
 *                                          take over within
 *                                          migrate_wait_timeout, or is dead
 * After the end, each side finishes its part (source_done, dest_done):
 * done — the destination's guest runs, then the source's QEMU, taps and
 * directory go; failed — the source's guest runs (mirrors and migration
 * cancelled, `cont`), the destination's copy goes.  A source that gives
 * up records "failed" and its reason before it cancels anything: the
 * cancel ends the destination's QEMU, and a destination that found its
 * QEMU gone first would record that instead of the reason.
 *
 * The VM therefore runs on exactly one host whatever fails: the source
 * keeps its QEMU and disks until the destination runs the VM, the
 * destination runs it only after winning "transferred → done", and the
 * source resumes it only after winning "transferred → failed".  A
 * restarted hcd knows nothing but the row: a source that finds
 * "transferring" asks its QEMU (query-migrate) whether the transfer
 * completed and reports it, or fails it; every other step is simply
 * taken again (each is idempotent).
 *
 * All QEMU work runs on a worker pool of its own (vm/migrate.h), one job
 * per VM at a time; while a VM has a migration this host still has work for, the
 * rest of the agent leaves its QEMU alone (migrator_owns).
 */
#ifndef HC_AGENT_MIGRATE_H
#define HC_AGENT_MIGRATE_H

#include "common/config.h"
#include "common/worker.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct migrator;

/* With a worker pool of its own (a transfer holds a thread for minutes);
 * NULL and a message when it cannot start. */
struct migrator *migrator_new(struct store *st, const struct config *cfg, const char *accel,
			      void (*wake)(void *), void *wake_arg, char **err);
/* Gives up the transfers under way first (hcd stops). */
void migrator_free(struct migrator *m);
/* The traffic meter (agent/meter.h): a tap a migration removes has its
 * last counters taken first, as the agent's own ends of QEMU do. */
struct meter;
void migrator_set_meter(struct migrator *m, struct meter *meter);
/* The loop polls this and calls migrator_run when it is readable. */
int migrator_fd(const struct migrator *m);
void migrator_run(struct migrator *m);

/* One look at this host's migrations: takes the steps that are due.
 * Returns ms until it wants another look without a change, or -1. */
int migrator_pass(struct migrator *m);

/* A migration of this VM is under way here (as of the last pass): the
 * agent must not start, stop or adopt its QEMU. */
bool migrator_owns(const struct migrator *m, uint64_t vm_id);

#endif
