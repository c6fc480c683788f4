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

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct console {
	int serial;                     /* connected to QEMU's serial socket */
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
	struct console *c = arg;
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
	pthread_t t;
	pthread_attr_t attr;

	c->client = sock;
	c->urh = urh;
	if (extra_in_size > 0)
		write_all(c->serial, extra_in, extra_in_size);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, console_pump, c) != 0) {
		log_warn("console: cannot start its thread");
		close(c->serial);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

static int serial_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
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
	rc = store_vm_get(r->api->st, r->params[0], req_scope(r), &vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", r->params[0]);
	if (strcmp(vm.state, "running") != 0) {
		req_error(r, 409, "conflict", "vm '%s' is %s, not running", vm.name, vm.state);
		vm_free(&vm);
		return 0;
	}
	path = agent_vm_console_path(r->api->agent, vm.id);
	vm_free(&vm);
	c = calloc(1, sizeof(*c));
	if (c == NULL || path == NULL || (c->serial = serial_connect(path)) < 0) {
		free(c);
		free(path);
		return req_error(r, 503, "unavailable", "the serial console is not reachable");
	}
	free(path);
	r->raw = MHD_create_response_for_upgrade(on_upgrade, c);
	if (r->raw == NULL) {
		close(c->serial);
		free(c);
		return req_error(r, 500, "internal", "cannot upgrade the connection");
	}
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_UPGRADE, "hc-console");
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	return 0;
}
