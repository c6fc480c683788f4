/*
 * client.c — HTTP to hcd over libcurl (see cli.h).
 *
 * A target is "unix:PATH" (requests go to http://localhost/… through the
 * socket) or "http(s)://HOST[:PORT]".  One curl handle is reused for every
 * request of a run, so a multi-step command keeps its connection.  Error
 * bodies are always kept in memory, since they carry the message hc prints;
 * a 2xx body may instead stream to a FILE (vm log).  An upload is streamed
 * from its file, never loaded.
 *
 * With HC_TRACE=FILE, every exchange is appended to FILE as one JSON line
 * {method, path, request, status, type, body} (request: the JSON body hc
 * sent, its passwords and codes masked; body: a JSON answer's text, else
 * null) — what tests/openapi/check.pl reads to hold real requests and
 * answers to docs/openapi.json.  Like curl --trace it holds what hcd
 * said, a login's token included: the file is made 0600.
 */
#include "cli/cli.h"
#include "cli/progress.h"

#include "auth/credfile.h"
#include "common/fsutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_HEADERS 4
#define CONNECT_TIMEOUT_S 10L

struct client {
	char *url;                 /* as the user gave it */
	char *base;                /* "http://localhost" or the URL without a trailing / */
	char *unix_path;           /* NULL for TCP */
	char *host;                /* TCP: host name or address, without brackets */
	char *host_header;         /* what "Host:" says on a raw connection */
	long port;
	bool tls;
	char *headers[MAX_HEADERS + 1];
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- targets ------------------------------------------------------------ */

/* Every request's extra headers, decided here and nowhere else: the bearer
 * token is $HC_TOKEN, else the one `hc login` saved for this URL. */
static int headers_init(struct client *c)
{
	const char *env = getenv("HC_TOKEN");
	char *token = NULL;

	if (env && *env) {
		token = strdup(env);
	} else {
		/* No saved token (or no readable file) is no error: the unix
		 * socket knows root without one, and the daemon says 401. */
		char *path = credfile_path();
		if (path && credfile_load(path, c->url, &token) != 0)
			token = NULL;
		free(path);
	}

	c->headers[0] = str_printf("User-Agent: hc/%s", HC_VERSION);
	if (token) {
		c->headers[1] = str_printf("Authorization: Bearer %s", token);
		sodium_memzero(token, strlen(token));
		free(token);
		if (c->headers[1] == NULL)
			return -1;
	}
	return c->headers[0] ? 0 : -1;
}

/* Host and port of an http(s) URL, through curl's own URL parser. */
static int parse_tcp(struct client *c, char **err)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	int rc = -1;

	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		*err = str_printf("'%s' is not a valid URL", c->url);
		goto out;
	}
	/* An IPv6 literal comes back as "[::1]": keep brackets only in Host:. */
	size_t len = strlen(host);
	if (host[0] == '[' && len > 2)
		c->host = strndup(host + 1, len - 2);
	else
		c->host = strdup(host);
	c->host_header = str_printf("%s:%s", host, port);
	c->port = strtol(port, NULL, 10);
	c->base = strdup(c->url);
	if (c->host && c->host_header && c->base) {
		/* "http://h:1/" + "/v1/…" would give "//v1". */
		size_t bl = strlen(c->base);
		while (bl > 0 && c->base[bl - 1] == '/')
			c->base[--bl] = '\0';
		rc = 0;
	}
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static int parse_target(struct client *c, char **err)
{
	if (strncmp(c->url, "unix:", 5) == 0) {
		if (c->url[5] == '\0') {
			*err = str_printf("'%s' names no socket path", c->url);
			return -1;
		}
		c->unix_path = strdup(c->url + 5);
		c->base = strdup("http://localhost");
		c->host_header = strdup("localhost");
		return c->unix_path && c->base && c->host_header ? 0 : -1;
	}
	if (strncmp(c->url, "http://", 7) == 0 || strncmp(c->url, "https://", 8) == 0) {
		c->tls = c->url[4] == 's';
		return parse_tcp(c, err);
	}
	*err = str_printf("URL '%s' must be unix:PATH or http(s)://HOST[:PORT]", c->url);
	return -1;
}

struct client *client_new(const char *url, char **err)
{
	struct client *c = calloc(1, sizeof(*c));

