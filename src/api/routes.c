/*
 * routes — the API surface as one table (route.h), and the handlers for
 * VMs, networks and the daemon itself.  Images are in images.c, the
 * console in console.c, keys and a VM's user data in keys.c, logins in
 * login.c, users and tokens in accounts.c, the API's description in
 * openapi.c.  docs/API.md describes every row of the table for people,
 * docs/openapi.json for programs (the openapi test holds the two to it).
 */
#include "api/handlers.h"
#include "api/route.h"

#include "api/codec.h"
#include "cluster/cluster.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/netpool.h"
#include "common/validate.h"
#include "net/hostnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VM_CPUS_MAX 64
#define VM_MEMORY_MIN 32
#define VM_MEMORY_MAX (1024 * 1024)
#define VM_NICS_MAX 16
#define VM_KEYS_MAX 64
#define VM_USER_DATA_MAX (64 * 1024)   /* decoded bytes (issue 4: 64 KiB) */
#define VM_DISKS_MAX 8
#define DISK_SIZE_MIN (1LL << 20)
#define DISK_SIZE_MAX (16LL << 40)
#define LOG_TAIL_DEFAULT (256 * 1024)
#define LOG_TAIL_MAX (16 * 1024 * 1024)

/* ---- daemon ------------------------------------------------------------- */

static int h_info(struct req *r)
{
	/* Why this host's agent ran its passes: which path acts on changes
	 * (store notifications vs. the periodic resync) is observable. */
	struct agent_wakeups w = { 0 };
	long long pass_us = 0;

	if (r->api->agent) {
		agent_wakeups(r->api->agent, &w);
		pass_us = agent_last_pass_us(r->api->agent);
	}
	return req_json(r, 200, json_pack("{s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I, s:I}, s:f}",
		"version", HC_VERSION,
		"host", r->api->cfg->host_name,
		"accel", r->api->cfg->accel,
		"schema", store_schema_version(r->api->st),
		"wakeups", "local", (json_int_t)w.local, "notify", (json_int_t)w.notify,
		"resync", (json_int_t)w.resync, "retry", (json_int_t)w.retry,
		"last_pass_ms", (double)pass_us / 1000.0));
}

/* ---- VMs ---------------------------------------------------------------- */

/* "?fields=id,name,…": only those members of each VM (sparse fieldsets,
 * for tables that show a few columns of 10,000 rows); NULL: all. */
static bool list_fields(struct req *r, const char **fields)
{
	const char *f = *fields = req_query(r, "fields");

	while (f && *f) {
		size_t len = strcspn(f, ",");
		if (!vm_json_field_known(f, len)) {
			req_error(r, 400, "bad_request", "'fields': no VM member '%.*s'", (int)len, f);
			return false;
		}
		f += len + (f[len] == ',');
	}
	return true;
}

static int h_vm_list(struct req *r)
{
	struct vm *vms = NULL;
	size_t n = 0;
	const char *fields;
	struct jbuf b = { 0 };
	int rc;

	if (!list_fields(r, &fields))
		return 0;
	/* One snapshot for the VMs and their NICs, keys and disks. */
	store_read_begin(r->api->st);
	rc = store_vm_list(r->api->st, req_scope(r), false, &vms, &n);
	store_read_end(r->api->st);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", NULL);
	/* Written VM by VM as text, not built as one tree: 10,000 VMs are
	 * half a million JSON values, whose making, dumping and freeing cost
	 * several times what reading them from the store does (issue 12 §6).
	 * The bytes are those req_json would send. */
	jbuf_put(&b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			jbuf_put(&b, ",", 1);
		vm_json_write(&vms[i], fields, &b);
	}
	jbuf_put(&b, "]\n", 2);
	vms_free(vms, n);
	if (b.failed) {
		free(b.s);
		return req_error(r, 500, "internal", "out of memory");
	}
	return req_bytes(r, 200, "application/json", b.s, b.len);
}

static int reply_vm(struct req *r, int status, uint64_t id)
{
	struct vm vm = { 0 };
	int rc = store_vm_get_id(r->api->st, id, &vm);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", vm_id_format(id).s);
	req_json(r, status, vm_to_json(&vm));
	vm_free(&vm);
	return 0;
}

/*
 * The keys a new VM gets: the ones named in "keys", else every key its
 * owner has now (issue 4).  Fills vm->keys with IDs only — what
 * store_vm_create reads; false with an error response when one is bad.
 */
