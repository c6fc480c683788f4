/*
 * backoff — exponential back-off after failed logins (DESIGN §8), keyed by
 * a string such as "user:NAME" or "addr:IP".  Pure: the caller passes the
 * time, so tests (and the API's state listing) need no wall clock.
 *
 * After the n-th consecutive failure of a key, the key must wait
 * min(cap, base * 2^(n-1)) before it may try again; a success clears it.
 *
 * Invariants:
 *   - the table never holds more than its capacity; when it is full, a new
 *     key replaces the entry that restricts least — one no longer waiting
 *     and quiet longest, else the one whose wait ends first — so flooding
 *     the table with fresh keys (each waiting only `base`) cannot evict a
 *     key that has earned a long wait;
 *   - an entry whose wait ended more than `forget` ago counts as gone: its
 *     failures no longer add up;
 *   - keys longer than BACKOFF_KEY_MAX are cut there (the caller's keys
 *     are names and addresses, far shorter).
 */
#ifndef HC_AUTH_BACKOFF_H
#define HC_AUTH_BACKOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKOFF_KEY_MAX 127

struct backoff_config {
	size_t capacity;        /* entries; 0 = 1024 */
	double base_s;          /* first delay; 0 = 1 s */
	double cap_s;           /* longest delay; 0 = 300 s */
	double forget_s;        /* quiet time after which failures are forgotten; 0 = 3600 s */
};

struct backoff;

/* NULL when out of memory.  cfg may be NULL for the defaults. */
struct backoff *backoff_new(const struct backoff_config *cfg);
void backoff_free(struct backoff *t);

/* True when key may try now.  When not, *retry_after_s (if not NULL) is
 * the seconds left to wait (0 when allowed). */
bool backoff_check(const struct backoff *t, const char *key, int64_t now_ms,
		   double *retry_after_s);

/* Count a failure of key at now_ms and start its wait. */
void backoff_fail(struct backoff *t, const char *key, int64_t now_ms);

/* A success: forget key. */
void backoff_success(struct backoff *t, const char *key);

/* State of key: false when the table has no entry for it (nothing to wait
 * for).  failures: consecutive failures; delay_s: the wait the last failure
 * set; until_ms: when that wait ends.  Pointers may be NULL. */
bool backoff_get(const struct backoff *t, const char *key, unsigned *failures, double *delay_s,
		 int64_t *until_ms);

/* Call fn for every entry (in no particular order). */
void backoff_foreach(const struct backoff *t,
		     void (*fn)(void *ctx, const char *key, unsigned failures, double delay_s,
				int64_t until_ms),
		     void *ctx);

#endif
