/*
 * http — libmicrohttpd plumbing: listeners (the unix socket, an optional
 * TCP one), who may hold a connection, body limits, dispatch through the
 * route table, answer encoding.  MHD runs in "external" epoll mode so that
 * hcd's single poll loop drives it; no thread is started here.
 *
 * This file knows the route table (route.h), who is calling (identity.h)
 * and the request interface it implements with req.c (http_req.h); it
 * knows no handler.
 *
 * Connections (issue 11 §6): every listener has its own connlimit table
 * (connlimit.h): a total, a per-peer limit (an IPv4 address, an IPv6 /64;
 * on the unix socket the peer's uid, root exempt), and an absolute
 * deadline for the headers of each request, so a flood of idle or
 * trickling connections can neither fill the listener nor outlast its
 * welcome.  A connection to refuse or cut is shut down (shutdown(2), not
 * close: libmicrohttpd owns the descriptor and closes it when it reads the
 * end).  Bodies of routes anyone may call are read only up to
 * ROUTE_ANON_MAX_BODY.
 */
#include "api/api.h"

#include "api/audit.h"
#include "api/connlimit.h"
#include "api/console.h"
#include "api/events.h"
#include "api/http_req.h"
#include "api/identity.h"
#include "api/metrics.h"
#include "api/route.h"
#include "api/web.h"
#include "common/addrkey.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* libmicrohttpd's own limit sits above ours by this much: connections we
 * cut are still open until it reads their end. */
#define MHD_LIMIT_MARGIN 64
/* How often open consoles are checked against revocations. */
#define CONSOLE_CHECK_MS 1000

enum { L_UNIX, L_TCP, L_N };

struct listener {
	struct api_server *s;
	struct MHD_Daemon *d;
	struct connlimit *lim;
	bool is_unix;
	bool tls;
};

struct api_server {
	struct api_ctx *ctx;
	struct listener l[L_N];
	char *sock_path;
	char *tls_cert, *tls_key;
	long long next_console_check;
	/* A request was resumed since the daemons last ran: libmicrohttpd
	 * (external select, no inter-thread channel) only sends its answer
	 * when run again. */
	bool resumed;
};

/* What a connection carries from accept to close (MHD's socket context). */
struct conn_ctx {
	struct conn *lim;
	int fd;
	struct peer peer;
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- who may hold a connection ------------------------------------------ */

static void cut(struct conn *c)
{
	struct conn_ctx *cc = c->owner;

	shutdown(cc->fd, SHUT_RDWR);
}

static void peer_of(struct listener *l, struct MHD_Connection *conn, int fd, struct peer *p)
{
	const union MHD_ConnectionInfo *ci;

	*p = (struct peer){ .is_unix = l->is_unix };
	if (l->is_unix) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		p->have_cred = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
		p->uid = p->have_cred ? cred.uid : (uid_t)-1;
		snprintf(p->source, sizeof(p->source), "unix:%u", p->have_cred ? (unsigned)p->uid : 0u);
		/* Root is the operator: never limited per peer. */
		if (!(p->have_cred && p->uid == 0))
			snprintf(p->key, sizeof(p->key), "unix:%u", p->have_cred ? (unsigned)p->uid : 0u);
		return;
	}
	snprintf(p->source, sizeof(p->source), "unknown");
	snprintf(p->key, sizeof(p->key), "other");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	addr_key(sa, sl, p->key);
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, p->source,
			  sizeof(p->source));
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, p->source,
			  sizeof(p->source));
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct listener *l = cls;
	struct conn_ctx *cc = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (cc) {
			if (cc->lim)
				connlimit_close(l->lim, cc->lim);
			free(cc);
		}
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int fd = ci ? ci->connect_fd : -1;
	struct conn *victim = NULL;

	cc = calloc(1, sizeof(*cc));
	*socket_context = cc;
	if (cc == NULL || fd < 0) {
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		return;
	}
	cc->fd = fd;
	peer_of(l, conn, fd, &cc->peer);
	cc->lim = connlimit_open(l->lim, cc->peer.key, cc, mono_ms(), &victim);
	if (victim) {
		log_debug("api: connection limit reached; cutting the longest idle one (%s)",
			  victim->key);
		cut(victim);
	}
	if (cc->lim == NULL || cc->lim->cut) {
		log_debug("api: refusing a connection from %s (per-peer or total limit)",
			  cc->peer.source);
		shutdown(fd, SHUT_RDWR);
	}
}