static bool vm_create_keys(struct req *r, struct vm *vm)
{
	json_t *jkeys = json_object_get(r->json, "keys"), *v;
	size_t i;

	if (jkeys == NULL || json_is_null(jkeys)) {
		struct key *all = NULL;
		size_t n = 0;
		int rc = store_key_list(r->api->st, vm->owner, &all, &n);
		if (rc != STORE_OK) {
			req_store_error(r, rc, "key", NULL);
			return false;
		}
		vm->keys = n ? calloc(n, sizeof(*vm->keys)) : NULL;
		for (i = 0; vm->keys && i < n; i++)
			vm->keys[i].id = all[i].id;
		vm->n_keys = vm->keys ? n : 0;
		keys_free(all, n);
		return true;
	}
	if (!json_is_array(jkeys) || json_array_size(jkeys) > VM_KEYS_MAX) {
		req_error(r, 400, "bad_request", "'keys' must be an array of at most %d names",
			  VM_KEYS_MAX);
		return false;
	}
	vm->keys = calloc(json_array_size(jkeys) + 1, sizeof(*vm->keys));
	if (vm->keys == NULL) {
		req_error(r, 500, "internal", "out of memory");
		return false;
	}
	json_array_foreach(jkeys, i, v) {
		struct key k = { 0 };
		int rc;
		if (!json_is_string(v)) {
			req_error(r, 400, "bad_request", "'keys' must hold names");
			return false;
		}
		rc = store_key_get(r->api->st, json_string_value(v), req_scope(r), &k);
		if (rc != STORE_OK) {
			req_store_error(r, rc, "key", json_string_value(v));
			return false;
		}
		/* Naming a key twice gives it once. */
		bool dup = false;
		for (size_t j = 0; j < vm->n_keys && !dup; j++)
			dup = vm->keys[j].id == k.id;
		if (!dup)
			vm->keys[vm->n_keys++].id = k.id;
		key_free(&k);
	}
	return true;
}

/* "user_data": base64 (RFC 4648, padded) of at most VM_USER_DATA_MAX bytes;
 * binary-safe, so scripts, cloud-configs and archives all pass verbatim. */
static bool vm_create_user_data(struct req *r, struct vm *vm)
{
	json_t *v = json_object_get(r->json, "user_data");
	const char *b64;
	size_t len, max, out = 0;

	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		req_error(r, 400, "bad_request", "'user_data' must be a base64 string");
		return false;
	}
	b64 = json_string_value(v);
	len = json_string_length(v);
	if (len == 0)
		return true;
	/* Refuse by size before decoding anything. */
	if (len > (VM_USER_DATA_MAX + 2) / 3 * 4) {
		req_error(r, 400, "bad_request", "'user_data' is over %d bytes", VM_USER_DATA_MAX);
		return false;
	}
	max = len / 4 * 3 + 1;
	if ((vm->user_data = malloc(max)) == NULL) {
		req_error(r, 500, "internal", "out of memory");
		return false;
	}
	if (strlen(b64) != len ||
	    sodium_base642bin(vm->user_data, max, b64, len, NULL, &out, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		req_error(r, 400, "bad_request", "'user_data' is not valid base64");
		return false;
	}
	if (out > VM_USER_DATA_MAX) {
		req_error(r, 400, "bad_request", "'user_data' is over %d bytes", VM_USER_DATA_MAX);
		return false;
	}
	vm->user_data_len = out;
	return true;
}

/* A disk size: bytes, a multiple of the 512-byte sector, 1 MiB..16 TiB
 * (qcow2 files are sparse: only what the guest writes takes space). */
static bool disk_size_get(struct req *r, json_t *v, const char *what, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < DISK_SIZE_MIN ||
	    json_integer_value(v) > DISK_SIZE_MAX || json_integer_value(v) % 512 != 0) {
		req_error(r, 400, "bad_request",
			  "%s must be bytes, a multiple of 512 from 1 MiB to 16 TiB", what);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

/*
 * "disk_size" (the root disk: a disk image's overlay grown to it, or a
 * blank root disk for a kernel image) and "disks" (extra empty data disks,
 * [{"size": BYTES}]).  False with a 400 set when one is bad.
 */
static bool vm_create_disks(struct req *r, struct vm *vm, const struct image *im)
{
	json_t *v = json_object_get(r->json, "disk_size"), *d;
	size_t i;

	if (v && !json_is_null(v)) {
		if (!disk_size_get(r, v, "'disk_size'", &vm->disk_size))
			return false;
		/* Shrinking would cut off the end of the image's file system. */
		if (strcmp(im->boot, "disk") == 0 && vm->disk_size < im->size) {
			req_error(r, 400, "bad_request",
				  "'disk_size' %lld is smaller than image '%s' (%lld bytes)",
				  (long long)vm->disk_size, im->name, (long long)im->size);
			return false;
		}
	}
	v = json_object_get(r->json, "disks");
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > VM_DISKS_MAX) {
		req_error(r, 400, "bad_request",
			  "'disks' must be an array of at most %d {\"size\": BYTES}", VM_DISKS_MAX);
		return false;
	}
	if ((vm->disks = calloc(json_array_size(v) + 1, sizeof(*vm->disks))) == NULL) {
		req_error(r, 500, "internal", "out of memory");
		return false;
	}
	json_array_foreach(v, i, d) {
		json_t *size = json_object_get(d, "size");
		if (!json_is_object(d) || json_object_size(d) != 1 || size == NULL) {
			req_error(r, 400, "bad_request", "each of 'disks' must be {\"size\": BYTES}");
			return false;
		}
		if (!disk_size_get(r, size, "the 'size' of a disk", &vm->disks[i].size))
			return false;
		vm->n_disks++;
	}
	return true;
}

/* "optional" or "required" (the metadata service's IMDSv2 setting). */
static bool metadata_tokens_valid(struct req *r, const char *v)
{
	if (strcmp(v, "optional") == 0 || strcmp(v, "required") == 0)
		return true;
	req_error(r, 400, "bad_request", "'metadata_tokens' must be optional or required");
	return false;
}

