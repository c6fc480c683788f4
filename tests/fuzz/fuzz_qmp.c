/*
 * fuzz_qmp — what hcd reads from a QEMU monitor (vm/qmp.h): the greeting,
 * the replies and any events in between.  QEMU is the guest's: after an
 * escape it can write anything on its QMP socket.
 *
 * The input is the whole byte stream a fake monitor sends on a real unix
 * socket (a thread of this harness), to a full qmp_command round (greeting,
 * capabilities, command) and to qmp_query_status.  Each "@I" in it is
 * replaced by the id of the client's latest command (its first and second
 * wait for the client's first and second command), as QEMU echoes ids:
 * without it no reply could ever match (vm/qmp.c takes only the reply to
 * its own command), and the success paths would be out of reach.  Promises: success comes
 * with a reply and no message, failure with a message and no reply; a
 * stream that never completes a reply is libFuzzer's -timeout to catch
 * (run.sh), as each call must end by QMP_TIMEOUT_MS.
 */
#include "fuzz.h"

#include "vm/qmp.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listener = -1;
static char sock_path[108];

struct monitor {
	const uint8_t *data;
	size_t size;
	int sessions;
};

/* What a client sent so far, and the ids of its commands in it. */
struct client {
	int fd;
	char got[8192];
	size_t len;
	int n_ids;
	char id[64];            /* the latest */
	bool closed;            /* it hung up */
	char line[4096];        /* sent to it since the last newline */
	size_t line_len;
	bool answerable;        /* a JSON object sent since its latest id */
};

/* Reads what the client sent within wait_ms (or nothing) and notes the
 * ids in it; the client writes compact JSON: "id":"…". */
static void client_read(struct client *c, int wait_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	if (poll(&p, 1, wait_ms) <= 0 || c->len == sizeof(c->got))
		return;
	ssize_t n = read(c->fd, c->got + c->len, sizeof(c->got) - c->len);
	if (n <= 0) {
		c->closed = true;
		return;
	}
	c->len += (size_t)n;
	c->n_ids = 0;
	for (const char *k = c->got; (k = memmem(k, c->len - (size_t)(k - c->got), "\"id\":\"", 6));) {
		k += 6;
		const char *end = memchr(k, '"', c->len - (size_t)(k - c->got));
		if (end == NULL || (size_t)(end - k) >= sizeof(c->id))
			break;
		memcpy(c->id, k, (size_t)(end - k));
		c->id[end - k] = '\0';
		c->n_ids++;
	}
}

static int send_all(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* Sends buf, noting whether a whole line of it was a JSON object: only
 * then may the client answer with a command (the greeting, the reply to
 * its capabilities), so only then is its id worth waiting for. */
static int client_send(struct client *c, const void *buf, size_t len)
{
	const char *b = buf;

	if (send_all(c->fd, buf, len) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (b[i] != '\n') {
			if (c->line_len < sizeof(c->line))
				c->line[c->line_len++] = b[i];
			continue;
		}
		json_t *j = json_loadb(c->line, c->line_len, 0, NULL);
		c->answerable = c->answerable || json_is_object(j);
		json_decref(j);
		c->line_len = 0;
	}
	return 0;
}

/* Serve the bytes to each client in turn, "@I" replaced by its id. */
static void *monitor(void *arg)
{
	struct monitor *m = arg;
	char sink[4096];

	for (int i = 0; i < m->sessions; i++) {
		struct client c = { .fd = accept(listener, NULL, NULL) };
		const uint8_t *at = m->data, *end = m->data + m->size;
		if (c.fd < 0)
			break;
		for (int token = 0;; token++) {
			const uint8_t *mark = memmem(at, (size_t)(end - at), "@I", 2);
			if (client_send(&c, at, (size_t)((mark ? mark : end) - at)) < 0 || mark == NULL)
				break;
			/* The first two marks wait briefly for the client's next
			 * command when it may have one; later ones, or a client
			 * with nothing to answer yet, get the latest id at once. */
			int ids = c.n_ids;
			for (int waited = 0; token < 2 && c.answerable && !c.closed && c.n_ids == ids &&
					     waited < 50; waited += 5)
				client_read(&c, 5);
			if (c.n_ids != ids)
				c.answerable = false;
			if (client_send(&c, c.id, strlen(c.id)) < 0)
				break;
			at = mark + 2;
		}
		shutdown(c.fd, SHUT_WR);
		while (read(c.fd, sink, sizeof(sink)) > 0)
			;
		close(c.fd);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sock_path, sizeof(sock_path), "%s/qmp.sock", fuzz_dir("qmp"));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listener, 4) < 0) {
		perror(sock_path);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct monitor m = { data, size, 2 };
	pthread_t t;
	json_t *args = json_pack("{s:s}", "device", "net0"), *reply = NULL;
	char *err = NULL, *status;

	FUZZ_ASSERT(pthread_create(&t, NULL, monitor, &m) == 0, "thread");
	int rc = qmp_command(sock_path, "device_del", args, &reply, &err);
	if (rc == 0)
		FUZZ_ASSERT(reply != NULL && err == NULL, "success without a reply");
	else
		FUZZ_ASSERT(rc == -1 && reply == NULL && err != NULL, "failure %d without a message", rc);
	json_decref(reply);
	free(err);
	status = qmp_query_status(sock_path);
	free(status);
	pthread_join(t, NULL);
	json_decref(args);
	return 0;
}
