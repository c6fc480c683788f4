/*
 * events — GET /v1/events (events.h): the renderer the store records
 * events with, the streams, and the one dispatcher that feeds them.
 *
 * One reader for all streams: each stream remembers the last sequence
 * number it has been given (or shown as skipped, out of its scope); a
 * dispatch reads the log after the smallest of them — one query, however
 * many streams — and hands each row to every stream that has not had it.
 * A dispatch runs when this process committed events (the store's event
 * hook), when another host announced some, when a stream opens behind,
 * and every REREAD_MS while streams exist, as the safety net for an
 * announcement that went missing.
 */
#include "api/events.h"

#include "api/codec.h"
#include "api/handlers.h"
#include "common/ids.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEPALIVE_MS 15000
#define REREAD_MS 5000
#define PRUNE_MS 10000
#define PRUNE_BATCH 1000
#define PRUNE_BUDGET_MS 20
#define FETCH_MAX 512
/* What EventSource clients wait before reconnecting (ms). */
#define RETRY_MS 3000

struct stream {
	struct events *ev;
	struct stream *prev, *next;
	struct req_stream *h;
	uint64_t user;
	bool admin;
	uint64_t after;         /* the last sequence number given or skipped */
	char *buf;              /* bytes not yet taken by the connection */
	size_t off, len, cap;
	size_t limit;           /* more pending than this: the reader is cut */
	long long last_write;
	bool cut, ending;
};

