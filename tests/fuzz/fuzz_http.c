/*
 * fuzz_http — the API as a client reaches it: raw bytes on hcd's unix
 * socket, through libmicrohttpd and src/api/http.c (routing, identity from
 * the Authorization header or the peer's credentials, body limits, JSON
 * decoding, uploads, query strings, the console's Upgrade) to the
 * handlers, on the store of world.h reset for every input.
 *
 * The input is what the client sends, as is: one request or several
 * (keep-alive, pipelined), complete or not.  The harness plays both sides
 * in one thread: it writes the input, closes its sending half, and runs
 * the server (api_server_run, as hcd's loop does) until the server has
 * answered and closed.  The peer is root; a "Authorization: Bearer …" with
 * a token of world.h makes the request a member's or bob's.
 *
 * Promises: the daemon answers (or closes) and goes on; no answer is a 5xx
 * other than 503 (or libmicrohttpd's 505 for an unknown HTTP version); a
 * JSON answer parses; the store passes its integrity
 * checks afterwards.  Answers are read by their Content-Length; a body
 * that cannot be delimited ends the checking, not the run.  FUZZ_VERBOSE=1
 * prints what the server answered.
 */
#include "fuzz.h"
#include "world.h"

#include "api/identity.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ANSWER_MAX (4 << 20)

static struct api_ctx api;
static struct api_server *server;
static char sock_path[108];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *err = NULL;

	world_init("http");
	/* The server makes its own identity state: world_begin's goes, and
	 * world_end frees the server's; each input then gets a fresh one
	 * (a fresh throttle) from world_begin. */
	world_begin(&api);
	api_auth_free(api.auth);
	api.auth = NULL;
	server = api_server_start(&api, &err);
	if (server == NULL) {
		fprintf(stderr, "fuzz_http: %s\n", err ? err : "cannot start the API");
		abort();
	}
	world_end(&api);
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", world_cfg.state_dir);
	return 0;
}

/* Let the server work on what is pending, waiting at most ms; the
 * number of descriptors that had something (0: all is quiet). */
static int pump(int client, int ms)
{
	struct pollfd p[1 + API_SERVER_FDS] = { { .fd = client, .events = POLLIN } };
	int fds[API_SERVER_FDS], n = api_server_fds(server, fds);

	for (int i = 0; i < n; i++)
		p[1 + i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	int ready = poll(p, (nfds_t)(1 + n), ms);
	api_server_run(server);
	return ready;
}

/* Check each answer in buf: status, and JSON bodies. */
static void check_answers(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		int status;
		const char *hend = NULL;
		for (const char *q = p; q + 4 <= end && !hend; q++)
			if (memcmp(q, "\r\n\r\n", 4) == 0)
				hend = q + 4;
		if (hend == NULL || sscanf(p, "HTTP/1.%*1d %3d", &status) != 1)
			return;
		/* 505 is libmicrohttpd's own answer to an HTTP version it does
		 * not speak; 503 is hcd's "try again later". */
		FUZZ_ASSERT(status < 500 || status == 503 || status == 505, "answered %.*s",
			    (int)(hend - p), p);
		long long clen = -1;
		bool json = false;
		for (const char *h = p; h < hend;) {
			const char *eol = memchr(h, '\n', (size_t)(hend - h));
			if (eol == NULL)
				break;
			if (strncasecmp(h, "Content-Length:", 15) == 0)
				clen = strtoll(h + 15, NULL, 10);
			if (strncasecmp(h, "Content-Type: application/json", 30) == 0)
				json = true;
			h = eol + 1;
		}
		if (status == 101 || clen < 0 || clen > end - hend)
			return;
		if (json) {
			json_error_t jerr;
			json_t *j = json_loadb(hend, (size_t)clen, 0, &jerr);
			FUZZ_ASSERT(j != NULL, "a JSON answer that does not parse: %s", jerr.text);
			json_decref(j);
		}
		p = hend + clen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *answer = malloc(ANSWER_MAX);
	size_t sent = 0, got = 0;
	bool closed = false, waited = false;
	bool names_metrics = memmem(data, size, "/metrics", 8) != NULL;

	world_begin(&api);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_ASSERT(c >= 0 && answer && connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		    "connect: %s", strerror(errno));
	while (!closed) {
		if (sent < size) {
			ssize_t w = send(c, data + sent, size - sent, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				sent = size;    /* the server closed: the rest is moot */
			if (sent == size)
				shutdown(c, SHUT_WR);
		}
		/* Client and server share this thread and a unix socket moves
		 * bytes at once: no need to ever wait. */
		int ready = pump(c, 0);
		size_t before = got;
		for (;;) {
			char sink[4096];
			ssize_t r = got < ANSWER_MAX ? recv(c, answer + got, ANSWER_MAX - got, 0)
						     : recv(c, sink, sizeof(sink), 0);
			if (r > 0 && got < ANSWER_MAX) {
				got += (size_t)r;
				continue;
			}
			if (r > 0)
				continue;
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				closed = true;
			break;
		}
		if (size == 0 && sent == 0) {
			shutdown(c, SHUT_WR);
			sent = 1;
		}
		/* Everything sent, nothing to read and nothing for the server
		 * to do: it waits for bytes that will not come (a body shorter
		 * than its Content-Length: libmicrohttpd keeps a half-closed
		 * connection until its timeout).  Hang up. */
		if (sent >= size && ready == 0 && got == before) {
			/* Except a scrape of /metrics, which runs on the metrics'
			 * own thread (nice 19): its descriptor says when it is
			 * done.  Only then, or every quiet input would wait. */
			if (!names_metrics || waited)
				break;
			waited = true;
			pump(c, 2000);
		}
	}
	close(c);
	/* Let the server see the close and free the connection. */
	for (int i = 0; i < 100 && pump(-1, 0) > 0; i++)
		;
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%.*s\n", (int)got, answer);
	check_answers(answer, got);
	/* (An input that holds the text itself may get it echoed in an error:
	 * libFuzzer learns it from this very comparison.) */
	FUZZ_ASSERT(memmem(answer, got, "not for the web", 15) == NULL ||
		    memmem(data, size, "not for the web", 15) != NULL,
		    "a file beside the dashboard's root was served");
	free(answer);
	world_end(&api);
	return 0;
}
