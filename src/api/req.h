/*
 * req — the request interface: everything a handler sees of the HTTP
 * request it serves, and the only way it answers.
 *
 * A handler reads the path captures (params), the caller established
 * before it runs (caller, admin, token_id, source), the decoded JSON body
 * (json) and, for the few routes that need them, query arguments and
 * headers through req_query/req_header.  It answers with exactly one of
 * req_json, req_error, req_text, req_bytes, req_file or req_upgrade (and
 * may add headers to it with req_header_add) — or hands its
 * slow step to a worker with req_defer.  It never touches libmicrohttpd:
 * that is http.c's, behind this interface (http_req.h holds the rest of
 * a request's state).
 *
 * Invariants:
 *   - every setter replaces what an earlier one set: the last answer wins;
 *   - an error message may quote user input; anything beyond printable
 *     ASCII is shown as '?', so responses stay valid JSON and one line.
 */
#ifndef HC_API_REQ_H
#define HC_API_REQ_H

#include "api/api.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQ_MAX_PARAMS 4
#define REQ_MAX_HEADERS 4

struct req {
	struct api_ctx *api;
	const char *method;
	char *params[REQ_MAX_PARAMS];     /* the path's {} captures */
	size_t n_params;
	/* Who is calling (api/identity.h fills these before the handler). */
	uint64_t caller;                  /* user ID */
	bool admin;
	uint64_t token_id;                /* the bearer token used, 0 = none (peer credentials) */
	bool identified;                  /* caller is known (false: anonymous routes, refusals) */
	char source[64];                  /* the peer: an address, or "unix:UID" */
	/* What the audit trail names as the request's resource when the path
	 * names none (a login's user); a handler may set it. */
	char audit_ref[72];
	char peer_key[48];                /* its unit for per-peer limits (common/addrkey.h) */
	json_t *json;                     /* the body of BODY_JSON routes: an object */
	/* Handler state of BODY_STREAM routes and upgrades, freed with the
	 * request by stream_free (when set). */
	void *stream;
	void (*stream_free)(void *);
};

/* Scope for store lookups: admins see everything, and their plain names
 * are still their own (store.h, References). */
static inline uint64_t req_scope(const struct req *r)
{
	return r->admin ? scope_all(r->caller) : r->caller;
}
/* The resource the path names (its first {}): an ID or NAME, qualified
 * as OWNER/NAME by "?owner=OWNER" (a '/' cannot travel inside a path
 * segment: libmicrohttpd decodes %2F before routing).  req.c. */
const char *req_ref(struct req *r);

/* ---- answers ------------------------------------------------------------- */

