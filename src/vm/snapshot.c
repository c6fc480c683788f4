/* snapshot — see snapshot.h. */
#include "vm/snapshot.h"

#include "common/fsutil.h"
#include "vm/qmp.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a live snapshot's QMP commands may take: blockdev-add opens a
 * file, the transaction drains in-flight requests of every disk. */
#define SNAP_QMP_TIMEOUT_MS 30000

char *snap_layer_path(const struct vm_paths *p, uint64_t snap, const char *node)
{
	return str_printf("%s/snap-%08llx-%s.qcow2", p->dir, (unsigned long long)snap, node);
}

void snap_live_node(const char *node, uint64_t snap, char out[32])
{
	snprintf(out, 32, "%s-t%08llx", node, (unsigned long long)(snap & 0xffffffffu));
}

long snap_chain_index(const uint64_t *chain, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (chain[i] == id)
			return (long)i;
	return -1;
}

void snap_job_free(struct snap_job *j)
{
	if (j == NULL)
		return;
	vm_paths_free(&j->paths);
	for (size_t i = 0; i < j->n_disks; i++)
		free(j->disks[i].top);
	free(j->disks);
	free(j->base);
	free(j->base_format);
	free(j->chain);
	free(j->err);
	free(j);
}

static bool exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static long long bytes_on_disk(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_blocks * 512 : 0;
}

static int fail(struct snap_job *j, char *msg)
{
	if (j->err == NULL)
		j->err = msg ? msg : strdup("out of memory");
	else
		free(msg);
	return -1;
}

/*
 * What lies under layer k of disk d's chain (k == n_chain: under its top):
 * the layer below, else the image (root disk), else nothing.  *path is
 * malloc'd or NULL; *format is static or the job's.
 */
static int below(struct snap_job *j, size_t d, size_t k, char **path, const char **format)
{
	*path = NULL;
	*format = NULL;
	if (k > 0) {
		if ((*path = snap_layer_path(&j->paths, j->chain[k - 1], j->disks[d].node)) == NULL)
			return fail(j, NULL);
		*format = "qcow2";
	} else if (d == 0 && j->base) {
		if ((*path = strdup(j->base)) == NULL)
			return fail(j, NULL);
		*format = j->base_format;
	}
	return 0;
}

/* A new file (top) of disk d backed by `back` (or by nothing), made whole
 * under a temporary name and renamed over whatever was there. */
static int top_create(struct snap_job *j, size_t d, const char *back, const char *back_format)
{
	const struct snap_disk *sd = &j->disks[d];
	char *err = NULL;
	int rc = back ? qemu_overlay_create(back, back_format, sd->size, sd->top, sd->size, &j->tool, &err)
		      : qemu_disk_create(sd->top, sd->size, &j->tool, &err);

	return rc < 0 ? fail(j, err) : 0;
}

/* qemu-img for a step that copies data: as the VM, with the job's time. */
static int qemu_img_copy(struct snap_job *j, char *const argv[])
{
	struct proc_opts o = j->tool;
	char *out = NULL;
	int rc;

	o.timeout_ms = j->copy_timeout_s * 1000;
	o.limit_cpu = (unsigned long long)j->copy_timeout_s;
	rc = proc_run_opts(argv, &o, &out, 4096, true);
	if (rc != 0)
		fail(j, rc < 0 ? str_printf("cannot run qemu-img: %s", strerror(errno))
			       : str_printf("qemu-img %s failed (%d): %s", argv[1], rc, out ? out : ""));
	free(out);
	return rc == 0 ? 0 : -1;
}

/* ---- creating, stopped ---------------------------------------------------- */

/*
 * Disk d's top becomes the new layer, and a new top goes over it.  A top
 * that does not exist yet (the VM never ran) is made first, on the chain
 * as it was.
 */
static int create_stopped_disk(struct snap_job *j, size_t d, const char *layer)
{
	const char *fmt;
	char *back = NULL;

	if (!exists(layer)) {
		if (!exists(j->disks[d].top)) {
			int rc = below(j, d, j->n_chain - 1, &back, &fmt) < 0 ? -1 : top_create(j, d, back, fmt);
			free(back);
			if (rc < 0)
				return -1;
		}
		if (rename(j->disks[d].top, layer) < 0)
			return fail(j, str_printf("%s: %s", layer, strerror(errno)));
	}
	if (!exists(j->disks[d].top) && top_create(j, d, layer, "qcow2") < 0)
		return -1;
	return 0;
}

/* ---- creating, live --------------------------------------------------------- */

/* The node QEMU's device vd-<node> reads now, from query-block's answer. */
static const char *device_top(json_t *blocks, const char *node)
{
	char qdev[40], path[48];
	size_t i;
	json_t *b;

	snprintf(qdev, sizeof(qdev), "vd-%s", node);
	snprintf(path, sizeof(path), "/vd-%s/", node);
	json_array_foreach(blocks, i, b) {
		const char *q = json_string_value(json_object_get(b, "qdev"));
		if (q && (strcmp(q, qdev) == 0 || strstr(q, path)))
			return json_string_value(json_object_get(json_object_get(b, "inserted"),
								 "node-name"));
	}
	return NULL;
}