static int h_vm_create(struct req *r)
{
	static const char *const keys[] = { "name", "image", "cpus", "memory_mib", "networks",
					    "start", "keys", "user_data", "config_drive", "disk_size",
					    "disks", "host", "ephemeral", "metadata_tokens", "limit",
					    NULL };
	const char *name, *image_ref, *pin, *tokens;
	int cpus = 1, memory = 256;
	bool start = true, config_drive = false, ephemeral = false;
	uint64_t net_ids[VM_NICS_MAX];
	size_t n_nets = 0;
	json_t *nets;
	struct image im = { 0 };
	int rc;

	if (!only_keys(r, keys) || !get_str(r, "name", true, &name) ||
	    !get_str(r, "image", true, &image_ref) ||
	    !get_int(r, "cpus", 1, VM_CPUS_MAX, &cpus) ||
	    !get_int(r, "memory_mib", VM_MEMORY_MIN, VM_MEMORY_MAX, &memory) ||
	    !get_str(r, "host", false, &pin) || !get_str(r, "metadata_tokens", false, &tokens))
		return 0;
	if (tokens == NULL)
		tokens = r->api->cfg->metadata_tokens;
	if (!metadata_tokens_valid(r, tokens))
		return 0;
	if (!api_name_check(r, name, VM_ID_STRLEN, "vm"))
		return 0;
	if (pin && !r->admin)
		return req_error(r, 403, "forbidden", "choosing the host is for admins");
	if (pin && !host_name_valid(pin))
		return req_error(r, 400, "bad_request", "'host' is not a host name");
	json_t *je = json_object_get(r->json, "ephemeral");
	if (je && !json_is_null(je)) {
		if (!json_is_boolean(je))
			return req_error(r, 400, "bad_request", "'ephemeral' must be true or false");
		ephemeral = json_is_true(je);
	}
	json_t *js = json_object_get(r->json, "start");
	if (js && !json_is_null(js)) {
		if (!json_is_boolean(js))
			return req_error(r, 400, "bad_request", "'start' must be true or false");
		start = json_is_true(js);
	}
	js = json_object_get(r->json, "config_drive");
	if (js && !json_is_null(js)) {
		if (!json_is_boolean(js))
			return req_error(r, 400, "bad_request", "'config_drive' must be true or false");
		config_drive = json_is_true(js);
	}
	rc = store_image_get(r->api->st, image_ref, req_scope(r), &im);
	if (rc != STORE_OK)
		return req_store_error(r, rc == STORE_NOTFOUND ? STORE_NOTFOUND : rc, "image", image_ref);
	if (strcmp(im.state, "ready") != 0) {
		req_error(r, 409, "conflict", "image '%s' is %s, not ready", image_ref, im.state);
		image_free(&im);
		return 0;
	}

	nets = json_object_get(r->json, "networks");
	if (nets && !json_is_null(nets)) {
		size_t i;
		json_t *v;
		if (!json_is_array(nets) || json_array_size(nets) > VM_NICS_MAX) {
			image_free(&im);
			return req_error(r, 400, "bad_request",
					 "'networks' must be an array of at most %d names", VM_NICS_MAX);
		}
		json_array_foreach(nets, i, v) {
			struct network net = { 0 };
			const char *ref = api_nic_network(v);
			if (ref == NULL) {
				image_free(&im);
				return req_error(r, 400, "bad_request", "'networks' must hold names"
						 " or {\"network\": NAME, \"limit\": …}");
			}
			rc = store_network_get(r->api->st, ref, req_scope(r), &net);
			if (rc != STORE_OK) {
				image_free(&im);
				return req_store_error(r, rc, "network", ref);
			}
			net_ids[n_nets++] = net.id;
			network_free(&net);
		}
	}

	struct vm vm = {
		.name = (char *)name, .owner = r->caller, .image = im.id, .cpus = cpus,
		.memory_mib = memory, .desired = start ? "running" : "stopped",
		.state = "stopped", .config_drive = config_drive, .ephemeral = ephemeral,
		.metadata_tokens_required = strcmp(tokens, "required") == 0,
	};
	bool disks_ok = vm_create_disks(r, &vm, &im);
	struct nic_limit *limits = NULL;
	image_free(&im);
	if (!disks_ok || !vm_create_keys(r, &vm) || !vm_create_user_data(r, &vm) ||
	    !api_nic_limits(r, nets, n_nets, &limits)) {
		free(vm.keys);
		free(vm.user_data);
		free(vm.disks);
		return 0;
	}
	vm.nic_limits = limits;
	struct placement pl = { .cpus = cpus, .memory_mib = memory, .pin = pin };
	cluster_policy(r->api->cluster, &pl);
	rc = store_vm_create_placed(r->api->st, &vm, net_ids, n_nets, &pl);
	free(limits);
	free(vm.keys);
	free(vm.user_data);
	free(vm.disks);
	if (rc == STORE_FULL)
		return req_error(r, 409, "no_capacity", pin ? "host '%s' is not live or has no room for this VM"
				 : "no live host has room for this VM%s", pin ? pin : "");
	if (rc == STORE_NOTFOUND && pin)
		return req_error(r, 404, "not_found", "host '%s' not found", pin);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", name);
	return reply_vm(r, 201, vm.id);
}

