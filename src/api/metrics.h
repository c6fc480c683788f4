/*
 * metrics — GET /metrics (issue 15 §1): this host's VMs, the host itself
 * and hcd's own health in the Prometheus text format (promtext.h).
 * docs/API.md lists every family.
 *
 * What the loop does for a scrape is copy its own counters (requests per
 * route, the agent's passes, the streams, the audit journal) — a few
 * kilobytes — and hand the rest to a worker (req_defer_on): reading the
 * store (through a handle of the metrics' own, never the loop's), /proc
 * of each QEMU, the taps' counters (one netlink dump) and rendering the
 * text.  Disk counters come from a cache that a separate worker job
 * refreshes from QMP query-blockstats at most every
 * metrics_disk_interval seconds, started by a scrape that finds it old:
 * a scrape never waits on a QEMU, on the loop or off it.
 *
 * The worker is the metrics' own thread, at the lowest priority (nice
 * 19): collecting is tens of milliseconds of CPU at 1,000 VMs, which on a
 * small host competes with the loop for a CPU; at nice 19 it yields.  A
 * scrape is the first thing to wait when the host is busy, never the
 * API (docs/BENCHMARKS.md).
 *
 * Who may scrape: admins, or the bearer of the token in
 * metrics_token_file (ROUTE_METRICS, identity.h).
 */
#ifndef HC_API_METRICS_H
#define HC_API_METRICS_H

#include "api/api.h"
#include "api/route.h"

struct metrics *metrics_new(struct api_ctx *ctx, char **err);
/* Ends the metrics' own worker: scrapes under way finish first, queued
 * ones are answered 503 (req_defer's rule).  Before the listeners stop. */
void metrics_stop(struct metrics *m);
void metrics_free(struct metrics *m);
/* The metrics' worker: its descriptor to poll (-1: none), and its done
 * callbacks to run on the loop (never blocks). */
int metrics_fd(const struct metrics *m);
void metrics_run(struct metrics *m);

/* An answer is about to be queued (http.c, loop): its route (NULL: the
 * path matched none), method, status and seconds since its headers came. */
void metrics_request(struct metrics *m, const struct route *rt, const char *method, int status,
		     double seconds);

#endif
