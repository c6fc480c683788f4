/* image/fetch — see fetch.h. */
#include "image/fetch.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/sha256.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S 30
/* Slower than this for that long counts as stalled. */
#define LOW_SPEED_BYTES 1024
#define LOW_SPEED_TIME_S 60
#define MAX_REDIRECTS 5
/* Attempts in a row that moved no byte before giving up; the waits
 * between them double from one second. */
#define MAX_IDLE_ATTEMPTS 6
/* How often the resume point moves forward (each costs two syncs). */
#define CHECKPOINT_EVERY_MS 2000
#define VALIDATOR_MAX 256

enum outcome { OUT_DONE, OUT_RETRY, OUT_FAIL, OUT_CANCELLED };

struct fetch {
	char *url, *file, *checkpoint;
	long long max_bytes;
	bool guarded;
	struct addr_policy guard;      /* its host list: the thread's, refreshed per connection */
	char *proxy;                   /* NULL: none */
	int (*complete)(void *arg, const char *sha256, long long size, char **err);
	void *complete_arg;
	int wake_fd;
	pthread_t thread;
	atomic_bool cancel;
	atomic_bool finished;
	atomic_llong done;
	atomic_llong total;
	/* The result: written by the thread before `finished`, read after join. */
	int rc;
	char *err;
	char sha256[SHA256_HEX_LEN + 1];

	/* Only the thread touches the rest. */
	int fd;
	struct sha256_stream hash;
	long long offset;              /* bytes in the file, all hashed */
	char *validator;               /* ETag or Last-Modified of what the file holds */
	long long synced_offset;       /* what the checkpoint says */
	long long synced_ms;
	/* the response of the current attempt */
	CURL *curl;
	bool body_started;
	long long range_start, range_total;   /* Content-Range, -1 when absent */
	char *resp_validator;
	bool resp_validator_is_etag;
	char *why;                     /* set by a callback that stopped the transfer */
	bool why_permanent;
	char *blocked;                 /* a connection the guard refused in this attempt */
};

static void say_why(struct fetch *f, bool permanent, char *msg)
{
	free(f->why);
	f->why = msg ? msg : strdup("out of memory");
	f->why_permanent = permanent;
}

/* ---- the file and its checkpoint ---------------------------------------- */

/* Record that the first `offset` bytes are on disk.  A failure only means
 * a restart would resume from an earlier point. */
static void checkpoint_write(struct fetch *f)
{
	if (f->offset == f->synced_offset || fdatasync(f->fd) < 0)
		return;
	char *text = str_printf("%lld\n%s\n", f->offset, f->validator ? f->validator : "");
	if (text && file_write_atomic(f->checkpoint, text, strlen(text), 0600) == 0) {
		f->synced_offset = f->offset;
		f->synced_ms = now_ms();
	}
	free(text);
}

/* A validator goes back to the server in If-Range: printable ASCII only
 * (as ETags and HTTP dates are), else curl drops or mangles the header and
 * a changed resource would be resumed as if unchanged; one that is not is
 * treated as none. */