	*err = NULL;
	if (c == NULL)
		return NULL;
	c->url = strdup(url);
	if (c->url == NULL || parse_target(c, err) < 0 || headers_init(c) < 0 ||
	    (c->curl = curl_easy_init()) == NULL) {
		client_free(c);
		return NULL;
	}
	return c;
}

void client_free(struct client *c)
{
	if (c == NULL)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	for (char **hd = c->headers; *hd; hd++) {
		sodium_memzero(*hd, strlen(*hd)); /* the token */
		free(*hd);
	}
	free(c->url);
	free(c->base);
	free(c->unix_path);
	free(c->host);
	free(c->host_header);
	free(c);
}

const char *client_url(const struct client *c)
{
	return c->url;
}

const char *const *client_headers(const struct client *c)
{
	return (const char *const *)c->headers;
}

/* ---- one exchange ------------------------------------------------------- */

struct transfer {
	const struct api_req *rq;
	struct api_resp *rs;
	CURL *curl;
	bool failed;               /* out of memory or the sink refused a write */
	int sink_errno;            /* why the sink refused, before curl touches errno */
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	struct api_resp *rs = t->rs;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (t->rq->on_data && status >= 200 && status < 300) {
		if (!t->rq->on_data(t->rq->on_data_arg, data, len)) {
			rs->stopped = true;
			return 0;
		}
		return len;
	}
	if (t->rq->sink && status >= 200 && status < 300) {
		if (fwrite(data, 1, len, t->rq->sink) != len) {
			t->sink_errno = errno;
			t->failed = true;
			return 0;
		}
		return len;
	}
	char *nb = realloc(rs->body, rs->len + len + 1);
	if (nb == NULL) {
		t->failed = true;
		return 0;
	}
	rs->body = nb;
	memcpy(rs->body + rs->len, data, len);
	rs->len += len;
	rs->body[rs->len] = '\0';
	return len;
}

static size_t on_upload_read(char *buf, size_t size, size_t n, void *arg)
{
	FILE *f = arg;
	size_t got = fread(buf, 1, size * n, f);

	/* A short read that is an error must not look like the end of the file. */
	return got == 0 && ferror(f) ? CURL_READFUNC_ABORT : got;
}

/* Called by curl as the transfer runs: cancels, and shows the progress. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct transfer *t = arg;

	if (t->rq->cancel && *t->rq->cancel)
		return 1;
	if (t->rq->progress && ultotal > 0)
		progress_update(t->rq->progress, stderr, ulnow, ultotal);
	return 0;
}

static struct curl_slist *request_headers(const struct client *c, const struct api_req *rq)
{
	struct curl_slist *list = NULL, *n;

	for (const char *const *hd = client_headers(c); *hd; hd++) {
		if ((n = curl_slist_append(list, *hd)) == NULL)
			goto fail;
		list = n;
	}
	for (const char *const *hd = rq->headers; hd && *hd; hd++) {
		if ((n = curl_slist_append(list, *hd)) == NULL)
			goto fail;
		list = n;
	}
	const char *type = rq->upload ? "Content-Type: application/octet-stream"
		: rq->body ? "Content-Type: application/json" : NULL;
	if (type) {
		if ((n = curl_slist_append(list, type)) == NULL)
			goto fail;
		list = n;
	}
	return list;
fail:
	curl_slist_free_all(list);
	return NULL;
}

/* The reason a transfer failed, in the user's terms. */
static int transfer_error(struct hc *h, struct client *c, CURLcode code,
			  const struct api_req *rq)
{
	long os_errno = 0;

	if (code == CURLE_ABORTED_BY_CALLBACK && rq->cancel && *rq->cancel)
		return hc_fail(h, "interrupted");
	if (code == CURLE_READ_ERROR)
		return hc_fail(h, "reading the file to upload failed");
	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
	    code == CURLE_OPERATION_TIMEDOUT)
		return hc_fail(h, "cannot reach hcd at %s: %s", c->url,
			       os_errno ? strerror((int)os_errno)
			       : c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
	return hc_fail(h, "talking to hcd at %s failed: %s", c->url,
		       c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
}

/* Set the handle up for one request; the previous request's options are reset. */
static int prepare(struct client *c, const struct api_req *rq, struct transfer *t,
		   struct curl_slist *headers, char *url, char *json)
{
	CURL *k = c->curl;
	CURLcode e = CURLE_OK;

	curl_easy_reset(k);
	c->errbuf[0] = '\0';
#define SET(opt, val) do { if (e == CURLE_OK) e = curl_easy_setopt(k, opt, val); } while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	if (c->tls && getenv("HC_CACERT") && *getenv("HC_CACERT"))
		SET(CURLOPT_CAINFO, getenv("HC_CACERT"));
	if (c->unix_path)
		SET(CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_CUSTOMREQUEST, rq->method);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, t);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, t);
	SET(CURLOPT_NOPROGRESS, (rq->progress || rq->cancel) ? 0L : 1L);
	if (rq->timeout_ms > 0)
		SET(CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	if (rq->upload) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_upload_read);
		SET(CURLOPT_READDATA, rq->upload);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->upload_size);
	} else if (json) {
		SET(CURLOPT_POSTFIELDS, json);
		SET(CURLOPT_POSTFIELDSIZE, (long)strlen(json));
	}
