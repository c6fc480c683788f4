/*
 * console.c — `hc vm console VM`: the VM's serial console on the terminal.
 *
 * libcurl has no use for a connection that stops being HTTP, so this is
 * done by hand on a raw socket (client_connect_raw): send
 *   POST /v1/vms/{ref}/console  with "Connection: Upgrade", "Upgrade: hc-console"
 * read the answer's headers, require 101, and from then on copy bytes both
 * ways with poll() — stdin → daemon, daemon → stdout (src/api/console.c is
 * the other end).
 *
 * Interactive (stdin is a tty): the terminal is put in raw mode, so every
 * key, Ctrl-C included, goes to the guest; Ctrl-] (0x1d) detaches, and the
 * terminal is restored on every way out.  Scripted (stdin is not a tty):
 * the input is piped through, and at its end hc keeps copying the guest's
 * output until it has been quiet for a second (at most DRAIN_MAX_MS), so
 * the answer to the last command is not cut off.
 */
#include "cli/cli.h"

#include "common/fsutil.h"
#include "common/proc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#define DETACH_KEY 0x1d             /* Ctrl-] */
#define HANDSHAKE_TIMEOUT_MS 30000
#define HANDSHAKE_MAX (64 * 1024)   /* headers and an error body */
#define DRAIN_QUIET_MS 1000
#define DRAIN_MAX_MS 10000

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* ---- the upgrade -------------------------------------------------------- */

static int send_upgrade(struct hc *h, int fd, const char *path, const char *host)
{
	char *req = str_printf("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
			       "Upgrade: hc-console\r\nContent-Length: 0\r\n", path, host);
	int rc;

	for (const char *const *hd = client_headers(h->cl); req && *hd; hd++) {
		char *more = str_printf("%s%s\r\n", req, *hd);
		free(req);
		req = more;
	}
	if (req == NULL)
		return hc_fail(h, "out of memory");
	rc = write_all(fd, req, strlen(req)) < 0 || write_all(fd, "\r\n", 2) < 0;
	free(req);
	if (rc)
		return hc_fail(h, "sending the console request failed: %s", strerror(errno));
	return 0;
}

/* Read more of the answer into buf; 0 at EOF, -1 with an error recorded. */
static ssize_t read_some(struct hc *h, int fd, char *buf, size_t room, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long long left = deadline - now_ms();
	ssize_t n;

	if (room == 0)
		return hc_fail(h, "hcd's answer to the console request is too long");
	if (left <= 0 || poll(&p, 1, (int)left) == 0)
		return hc_fail(h, "hcd did not answer the console request");
	n = read(fd, buf, room);
	if (n < 0)
		return hc_fail(h, "reading hcd's answer failed: %s", strerror(errno));
	return n;
}

/* Value of a header in the block hdr..end (case-insensitive name), or -1. */
static long header_long(const char *hdr, const char *end, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = hdr; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		if (*p == '\n')
			p++;
		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
			return strtol(p + nl + 1, NULL, 10);
	}
	return -1;
}

/* A refusal: the API's error message from the body that follows the headers. */
static int refused(struct hc *h, int fd, char *buf, size_t have, size_t hdr_len, long status,
		   long long deadline)
{
	long body_len = header_long(buf, buf + hdr_len, "Content-Length");
	ssize_t n = 1;

	while (body_len > 0 && have < hdr_len + (size_t)body_len && n > 0)
		if ((n = read_some(h, fd, buf + have, HANDSHAKE_MAX - 1 - have, deadline)) > 0)
			have += (size_t)n;
	hc_clear(h); /* a short body still leaves the status to report */
	struct api_resp rs = { .status = status, .body = buf + hdr_len, .len = have - hdr_len };
	char *msg = api_error_message(&rs);
	hc_fail(h, "%s", msg ? msg : "out of memory");
	free(msg);
	return -1;
}

/* Read the answer to the upgrade.  0 on "101", with any bytes that came
 * after the headers (the console's first output) moved to the front of buf
 * and counted in *extra. */
static int read_upgrade(struct hc *h, int fd, char *buf, size_t *extra)
{
	long long deadline = now_ms() + HANDSHAKE_TIMEOUT_MS;
	size_t have = 0;
	char *end = NULL;
	long status = 0;

	while (end == NULL) {
		ssize_t n = read_some(h, fd, buf + have, HANDSHAKE_MAX - 1 - have, deadline);
		if (n < 0)
			return -1;
		if (n == 0)
			return hc_fail(h, "hcd closed the connection instead of opening the console");
		have += (size_t)n;
		buf[have] = '\0';
		end = memmem(buf, have, "\r\n\r\n", 4);
	}
	size_t hdr_len = (size_t)(end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %ld", &status) != 1)
		return hc_fail(h, "hcd answered the console request with something not HTTP");
	if (status != 101)
		return refused(h, fd, buf, have, hdr_len, status, deadline);
	*extra = have - hdr_len;
	memmove(buf, buf + hdr_len, *extra);
	return 0;
}

/* ---- the terminal ------------------------------------------------------- */

struct term {
	bool raw;
	struct termios saved;
};

static void term_raw(struct term *t)
{
	struct termios raw;

	t->raw = false;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t->saved) < 0)
		return;
	raw = t->saved;
	cfmakeraw(&raw);
	t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

