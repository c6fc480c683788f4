/*
 * req — the request interface (req.h) on top of libmicrohttpd: answers,
 * inputs, upgrades, and requests finished by a worker.
 */
#include "api/http_req.h"

#include "common/fsutil.h"
#include "common/validate.h"
#include "common/worker.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- answers ------------------------------------------------------------- */

struct upgrade_call {
	void (*fn)(void *arg, int fd, const char *extra, size_t n, struct req_upgrade *h);
	void *arg;
};

void http_req_answer_free(struct http_req *h)
{
	json_decref(h->resp);
	h->resp = NULL;
	free(h->text);
	h->text = NULL;
	if (h->raw)
		MHD_destroy_response(h->raw);
	h->raw = NULL;
	free(h->upgrade);
	h->upgrade = NULL;
	h->upgraded = false;
	for (size_t i = 0; i < h->n_headers; i++) {
		free(h->headers[i].name);
		free(h->headers[i].value);
	}
	h->n_headers = 0;
}

int req_json(struct req *r, int status, json_t *body)
{
	struct http_req *h = http_req_of(r);

	http_req_answer_free(h);
	h->status = status;
	h->resp = body;
	return 0;
}

int req_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages may quote user input (a path, a name); JSON wants UTF-8,
	 * so anything beyond ASCII is shown as '?'. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			*p = '?';
	return req_json(r, status, json_pack("{s:{s:s, s:s}}", "error", "code", code,
					      "message", msg));
}

int req_store_error(struct req *r, int rc, const char *what, const char *ref)
{
	switch (rc) {
	case STORE_NOTFOUND:
		return req_error(r, 404, "not_found", "%s '%s' not found", what, ref ? ref : "");
	case STORE_CONFLICT:
		return req_error(r, 409, "conflict", "%s '%s' conflicts with an existing one or is in use",
				 what, ref ? ref : "");
	case STORE_FULL:
		return req_error(r, 409, "exhausted", "no free identifier or address for %s", what);
	case STORE_AMBIGUOUS:
		return req_error(r, 409, "ambiguous", "several public %ss are named '%s': say OWNER/%s",
				 what, ref ? ref : "", ref ? ref : "");
	case STORE_QUOTA:
		return req_error(r, 403, "quota_exceeded", "%s", store_refusal(r->api->st));
	default:
		return req_error(r, 500, "internal", "store failure");
	}
}

int req_text(struct req *r, int status, char *text, size_t len)
{
	struct http_req *h = http_req_of(r);

	http_req_answer_free(h);
	h->status = status;
	h->text = text;
	h->text_len = len;
	return 0;
}

/* A prebuilt response (not NULL) becomes the answer. */
static int raw_answer(struct req *r, int status, const char *content_type, struct MHD_Response *resp)
{
	struct http_req *h = http_req_of(r);

	MHD_add_response_header(resp, "Content-Type", content_type);
	http_req_answer_free(h);
	h->status = status;
	h->raw = resp;
	return 0;
}

int req_bytes(struct req *r, int status, const char *content_type, void *data, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, data ? data : (void *)"",
					       data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(data);
		return req_error(r, 500, "internal", "out of memory");
	}
	return raw_answer(r, status, content_type, resp);
}

int req_file(struct req *r, int status, const char *content_type, int fd, uint64_t size)
{
	/* libmicrohttpd sends it with sendfile(2) on plain connections. */
	struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);

	if (resp == NULL) {
		close(fd);
		return req_error(r, 500, "internal", "cannot answer with a file");
	}
	return raw_answer(r, status, content_type, resp);
}

void req_header_add(struct req *r, const char *name, const char *value)
{
	struct http_req *h = http_req_of(r);
	char *n, *v;

	if (h->n_headers == REQ_MAX_HEADERS)
		return;
	n = strdup(name);
	v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return;
	}
	h->headers[h->n_headers].name = n;
	h->headers[h->n_headers].value = v;
	h->n_headers++;
}

