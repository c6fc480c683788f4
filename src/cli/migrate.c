/*
 * migrate.c — `hc vm migrate` and `hc host drain --migrate` (issue 14 §1):
 * ask for live migrations, then follow them until they are over, printing
 * each step as the store records it (the daemon's hosts do the work:
 * agent/migrate.h).
 */
#include "cli/cli.h"

#include "common/fsutil.h"
#include "common/proc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS 250
#define DRAIN_POLL_MS 1000
#define WAIT_DEFAULT_S 1800

static void print_outcome(json_t *m)
{
	json_t *total = json_object_get(m, "total_ms"), *down = json_object_get(m, "downtime_ms");

	if (strcmp(json_str(m, "state"), "done") == 0)
		printf("vm '%s' migrated from %s to %s: %lld ms in all, %lld ms paused (QEMU's downtime)\n",
		       json_str(m, "vm_name"), json_str(m, "source"), json_str(m, "destination"),
		       (long long)json_integer_value(total), (long long)json_integer_value(down));
}

/* Follow a VM's migration until it is over: 0 done, -1 failed or timed out. */
static int migration_follow(struct hc *h, const char *ref, long timeout_s, bool quiet)
{
	char *path = api_path("vms", ref, "migration");
	char *last = NULL;
	json_t *m = NULL;
	long long deadline = now_ms() + timeout_s * 1000LL;
	int rc = -1;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	for (;;) {
		json_decref(m);
		m = NULL;
		if (api_call(h, "GET", path, NULL, &m, NULL) < 0)
			break;
		const char *st = json_str(m, "state");
		if (!quiet && !h->json && (last == NULL || strcmp(last, st) != 0))
			printf("vm '%s': %s\n", json_str(m, "vm_name"), st);
		free(last);
		last = strdup(st);
		if (json_is_true(json_object_get(m, "finished"))) {
			if (strcmp(st, "failed") == 0) {
				hc_fail(h, "migration of vm '%s' to %s failed: %s; it runs on %s",
					json_str(m, "vm_name"), json_str(m, "destination"),
					json_str(m, "error"), json_str(m, "source"));
			} else {
				rc = 0;
				if (h->json)
					print_json(m);
				else if (!quiet)
					print_outcome(m);
			}
			break;
		}
		if (now_ms() >= deadline) {
			hc_fail(h, "migration of vm '%s' is still %s after %ld s", ref, st, timeout_s);
			break;
		}
		hc_sleep_ms(POLL_MS);
	}
	json_decref(m);
	free(last);
	free(path);
	return rc;
}

int cmd_vm_migrate(struct hc *h, const struct args *a)
{
	const char *host = arg_opt(a, "--host");
	long timeout = WAIT_DEFAULT_S;
	char *path = api_path("vms", a->pos[0], "migrate");
	json_t *body = host ? json_pack("{s:s}", "host", host) : json_object();
	json_t *m = NULL;
	int rc;

	if (arg_int(h, a, "--timeout", 1, INT_MAX / 1000, &timeout) < 0) {
		free(path);
		json_decref(body);
		return -1;
	}
	rc = path && body ? api_call(h, "POST", path, body, &m, NULL) : hc_fail(h, "out of memory");
	free(path);
	json_decref(body);
	if (rc < 0)
		return -1;
	if (arg_flag(a, "--no-wait")) {
		if (h->json)
			print_json(m);
		else
			printf("vm '%s': migration from %s to %s requested\n", json_str(m, "vm_name"),
			       json_str(m, "source"), json_str(m, "destination"));
		json_decref(m);
		return 0;
	}
	if (!h->json)
		printf("vm '%s': migrating from %s to %s\n", json_str(m, "vm_name"),
		       json_str(m, "source"), json_str(m, "destination"));
	json_decref(m);
	return migration_follow(h, a->pos[0], timeout, false);
}

/* VMs still running on host, and how many of them failed to move since
 * `since` (unix seconds). */
static int drain_left(struct hc *h, const char *host, time_t since, size_t *left, size_t *failed)
{
	json_t *vms = NULL, *vm;
	size_t i;

	*left = *failed = 0;
	if (api_call(h, "GET", "/v1/vms", NULL, &vms, NULL) < 0)
		return -1;
	json_array_foreach(vms, i, vm) {
		if (strcmp(json_str(vm, "host"), host) != 0 || strcmp(json_str(vm, "desired"), "running") != 0 ||
		    strcmp(json_str(vm, "state"), "running") != 0)
			continue;
		(*left)++;
		char *path = api_path("vms", json_str(vm, "id"), "migration");
		json_t *m = NULL;
		if (path && api_call(h, "GET", path, NULL, &m, NULL) == 0 &&
		    strcmp(json_str(m, "state"), "failed") == 0 &&
		    json_is_true(json_object_get(m, "finished")) &&
		    json_integer_value(json_object_get(m, "created")) >= (json_int_t)since) {
			printf("vm '%s' failed to move: %s\n", json_str(vm, "name"), json_str(m, "error"));
			(*failed)++;
		}
		hc_clear(h);    /* a VM never migrated answers 404 */
		json_decref(m);
		free(path);
	}
	json_decref(vms);
	return 0;
}

int cmd_host_drain_migrate(struct hc *h, const struct args *a, long parallel)
{
	const char *host = a->pos[0];
	char *path = api_path("hosts", host, "drain");
	json_t *body = json_pack("{s:b, s:b, s:i}", "drain", 1, "migrate", 1, "parallel", (int)parallel);
	json_t *res = NULL;
	time_t since = time(NULL) - 1;
	size_t left = 0, failed = 0, shown = (size_t)-1;
	int rc = path && body ? api_call(h, "POST", path, body, &res, NULL) : hc_fail(h, "out of memory");

	free(path);
	json_decref(body);
	json_decref(res);
	if (rc < 0 || arg_flag(a, "--no-wait")) {
		if (rc == 0 && !h->json)
			printf("host %s: draining, its VMs migrating %ld at a time\n", host, parallel);
		return rc;
	}
	for (;;) {
		if (drain_left(h, host, since, &left, &failed) < 0)
			return -1;
		if (left != shown && !h->json)
			printf("host %s: %zu running VM(s) left\n", host, left);
		shown = left;
		if (left == 0 || failed == left)
			break;
		hc_sleep_ms(DRAIN_POLL_MS);
	}
	if (failed > 0)
		return hc_fail(h, "host %s: %zu VM(s) could not be moved", host, failed);
	if (!h->json)
		printf("host %s: drained, no running VM left\n", host);
	return 0;
}
