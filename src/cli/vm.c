/*
 * vm.c — `hc vm …`: VMs.  list, show and delete are the shared verbs of
 * resource.c, console is console.c; the rest is here.
 *
 * start, stop and delete only change what the VM should be (the daemon
 * answers 202 and its agent converges); `vm wait` is how a script waits
 * for the outcome.
 */
#include "cli/cli.h"

#include "common/fsutil.h"
#include "common/proc.h"
#include "common/validate.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_TIMEOUT_DEFAULT_S 300
#define WAIT_POLL_MS 250
#define USER_DATA_MAX (64 * 1024)   /* what the daemon accepts */

/* ---- how a VM looks ----------------------------------------------------- */

/* The `key` member of every NIC, comma-separated: a VM's addresses in one cell. */
static char *fmt_nic_member(json_t *vm, const char *key)
{
	json_t *nics = json_object_get(vm, "nics"), *nic;
	char *out = NULL;
	size_t i;

	json_array_foreach(nics, i, nic) {
		const char *v = json_string_value(json_object_get(nic, key));
		char *next;
		if (v == NULL || *v == '\0')
			continue;
		next = out ? str_printf("%s,%s", out, v) : strdup(v);
		free(out);
		if ((out = next) == NULL)
			return NULL;
	}
	return out ? out : strdup("-");
}

/* "tiny (00000001)": the name a user knows and the ID that never changes. */
static char *fmt_image(json_t *vm, const char *key)
{
	return str_printf("%s (%s)", json_str(vm, key), json_str(vm, "image_id"));
}

static const struct column vm_list[] = {
	{ "ID", "id", NULL },
	{ "NAME", "name", NULL },
	{ "STATE", "state", NULL },
	{ "DESIRED", "desired", NULL },
	{ "CPUS", "cpus", NULL },
	{ "MEM", "memory_mib", fmt_mib },
	{ "IMAGE", "image", NULL },
	{ "IPV6", "ipv6", fmt_nic_member },
	{ "IPV4", "ipv4", fmt_nic_member },
	{ 0 },
};

/* "laptop, desk": the names of the VM's keys. */
static char *fmt_key_names(json_t *vm, const char *key)
{
	json_t *keys = json_object_get(vm, key), *k;
	char *out = NULL;
	size_t i;

	json_array_foreach(keys, i, k) {
		char *next = out ? str_printf("%s, %s", out, json_str(k, "name"))
				 : strdup(json_str(k, "name"));
		free(out);
		if ((out = next) == NULL)
			return NULL;
	}
	return out ? out : strdup("-");
}

/* The root disk: its size, or what it is without one. */
static char *fmt_disk_size(json_t *vm, const char *key)
{
	char buf[32];

	if (!json_is_integer(json_object_get(vm, key)))
		return strdup("the image's");
	human_bytes(json_integer_value(json_object_get(vm, key)), buf, sizeof(buf));
	return strdup(buf);
}

/* "10.0 GiB, 1.0 GiB": the data disks' sizes, in the guest's order. */
static char *fmt_disks(json_t *vm, const char *key)
{
	json_t *disks = json_object_get(vm, key), *d;
	char *out = NULL, buf[32];
	size_t i;

	json_array_foreach(disks, i, d) {
		human_bytes(json_integer_value(json_object_get(d, "size")), buf, sizeof(buf));
		char *next = out ? str_printf("%s, %s", out, buf) : strdup(buf);
		free(out);
		if ((out = next) == NULL)
			return NULL;
	}
	return out ? out : strdup("-");
}

static const struct column vm_show[] = {
	{ "id", "id", NULL },
	{ "name", "name", NULL },
	{ "state", "state", NULL },
	{ "desired", "desired", NULL },
	{ "error", "error", NULL },
	{ "cpus", "cpus", NULL },
	{ "memory", "memory_mib", fmt_mib },
	{ "image", "image", fmt_image },
	{ "owner", "owner", NULL },
	{ "host", "host", NULL },
	{ "keys", "keys", fmt_key_names },
	{ "user data", "user_data_size", fmt_bytes },
	{ "config drive", "config_drive", NULL },
	{ "ephemeral", "ephemeral", NULL },
	{ "metadata tokens", "metadata_tokens", NULL },
	{ "disk size", "disk_size", fmt_disk_size },
	{ "data disks", "disks", fmt_disks },
	{ "created", "created", fmt_time },
	{ 0 },
};

