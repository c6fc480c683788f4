/*
 * snapshots — disk snapshots of VMs over the API (issue 14 §2):
 *   GET    /v1/vms/{vm}/snapshots                  oldest first
 *   POST   /v1/vms/{vm}/snapshots                  {name} of a stopped or running VM
 *   GET    /v1/vms/{vm}/snapshots/{snap}
 *   POST   /v1/vms/{vm}/snapshots/{snap}/restore   {discard_newer?} of a stopped VM
 *   DELETE /v1/vms/{vm}/snapshots/{snap}           of a stopped VM
 *
 * The VM's owner or an admin (a VM out of scope is 404).  The work is on
 * the VM's disks, so the VM's own host answers (api_vm_here).  Each
 * operation runs on a worker (req_defer) while the agent keeps its hands
 * off the VM (agent_vm_hold) and the rows say what is under way
 * (store.h), so a restart finishes it (agent/snapshots.h); the reply
 * comes when it is done.
 */
#include "api/handlers.h"

#include "agent/snapshots.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "vm/qemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SNAPSHOT_ID_DIGITS 8

static json_t *snapshot_json(const struct snapshot *s)
{
	char id[16];

	snprintf(id, sizeof(id), "%08llx", (unsigned long long)s->id);
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "id", id, "name", s->name,
			 "vm", vm_id_format(s->vm).s, "state", s->state, "live", s->live,
			 "bytes", (json_int_t)s->bytes, "created", (json_int_t)s->created);
}

/* The VM of the path, on this host, with an agent to hold it. */
static bool snap_vm(struct req *r, struct vm *vm)
{
	if (!api_vm_of_path(r, vm))
		return false;
	if (!api_vm_here(r, vm)) {
		vm_free(vm);
		return false;
	}
	if (r->api->agent == NULL) {
		vm_free(vm);
		req_error(r, 503, "unavailable", "this hcd runs no agent for the VM's disks");
		return false;
	}
	return true;
}

static bool snap_of_path(struct req *r, const struct vm *vm, struct snapshot *s)
{
	int rc = store_snapshot_get(r->api->st, vm->id, r->params[1], s);

	if (rc != STORE_OK) {
		req_store_error(r, rc, "snapshot", r->params[1]);
		return false;
	}
	return true;
}

int h_vm_snapshot_list(struct req *r)
{
	struct vm vm = { 0 };
	struct snapshot *v = NULL;
	size_t n = 0;

	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_snapshot_list(r->api->st, vm.id, &v, &n);
	vm_free(&vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "snapshot", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, snapshot_json(&v[i]));
	snapshots_free(v, n);
	return req_json(r, 200, arr);
}

int h_vm_snapshot_get(struct req *r)
{
	struct vm vm = { 0 };
	struct snapshot s = { 0 };

	if (!api_vm_of_path(r, &vm))
		return 0;
	if (snap_of_path(r, &vm, &s)) {
		req_json(r, 200, snapshot_json(&s));
		snapshot_free(&s);
	}
	vm_free(&vm);
	return 0;
}

/* ---- the deferred half -------------------------------------------------- */

struct snap_call {
	struct snap_job *job;
	uint64_t vm;
	int status;          /* of the answer on success */
	struct snapshot before;  /* the row as it was (a delete answers with it) */
};

static void snap_work(void *arg)
{
	struct snap_call *c = arg;

	snapshot_run(c->job);
}

static void snap_finish(struct req *r, void *arg, bool ran)
{
	struct snap_call *c = arg;
	struct snapshot s = { 0 };
	bool ok = ran && c->job->err == NULL;

	/* Not run (hcd stops): the rows say what is under way; the next
	 * start finishes it. */
	if (ran)
		snap_job_settle(r->api->st, c->job, ok);
	agent_vm_release(r->api->agent, c->vm);
	if (!ok) {
		log_warn("vm %s: snapshot '%s': %s", vm_id_format(c->vm).s, c->before.name,
			 c->job->err ? c->job->err : "hcd is stopping");
		req_error(r, 500, "snapshot_failed", "%s", c->job->err ? c->job->err : "hcd is stopping");
	} else if (c->job->op == SNAP_DELETE) {
		free(c->before.state);
		c->before.state = strdup("deleted");
		req_json(r, c->status, snapshot_json(&c->before));
	} else if (store_snapshot_get(r->api->st, c->vm, c->before.name, &s) == STORE_OK) {
		req_json(r, c->status, snapshot_json(&s));
		snapshot_free(&s);
	} else {
		req_error(r, 500, "internal", "store failure");
	}
	snap_job_free(c->job);
	snapshot_free(&c->before);
	free(c);
}

