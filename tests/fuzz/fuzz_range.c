/*
 * fuzz_range — resuming a URL import (image/fetch.h): the checkpoint file
 * left by an earlier run, and everything a web server may answer to a
 * Range request — status, Content-Range, Content-Length, ETag,
 * Last-Modified, redirects, the body — parsed by libcurl and judged by
 * fetch.c's callbacks.
 *
 * White-box: this file includes fetch.c to call its static resume() and
 * one attempt() directly (fetch_start's thread would retry with waits of
 * seconds).  A server thread on loopback answers every connection with the
 * input's response bytes; curl_easy_init is wrapped so that every host and
 * port a redirect names connects to that server too, never to the network.
 *
 * Input lines: bytes already in the partial file; the checkpoint's offset
 * line and validator line (no checkpoint when both are empty); max_bytes;
 * unguarded (1: an admin's import; 0: a member's, whose guard refuses
 * loopback, where the server is); then the raw HTTP response.  Promises (fetch.h):
 *   - after resume and after the attempt the file holds exactly `offset`
 *     bytes and the running SHA-256 is that of those bytes;
 *   - a resumed download asks for "Range: bytes=OFFSET-", with If-Range
 *     when it has a validator, and a validator is printable ASCII (what
 *     an If-Range header can carry);
 *   - never more than max_bytes;
 *   - a finished attempt that knew the total has all of it;
 *   - guarded, the loopback server is never connected to and no byte is
 *     written;
 *   - a checkpoint written now resumes to the same offset, hash and
 *     validator.
 */
#include <curl/curl.h>

#define curl_easy_init fuzz_curl_easy_init
static CURL *fuzz_curl_easy_init(void);
#include "image/fetch.c"
#undef curl_easy_init

#include "fuzz.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define PATTERN(i) ((unsigned char)((i) * 7 + 3))
#define PREFIX_MAX 65536

static int listener = -1;
static int port;
static char connect_to[64];
static char url[64], part_path[256], cp_path[256];

static CURL *fuzz_curl_easy_init(void)
{
	static struct curl_slist *to;
	CURL *c = curl_easy_init();

	if (to == NULL)
		to = curl_slist_append(NULL, connect_to);
	if (c)
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, to);
	return c;
}

struct server {
	const char *resp;
	size_t resp_len;
	int stop[2];
	char request[4096];          /* the first request, NUL-terminated */
	int connections;
};

