/*
 * http — libmicrohttpd plumbing: listeners (the unix socket, an optional
 * TCP one), request accounting, body limits, routing, response encoding.
 * MHD runs in "external" epoll mode so that hcd's single poll loop drives
 * it; no thread is started here.
 */
#include "api/api.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/worker.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_PATH_SEGMENTS 8

struct api_server {
	struct api_ctx *ctx;
	struct MHD_Daemon *unix_d;
	struct MHD_Daemon *tcp_d;
	char *sock_path;
	char *tls_cert, *tls_key;
};

/* ---- helpers for handlers ----------------------------------------------- */

int req_json(struct req *r, int status, json_t *body)
{
	json_decref(r->resp);
	r->status = status;
	r->resp = body;
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

const char *req_query(struct req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ---- requests finished by a worker -------------------------------------- */

struct deferred {
	struct req *r;
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
	struct req *r = d->r;

	d->finish(r, d->arg, ran);
	if (!ran && r->resp == NULL)
		req_error(r, 503, "unavailable", "hcd is stopping");
	r->resumed = true;
	/* on_request suspended it when the handler returned. */
	MHD_resume_connection(r->conn);
	free(d);
}

int req_defer(struct req *r, void (*work)(void *arg),
	      void (*finish)(struct req *r, void *arg, bool ran), void *arg)
{
	struct deferred *d;

	if (r->api->workers == NULL) {
		work(arg);
		finish(r, arg, true);
		return 0;
	}
	d = malloc(sizeof(*d));
	if (d == NULL) {
		finish(r, arg, false);
		return req_error(r, 503, "unavailable", "out of memory");
	}
	*d = (struct deferred){ .r = r, .work = work, .finish = finish, .arg = arg };
	if (worker_submit(r->api->workers, deferred_work, deferred_done, d) < 0) {
		free(d);
		finish(r, arg, false);
		return req_error(r, 503, "unavailable", "no worker for the request");
	}
	r->deferred = true;
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

/* Match "/v1/vms/abc/start" against "/v1/vms/{}/start", capturing "abc". */
static bool route_match(const char *pattern, const char *url, struct req *r)
{
	const char *p = pattern, *u = url;

	r->n_params = 0;
	while (*p && *u) {
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
	for (size_t i = 0; i < r->n_params; i++)
		free(r->params[i]);
	r->n_params = 0;
	return false;
}

static void req_free(struct req *r)
{
	for (size_t i = 0; i < r->n_params; i++)
		free(r->params[i]);
	if (r->stream_free && r->stream)
		r->stream_free(r->stream);
	free(r->body);
	json_decref(r->json);
	json_decref(r->resp);
	free(r->text);
	free(r);
}

static enum MHD_Result send_response(struct req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->raw) {
		ret = MHD_queue_response(r->conn, r->status, r->raw);
		MHD_destroy_response(r->raw);
		r->raw = NULL;
		return ret;
	}
	if (r->text) {
		resp = MHD_create_response_from_buffer(r->text_len, r->text, MHD_RESPMEM_MUST_FREE);
		r->text = NULL;
		MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	} else {
		char *body;
		if (r->resp == NULL)
			req_error(r, 500, "internal", "handler produced no response");
		body = json_dumps(r->resp, JSON_COMPACT);
		if (body == NULL)
			return MHD_NO;
		size_t len = strlen(body);
		body[len] = '\n'; /* replace the NUL: responses end with a newline */
		resp = MHD_create_response_from_buffer(len + 1, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(resp, "Content-Type", "application/json");
	}
	if (resp == NULL)
		return MHD_NO;
	if (r->retry_after > 0) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%d", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
	ret = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
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
		for (size_t k = 0; k < r->n_params; k++)
			free(r->params[k]);
		r->n_params = 0;
	}
	return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct req *r = *con_cls;
	bool is_unix;

	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		r->api = s->ctx;
		r->conn = conn;
		r->method = method;
		is_unix = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON)->daemon == s->unix_d;

		bool path_known;
		r->route = route_find(r, method, url, &path_known);
		/* Errors known before the body arrives are answered at once:
		 * MHD then closes the connection instead of reading (and
		 * discarding) a body that may be huge. */
		if (!api_identify(r, is_unix)) {
			r->route = NULL;
			return send_response(r);
		} else if (r->route == NULL) {
			if (path_known)
				req_error(r, 405, "method_not_allowed", "%s not allowed on %s", method, url);
			else
				req_error(r, 404, "not_found", "no such endpoint: %s", url);
			return send_response(r);
		} else if (r->route->access == ROUTE_ADMIN && !r->admin) {
			req_error(r, 403, "forbidden", "admin only");
			r->route = NULL;
			return send_response(r);
		} else {
			/* Refuse an announced oversized JSON body before reading it. */
			const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (r->route->body == BODY_JSON && cl &&
			    strtoll(cl, NULL, 10) > s->ctx->cfg->max_body) {
				req_error(r, 413, "too_large", "request body over %lld bytes",
					  s->ctx->cfg->max_body);
				return send_response(r);
			}
			if (r->route->body == BODY_STREAM && r->route->stream_begin(r) != 0) {
				r->stream_failed = true;
				return send_response(r);
			}
		}
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->route == NULL || r->body_too_large || r->stream_failed)
			return MHD_YES; /* discard: the error is already set */
		if (r->route->body == BODY_STREAM) {
			if (r->route->stream_chunk(r, upload_data, n) != 0)
				r->stream_failed = true;
			return MHD_YES;
		}
		if (r->route->body == BODY_NONE || r->body_len + n > (size_t)s->ctx->cfg->max_body) {
			r->body_too_large = true;
			free(r->body);
			r->body = NULL;
			if (r->route->body == BODY_NONE)
				req_error(r, 400, "bad_request", "this endpoint takes no body");
			else
				req_error(r, 413, "too_large", "request body over %lld bytes",
					  s->ctx->cfg->max_body);
			return MHD_YES;
		}
		char *nb = realloc(r->body, r->body_len + n + 1);
		if (nb == NULL)
			return MHD_NO;
		r->body = nb;
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
		return MHD_YES;
	}

	/* Resumed after req_defer: the worker's result is the response. */
	if (r->resumed)
		return send_response(r);
	/* The request is complete. */
	if (r->route && !r->body_too_large && !r->stream_failed) {
		if (r->route->body == BODY_JSON) {
			json_error_t jerr;
			if (r->body_len == 0) {
				r->json = json_object();
			} else {
				r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
				if (r->json == NULL)
					req_error(r, 400, "bad_json", "malformed JSON: %s (line %d)",
						  jerr.text, jerr.line);
				else if (!json_is_object(r->json))
					req_error(r, 400, "bad_json", "the body must be a JSON object");
			}
			if (r->json && json_is_object(r->json))
				r->route->handler(r);
		} else {
			r->route->handler(r);
		}
	}
	if (r->deferred) {
		MHD_suspend_connection(conn);
		return MHD_YES;
	}
	return send_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	if (*con_cls)
		req_free(*con_cls);
	*con_cls = NULL;
}

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