#undef SET
	return e == CURLE_OK ? 0 : -1;
}

/* A request body as the trace shows it: secrets replaced by values of
 * the same shape (the trace is for checking shapes, not for replaying). */
static json_t *trace_request(const json_t *body)
{
	static const struct { const char *key, *mask; } secrets[] = {
		{ "password", "********" }, { "current_password", "********" }, { "otp", "000000" },
	};
	json_t *j = body ? json_deep_copy(body) : NULL;

	for (size_t i = 0; j && i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (json_is_string(json_object_get(j, secrets[i].key)))
			json_object_set_new(j, secrets[i].key, json_string(secrets[i].mask));
	return j;
}

/* HC_TRACE: the exchange as one line, written at once (O_APPEND), so the
 * lines of several hc at a time do not mix.  Best effort: a trace that
 * cannot be written changes nothing of the command. */
static void trace_exchange(struct client *c, const struct api_req *rq, const struct api_resp *rs)
{
	const char *file = getenv("HC_TRACE");
	char *type = NULL, *line;
	bool json;
	json_t *j;
	int fd;

	if (file == NULL || *file == '\0')
		return;
	curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &type);
	json = type && strncmp(type, "application/json", 16) == 0;
	j = json_pack("{s:s, s:s, s:o?, s:I, s:s?, s:o?}", "method", rq->method, "path", rq->path,
		      "request", trace_request(rq->body), "status", (json_int_t)rs->status, "type", type,
		      "body", json && rs->body ? json_stringn(rs->body, rs->len) : NULL);
	line = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (line == NULL)
		return;
	size_t len = strlen(line);
	line[len] = '\n'; /* the NUL goes: one write of the line and its end */
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		if (write(fd, line, len + 1) < 0) {
			/* nothing to do: the trace is an aid */
		}
		close(fd);
	}
	free(line);
}

int client_perform(struct hc *h, const struct api_req *rq, struct api_resp *rs)
{
	struct client *c = h->cl;
	struct transfer t = { .rq = rq, .rs = rs, .curl = c->curl };
	struct curl_slist *headers = request_headers(c, rq);
	char *url = str_printf("%s%s", c->base, rq->path);
	char *json = rq->body ? json_dumps(rq->body, JSON_COMPACT) : NULL;
	int rc = -1;
	CURLcode code;

	memset(rs, 0, sizeof(*rs));
	if (headers == NULL || url == NULL || (rq->body && json == NULL)) {
		hc_fail(h, "out of memory");
		goto out;
	}
	if (prepare(c, rq, &t, headers, url, json) < 0) {
		hc_fail(h, "libcurl refused an option: %s", c->errbuf);
		goto out;
	}
	code = curl_easy_perform(c->curl);
	if (rq->progress)
		progress_end(rq->progress, stderr);
	if (t.failed) {
		if (t.sink_errno) {
			errno = t.sink_errno;
			hc_output_failed(h);
		} else {
			hc_fail(h, "out of memory");
		}
		goto out;
	}
	/* Ends that the request asked for are no failures. */
	if (code == CURLE_WRITE_ERROR && rs->stopped)
		code = CURLE_OK;
	if (code == CURLE_OPERATION_TIMEDOUT && rq->timeout_ms > 0) {
		rs->timed_out = true;
		code = CURLE_OK;
	}
	if (code != CURLE_OK) {
		transfer_error(h, c, code, rq);
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &rs->status);
	trace_exchange(c, rq, rs);
	rc = 0;
out:
	if (rc < 0)
		api_resp_free(rs);
	curl_slist_free_all(headers);
	free(url);
	free(json);
	return rc;
}

