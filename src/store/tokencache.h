/*
 * tokencache — what a bearer token stands for, remembered by the hash of
 * the token, so that authenticating a request is no query (issue 12 §4).
 * Pure: the caller passes a monotonic clock.
 *
 * Invariants:
 *   - an entry is answered only while younger than the TTL and while its
 *     token has not expired: a change made elsewhere (another host of a
 *     cluster) is seen within the TTL;
 *   - tokencache_flush forgets every entry at once (a generation count):
 *     the store calls it on every change that can end or alter a token of
 *     this process — a revoke, a user disabled, deleted or changed — so
 *     those take effect at once;
 *   - bounded: a fixed table; a new entry displaces an old one in its
 *     probe window.
 */
#ifndef HC_STORE_TOKENCACHE_H
#define HC_STORE_TOKENCACHE_H

#include <stdbool.h>
#include <stdint.h>

#define TOKENCACHE_HASH_LEN 64

struct tokencache_entry {
	char hash[TOKENCACHE_HASH_LEN + 1];
	uint64_t id, owner;
	bool admin;
	int64_t expires;        /* the token's, wall-clock seconds */
	int64_t cached_ms;      /* monotonic */
	uint64_t gen;
};

struct tokencache;

/* slots: a power of two is not required.  NULL when out of memory. */
struct tokencache *tokencache_new(unsigned slots, int64_t ttl_ms);
void tokencache_free(struct tokencache *c);
/* A live entry for hash, or NULL. */
const struct tokencache_entry *tokencache_get(struct tokencache *c, const char *hash,
					      int64_t now_s, int64_t now_ms);
void tokencache_put(struct tokencache *c, const char *hash, uint64_t id, uint64_t owner,
		    bool admin, int64_t expires, int64_t now_ms);
void tokencache_flush(struct tokencache *c);

#endif