/* Set an error response; returns 0 so handlers can `return req_error(…)`. */
int req_error(struct req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Map a store result to an error response about `what`. */
int req_store_error(struct req *r, int rc, const char *what, const char *ref);
/* Set a JSON response (steals the reference). */
int req_json(struct req *r, int status, json_t *body);
/* A text/plain (UTF-8) response; takes the malloc'd text. */
int req_text(struct req *r, int status, char *text, size_t len);
/* Bytes as they are, with a content type; takes the malloc'd data (NULL
 * with len 0 is an empty body). */
int req_bytes(struct req *r, int status, const char *content_type, void *data, size_t len);
/* A file's contents: fd (opened for reading, size bytes) is the
 * answer's and closed with it, also when this fails. */
int req_file(struct req *r, int status, const char *content_type, int fd, uint64_t size);
/* One more header on the answer already set (at most REQ_MAX_HEADERS;
 * another answer drops them). */
void req_header_add(struct req *r, const char *name, const char *value);
/* Ask the client to wait (Retry-After, whole seconds) with the answer. */
void req_retry_after(struct req *r, int seconds);
/* True once an answer is set. */
bool req_answered(const struct req *r);

/*
 * Switch the connection to another protocol (HTTP/1.1 Upgrade): the
 * answer is 101 with "Upgrade: protocol".  When it has been sent,
 * on_upgrade(arg, fd, extra, n, h) runs on the loop with the raw socket
 * and the bytes the client sent after its request; from then on the
 * socket belongs to the caller until req_upgrade_close(h), which must be
 * called exactly once (from any thread).  Before that, arg is the
 * request's: set r->stream/stream_free to free it if no upgrade happens.
 */
struct req_upgrade;
int req_upgrade(struct req *r, const char *protocol,
		void (*on_upgrade)(void *arg, int fd, const char *extra, size_t n,
				   struct req_upgrade *h),
		void *arg);
void req_upgrade_close(struct req_upgrade *h);

/*
 * A body produced over time, for as long as the connection lasts (server-
 * sent events): the answer is 200 with content_type, sent chunked, each
 * piece as soon as it is there.  pull(arg, buf, max) runs on the loop
 * whenever the connection can take bytes: it copies up to max and returns
 * how many; 0 when it has none (the connection then sleeps, costing
 * nothing, until req_stream_wake); REQ_STREAM_END to finish the body,
 * REQ_STREAM_CUT to drop the connection at once.  gone(arg) runs once,
 * when the connection is closed for whatever reason; arg is the caller's
 * until then.  The handle is valid until gone; wake it only on the loop.
 */
#define REQ_STREAM_END (-1)
#define REQ_STREAM_CUT (-2)
struct req_stream;
int req_stream(struct req *r, const char *content_type,
	       long (*pull)(void *arg, char *buf, size_t max), void (*gone)(void *arg),
	       void *arg, struct req_stream **handle);
void req_stream_wake(struct req_stream *s);
/* The client has hung up (its end of the connection is closed).  A
 * sleeping stream's connection is not watched by anyone, so a stream
 * asks now and then: never blocks. */
bool req_stream_hung_up(struct req_stream *s);

/* ---- inputs --------------------------------------------------------------- */

/* Query-string argument or NULL. */
const char *req_query(struct req *r, const char *key);
/* Request header or NULL. */
const char *req_header(struct req *r, const char *name);

/* JSON body members.  Each returns false with a 400 set. */
/* Refuse members the endpoint does not know: a typo must not fall back to a default. */
bool only_keys(struct req *r, const char *const *allowed);
/* Optional (or required) string member. */
bool get_str(struct req *r, const char *key, bool required, const char **out);
/* Optional integer member within [lo, hi]; *out untouched when absent. */
bool get_int(struct req *r, const char *key, int lo, int hi, int *out);
/* A resource name is valid and does not read as an ID of id_digits hex. */
bool api_name_check(struct req *r, const char *name, size_t id_digits, const char *what);

/* ---- slow steps ------------------------------------------------------------ */

/*
 * Finish a request off the event loop: work(arg) runs on a worker thread
 * (common/worker.h: it must not touch the store or r), then finish(r,
 * arg, ran) runs on the loop and sets the response (ran = false: hcd is
 * stopping and work never ran; finish must still free arg).  The
 * connection is suspended meanwhile, so other requests go on.  A handler
 * calls it last: `return req_defer(r, …);`.  finish may call req_defer
 * again for a next step (the request stays suspended until the last
 * finish returns without doing so).  Without a worker pool (unit tests)
 * both run at once, in order.
 *
 * The request outlives the client: a client that hangs up meanwhile is
 * noticed only once finish has run (the answer then goes nowhere), so
 * finish may always use r.  At shutdown hcd frees its worker pool before
 * the listeners, so every deferred request is finished (ran = false for
 * work that never started) before its connection is closed.
 */
int req_defer(struct req *r, void (*work)(void *arg),
	      void (*finish)(struct req *r, void *arg, bool ran), void *arg);
/* The same on another pool than hcd's (NULL: at once, as without one);
 * its done callbacks must run on the loop too (worker_pool_run). */
struct worker_pool;
int req_defer_on(struct req *r, struct worker_pool *pool, void (*work)(void *arg),
		 void (*finish)(struct req *r, void *arg, bool ran), void *arg);

#endif