/* An operation that cannot start after all: its marks are taken back
 * (a creation's row goes; rows marked for a restore or delete are ready
 * again: their files were not touched). */
static void snap_unmark(struct store *st, uint64_t vm, const struct snapshot *target, enum snap_op op)
{
	struct snapshot *v = NULL;
	size_t n = 0;

	if (op == SNAP_CREATE || op == SNAP_CREATE_LIVE) {
		store_snapshot_remove(st, target->id);
		return;
	}
	if (store_snapshot_list(st, vm, &v, &n) != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].state, "ready") != 0)
			store_snapshot_ready(st, v[i].id, v[i].bytes);
	snapshots_free(v, n);
}

/*
 * The job of op on the snapshot `target` (marked in the store, the VM
 * held), deferred; when it cannot start, the marks and the hold are
 * taken back.  Returns what the handler returns.
 */
static int snap_start(struct req *r, const struct vm *vm, const struct snapshot *target,
		      enum snap_op op, int status)
{
	struct image im = { 0 };
	struct snapshot *snaps = NULL;
	size_t n = 0;
	char *err = NULL;
	struct snap_call *c = calloc(1, sizeof(*c));
	int rc = 0;

	if (c == NULL || store_image_get_id(r->api->st, vm->image, &im) != STORE_OK ||
	    store_snapshot_list(r->api->st, vm->id, &snaps, &n) != STORE_OK ||
	    (c->job = snap_job_new(r->api->cfg, vm, &im, snaps, n, op, target->id, &err)) == NULL ||
	    (c->before.name = strdup(target->name)) == NULL ||
	    (c->before.state = strdup(target->state)) == NULL) {
		req_error(r, err ? 409 : 500, err ? "conflict" : "internal", "vm '%s': %s", vm->name,
			  err ? err : "cannot prepare the snapshot job");
		snap_unmark(r->api->st, vm->id, target, op);
		agent_vm_release(r->api->agent, vm->id);
		if (c) {
			snap_job_free(c->job);
			snapshot_free(&c->before);
		}
		free(c);
		goto out;
	}
	c->vm = vm->id;
	c->status = status;
	c->before.id = target->id;
	c->before.vm = target->vm;
	c->before.live = target->live;
	c->before.bytes = target->bytes;
	c->before.created = target->created;
	rc = req_defer(r, snap_work, snap_finish, c);
out:
	image_free(&im);
	snapshots_free(snaps, n);
	free(err);
	return rc;
}

/* Hold the VM for the agent; false with a 409 set. */
static bool snap_hold(struct req *r, const struct vm *vm, bool running)
{
	char *err = NULL;

	if (agent_vm_hold(r->api->agent, vm->id, running, &err) == 0)
		return true;
	req_error(r, 409, "conflict", "vm '%s': %s", vm->name, err ? err : "busy");
	free(err);
	return false;
}

/* Bytes the VM's disk files take now: what a new snapshot's layers will
 * hold (the estimate the quota is checked against). */
static long long disks_bytes(const struct config *cfg, const struct vm *vm)
{
	struct vm_paths p;
	struct stat sb;
	long long sum = 0;

	if (vm_paths_init(&p, cfg->state_dir, vm->id) < 0)
		return 0;
	if (stat(p.disk, &sb) == 0)
		sum += (long long)sb.st_blocks * 512;
	for (size_t i = 0; i < vm->n_disks; i++) {
		char *path = vm_data_disk_path(&p, i);
		if (path && stat(path, &sb) == 0)
			sum += (long long)sb.st_blocks * 512;
		free(path);
	}
	vm_paths_free(&p);
	return sum;
}

