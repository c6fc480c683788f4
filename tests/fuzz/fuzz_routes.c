/*
 * fuzz_routes — every route of the API (api/api.h, the table in routes.c)
 * with fuzzed path arguments and bodies, run by the real handlers against
 * a real SQLite store, passwd file and host key in a scratch directory.
 *
 * Input: one or more requests separated by a line "===".  A request is a
 * line "WHO METHOD PATTERN [ARG...]" and its body (the rest, verbatim):
 *
 *   alice@ POST /v1/vms/{}/rules web
 *   {"proto":"tcp","ports":"22","source":"2001:db8::/32"}
 *
 * WHO is root (the unix socket's root), a user of the store (its peer
 * credentials) or that user with "@" (its bearer token), or anon.  PATTERN
 * names a row of the route table exactly; each ARG fills one "{}" (or the
 * final "*", which may hold '/') and is percent-decoded, as libmicrohttpd
 * decodes a URL.  Requests run in order
 * on the store of world.h, reset to the same template for every input, so
 * an input can create a thing and then use it.
 *
 * The request goes through what http.c does between libmicrohttpd and the
 * handler — who may call the route, the body limit, JSON decoding with
 * duplicate keys refused, "the body must be an object", the upload stream —
 * without a socket (headers and query strings are absent), and records
 * mutating requests in the audit trail as http.c does.  Two routes need
 * hcd's loop and are fuzz_http's alone: GET /metrics (a scrape on the
 * metrics' own worker) and GET /v1/events (a stream that stays open).
 *
 * Promises checked after every request:
 *   - exactly one response: JSON that dumps, plain text, or a prebuilt
 *     libmicrohttpd response;
 *   - no 5xx other than 503 (a 5xx is a bug here: the store, the disk and
 *     the passwd file all work);
 *   - an error is {"error":{"code":STRING,"message":STRING}};
 *   - a member's answer holds nothing of another owner but public images,
 *     and no user but the caller;
 * and after every input: the store passes SQLite's integrity and foreign
 * key checks.  Leaks are LeakSanitizer's.  FUZZ_VERBOSE=1 prints every
 * answer (handy when writing seeds).
 */
#include "fuzz.h"
#include "world.h"

#include "api/audit.h"
#include "api/http_req.h"
#include "api/web.h"
#include "auth/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQUESTS_MAX 8

/* FUZZ_VERBOSE=1: print each request's answer (for writing seeds). */
static bool verbose;

/* The dashboard's files (world.h's web root), opened once. */
static struct web *web;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	world_init("routes");
	web = web_open(&world_cfg);
	return 0;
}

/* ---- one request -------------------------------------------------------- */

