/*
 * cluster — this host's membership of the cluster and the scheduler role
 * (DESIGN §3, §4; issue 7).
 *
 * Contract:
 *   - cluster_new registers this host in the store (name = host_name,
 *     address = underlay, CPUs and memory read from the kernel, the
 *     accelerator), so the scheduler can place VMs here at once.
 *   - cluster_tick, called from hcd's loop, heartbeats every
 *     heartbeat_interval seconds (a write only when another live host
 *     is registered to read it) and, with the scheduler role, once it has
 *     run for dead_timeout seconds, marks hosts silent for dead_timeout
 *     seconds dead (never its own) and re-places their ephemeral VMs.  Every hcd may do this at the same time: each step is
 *     one store transaction whose outcome does not depend on who ran it.
 *     It returns the milliseconds until it wants to run again.
 *   - cluster_policy fills the policy half of a placement (CPU
 *     overcommit, which hosts count as alive: those seen within
 *     dead_timeout, and this host itself) from this host's settings;
 *     store_vm_create_placed then chooses the host (spread by free memory,
 *     or the pinned one) in the transaction that creates the VM.
 */
#ifndef HC_CLUSTER_H
#define HC_CLUSTER_H

#include "common/config.h"
#include "store/store.h"

#include <stdbool.h>

struct cluster;

struct cluster *cluster_new(struct store *st, const struct config *cfg, const char *accel,
			    char **err);
void cluster_free(struct cluster *c);
long long cluster_tick(struct cluster *c, long long now_ms);
void cluster_policy(const struct cluster *c, struct placement *p);

#endif