struct events {
	struct api_ctx *ctx;
	struct stream *streams;
	size_t n_streams;
	bool dirty;             /* read the log at the next occasion */
	long long next_reread, next_prune;
	struct events_stats stats;
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- framing ---------------------------------------------------------------- */

char *sse_frame(const char *id, const char *event, const char *data, size_t *len)
{
	size_t lines = 1, size;
	char *out, *o;

	for (const char *p = data; *p; p++)
		lines += *p == '\n';
	size = (id ? strlen(id) + 5 : 0) + strlen(event) + 8 + strlen(data) + lines * 7 + 2;
	if ((out = malloc(size)) == NULL)
		return NULL;
	o = out;
	if (id)
		o += sprintf(o, "id: %s\n", id);
	o += sprintf(o, "event: %s\n", event);
	/* A newline inside data would end the field: each line is a field of
	 * its own, which the client joins back with newlines. */
	for (const char *p = data;;) {
		size_t n = strcspn(p, "\n");
		memcpy(o, "data: ", 6);
		memcpy(o + 6, p, n);
		o += 6 + n;
		*o++ = '\n';
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	*o++ = '\n';
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

/* ---- what the store records ------------------------------------------------- */

/*
 * The event of one object, inside the transaction that changed it: the
 * same JSON GET /v1/vms/{id} or GET /v1/hosts/{name} answers, or null for
 * a deletion.  A VM already deleted has nothing more to tell (its stop
 * and purge are the host's business, and invisible to the API).
 */
static char *render(void *arg, struct store *st, const char *kind, const char *ref,
		    const char *action, uint64_t *owner)
{
	json_t *obj = NULL, *ev;
	char *out;

	(void)arg;
	*owner = OWNER_ANY;
	if (strcmp(kind, "vm") == 0) {
		struct vm vm = { 0 };
		uint64_t id;
		if (!vm_id_parse(ref, &id) || store_vm_get_id(st, id, &vm) != STORE_OK)
			return NULL;
		*owner = vm.owner;
		bool gone = strcmp(vm.desired, "deleted") == 0;
		if (gone && strcmp(action, "deleted") != 0) {
			vm_free(&vm);
			return NULL;
		}
		obj = gone ? json_null() : vm_to_json(&vm);
		vm_free(&vm);
	} else if (strcmp(kind, "host") == 0) {
		struct host h = { 0 };
		if (store_host_get(st, ref, &h) != STORE_OK)
			return NULL;
		obj = host_to_json(&h);
		host_free(&h);
	} else {
		return NULL;
	}
	ev = json_pack("{s:s, s:s, s:s, s:o}", "kind", kind, "action", action, "id", ref,
		       "object", obj ? obj : json_null());
	out = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	return out;
}

static void on_events(void *arg)
{
	((struct events *)arg)->dirty = true;
}

/* ---- streams ---------------------------------------------------------------- */

static long stream_pull(void *arg, char *buf, size_t max)
{
	struct stream *s = arg;
	size_t n = s->len - s->off;

	if (s->cut)
		return REQ_STREAM_CUT;
	if (n == 0)
		return s->ending ? REQ_STREAM_END : 0;
	if (n > max)
		n = max;
	memcpy(buf, s->buf + s->off, n);
	s->off += n;
	if (s->off == s->len)
		s->off = s->len = 0;
	return (long)n;
}

static void stream_gone(void *arg)
{
	struct stream *s = arg;
	struct events *ev = s->ev;

	if (s->prev)
		s->prev->next = s->next;
	else
		ev->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ev->n_streams--;
	free(s->buf);
	free(s);
}

static void stream_wake(struct stream *s)
{
	if (s->h)
		req_stream_wake(s->h);
}

/* A client that hung up while its stream slept: end the stream now
 * rather than at the next keepalive. */
static void stream_check(struct stream *s)
{
	if (s->h && !s->cut && req_stream_hung_up(s->h)) {
		s->cut = true;
		stream_wake(s);
	}
}

/* Queue bytes; a reader that lets more than its limit pile up is cut. */
static void stream_push(struct stream *s, const char *data, size_t len)
{
	if (s->cut || s->ending)
		return;
	if (s->len - s->off + len > s->limit) {
		log_info("events: a stream of user %llu reads too slowly (over %zu bytes behind);"
			 " cutting it", (unsigned long long)s->user, s->limit);
		s->cut = true;
		s->ev->stats.cut++;
		stream_wake(s);
		return;
	}
	if (s->len + len > s->cap) {
		if (s->off > 0) {
			memmove(s->buf, s->buf + s->off, s->len - s->off);
			s->len -= s->off;
			s->off = 0;
		}
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + len)
			cap *= 2;
		if (cap != s->cap) {
			char *nb = realloc(s->buf, cap);
			if (nb == NULL) {
				s->cut = true;
				stream_wake(s);
				return;
			}
			s->buf = nb;
			s->cap = cap;
		}
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->last_write = mono_ms();
	stream_wake(s);
}

/* The whole picture in scope, as of sequence number `at`: one sync event. */
static int stream_sync(struct stream *s, uint64_t at)
{
	struct store *st = s->ev->ctx->st;
	struct vm *vms = NULL;
	struct host *hosts = NULL;
	size_t n_vms = 0, n_hosts = 0, len;
	json_t *jv = json_array(), *jh = json_array(), *ev;
	char id[24], *data, *frame;
	int rc;

	store_read_begin(st);
	rc = store_vm_list(st, s->admin ? OWNER_ANY : s->user, false, &vms, &n_vms);
	if (rc == STORE_OK && s->admin)
		rc = store_host_list(st, &hosts, &n_hosts);
	store_read_end(st);
	for (size_t i = 0; i < n_vms; i++)
		json_array_append_new(jv, vm_to_json(&vms[i]));
	for (size_t i = 0; i < n_hosts; i++)
		json_array_append_new(jh, host_to_json(&hosts[i]));
	vms_free(vms, n_vms);
	hosts_free(hosts, n_hosts);
	if (rc != STORE_OK) {
		json_decref(jv);
		json_decref(jh);
		return -1;
	}
	ev = json_pack("{s:s, s:s, s:n, s:{s:o, s:o}}", "kind", "sync", "action", "sync", "id",
		       "object", "vms", jv, "hosts", jh);
	data = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)at);
	frame = data ? sse_frame(id, "sync", data, &len) : NULL;
	free(data);
	if (frame == NULL)
		return -1;
	/* Room for the sync and as much again behind it. */
	if (s->limit < 2 * len)
		s->limit = 2 * len;
	s->after = at;
	stream_push(s, frame, len);
	free(frame);
	s->ev->stats.syncs++;
	return 0;
}

static bool visible(const struct stream *s, const struct event_row *e)
{
	return s->admin || (e->owner != OWNER_ANY && e->owner == s->user);
}

/* ---- the dispatcher --------------------------------------------------------- */

static void resync(struct events *ev, struct stream *s)
{
	uint64_t first, last;

	if (store_events_bounds(ev->ctx->st, &first, &last) != STORE_OK || stream_sync(s, last) < 0) {
		s->cut = true;
		stream_wake(s);
	}
}

static void dispatch(struct events *ev)
{
	struct event_row *rows = NULL;
	size_t n = 0;
	uint64_t from = UINT64_MAX;

	ev->dirty = false;
	for (struct stream *s = ev->streams; s; s = s->next)
		if (!s->cut && !s->ending && s->after < from)
			from = s->after;
	if (from == UINT64_MAX)
		return;
	if (store_events_after(ev->ctx->st, from, FETCH_MAX, &rows, &n) != STORE_OK)
		return;   /* the next re-read tries again */
	/* Rows are gapless from the first one on; before it, pruning may have
	 * taken what a stream still needed: that stream starts over. */
	for (struct stream *s = ev->streams; s && n > 0; s = s->next)
		if (!s->cut && !s->ending && s->after + 1 < rows[0].seq)
			resync(ev, s);
	for (size_t i = 0; i < n; i++) {
		const struct event_row *e = &rows[i];
		char id[24], name[24], *frame = NULL;
		size_t len = 0;
		snprintf(id, sizeof(id), "%llu", (unsigned long long)e->seq);
		snprintf(name, sizeof(name), "%s.%s", e->kind, e->action);
		for (struct stream *s = ev->streams; s; s = s->next) {
			if (s->cut || s->ending || e->seq <= s->after)
				continue;
			s->after = e->seq;
			if (!visible(s, e))
				continue;
			if (frame == NULL && (frame = sse_frame(id, name, e->data, &len)) == NULL)
				break;
			stream_push(s, frame, len);
			ev->stats.sent++;
		}
		free(frame);
	}
	/* More than one read's worth: the next turn goes on. */
	if (n == FETCH_MAX)
		ev->dirty = true;
	event_rows_free(rows, n);
}

/* ---- the handler ------------------------------------------------------------ */

/* "123" → 123; false for anything else (a client's Last-Event-ID). */
static bool seq_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 19)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