void req_retry_after(struct req *r, int seconds)
{
	http_req_of(r)->retry_after = seconds;
}

bool req_answered(const struct req *r)
{
	const struct http_req *h = (const struct http_req *)r;

	return h->resp || h->text || h->raw;
}

static void upgrade_run(void *cls, struct MHD_Connection *conn, void *req_cls,
			const char *extra, size_t extra_len, MHD_socket sock,
			struct MHD_UpgradeResponseHandle *urh)
{
	struct http_req *h = req_cls;
	struct upgrade_call *u = cls;

	/* The call is no longer the request's to free. */
	if (h && h->upgrade == u)
		h->upgrade = NULL;
	u->fn(u->arg, sock, extra, extra_len, (struct req_upgrade *)urh);
	free(u);
}

int req_upgrade(struct req *r, const char *protocol,
		void (*on_upgrade)(void *arg, int fd, const char *extra, size_t n,
				   struct req_upgrade *h),
		void *arg)
{
	struct http_req *h = http_req_of(r);
	struct upgrade_call *u = malloc(sizeof(*u));
	struct MHD_Response *resp = u ? MHD_create_response_for_upgrade(upgrade_run, u) : NULL;

	if (resp == NULL) {
		free(u);
		return req_error(r, 500, "internal", "cannot upgrade the connection");
	}
	*u = (struct upgrade_call){ .fn = on_upgrade, .arg = arg };
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	http_req_answer_free(h);
	h->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	h->raw = resp;
	h->upgrade = u;
	h->upgraded = true;
	return 0;
}

void req_upgrade_close(struct req_upgrade *u)
{
	MHD_upgrade_action((struct MHD_UpgradeResponseHandle *)u, MHD_UPGRADE_ACTION_CLOSE);
}

struct req_stream {
	struct MHD_Connection *conn;
	struct api_server *server;
	long (*pull)(void *arg, char *buf, size_t max);
	void (*gone)(void *arg);
	void *arg;
	bool suspended;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req_stream *s = cls;
	long n = s->pull(s->arg, buf, max);

	(void)pos;
	if (n == 0) {
		/* Nothing to send: sleep instead of being asked again at once
		 * (MHD's reader contract); req_stream_wake resumes. */
		MHD_suspend_connection(s->conn);
		s->suspended = true;
		return 0;
	}
	if (n == REQ_STREAM_END)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct req_stream *s = cls;

	s->gone(s->arg);
	free(s);
}