/* Resolve the {} of the path to a VM the caller may see. */
static bool vm_resolve(struct req *r, struct vm *vm)
{
	int rc = store_vm_get(r->api->st, req_ref(r), req_scope(r), vm);

	if (rc != STORE_OK) {
		req_store_error(r, rc, "vm", r->params[0]);
		return false;
	}
	return true;
}

static int h_vm_get(struct req *r)
{
	struct vm vm = { 0 };
	bool found;

	store_read_begin(r->api->st);
	found = vm_resolve(r, &vm);
	store_read_end(r->api->st);
	if (!found)
		return 0;
	req_json(r, 200, vm_to_json(&vm));
	vm_free(&vm);
	return 0;
}

/* A resize refused by the store (store_vm_resize, store_vm_disk_grow):
 * the store's reason, with the status that says what to do about it. */
static int resize_refused(struct req *r, int rc)
{
	if (rc == STORE_CONFLICT)
		return req_error(r, 409, "conflict", "%s", store_refusal(r->api->st));
	if (rc == STORE_FULL)
		return req_error(r, 409, "no_capacity", "%s", store_refusal(r->api->st));
	return req_store_error(r, rc, "vm", r->params[0]);
}

/*
 * "cpus" and "memory_mib" of a VM (issue 14 §3): the store checks the
 * owner's quotas, the host's room and a running VM's ceilings, and moves
 * the host's load; the VM's agent applies it (vm/resize.h).  False with
 * the error set when refused.
 */
static bool vm_resize(struct req *r, const struct vm *vm, int cpus, int memory)
{
	struct placement pl = { 0 };
	int rc;

	if (cpus == 0 && memory == 0)
		return true;
	cluster_policy(r->api->cluster, &pl);
	struct vm_resize rs = { .cpus = cpus, .memory_mib = memory, .cpu_ratio = pl.cpu_ratio };
	rc = store_vm_resize(r->api->st, vm->id, &rs);
	if (rc != STORE_OK)
		resize_refused(r, rc);
	return rc == STORE_OK;
}

/* PATCH /v1/vms/{}: the settings that may change on an existing VM. */
static int h_vm_update(struct req *r)
{
	static const char *const keys[] = { "metadata_tokens", "cpus", "memory_mib", NULL };
	struct vm vm = { 0 };
	const char *tokens;
	int cpus = 0, memory = 0;
	int rc = STORE_OK;

	if (!only_keys(r, keys) || !get_str(r, "metadata_tokens", false, &tokens) ||
	    !get_int(r, "cpus", 1, VM_CPUS_MAX, &cpus) ||
	    !get_int(r, "memory_mib", VM_MEMORY_MIN, VM_MEMORY_MAX, &memory))
		return 0;
	if (tokens && !metadata_tokens_valid(r, tokens))
		return 0;
	if (!vm_resolve(r, &vm))
		return 0;
	/* The size first: a refusal leaves the VM exactly as it was. */
	if (!vm_resize(r, &vm, cpus, memory)) {
		vm_free(&vm);
		return 0;
	}
	if (tokens)
		rc = store_vm_set_metadata_tokens(r->api->st, vm.id, strcmp(tokens, "required") == 0);
	if (rc != STORE_OK) {
		vm_free(&vm);
		return req_store_error(r, rc, "vm", r->params[0]);
	}
	rc = reply_vm(r, 200, vm.id);
	vm_free(&vm);
	return rc;
}

/* "root" (the root disk) or "data<N>" (the N-th data disk, from 0), as
 * the files and QEMU's nodes are named; -2 when neither. */
static int disk_ref_parse(const char *ref)
{
	char *end;
	long n;

	if (strcmp(ref, "root") == 0)
		return -1;
	if (strncmp(ref, "data", 4) != 0 || ref[4] < '0' || ref[4] > '9')
		return -2;
	n = strtol(ref + 4, &end, 10);
	return *end == '\0' && n < VM_DISKS_MAX && (n == 0 || ref[4] != '0') ? (int)n : -2;
}

/* POST /v1/vms/{}/disks/{}/grow {"size": BYTES}: only ever larger; the
 * agent grows the file (block_resize while it runs, qemu-img resize at
 * its next start when not). */
static int h_vm_disk_grow(struct req *r)
{
	static const char *const keys[] = { "size", NULL };
	struct vm vm = { 0 };
	int64_t size;
	int disk = disk_ref_parse(r->params[1]), rc;

	if (!only_keys(r, keys))
		return 0;
	if (disk < -1)
		return req_error(r, 400, "bad_request", "a disk is 'root' or 'data0'..'data%d'",
				 VM_DISKS_MAX - 1);
	if (!disk_size_get(r, json_object_get(r->json, "size"), "'size'", &size) || !vm_resolve(r, &vm))
		return 0;
	rc = store_vm_disk_grow(r->api->st, vm.id, disk, size);
	if (rc == STORE_NOTFOUND)
		req_error(r, 404, "not_found", "vm '%s' has no disk '%s'", vm.name, r->params[1]);
	else if (rc != STORE_OK)
		resize_refused(r, rc);
	else
		reply_vm(r, 202, vm.id);
	vm_free(&vm);
	return 0;
}

