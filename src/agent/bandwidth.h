/*
 * bandwidth — the agent's side of per-NIC limits (issue 13 §1): what each
 * NIC of this host gets, derived from the store on every pass and applied
 * through net/shaping, like the firewall and the taps.
 *
 * What a NIC gets, per direction (bandwidth_effective, pure):
 *   its own limit, else its network's default, else none;
 *   then no faster than its owner's rate cap (a NIC "without a limit" of
 *   a capped user gets the cap: unlimited is more than the cap);
 *   then, while its owner's or its VM's traffic quota of the month is
 *   used up, no faster than quota_throttle_rate.
 * The month rolls over in UTC; the quota's use is the month's counters
 * (store/usage.h), so the throttle lifts by itself at the month's start.
 */
#ifndef HC_AGENT_BANDWIDTH_H
#define HC_AGENT_BANDWIDTH_H

#include "common/config.h"
#include "common/rate.h"
#include "store/usage.h"

#include <stdbool.h>

/* Why a direction has the limit it has. */
enum limit_source { LIMIT_NONE, LIMIT_NIC, LIMIT_NETWORK, LIMIT_CAP, LIMIT_THROTTLE };

extern const char *const limit_source_names[];   /* "none", "nic", … as the API says them */

/* Pure.  throttle: bits/s while over quota.  why (may be NULL): per direction. */
struct nic_limit bandwidth_effective(const struct nic_shaping *s, uint64_t throttle,
				     enum limit_source why[2]);
/* quota_throttle_rate of the configuration in bits/s; false when it is not a rate. */
bool bandwidth_throttle_rate(const struct config *cfg, uint64_t *bps);

struct bandwidth;
struct worker_pool;

/* NULL (and a message logged) when the configuration is bad.  The kernel
 * work of an application runs on one of workers (common/worker.h), one
 * application at a time; the pool must outlive b's jobs (it is freed
 * first). */
struct bandwidth *bandwidth_new(struct store *st, const struct config *cfg,
				struct worker_pool *workers);
void bandwidth_free(struct bandwidth *b);
/* Make this host's NICs match the store: what they should get is read
 * now, applied on a worker (inline_: here and now, as hcd's first pass
 * does).  thorough: also read back every redirect filter (the safety-net
 * resync).  Asked while an application runs, it runs again after that
 * one.  Logs what it changed; -1 when reading the store, or an inline
 * application, failed. */
int bandwidth_converge(struct bandwidth *b, bool thorough, bool inline_);
/* Cheap when nothing changed: converges only when what the NICs should
 * get differs from what was applied last (a quota just used up, a month
 * just begun).  For the meter, after it counted. */
int bandwidth_refresh(struct bandwidth *b);

#endif
