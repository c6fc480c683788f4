/*
 * connlimit — who may hold a connection to a listener (issue 11 §6).
 * Pure bookkeeping: http.c reports connections as they open, identify
 * their first request and close; this module says which to refuse and
 * which to cut, and http.c does it (shutdown of the socket).
 *
 * Rules:
 *   - at most max_per_key connections per peer key (common/addrkey.h, or
 *     "unix:UID"); a key of "" (root on the unix socket) is never limited
 *     per key;
 *   - a connection is *waiting* from when it opens, and again after each
 *     request it completes, until the headers of its next request have
 *     arrived; a connection waiting longer than header_timeout is cut,
 *     however slowly it trickles bytes (an absolute deadline, unlike
 *     libmicrohttpd's inactivity timeout);
 *   - at most max_total connections: when full, a new one cuts the
 *     connection that has waited longest, and is refused only when none
 *     waits.  So idle connections, from any number of peers, can delay a
 *     client that sends its request at once by no more than a turn of the
 *     loop — they cannot lock it out.
 *
 * Invariants: live (not cut) entries never exceed max_total, nor
 * max_per_key for one key; the waiting list is ordered by the time each
 * started waiting, oldest first.
 */
#ifndef HC_API_CONNLIMIT_H
#define HC_API_CONNLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONN_KEY_LEN 48

struct conn {
	char key[CONN_KEY_LEN];
	void *owner;            /* the caller's: what to cut */
	int64_t since_ms;       /* when it started waiting */
	bool waiting;
	bool cut;               /* refused or cut: closing, no longer counted */
	struct conn *prev, *next;          /* every connection */
	struct conn *wprev, *wnext;        /* waiting ones, oldest first */
};

struct connlimit;

struct connlimit *connlimit_new(size_t max_total, size_t max_per_key, int64_t header_timeout_ms);
/* Every entry must have been removed. */
void connlimit_free(struct connlimit *t);

/*
 * A connection opened (waiting from now).  Returns its entry (NULL when
 * out of memory: refuse it).  When the entry comes back with cut = true
 * the connection is refused: cut it.  *victim, when not NULL, is another
 * connection to cut to make room (already marked cut).
 */
struct conn *connlimit_open(struct connlimit *t, const char *key, void *owner, int64_t now_ms,
			    struct conn **victim);
/* The headers of a request arrived: no longer waiting. */
void connlimit_busy(struct connlimit *t, struct conn *c);
/* A request completed and the connection stays open: waiting again. */
void connlimit_idle(struct connlimit *t, struct conn *c, int64_t now_ms);
/* The connection closed: the entry is freed. */
void connlimit_close(struct connlimit *t, struct conn *c);
/* The next connection whose header deadline has passed (marked cut), or
 * NULL.  Call until NULL. */
struct conn *connlimit_expired(struct connlimit *t, int64_t now_ms);
/* Milliseconds until the next deadline (0 when one has passed), -1 when
 * nothing waits. */
int64_t connlimit_next_ms(const struct connlimit *t, int64_t now_ms);
/* Live connections in total and of key. */
size_t connlimit_count(const struct connlimit *t, const char *key);

#endif