/* Bodies of verbs that take no fields: empty or {} (a member given is a
 * mistake of the caller's, refused like any unknown one). */
static const char *const no_fields[] = { NULL };

static int set_desired(struct req *r, const char *desired)
{
	struct vm vm = { 0 };
	int rc;

	if (!only_keys(r, no_fields) || !vm_resolve(r, &vm))
		return 0;
	/* A start after a failed start tries again from a clean slate. */
	if (strcmp(desired, "running") == 0 && strcmp(vm.state, "error") == 0)
		store_vm_set_state(r->api->st, vm.id, "stopped", NULL);
	rc = store_vm_set_desired(r->api->st, vm.id, desired);
	if (rc != STORE_OK) {
		vm_free(&vm);
		return req_store_error(r, rc, "vm", r->params[0]);
	}
	uint64_t id = vm.id;
	vm_free(&vm);
	return reply_vm(r, 202, id);
}

static int h_vm_start(struct req *r)  { return set_desired(r, "running"); }
static int h_vm_delete(struct req *r) { return set_desired(r, "deleted"); }

/* {"force": true} skips ACPI: QMP quit at once, then SIGKILL. */
static int h_vm_stop(struct req *r)
{
	static const char *const keys[] = { "force", NULL };
	json_t *jf = json_object_get(r->json, "force");
	struct vm vm = { 0 };
	int rc;

	if (!only_keys(r, keys))
		return 0;
	if (jf && !json_is_null(jf) && !json_is_boolean(jf))
		return req_error(r, 400, "bad_request", "'force' must be true or false");
	if (!vm_resolve(r, &vm))
		return 0;
	rc = store_vm_stop(r->api->st, vm.id, json_is_true(jf));
	uint64_t id = vm.id;
	vm_free(&vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", r->params[0]);
	return reply_vm(r, 202, id);
}

bool api_vm_here(struct req *r, const struct vm *vm)
{
	if (vm->host == NULL || strcmp(vm->host, r->api->cfg->host_name) == 0)
		return true;
	req_error(r, 409, "elsewhere", "vm '%s' is on host '%s': ask that host's API",
		  vm->name, vm->host);
	return false;
}

static int h_vm_reboot(struct req *r)
{
	struct vm vm = { 0 };
	char *err = NULL;

	if (!only_keys(r, no_fields) || !vm_resolve(r, &vm))
		return 0;
	if (!api_vm_here(r, &vm)) {
		/* the error is set */
	} else if (strcmp(vm.state, "running") != 0) {
		req_error(r, 409, "conflict", "vm '%s' is %s, not running", vm.name, vm.state);
	} else if (agent_vm_reboot(r->api->agent, vm.id, &err) < 0) {
		req_error(r, 409, "conflict", "reboot of '%s' failed: %s", vm.name, err);
	} else {
		req_json(r, 202, vm_to_json(&vm));
	}
	free(err);
	vm_free(&vm);
	return 0;
}

static int h_vm_log(struct req *r)
{
	struct vm vm = { 0 };
	const char *tail_s = req_query(r, "tail");
	long long tail = LOG_TAIL_DEFAULT;

	if (tail_s) {
		char *end;
		tail = strtoll(tail_s, &end, 10);
		if (*end || tail <= 0 || tail > LOG_TAIL_MAX)
			return req_error(r, 400, "bad_request", "'tail' must be 1..%d bytes", LOG_TAIL_MAX);
	}
	if (!vm_resolve(r, &vm))
		return 0;
	if (!api_vm_here(r, &vm)) {
		vm_free(&vm);
		return 0;
	}
	char *path = agent_vm_log_path(r->api->agent, vm.id);
	char *text = NULL;
	size_t len = 0;
	if (path == NULL || file_read_tail(path, (size_t)tail, &text, &len) < 0) {
		if (errno != ENOENT)
			req_error(r, 500, "internal", "cannot read the serial log");
		text = strdup("");
		len = 0;
	}
	free(path);
	vm_free(&vm);
	if (req_answered(r)) {
		free(text);
		return 0;
	}
	return req_text(r, 200, text, len);
}

/* ---- networks ----------------------------------------------------------- */

static int h_net_list(struct req *r)
{
	struct network *nets = NULL;
	size_t n = 0;
	int rc = store_network_list(r->api->st, req_scope(r), &nets, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "network", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, network_to_json(&nets[i]));
	networks_free(nets, n);
	api_nets_json_limits(r->api->st, arr);
	return req_json(r, 200, arr);
}

/*
 * Where a network's prefixes may come from (issue 11, item 4; docs/API.md):
 * "ipv6" absent or "auto" takes the first free /64 of the tenant pool
 * (tenant_ipv6_pool, else the installation's random ULA /48), "ipv4"
 * "auto" the first free /24 of tenant_ipv4_pool; a prefix asked for by a
 * member must lie inside a pool, an admin's anywhere.  Either way it must
 * overlap no other network and no route or address of this host — read
 * through netlink on a worker (a host's routing table may be large); the
 * store then decides in the transaction that creates the network.
 */
struct net_create {
	const char *name, *ipv6, *ipv4;   /* ipv6/ipv4: canonical text or NULL (allocate/none) */
	struct nic_limit limit;           /* the default of its NICs (issue 13), when has_limit */
	bool has_limit;
	char c6[INET6_ADDRSTRLEN + 8], c4[INET_ADDRSTRLEN + 8];
	bool want4;
	struct prefix *pool6, *pool4, *host;
	size_t n_pool6, n_pool4, n_host;
	char *err;                        /* the host's routes could not be read */
};

static void net_create_free(struct net_create *nc)
{
	free(nc->pool6);
	free(nc->pool4);
	free(nc->host);
	free(nc->err);
	free(nc);
}

static void net_create_work(void *arg)
{
	struct net_create *nc = arg;

	if (hostnet_prefixes(&nc->host, &nc->n_host, &nc->err) < 0)
		nc->n_host = 0;
}

static void net_create_finish(struct req *r, void *arg, bool ran)
{
	struct net_create *nc = arg;
	struct net_policy pol = { .host = nc->host, .n_host = nc->n_host, .pool6 = nc->pool6,
				  .n_pool6 = nc->n_pool6, .pool4 = nc->pool4, .n_pool4 = nc->n_pool4,
				  .want_ipv4 = nc->want4 };
	struct network net = { .name = (char *)nc->name, .owner = r->caller, .ipv6 = (char *)nc->ipv6,
			       .ipv4 = (char *)nc->ipv4, .limit = nc->has_limit ? &nc->limit : NULL };
	struct network out = { 0 };
	int rc;

	if (!ran || nc->err) {
		if (ran)
			req_error(r, 503, "unavailable", "%s", nc->err);
		net_create_free(nc);
		return;
	}
	rc = store_network_allocate(r->api->st, &net, &pol);
	if (rc == STORE_CONFLICT)
		req_error(r, 409, "conflict", "%s", pol.why[0] ? pol.why : "a network of that name exists");
	else if (rc == STORE_FULL && pol.why[0])
		req_error(r, 409, "exhausted", "%s", pol.why);
	else if (rc != STORE_OK)
		req_store_error(r, rc, "network", nc->name);
	else if ((rc = store_network_get(r->api->st, net_id_format(net.id).s, OWNER_ANY, &out)) != STORE_OK)
		req_store_error(r, rc, "network", nc->name);
	else
		req_json(r, 201, api_net_json_limit(r->api->st, network_to_json(&out), out.id));
	network_free(&out);
	net_create_free(nc);
}

/* The operator's pools of one family; none configured (IPv6): the ULA. */
static bool net_pools(struct req *r, struct net_create *nc)
{
	char bad[64], ula[64];

	if (!prefix_list_parse(r->api->cfg->tenant_ipv6_pool, AF_INET6, 64, &nc->pool6,
			       &nc->n_pool6, bad) ||
	    !prefix_list_parse(r->api->cfg->tenant_ipv4_pool, AF_INET, 30, &nc->pool4,
			       &nc->n_pool4, bad)) {
		req_error(r, 500, "internal", "hcd.conf: a tenant pool holds '%s'", bad);
		return false;
	}
	if (nc->n_pool6 == 0) {
		int rc = store_ula_prefix(r->api->st, ula, sizeof(ula));
		if (rc != STORE_OK || !prefix_list_parse(ula, AF_INET6, 64, &nc->pool6, &nc->n_pool6, bad)) {
			req_store_error(r, rc == STORE_OK ? STORE_ERR : rc, "network", nc->name);
			return false;
		}
	}
	return true;
}

/* A member's prefix must come from a pool. */
static bool net_in_pool(struct req *r, const char *asked, const struct prefix *pools, size_t n,
			const char *key, const char *setting)
{
	struct prefix p;
	char list[256] = "", t[64];

	if (r->admin || asked == NULL || (prefix_from_text(asked, &p) &&
					  prefix_find_container(&p, pools, n)))
		return true;
	for (size_t i = 0; i < n; i++) {
		prefix_text(&pools[i], t, sizeof(t));
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", t);
	}
	if (n == 0)
		req_error(r, 403, "forbidden", "'%s': members get no IPv4 subnet unless %s is set",
			  key, setting);
	else
		req_error(r, 403, "forbidden", "'%s' must lie in the tenant pool (%s), or be left out",
			  key, list);
	return false;
}

static int h_net_create(struct req *r)
{
	static const char *const keys[] = { "name", "ipv6", "ipv4", "limit", NULL };
	const char *name, *ipv6, *ipv4;
	struct nic_limit limit;
	bool has_limit;
	struct in6_addr p6;
	struct in_addr p4;
	unsigned len4;
	struct net_create *nc;

	if (!only_keys(r, keys) || !get_str(r, "name", true, &name) ||
	    !get_str(r, "ipv6", false, &ipv6) || !get_str(r, "ipv4", false, &ipv4) ||
	    !api_body_limit(r, r->caller, &limit, &has_limit))
		return 0;
	if (!api_name_check(r, name, NET_ID_STRLEN, "network"))
		return 0;
	if (ipv6 && strcmp(ipv6, "auto") != 0 && !ipv6_prefix64_parse(ipv6, &p6))
		return req_error(r, 400, "bad_request",
				 "'ipv6' must be a /64 prefix, e.g. 2001:db8:1::/64, or \"auto\"");
	if (ipv4 && strcmp(ipv4, "auto") != 0 && !ipv4_cidr_parse(ipv4, &p4, &len4))
		return req_error(r, 400, "bad_request",
				 "'ipv4' must be a subnet /8../30 with host bits zero, e.g. 10.0.0.0/24,"
				 " or \"auto\"");
	if ((nc = calloc(1, sizeof(*nc))) == NULL)
		return req_error(r, 500, "internal", "out of memory");
	nc->name = name;
	nc->limit = limit;
	nc->has_limit = has_limit;
	/* Canonical text, so equal prefixes compare equal. */
	if (ipv6 && strcmp(ipv6, "auto") != 0) {
		char a6[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &p6, a6, sizeof(a6));
		snprintf(nc->c6, sizeof(nc->c6), "%s/64", a6);
		nc->ipv6 = nc->c6;
	}
	if (ipv4 && strcmp(ipv4, "auto") != 0) {
		char a4[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &p4, a4, sizeof(a4));
		snprintf(nc->c4, sizeof(nc->c4), "%s/%u", a4, len4);
		nc->ipv4 = nc->c4;
	}
	nc->want4 = ipv4 && strcmp(ipv4, "auto") == 0;
	if (!net_pools(r, nc) ||
	    !net_in_pool(r, nc->ipv6, nc->pool6, nc->n_pool6, "ipv6", "") ||
	    !net_in_pool(r, nc->ipv4, nc->pool4, nc->n_pool4, "ipv4", "tenant_ipv4_pool")) {
		net_create_free(nc);
		return 0;
	}
	return req_defer(r, net_create_work, net_create_finish, nc);
}

static int h_net_get(struct req *r)
{
	struct network net = { 0 };
	int rc = store_network_get(r->api->st, req_ref(r), req_scope(r), &net);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "network", r->params[0]);
	req_json(r, 200, api_net_json_limit(r->api->st, network_to_json(&net), net.id));
	network_free(&net);
	return 0;
}