/* A NIC's routed prefixes, comma-separated (issue 13). */
static char *fmt_prefixes(json_t *nic, const char *key)
{
	json_t *v;
	char *out = NULL;
	size_t i;

	json_array_foreach(json_object_get(nic, key), i, v) {
		const char *p = json_string_value(v);
		if (p == NULL)
			continue;
		char *next = out ? str_printf("%s,%s", out, p) : strdup(p);
		free(out);
		if ((out = next) == NULL)
			return NULL;
	}
	return out ? out : strdup("-");
}

static const struct column nic_list[] = {
	{ "MAC", "mac", NULL },
	{ "IFNAME", "ifname", NULL },
	{ "NETWORK", "network", NULL },
	{ "IPV6", "ipv6", NULL },
	{ "IPV4", "ipv4", NULL },
	{ "PUBLIC IPV4", "public_ipv4", NULL },
	{ "PREFIXES", "prefixes", fmt_prefixes },
	{ 0 },
};

static void show_nics(json_t *vm)
{
	json_t *nics = json_object_get(vm, "nics");

	if (json_array_size(nics) == 0) {
		printf("\nNICs: none\n");
		return;
	}
	printf("\nNICs:\n");
	print_table(nics, nic_list);
}

const struct resource res_vm = { "vm", "vms", vm_list, vm_show, show_nics,
				  "id,name,state,desired,cpus,memory_mib,image,nics.ipv6,nics.ipv4" };

/* ---- create ------------------------------------------------------------- */

