/* limit — see limit.h. */
#include "metadata/limit.h"

#include "common/ratelimit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	bool used;
	uint8_t key[LIMIT_KEY_BYTES];
	struct rate_bucket b;
};

struct limit_table {
	double rate, burst;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct slot slots[LIMIT_SLOTS];
};

struct limit_table *limit_new(double rate, double burst)
{
	struct limit_table *t;

	if (sodium_init() < 0 || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->rate = rate;
	t->burst = burst;
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	return t;
}

void limit_free(struct limit_table *t)
{
	free(t);
}

/* A bucket that would hold `burst` tokens by now carries no state. */
static bool brimful(const struct limit_table *t, const struct slot *s, int64_t now_ms)
{
	double tokens = s->b.tokens;

	if (now_ms > s->b.at_ms)
		tokens += (double)(now_ms - s->b.at_ms) / 1000.0 * t->rate;
	return tokens >= t->burst;
}

bool limit_take(struct limit_table *t, const void *key, size_t len, int64_t now_ms)
{
	uint8_t k[LIMIT_KEY_BYTES] = { 0 };
	uint64_t h;
	struct slot *hit = NULL, *free_slot = NULL;

	if (t->rate <= 0)
		return true;
	memcpy(k, key, len < sizeof(k) ? len : sizeof(k));
	crypto_shorthash((uint8_t *)&h, k, sizeof(k), t->hash_key);
	for (size_t i = 0; i < LIMIT_PROBE && hit == NULL; i++) {
		struct slot *s = &t->slots[(h + i) % LIMIT_SLOTS];
		if (s->used && memcmp(s->key, k, sizeof(k)) == 0)
			hit = s;
		else if (free_slot == NULL && (!s->used || brimful(t, s, now_ms)))
			free_slot = s;
	}
	if (hit == NULL && free_slot != NULL) {
		hit = free_slot;
		hit->used = true;
		memcpy(hit->key, k, sizeof(k));
		ratelimit_fill(&hit->b, t->burst, now_ms);
	}
	if (hit == NULL)
		hit = &t->slots[h % LIMIT_SLOTS];   /* all in use: share, stricter */
	return ratelimit_take(&hit->b, t->rate, t->burst, now_ms, NULL);
}