/* Percent-decoding as libmicrohttpd does for the URL path. */
static char *url_decode(const char *s)
{
	char *out = fuzz_cstr((const uint8_t *)s, strlen(s)), *o = out;

	for (const char *p = s; *p; p++) {
		unsigned v;
		if (p[0] == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1 &&
		    strchr("0123456789abcdefABCDEF", p[1]) && strchr("0123456789abcdefABCDEF", p[2])) {
			*o++ = (char)v;
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* Who is calling, as api_identify would decide; false when a request by
 * this caller never reaches a handler. */
static bool identify(struct http_req *h, const char *who)
{
	struct req *r = &h->pub;
	size_t n = strlen(who);
	bool via_token = n > 0 && who[n - 1] == '@';
	char name[64];
	struct user u = { 0 };

	snprintf(r->source, sizeof(r->source), "unix:0");
	if (strcmp(who, "anon") == 0)
		return ROUTE_WHO(h->route->access) == ROUTE_ANON;
	if (strcmp(who, "root") == 0) {
		r->caller = OWNER_ROOT;
		r->admin = true;
		return true;
	}
	if (n >= sizeof(name))
		return false;
	snprintf(name, sizeof(name), "%.*s", (int)(via_token ? n - 1 : n), who);
	if (via_token) {
		char hash[TOKEN_HASH_LEN + 1];
		struct token t = { 0 };
		const char *tok = world_token(name);
		if (tok == NULL)
			return false;
		token_hash(tok, hash);
		if (store_token_lookup(r->api->st, hash, (int64_t)time(NULL), &t) != STORE_OK)
			return false;
		r->caller = t.owner;
		r->admin = t.owner_admin;
		r->token_id = t.id;
		snprintf(r->source, sizeof(r->source), "2001:db8::7");
		token_free(&t);
		return true;
	}
	if (store_user_get(r->api->st, name, &u) != STORE_OK)
		return false;
	bool enabled = u.enabled;
	r->caller = u.id;
	r->admin = strcmp(u.role, "admin") == 0;
	user_free(&u);
	return enabled;
}

/* What http.c does with a request (request_begin, request_body,
 * request_run), by body kind, without a socket. */
static void dispatch(struct http_req *h, const char *body, size_t len)
{
	const struct route *rt = h->route;
	struct req *r = &h->pub;
	long long max = world_cfg.max_body;

	if (ROUTE_WHO(rt->access) == ROUTE_ANON && max > ROUTE_ANON_MAX_BODY)
		max = ROUTE_ANON_MAX_BODY;
	/* (No metrics token here: /metrics is admins' like in http.c.) */
	if ((ROUTE_WHO(rt->access) == ROUTE_ADMIN || ROUTE_WHO(rt->access) == ROUTE_METRICS) &&
	    !r->admin) {
		req_error(r, 403, "forbidden", "admin only");
		return;
	}
	if (rt->body == BODY_STREAM) {
		if (rt->stream_begin(r) != 0)
			return;
		/* libmicrohttpd hands the body over in pieces. */
		for (size_t off = 0; off < len;) {
			size_t n = len - off < 1000 ? len - off : 1000;
			if (rt->stream_chunk(r, body + off, n) != 0)
				return;
			off += n;
		}
		rt->handler(r);
		return;
	}
	if (rt->body == BODY_NONE && len > 0) {
		req_error(r, 400, "bad_request", "this endpoint takes no body");
		return;
	}
	if ((long long)len > max) {
		req_error(r, 413, "too_large", "request body over %lld bytes", max);
		return;
	}
	if (rt->body == BODY_JSON && len == 0) {
		r->json = json_object();
	} else if (rt->body == BODY_JSON) {
		json_error_t jerr;
		r->json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
		if (r->json == NULL) {
			req_error(r, 400, "bad_json", "malformed JSON: %s (line %d)", jerr.text, jerr.line);
			return;
		}
		if (!json_is_object(r->json)) {
			req_error(r, 400, "bad_json", "the body must be a JSON object");
			return;
		}
	}
	rt->handler(r);
}

/*
 * Tenants are fenced: nothing in a member's answer belongs to somebody
 * else, except public images.  Every object with an "owner" must be the
 * caller's (or a public image); a user object must be the caller.
 */
static void check_fence(json_t *j, const char *me, const char *line, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > 16)
		return;
	if (json_is_object(j)) {
		const char *owner = json_string_value(json_object_get(j, "owner"));
		const char *vis = json_string_value(json_object_get(j, "visibility"));
		if (owner && !(vis && strcmp(vis, "public") == 0))
			FUZZ_ASSERT(strcmp(owner, me) == 0, "%s: %s sees %s's %s", line, me, owner,
				    json_string_value(json_object_get(j, "name")));
		if (json_object_get(j, "role") && json_object_get(j, "auth")) {
			const char *name = json_string_value(json_object_get(j, "name"));
			FUZZ_ASSERT(name && strcmp(name, me) == 0, "%s: %s sees user %s", line, me,
				    name ? name : "?");
		}
		json_object_foreach(j, key, v)
			check_fence(v, me, line, depth + 1);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			check_fence(v, me, line, depth + 1);
	}
}

/* The response is one well-formed answer and not a server failure. */
static void check_response(const struct http_req *r, const char *line)
{
	FUZZ_ASSERT(r->status >= 100 && r->status <= 599, "%s: status %d", line, r->status);
	FUZZ_ASSERT(r->status < 500 || r->status == 503, "%s: %d %s", line, r->status,
		    r->resp ? json_dumps(r->resp, JSON_COMPACT) : "(no JSON)");
	if (r->raw || r->text)
		return;
	FUZZ_ASSERT(r->resp != NULL, "%s: no response (http.c would answer 500)", line);
	char *text = json_dumps(r->resp, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL, "%s: the response does not dump", line);
	free(text);
	if (r->status >= 400) {
		json_t *e = json_object_get(r->resp, "error");
		FUZZ_ASSERT(json_is_string(json_object_get(e, "code")) &&
			    json_is_string(json_object_get(e, "message")), "%s: error shape", line);
	}
}

static void req_release(struct http_req *h)
{
	struct req *r = &h->pub;

	for (size_t i = 0; i < r->n_params; i++)
		free(r->params[i]);
	if (r->stream_free && r->stream)
		r->stream_free(r->stream);
	json_decref(r->json);
	http_req_answer_free(h);
	free(h->body);
	free(h);
}

/* Routes that need hcd's loop (see the top). */
static bool loop_only(const struct route *rt)
{
	return strcmp(rt->pattern, "/metrics") == 0 || strcmp(rt->pattern, "/v1/events") == 0;
}

/* The audit trail gets what http.c's request_observe gives it. */
static void audit(struct api_ctx *api, const struct http_req *h)
{
	const char *code = json_string_value(json_object_get(json_object_get(h->resp, "error"), "code"));

	if (strcmp(h->pub.method, "GET") == 0)
		return;
	audit_request(api->audit, &h->pub, h->route->pattern, h->status,
		      code ? code : h->status < 400 ? "ok" : "error",
		      h->status == 201 ? json_string_value(json_object_get(h->resp, "id")) : NULL);
}

static void run_request(struct api_ctx *api, const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);
	size_t hlen = nl ? (size_t)(nl - text) : len;
	char *line = fuzz_cstr((const uint8_t *)text, hlen), *head = strdup(line), *save = NULL;
	const char *body = nl ? nl + 1 : text + len;
	size_t blen = (size_t)(text + len - body);
	char *who = strtok_r(head, " ", &save), *method = strtok_r(NULL, " ", &save),
	     *pattern = strtok_r(NULL, " ", &save), *arg;
	struct http_req *h = calloc(1, sizeof(*h));
	struct req *r = &h->pub;

	FUZZ_ASSERT(h != NULL, "out of memory");
	r->api = api;
	for (size_t i = 0; who && method && pattern && i < api_n_routes && !h->route; i++)
		if (strcmp(api_routes[i].method, method) == 0 &&
		    strcmp(api_routes[i].pattern, pattern) == 0)
			h->route = &api_routes[i];
	if (h->route == NULL || loop_only(h->route))
		goto out;
	r->method = h->route->method;
	size_t want = 0, n = strlen(h->route->pattern);
	for (const char *p = h->route->pattern; (p = strstr(p, "{}")) != NULL; p += 2)
		want++;
	/* A final "*" takes the rest of the path, slashes and all. */
	bool rest = n > 0 && h->route->pattern[n - 1] == '*';
	want += rest;
	while ((arg = strtok_r(NULL, " ", &save)) != NULL && r->n_params < REQ_MAX_PARAMS) {
		char *v = url_decode(arg);
		/* A path segment: not empty, no '/' (NULs end it, as in C). */
		if (v[0] == '\0' || (strchr(v, '/') && !(rest && r->n_params + 1 == want))) {
			free(v);
			goto out;
		}
		r->params[r->n_params++] = v;
	}
	if (want != r->n_params || !identify(h, who))
		goto out;
	r->identified = strcmp(who, "anon") != 0;
	dispatch(h, body, blen);
	if (verbose) {
		char *j = h->resp ? json_dumps(h->resp, JSON_COMPACT) : NULL;
		fprintf(stderr, "%s → %d %s\n", line, h->status, j ? j : h->text ? "(text)" : "(raw)");
		free(j);
	}
	check_response(h, line);
	audit(api, h);
	if (!r->admin && r->caller != OWNER_ROOT && h->resp && h->status < 300) {
		struct user me = { 0 };
		if (store_user_get_id(api->st, r->caller, &me) == STORE_OK)
			check_fence(h->resp, me.name, line, 0);
		user_free(&me);
	}
out:
	req_release(h);
	free(head);
	free(line);
}

/* ---- one input ---------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_ctx api = { .web = web };
	const char *p = (const char *)data, *end = p + size;
	char *err = NULL;

	world_begin(&api);
	api.audit = audit_new(&api, &err);
	FUZZ_ASSERT(api.audit != NULL, "audit: %s", err ? err : "?");
	for (int n = 0; p < end && n < REQUESTS_MAX; n++) {
		const char *sep = NULL;
		for (const char *q = p; q + 4 <= end && !sep; q++)
			if (q[0] == '\n' && memcmp(q + 1, "===", 3) == 0 && (q + 4 == end || q[4] == '\n'))
				sep = q;
		const char *stop = sep ? sep : end;
		run_request(&api, p, (size_t)(stop - p));
		p = sep ? (sep + 5 <= end ? sep + 5 : end) : end;
	}
	/* Moves the journal into the store, which world_end then checks. */
	audit_free(api.audit);
	api.audit = NULL;
	world_end(&api);
	return 0;
}