static bool validator_usable(const char *v)
{
	for (const char *p = v; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return *v != '\0';
}

/* Throw away what the file holds: the server sends the resource whole. */
static int start_over(struct fetch *f)
{
	file_remove(f->checkpoint);
	f->synced_offset = 0;
	f->offset = 0;
	atomic_store(&f->done, 0);
	sha256_begin(&f->hash);
	free(f->validator);
	f->validator = NULL;
	if (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
		return -1;
	return 0;
}

/* Open the partial file and pick up from the checkpoint: the file is cut
 * to what the checkpoint vouches for and that prefix is hashed again. */
static int resume(struct fetch *f)
{
	char *cp = NULL;
	long long at = 0;
	struct stat sb;

	f->fd = open(f->file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->fd < 0 || fstat(f->fd, &sb) < 0)
		return -1;
	sha256_begin(&f->hash);
	if (file_read(f->checkpoint, 64 + VALIDATOR_MAX, &cp, NULL) == 0) {
		char *nl = strchr(cp, '\n');
		at = strtoll(cp, NULL, 10);
		if (nl && nl[1] && nl[1] != '\n') {
			char *end = strchr(nl + 1, '\n');
			if (end)
				*end = '\0';
			if (validator_usable(nl + 1))
				f->validator = strdup(nl + 1);
		}
	}
	free(cp);
	if (at < 0 || at > f->max_bytes)
		at = 0;
	if (at > sb.st_size)
		at = sb.st_size;
	if (ftruncate(f->fd, at) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
		return -1;
	long long hashed = at > 0 ? sha256_update_fd(&f->hash, f->fd, at) : 0;
	if (hashed != at)
		return -1;
	f->offset = f->synced_offset = at;
	f->synced_ms = now_ms();
	atomic_store(&f->done, at);
	if (at == 0) {
		free(f->validator);
		f->validator = NULL;
	} else {
		log_info("import %s: resuming at byte %lld", f->url, at);
	}
	return 0;
}

/* ---- curl callbacks ----------------------------------------------------- */

/* "Name: value\r\n" → value when the header is `name` (case-insensitive). */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	const char *v = line + nl + 1, *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if ((size_t)(e - v) >= outlen)
		return false;
	memcpy(out, v, (size_t)(e - v));
	out[e - v] = '\0';
	return true;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;
	char v[VALIDATOR_MAX + 1];

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or a 100): forget the last. */
		f->range_start = f->range_total = -1;
		free(f->resp_validator);
		f->resp_validator = NULL;
		f->resp_validator_is_etag = false;
	} else if (header_value(line, len, "Content-Range", v, sizeof(v))) {
		long long a, b, t;
		if (sscanf(v, "bytes %lld-%lld/%lld", &a, &b, &t) == 3) {
			f->range_start = a;
			f->range_total = t;
		} else if (sscanf(v, "bytes %lld-%lld/*", &a, &b) == 2) {
			f->range_start = a;
		}
	} else if (header_value(line, len, "ETag", v, sizeof(v))) {
		/* A weak ETag may not be used for ranges (RFC 9110). */
		if (strncmp(v, "W/", 2) != 0 && validator_usable(v)) {
			free(f->resp_validator);
			f->resp_validator = strdup(v);
			f->resp_validator_is_etag = true;
		}
	} else if (header_value(line, len, "Last-Modified", v, sizeof(v))) {
		if (!f->resp_validator_is_etag && validator_usable(v)) {
			free(f->resp_validator);
			f->resp_validator = strdup(v);
		}
	}
	return len;
}

/* The first bytes of a body: is this the continuation we asked for? */
static int body_begin(struct fetch *f)
{
	long code = 0;
	curl_off_t length = -1;

	curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(f->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	if (code == 206) {
		if (f->range_start != f->offset) {
			say_why(f, false, str_printf("the server sent bytes from %lld, not %lld",
						     f->range_start, f->offset));
			start_over(f);
			return -1;
		}
	} else if (code == 200) {
		if (f->offset > 0) {
			log_info("import %s: the server sends the whole file; starting over", f->url);
			if (start_over(f) < 0) {
				say_why(f, true, str_printf("cannot truncate the download: %s", strerror(errno)));
				return -1;
			}
		}
	} else {
		/* Only a server's trouble may pass; 4xx is the URL's fault. */
		say_why(f, !(code >= 500 || code == 408 || code == 429),
			str_printf("the server answered HTTP %ld", code));
		return -1;
	}
	if (f->resp_validator || code == 200) {
		free(f->validator);
		f->validator = f->resp_validator;
		f->resp_validator = NULL;
	}
	long long total = code == 206 && f->range_total >= 0 ? f->range_total
			: length >= 0 ? f->offset + (long long)length : -1;
	if (total > f->max_bytes) {
		say_why(f, true, str_printf("the file is %lld bytes, over the limit of %lld", total,
					    f->max_bytes));
		return -1;
	}
	atomic_store(&f->total, total);
	return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;

	if (!f->body_started) {
		if (body_begin(f) < 0)
			return 0;
		f->body_started = true;
	}
	if (f->offset + (long long)len > f->max_bytes) {
		say_why(f, true, str_printf("the file is over the limit of %lld bytes", f->max_bytes));
		return 0;
	}
	for (const char *p = data, *e = data + len; p < e;) {
		ssize_t w = write(f->fd, p, (size_t)(e - p));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			say_why(f, true, str_printf("writing the download failed: %s", strerror(errno)));
			return 0;
		}
		p += w;
	}
	sha256_feed(&f->hash, data, len);
	f->offset += (long long)len;
	atomic_store(&f->done, f->offset);
	if (now_ms() - f->synced_ms >= CHECKPOINT_EVERY_MS)
		checkpoint_write(f);
	return len;
}

