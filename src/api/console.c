/*
 * console — a VM's serial console over the API connection, in one of two
 * protocols:
 *   POST /v1/vms/{ref}/console  "Upgrade: hc-console" (`hc vm console`):
 *        after the 101, a raw byte pipe both ways;
 *   GET  /v1/vms/{ref}/console  "Upgrade: websocket" (the dashboard):
 *        RFC 6455 (websocket.h) with the subprotocol "hackcloud.console";
 *        the browser's frames (text or binary) go to the serial port as
 *        bytes, what the port prints comes back in binary frames; pings
 *        are answered, and the server pings a quiet client.
 * Both need the owner or an admin, and the VM running on this host.
 * Each attached console is pumped by its own small thread, so a slow
 * terminal never stalls the event loop; the thread touches nothing but
 * its descriptors.
 *
 * A console is a session that outlives its request: the registry below
 * remembers who opened each (user, token), and console_check ends those
 * whose token has been revoked or has expired, or whose user was disabled
 * (issue 11 §10) — the loop calls it every second, and it asks the store
 * itself, so a revoke on another host of a cluster counts too.  A pump is
 * ended through its eventfd; threads are joined by the loop, never left
 * behind (console_stop_all at shutdown, before the listeners close).
 */
#include "api/console.h"

#include "api/auth.h"
#include "api/handlers.h"
#include "api/identity.h"
#include "api/websocket.h"
#include "common/log.h"
#include "common/sock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The subprotocol the dashboard asks for (and the only one answered). */
#define WS_PROTOCOL "hackcloud.console"
/* A keystroke, or a paste: larger frames from the browser are refused. */
#define WS_MAX_PAYLOAD (64 * 1024)
/* A quiet browser is pinged this often and dropped after two silences. */
#define WS_PING_MS 30000

/*
 * Owned by the request until the upgrade happens, then by the session
 * (the "upgraded" flag tells the request's destructor to keep its hands
 * off).  The serial connection is made before the 101 so that a busy
 * console can still be refused with a 409.
 */
struct console {
	int serial;                     /* connected to QEMU's serial socket */
	uint64_t user, token_id;
	bool upgraded;
	bool websocket;
};

