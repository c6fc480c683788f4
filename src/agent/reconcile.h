/*
 * reconcile — the host agent: converges this host to the store.
 *
 * Invariants it maintains (each step is idempotent and can be re-run from
 * any point, e.g. after hcd was killed):
 *   - a QEMU process runs iff its VM is on this host and desired running;
 *   - a tap exists iff its NIC's VM runs here; a bridge exists for every
 *     network in the store; a vxlan link exists iff its network has NICs
 *     of VMs placed here and on another live host, its FDB exactly what
 *     the store says (net/vxlan.h);
 *   - a VM's runtime directory exists iff its row does; a VM desired
 *     deleted has its process stopped, files removed, then its row purged;
 *   - nothing named like ours (v…, b…, x…, a vms/ directory) survives without
 *     a row that wants it;
 *   - a NIC's limits are what the store says (agent/bandwidth.h), its ifb
 *     i… goes with its tap, and a tap's counters are taken into the store
 *     right before it goes (agent/meter.h).
 * It never blocks on a guest or on a slow step: starting a VM (its disks,
 * seed, taps and QEMU: vm/launch.h) and ending a QEMU (quit, SIGKILL) run
 * as jobs on hcd's worker pool, one at a time per VM, and while a VM has
 * one in flight no pass touches it; the job's end wakes the agent.  A
 * stop walks powerdown → (stop_timeout) → quit → SIGKILL; a delete or a
 * forced stop skips the powerdown.
 */
#ifndef HC_RECONCILE_H
#define HC_RECONCILE_H

#include "common/config.h"
#include "common/worker.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct agent;

/* NULL and a message when it cannot work here (e.g. qemu_uid_base and
 * qemu_uid_count name ids that accounts use: vm/identity.h). */
struct agent *agent_new(struct store *st, const struct config *cfg, const char *accel,
			struct worker_pool *workers, char **err);
void agent_free(struct agent *a);
/* Called (on the loop) when a job ended and the agent wants a pass. */
void agent_set_wake_hook(struct agent *a, void (*fn)(void *), void *arg);

/* Why a pass runs.  The caller gathers the reasons that came up while
 * it was busy and runs one pass for all of them: a burst of changes
 * costs one pass per turn of its loop, not one per change. */
enum agent_wake {
	AGENT_WAKE_LOCAL  = 1 << 0, /* this process changed the store (change hook) */
	AGENT_WAKE_NOTIFY = 1 << 1, /* another process announced a change (store_notify_drain) */
	AGENT_WAKE_RESYNC = 1 << 2, /* the periodic safety net, or a configuration reload */
	AGENT_WAKE_RETRY  = 1 << 3, /* a transition in flight or a failed step asked again */
	AGENT_WAKE_JOB    = 1 << 4, /* a launch or an end of QEMU finished on a worker */
};

/* Passes per reason since start (a pass with two reasons counts in both;
 * the first pass at start counts in none).  A host acted on another's
 * change through a notification when `notify` grew and `resync` did not. */
struct agent_wakeups {
	uint64_t local, notify, resync, retry, job;
};

/* One pass, for the reasons in `why` (AGENT_WAKE_* bits, 0 at start).
 * Returns how many ms until it wants another pass even without a change
 * (transitions in flight), or -1 when only changes matter.  A pass that a
 * notification caused logs, at info, the first change it makes. */
int agent_reconcile(struct agent *a, unsigned why);
void agent_wakeups(const struct agent *a, struct agent_wakeups *out);
/* Live migrations' jobs (agent/migrate.h) have a pool of their own: the
 * loop polls this descriptor and runs their ends when it is readable. */
int agent_migration_fd(const struct agent *a);
void agent_migration_run(struct agent *a);
/* How long the last pass took, in microseconds (0 before the first). */
long long agent_last_pass_us(const struct agent *a);

/* The traffic meter of this host (agent/meter.h), for hcd's loop to tick. */
struct meter *agent_meter(struct agent *a);

/* Ask a running VM to reset (reboot); 0, or -1 and a message. */
int agent_vm_reboot(struct agent *a, uint64_t vm_id, char **err);

/* Keep the agent's hands off a VM while the API works on its disks
 * (snapshots, vm/snapshot.h): no pass starts, stops or deletes it until
 * agent_vm_release.  Refused (-1 and a message) while a job of the agent
 * is in flight for it, or when its QEMU does not run (running) or runs
 * (!running). */
int agent_vm_hold(struct agent *a, uint64_t vm_id, bool running, char **err);
void agent_vm_release(struct agent *a, uint64_t vm_id);

/* Paths of a VM's serial log / console socket (malloc'd). */
char *agent_vm_log_path(struct agent *a, uint64_t vm_id);
char *agent_vm_console_path(struct agent *a, uint64_t vm_id);

#endif
