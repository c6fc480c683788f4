/*
 * console — `hc vm console`: an HTTP/1.1 upgrade ("Upgrade: hc-console")
 * that turns the API connection into a raw byte pipe to the VM's serial
 * socket.  Each attached console is pumped by its own small thread, so a
 * slow terminal never stalls the event loop; the thread touches nothing
 * but its descriptors.
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

#include "api/handlers.h"
#include "api/identity.h"
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
#include <sys/socket.h>
#include <unistd.h>

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
};

struct session {
	int serial, client, stop;       /* stop: an eventfd, readable = end */
	uint64_t user, token_id;
	struct req_upgrade *h;
	pthread_t thread;
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

static void *console_pump(void *arg)
{
	struct session *s = arg;
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
	close(s->serial);
	s->serial = -1;
	req_upgrade_close(s->h);
	pthread_mutex_lock(&lock);
	s->ended = true;
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void session_stop(struct session *s)
{
	uint64_t one = 1;

	if (s->stopping)
		return;
	s->stopping = true;
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
	s->h = h;
	if (extra_len > 0)
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
		session_stop(s);
	}
}

void console_stop_all(void)
{
	for (struct session *s = sessions; s; s = s->next)
		session_stop(s);
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

int h_vm_console(struct req *r)
{
	struct vm vm = { 0 };
	const char *upgrade = req_header(r, "Upgrade");
	struct console *c;
	char *path;
	int rc;

	if (upgrade == NULL || strcasecmp(upgrade, "hc-console") != 0)
		return req_error(r, 400, "bad_request", "the console needs 'Upgrade: hc-console'");
	rc = store_vm_get(r->api->st, req_ref(r), req_scope(r), &vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", r->params[0]);
	if (!api_vm_here(r, &vm)) {
		vm_free(&vm);
		return 0;
	}
	if (strcmp(vm.state, "running") != 0) {
		req_error(r, 409, "conflict", "vm '%s' is %s, not running", vm.name, vm.state);
		vm_free(&vm);
		return 0;
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
			return req_error(r, 409, "busy", "another console is attached to this VM");
		return req_error(r, 503, "unavailable", "the serial console is not reachable");
	}
	c->serial = fd;
	c->user = r->caller;
	c->token_id = r->token_id;
	r->stream = c;
	r->stream_free = console_free;
	return req_upgrade(r, "hc-console", on_upgrade, c);
}