int h_events(struct req *r)
{
	struct events *ev = r->api->events;
	const struct config *cfg = r->api->cfg;
	uint64_t first = 0, last = 0, resume_at = 0;
	size_t mine = 0;
	struct stream *s;
	char retry[32];

	for (struct stream *t = ev->streams; t; t = t->next) {
		/* One that went away unnoticed (it slept) does not count. */
		if (t->user == r->caller && !t->cut && !t->ending)
			stream_check(t);
		mine += t->user == r->caller && !t->cut && !t->ending;
	}
	if (cfg->events_max_per_user > 0 && mine >= (size_t)cfg->events_max_per_user) {
		req_retry_after(r, 5);
		return req_error(r, 429, "too_many_streams",
				 "at most %d event streams per user", cfg->events_max_per_user);
	}
	int rc = store_events_bounds(r->api->st, &first, &last);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "event", NULL);
	/* Resume only where nothing after it has been pruned. */
	bool resume = seq_parse(req_header(r, "Last-Event-ID"), &resume_at) && resume_at <= last &&
		      (resume_at == last || (first > 0 && first <= resume_at + 1));
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return req_error(r, 500, "internal", "out of memory");
	*s = (struct stream){ .ev = ev, .user = r->caller, .admin = r->admin,
			      .limit = cfg->events_buffer > 0 ? (size_t)cfg->events_buffer : 1 << 20,
			      .after = resume_at };
	int n = snprintf(retry, sizeof(retry), "retry: %d\n\n", RETRY_MS);
	stream_push(s, retry, (size_t)n);
	if (!resume && stream_sync(s, last) < 0) {
		free(s->buf);
		free(s);
		return req_error(r, 500, "internal", "cannot read the current state");
	}
	if (req_stream(r, "text/event-stream; charset=utf-8", stream_pull, stream_gone, s, &s->h) != 0 ||
	    s->h == NULL) {
		free(s->buf);
		free(s);
		return 0;   /* the error is set */
	}
	s->next = ev->streams;
	if (ev->streams)
		ev->streams->prev = s;
	ev->streams = s;
	ev->n_streams++;
	if (s->after < last)
		ev->dirty = true;
	return 0;
}