/* ---- the guard ---------------------------------------------------------- */

/* May a member's import talk to this address?  False with f->blocked set. */
static bool guard_allows(struct fetch *f, const unsigned char a[16])
{
	char text[INET6_ADDRSTRLEN];
	enum addr_class c;

	/* The host's addresses now, not when the import began: bridges and
	 * their gateways come and go. */
	if (addr_host_addresses(&f->guard.host) < 0) {
		free(f->blocked);
		f->blocked = strdup("cannot list this host's addresses");
		return false;
	}
	c = addr_classify(a, &f->guard);
	if (addr_class_ok(c))
		return true;
	if (a[10] == 0xff && a[11] == 0xff && memcmp(a, "\0\0\0\0\0\0\0\0\0\0", 10) == 0)
		inet_ntop(AF_INET, a + 12, text, sizeof(text));
	else
		inet_ntop(AF_INET6, a, text, sizeof(text));
	free(f->blocked);
	f->blocked = str_printf("the server is at %s, %s, which only an admin may import from", text,
				addr_class_text(c));
	return false;
}

/* Every socket curl opens, before it connects: the address DNS (or a
 * redirect) really led to.  A refused one never sees a packet. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *sa)
{
	struct fetch *f = arg;
	unsigned char a[16];

	if (f->guarded && f->proxy == NULL && purpose == CURLSOCKTYPE_IPCXN &&
	    (addr_from_sockaddr(&sa->addr, a) < 0 || !guard_allows(f, a)))
		return CURL_SOCKET_BAD;
	return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* Every request (each redirect too), before it goes out: again on the
 * peer's address; through a proxy, on the request's host when it is an
 * address. */
static int on_connected(void *arg, char *remote_ip, char *local_ip, int remote_port,
			int local_port)
{
	struct fetch *f = arg;
	unsigned char a[16];
	char *url = NULL, *host = NULL;
	bool ok = true;
	(void)local_ip, (void)remote_port, (void)local_port;

	if (!f->guarded)
		return CURL_PREREQFUNC_OK;
	if (f->proxy == NULL) {
		ok = addr_from_text(remote_ip, a) == 0 && guard_allows(f, a);
	} else {
		CURLU *u = curl_url();
		if (curl_easy_getinfo(f->curl, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL ||
		    u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
			ok = false;
		} else {
			size_t n = strlen(host);
			if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
				host[n - 1] = '\0';
				ok = addr_from_text(host + 1, a) < 0 || guard_allows(f, a);
			} else {
				ok = addr_from_text(host, a) < 0 || guard_allows(f, a);
			}
		}
		curl_free(host);
		curl_url_cleanup(u);
		if (!ok && f->blocked == NULL)
			f->blocked = strdup("cannot tell which server the request goes to");
	}
	if (ok)
		return CURL_PREREQFUNC_OK;
	say_why(f, true, strdup(f->blocked));
	return CURL_PREREQFUNC_ABORT;
}

static int on_xfer(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		   curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load(&((struct fetch *)arg)->cancel) ? 1 : 0;
}

/* ---- one attempt -------------------------------------------------------- */

