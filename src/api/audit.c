/*
 * audit — the journal, its batches into the store, pruning, and
 * GET /v1/audit (audit.h).
 */
#include "api/audit.h"

#include "api/handlers.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_BATCH 256
#define AUDIT_DELAY_MS 1000
#define AUDIT_RETRY_MS 5000
#define AUDIT_MEMORY_MAX 16384   /* entries kept in memory; beyond, reread the journal */
#define PRUNE_MS (3600 * 1000)
#define PRUNE_FIRST_MS 10000
#define PRUNE_BATCH 1000
#define PRUNE_BUDGET_MS 20
#define JOURNAL_MAX (64 << 20)   /* bytes of journal read back at once */
#define LIST_DEFAULT 100
#define LIST_MAX 10000

struct audit {
	struct api_ctx *ctx;
	char *path;
	int fd;
	uint64_t seq;                  /* the last sequence number given */
	struct audit_entry *pending;   /* in the journal, not yet in the store */
	size_t n_pending, cap_pending;
	bool overflow;                 /* the journal holds more than pending */
	size_t n_journal;              /* entries in the journal */
	long long oldest;              /* ms: when the oldest of them was written */
	long long retry_at;            /* ms: no batch before (after a failure) */
	long long next_prune;
	struct audit_stats stats;
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the journal's lines ------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *audit_line(const struct audit_entry *e)
{
	json_t *j = json_pack("{s:I, s:I, s:o, s:s, s:s, s:s, s:o, s:i, s:s}",
			      "seq", (json_int_t)e->seq, "time", (json_int_t)e->time,
			      "user", e->user == OWNER_ANY ? json_null() : json_integer((json_int_t)e->user),
			      "source", e->source ? e->source : "", "method", e->method,
			      "route", e->route, "ref", str_or_null(e->ref), "status", e->status,
			      "result", e->result);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	char *line = text ? str_printf("%s\n", text) : NULL;

	json_decref(j);
	free(text);
	return line;
}

static char *dup_member(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? strdup(s) : NULL;
}

int audit_line_parse(const char *line, const char *host, struct audit_entry *out)
{
	json_t *j = json_loads(line, 0, NULL), *user;
	json_int_t seq, t;
	int status;

	memset(out, 0, sizeof(*out));
	if (j == NULL || json_unpack(j, "{s:I, s:I, s:o, s:i}", "seq", &seq, "time", &t, "user", &user,
				     "status", &status) != 0 || seq <= 0 ||
	    !(json_is_null(user) || json_is_integer(user))) {
		json_decref(j);
		return -1;
	}
	out->host = strdup(host);
	out->seq = (uint64_t)seq;
	out->time = t;
	out->user = json_is_integer(user) ? (uint64_t)json_integer_value(user) : OWNER_ANY;
	out->source = dup_member(j, "source");
	out->method = dup_member(j, "method");
	out->route = dup_member(j, "route");
	out->ref = dup_member(j, "ref");
	out->status = status;
	out->result = dup_member(j, "result");
	json_decref(j);
	if (!out->host || !out->source || !out->method || !out->route || !out->result) {
		audit_entry_clear(out);
		return -1;
	}
	return 0;
}

/* Every entry of the journal file (a torn last line, from a crash in the
 * middle of a write, is skipped). */
static int journal_read(const char *path, const char *host, struct audit_entry **out, size_t *n)
{
	char *text = NULL;
	struct audit_entry *v = NULL;
	size_t count = 0, cap = 0;

	*out = NULL;
	*n = 0;
	if (file_read(path, JOURNAL_MAX, &text, NULL) < 0)
		return errno == ENOENT ? 0 : -1;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct audit_entry e;
		if (audit_line_parse(l, host, &e) < 0)
			continue;
		if (count == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct audit_entry *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				audit_entry_clear(&e);
				break;
			}
			v = nv;
			cap = nc;
		}
		v[count++] = e;
	}
	free(text);
	*out = v;
	*n = count;
	return 0;
}

/* ---- batches ---------------------------------------------------------------- */

static void pending_clear(struct audit *a)
{
	audit_entries_free(a->pending, a->n_pending);
	a->pending = NULL;
	a->n_pending = a->cap_pending = 0;
}