/* "[::1]:8443", "127.0.0.1:8443" → a listening socket. */
static int tcp_listen(const char *spec, char **err)
{
	char host[128];
	const char *port;
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd, one = 1;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(end - spec - 1));
		host[end - spec - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	char *end;
	long p = strtol(port, &end, 10);
	if (*end || p <= 0 || p > 65535)
		goto bad;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		sl = sizeof(*s6);
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		sl = sizeof(*s4);
	} else {
		goto bad;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		*err = str_printf("listen %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
bad:
	*err = str_printf("listen '%s': expected [v6addr]:port or v4addr:port", spec);
	return -1;
}

static struct MHD_Daemon *daemon_start(struct api_server *s, int fd, bool tls)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_SUPPRESS_DATE_NO_CLOCK;

	if (tls)
		return MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, on_request, s,
					MHD_OPTION_LISTEN_SOCKET, fd,
					MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
					MHD_OPTION_HTTPS_MEM_CERT, s->tls_cert,
					MHD_OPTION_HTTPS_MEM_KEY, s->tls_key,
					MHD_OPTION_END);
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				MHD_OPTION_END);
}

struct api_server *api_server_start(struct api_ctx *ctx, char **err)
{
	struct api_server *s = calloc(1, sizeof(*s));
	int fd;

