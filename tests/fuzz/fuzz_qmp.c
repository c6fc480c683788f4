/*
 * fuzz_qmp — what hcd reads from a QEMU monitor (vm/qmp.h): the greeting,
 * the replies and any events in between.  QEMU is the guest's: after an
 * escape it can write anything on its QMP socket.
 *
 * The input is the whole byte stream a fake monitor sends on a real unix
 * socket (a thread of this harness), to a full qmp_command round (greeting,
 * capabilities, command) and to qmp_query_status.  Promises: success comes
 * with a reply and no message, failure with a message and no reply; a
 * stream that never completes a reply is libFuzzer's -timeout to catch
 * (run.sh), as each call must end by QMP_TIMEOUT_MS.
 */
#include "fuzz.h"

#include "vm/qmp.h"

#include <pthread.h>
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

/* Serve the bytes to each client in turn, whatever it sends. */
static void *monitor(void *arg)
{
	struct monitor *m = arg;
	char sink[4096];

	for (int i = 0; i < m->sessions; i++) {
		int c = accept(listener, NULL, NULL);
		if (c < 0)
			break;
		for (size_t off = 0; off < m->size;) {
			ssize_t w = send(c, m->data + off, m->size - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		shutdown(c, SHUT_WR);
		while (read(c, sink, sizeof(sink)) > 0)
			;
		close(c);
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