int req_stream(struct req *r, const char *content_type,
	       long (*pull)(void *arg, char *buf, size_t max), void (*gone)(void *arg),
	       void *arg, struct req_stream **handle)
{
	struct http_req *h = http_req_of(r);
	struct req_stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;

	*handle = NULL;
	if (s == NULL)
		return req_error(r, 500, "internal", "out of memory");
	*s = (struct req_stream){ .conn = h->conn, .server = h->server, .pull = pull,
				  .gone = gone, .arg = arg };
	/* 4 KiB blocks: an event is sent as soon as it is there, never held
	 * back to fill a bigger one. */
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
	if (resp == NULL) {
		free(s);
		return req_error(r, 500, "internal", "out of memory");
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	/* No proxy in between may hold it back (nothing caches it: every
	 * API answer says Cache-Control: no-store). */
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	http_req_answer_free(h);
	h->status = 200;
	h->raw = resp;
	*handle = s;
	return 0;
}

void req_stream_wake(struct req_stream *s)
{
	if (!s->suspended)
		return;
	s->suspended = false;
	MHD_resume_connection(s->conn);
	http_server_resumed(s->server);
}

bool req_stream_hung_up(struct req_stream *s)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd p = { .fd = ci ? ci->connect_fd : -1, .events = POLLRDHUP };

	return p.fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* ---- inputs --------------------------------------------------------------- */

const char *req_query(struct req *r, const char *key)
{
	return MHD_lookup_connection_value(http_req_of(r)->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *req_ref(struct req *r)
{
	const char *owner = req_query(r, "owner");
	char *q;

	/* Qualified once: a segment never holds a '/' of its own. */
	if (r->n_params == 0 || owner == NULL || strchr(r->params[0], '/'))
		return r->n_params ? r->params[0] : "";
	if ((q = str_printf("%s/%s", owner, r->params[0])) == NULL)
		return r->params[0];
	free(r->params[0]);
	r->params[0] = q;
	return q;
}

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(http_req_of(r)->conn, MHD_HEADER_KIND, name);
}

bool only_keys(struct req *r, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(r->json, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok) {
			req_error(r, 400, "bad_request", "unknown field '%s'", key);
			return false;
		}
	}
	return true;
}

static bool all_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* Names must be valid and must not read as an ID of the same kind, so a
 * reference is never ambiguous. */
bool api_name_check(struct req *r, const char *name, size_t id_digits, const char *what)
{
	if (!name_valid(name)) {
		req_error(r, 400, "bad_name",
			  "%s name must match [a-z0-9][a-z0-9-]{0,62}", what);
		return false;
	}
	if (strlen(name) == id_digits && all_hex(name)) {
		req_error(r, 400, "bad_name", "%s name must not look like an ID", what);
		return false;
	}
	return true;
}

bool get_int(struct req *r, const char *key, int lo, int hi, int *out)
{
	json_t *v = json_object_get(r->json, key);

	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		req_error(r, 400, "bad_request", "'%s' must be an integer in %d..%d", key, lo, hi);
		return false;
	}
	*out = (int)json_integer_value(v);
	return true;
}

bool get_str(struct req *r, const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(r->json, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			req_error(r, 400, "bad_request", "'%s' is required", key);
		return !required;
	}
	if (!json_is_string(v)) {
		req_error(r, 400, "bad_request", "'%s' must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* ---- requests finished by a worker ---------------------------------------- */

struct deferred {
	struct http_req *h;
	void (*work)(void *arg);
	void (*finish)(struct req *r, void *arg, bool ran);
	void *arg;
};

static void deferred_work(void *p)
{
	struct deferred *d = p;

	d->work(d->arg);
}

static void deferred_done(void *p, bool ran)
{
	struct deferred *d = p;
	struct http_req *h = d->h;

	h->pending--;
	d->finish(&h->pub, d->arg, ran);
	free(d);
	/* finish handed a next step to a worker: stay suspended. */
	if (h->pending > 0)
		return;
	if (!ran && !req_answered(&h->pub))
		req_error(&h->pub, 503, "unavailable", "hcd is stopping");
	h->resumed = true;
	/* http.c suspended it when the handler returned. */
	MHD_resume_connection(h->conn);
	http_req_resumed(h);
}

int req_defer(struct req *r, void (*work)(void *arg),
	      void (*finish)(struct req *r, void *arg, bool ran), void *arg)
{
	return req_defer_on(r, r->api->workers, work, finish, arg);
}

int req_defer_on(struct req *r, struct worker_pool *pool, void (*work)(void *arg),
		 void (*finish)(struct req *r, void *arg, bool ran), void *arg)
{
	struct http_req *h = http_req_of(r);
	struct deferred *d;

	if (pool == NULL) {
		work(arg);
		finish(r, arg, true);
		return 0;
	}
	d = malloc(sizeof(*d));
	if (d == NULL) {
		finish(r, arg, false);
		return req_error(r, 503, "unavailable", "out of memory");
	}
	*d = (struct deferred){ .h = h, .work = work, .finish = finish, .arg = arg };
	if (worker_submit(pool, deferred_work, deferred_done, d) < 0) {
		free(d);
		finish(r, arg, false);
		return req_error(r, 503, "unavailable", "no worker for the request");
	}
	h->pending++;
	h->deferred = true;
	return 0;
}
