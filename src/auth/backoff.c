/* backoff — see backoff.h. */
#include "auth/backoff.h"

#include <stdlib.h>
#include <string.h>

struct backoff_entry {
	char key[BACKOFF_KEY_MAX + 1];
	unsigned failures;
	int64_t delay_ms;       /* the wait the last failure set */
	int64_t until_ms;       /* may try again from then */
};

struct backoff {
	struct backoff_entry *entries;
	size_t n, capacity;
	int64_t base_ms, cap_ms, forget_ms;
};

static int64_t ms_of(double s, double dflt)
{
	return (int64_t)((s > 0 ? s : dflt) * 1000.0);
}

struct backoff *backoff_new(const struct backoff_config *cfg)
{
	struct backoff_config c = cfg ? *cfg : (struct backoff_config){ 0 };
	struct backoff *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->capacity = c.capacity ? c.capacity : 1024;
	t->base_ms = ms_of(c.base_s, 1);
	t->cap_ms = ms_of(c.cap_s, 300);
	t->forget_ms = ms_of(c.forget_s, 3600);
	t->entries = calloc(t->capacity, sizeof(*t->entries));
	if (t->entries == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void backoff_free(struct backoff *t)
{
	if (t == NULL)
		return;
	free(t->entries);
	free(t);
}

/* Compare key with an entry's key as stored (cut at BACKOFF_KEY_MAX). */
static bool key_equal(const struct backoff_entry *e, const char *key)
{
	return strncmp(e->key, key, BACKOFF_KEY_MAX) == 0;
}

static struct backoff_entry *find(const struct backoff *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (key_equal(&t->entries[i], key))
			return &t->entries[i];
	return NULL;
}

static bool forgotten(const struct backoff *t, const struct backoff_entry *e, int64_t now_ms)
{
	return now_ms >= e->until_ms + t->forget_ms;
}

bool backoff_check(const struct backoff *t, const char *key, int64_t now_ms,
		   double *retry_after_s)
{
	const struct backoff_entry *e = find(t, key);

	if (retry_after_s)
		*retry_after_s = 0;
	if (e == NULL || now_ms >= e->until_ms)
		return true;
	if (retry_after_s)
		*retry_after_s = (double)(e->until_ms - now_ms) / 1000.0;
	return false;
}

/* min(cap, base * 2^(failures-1)) without overflowing for large counts. */
static int64_t delay_for(const struct backoff *t, unsigned failures)
{
	int64_t d = t->base_ms;

	for (unsigned i = 1; i < failures && d < t->cap_ms; i++)
		d *= 2;
	return d < t->cap_ms ? d : t->cap_ms;
}

/* The slot to reuse when the table is full: the least restrictive entry. */
static struct backoff_entry *victim(struct backoff *t, int64_t now_ms)
{
	struct backoff_entry *best = &t->entries[0];

	for (size_t i = 1; i < t->n; i++) {
		struct backoff_entry *e = &t->entries[i];
		bool e_done = e->until_ms <= now_ms, best_done = best->until_ms <= now_ms;
		/* Not waiting beats waiting; among equals, the earliest end. */
		if ((e_done && !best_done) || (e_done == best_done && e->until_ms < best->until_ms))
			best = e;
	}
	return best;
}

void backoff_fail(struct backoff *t, const char *key, int64_t now_ms)
{
	struct backoff_entry *e = find(t, key);

	if (e && forgotten(t, e, now_ms))
		e->failures = 0;
	if (e == NULL) {
		e = t->n < t->capacity ? &t->entries[t->n++] : victim(t, now_ms);
		memset(e, 0, sizeof(*e));
		strncpy(e->key, key, BACKOFF_KEY_MAX);
	}
	if (e->failures < UINT32_MAX)
		e->failures++;
	e->delay_ms = delay_for(t, e->failures);
	e->until_ms = now_ms + e->delay_ms;
}

void backoff_success(struct backoff *t, const char *key)
{
	struct backoff_entry *e = find(t, key);

	if (e == NULL)
		return;
	*e = t->entries[--t->n];
}

bool backoff_get(const struct backoff *t, const char *key, unsigned *failures, double *delay_s,
		 int64_t *until_ms)
{
	const struct backoff_entry *e = find(t, key);

	if (e == NULL)
		return false;
	if (failures)
		*failures = e->failures;
	if (delay_s)
		*delay_s = (double)e->delay_ms / 1000.0;
	if (until_ms)
		*until_ms = e->until_ms;
	return true;
}

void backoff_foreach(const struct backoff *t,
		     void (*fn)(void *ctx, const char *key, unsigned failures, double delay_s,
				int64_t until_ms),
		     void *ctx)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct backoff_entry *e = &t->entries[i];
		fn(ctx, e->key, e->failures, (double)e->delay_ms / 1000.0, e->until_ms);
	}
}