static int h_net_delete(struct req *r)
{
	struct network net = { 0 };
	json_t *j = NULL;
	int rc = store_network_get(r->api->st, req_ref(r), req_scope(r), &net);

	/* The answer is the network as it was, its default limit included. */
	if (rc == STORE_OK)
		j = api_net_json_limit(r->api->st, network_to_json(&net), net.id);
	if (rc == STORE_OK)
		rc = store_network_delete(r->api->st, net.id);
	if (rc == STORE_CONFLICT)
		req_error(r, 409, "in_use", "network '%s' still has NICs", r->params[0]);
	else if (rc != STORE_OK)
		req_store_error(r, rc, "network", r->params[0]);
	else
		req_json(r, 200, json_incref(j));
	json_decref(j);
	network_free(&net);
	return 0;
}

/* ---- the table ---------------------------------------------------------- */

const struct route api_routes[] = {
	{ "GET",    "/v1/info",                  h_info,           BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/openapi.json",          h_openapi,        BODY_NONE, NULL, NULL, ROUTE_ANON },
	{ "GET",    "/metrics",                  h_metrics,        BODY_NONE, NULL, NULL, ROUTE_METRICS },
	{ "GET",    "/v1/events",                h_events,         BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/audit",                 h_audit_list,     BODY_NONE, NULL, NULL, ROUTE_ADMIN },

	{ "GET",    "/v1/vms",                   h_vm_list,        BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms",                   h_vm_create,      BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}",                h_vm_get,         BODY_NONE, NULL, NULL, false },
	{ "DELETE", "/v1/vms/{}",                h_vm_delete,      BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/vms/{}",                h_vm_update,      BODY_JSON, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/start",          h_vm_start,       BODY_JSON, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/stop",           h_vm_stop,        BODY_JSON, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/reboot",         h_vm_reboot,      BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/log",            h_vm_log,         BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/migrate",        h_vm_migrate,     BODY_JSON, NULL, NULL, ROUTE_ADMIN },
	{ "GET",    "/v1/vms/{}/migration",      h_vm_migration,   BODY_NONE, NULL, NULL, ROUTE_ADMIN },
	{ "POST",   "/v1/vms/{}/console",        h_vm_console,     BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/console",        h_vm_console_ws,  BODY_NONE, NULL, NULL,
	  ROUTE_USER | ROUTE_WEBSOCKET },
	{ "POST",   "/v1/vms/{}/nics",           h_vm_nic_add,     BODY_JSON, NULL, NULL, false },
	{ "DELETE", "/v1/vms/{}/nics/{}",        h_vm_nic_remove,  BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/vms/{}/nics/{}",        h_vm_nic_update,  BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/stats",          h_vm_stats,       BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/vms/{}/traffic",        h_vm_traffic_update, BODY_JSON, NULL, NULL, ROUTE_ADMIN },
	{ "POST",   "/v1/vms/{}/disks/{}/grow",  h_vm_disk_grow,   BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/rules",          h_vm_rule_list,   BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/rules",          h_vm_rule_add,    BODY_JSON, NULL, NULL, false },
	{ "DELETE", "/v1/vms/{}/rules/{}",       h_vm_rule_delete, BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/snapshots",      h_vm_snapshot_list,   BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/snapshots",      h_vm_snapshot_create, BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/snapshots/{}",   h_vm_snapshot_get,    BODY_NONE, NULL, NULL, false },
	{ "DELETE", "/v1/vms/{}/snapshots/{}",   h_vm_snapshot_delete, BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/snapshots/{}/restore", h_vm_snapshot_restore, BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/user-data",      h_vm_user_data,   BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/vms/{}/prefixes",       h_vm_prefix_list, BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/prefixes",       h_vm_prefix_add,  BODY_JSON, NULL, NULL, false },
	{ "DELETE", "/v1/vms/{}/prefixes/{}",    h_vm_prefix_remove, BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/vms/{}/ips",            h_vm_ip_attach,   BODY_JSON, NULL, NULL, false },
	{ "DELETE", "/v1/vms/{}/ips/{}",         h_vm_ip_detach,   BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/ips",                   h_ip_list,        BODY_NONE, NULL, NULL, false },

	{ "GET",    "/v1/images",                h_image_list,     BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/images",                h_image_create,   BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/images/{}",             h_image_get,      BODY_NONE, NULL, NULL, false },
	{ "DELETE", "/v1/images/{}",             h_image_delete,   BODY_NONE, NULL, NULL, false },
	{ "PUT",    "/v1/images/{}/files/{}",    h_image_upload,   BODY_STREAM,
	  h_image_upload_begin, h_image_upload_chunk, false },
	{ "POST",   "/v1/images/{}/finalize",    h_image_finalize, BODY_JSON, NULL, NULL, false },

	{ "GET",    "/v1/networks",              h_net_list,       BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/networks",              h_net_create,     BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/networks/{}",           h_net_get,        BODY_NONE, NULL, NULL, false },
	{ "DELETE", "/v1/networks/{}",           h_net_delete,     BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/networks/{}",           h_net_update,     BODY_JSON, NULL, NULL, false },

	{ "GET",    "/v1/hosts",                 h_host_list,      BODY_NONE, NULL, NULL, ROUTE_ADMIN },
	{ "GET",    "/v1/hosts/{}",              h_host_get,       BODY_NONE, NULL, NULL, ROUTE_ADMIN },
	{ "POST",   "/v1/hosts/{}/drain",        h_host_drain,     BODY_JSON, NULL, NULL, ROUTE_ADMIN },

	{ "POST",   "/v1/login",                 h_login,          BODY_JSON, NULL, NULL, ROUTE_ANON },
	{ "POST",   "/v1/logout",                h_logout,         BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/whoami",                h_whoami,         BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/tokens",                h_token_list,     BODY_NONE, NULL, NULL, false },
	{ "DELETE", "/v1/tokens/{}",             h_token_delete,   BODY_NONE, NULL, NULL, false },
	{ "GET",    "/v1/users",                 h_user_list,      BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/users",                 h_user_create,    BODY_JSON, NULL, NULL, true },
	{ "GET",    "/v1/users/{}",              h_user_get,       BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/users/{}",              h_user_update,    BODY_JSON, NULL, NULL, false },
	{ "DELETE", "/v1/users/{}",              h_user_delete,    BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/users/{}/password",     h_user_password,  BODY_JSON, NULL, NULL, false },
	{ "POST",   "/v1/users/{}/otp",          h_user_otp_enable, BODY_JSON, NULL, NULL, false },
	{ "DELETE", "/v1/users/{}/otp",          h_user_otp_disable, BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/users/{}/quota",        h_user_quota_get, BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/users/{}/quota",        h_user_quota_set, BODY_JSON, NULL, NULL, ROUTE_ADMIN },
	{ "GET",    "/v1/auth/backoff",          h_auth_backoff,   BODY_NONE, NULL, NULL, true },
	{ "GET",    "/v1/users/{}/traffic",      h_user_traffic_get, BODY_NONE, NULL, NULL, false },
	{ "PATCH",  "/v1/users/{}/traffic",      h_user_traffic_update, BODY_JSON, NULL, NULL, ROUTE_ADMIN },
	{ "GET",    "/v1/usage",                 h_usage,          BODY_NONE, NULL, NULL, false },

	{ "GET",    "/v1/keys",                  h_key_list,       BODY_NONE, NULL, NULL, false },
	{ "POST",   "/v1/keys",                  h_key_create,     BODY_JSON, NULL, NULL, false },
	{ "GET",    "/v1/keys/{}",               h_key_get,        BODY_NONE, NULL, NULL, false },
	{ "DELETE", "/v1/keys/{}",               h_key_delete,     BODY_NONE, NULL, NULL, false },

	/* The dashboard (web.c): files anyone may load; its data comes from
	 * the API above with the user's token. */
	{ "GET",    "/",                         h_web_index,      BODY_NONE, NULL, NULL,
	  ROUTE_ANON | ROUTE_PAGE },
	{ "GET",    "/ui/*",                     h_web_file,       BODY_NONE, NULL, NULL,
	  ROUTE_ANON | ROUTE_PAGE },
};

const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);
