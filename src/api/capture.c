/*
 * capture — an image made from a stopped VM's root disk (issue 14 §2):
 *   POST /v1/images  {"name", "from_vm", "visibility"?}  → 201, state "importing"
 * then, on a worker, the disk's whole chain (image, snapshot layers, top)
 * is flattened by qemu-img (as the VM's user, limited) into one qcow2
 * with no backing, which enters the store like every image does
 * (image/files.h: sha256, qemu-img info and check as image_user, placed
 * read-only under its hash); the row turns "ready" (counted in the
 * caller's image_bytes) or "error" with the reason.
 *
 * The VM stays held (agent_vm_hold) until the copy is made, so it cannot
 * start meanwhile.  A restart of hcd during a capture leaves the image in
 * "error" (image/import.h: importer_resume), never half made.
 */
#include "api/handlers.h"

#include "agent/snapshots.h"
#include "api/codec.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/sha256.h"
#include "image/files.h"
#include "vm/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct capture {
	struct api_ctx *api;
	struct snap_job *job;
	uint64_t vm, image;
	char *state_dir, *image_user, *staging, *copy;
	/* out */
	bool placed;
	char sha[SHA256_HEX_LEN + 1];
	struct disk_info info;
};

static void capture_free(struct capture *c)
{
	snap_job_free(c->job);
	free(c->state_dir);
	free(c->image_user);
	free(c->staging);
	free(c->copy);
	free(c);
}