/* Move the journal into the store; 0, or -1 with everything kept. */
static int flush(struct audit *a)
{
	struct audit_entry *v = a->pending;
	size_t n = a->n_pending;
	bool reread = a->overflow;
	int rc;

	if (a->n_journal == 0 && n == 0)
		return 0;
	if (reread && journal_read(a->path, a->ctx->cfg->host_name, &v, &n) < 0) {
		log_warn("audit: cannot read %s back: %s", a->path, strerror(errno));
		return -1;
	}
	rc = store_audit_add(a->ctx->st, v, n);
	if (reread)
		audit_entries_free(v, n);
	if (rc != STORE_OK) {
		a->stats.failures++;
		a->retry_at = mono_ms() + AUDIT_RETRY_MS;
		return -1;
	}
	a->stats.recorded += reread ? n : a->n_pending;
	pending_clear(a);
	a->overflow = false;
	a->n_journal = 0;
	/* Committed: the journal's copies are spent. */
	if (a->fd >= 0 && ftruncate(a->fd, 0) < 0)
		log_warn("audit: cannot empty %s: %s", a->path, strerror(errno));
	return 0;
}

static bool pending_add(struct audit *a, struct audit_entry *e)
{
	if (a->n_pending == a->cap_pending) {
		size_t cap = a->cap_pending ? a->cap_pending * 2 : 64;
		struct audit_entry *nv = realloc(a->pending, cap * sizeof(*nv));
		if (nv == NULL)
			return false;
		a->pending = nv;
		a->cap_pending = cap;
	}
	a->pending[a->n_pending++] = *e;
	return true;
}

void audit_request(struct audit *a, const struct req *r, const char *route, int status,
		   const char *result, const char *made)
{
	char ref[160] = "";
	struct audit_entry e;
	char *line;

	if (a == NULL)
		return;
	/* The resource: the path's captures, else what the handler named,
	 * else what a create made. */
	for (size_t i = 0; i < r->n_params; i++)
		snprintf(ref + strlen(ref), sizeof(ref) - strlen(ref), "%s%s", i ? "/" : "", r->params[i]);
	if (ref[0] == '\0')
		snprintf(ref, sizeof(ref), "%s", r->audit_ref[0] ? r->audit_ref : made ? made : "");
	e = (struct audit_entry){
		.host = strdup(a->ctx->cfg->host_name), .seq = ++a->seq, .time = (int64_t)time(NULL),
		.user = r->identified ? r->caller : OWNER_ANY, .source = strdup(r->source),
		.method = strdup(r->method), .route = strdup(route),
		.ref = ref[0] ? strdup(ref) : NULL, .status = status, .result = strdup(result),
	};
	line = audit_line(&e);
	size_t len = line ? strlen(line) : 0;
	/* One write with O_APPEND: the line lands whole or (a crash inside
	 * it) torn at the end, where replay skips it. */
	if (line == NULL || a->fd < 0 || write(a->fd, line, len) != (ssize_t)len) {
		/* No journal: this one goes to the store at once. */
		a->stats.failures++;
		log_warn("audit: cannot append to %s: %s; recording directly", a->path,
			 line ? strerror(errno) : "out of memory");
		if (store_audit_add(a->ctx->st, &e, 1) == STORE_OK) {
			a->stats.recorded++;
			free(line);
			audit_entry_clear(&e);
			return;
		}
	}
	free(line);
	if (a->n_journal++ == 0)
		a->oldest = mono_ms();
	if (a->overflow || a->n_pending >= AUDIT_MEMORY_MAX || !pending_add(a, &e)) {
		/* The journal has it; the batch will read it back from there. */
		a->overflow = true;
		audit_entry_clear(&e);
	}
}

/* ---- life cycle and the loop ------------------------------------------------ */

struct audit *audit_new(struct api_ctx *ctx, char **err)
{
	struct audit *a = calloc(1, sizeof(*a));
	struct audit_entry *v = NULL;
	size_t n = 0;
	uint64_t last = 0;