	*err = NULL;
	if (s == NULL)
		return NULL;
	s->ctx = ctx;
	ctx->auth = api_auth_new(ctx->cfg, err);
	if (ctx->auth == NULL)
		goto fail;
	s->sock_path = str_printf("%s/api.sock", ctx->cfg->state_dir);
	fd = unix_listen(s->sock_path, err);
	if (fd < 0)
		goto fail;
	s->unix_d = daemon_start(s, fd, false);
	if (s->unix_d == NULL) {
		close(fd);
		*err = strdup("libmicrohttpd: cannot start on the unix socket");
		goto fail;
	}
	if (ctx->cfg->listen && ctx->cfg->listen[0]) {
		bool tls = ctx->cfg->tls_cert && ctx->cfg->tls_cert[0];
		if (tls && (file_read(ctx->cfg->tls_cert, 1 << 20, &s->tls_cert, NULL) < 0 ||
			    file_read(ctx->cfg->tls_key ? ctx->cfg->tls_key : "", 1 << 20,
				      &s->tls_key, NULL) < 0)) {
			*err = strdup("cannot read tls_cert / tls_key");
			goto fail;
		}
		fd = tcp_listen(ctx->cfg->listen, err);
		if (fd < 0)
			goto fail;
		s->tcp_d = daemon_start(s, fd, tls);
		if (s->tcp_d == NULL) {
			close(fd);
			*err = str_printf("libmicrohttpd: cannot start on %s", ctx->cfg->listen);
			goto fail;
		}
	}
	return s;
fail:
	api_server_stop(s);
	return NULL;
}

void api_server_stop(struct api_server *s)
{
	if (s == NULL)
		return;
	if (s->unix_d)
		MHD_stop_daemon(s->unix_d);
	if (s->tcp_d)
		MHD_stop_daemon(s->tcp_d);
	if (s->sock_path)
		unlink(s->sock_path);
	api_auth_free(s->ctx->auth);
	s->ctx->auth = NULL;
	free(s->sock_path);
	if (s->tls_key)
		sodium_memzero(s->tls_key, strlen(s->tls_key));
	free(s->tls_cert);
	free(s->tls_key);
	free(s);
}

int api_server_fds(struct api_server *s, int fds[2])
{
	int n = 0;
	struct MHD_Daemon *ds[2] = { s->unix_d, s->tcp_d };

	for (int i = 0; i < 2; i++) {
		if (ds[i] == NULL)
			continue;
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(ds[i], MHD_DAEMON_INFO_EPOLL_FD);
		if (di)
			fds[n++] = di->epoll_fd;
	}
	return n;
}

long long api_server_timeout_ms(struct api_server *s)
{
	long long best = -1;
	struct MHD_Daemon *ds[2] = { s->unix_d, s->tcp_d };

	for (int i = 0; i < 2; i++) {
		MHD_UNSIGNED_LONG_LONG t;
		if (ds[i] && MHD_get_timeout(ds[i], &t) == MHD_YES &&
		    (best < 0 || (long long)t < best))
			best = (long long)t;
	}
	return best;
}

void api_server_run(struct api_server *s)
{
	if (s->unix_d)
		MHD_run(s->unix_d);
	if (s->tcp_d)
		MHD_run(s->tcp_d);
}
