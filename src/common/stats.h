/*
 * stats — hcd's own health counters, for GET /metrics (issue 15 §1).
 *
 * The one piece of process-wide mutable state outside the daemon context,
 * like the log level: the counted events happen deep inside modules that
 * have no reason to know each other (the store's engines, the firewall,
 * the metadata service, the logins), and threading a registry through
 * all of them would couple them to the metrics for no gain.  So the
 * counters are fixed, named by an enum, and only ever grow:
 *
 *   - writers anywhere (the loop or a worker thread) call stat_inc /
 *     stat_observe: one relaxed atomic add, no lock, no allocation;
 *   - the metrics renderer reads them with stat_get / stat_hist_get, on
 *     any thread; a histogram read while written may be off by the one
 *     observation under way, which Prometheus tolerates (the next scrape
 *     sees it).
 *
 * Durations share one set of bucket bounds (STAT_BOUNDS): from half a
 * millisecond (an API request) to a minute (a reconcile pass at scale).
 */
#ifndef HC_STATS_H
#define HC_STATS_H

#include <stdint.h>

enum stat_counter {
	STAT_METADATA_REQUESTS,    /* requests the metadata service answered */
	STAT_METADATA_THROTTLED,   /* of them, refused 429 (a VM over metadata_rate) */
	STAT_LOGIN_FAILURES,       /* wrong user, password or code (not throttled ones) */
	STAT_LOGIN_THROTTLED,      /* logins refused 429 before any check */
	STAT_PASSWORD_CHECKS,      /* argon2id runs of credential checks, real or dummy:
	                            * one per checked attempt, whatever the backend */
	STAT_STORE_ERRORS,         /* statements or transactions the database failed */
	STAT_STORE_RECONNECTS,     /* PostgreSQL connections made again (writer or listener) */
	STAT_FIREWALL_CHANGED,     /* firewall_apply sent a new ruleset */
	STAT_FIREWALL_UNCHANGED,   /* it found the ruleset in place */
	STAT_FIREWALL_FAILED,      /* it failed */
	STAT_N
};

enum stat_hist {
	HIST_RECONCILE,            /* one agent pass */
	HIST_FIREWALL,             /* one firewall_apply (generate, compare, send) */
	HIST_N
};

/* Upper bounds in seconds of the finite buckets; +Inf is the count. */
#define STAT_BOUNDS 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, \
		    1, 2.5, 5, 10, 30, 60
#define STAT_N_BOUNDS 16
extern const double stat_bounds[STAT_N_BOUNDS];

/* The bucket a duration falls in: 0..STAT_N_BOUNDS (the last: above every bound). */
int stat_bucket(double seconds);

void stat_inc(enum stat_counter c);
uint64_t stat_get(enum stat_counter c);

/* A histogram as Prometheus wants it: per bucket the observations at or
 * below its bound (not cumulative here: the renderer adds up), their
 * number and the sum of the durations. */
struct stat_hist_snap {
	uint64_t buckets[STAT_N_BOUNDS + 1];
	uint64_t count;
	double sum;
};

void stat_observe(enum stat_hist h, double seconds);
void stat_hist_get(enum stat_hist h, struct stat_hist_snap *out);

/* Seconds on the monotonic clock, for timing what is observed. */
double stat_now(void);

#endif
