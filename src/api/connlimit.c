/* connlimit — see connlimit.h. */
#include "api/connlimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct connlimit {
	size_t max_total, max_per_key;
	int64_t timeout_ms;
	size_t live;
	struct conn *all;
	struct conn *whead, *wtail;
};

struct connlimit *connlimit_new(size_t max_total, size_t max_per_key, int64_t header_timeout_ms)
{
	struct connlimit *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->max_total = max_total ? max_total : 1;
	t->max_per_key = max_per_key ? max_per_key : 1;
	t->timeout_ms = header_timeout_ms;
	return t;
}

void connlimit_free(struct connlimit *t)
{
	free(t);
}

static void wait_unlink(struct connlimit *t, struct conn *c)
{
	if (!c->waiting)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		t->whead = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		t->wtail = c->wprev;
	c->wprev = c->wnext = NULL;
	c->waiting = false;
}

static void wait_append(struct connlimit *t, struct conn *c, int64_t now_ms)
{
	wait_unlink(t, c);
	c->since_ms = now_ms;
	c->waiting = true;
	c->wprev = t->wtail;
	if (t->wtail)
		t->wtail->wnext = c;
	else
		t->whead = c;
	t->wtail = c;
}

/* Stop counting c: it is being closed. */
static void cut(struct connlimit *t, struct conn *c)
{
	if (c->cut)
		return;
	wait_unlink(t, c);
	c->cut = true;
	t->live--;
}

size_t connlimit_count(const struct connlimit *t, const char *key)
{
	size_t n = 0;

	if (key == NULL)
		return t->live;
	for (const struct conn *c = t->all; c; c = c->next)
		n += !c->cut && strcmp(c->key, key) == 0;
	return n;
}

struct conn *connlimit_open(struct connlimit *t, const char *key, void *owner, int64_t now_ms,
			    struct conn **victim)
{
	struct conn *c = calloc(1, sizeof(*c));

	*victim = NULL;
	if (c == NULL)
		return NULL;
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->owner = owner;
	c->next = t->all;
	if (t->all)
		t->all->prev = c;
	t->all = c;
	/* Counted as cut from the start when refused, so closing it later
	 * takes nothing from the live count. */
	c->cut = true;
	if (key[0] && connlimit_count(t, key) >= t->max_per_key)
		return c;
	if (t->live >= t->max_total) {
		if (t->whead == NULL)
			return c;
		*victim = t->whead;
		cut(t, *victim);
	}
	c->cut = false;
	t->live++;
	wait_append(t, c, now_ms);
	return c;
}

void connlimit_busy(struct connlimit *t, struct conn *c)
{
	wait_unlink(t, c);
}

void connlimit_idle(struct connlimit *t, struct conn *c, int64_t now_ms)
{
	if (!c->cut)
		wait_append(t, c, now_ms);
}

void connlimit_close(struct connlimit *t, struct conn *c)
{
	cut(t, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

struct conn *connlimit_expired(struct connlimit *t, int64_t now_ms)
{
	struct conn *c = t->whead;

	if (c == NULL || now_ms - c->since_ms < t->timeout_ms)
		return NULL;
	cut(t, c);
	return c;
}

int64_t connlimit_next_ms(const struct connlimit *t, int64_t now_ms)
{
	int64_t left;

	if (t->whead == NULL)
		return -1;
	left = t->whead->since_ms + t->timeout_ms - now_ms;
	return left > 0 ? left : 0;
}