void api_resp_free(struct api_resp *rs)
{
	free(rs->body);
	rs->body = NULL;
	rs->len = 0;
}

char *api_error_message(const struct api_resp *rs)
{
	json_t *j = rs->body ? json_loadb(rs->body, rs->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	char *out = msg ? strdup(msg) : str_printf("hcd answered HTTP %ld", rs->status);

	json_decref(j);
	return out;
}

int api_request(struct hc *h, const struct api_req *rq, struct api_resp *rs)
{
	char *msg;

	if (client_perform(h, rq, rs) < 0)
		return -1;
	if (rs->status >= 200 && rs->status < 300)
		return 0;
	msg = api_error_message(rs);
	hc_fail(h, "%s", msg ? msg : "out of memory");
	free(msg);
	return -1;
}

int api_call(struct hc *h, const char *method, const char *path, json_t *body, json_t **out,
	     long *status)
{
	struct api_req rq = { .method = method, .path = path, .body = body };
	struct api_resp rs;
	json_error_t jerr;
	json_t *j = NULL;
	int rc = api_request(h, &rq, &rs);

	if (status)
		*status = rs.status;
	if (rc == 0 && (j = json_loadb(rs.body ? rs.body : "", rs.len, 0, &jerr)) == NULL)
		rc = hc_fail(h, "hcd sent malformed JSON: %s", jerr.text);
	api_resp_free(&rs);
	if (out)
		*out = j;
	else
		json_decref(j);
	return rc;
}

int api_call_printed(struct hc *h, const char *method, char *path, json_t *body, json_t **out)
{
	int rc;

	*out = NULL;
	if (path == NULL) {
		json_decref(body);
		return hc_fail(h, "out of memory");
	}
	rc = api_call(h, method, path, body, out, NULL);
	free(path);
	json_decref(body);
	if (rc < 0)
		return -1;
	if (!h->json)
		return 0;
	print_json(*out);
	json_decref(*out);
	*out = NULL;
	return 1;
}

char *api_path(const char *collection, const char *ref, const char *suffix)
{
	/* OWNER/NAME travels as NAME?owner=OWNER: the daemon decodes an
	 * escaped '/' before it routes (docs/API.md, References). */
	const char *slash = strchr(ref, '/');
	char *owner = slash ? strndup(ref, (size_t)(slash - ref)) : NULL;
	/* A name or ID never needs escaping, but a typo must not change the
	 * path ("a/../b", "x?y"): the daemon then reports it as not found. */
	char *esc = curl_easy_escape(NULL, slash ? slash + 1 : ref, 0);
	char *esc_owner = owner ? curl_easy_escape(NULL, owner, 0) : NULL;
	char *p = NULL;

	if (esc && (!slash || esc_owner))
		p = str_printf("/v1/%s/%s%s%s%s%s", collection, esc, suffix ? "/" : "",
			       suffix ? suffix : "", esc_owner ? "?owner=" : "",
			       esc_owner ? esc_owner : "");
	curl_free(esc);
	curl_free(esc_owner);
	free(owner);
	return p;
}

/* ---- raw connections ---------------------------------------------------- */

static int connect_unix(struct hc *h, const struct client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(c->unix_path) >= sizeof(sa.sun_path))
		return hc_fail(h, "socket path too long: %s", c->unix_path);
	strcpy(sa.sun_path, c->unix_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hc_fail(h, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return hc_fail(h, "cannot reach hcd at %s: %s", c->url, strerror(e));
	}
	return fd;
}

static int connect_tcp(struct hc *h, const struct client *c)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port[16];
	int fd = -1, e = 0, gai;

	snprintf(port, sizeof(port), "%ld", c->port);
	gai = getaddrinfo(c->host, port, &hints, &res);
	if (gai != 0)
		return hc_fail(h, "cannot reach hcd at %s: %s", c->url, gai_strerror(gai));
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return hc_fail(h, "cannot reach hcd at %s: %s", c->url, strerror(e ? e : errno));
	return fd;
}

int client_connect_raw(struct hc *h, const struct client *c, const char **host)
{
	if (c->tls)
		return hc_fail(h, "the console over https is not supported yet; "
			       "use the unix socket or an http:// URL");
	*host = c->host_header;
	return c->unix_path ? connect_unix(h, c) : connect_tcp(h, c);
}