void http_req_resumed(struct http_req *h)
{
	h->server->resumed = true;
}

void http_server_resumed(struct api_server *s)
{
	s->resumed = true;
}

static struct conn_ctx *conn_ctx_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* ---- routing ------------------------------------------------------------ */

static void params_free(struct req *r)
{
	for (size_t i = 0; i < r->n_params; i++)
		free(r->params[i]);
	r->n_params = 0;
}

/* Match "/v1/vms/abc/start" against "/v1/vms/{}/start", capturing "abc";
 * a final "*" captures the rest of the path (after "/ui/", a "*" takes
 * "css/app.css" of "/ui/css/app.css"). */
static bool route_match(const char *pattern, const char *url, struct req *r)
{
	const char *p = pattern, *u = url;

	r->n_params = 0;
	while (*p && *u) {
		if (p[0] == '*' && p[1] == '\0') {
			if (r->n_params == REQ_MAX_PARAMS)
				goto fail;
			r->params[r->n_params++] = strdup(u);
			return true;
		}
		if (p[0] == '{' && p[1] == '}') {
			const char *end = strchr(u, '/');
			size_t len = end ? (size_t)(end - u) : strlen(u);
			if (len == 0 || r->n_params == REQ_MAX_PARAMS)
				goto fail;
			r->params[r->n_params++] = strndup(u, len);
			p += 2;
			u += len;
			continue;
		}
		if (*p != *u)
			goto fail;
		p++;
		u++;
	}
	/* A trailing slash is tolerated. */
	if (*p == '\0' && (*u == '\0' || (u[0] == '/' && u[1] == '\0')))
		return true;
fail:
	params_free(r);
	return false;
}

static const struct route *route_find(struct req *r, const char *method, const char *url,
				      bool *path_known)
{
	*path_known = false;
	for (size_t i = 0; i < api_n_routes; i++) {
		const struct route *rt = &api_routes[i];
		if (!route_match(rt->pattern, url, r))
			continue;
		*path_known = true;
		if (strcmp(rt->method, method) == 0)
			return rt;
		params_free(r);
	}
	return NULL;
}

static long long body_limit(const struct api_server *s, const struct route *rt)
{
	long long max = s->ctx->cfg->max_body;

	if (ROUTE_WHO(rt->access) == ROUTE_ANON && max > ROUTE_ANON_MAX_BODY)
		max = ROUTE_ANON_MAX_BODY;
	return max;
}

static void req_free(struct http_req *h)
{
	params_free(&h->pub);
	if (h->pub.stream_free && h->pub.stream)
		h->pub.stream_free(h->pub.stream);
	free(h->body);
	json_decref(h->pub.json);
	http_req_answer_free(h);
	free(h);
}

/* The error code of an answer, or "ok": the audit trail's result. */
static const char *answer_result(const struct http_req *h)
{
	const char *code = json_string_value(json_object_get(json_object_get(h->resp, "error"), "code"));

	if (code)
		return code;
	return h->status < 400 ? "ok" : "error";
}

/*
 * Every answer is counted (metrics.h) and every answer to a mutating
 * request recorded (audit.h) before it is queued: once the client can
 * read it, the audit trail has it.
 */
