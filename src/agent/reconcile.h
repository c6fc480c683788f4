/*
 * reconcile — the host agent: converges this host to the store.
 *
 * Invariants it maintains (each step is idempotent and can be re-run from
 * any point, e.g. after hcd was killed):
 *   - a QEMU process runs iff its VM is on this host and desired running;
 *   - a tap exists iff its NIC's VM runs here; a bridge exists for every
 *     network in the store;
 *   - a VM's runtime directory exists iff its row does; a VM desired
 *     deleted has its process stopped, files removed, then its row purged;
 *   - nothing named like ours (v…, b…, a vms/ directory) survives without
 *     a row that wants it.
 * It never blocks on a guest: stopping walks powerdown → quit → SIGKILL
 * across several passes, asking to be called back soon meanwhile.
 */
#ifndef HC_RECONCILE_H
#define HC_RECONCILE_H

#include "common/config.h"
#include "store/store.h"

struct agent;

struct agent *agent_new(struct store *st, const struct config *cfg, const char *accel);
void agent_free(struct agent *a);

/* One pass.  Returns how many ms until it wants another pass even without
 * a change (transitions in flight), or -1 when only changes matter. */
int agent_reconcile(struct agent *a);

/* Ask a running VM to reset (reboot); 0, or -1 and a message. */
int agent_vm_reboot(struct agent *a, uint64_t vm_id, char **err);

/* Paths of a VM's serial log / console socket (malloc'd). */
char *agent_vm_log_path(struct agent *a, uint64_t vm_id);
char *agent_vm_console_path(struct agent *a, uint64_t vm_id);

#endif
