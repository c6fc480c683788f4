/*
 * metrics — GET /metrics (issue 15 §1): this host's VMs, the host itself
 * and hcd's own health in the Prometheus text format (promtext.h).
 * docs/API.md lists every family.
 *
 * What the loop does for a scrape is copy its own counters (requests per
 * route, the agent's passes, the streams, the audit journal) — a few
 * kilobytes — and hand the rest to a worker (req_defer): reading the
 * store (through a handle of the metrics' own, never the loop's), /proc
 * of each QEMU, the taps' counters (one netlink dump) and rendering the
 * text.  Disk counters come from a cache that a separate worker job
 * refreshes from QMP query-blockstats at most every
 * metrics_disk_interval seconds, started by a scrape that finds it old:
 * a scrape never waits on a QEMU, on the loop or off it.
 *
 * Who may scrape: admins, or the bearer of the token in
 * metrics_token_file (ROUTE_METRICS, identity.h).
 */
#ifndef HC_API_METRICS_H
#define HC_API_METRICS_H

#include "api/api.h"
#include "api/route.h"

struct metrics *metrics_new(struct api_ctx *ctx, char **err);
/* After the worker pool: no scrape is under way any more. */
void metrics_free(struct metrics *m);

/* An answer is about to be queued (http.c, loop): its route (NULL: the
 * path matched none), method, status and seconds since its headers came. */
void metrics_request(struct metrics *m, const struct route *rt, const char *method, int status,
		     double seconds);

#endif
