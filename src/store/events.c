/*
 * events — the event log of the store (see store.h, "The event log"):
 * what a transaction touched, recorded when it ends, read back in order
 * by the API's streams, pruned by age.
 *
 * Why a table and not only a notification: a reader that was away (a
 * stream that reconnects, another API host that missed a NOTIFY while its
 * listener was down) asks for "everything after N" and gets exactly that,
 * in commit order; the notification only says "look now".
 */
#include "store/store_internal.h"

#include "common/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Actions by strength: a create or a delete in the same transaction as an
 * update is what the transaction did. */
static int action_rank(const char *a)
{
	return strcmp(a, "updated") == 0 ? 0 : 1;
}

void store_event_touch(struct store *st, const char *kind, const char *ref, const char *action)
{
	struct event_touch *t;

	if (st->depth == 0 || st->event_render == NULL)
		return;
	for (size_t i = 0; i < st->n_touched; i++) {
		t = &st->touched[i];
		if (strcmp(t->kind, kind) == 0 && strcmp(t->ref, ref) == 0) {
			if (action_rank(action) > action_rank(t->action))
				snprintf(t->action, sizeof(t->action), "%s", action);
			return;
		}
	}
	if (st->n_touched == st->cap_touched) {
		size_t cap = st->cap_touched ? st->cap_touched * 2 : 8;
		struct event_touch *nt = realloc(st->touched, cap * sizeof(*nt));
		if (nt == NULL)
			return;   /* the change still commits; a resync of the stream mends it */
		st->touched = nt;
		st->cap_touched = cap;
	}
	t = &st->touched[st->n_touched++];
	snprintf(t->kind, sizeof(t->kind), "%s", kind);
	snprintf(t->ref, sizeof(t->ref), "%s", ref);
	snprintf(t->action, sizeof(t->action), "%s", action);
}

void store_event_vm(struct store *st, uint64_t id, const char *action)
{
	store_event_touch(st, "vm", vm_id_format(id).s, action);
}

void store_events_forget(struct store *st)
{
	st->n_touched = 0;
}

static int row_text(void *arg, const struct sval *c, int n)
{
	if (n > 0 && c[0].t == SV_TEXT)
		*(char **)arg = sv_strdup(&c[0]);
	return 1;
}

/* One touched object: rendered, compared with its last event, recorded. */
static int record(struct store *st, const struct event_touch *t, size_t *recorded)
{
	uint64_t owner = OWNER_ANY, seq;
	char *data = st->event_render(st->event_render_arg, st, t->kind, t->ref, t->action, &owner);
	char *last = NULL;
	int rc;

	if (data == NULL)
		return STORE_OK;
	struct sval k[] = { SV_S(t->kind), SV_S(t->ref) };
	rc = store_q(st, "SELECT data FROM events WHERE kind = ? AND ref = ? ORDER BY seq DESC LIMIT 1",
		     k, 2, row_text, &last);
	/* A write that changed nothing the API shows (a state set to what it
	 * was) is no event. */
	if (rc == STORE_OK && last && strcmp(last, data) == 0)
		goto out;
	if (rc == STORE_OK)
		rc = store_counter_next(st, "event", INT64_MAX, &seq);
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(seq), SV_I(store_now()), SV_S(t->kind), SV_S(t->action),
				    SV_S(t->ref), owner == OWNER_ANY ? SV_S(NULL) : SV_I(owner),
				    SV_S(data) };
		/* store_q, not store_w: a record of a change is no change of
		 * intent, and must wake no agent. */
		rc = store_q(st, "INSERT INTO events (seq, created, kind, action, ref, owner, data)"
			     " VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7, NULL, NULL);
	}
	if (rc == STORE_OK)
		(*recorded)++;
out:
	free(last);
	free(data);
	return rc;
}

int store_events_flush(struct store *st, size_t *recorded)
{
	size_t n = st->n_touched;
	int rc = STORE_OK;

	*recorded = 0;
	/* Taken first: whatever the renderer does cannot add to the list
	 * being walked. */
	st->n_touched = 0;
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		struct event_touch t = st->touched[i];
		rc = record(st, &t, recorded);
	}
	return rc;
}

void store_set_event_render(struct store *st, store_event_render_fn fn, void *arg)
{
	st->event_render = fn;
	st->event_render_arg = arg;
}

void store_set_event_hook(struct store *st, void (*fn)(void *), void *arg)
{
	st->event_hook = fn;
	st->event_hook_arg = arg;
}

int store_events_drain(struct store *st)
{
	return st->eng->events_drain ? st->eng->events_drain(st->h) : 0;
}

/* ---- reading ---------------------------------------------------------------- */

void event_rows_free(struct event_row *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].kind);
		free(v[i].action);
		free(v[i].ref);
		free(v[i].data);
	}
	free(v);
}

static void fill_event(void *e, const struct sval *c)
{
	struct event_row *r = e;

	r->seq = (uint64_t)c[0].i;
	r->created = c[1].i;
	r->kind = sv_strdup(&c[2]);
	r->action = sv_strdup(&c[3]);
	r->ref = sv_strdup(&c[4]);
	r->owner = c[5].t == SV_INT ? (uint64_t)c[5].i : OWNER_ANY;
	r->data = sv_strdup(&c[6]);
}

int store_events_after(struct store *st, uint64_t after, size_t limit, struct event_row **out,
		       size_t *n)
{
	struct rows r = { .elem = sizeof(struct event_row), .fill = fill_event };
	struct sval p[] = { SV_I(after), SV_I(limit) };
	int rc = store_q(st, "SELECT seq, created, kind, action, ref, owner, data FROM events"
			 " WHERE seq > ? ORDER BY seq LIMIT ?", p, 2, rows_add, &r);

	if (rc != STORE_OK) {
		event_rows_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_events_bounds(struct store *st, uint64_t *first, uint64_t *last)
{
	int64_t lo = 0;
	uint64_t next = 1;
	int rc = store_counter_peek(st, "event", &next);

	if (rc == STORE_OK)
		rc = store_q(st, "SELECT MIN(seq) FROM events", NULL, 0, store_row_int, &lo);
	*first = lo > 0 ? (uint64_t)lo : 0;
	*last = next > 0 ? next - 1 : 0;
	return rc;
}

int store_events_prune(struct store *st, int64_t before, size_t max, size_t *n)
{
	struct sval p[] = { SV_I(before), SV_I(max) };

	/* Oldest first, a bounded batch: the loop waits for this statement. */
	return store_q_count(st, "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
			     " WHERE created < ? ORDER BY seq LIMIT ?) RETURNING seq", p, 2, n);
}