/* Read a request up to its blank line (or EOF). */
static size_t read_request(int c, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = read(c, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[n] = '\0';
	return n;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	char req[4096];

	for (;;) {
		struct pollfd p[2] = { { .fd = listener, .events = POLLIN },
				       { .fd = s->stop[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			break;
		if (p[1].revents) {
			/* A connection curl gave up on before it was served (the
			 * loopback check aborts right after connecting) must not be
			 * the next input's first. */
			struct pollfd l = { .fd = listener, .events = POLLIN };
			while (poll(&l, 1, 0) == 1) {
				int c = accept(listener, NULL, NULL);
				if (c >= 0)
					close(c);
			}
			break;
		}
		int c = accept(listener, NULL, NULL);
		if (c < 0)
			continue;
		read_request(c, req, sizeof(req));
		if (s->connections++ == 0)
			memcpy(s->request, req, sizeof(req));
		for (size_t off = 0; off < s->resp_len;) {
			ssize_t w = send(c, s->resp + off, s->resp_len - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		/* The request was read whole (a GET has no body), so closing
		 * sends a FIN, not a reset; waiting for the client's close instead
		 * would deadlock when curl keeps this connection for reuse and
		 * opens another for a redirect. */
		close(c);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	const char *dir = fuzz_dir("range");

	/* Only hcd's own settings decide where a download goes. */
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	log_set_level(LOG_LVL_ERR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listener, 16) < 0 || getsockname(listener, (struct sockaddr *)&sa, &len) < 0) {
		perror("listen");
		abort();
	}
	port = ntohs(sa.sin_port);
	snprintf(connect_to, sizeof(connect_to), "::127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "http://images.example:%d/disk.qcow2", port);
	snprintf(part_path, sizeof(part_path), "%s/disk.part", dir);
	snprintf(cp_path, sizeof(cp_path), "%s/checkpoint", dir);
	return 0;
}

/* The file is `offset` bytes long, the next write appends, and f's
 * running hash is that of the file. */
static void check_file(struct fetch *f, const char *when)
{
	struct stat sb;
	struct sha256_stream copy = f->hash;
	char want[SHA256_HEX_LEN + 1], got[SHA256_HEX_LEN + 1];
	long long size = -1;

	FUZZ_ASSERT(fstat(f->fd, &sb) == 0, "fstat");
	FUZZ_ASSERT(sb.st_size == f->offset, "%s: the file has %lld bytes, offset %lld", when,
		    (long long)sb.st_size, f->offset);
	FUZZ_ASSERT(lseek(f->fd, 0, SEEK_CUR) == f->offset, "%s: writes would go to %lld, not %lld",
		    when, (long long)lseek(f->fd, 0, SEEK_CUR), f->offset);
	FUZZ_ASSERT(f->offset >= 0 && f->offset <= f->max_bytes, "%s: offset %lld of max %lld",
		    when, f->offset, f->max_bytes);
	FUZZ_ASSERT(sha256_file(f->file, got, &size) == 0 && size == f->offset, "%s: reread", when);
	sha256_final_hex(&copy, want);
	FUZZ_ASSERT(strcmp(want, got) == 0, "%s: the running hash is not the file's", when);
}

static struct fetch *fetch_new(long long max_bytes, bool guarded)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->url = strdup(url)) == NULL || (f->file = strdup(part_path)) == NULL ||
	    (f->checkpoint = strdup(cp_path)) == NULL)
		abort();
	f->max_bytes = max_bytes;
	/* An empty policy: no hackcloud networks, nothing allowed; loopback,
	 * where the server is, is refused whatever the policy says. */
	f->guarded = guarded;
	f->fd = f->wake_fd = -1;
	atomic_init(&f->total, -1);
	return f;
}

static void fetch_drop(struct fetch *f)
{
	if (f->fd >= 0)
		close(f->fd);
	fetch_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { (const char *)data, (const char *)data + size };
	long long have = fuzz_num(&in, 0, PREFIX_MAX);
	char *cp_offset = fuzz_line(&in), *cp_validator = fuzz_line(&in);
	long long max_bytes = fuzz_num(&in, 0, 1 << 20);
	bool guarded = fuzz_num(&in, 0, 1) == 0;
	struct server s = { .resp = in.p, .resp_len = (size_t)(in.end - in.p) };
	unsigned char *prefix = malloc((size_t)have + 1);
	pthread_t t;

	for (long long i = 0; i < have; i++)
		prefix[i] = PATTERN(i);
	fuzz_write(part_path, prefix, (size_t)have);
	free(prefix);
	unlink(cp_path);
	if ((cp_offset && cp_offset[0]) || (cp_validator && cp_validator[0])) {
		char *cp = str_printf("%s\n%s\n", cp_offset ? cp_offset : "",
				      cp_validator ? cp_validator : "");
		fuzz_write(cp_path, cp, strlen(cp));
		free(cp);
	}
	free(cp_offset);
	free(cp_validator);

	struct fetch *f = fetch_new(max_bytes, guarded);
	FUZZ_ASSERT(resume(f) == 0, "resume failed: %s", strerror(errno));
	check_file(f, "resume");
	long long resumed = f->offset;
	char *asked_validator = f->validator ? strdup(f->validator) : NULL;

	FUZZ_ASSERT(pipe(s.stop) == 0 && pthread_create(&t, NULL, serve, &s) == 0, "server");
	enum outcome out = attempt(f);
	FUZZ_ASSERT(write(s.stop[1], "x", 1) == 1, "stop");
	pthread_join(t, NULL);
	close(s.stop[0]);
	close(s.stop[1]);

	check_file(f, "attempt");
	if (guarded) {
		FUZZ_ASSERT(out == OUT_FAIL && f->offset == resumed && !f->body_started,
			    "a loopback server was used by a guarded import");
		FUZZ_ASSERT(s.connections == 0, "a guarded import connected to loopback");
	} else if (resumed > 0 && s.connections > 0) {
		char range[64];
		snprintf(range, sizeof(range), "\r\nRange: bytes=%lld-\r\n", resumed);
		FUZZ_ASSERT(strstr(s.request, range) != NULL, "resumed at %lld without '%s' in:\n%s", resumed,
			    range + 2, s.request);
		if (asked_validator)
			FUZZ_ASSERT(strstr(s.request, "\r\nIf-Range: ") != NULL, "no If-Range");
	}
	/* What the file now holds is named by a validator an If-Range can
	 * carry, or by none. */
	for (const char *v = f->validator; v && *v; v++)
		FUZZ_ASSERT(*v >= 0x20 && *v < 0x7f, "validator with byte 0x%02x", (unsigned char)*v);
	if (out == OUT_DONE && f->body_started && atomic_load(&f->total) >= 0)
		FUZZ_ASSERT(f->offset == atomic_load(&f->total), "done at %lld of %lld", f->offset,
			    (long long)atomic_load(&f->total));
	free(asked_validator);

	/* What a restart would find. */
	f->synced_ms = 0;
	checkpoint_write(f);
	if (f->synced_offset == f->offset) {
		struct fetch *g = fetch_new(max_bytes, guarded);
		FUZZ_ASSERT(resume(g) == 0, "resume after a checkpoint: %s", strerror(errno));
		check_file(g, "resume after a checkpoint");
		FUZZ_ASSERT(g->offset == f->offset, "checkpoint at %lld resumed at %lld", f->offset,
			    g->offset);
		if (g->offset > 0 && f->validator)
			FUZZ_ASSERT(g->validator && strcmp(g->validator, f->validator) == 0,
				    "validator '%s' came back as '%s'", f->validator,
				    g->validator ? g->validator : "(none)");
		fetch_drop(g);
	}
	fetch_drop(f);
	return 0;
}