	if (a == NULL || (a->path = str_printf("%s/audit.journal", ctx->cfg->state_dir)) == NULL) {
		free(a);
		*err = strdup("out of memory");
		return NULL;
	}
	a->ctx = ctx;
	a->fd = -1;
	a->next_prune = mono_ms() + PRUNE_FIRST_MS;
	/* What a previous hcd journaled and did not move: into the store
	 * first, so nothing it acknowledged is lost. */
	if (journal_read(a->path, ctx->cfg->host_name, &v, &n) < 0 ||
	    store_audit_last_seq(ctx->st, ctx->cfg->host_name, &last) != STORE_OK ||
	    store_audit_add(ctx->st, v, n) != STORE_OK) {
		*err = str_printf("audit: cannot move %s into the store", a->path);
		audit_entries_free(v, n);
		audit_free(a);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].seq > last)
			last = v[i].seq;
	if (n > 0)
		log_info("audit: moved %zu journaled entries into the store", n);
	audit_entries_free(v, n);
	a->seq = last;
	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0 || ftruncate(a->fd, 0) < 0) {
		*err = str_printf("audit: %s: %s", a->path, strerror(errno));
		audit_free(a);
		return NULL;
	}
	return a;
}

void audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	if (flush(a) < 0 && a->n_journal > 0)
		log_warn("audit: %zu entries stay in %s for the next start", a->n_journal, a->path);
	pending_clear(a);
	if (a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a);
}

long long audit_timeout_ms(struct audit *a, long long now)
{
	long long best, due;

	if (a == NULL)
		return -1;
	best = a->next_prune > now ? a->next_prune - now : 0;
	if (a->n_journal > 0) {
		due = a->n_journal >= AUDIT_BATCH ? now : a->oldest + AUDIT_DELAY_MS;
		if (due < a->retry_at)
			due = a->retry_at;
		if (due - now < best)
			best = due > now ? due - now : 0;
	}
	return best;
}

static void prune(struct audit *a, long long now)
{
	int64_t before = (int64_t)time(NULL) - (int64_t)a->ctx->cfg->audit_retention_days * 86400;
	size_t n = PRUNE_BATCH, total = 0;

	a->next_prune = now + PRUNE_MS;
	while (n == PRUNE_BATCH && mono_ms() - now < PRUNE_BUDGET_MS) {
		if (store_audit_prune(a->ctx->st, before, PRUNE_BATCH, &n) != STORE_OK)
			break;
		total += n;
	}
	/* Not done within the budget: the rest in a minute. */
	if (n == PRUNE_BATCH)
		a->next_prune = now + 60000;
	if (total > 0)
		log_info("audit: pruned %zu entries older than %d days", total,
			 a->ctx->cfg->audit_retention_days);
}

void audit_run(struct audit *a, long long now)
{
	if (a == NULL)
		return;
	if (a->n_journal > 0 && now >= a->retry_at &&
	    (a->n_journal >= AUDIT_BATCH || now >= a->oldest + AUDIT_DELAY_MS))
		flush(a);
	if (now >= a->next_prune)
		prune(a, now);
}

void audit_stats(const struct audit *a, struct audit_stats *out)
{
	*out = a->stats;
	out->pending = a->n_journal;
}

/* ---- GET /v1/audit ---------------------------------------------------------- */

static bool query_int(struct req *r, const char *key, long long lo, long long hi, long long *out)
{
	const char *s = req_query(r, key);
	char *end;
	long long v;

	if (s == NULL)
		return true;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end || errno || v < lo || v > hi) {
		req_error(r, 400, "bad_request", "'%s' must be an integer in %lld..%lld", key, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

int h_audit_list(struct req *r)
{
	const char *user = req_query(r, "user");
	long long since = 0, limit = LIST_DEFAULT;
	struct audit_entry *v = NULL;
	size_t n = 0;
	int rc;

	if (!query_int(r, "since", 0, INT64_MAX, &since) ||
	    !query_int(r, "limit", 1, LIST_MAX, &limit))
		return 0;
	if (user && !name_valid(user))
		return req_error(r, 400, "bad_name", "'user' must be a user name");
	/* This host's latest requests are in the answer (other hosts' within
	 * a second). */
	flush(r->api->audit);
	rc = store_audit_list(r->api->st, user, since, (size_t)limit, &v, &n);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "audit", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:o, s:s, s:s, s:s, s:o, s:i, s:s}",
			"time", (json_int_t)v[i].time, "host", v[i].host, "seq", (json_int_t)v[i].seq,
			"user", str_or_null(v[i].user_name), "source", v[i].source,
			"method", v[i].method, "route", v[i].route, "ref", str_or_null(v[i].ref),
			"status", v[i].status, "result", v[i].result));
	audit_entries_free(v, n);
	return req_json(r, 200, arr);
}