/* --user-data FILE as the API takes it: base64 of the bytes, verbatim. */
static json_t *user_data_b64(struct hc *h, const char *path)
{
	char *data = NULL, *b64;
	size_t len = 0, size;
	json_t *v;

	/* One byte more than allowed, so an oversized file is refused, not cut. */
	if (file_read(path, USER_DATA_MAX + 1, &data, &len) < 0) {
		hc_fail(h, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (len > USER_DATA_MAX) {
		free(data);
		hc_fail(h, "%s: user data is over %d bytes", path, USER_DATA_MAX);
		return NULL;
	}
	size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(size);
	if (b64 == NULL) {
		free(data);
		hc_fail(h, "out of memory");
		return NULL;
	}
	sodium_bin2base64(b64, size, (const unsigned char *)data, len, sodium_base64_VARIANT_ORIGINAL);
	v = json_string(b64);
	free(b64);
	free(data);
	if (v == NULL)
		hc_fail(h, "out of memory");
	return v;
}

/* The request body of `vm create`, from the command line. */
/* --disk-size SIZE and --disk SIZE…: bytes or K/M/G/T; the daemon checks
 * the ranges.  0, or -1 with a usage error. */
static int disks_to_body(struct hc *h, const struct args *a, json_t *body)
{
	const char *v = arg_opt(a, "--disk-size");
	uint64_t size;

	if (v) {
		if (!size_parse(v, &size))
			return hc_usage(h, "vm create: --disk-size '%s' is not a size (e.g. 4G, 512M)", v);
		json_object_set_new(body, "disk_size", json_integer((json_int_t)size));
	}
	if (arg_opt(a, "--disk") == NULL)
		return 0;
	json_t *disks = json_array();
	for (size_t i = 0; disks && (v = arg_opt_nth(a, "--disk", i)); i++) {
		if (!size_parse(v, &size)) {
			json_decref(disks);
			return hc_usage(h, "vm create: --disk '%s' is not a size (e.g. 10G)", v);
		}
		json_array_append_new(disks, json_pack("{s:I}", "size", (json_int_t)size));
	}
	json_object_set_new(body, "disks", disks);
	return 0;
}

static json_t *create_body(struct hc *h, const struct args *a)
{
	long cpus = 0, memory = 0;
	json_t *body, *nets = json_array();
	const char *net;

	if (arg_int(h, a, "--cpus", 1, INT_MAX, &cpus) < 0 ||
	    arg_int(h, a, "--memory", 1, INT_MAX, &memory) < 0) {
		json_decref(nets);
		return NULL;
	}
	for (size_t i = 0; nets && (net = arg_opt_nth(a, "--net", i)); i++) {
		json_t *e = cli_net_element(h, net);   /* NET or NET:rate=SPEC */
		if (e == NULL) {
			json_decref(nets);
			return NULL;
		}
		json_array_append_new(nets, e);
	}
	body = json_pack("{s:s, s:s, s:o, s:b}", "name", a->pos[0], "image", arg_opt(a, "--image"),
			 "networks", nets, "start", !arg_flag(a, "--no-start"));
	/* Absent sizes are left to the daemon's defaults. */
	if (body && cpus)
		json_object_set_new(body, "cpus", json_integer(cpus));
	if (body && memory)
		json_object_set_new(body, "memory_mib", json_integer(memory));
	if (body && arg_flag(a, "--config-drive"))
		json_object_set_new(body, "config_drive", json_true());
	if (body && arg_flag(a, "--ephemeral"))
		json_object_set_new(body, "ephemeral", json_true());
	if (body && arg_opt(a, "--host"))
		json_object_set_new(body, "host", json_string(arg_opt(a, "--host")));
	if (body && arg_opt(a, "--metadata-tokens"))
		json_object_set_new(body, "metadata_tokens", json_string(arg_opt(a, "--metadata-tokens")));
	if (body && arg_opt(a, "--rate")) {
		json_t *limit = cli_limit_json(h, arg_opt(a, "--rate"), "--rate");
		if (limit == NULL) {
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "limit", limit);
	}
	if (body == NULL) {
		hc_usage(h, "arguments must be valid UTF-8 text");
		return NULL;
	}
	/* Without --key the daemon gives the VM all of the owner's keys. */
	if (arg_opt(a, "--key")) {
		json_t *keys = json_array();
		const char *k;
		for (size_t i = 0; keys && (k = arg_opt_nth(a, "--key", i)); i++) {
			if (json_array_append_new(keys, json_string(k)) < 0) {
				json_decref(keys);
				json_decref(body);
				hc_usage(h, "arguments must be valid UTF-8 text");
				return NULL;
			}
		}
		json_object_set_new(body, "keys", keys);
	}
	if (arg_opt(a, "--user-data")) {
		json_t *ud = user_data_b64(h, arg_opt(a, "--user-data"));
		if (ud == NULL) {
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "user_data", ud);
	}
	if (disks_to_body(h, a, body) < 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

int cmd_vm_create(struct hc *h, const struct args *a)
{
	json_t *body, *vm;
	int rc;

	if (arg_opt(a, "--image") == NULL)
		return hc_usage(h, "vm create: --image IMG is required");
	if ((body = create_body(h, a)) == NULL)
		return -1;
	rc = api_call(h, "POST", "/v1/vms", body, &vm, NULL);
	json_decref(body);
	if (rc < 0)
		return -1;
	print_resource(h, &res_vm, vm);
	json_decref(vm);
	return 0;
}

/* PATCH /v1/vms/{ref}: the daemon checks the values. */
int cmd_vm_set(struct hc *h, const struct args *a)
{
	const char *tokens = arg_opt(a, "--metadata-tokens");
	long cpus = 0, memory = 0;
	json_t *body, *vm;
	char *path;
	int rc;

	if (arg_int(h, a, "--cpus", 1, INT_MAX, &cpus) < 0 ||
	    arg_int(h, a, "--memory", 1, INT_MAX, &memory) < 0)
		return -1;
	/* The traffic quota is a resource of its own (usage.c). */
	rc = cli_vm_traffic(h, a);
	if (rc < 0 || (rc > 0 && tokens == NULL && cpus == 0 && memory == 0))
		return rc < 0 ? -1 : 0;
	if (tokens == NULL && cpus == 0 && memory == 0)
		return hc_usage(h, "vm set: nothing to change (--cpus N, --memory MIB,"
				" --metadata-tokens optional|required, --traffic-quota SIZE|none)");
	body = json_object();
	if (body && tokens)
		json_object_set_new(body, "metadata_tokens", json_string(tokens));
	if (body && cpus)
		json_object_set_new(body, "cpus", json_integer(cpus));
	if (body && memory)
		json_object_set_new(body, "memory_mib", json_integer(memory));
	path = api_path("vms", a->pos[0], NULL);
	if (body == NULL || path == NULL || (tokens && !json_object_get(body, "metadata_tokens"))) {
		json_decref(body);
		free(path);
		return hc_usage(h, "arguments must be valid UTF-8 text");
	}
	rc = api_call(h, "PATCH", path, body, &vm, NULL);
	json_decref(body);
	free(path);
	if (rc < 0)
		return -1;
	print_resource(h, &res_vm, vm);
	json_decref(vm);
	return 0;
}

/* hc vm disk grow VM [DISK] SIZE: POST /v1/vms/{ref}/disks/{disk}/grow;
 * DISK is root (the default) or dataN. */
int cmd_vm_disk(struct hc *h, const struct args *a)
{
	const char *disk = a->n_pos == 4 ? a->pos[2] : "root", *size_s = a->pos[a->n_pos - 1];
	uint64_t size;
	char suffix[64];
	json_t *vm = NULL;
	int rc;

	if (strcmp(a->pos[0], "grow") != 0 || a->n_pos < 3)
		return hc_usage(h, "usage: hc vm disk grow VM [DISK] SIZE");
	if (!size_parse(size_s, &size) || size > INT64_MAX)
		return hc_usage(h, "vm disk grow: '%s' is not a size (e.g. 4G, 512M)", size_s);
	/* Disk names are letters and digits; anything else is refused here
	 * rather than escaped into the path. */
	if (strlen(disk) > 16 || strspn(disk, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(disk))
		return hc_usage(h, "vm disk grow: '%s' is not a disk (root, data0, data1, ...)", disk);
	snprintf(suffix, sizeof(suffix), "disks/%s/grow", disk);
	rc = api_call_printed(h, "POST", api_path("vms", a->pos[1], suffix),
			      json_pack("{s:I}", "size", (json_int_t)size), &vm);
	if (rc == 0)
		printf("vm '%s': disk %s grows to %llu bytes\n", a->pos[1], disk,
		       (unsigned long long)size);
	json_decref(vm);
	return rc < 0 ? -1 : 0;
}

/* ---- actions ------------------------------------------------------------ */

/* POST /v1/vms/{ref}/{action}; the answer is the VM as it is now.
 * --force (stop) skips the guest's ACPI shutdown. */
static int vm_action(struct hc *h, const struct args *a, const char *action)
{
	char *path = api_path("vms", a->pos[0], action);
	json_t *body = arg_flag(a, "--force") ? json_pack("{s:b}", "force", 1) : json_object(), *vm;
	int rc;

	if (path == NULL || body == NULL) {
		free(path);
		json_decref(body);
		return hc_fail(h, "out of memory");
	}
	rc = api_call(h, "POST", path, body, &vm, NULL);
	free(path);
	json_decref(body);
	if (rc < 0)
		return -1;
	if (h->json)
		print_json(vm);
	else
		printf("vm '%s' (%s): %s requested; state %s, desired %s\n", json_str(vm, "name"),
		       json_str(vm, "id"), action, json_str(vm, "state"), json_str(vm, "desired"));
	json_decref(vm);
	return 0;
}

int cmd_vm_start(struct hc *h, const struct args *a)  { return vm_action(h, a, "start"); }
int cmd_vm_stop(struct hc *h, const struct args *a)   { return vm_action(h, a, "stop"); }
int cmd_vm_reboot(struct hc *h, const struct args *a) { return vm_action(h, a, "reboot"); }

/* ---- log ---------------------------------------------------------------- */

int cmd_vm_log(struct hc *h, const struct args *a)
{
	long tail = 0;
	char *base = api_path("vms", a->pos[0], "log"), *path;
	struct api_req rq = { .method = "GET", .sink = stdout };
	struct api_resp rs;
	int rc;

	if (base == NULL)
		return hc_fail(h, "out of memory");
	if (arg_int(h, a, "--tail", 1, LONG_MAX, &tail) < 0) {
		free(base);
		return -1;
	}
	path = tail ? str_printf("%s%ctail=%ld", base, strchr(base, '?') ? '&' : '?', tail)
		    : strdup(base);
	free(base);
	if (path == NULL)
		return hc_fail(h, "out of memory");
	/* The log streams to stdout: it is text, the same with or without --json. */
	rq.path = path;
	rc = api_request(h, &rq, &rs);
	api_resp_free(&rs);
	free(path);
	return rc;
}

/* ---- wait --------------------------------------------------------------- */

static const char *const vm_states[] = { "stopped", "starting", "running", "stopping", "error",
					 NULL };

static bool state_known(const char *s)
{
	for (const char *const *k = vm_states; *k; k++)
		if (strcmp(*k, s) == 0)
			return true;
	return false;
}

/* The VM as the API shows it now (NULL: it is gone): 1 when the wait is
 * over, 0 to keep waiting, -1 on failure. */
static int wait_eval(struct hc *h, json_t *vm, const char *ref, const char *state, bool gone)
{
	if (vm == NULL)
		return gone ? 1 : hc_fail(h, "vm '%s' was deleted", ref);
	if (gone)
		return 0;
	const char *now = json_str(vm, "state");
	if (strcmp(now, state) == 0)
		return 1;
	/* A VM in error stays there until someone acts: waiting longer is pointless. */
	if (strcmp(now, "error") == 0)
		return hc_fail(h, "vm '%s' is in error: %s", json_str(vm, "name"),
			       json_str(vm, "error"));
	return 0;
}

/* One look at the VM: as wait_eval. */
static int wait_check(struct hc *h, const char *path, const char *ref, const char *state,
		      bool gone, json_t **vm)
{
	long status;

	json_decref(*vm);
	*vm = NULL;
	if (api_call(h, "GET", path, NULL, vm, &status) < 0) {
		if (gone && status == 404) {
			hc_clear(h);
			return 1;
		}
		return -1;
	}
	return wait_eval(h, *vm, ref, state, gone);
}

struct waiter {
	struct hc *h;
	const char *ref, *id, *state;
	bool gone;
	json_t *vm;                /* the VM as last seen (NULL: gone) */
};

/* An event: the sync's picture or a change of this VM. */
static int wait_event(void *arg, const char *seq, const char *name, json_t *data)
{
	struct waiter *w = arg;
	json_t *vm = NULL, *v;
	size_t i;

	(void)seq;
	if (strcmp(name, "sync") == 0) {
		json_array_foreach(json_object_get(json_object_get(data, "object"), "vms"), i, v)
			if (strcmp(json_str(v, "id"), w->id) == 0)
				vm = v;
	} else if (strcmp(json_str(data, "kind"), "vm") == 0 &&
		   strcmp(json_str(data, "id"), w->id) == 0) {
		vm = json_object_get(data, "object");
		if (json_is_null(vm))
			vm = NULL;
	} else {
		return 1;
	}
	json_decref(w->vm);
	w->vm = json_incref(vm);
	int rc = wait_eval(w->h, w->vm, w->ref, w->state, w->gone);
	return rc > 0 ? 0 : rc < 0 ? -1 : 1;
}

int cmd_vm_wait(struct hc *h, const struct args *a)
{
	const char *state = arg_opt(a, "--state");
	bool gone = arg_flag(a, "--gone");
	long timeout = WAIT_TIMEOUT_DEFAULT_S;
	json_t *vm = NULL;
	char *path, *id = NULL;
	int rc;

	if ((state == NULL) == !gone)
		return hc_usage(h, "vm wait: give one of --state STATE or --gone");
	if (state && !state_known(state))
		return hc_usage(h, "vm wait: unknown state '%s' (stopped, starting, running, "
				"stopping or error)", state);
	if (arg_int(h, a, "--timeout", 0, INT_MAX / 1000, &timeout) < 0)
		return -1;
	if ((path = api_path("vms", a->pos[0], NULL)) == NULL)
		return hc_fail(h, "out of memory");

	long long deadline = now_ms() + timeout * 1000LL;
	rc = wait_check(h, path, a->pos[0], state, gone, &vm);
	/* Then the event stream: the daemon says when the VM changes. */
	if (rc == 0 && (id = strdup(json_str(vm, "id"))) != NULL) {
		struct waiter w = { .h = h, .ref = a->pos[0], .id = id, .state = state, .gone = gone,
				    .vm = json_incref(vm) };
		long long left = deadline - now_ms();
		bool timed_out = false;
		int frc = left > 0 ? events_follow(h, NULL, (long)left, wait_event, &w, &timed_out) : 1;
		json_decref(vm);
		vm = w.vm;
		if (frc == 0)
			rc = 1;
		else if (frc == -1)
			rc = -1;
		else
			hc_clear(h);   /* over time, or no stream: the loop below decides */
	}
	/* Without a stream (an older hcd, too many streams), or once it
	 * ended: look every WAIT_POLL_MS until the deadline. */
	while (rc == 0 && now_ms() < deadline) {
		hc_sleep_ms(WAIT_POLL_MS);
		rc = wait_check(h, path, a->pos[0], state, gone, &vm);
	}
	if (rc == 0)
		rc = hc_fail(h, "vm '%s' is %s after %ld s, not %s", a->pos[0],
			     gone ? "still there" : json_str(vm, "state"), timeout,
			     gone ? "gone" : state);
	if (rc > 0 && h->json && vm)
		print_json(vm);
	json_decref(vm);
	free(id);
	free(path);
	return rc < 0 ? -1 : 0;
}
