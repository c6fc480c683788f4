/* qmp — see qmp.h. */
#include "vm/qmp.h"

#include "common/fsutil.h"
#include "common/proc.h"
#include "common/sock.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct qmp_conn {
	int fd;
	long long deadline;
	char id[48];        /* of the command whose reply is awaited */
	char buf[65536];
	size_t len;
};

static int qmp_connect(struct qmp_conn *c, const char *path)
{
	c->fd = unix_connect(path, c->deadline);
	return c->fd < 0 ? -1 : 0;
}

/* Read one JSON message (QMP sends one per line). */
static json_t *qmp_read(struct qmp_conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf) + 1;
			json_t *j = json_loadb(c->buf, n, 0, NULL);
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (j)
				return j;
			continue;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		long long left = c->deadline - now_ms();
		if (left <= 0)
			return NULL;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

/* The socket is non-blocking: wait (bounded) until it takes more. */
static bool wait_writable(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLOUT };
	return poll(&p, 1, QMP_TIMEOUT_MS) > 0;
}

/* Send the whole buffer; the first byte carries fd (SCM_RIGHTS) when >= 0. */
static int send_with_fd(int sock, const char *buf, size_t len, int fd)
{
	size_t off = 0;

	if (fd >= 0) {
		char ctrl[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = ctrl, .msg_controllen = sizeof(ctrl) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		ssize_t w;
		do
			w = sendmsg(sock, &msg, MSG_NOSIGNAL);
		while (w < 0 && (errno == EINTR || (errno == EAGAIN && wait_writable(sock))));
		if (w < 0)
			return -1;
		off = (size_t)w;
	}
	while (off < len) {
		ssize_t w = send(sock, buf + off, len - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR || (errno == EAGAIN && wait_writable(sock)))
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* Each command carries an id of its own and only the reply with that id
 * is taken: a command still running in QEMU when an earlier client gave
 * up on it replies to whichever client is connected when it ends (the
 * next one).  The pid keeps ids apart across hcd restarts. */
static atomic_ullong qmp_seq;

static int qmp_send(struct qmp_conn *c, const char *command, json_t *arguments, int fd)
{
	json_t *msg = json_pack("{s:s}", "execute", command);
	char *text;
	int rc = 0;

	snprintf(c->id, sizeof(c->id), "hc%ld.%llu", (long)getpid(),
		 (unsigned long long)atomic_fetch_add(&qmp_seq, 1));
	json_object_set_new(msg, "id", json_string(c->id));
	if (arguments)
		json_object_set(msg, "arguments", arguments);
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text == NULL)
		return -1;
	rc = send_with_fd(c->fd, text, strlen(text), fd);
	free(text);
	return rc;
}

/* Wait for the reply to the last command, skipping asynchronous events. */
static int qmp_reply(struct qmp_conn *c, json_t **ret, char **err)
{
	for (;;) {
		json_t *j = qmp_read(c);
		if (j == NULL) {
			*err = strdup("no reply from QEMU monitor");
			return -1;
		}
		json_t *r = json_object_get(j, "return");
		json_t *e = json_object_get(j, "error");
		const char *id = json_string_value(json_object_get(j, "id"));
		if ((r || e) && (id == NULL || strcmp(id, c->id) != 0)) {
			json_decref(j); /* the reply to an earlier client's command */
			continue;
		}
		if (r) {
			if (ret)
				*ret = json_incref(r);
			json_decref(j);
			return 0;
		}
		if (e) {
			const char *desc = json_string_value(json_object_get(e, "desc"));
			*err = str_printf("QEMU: %s", desc ? desc : "error");
			json_decref(j);
			return -1;
		}
		json_decref(j); /* an event */
	}
}

int qmp_command(const char *path, const char *command, json_t *arguments,
		json_t **reply, char **err)
{
	return qmp_command_fd(path, command, arguments, -1, reply, err);
}

static int qmp_run(const char *path, int timeout_ms, const char *command, json_t *arguments,
		   int fd, json_t **reply, char **err)
{
	struct qmp_conn c = { .fd = -1, .deadline = now_ms() + timeout_ms };
	json_t *greeting;
	int rc = -1;

	*err = NULL;
	if (reply)
		*reply = NULL;
	if (qmp_connect(&c, path) < 0) {
		*err = str_printf("QEMU monitor %s: %s", path, strerror(errno));
		return -1;
	}
	greeting = qmp_read(&c);
	if (greeting == NULL || !json_object_get(greeting, "QMP")) {
		*err = strdup("QEMU monitor sent no greeting");
		goto out;
	}
	if (qmp_send(&c, "qmp_capabilities", NULL, -1) < 0 || qmp_reply(&c, NULL, err) < 0) {
		if (*err == NULL)
			*err = strdup("QEMU monitor: capabilities negotiation failed");
		goto out;
	}
	if (qmp_send(&c, command, arguments, fd) < 0) {
		*err = str_printf("QEMU monitor: %s", strerror(errno));
		goto out;
	}
	rc = qmp_reply(&c, reply, err);
out:
	json_decref(greeting);
	close(c.fd);
	return rc;
}

int qmp_command_fd(const char *path, const char *command, json_t *arguments, int fd,
		   json_t **reply, char **err)
{
	return qmp_run(path, QMP_TIMEOUT_MS, command, arguments, fd, reply, err);
}

int qmp_command_within(const char *path, int timeout_ms, const char *command,
		       json_t *arguments, json_t **reply, char **err)
{
	return qmp_run(path, timeout_ms, command, arguments, -1, reply, err);
}

char *qmp_query_status(const char *path)
{
	json_t *r = NULL;
	char *err = NULL, *status = NULL;

	if (qmp_command(path, "query-status", NULL, &r, &err) == 0) {
		const char *s = json_string_value(json_object_get(r, "status"));
		status = s ? strdup(s) : NULL;
	}
	json_decref(r);
	free(err);
	return status;
}