static void request_observe(struct http_req *h)
{
	struct api_ctx *ctx = h->server->ctx;
	const char *pattern = h->matched ? h->matched->pattern : NULL;

	metrics_request(ctx->metrics, h->matched, h->pub.method, h->status, stat_now() - h->t0);
	if (strcmp(h->pub.method, "GET") != 0 && strcmp(h->pub.method, "HEAD") != 0 && pattern)
		audit_request(ctx->audit, &h->pub, pattern, h->status, answer_result(h),
			      h->status == 201 ? json_string_value(json_object_get(h->resp, "id")) : NULL);
}

/*
 * Headers on every answer but a protocol switch.  The API's JSON is data,
 * never a document: nothing may render, frame or cache it (a login's
 * answer holds a token).  The dashboard's files (ROUTE_PAGE, web/) load
 * only from this origin: no inline script or style, no other host to
 * talk to (connect-src 'self' covers this origin's wss:), no forms sent
 * anywhere (the page's script sends everything), no framing.
 */
#define CSP_API "default-src 'none'; frame-ancestors 'none'"
#define CSP_PAGE "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

static void add_headers(struct http_req *h, struct MHD_Response *resp)
{
	bool page = h->route && (h->route->access & ROUTE_PAGE);

	if (h->status != MHD_HTTP_SWITCHING_PROTOCOLS) {
		MHD_add_response_header(resp, "Content-Security-Policy", page ? CSP_PAGE : CSP_API);
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
		if (!page)
			MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	for (size_t i = 0; i < h->n_headers; i++)
		MHD_add_response_header(resp, h->headers[i].name, h->headers[i].value);
}

static enum MHD_Result send_response(struct http_req *h)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (h->resp == NULL && h->text == NULL && h->raw == NULL)
		req_error(&h->pub, 500, "internal", "handler produced no response");
	request_observe(h);
	if (h->raw) {
		add_headers(h, h->raw);
		ret = MHD_queue_response(h->conn, (unsigned)h->status, h->raw);
		MHD_destroy_response(h->raw);
		h->raw = NULL;
		return ret;
	}
	if (h->text) {
		resp = MHD_create_response_from_buffer(h->text_len, h->text, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			return MHD_NO;
		h->text = NULL;
		MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	} else {
		char *body;
			body = json_dumps(h->resp, JSON_COMPACT);
		if (body == NULL)
			return MHD_NO;
		size_t len = strlen(body);
		body[len] = '\n'; /* replace the NUL: responses end with a newline */
		resp = MHD_create_response_from_buffer(len + 1, body, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL) {
			free(body);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "application/json");
	}
	if (h->retry_after > 0) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%d", h->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	add_headers(h, resp);
	ret = MHD_queue_response(h->conn, (unsigned)h->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * A browser names the page that opens a WebSocket in Origin, and sends
 * it whatever the page's origin: a WebSocket to this listener is only for
 * the dashboard it serves itself (scheme and Host of this very request).
 * Clients that are not browsers send no Origin and need their token all
 * the same; browsers never reach the unix socket.
 */
static bool websocket_origin_ok(const struct listener *l, struct req *r)
{
	const char *origin = req_header(r, "Origin"), *host = req_header(r, "Host");
	char own[320];

	if (origin == NULL)
		return true;
	if (l->is_unix || host == NULL)
		return false;
	snprintf(own, sizeof(own), "%s://%s", l->tls ? "https" : "http", host);
	return strcasecmp(origin, own) == 0;
}

/*
 * The headers are in: find the route, establish the caller, and refuse
 * at once what can be refused before the body arrives — MHD then closes
 * the connection instead of reading (and discarding) a body that may be
 * huge.  True when the request goes on to its body and handler.
 */
static bool request_begin(struct listener *l, struct http_req *h, const char *url,
			  const char *method, const struct conn_ctx *cc)
{
	struct api_server *s = l->s;
	struct req *r = &h->pub;
	bool path_known, ws;

	snprintf(r->source, sizeof(r->source), "%s", cc->peer.source);
	snprintf(r->peer_key, sizeof(r->peer_key), "%s", cc->peer.key[0] ? cc->peer.key : "unix:0");
	h->route = route_find(r, method, url, &path_known);
	h->matched = h->route;
	ws = h->route && (h->route->access & ROUTE_WEBSOCKET);
	if (ws && !websocket_origin_ok(l, r)) {
		req_error(r, 403, "forbidden", "a WebSocket from another origin");
		goto refuse;
	}
	/* A scraper with the metrics token is let in to /metrics alone. */
	bool scraper = h->route && ROUTE_WHO(h->route->access) == ROUTE_METRICS &&
		       api_metrics_token(r);
	/* Logging in needs no identity, and a stale token must not stop it. */
	if (!scraper && !(h->route && ROUTE_WHO(h->route->access) == ROUTE_ANON)) {
		if (!api_identify(r, &cc->peer, ws))
			goto refuse;
		r->identified = true;
	}
	if (h->route == NULL) {
		if (path_known)
			req_error(r, 405, "method_not_allowed", "%s not allowed on %s", method, url);
		else
			req_error(r, 404, "not_found", "no such endpoint: %s", url);
		goto refuse;
	}
	if ((ROUTE_WHO(h->route->access) == ROUTE_ADMIN ||
	     (ROUTE_WHO(h->route->access) == ROUTE_METRICS && !scraper)) && !r->admin) {
		req_error(r, 403, "forbidden", "admin only");
		goto refuse;
	}
	/* Refuse an announced oversized JSON body before reading it. */
	const char *cl = req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (h->route->body == BODY_JSON && cl && strtoll(cl, NULL, 10) > body_limit(s, h->route)) {
		req_error(r, 413, "too_large", "request body over %lld bytes", body_limit(s, h->route));
		goto refuse;
	}
	if (h->route->body == BODY_STREAM && h->route->stream_begin(r) != 0) {
		h->stream_failed = true;
		goto refuse;
	}
	return true;
refuse:
	h->route = NULL;
	return false;
}

/* A piece of the body. */
static void request_body(struct api_server *s, struct http_req *h, const char *data, size_t n)
{
	struct req *r = &h->pub;

	if (h->route == NULL || h->body_refused || h->stream_failed)
		return; /* discard: the error is already set */
	if (h->route->body == BODY_STREAM) {
		if (h->route->stream_chunk(r, data, n) != 0)
			h->stream_failed = true;
		return;
	}
	long long max = body_limit(s, h->route);
	if (h->route->body == BODY_NONE || (long long)(h->body_len + n) > max) {
		h->body_refused = true;
		free(h->body);
		h->body = NULL;
		if (h->route->body == BODY_NONE)
			req_error(r, 400, "bad_request", "this endpoint takes no body");
		else
			req_error(r, 413, "too_large", "request body over %lld bytes", max);
		return;
	}
	char *nb = realloc(h->body, h->body_len + n + 1);
	if (nb == NULL) {
		h->body_refused = true;
		req_error(r, 500, "internal", "out of memory");
		return;
	}
	h->body = nb;
	memcpy(h->body + h->body_len, data, n);
	h->body_len += n;
	h->body[h->body_len] = '\0';
}

/* The request is complete: decode the body and run the handler. */
static void request_run(struct http_req *h)
{
	struct req *r = &h->pub;
	json_error_t jerr;

	if (h->route == NULL || h->body_refused || h->stream_failed)
		return;
	if (h->route->body == BODY_JSON) {
		if (h->body_len == 0) {
			r->json = json_object();
		} else {
			r->json = json_loadb(h->body, h->body_len, JSON_REJECT_DUPLICATES, &jerr);
			if (r->json == NULL) {
				req_error(r, 400, "bad_json", "malformed JSON: %s (line %d)", jerr.text,
					  jerr.line);
				return;
			}
			if (!json_is_object(r->json)) {
				req_error(r, 400, "bad_json", "the body must be a JSON object");
				return;
			}
		}
	}
	h->route->handler(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct api_server *s = l->s;
	struct http_req *h = *con_cls;

	if (h == NULL) {
		struct conn_ctx *cc = conn_ctx_of(conn);
		/* A connection refused or cut may still have sent a request
		 * before libmicrohttpd read its end: it gets no answer. */
		if (cc == NULL || cc->lim == NULL || cc->lim->cut)
			return MHD_NO;
		connlimit_busy(l->lim, cc->lim);
		h = calloc(1, sizeof(*h));
		if (h == NULL)
			return MHD_NO;
		*con_cls = h;
		h->t0 = stat_now();
		h->pub.api = s->ctx;
		h->pub.method = method;
		h->server = s;
		h->conn = conn;
		if (!request_begin(l, h, url, method, cc))
			return send_response(h);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		request_body(s, h, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* Resumed after req_defer: the worker's result is the answer. */
	if (h->resumed)
		return send_response(h);
	request_run(h);
	if (h->deferred) {
		MHD_suspend_connection(conn);
		return MHD_YES;
	}
	return send_response(h);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct listener *l = cls;
	struct http_req *h = *con_cls;
	struct conn_ctx *cc = conn_ctx_of(conn);

	/* Kept open for the next request: the header deadline runs again.
	 * An upgraded connection completes only when it closes. */
	if (cc && cc->lim && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !(h && h->upgraded))
		connlimit_idle(l->lim, cc->lim, mono_ms());
	if (h)
		req_free(h);
	*con_cls = NULL;
}

/* ---- listeners ---------------------------------------------------------- */

static int unix_listen(const char *path, char **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		*err = str_printf("%s: path too long for a unix socket", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*err = str_printf("socket: %s", strerror(errno));
		return -1;
	}
	unlink(path); /* a stale socket from a crashed hcd */
	/* Anyone may connect: every request is authenticated (peer
	 * credentials or a token), and unknown local users are refused. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
	    listen(fd, 128) < 0) {
		*err = str_printf("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* "[::1]:8443", "127.0.0.1:8443" → an address (false: not of that shape). */
static bool listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[128];
	const char *port, *sep;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (spec[0] == '[') {
		sep = strchr(spec, ']');
		if (!sep || sep[1] != ':' || (size_t)(sep - spec - 1) >= sizeof(host))
			return false;
		memcpy(host, spec + 1, (size_t)(sep - spec - 1));
		host[sep - spec - 1] = '\0';
		port = sep + 2;
	} else {
		sep = strrchr(spec, ':');
		if (!sep || (size_t)(sep - spec) >= sizeof(host))
			return false;
		memcpy(host, spec, (size_t)(sep - spec));
		host[sep - spec] = '\0';
		port = sep + 1;
	}
	long p = strtol(port, &end, 10);
	if (*port == '\0' || *end || p <= 0 || p > 65535)
		return false;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*sl = sizeof(*s6);
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*sl = sizeof(*s4);
	} else {
		return false;
	}
	return true;
}

/*
 * The TCP listener.  Without a certificate it would carry passwords and
 * tokens in clear, so it is refused unless the operator says so
 * (listen_insecure) for a loopback address, where nothing leaves the host.
 */
static int tcp_listen(const struct config *cfg, bool tls, char **err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (!listen_parse(cfg->listen, &ss, &sl)) {
		*err = str_printf("listen '%s': expected [v6addr]:port or v4addr:port", cfg->listen);
		return -1;
	}
	if (!tls && !(cfg->listen_insecure && addr_is_loopback(&ss))) {
		*err = str_printf("listen %s without tls_cert would send passwords in clear: set "
				  "tls_cert and tls_key, or listen_insecure = true on a loopback address",
				  cfg->listen);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		*err = str_printf("listen %s: %s", cfg->listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool listener_start(struct api_server *s, struct listener *l, int fd, bool tls)
{
	const struct config *cfg = s->ctx->cfg;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_SUPPRESS_DATE_NO_CLOCK;
	unsigned limit = (unsigned)cfg->api_max_connections + MHD_LIMIT_MARGIN;
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};

	l->s = s;
	l->tls = tls;
	l->lim = connlimit_new((size_t)cfg->api_max_connections, (size_t)cfg->api_max_per_peer,
			       (int64_t)cfg->api_header_timeout * 1000);
	if (l->lim == NULL)
		return false;
	l->d = MHD_start_daemon(flags | (tls ? MHD_USE_TLS : 0), 0, NULL, NULL, on_request, l,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
				MHD_OPTION_CONNECTION_LIMIT, limit,
				/* Inactivity once a request is under way (an upload
				 * that stalls); the header deadline is ours. */
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[2],
				MHD_OPTION_END);
	return l->d != NULL;
}

/* Room for every connection the limits allow, on both listeners, beside
 * hcd's other descriptors (QMP sockets, taps, files). */
static void raise_nofile(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)(cfg->api_max_connections + MHD_LIMIT_MARGIN) * L_N + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		log_warn("api: open files limited to %llu; api_max_connections = %d needs %llu",
			 (unsigned long long)rl.rlim_cur, cfg->api_max_connections,
			 (unsigned long long)want);
}

struct api_server *api_server_start(struct api_ctx *ctx, char **err)
{
	struct api_server *s = calloc(1, sizeof(*s));
	const struct config *cfg = ctx->cfg;
	int fd;

	*err = NULL;
	if (s == NULL)
		return NULL;
	s->ctx = ctx;
	raise_nofile(cfg);
	ctx->auth = api_auth_new(ctx, err);
	if (ctx->auth == NULL)
		goto fail;
	ctx->metrics = metrics_new(ctx, err);
	if (ctx->metrics == NULL)
		goto fail;
	ctx->events = events_new(ctx, err);
	if (ctx->events == NULL)
		goto fail;
	ctx->audit = audit_new(ctx, err);
	if (ctx->audit == NULL)
		goto fail;
	ctx->web = web_open(cfg);
	if (ctx->web == NULL) {
		*err = strdup("out of memory");
		goto fail;
	}
	s->sock_path = str_printf("%s/api.sock", cfg->state_dir);
	fd = unix_listen(s->sock_path, err);
	if (fd < 0)
		goto fail;
	s->l[L_UNIX].is_unix = true;
	if (!listener_start(s, &s->l[L_UNIX], fd, false)) {
		close(fd);
		*err = strdup("libmicrohttpd: cannot start on the unix socket");
		goto fail;
	}
	if (cfg->listen && cfg->listen[0]) {
		bool tls = cfg->tls_cert && cfg->tls_cert[0];
		if (tls && (file_read(cfg->tls_cert, 1 << 20, &s->tls_cert, NULL) < 0 ||
			    file_read(cfg->tls_key ? cfg->tls_key : "", 1 << 20, &s->tls_key, NULL) < 0)) {
			*err = strdup("cannot read tls_cert / tls_key");
			goto fail;
		}
		fd = tcp_listen(cfg, tls, err);
		if (fd < 0)
			goto fail;
		if (!listener_start(s, &s->l[L_TCP], fd, tls)) {
			close(fd);
			*err = str_printf("libmicrohttpd: cannot start on %s", cfg->listen);
			goto fail;
		}
	}
	s->next_console_check = mono_ms() + CONSOLE_CHECK_MS;
	return s;
fail:
	api_server_stop(s);
	return NULL;
}

void api_server_stop(struct api_server *s)
{
	if (s == NULL)
		return;
	/* A console's thread holds its upgraded connection: end them all
	 * before the daemons go. */
	console_stop_all();
	/* Event streams sleep (suspended) between events, and a daemon must
	 * not stop with suspended connections: wake each to its end.  Scrapes
	 * under way finish (or are answered 503) as req_defer's do. */
	events_stop(s->ctx->events);
	metrics_stop(s->ctx->metrics);
	/* Requests that req_defer finished (the pool is gone by now) are
	 * resumed: give them a turn so their answers (503 for work that never
	 * ran) reach the clients before the connections close. */
	api_server_run(s);
	for (int i = 0; i < L_N; i++) {
		if (s->l[i].d)
			MHD_stop_daemon(s->l[i].d);
		connlimit_free(s->l[i].lim);
	}
	/* After the daemons: closing a stream's connection reaches events.c. */
	events_free(s->ctx->events);
	s->ctx->events = NULL;
	audit_free(s->ctx->audit);
	s->ctx->audit = NULL;
	metrics_free(s->ctx->metrics);
	s->ctx->metrics = NULL;
	if (s->sock_path)
		unlink(s->sock_path);
	api_auth_free(s->ctx->auth);
	s->ctx->auth = NULL;
	web_close(s->ctx->web);
	s->ctx->web = NULL;
	free(s->sock_path);
	if (s->tls_key)
		sodium_memzero(s->tls_key, strlen(s->tls_key));
	free(s->tls_cert);
	free(s->tls_key);
	free(s);
}

int api_server_fds(struct api_server *s, int fds[API_SERVER_FDS])
{
	int n = 0;

	if (metrics_fd(s->ctx->metrics) >= 0)
		fds[n++] = metrics_fd(s->ctx->metrics);

	for (int i = 0; i < L_N; i++) {
		if (s->l[i].d == NULL)
			continue;
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->l[i].d, MHD_DAEMON_INFO_EPOLL_FD);
		if (di)
			fds[n++] = di->epoll_fd;
	}
	return n;
}

long long api_server_timeout_ms(struct api_server *s)
{
	long long best = -1, now = mono_ms();

	if (s->resumed)
		return 0;
	for (int i = 0; i < L_N; i++) {
		MHD_UNSIGNED_LONG_LONG t;
		long long dl;
		if (s->l[i].d == NULL)
			continue;
		if (MHD_get_timeout(s->l[i].d, &t) == MHD_YES && (best < 0 || (long long)t < best))
			best = (long long)t;
		dl = connlimit_next_ms(s->l[i].lim, now);
		if (dl >= 0 && (best < 0 || dl < best))
			best = dl;
	}
	if (console_count() > 0) {
		long long c = s->next_console_check > now ? s->next_console_check - now : 0;
		if (best < 0 || c < best)
			best = c;
	}
	long long e = events_timeout_ms(s->ctx->events, now);
	if (e >= 0 && (best < 0 || e < best))
		best = e;
	e = audit_timeout_ms(s->ctx->audit, now);
	if (e >= 0 && (best < 0 || e < best))
		best = e;
	return best;
}

void api_server_changes(struct api_server *s, int remote)
{
	events_changed(s->ctx->events, remote);
}

void api_server_run(struct api_server *s)
{
	long long now;

	s->resumed = false;
	for (int i = 0; i < L_N; i++)
		if (s->l[i].d)
			MHD_run(s->l[i].d);
	now = mono_ms();
	for (int i = 0; i < L_N; i++) {
		struct conn *c;
		while (s->l[i].lim && (c = connlimit_expired(s->l[i].lim, now)) != NULL) {
			log_debug("api: %s sent no request headers in time; closing", c->key);
			cut(c);
		}
	}
	if (now >= s->next_console_check) {
		console_check(s->ctx);
		s->next_console_check = now + CONSOLE_CHECK_MS;
	}
	events_run(s->ctx->events, now);
	audit_run(s->ctx->audit, now);
	metrics_run(s->ctx->metrics);
}