static void term_restore(struct term *t)
{
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->raw = false;
}

/* ---- the pump ----------------------------------------------------------- */

struct pump {
	int sock;
	bool stdin_open;
	long long quiet_until;     /* after stdin's end: stop when output pauses */
	long long drain_until;     /* … or at the latest then */
	bool detached;
};

/* stdin → daemon; a Ctrl-] ends the session with what came before it sent. */
static int pump_input(struct hc *h, struct pump *p)
{
	char buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0
			: hc_fail(h, "reading stdin failed: %s", strerror(errno));
	if (n == 0) {
		p->stdin_open = false;
		p->quiet_until = now_ms() + DRAIN_QUIET_MS;
		p->drain_until = now_ms() + DRAIN_MAX_MS;
		return 0;
	}
	char *key = memchr(buf, DETACH_KEY, (size_t)n);
	if (key) {
		n = key - buf;
		p->detached = true;
	}
	if (write_all(p->sock, buf, (size_t)n) < 0)
		return hc_fail(h, "sending to the console failed: %s", strerror(errno));
	return 0;
}

/* daemon → stdout; 1 when the daemon closed the console. */
static int pump_output(struct hc *h, struct pump *p)
{
	char buf[4096];
	ssize_t n = read(p->sock, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0
			: hc_fail(h, "reading from the console failed: %s", strerror(errno));
	if (n == 0)
		return 1;
	if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
		return hc_output_failed(h);
	if (!p->stdin_open)
		p->quiet_until = now_ms() + DRAIN_QUIET_MS;
	return 0;
}

/* Copy both ways until detach, stdin's end (then drain), the daemon closing,
 * or a signal.  0 on any of these, -1 on an I/O error. */
static int pump(struct hc *h, struct pump *p)
{
	int rc = 0;

	while (rc == 0 && !p->detached && !hc_interrupted) {
		struct pollfd fds[2] = {
			{ .fd = p->sock, .events = POLLIN },
			{ .fd = p->stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
		};
		int timeout = -1;
		if (!p->stdin_open) {
			long long until = p->quiet_until < p->drain_until ? p->quiet_until
									  : p->drain_until;
			long long left = until - now_ms();
			if (left <= 0)
				break;
			timeout = (int)left;
		}
		if (poll(fds, 2, timeout) < 0) {
			if (errno != EINTR)
				rc = hc_fail(h, "poll: %s", strerror(errno));
			continue;
		}
		if (fds[0].revents)
			rc = pump_output(h, p);
		if (rc == 0 && fds[1].revents)
			rc = pump_input(h, p);
	}
	return rc < 0 ? -1 : 0;
}

/* ---- the command -------------------------------------------------------- */

/* Open the console of `ref`: a socket now speaking the serial line, and
 * the first bytes of output that came with the answer. */
static int console_open(struct hc *h, const char *ref, char *buf, size_t *extra)
{
	char *path = api_path("vms", ref, "console");
	const char *host;
	int fd;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	fd = client_connect_raw(h, h->cl, &host);
	if (fd >= 0 && (send_upgrade(h, fd, path, host) < 0 || read_upgrade(h, fd, buf, extra) < 0)) {
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

int cmd_vm_console(struct hc *h, const struct args *a)
{
	char *buf = malloc(HANDSHAKE_MAX);
	struct pump p = { .stdin_open = true };
	struct term t = { 0 };
	size_t extra = 0;
	int rc;

	if (buf == NULL)
		return hc_fail(h, "out of memory");
	p.sock = console_open(h, a->pos[0], buf, &extra);
	if (p.sock < 0) {
		free(buf);
		return -1;
	}
	term_raw(&t);
	hc_catch_signals(true);
	if (t.raw)
		fprintf(stderr, "[console of %s; detach with Ctrl-]]\r\n", a->pos[0]);
	rc = write_all(STDOUT_FILENO, buf, extra) < 0
		? hc_output_failed(h) : pump(h, &p);
	hc_catch_signals(false);
	if (t.raw)
		fprintf(stderr, "\r\n[%s]\r\n", p.detached || hc_interrupted ? "detached" : "console closed");
	term_restore(&t);
	close(p.sock);
	free(buf);
	return rc;
}
