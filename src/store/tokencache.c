/* tokencache — see tokencache.h.  Open addressing with a short probe
 * window; the hash is SHA-256 hex, so its first digits index evenly. */
#include "store/tokencache.h"

#include <stdlib.h>
#include <string.h>

#define PROBE 8

struct tokencache {
	struct tokencache_entry *v;
	unsigned n;
	int64_t ttl_ms;
	uint64_t gen;           /* entries of older generations are gone */
};

struct tokencache *tokencache_new(unsigned slots, int64_t ttl_ms)
{
	struct tokencache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->n = slots ? slots : 1;
	c->ttl_ms = ttl_ms;
	c->gen = 1;
	c->v = calloc(c->n, sizeof(*c->v));
	if (c->v == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void tokencache_free(struct tokencache *c)
{
	if (c == NULL)
		return;
	free(c->v);
	free(c);
}

static unsigned home(const struct tokencache *c, const char *hash)
{
	unsigned h = 0;

	for (int i = 0; i < 8 && hash[i]; i++)
		h = h * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : (hash[i] | 0x20) - 'a' + 10);
	return h % c->n;
}

static bool live(const struct tokencache *c, const struct tokencache_entry *e, int64_t now_ms)
{
	return e->gen == c->gen && now_ms - e->cached_ms < c->ttl_ms;
}

const struct tokencache_entry *tokencache_get(struct tokencache *c, const char *hash,
					      int64_t now_s, int64_t now_ms)
{
	unsigned i = home(c, hash);

	for (int k = 0; k < PROBE; k++, i = (i + 1) % c->n) {
		const struct tokencache_entry *e = &c->v[i];
		if (live(c, e, now_ms) && strcmp(e->hash, hash) == 0)
			return e->expires > now_s ? e : NULL;
	}
	return NULL;
}

void tokencache_put(struct tokencache *c, const char *hash, uint64_t id, uint64_t owner,
		    bool admin, int64_t expires, int64_t now_ms)
{
	unsigned i = home(c, hash), pick = i;

	/* The same hash, else a dead slot, else the oldest in the window. */
	for (int k = 0; k < PROBE; k++, i = (i + 1) % c->n) {
		struct tokencache_entry *e = &c->v[i];
		if (strcmp(e->hash, hash) == 0 || !live(c, e, now_ms)) {
			pick = i;
			break;
		}
		if (e->cached_ms < c->v[pick].cached_ms)
			pick = i;
	}
	struct tokencache_entry *e = &c->v[pick];
	memset(e, 0, sizeof(*e));
	strncpy(e->hash, hash, TOKENCACHE_HASH_LEN);
	e->id = id;
	e->owner = owner;
	e->admin = admin;
	e->expires = expires;
	e->cached_ms = now_ms;
	e->gen = c->gen;
}

void tokencache_flush(struct tokencache *c)
{
	if (c)
		c->gen++;
}