static int blockdev_add(struct snap_job *j, const char *node, const char *file)
{
	char file_node[48];
	char *err = NULL;

	snprintf(file_node, sizeof(file_node), "%s-file", node);
	/* As the argv builds every writable disk: the file node explicit,
	 * "backing": null (blockdev-snapshot gives it its backing). */
	json_t *args = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:b, s:b}, s:s}, s:n}",
				 "driver", "qcow2", "node-name", node, "file", "driver", "file",
				 "node-name", file_node, "filename", file, "cache", "direct", 1,
				 "no-flush", 0, "aio", "threads", "backing");
	int rc = args ? qmp_command_within(j->paths.qmp, SNAP_QMP_TIMEOUT_MS, "blockdev-add", args,
					   NULL, &err) : -1;

	json_decref(args);
	if (rc < 0) {
		fail(j, str_printf("blockdev-add %s: %s", node, err ? err : "out of memory"));
		free(err);
	}
	return rc;
}

static void blockdev_del(struct snap_job *j, const char *node)
{
	json_t *args = json_pack("{s:s}", "node-name", node);
	char *err = NULL;

	if (args)
		qmp_command_within(j->paths.qmp, SNAP_QMP_TIMEOUT_MS, "blockdev-del", args, NULL, &err);
	json_decref(args);
	free(err);
}

/*
 * Every disk not yet cut: its top renamed to the layer (QEMU goes on
 * writing the same file), a new top made over it and opened by QEMU as a
 * node of its own; then one transaction moves every device onto its new
 * node at one instant.  On failure the renames are undone.
 */
static int create_live(struct snap_job *j, char **layers)
{
	json_t *blocks = NULL, *actions = json_array();
	bool *pending = calloc(j->n_disks + 1, sizeof(*pending));
	char node[32], *err = NULL;
	int rc = -1;

	if (actions == NULL || pending == NULL) {
		fail(j, NULL);
		goto out;
	}
	if (qmp_command_within(j->paths.qmp, SNAP_QMP_TIMEOUT_MS, "query-block", NULL, &blocks,
			       &err) < 0) {
		fail(j, str_printf("query-block: %s", err));
		goto out;
	}
	for (size_t d = 0; d < j->n_disks; d++) {
		const char *now = device_top(blocks, j->disks[d].node);
		snap_live_node(j->disks[d].node, j->target, node);
		if (now == NULL) {
			fail(j, str_printf("QEMU has no device vd-%s", j->disks[d].node));
			goto undo;
		}
		if (strcmp(now, node) == 0)
			continue; /* cut already (an earlier run got that far) */
		pending[d] = true;
		if (!exists(layers[d]) && rename(j->disks[d].top, layers[d]) < 0) {
			fail(j, str_printf("%s: %s", layers[d], strerror(errno)));
			goto undo;
		}
		if ((!exists(j->disks[d].top) && top_create(j, d, layers[d], "qcow2") < 0) ||
		    qemu_file_give(j->disks[d].top, &j->tool, 0600, &err) < 0)
			goto undo;
		blockdev_del(j, node); /* a node a crashed run may have left */
		if (blockdev_add(j, node, j->disks[d].top) < 0)
			goto undo;
		json_array_append_new(actions, json_pack("{s:s, s:{s:s, s:s}}", "type", "blockdev-snapshot",
					"data", "node", now, "overlay", node));
	}
	if (json_array_size(actions) > 0) {
		json_t *args = json_pack("{s:O}", "actions", actions);
		int t = args ? qmp_command_within(j->paths.qmp, SNAP_QMP_TIMEOUT_MS, "transaction",
						  args, NULL, &err) : -1;
		json_decref(args);
		if (t < 0) {
			fail(j, str_printf("transaction: %s", err ? err : "out of memory"));
			goto undo;
		}
	}
	rc = 0;
	goto out;
undo:
	/* Not cut: QEMU still writes each pending disk's old file, now
	 * named as the layer; it gets its name back over the unused top. */
	for (size_t d = 0; d < j->n_disks; d++) {
		if (!pending[d])
			continue;
		snap_live_node(j->disks[d].node, j->target, node);
		blockdev_del(j, node);
		if (exists(layers[d]) && rename(layers[d], j->disks[d].top) < 0)
			fail(j, str_printf("%s: %s", layers[d], strerror(errno)));
	}
out:
	if (err && j->err == NULL)
		j->err = err;
	else
		free(err);
	json_decref(blocks);
	json_decref(actions);
	free(pending);
	return rc;
}

/* ---- restoring, deleting -------------------------------------------------- */

/* Every disk's top made anew over the target's layer; the layers of newer
 * snapshots go (their rows go with the restore). */
