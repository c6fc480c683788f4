/* agent/snapshots — see snapshots.h. */
#include "agent/snapshots.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "vm/identity.h"
#include "vm/qemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_TIMEOUT_DEFAULT_S 600

/* The VM's disks as launch.c makes them: the root disk when it has one
 * (a disk image's overlay, or a kernel image's blank disk of
 * --disk-size), then the data disks. */
static int job_disks(struct snap_job *j, const struct vm *vm, const struct image *im)
{
	bool disk_image = strcmp(im->boot, "disk") == 0;
	bool root = disk_image || vm->disk_size > 0;

	j->disks = calloc(vm->n_disks + 2, sizeof(*j->disks));
	if (j->disks == NULL)
		return -1;
	if (root) {
		struct snap_disk *d = &j->disks[j->n_disks++];
		long long size = vm->disk_size;
		snprintf(d->node, sizeof(d->node), "disk");
		if (disk_image && im->size > size)
			size = im->size;
		d->size = size;
		if ((d->top = strdup(j->paths.disk)) == NULL)
			return -1;
	}
	for (size_t i = 0; i < vm->n_disks; i++) {
		struct snap_disk *d = &j->disks[j->n_disks++];
		snprintf(d->node, sizeof(d->node), "data%zu", i);
		d->size = vm->disks[i].size;
		if ((d->top = vm_data_disk_path(&j->paths, i)) == NULL)
			return -1;
	}
	return 0;
}

struct snap_job *snap_job_new(const struct config *cfg, const struct vm *vm, const struct image *im,
			      const struct snapshot *snaps, size_t n, enum snap_op op, uint64_t target,
			      char **err)
{
	struct snap_job *j = calloc(1, sizeof(*j));

	*err = NULL;
	if (j == NULL || vm_paths_init(&j->paths, cfg->state_dir, vm->id) < 0 ||
	    job_disks(j, vm, im) < 0)
		goto oom;
	if (j->n_disks == 0) {
		*err = strdup("the VM has no disk");
		goto fail;
	}
	/* The root disk of a disk image lies on the image (launch.c). */
	if (strcmp(im->boot, "disk") == 0 && strcmp(j->disks[0].node, "disk") == 0) {
		if (im->sha256 == NULL) {
			*err = strdup("the VM's image is not available");
			goto fail;
		}
		if ((j->base = image_file(cfg->state_dir, im->sha256, "disk")) == NULL ||
		    (j->base_format = strdup(im->format)) == NULL)
			goto oom;
	}
	j->op = op;
	j->target = target;
	identity_tool(cfg->qemu_uid_base, cfg->qemu_uid_count, vm->id, &j->tool);
	j->copy_timeout_s = cfg->snapshot_copy_timeout > 0 ? cfg->snapshot_copy_timeout
							    : COPY_TIMEOUT_DEFAULT_S;
	if ((j->chain = calloc(n + 1, sizeof(*j->chain))) == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++)
		j->chain[i] = snaps[i].id;
	j->n_chain = n;
	return j;
oom:
	*err = strdup("out of memory");
fail:
	snap_job_free(j);
	return NULL;
}

void snap_job_settle(struct store *st, struct snap_job *j, bool ok)
{
	long k = snap_chain_index(j->chain, j->n_chain, j->target);

	switch (j->op) {
	case SNAP_CREATE:
	case SNAP_CREATE_LIVE:
		if (ok) {
			store_snapshot_ready(st, j->target, j->bytes);
			break;
		}
		/* A live creation undid itself in QEMU and on disk; a
		 * stopped one is undone here. */
		if (j->op == SNAP_CREATE)
			snapshot_undo_create(j);
		store_snapshot_remove(st, j->target);
		break;
	case SNAP_RESTORE:
		if (!ok || k < 0)
			break;
		for (size_t i = (size_t)k + 1; i < j->n_chain; i++)
			store_snapshot_remove(st, j->chain[i]);
		store_snapshot_ready(st, j->target, j->bytes);
		break;
	case SNAP_DELETE:
		if (ok)
			store_snapshot_remove(st, j->target);
		break;
	}
}

/* One unfinished operation of vm, run again to its end. */
static void recover_one(struct store *st, const struct config *cfg, const struct vm *vm,
			const struct snapshot *snaps, size_t n, const struct snapshot *s)
{
	struct image im = { 0 };
	struct snap_job *j = NULL;
	struct vm_paths p = { 0 };
	char *err = NULL;
	enum snap_op op = strcmp(s->state, "restoring") == 0 ? SNAP_RESTORE
			  : strcmp(s->state, "deleting") == 0 ? SNAP_DELETE : SNAP_CREATE;

	/* A live creation whose QEMU still runs is finished in QEMU (the
	 * transaction may or may not have happened); with QEMU gone, the
	 * files alone say what is left to do. */
	if (op == SNAP_CREATE && s->live && vm_paths_init(&p, cfg->state_dir, vm->id) == 0 &&
	    qemu_running_pid(&p) > 0)
		op = SNAP_CREATE_LIVE;
	vm_paths_free(&p);
	if (store_image_get_id(st, vm->image, &im) != STORE_OK ||
	    (j = snap_job_new(cfg, vm, &im, snaps, n, op, s->id, &err)) == NULL) {
		log_warn("vm %s: snapshot '%s' stays %s: %s", vm->name, s->name, s->state,
			 err ? err : "its image is gone");
		goto out;
	}
	bool ok = snapshot_run(j) == 0;
	if (ok)
		log_info("vm %s: snapshot '%s': finished what a restart interrupted (%s)", vm->name,
			 s->name, s->state);
	else
		log_warn("vm %s: snapshot '%s' (%s): %s", vm->name, s->name, s->state, j->err);
	snap_job_settle(st, j, ok);
out:
	snap_job_free(j);
	image_free(&im);
	free(err);
}

void snapshots_recover(struct store *st, const struct config *cfg)
{
	struct snapshot *todo = NULL;
	size_t n_todo = 0;

	if (store_snapshot_unfinished(st, &todo, &n_todo) != STORE_OK) {
		log_warn("snapshots: cannot list unfinished operations");
		return;
	}
	for (size_t i = 0; i < n_todo; i++) {
		struct vm vm = { 0 };
		struct snapshot *snaps = NULL, *s = NULL;
		size_t n = 0;
		if (store_vm_get_id(st, todo[i].vm, &vm) != STORE_OK)
			continue;
		if ((vm.host == NULL || strcmp(vm.host, cfg->host_name) == 0) &&
		    store_snapshot_list(st, vm.id, &snaps, &n) == STORE_OK) {
			/* A restore takes the deleting rows above it along: the
			 * lowest unfinished row of the VM decides. */
			for (size_t k = 0; k < n && s == NULL; k++)
				if (strcmp(snaps[k].state, "ready") != 0)
					s = &snaps[k];
			if (s && s->id == todo[i].id)
				recover_one(st, cfg, &vm, snaps, n, s);
		}
		snapshots_free(snaps, n);
		vm_free(&vm);
	}
	snapshots_free(todo, n_todo);
}
