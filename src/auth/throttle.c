/* throttle — see throttle.h. */
#include "auth/throttle.h"

#include "auth/backoff.h"

#include <stdio.h>
#include <stdlib.h>

struct throttle {
	struct backoff *users, *addrs;
};

struct throttle *throttle_new(const struct throttle_config *cfg)
{
	struct throttle_config c = cfg ? *cfg : (struct throttle_config){ 0 };
	struct throttle *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->users = backoff_new(&(struct backoff_config){ .capacity = c.users, .base_s = c.base_s,
							 .cap_s = c.cap_s });
	t->addrs = backoff_new(&(struct backoff_config){ .capacity = c.addrs, .base_s = c.base_s,
							 .cap_s = c.cap_s });
	if (t->users == NULL || t->addrs == NULL) {
		throttle_free(t);
		return NULL;
	}
	return t;
}

void throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	backoff_free(t->users);
	backoff_free(t->addrs);
	free(t);
}

bool throttle_check(const struct throttle *t, const char *user, const char *addr,
		    int64_t now_ms, double *wait_s)
{
	double wu = 0, wa = 0;
	bool ok = backoff_check(t->users, user, now_ms, &wu) & backoff_check(t->addrs, addr, now_ms, &wa);

	if (wait_s)
		*wait_s = wu > wa ? wu : wa;
	return ok;
}

void throttle_fail(struct throttle *t, const char *user, const char *addr, int64_t now_ms)
{
	backoff_fail(t->users, user, now_ms);
	backoff_fail(t->addrs, addr, now_ms);
}

void throttle_success(struct throttle *t, const char *user, const char *addr)
{
	backoff_success(t->users, user);
	backoff_success(t->addrs, addr);
}

void throttle_user_state(const struct throttle *t, const char *user, unsigned *failures,
			 double *delay_s)
{
	*failures = 0;
	*delay_s = 0;
	backoff_get(t->users, user, failures, delay_s, NULL);
}

struct prefixed {
	const char *prefix;
	void (*fn)(void *ctx, const char *key, unsigned failures, double delay_s, int64_t until_ms);
	void *ctx;
};

static void with_prefix(void *arg, const char *key, unsigned failures, double delay_s,
			int64_t until_ms)
{
	struct prefixed *p = arg;
	char k[BACKOFF_KEY_MAX + 8];

	snprintf(k, sizeof(k), "%s%s", p->prefix, key);
	p->fn(p->ctx, k, failures, delay_s, until_ms);
}

void throttle_foreach(const struct throttle *t,
		      void (*fn)(void *ctx, const char *key, unsigned failures, double delay_s,
				 int64_t until_ms),
		      void *ctx)
{
	struct prefixed pu = { "user:", fn, ctx }, pa = { "addr:", fn, ctx };

	backoff_foreach(t->users, with_prefix, &pu);
	backoff_foreach(t->addrs, with_prefix, &pa);
}