int h_vm_snapshot_create(struct req *r)
{
	static const char *const keys[] = { "name", NULL };
	struct vm vm = { 0 };
	const char *name;

	if (!only_keys(r, keys) || !get_str(r, "name", true, &name) ||
	    !api_name_check(r, name, SNAPSHOT_ID_DIGITS, "snapshot") || !snap_vm(r, &vm))
		return 0;
	bool running = strcmp(vm.state, "running") == 0 && strcmp(vm.desired, "running") == 0;
	bool stopped = strcmp(vm.state, "stopped") == 0 && strcmp(vm.desired, "stopped") == 0;
	struct snapshot s = { .vm = vm.id, .name = (char *)name, .live = running,
			      .bytes = disks_bytes(r->api->cfg, &vm) };
	struct snapshot old = { 0 };
	int rc;

	if (!running && !stopped) {
		req_error(r, 409, "conflict", "vm '%s' is %s (desired %s): snapshots are taken of a"
			  " stopped or running VM", vm.name, vm.state, vm.desired);
		goto out;
	}
	if (!snap_hold(r, &vm, running))
		goto out;
	rc = store_snapshot_begin(r->api->st, &s);
	if (rc != STORE_OK) {
		agent_vm_release(r->api->agent, vm.id);
		if (rc == STORE_CONFLICT && store_snapshot_get(r->api->st, vm.id, name, &old) == STORE_OK)
			req_error(r, 409, "exists", "vm '%s' has a snapshot '%s' already", vm.name, name);
		else if (rc == STORE_CONFLICT)
			req_error(r, 409, "conflict", "vm '%s' changed state, or has a snapshot operation"
				  " or a migration under way", vm.name);
		else
			req_store_error(r, rc, "snapshot", name);
		snapshot_free(&old);
		goto out;
	}
	s.state = "creating";
	snap_start(r, &vm, &s, running ? SNAP_CREATE_LIVE : SNAP_CREATE, 201);
out:
	vm_free(&vm);
	return 0;
}

/* A restore or a delete: of a stopped VM only. */
static int snap_change(struct req *r, const char *mark, enum snap_op op)
{
	struct vm vm = { 0 };
	struct snapshot s = { 0 }, *v = NULL;
	size_t n = 0;
	json_t *jd = json_object_get(r->json, "discard_newer");

	if (op == SNAP_RESTORE) {
		static const char *const keys[] = { "discard_newer", NULL };
		if (!only_keys(r, keys))
			return 0;
		if (jd && !json_is_null(jd) && !json_is_boolean(jd))
			return req_error(r, 400, "bad_request", "'discard_newer' must be true or false");
	}
	if (!snap_vm(r, &vm))
		return 0;
	if (!snap_of_path(r, &vm, &s))
		goto out;
	if (strcmp(vm.state, "stopped") != 0 || strcmp(vm.desired, "stopped") != 0) {
		req_error(r, 409, "vm_not_stopped", "vm '%s' is %s: stop it first (%s works on a"
			  " stopped VM only)", vm.name, vm.state,
			  op == SNAP_RESTORE ? "a restore" : "deleting a snapshot");
		goto out;
	}
	if (strcmp(s.state, "ready") != 0) {
		req_error(r, 409, "conflict", "snapshot '%s' is %s", s.name, s.state);
		goto out;
	}
	if (op == SNAP_RESTORE && !json_is_true(jd) &&
	    store_snapshot_list(r->api->st, vm.id, &v, &n) == STORE_OK && n > 0 && v[n - 1].id != s.id) {
		req_error(r, 409, "newer_snapshots", "vm '%s' has snapshots newer than '%s' (the newest:"
			  " '%s'); a restore discards them: say discard_newer", vm.name, s.name,
			  v[n - 1].name);
		goto out;
	}
	if (!snap_hold(r, &vm, false))
		goto out;
	int rc = store_snapshot_mark(r->api->st, vm.id, s.id, mark);
	if (rc != STORE_OK) {
		agent_vm_release(r->api->agent, vm.id);
		if (rc == STORE_CONFLICT)
			req_error(r, 409, "conflict", "vm '%s' changed state, or has a snapshot operation"
				  " or a migration under way", vm.name);
		else
			req_store_error(r, rc, "snapshot", r->params[1]);
		goto out;
	}
	snap_start(r, &vm, &s, op, 200);
out:
	snapshots_free(v, n);
	snapshot_free(&s);
	vm_free(&vm);
	return 0;
}

int h_vm_snapshot_restore(struct req *r) { return snap_change(r, "restoring", SNAP_RESTORE); }
int h_vm_snapshot_delete(struct req *r)  { return snap_change(r, "deleting", SNAP_DELETE); }