struct session {
	int serial, client, stop;       /* stop: an eventfd, readable = end */
	uint64_t user, token_id;
	struct req_upgrade *h;
	pthread_t thread;
	bool websocket;
	uint16_t stop_status;           /* the close status a stop sends (WebSocket) */
	bool ended;                     /* the pump returned (under lock) */
	bool stopping;                  /* asked to end */
	struct session *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct session *sessions;
static size_t n_sessions;

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

/* One unfragmented server frame. */
static bool ws_send(int fd, enum ws_opcode op, const void *data, size_t len)
{
	uint8_t hdr[WS_HEADER_MAX];
	size_t n = ws_header(hdr, op, len);

	return write_all(fd, (const char *)hdr, n) && (len == 0 || write_all(fd, data, len));
}

static void ws_close(int fd, uint16_t status, const char *reason)
{
	uint8_t payload[125];

	ws_send(fd, WS_CLOSE, payload, ws_close_payload(payload, status, reason));
}

/* What the browser sent: frames to act on.  False when the session ends
 * (a close, either way, or a protocol error: the close is sent). */
static bool ws_from_client(struct session *s, struct ws_reader *rd, uint8_t *in, size_t *in_len)
{
	struct ws_frame f;
	long used;

	while ((used = ws_parse(rd, in, *in_len, &f)) > 0) {
		switch (f.opcode) {
		case WS_TEXT: case WS_BINARY: case WS_CONT:
			if (f.len && !write_all(s->serial, (const char *)f.payload, f.len))
				return false;
			break;
		case WS_PING:
			if (!ws_send(s->client, WS_PONG, f.payload, f.len))
				return false;
			break;
		case WS_PONG:
			break;
		case WS_CLOSE:
			/* Answer with the status it gave (none: none). */
			ws_send(s->client, WS_CLOSE, f.payload, f.len >= 2 ? 2 : 0);
			return false;
		}
		memmove(in, in + used, *in_len - (size_t)used);
		*in_len -= (size_t)used;
	}
	if (used < 0) {
		ws_close(s->client, (uint16_t)-used, "protocol error");
		return false;
	}
	return true;
}

/* A WebSocket session: frames from the browser, binary frames to it. */
static void ws_pump(struct session *s)
{
	struct ws_reader rd;
	/* Room for the largest frame accepted, header and mask included. */
	static const size_t in_max = WS_MAX_PAYLOAD + 14;
	uint8_t *in = malloc(in_max), out[4096];
	size_t in_len = 0;
	int64_t last_rx = auth_now_ms();

	ws_reader_init(&rd, WS_MAX_PAYLOAD);
	if (in == NULL) {
		ws_close(s->client, WS_CLOSE_GOING_AWAY, "out of memory");
		return;
	}
	for (;;) {
		struct pollfd p[3] = { { .fd = s->client, .events = POLLIN },
				       { .fd = s->serial, .events = POLLIN },
				       { .fd = s->stop, .events = POLLIN } };
		int rc = poll(p, 3, WS_PING_MS);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents) {
			ws_close(s->client, s->stop_status, "the session ended");
			break;
		}
		if (rc == 0) {
			if (auth_now_ms() - last_rx >= 2 * WS_PING_MS) {
				ws_close(s->client, WS_CLOSE_GOING_AWAY, "no answer to pings");
				break;
			}
			if (!ws_send(s->client, WS_PING, NULL, 0))
				break;
			continue;
		}
		if (p[0].revents) {
			ssize_t n = recv(s->client, in + in_len, in_max - in_len, 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				break;
			in_len += (size_t)n;
			last_rx = auth_now_ms();
			if (!ws_from_client(s, &rd, in, &in_len))
				break;
		}
		if (p[1].revents) {
			ssize_t n = recv(s->serial, out, sizeof(out), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				ws_close(s->client, WS_CLOSE_NORMAL, "the serial console closed");
				break;
			}
			if (!ws_send(s->client, WS_BINARY, out, (size_t)n))
				break;
		}
	}
	free(in);
}

/* hc-console: bytes both ways, as they are. */
static void raw_pump(struct session *s)
{
	char buf[4096];

	for (;;) {
		struct pollfd p[3] = { { .fd = s->client, .events = POLLIN },
				       { .fd = s->serial, .events = POLLIN },
				       { .fd = s->stop, .events = POLLIN } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		if (p[0].revents) {
			ssize_t n = recv(s->client, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || !write_all(s->serial, buf, (size_t)n))
				break;
		}
		if (p[1].revents) {
			ssize_t n = recv(s->serial, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || !write_all(s->client, buf, (size_t)n))
				break;
		}
	}
}

static void *console_pump(void *arg)
{
	struct session *s = arg;

	if (s->websocket)
		ws_pump(s);
	else
		raw_pump(s);
	close(s->serial);
	s->serial = -1;
	req_upgrade_close(s->h);
	pthread_mutex_lock(&lock);
	s->ended = true;
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void session_stop(struct session *s, uint16_t status)
{
	uint64_t one = 1;

	if (s->stopping)
		return;
	s->stopping = true;
	s->stop_status = status;
	(void)!write(s->stop, &one, sizeof(one));
}

static void session_free(struct session *s)
{
	pthread_join(s->thread, NULL);
	close(s->stop);
	free(s);
}

static void on_upgrade(void *arg, int fd, const char *extra, size_t extra_len,
		       struct req_upgrade *h)
{
	struct console *c = arg;
	struct session *s = calloc(1, sizeof(*s));

	/* From here on the serial connection belongs to the session. */
	c->upgraded = true;
	if (s == NULL || (s->stop = eventfd(0, EFD_CLOEXEC)) < 0) {
		free(s);
		close(c->serial);
		req_upgrade_close(h);
		return;
	}
	s->serial = c->serial;
	s->client = fd;
	s->user = c->user;
	s->token_id = c->token_id;
	s->websocket = c->websocket;
	s->h = h;
	/* A browser waits for the 101 before it sends a frame; what a raw
	 * client sent early is keystrokes. */
	if (extra_len > 0 && !s->websocket)
		write_all(s->serial, extra, extra_len);
	if (pthread_create(&s->thread, NULL, console_pump, s) != 0) {
		log_warn("console: cannot start its thread");
		close(s->serial);
		close(s->stop);
		req_upgrade_close(h);
		free(s);
		return;
	}
	pthread_mutex_lock(&lock);
	s->next = sessions;
	sessions = s;
	n_sessions++;
	pthread_mutex_unlock(&lock);
}

/* Unlink and return the sessions whose pump has ended. */
static struct session *take_ended(void)
{
	struct session *done = NULL, **pp;

	pthread_mutex_lock(&lock);
	for (pp = &sessions; *pp;) {
		struct session *s = *pp;
		if (s->ended) {
			*pp = s->next;
			s->next = done;
			done = s;
			n_sessions--;
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&lock);
	return done;
}

static void reap(void)
{
	struct session *s = take_ended();

	while (s) {
		struct session *next = s->next;
		session_free(s);
		s = next;
	}
}

void console_check(struct api_ctx *ctx)
{
	reap();
	/* Only the loop adds or removes sessions' links besides the pumps'
	 * `ended`, so walking without the lock is safe here. */
	for (struct session *s = sessions; s; s = s->next) {
		if (s->stopping || api_session_valid(ctx, s->user, s->token_id))
			continue;
		log_info("console: ending a console of user %llu: its %s", (unsigned long long)s->user,
			 s->token_id ? "token was revoked or expired" : "user was disabled");
		/* 1008: a policy (the token's) ended it. */
		session_stop(s, WS_CLOSE_POLICY);
	}
}

void console_stop_all(void)
{
	for (struct session *s = sessions; s; s = s->next)
		session_stop(s, WS_CLOSE_GOING_AWAY);
	while (sessions) {
		struct session *s = sessions;
		sessions = s->next;
		n_sessions--;
		session_free(s);
	}
}

size_t console_count(void)
{
	return n_sessions;
}

/* The request ended without an upgrade (client gone, HTTP/1.0…). */
static void console_free(void *arg)
{
	struct console *c = arg;

	if (!c->upgraded)
		close(c->serial);
	free(c);
}

/*
 * The VM of the request, when it may be attached here: the caller's (or
 * an admin's), running, on this host, its serial port free.  NULL with
 * the error answer set.
 */
static struct console *console_attach(struct req *r, bool websocket)
{
	struct vm vm = { 0 };
	struct console *c;
	char *path;
	int rc;

	rc = store_vm_get(r->api->st, req_ref(r), req_scope(r), &vm);
	if (rc != STORE_OK) {
		req_store_error(r, rc, "vm", r->params[0]);
		return NULL;
	}
	if (!api_vm_here(r, &vm)) {
		vm_free(&vm);
		return NULL;
	}
	if (strcmp(vm.state, "running") != 0) {
		req_error(r, 409, "conflict", "vm '%s' is %s, not running", vm.name, vm.state);
		vm_free(&vm);
		return NULL;
	}
	path = agent_vm_console_path(r->api->agent, vm.id);
	vm_free(&vm);
	c = calloc(1, sizeof(*c));
	/* QEMU serves one console client at a time; never wait for it. */
	int fd = path ? unix_connect(path, 0) : -1;
	int e = errno;
	free(path);
	if (c == NULL || fd < 0) {
		free(c);
		if (fd >= 0)
			close(fd);
		if (e == EAGAIN)
			req_error(r, 409, "busy", "another console is attached to this VM");
		else
			req_error(r, 503, "unavailable", "the serial console is not reachable");
		return NULL;
	}
	c->serial = fd;
	c->user = r->caller;
	c->token_id = r->token_id;
	c->websocket = websocket;
	r->stream = c;
	r->stream_free = console_free;
	return c;
}

int h_vm_console(struct req *r)
{
	const char *upgrade = req_header(r, "Upgrade");
	struct console *c;

	if (upgrade == NULL || strcasecmp(upgrade, "hc-console") != 0)
		return req_error(r, 400, "bad_request", "the console needs 'Upgrade: hc-console'");
	c = console_attach(r, false);
	return c ? req_upgrade(r, "hc-console", on_upgrade, c) : 0;
}

/* RFC 6455 §4.2: the opening handshake, then the same attachment. */
int h_vm_console_ws(struct req *r)
{
	const char *upgrade = req_header(r, "Upgrade");
	const char *version = req_header(r, "Sec-WebSocket-Version");
	char accept[WS_ACCEPT_LEN + 1];
	struct console *c;

	if (upgrade == NULL || strcasecmp(upgrade, "websocket") != 0 ||
	    !ws_header_has(req_header(r, "Connection"), "upgrade"))
		return req_error(r, 400, "bad_request",
				 "a WebSocket handshake needs 'Upgrade: websocket' and 'Connection: Upgrade'");
	if (version == NULL || strcmp(version, "13") != 0) {
		req_error(r, 426, "bad_request", "WebSocket version 13 only");
		req_header_add(r, "Sec-WebSocket-Version", "13");
		return 0;
	}
	if (!ws_accept(req_header(r, "Sec-WebSocket-Key"), accept))
		return req_error(r, 400, "bad_request", "Sec-WebSocket-Key must be base64 of 16 bytes");
	if (!ws_header_has(req_header(r, "Sec-WebSocket-Protocol"), WS_PROTOCOL))
		return req_error(r, 400, "bad_request", "the subprotocol '" WS_PROTOCOL "' is required");
	c = console_attach(r, true);
	if (c == NULL)
		return 0;
	req_upgrade(r, "websocket", on_upgrade, c);
	req_header_add(r, "Sec-WebSocket-Accept", accept);
	req_header_add(r, "Sec-WebSocket-Protocol", WS_PROTOCOL);
	return 0;
}
