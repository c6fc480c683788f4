/*
 * throttle — failed-login backoff by user name and by peer (DESIGN §8),
 * built on two separate backoff tables (backoff.h).
 *
 * Every failed attempt counts against both the user name tried and the
 * peer's address key (common/addrkey.h: an IPv4 address, an IPv6 /64, or
 * "unix:UID"); an attempt must wait while either key waits.  A success
 * clears both.
 *
 * Invariants:
 *   - user entries and address entries live in tables of their own, so no
 *     number of failures from fresh addresses can evict a user's entry and
 *     reset the backoff it earned (and the other way round);
 *   - within one table the least restrictive entry goes first (backoff.h);
 *   - pure: the caller passes the time.
 */
#ifndef HC_AUTH_THROTTLE_H
#define HC_AUTH_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct throttle_config {
	size_t users;           /* entries of the user table; 0 = 1024 */
	size_t addrs;           /* entries of the address table; 0 = 1024 */
	double base_s, cap_s;   /* backoff.h; 0 = 1 s and 300 s */
};

struct throttle;

struct throttle *throttle_new(const struct throttle_config *cfg);
void throttle_free(struct throttle *t);

/* True when an attempt for user from addr may be checked now; else
 * *wait_s (if not NULL) is the longer of the two waits. */
bool throttle_check(const struct throttle *t, const char *user, const char *addr,
		    int64_t now_ms, double *wait_s);
void throttle_fail(struct throttle *t, const char *user, const char *addr, int64_t now_ms);
void throttle_success(struct throttle *t, const char *user, const char *addr);
/* The user's consecutive failures and current delay (0, 0 when none). */
void throttle_user_state(const struct throttle *t, const char *user, unsigned *failures,
			 double *delay_s);

/* Every entry, keyed "user:NAME" or "addr:KEY". */
void throttle_foreach(const struct throttle *t,
		      void (*fn)(void *ctx, const char *key, unsigned failures, double delay_s,
				 int64_t until_ms),
		      void *ctx);

#endif
