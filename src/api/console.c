/*
 * console — `hc vm console`: an HTTP/1.1 upgrade ("Upgrade: hc-console")
 * that turns the API connection into a raw byte pipe to the VM's serial
 * socket.  Each attached console is pumped by its own small thread, so a
 * slow terminal never stalls the event loop; the thread touches nothing
 * but its two descriptors.
 */
#include "api/api.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/sock.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Owned by the request until the upgrade happens, then by the pump thread
 * (the "upgraded" flag tells the request's destructor to keep its hands
 * off).  The serial connection is made before the 101 so that a busy
 * console can still be refused with a 409.
 */
struct console {
	int serial;                     /* connected to QEMU's serial socket */
	bool upgraded;
};

struct pump {
	int serial;
	MHD_socket client;
	struct MHD_UpgradeResponseHandle *urh;
};

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
	struct pump *c = arg;
	char buf[4096];

	for (;;) {
		struct pollfd p[2] = { { .fd = c->client, .events = POLLIN },
				       { .fd = c->serial, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			ssize_t n = recv(c->client, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || !write_all(c->serial, buf, (size_t)n))
				break;
		}
		if (p[1].revents) {
			ssize_t n = recv(c->serial, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || !write_all(c->client, buf, (size_t)n))
				break;
		}
	}
	close(c->serial);
	MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(c);
	return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls,
		       const char *extra_in, size_t extra_in_size, MHD_socket sock,
		       struct MHD_UpgradeResponseHandle *urh)
{
	struct console *c = cls;
	struct pump *p = malloc(sizeof(*p));
	pthread_t t;
	pthread_attr_t attr;

	/* From here on the serial connection belongs to the pump. */
	c->upgraded = true;
	if (p == NULL) {
		close(c->serial);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	*p = (struct pump){ .serial = c->serial, .client = sock, .urh = urh };
	if (extra_in_size > 0)
		write_all(p->serial, extra_in, extra_in_size);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, console_pump, p) != 0) {
		log_warn("console: cannot start its thread");
		close(p->serial);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		free(p);
	}
	pthread_attr_destroy(&attr);
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
	const char *upgrade = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Upgrade");
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
	r->stream = c;
	r->stream_free = console_free;
	r->raw = MHD_create_response_for_upgrade(on_upgrade, c);
	if (r->raw == NULL)
		return req_error(r, 500, "internal", "cannot upgrade the connection");
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_UPGRADE, "hc-console");
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	return 0;
}