static bool transient(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

#define SET(opt, val) ok = ok && curl_easy_setopt(c, opt, val) == CURLE_OK

static enum outcome attempt(struct fetch *f)
{
	CURL *c = curl_easy_init();
	struct curl_slist *headers = NULL;
	char range[32], errbuf[CURL_ERROR_SIZE] = "";
	char *if_range = NULL;
	enum outcome out;
	bool ok = c != NULL;

	f->curl = c;
	f->body_started = false;
	f->range_start = f->range_total = -1;
	free(f->why);
	f->why = NULL;
	free(f->blocked);
	f->blocked = NULL;
	SET(CURLOPT_URL, f->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
	SET(CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
	SET(CURLOPT_LOW_SPEED_TIME, (long)LOW_SPEED_TIME_S);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_USERAGENT, "hackcloud/" HC_VERSION);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, f);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, f);
	SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	SET(CURLOPT_OPENSOCKETDATA, f);
	SET(CURLOPT_PREREQFUNCTION, on_connected);
	SET(CURLOPT_PREREQDATA, f);
	/* Set, even empty: curl then ignores http_proxy, ALL_PROXY, NO_PROXY
	 * and the like of hcd's environment. */
	SET(CURLOPT_PROXY, f->proxy ? f->proxy : "");
	SET(CURLOPT_NOPROXY, "");
	SET(CURLOPT_XFERINFOFUNCTION, on_xfer);
	SET(CURLOPT_XFERINFODATA, f);
	SET(CURLOPT_NOPROGRESS, 0L);
	if (f->offset > 0) {
		/* CURLOPT_RANGE, not RESUME_FROM: a 200 answer is ours to handle. */
		snprintf(range, sizeof(range), "%lld-", f->offset);
		SET(CURLOPT_RANGE, range);
		if (f->validator) {
			if_range = str_printf("If-Range: %s", f->validator);
			struct curl_slist *l = if_range ? curl_slist_append(headers, if_range) : NULL;
			ok = ok && l != NULL;
			if (l)
				headers = l;
			SET(CURLOPT_HTTPHEADER, headers);
		}
	}
	if (!ok) {
		say_why(f, true, strdup("cannot set up the transfer"));
		out = OUT_FAIL;
		goto done;
	}
	CURLcode res = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (atomic_load(&f->cancel)) {
		out = OUT_CANCELLED;
	} else if (res != CURLE_OK && f->why == NULL && f->blocked) {
		/* No address curl could use was one the guard allows. */
		say_why(f, true, strdup(f->blocked));
		out = OUT_FAIL;
	} else if (f->why) {
		out = f->why_permanent ? OUT_FAIL : OUT_RETRY;
	} else if (res != CURLE_OK) {
		say_why(f, !transient(res), strdup(errbuf[0] ? errbuf : curl_easy_strerror(res)));
		out = transient(res) ? OUT_RETRY : OUT_FAIL;
	} else if (!f->body_started && code == 416) {
		/* Nothing after our offset: the resource shrank or changed. */
		say_why(f, false, strdup("the server refused the range"));
		start_over(f);
		out = OUT_RETRY;
	} else if (!f->body_started && code != 200 && code != 206) {
		bool permanent = !(code >= 500 || code == 408 || code == 429);
		say_why(f, permanent, str_printf("the server answered HTTP %ld", code));
		out = permanent ? OUT_FAIL : OUT_RETRY;
	} else {
		if (!f->body_started && code == 200 && f->offset > 0)
			start_over(f); /* the resource is empty now */
		long long total = atomic_load(&f->total);
		if (f->body_started && total >= 0 && f->offset != total) {
			say_why(f, false, str_printf("the transfer ended at byte %lld of %lld", f->offset,
						     total));
			out = OUT_RETRY;
		} else {
			out = OUT_DONE;
		}
	}
done:
	curl_slist_free_all(headers);
	free(if_range);
	free(f->resp_validator);
	f->resp_validator = NULL;
	if (c)
		curl_easy_cleanup(c);
	f->curl = NULL;
	return out;
}

