/*
 * Unit tests for vm/qmp against a monitor played by a thread: the reply
 * taken is the one to this client's command, never a reply QEMU owed an
 * earlier client (a command that outlived its client's timeout answers
 * whoever is connected when it ends), nor an event.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/sock.h"
#include "vm/qmp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A monitor for one client: what it sends before the reply to the
 * command, and the command it was sent. */
struct monitor {
	int listener;
	const char *before;     /* lines, each ending in \n */
	char command[64];       /* the command it was sent */
};

static void send_line(int fd, const char *s)
{
	size_t len = strlen(s);
	assert_int_equal(write(fd, s, len), (ssize_t)len);
}

/* One request (QMP clients need not end it with a newline: read until
 * the bytes so far are one whole JSON object). */
static json_t *read_request(int fd)
{
	char buf[4096];
	size_t len = 0;

	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n <= 0)
			return NULL;
		len += (size_t)n;
		json_t *j = json_loadb(buf, len, 0, NULL);
		if (j)
			return j;
	}
	return NULL;
}

/* The reply to req, its id echoed back the way QEMU does. */
static void reply(int fd, json_t *req, json_t *ret)
{
	json_t *r = json_pack("{s:o}", "return", ret);
	json_t *id = json_object_get(req, "id");
	char *text;

	if (id)
		json_object_set(r, "id", id);
	text = json_dumps(r, JSON_COMPACT);
	send_line(fd, text);
	send_line(fd, "\n");
	free(text);
	json_decref(r);
}

static void *monitor_run(void *arg)
{
	struct monitor *m = arg;
	int fd = accept(m->listener, NULL, NULL);
	json_t *req;

	if (fd < 0)
		return NULL;
	send_line(fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
	if ((req = read_request(fd)) != NULL) {
		reply(fd, req, json_object());
		json_decref(req);
	}
	if ((req = read_request(fd)) != NULL) {
		snprintf(m->command, sizeof(m->command), "%s",
			 json_string_value(json_object_get(req, "execute")));
		send_line(fd, m->before);
		reply(fd, req, json_pack("{s:s}", "status", "mine"));
		json_decref(req);
	}
	close(fd);
	return NULL;
}

/* Runs query-status against a monitor that sends before first; the
 * status in the reply qmp_command returned (malloc'd), or NULL. */
static char *status_after(const char *before)
{
	char dir[] = "/tmp/hc-test-qmp.XXXXXX", path[64], *err = NULL, *status = NULL;
	struct monitor m = { .before = before };
	pthread_t t;
	json_t *r = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	m.listener = unix_listen(path, 1);
	assert_true(m.listener >= 0);
	assert_int_equal(pthread_create(&t, NULL, monitor_run, &m), 0);
	if (qmp_command(path, "query-status", NULL, &r, &err) == 0)
		status = strdup(json_string_value(json_object_get(r, "status")));
	else
		print_message("qmp_command: %s\n", err);
	pthread_join(t, NULL);
	assert_string_equal(m.command, "query-status");
	json_decref(r);
	free(err);
	close(m.listener);
	unlink(path);
	rmdir(dir);
	return status;
}

/* qmp_command took the reply to its own command, whatever came first. */
static void assert_mine_after(const char *before)
{
	char *s = status_after(before);

	assert_non_null(s);
	assert_string_equal(s, "mine");
	free(s);
}

static void test_reply_alone(void **state)
{
	(void)state;
	assert_mine_after("");
}

static void test_event_skipped(void **state)
{
	(void)state;
	assert_mine_after("{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n");
}

/* A blockdev-add an earlier client timed out on, answering now. */
static void test_earlier_clients_reply_skipped(void **state)
{
	(void)state;
	assert_mine_after("{\"return\": {\"status\": \"stale\"}, \"id\": \"hc1.7\"}\n"
			  "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Failed to read "
			  "info type\"}, \"id\": \"hc1.8\"}\n"
			  "{\"return\": {\"status\": \"no id\"}}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_alone),
		cmocka_unit_test(test_event_skipped),
		cmocka_unit_test(test_earlier_clients_reply_skipped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