static int restore(struct snap_job *j, long k)
{
	for (size_t d = 0; d < j->n_disks; d++) {
		char *layer = snap_layer_path(&j->paths, j->target, j->disks[d].node);
		int rc = layer ? top_create(j, d, layer, "qcow2") : fail(j, NULL);
		free(layer);
		if (rc < 0)
			return -1;
	}
	if (dir_sync(j->paths.dir) < 0)
		return fail(j, str_printf("%s: %s", j->paths.dir, strerror(errno)));
	for (size_t i = (size_t)k + 1; i < j->n_chain; i++)
		for (size_t d = 0; d < j->n_disks; d++) {
			char *layer = snap_layer_path(&j->paths, j->chain[i], j->disks[d].node);
			if (layer)
				file_remove(layer);
			free(layer);
		}
	return 0;
}

/*
 * The target's layer merged into the file above it (the next layer, or
 * the top): `qemu-img rebase` (safe mode) copies into it what it read
 * through the target and will not read through the new backing, then
 * points its header at the layer below (or the image, or nothing).  The
 * layers below are untouched: they are other snapshots.
 */
static int delete_disk(struct snap_job *j, size_t d, long k)
{
	char *above = (size_t)k + 1 < j->n_chain
		? snap_layer_path(&j->paths, j->chain[k + 1], j->disks[d].node)
		: strdup(j->disks[d].top);
	char *layer = snap_layer_path(&j->paths, j->target, j->disks[d].node), *back = NULL;
	const char *fmt = NULL;
	int rc = -1;

	if (above == NULL || layer == NULL || below(j, d, (size_t)k, &back, &fmt) < 0) {
		fail(j, NULL);
		goto out;
	}
	if (exists(layer)) {
		char *argv[] = { "qemu-img", "rebase", "-q", "-f", "qcow2", "-b", back ? back : "",
				 "-F", (char *)(fmt ? fmt : "qcow2"), above, NULL };
		if (back == NULL) /* no backing: -F would be refused */
			argv[7] = above, argv[8] = NULL;
		if (exists(above) && qemu_img_copy(j, argv) < 0)
			goto out;
		if (file_remove(layer) < 0) {
			fail(j, str_printf("%s: %s", layer, strerror(errno)));
			goto out;
		}
	}
	rc = 0;
out:
	free(above);
	free(layer);
	free(back);
	return rc;
}

int snapshot_run(struct snap_job *j)
{
	long k = snap_chain_index(j->chain, j->n_chain, j->target);
	char **layers = calloc(j->n_disks + 1, sizeof(*layers));
	int rc = -1;

	if (layers == NULL)
		return fail(j, NULL);
	if (k < 0) {
		fail(j, strdup("the snapshot is not in the VM's chain"));
		goto out;
	}
	for (size_t d = 0; d < j->n_disks; d++)
		if ((layers[d] = snap_layer_path(&j->paths, j->target, j->disks[d].node)) == NULL) {
			fail(j, NULL);
			goto out;
		}
	switch (j->op) {
	case SNAP_CREATE:
		/* A VM that never ran has no directory yet. */
		rc = qemu_dir_ensure(&j->paths, &j->tool, &j->err);
		for (size_t d = 0; rc == 0 && d < j->n_disks; d++)
			rc = create_stopped_disk(j, d, layers[d]);
		break;
	case SNAP_CREATE_LIVE:
		rc = create_live(j, layers);
		break;
	case SNAP_RESTORE:
		rc = restore(j, k);
		break;
	case SNAP_DELETE:
		rc = 0;
		for (size_t d = 0; rc == 0 && d < j->n_disks; d++)
			rc = delete_disk(j, d, k);
		break;
	}
	if (rc == 0 && dir_sync(j->paths.dir) < 0)
		rc = fail(j, str_printf("%s: %s", j->paths.dir, strerror(errno)));
	j->bytes = 0;
	for (size_t d = 0; rc == 0 && d < j->n_disks; d++)
		j->bytes += bytes_on_disk(layers[d]);
out:
	for (size_t d = 0; d < j->n_disks; d++)
		free(layers[d]);
	free(layers);
	return rc;
}

void snapshot_undo_create(struct snap_job *j)
{
	for (size_t d = 0; d < j->n_disks; d++) {
		char *layer = snap_layer_path(&j->paths, j->target, j->disks[d].node);
		if (layer && exists(layer) && rename(layer, j->disks[d].top) < 0)
			fail(j, str_printf("%s: %s", layer, strerror(errno)));
		free(layer);
	}
	dir_sync(j->paths.dir);
}

int snapshot_flatten(struct snap_job *j, const char *out)
{
	char *err = NULL;

	if (!exists(j->disks[0].top))
		return fail(j, strdup("the VM's root disk does not exist yet (it never ran)"));
	if (qemu_file_for_tool(out, &j->tool, &err) < 0)
		return fail(j, err);
	/* The chain as the headers (all hackcloud's) name it, read-only
	 * (-U is not needed: the VM is stopped and held). */
	char *argv[] = { "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "qcow2", j->disks[0].top,
			 (char *)out, NULL };
	if (qemu_img_copy(j, argv) < 0) {
		file_remove(out);
		return -1;
	}
	return 0;
}