/* Sleep ms, waking early when cancelled. */
static void pause_ms(struct fetch *f, long long ms)
{
	for (long long end = now_ms() + ms; !atomic_load(&f->cancel) && now_ms() < end;) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void *fetch_main(void *arg)
{
	struct fetch *f = arg;
	int idle = 0;
	long long wait_ms = 1000;
	enum outcome out = OUT_FAIL;

	f->rc = -1;
	if (resume(f) < 0) {
		f->err = str_printf("cannot open the download: %s", strerror(errno));
		goto finish;
	}
	for (;;) {
		long long before = f->offset;
		out = attempt(f);
		if (out != OUT_RETRY)
			break;
		idle = f->offset > before ? 1 : idle + 1;
		if (idle >= MAX_IDLE_ATTEMPTS)
			break;
		if (f->offset > before)
			wait_ms = 1000;
		log_info("import %s: %s; trying again in %llds", f->url, f->why, wait_ms / 1000);
		pause_ms(f, wait_ms);
		if (atomic_load(&f->cancel)) {
			out = OUT_CANCELLED;
			break;
		}
		wait_ms *= 2;
	}
	if (out == OUT_DONE) {
		if (fdatasync(f->fd) < 0) {
			f->err = str_printf("writing the download failed: %s", strerror(errno));
		} else {
			sha256_final_hex(&f->hash, f->sha256);
			f->rc = 0;
		}
	} else if (out == OUT_CANCELLED) {
		checkpoint_write(f); /* keep what arrived for a later resume */
	} else {
		f->err = idle >= MAX_IDLE_ATTEMPTS
			? str_printf("gave up after %d attempts: %s", idle, f->why)
			: strdup(f->why ? f->why : "the download failed");
	}
finish:
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	/* The file is complete, synced and closed: the caller's checks. */
	if (f->rc == 0 && f->complete && f->complete(f->complete_arg, f->sha256, f->offset, &f->err) < 0)
		f->rc = -1;
	atomic_store(&f->finished, true);
	uint64_t one = 1;
	if (write(f->wake_fd, &one, sizeof(one)) < 0)
		log_warn("import %s: cannot wake the main loop: %s", f->url, strerror(errno));
	return NULL;
}

/* ---- the interface ------------------------------------------------------ */

static void fetch_free(struct fetch *f)
{
	free(f->url);
	free(f->file);
	free(f->checkpoint);
	free(f->err);
	free(f->validator);
	free(f->resp_validator);
	free(f->why);
	free(f->blocked);
	free(f->proxy);
	addr_policy_free(&f->guard);
	free(f);
}

struct fetch *fetch_start(const struct fetch_spec *spec, char **err)
{
	struct fetch *f = calloc(1, sizeof(*f));
	int rc;

	*err = NULL;
	if (f == NULL || (f->url = strdup(spec->url)) == NULL ||
	    (f->file = strdup(spec->file)) == NULL ||
	    (f->checkpoint = strdup(spec->checkpoint)) == NULL) {
		if (f)
			fetch_free(f);
		*err = strdup("out of memory");
		return NULL;
	}
	f->max_bytes = spec->max_bytes;
	f->guarded = spec->guard != NULL;
	if ((spec->guard && (addr_list_copy(&f->guard.networks, &spec->guard->networks) < 0 ||
			     addr_list_copy(&f->guard.allow, &spec->guard->allow) < 0)) ||
	    (spec->proxy && spec->proxy[0] && (f->proxy = strdup(spec->proxy)) == NULL)) {
		fetch_free(f);
		*err = strdup("out of memory");
		return NULL;
	}
	f->complete = spec->complete;
	f->complete_arg = spec->complete_arg;
	f->wake_fd = spec->wake_fd;
	f->fd = -1;
	atomic_init(&f->cancel, false);
	atomic_init(&f->finished, false);
	atomic_init(&f->done, 0);
	atomic_init(&f->total, -1);
	rc = pthread_create(&f->thread, NULL, fetch_main, f);
	if (rc != 0) {
		*err = str_printf("cannot start a download thread: %s", strerror(rc));
		fetch_free(f);
		return NULL;
	}
	return f;
}

bool fetch_finished(const struct fetch *f)
{
	return atomic_load(&f->finished);
}

void fetch_progress(const struct fetch *f, long long *done, long long *total)
{
	*done = atomic_load(&f->done);
	*total = atomic_load(&f->total);
}

void fetch_cancel(struct fetch *f)
{
	atomic_store(&f->cancel, true);
}

int fetch_join(struct fetch *f, char sha256[65], long long *size, char **err)
{
	int rc;

	pthread_join(f->thread, NULL);
	rc = f->rc;
	*err = NULL;
	if (rc == 0) {
		memcpy(sha256, f->sha256, SHA256_HEX_LEN + 1);
		*size = f->offset;
	} else if (!atomic_load(&f->cancel)) {
		*err = f->err ? f->err : strdup("the download failed");
		f->err = NULL;
	}
	fetch_free(f);
	return rc;
}