/* The flattened copy, verified and placed as image/files.h says. */
static int capture_place(struct capture *c)
{
	char *disk = str_printf("%s/disk", c->staging);
	struct image_parts parts;
	struct sha256_stream hs;
	struct stat sb;
	int fd = -1, rc = -1;

	image_parts_of(false, false, &parts);
	if (disk == NULL || mkdir_p(c->staging, 0700) < 0 || rename(c->copy, disk) < 0 ||
	    (fd = open(disk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fchown(fd, 0, 0) < 0 ||
	    fchmod(fd, 0444) < 0 || fstat(fd, &sb) < 0) {
		c->job->err = str_printf("cannot stage the copy: %s", strerror(errno));
		goto out;
	}
	sha256_begin(&hs);
	if (sha256_update_fd(&hs, fd, -1) != (long long)sb.st_size) {
		c->job->err = strdup("cannot read the copy");
		goto out;
	}
	sha256_final_hex(&hs, c->sha);
	if (disk_inspect(fd, c->image_user, &c->info, &c->job->err) < 0)
		goto out;
	parts.pinned = true;
	parts.dev[0] = sb.st_dev;
	parts.ino[0] = sb.st_ino;
	if (image_files_place(c->state_dir, c->staging, c->sha, &parts) < 0) {
		c->job->err = str_printf("cannot store the image: %s", strerror(errno));
		goto out;
	}
	c->placed = true;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(disk);
	return rc;
}

static void capture_work(void *arg)
{
	struct capture *c = arg;

	if (snapshot_flatten(c->job, c->copy) == 0)
		capture_place(c);
	file_remove(c->copy);
}

static void capture_done(void *arg, bool ran)
{
	struct capture *c = arg;
	struct store *st = c->api->st;
	struct image im = { 0 };
	int refs = 0;

	agent_vm_release(c->api->agent, c->vm);
	if (!ran || c->job->err) {
		const char *why = c->job->err ? c->job->err : "hcd stopped during the capture";
		log_warn("image %08llx from vm %s: %s", (unsigned long long)c->image,
			 vm_id_format(c->vm).s, why);
		store_image_fail(st, c->image, why);
		dir_remove_tree(c->staging);
		goto out;
	}
	int rc = store_image_finalize(st, c->image, c->sha, c->info.format, c->info.virtual_size);
	if (rc != STORE_OK)
		store_image_fail(st, c->image, rc == STORE_QUOTA ? store_refusal(st) : "store failure");
	else
		log_info("image %08llx captured from vm %s: %s, sha256 %s", (unsigned long long)c->image,
			 vm_id_format(c->vm).s, c->info.format, c->sha);
	/* Deleted meanwhile (or refused): nothing else may hold the files. */
	if ((rc != STORE_OK || store_image_get_id(st, c->image, &im) != STORE_OK) &&
	    store_image_sha_refs(st, c->sha, c->image, &refs) == STORE_OK && refs == 0) {
		image_files_release(c->sha);
		c->placed = false;
		image_files_remove(c->state_dir, c->sha);
	}
	image_free(&im);
out:
	if (c->placed)
		image_files_release(c->sha);
	capture_free(c);
}

int h_image_capture(struct req *r, const char *name, const char *from_vm, const char *visibility)
{
	struct vm vm = { 0 };
	struct image base = { 0 };
	struct capture *c = NULL;
	char *err = NULL;
	int rc = store_vm_get(r->api->st, from_vm, req_scope(r), &vm);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", from_vm);
	if (!api_vm_here(r, &vm))
		goto out;
	if (r->api->agent == NULL || r->api->workers == NULL) {
		req_error(r, 503, "unavailable", "this hcd runs no agent for the VM's disks");
		goto out;
	}
	if (strcmp(vm.state, "stopped") != 0 || strcmp(vm.desired, "stopped") != 0) {
		req_error(r, 409, "vm_not_stopped", "vm '%s' is %s: an image is made of a stopped VM",
			  vm.name, vm.state);
		goto out;
	}
	struct snapshot *snaps = NULL;
	size_t n = 0;
	bool unfinished = store_snapshot_list(r->api->st, vm.id, &snaps, &n) != STORE_OK;
	for (size_t i = 0; i < n; i++)
		unfinished |= strcmp(snaps[i].state, "ready") != 0;
	snapshots_free(snaps, n);
	if (unfinished) {
		req_error(r, 409, "conflict", "vm '%s' has a snapshot operation under way", vm.name);
		goto out;
	}
	if (store_image_get_id(r->api->st, vm.image, &base) != STORE_OK) {
		req_error(r, 500, "internal", "store failure");
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL ||
	    (c->job = snap_job_new(r->api->cfg, &vm, &base, NULL, 0, SNAP_CREATE, 0, &err)) == NULL) {
		req_error(r, err ? 409 : 500, err ? "conflict" : "internal", "vm '%s': %s", vm.name,
			  err ? err : "out of memory");
		goto out;
	}
	if (strcmp(c->job->disks[0].node, "disk") != 0) {
		req_error(r, 409, "no_root_disk", "vm '%s' has no root disk (a kernel image without"
			  " --disk-size)", vm.name);
		goto out;
	}
	if (agent_vm_hold(r->api->agent, vm.id, false, &err) < 0) {
		req_error(r, 409, "conflict", "vm '%s': %s", vm.name, err);
		goto out;
	}
	char source[32];
	snprintf(source, sizeof(source), "vm:%s", vm_id_format(vm.id).s);
	struct image im = { .name = (char *)name, .owner = r->caller, .format = "pending",
			    .boot = "disk", .state = "importing", .visibility = (char *)visibility,
			    .source = source, .import_host = r->api->cfg->host_name };
	rc = store_image_create(r->api->st, &im);
	if (rc != STORE_OK) {
		agent_vm_release(r->api->agent, vm.id);
		req_store_error(r, rc, "image", name);
		goto out;
	}
	c->api = r->api;
	c->vm = vm.id;
	c->image = im.id;
	if ((c->state_dir = strdup(r->api->cfg->state_dir)) == NULL ||
	    (c->image_user = strdup(r->api->cfg->image_user)) == NULL ||
	    (c->staging = image_staging_dir(r->api->cfg->state_dir, im.id)) == NULL ||
	    (c->copy = str_printf("%s/capture-%08llx.qcow2", c->job->paths.dir,
				  (unsigned long long)im.id)) == NULL ||
	    worker_submit(r->api->workers, capture_work, capture_done, c) < 0) {
		agent_vm_release(r->api->agent, vm.id);
		store_image_fail(r->api->st, im.id, "cannot start the capture");
	} else {
		c = NULL; /* the worker's */
	}
	struct image out = { 0 };
	if (store_image_get_id(r->api->st, im.id, &out) == STORE_OK)
		req_json(r, 201, image_to_json(&out));
	else
		req_error(r, 500, "internal", "store failure");
	image_free(&out);
out:
	if (c)
		capture_free(c);
	free(err);
	image_free(&base);
	vm_free(&vm);
	return 0;
}