/* ---- life cycle and the loop ------------------------------------------------ */

struct events *events_new(struct api_ctx *ctx, char **err)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (ev == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	ev->ctx = ctx;
	ev->next_prune = mono_ms() + PRUNE_MS;
	store_set_event_render(ctx->st, render, ev);
	store_set_event_hook(ctx->st, on_events, ev);
	return ev;
}

void events_stop(struct events *ev)
{
	if (ev == NULL)
		return;
	for (struct stream *s = ev->streams; s; s = s->next) {
		s->ending = true;
		stream_wake(s);
	}
}

void events_free(struct events *ev)
{
	if (ev == NULL)
		return;
	/* The listeners are gone, and with them every stream (stream_gone). */
	store_set_event_hook(ev->ctx->st, NULL, NULL);
	store_set_event_render(ev->ctx->st, render, NULL);
	free(ev);
}

void events_changed(struct events *ev, int remote)
{
	if (ev == NULL)
		return;
	if (remote > 0) {
		ev->dirty = true;
		ev->stats.announced++;
	}
	if (ev->dirty)
		dispatch(ev);
}

long long events_timeout_ms(struct events *ev, long long now)
{
	long long best;

	if (ev == NULL)
		return -1;
	best = ev->next_prune > now ? ev->next_prune - now : 0;
	if (ev->streams == NULL)
		return best;
	if (ev->dirty)
		return 0;
	if (ev->next_reread - now < best)
		best = ev->next_reread > now ? ev->next_reread - now : 0;
	for (struct stream *s = ev->streams; s; s = s->next) {
		long long due = s->last_write + KEEPALIVE_MS - now;
		if (due < best)
			best = due > 0 ? due : 0;
	}
	return best;
}

/* Events older than events_retention go, a bounded batch at a time. */
static void prune(struct events *ev, long long now)
{
	int64_t before = (int64_t)time(NULL) - ev->ctx->cfg->events_retention;
	size_t n = PRUNE_BATCH;

	ev->next_prune = now + PRUNE_MS;
	while (n == PRUNE_BATCH && mono_ms() - now < PRUNE_BUDGET_MS)
		if (store_events_prune(ev->ctx->st, before, PRUNE_BATCH, &n) != STORE_OK)
			break;
}

void events_run(struct events *ev, long long now)
{
	if (ev == NULL)
		return;
	if (now >= ev->next_prune)
		prune(ev, now);
	if (ev->streams == NULL)
		return;
	if (now >= ev->next_reread) {
		ev->next_reread = now + REREAD_MS;
		ev->dirty = true;
		for (struct stream *s = ev->streams; s; s = s->next)
			stream_check(s);
	}
	if (ev->dirty)
		dispatch(ev);
	for (struct stream *s = ev->streams; s; s = s->next)
		if (now - s->last_write >= KEEPALIVE_MS)
			stream_push(s, ": keepalive\n\n", 13);
}

void events_stats(const struct events *ev, struct events_stats *out)
{
	*out = ev->stats;
	out->streams = ev->n_streams;
}
