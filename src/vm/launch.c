/* launch — see launch.h. */
#include "vm/launch.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "net/link.h"
#include "vm/identity.h"
#include "vm/resize.h"
#include "vm/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void vm_launch_free(struct vm_launch *l)
{
	if (l == NULL)
		return;
	free(l->name);
	free(l->state_dir);
	vm_paths_free(&l->paths);
	free(l->accel);
	free(l->kernel);
	free(l->initrd);
	free(l->cmdline);
	free(l->base);
	free(l->base_format);
	free((char *)l->spec.seed_iso);
	free(l->data_sizes);
	strv_free(l->data_paths);
	strv_free(l->layer_paths);
	free(l->layers);
	seed_files_free(&l->seed);
	free(l->nics);
	free(l->bridges);
	free(l->err);
	free(l);
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *r = s ? strdup(s) : NULL;

	if (s && r == NULL)
		*oom = true;
	return r;
}

struct vm_launch *vm_launch_new(const struct vm *vm, const struct image *im,
				const struct config *cfg, const char *accel, char **err)
{
	struct vm_launch *l = calloc(1, sizeof(*l));
	bool oom = l == NULL;

	*err = NULL;
	if (oom)
		goto fail;
	if (im->sha256 == NULL) {
		*err = strdup("image is not available");
		goto fail;
	}
	l->vm_id = vm->id;
	l->name = dup_or_null(vm->name, &oom);
	l->state_dir = dup_or_null(cfg->state_dir, &oom);
	l->accel = dup_or_null(accel, &oom);
	if (oom || vm_paths_init(&l->paths, cfg->state_dir, vm->id) < 0)
		goto fail;
	if (identity_qemu(cfg->qemu_uid_base, cfg->qemu_uid_count, vm->id,
			  strcmp(accel, "kvm") == 0, &l->qemu_id, err) < 0)
		goto fail;
	identity_tool(cfg->qemu_uid_base, cfg->qemu_uid_count, vm->id, &l->tool_id);
	l->disk_size = vm->disk_size;
	if (strcmp(im->boot, "kernel") == 0) {
		l->kernel = image_file(cfg->state_dir, im->sha256, "kernel");
		oom |= l->kernel == NULL;
		if (im->has_initrd && (l->initrd = image_file(cfg->state_dir, im->sha256, "initrd")) == NULL)
			oom = true;
		l->cmdline = dup_or_null(im->cmdline, &oom);
		/* A kernel image has no disk of its own: --disk-size gives the
		 * VM a blank root disk. */
		l->blank_root = vm->disk_size > 0;
	} else {
		l->base = image_file(cfg->state_dir, im->sha256, "disk");
		l->base_format = dup_or_null(im->format, &oom);
		oom |= l->base == NULL;
		l->base_size = im->size;
	}
	l->n_data = vm->n_disks;
	l->data_sizes = calloc(vm->n_disks + 1, sizeof(*l->data_sizes));
	l->data_paths = calloc(vm->n_disks + 1, sizeof(*l->data_paths));
	oom |= l->data_sizes == NULL || l->data_paths == NULL;
	for (size_t i = 0; !oom && i < vm->n_disks; i++) {
		l->data_sizes[i] = vm->disks[i].size;
		oom |= (l->data_paths[i] = vm_data_disk_path(&l->paths, i)) == NULL;
	}
	l->with_seed = vm->config_drive;
	if (l->with_seed && seed_render(vm, &l->seed) < 0)
		oom = true;
	l->nics = calloc(vm->n_nics + 1, sizeof(*l->nics));
	l->bridges = calloc(vm->n_nics + 1, sizeof(*l->bridges));
	oom |= l->nics == NULL || l->bridges == NULL;
	for (size_t i = 0; !oom && i < vm->n_nics; i++) {
		mac_str mac = nic_mac_format(vm->nics[i].id);
		ifname_str tap = ifname_tap(vm->nics[i].id);
		ifname_str br = ifname_bridge(vm->nics[i].network);
		l->nics[i].id = vm->nics[i].id;
		l->nics[i].pci_slot = vm->nics[i].pci_slot;
		l->nics[i].fd = -1;
		memcpy(l->nics[i].mac, mac.s, sizeof(l->nics[i].mac));
		memcpy(l->nics[i].ifname, tap.s, sizeof(l->nics[i].ifname));
		memcpy(l->bridges[i], br.s, sizeof(l->bridges[i]));
	}
	if (oom)
		goto fail;
	l->spec = (struct qemu_spec){
		.vm_id = vm->id, .name = l->name, .cpus = vm->cpus, .memory_mib = vm->memory_mib,
		.max_cpus = resize_max_cpus(cfg->vm_max_cpus, vm->cpus),
		.accel = l->accel, .kernel = l->kernel, .initrd = l->initrd, .cmdline = l->cmdline,
		.disk = (l->base || l->blank_root) ? l->paths.disk : NULL,
		.base = l->base, .base_format = l->base_format,
		.data_disks = (const char *const *)l->data_paths, .n_data_disks = l->n_data,
		.serial_log = l->paths.log, .nics = l->nics, .n_nics = vm->n_nics,
		.qmp_fd = -1, .serial_fd = -1,
	};
	return l;
fail:
	if (*err == NULL)
		*err = strdup("out of memory");
	vm_launch_free(l);
	return NULL;
}

int vm_launch_layers(struct vm_launch *l, const uint64_t *snaps, size_t n)
{
	size_t disks = 1 + l->n_data;

	if (n == 0)
		return 0;
	l->layer_paths = calloc(disks * n + 1, sizeof(*l->layer_paths));
	l->layers = calloc(disks, sizeof(*l->layers));
	if (l->layer_paths == NULL || l->layers == NULL)
		return -1;
	l->n_snaps = n;
	for (size_t d = 0; d < disks; d++) {
		char node[32];
		if (d == 0)
			snprintf(node, sizeof(node), "disk");
		else
			snprintf(node, sizeof(node), "data%zu", d - 1);
		for (size_t k = 0; k < n; k++)
			if ((l->layer_paths[d * n + k] = snap_layer_path(&l->paths, snaps[k], node)) == NULL)
				return -1;
		l->layers[d] = (struct qemu_layers){ (const char *const *)&l->layer_paths[d * n], n };
	}
	if (l->spec.disk)
		l->spec.root_layers = l->layers[0];
	l->spec.data_layers = &l->layers[1];
	return 0;
}

/* A disk of the VM: created when missing (one that exists keeps what the
 * guest wrote, grown when its row grew meanwhile: vm/resize.h), and the
 * VM's whatever created it.  Over snapshot layers, a new disk goes on the
 * highest: a crash may have left it missing after its old file became a
 * layer (vm/snapshot.h). */
static int disk_ensure(struct vm_launch *l, size_t d, const char *path, const char *base,
		       long long size)
{
	struct stat sb;

	if (stat(path, &sb) < 0) {
		const char *top = l->n_snaps ? l->layer_paths[d * l->n_snaps + l->n_snaps - 1] : NULL;
		long long under = d == 0 && base ? l->base_size : size;
		if (top ? qemu_overlay_create(top, "qcow2", size > under ? size : under, path, size,
					      &l->tool_id, &l->err) < 0
		    : base ? qemu_overlay_create(base, l->base_format, l->base_size, path, size,
						 &l->tool_id, &l->err) < 0
			   : qemu_disk_create(path, size, &l->tool_id, &l->err) < 0)
			return -1;
	} else if (resize_disk_offline(path, size, &l->tool_id, &l->err) < 0) {
		return -1;
	}
	return qemu_file_give(path, &l->qemu_id, 0600, &l->err);
}

/* Image files the VM reads (through mode 0444: they stay root's). */
static int images_readable(struct vm_launch *l)
{
	const char *files[] = { l->kernel, l->initrd, l->base };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i] && qemu_image_readable(l->state_dir, files[i]) < 0) {
			l->err = str_printf("%s: %s", files[i], strerror(errno));
			return -1;
		}
	return 0;
}

/* The taps, up on their bridges, and open: QEMU gets the descriptors. */
static int taps_open(struct vm_launch *l)
{
	for (size_t i = 0; i < l->spec.n_nics; i++) {
		if (tap_ensure(l->nics[i].ifname, l->bridges[i], -1, &l->err) < 0 ||
		    (l->nics[i].fd = tap_open(l->nics[i].ifname, &l->err)) < 0)
			return -1;
	}
	return 0;
}

int vm_launch_run(struct vm_launch *l)
{
	int rc = -1;

	if (qemu_dir_ensure(&l->paths, &l->qemu_id, &l->err) < 0 || images_readable(l) < 0)
		goto out;
	if (l->spec.disk && disk_ensure(l, 0, l->paths.disk, l->base, l->disk_size) < 0)
		goto out;
	for (size_t i = 0; i < l->n_data; i++)
		if (disk_ensure(l, 1 + i, l->data_paths[i], NULL, l->data_sizes[i]) < 0)
			goto out;
	if (l->with_seed) {
		if ((l->spec.seed_iso = seed_build(&l->seed, &l->paths, &l->tool_id, &l->err)) == NULL)
			goto out;
	} else {
		seed_remove(&l->paths);
	}
	if (taps_open(l) < 0)
		goto out;
	rc = qemu_launch(&l->spec, &l->paths, &l->qemu_id, &l->pid, &l->err);
out:
	for (size_t i = 0; i < l->spec.n_nics; i++)
		if (l->nics[i].fd >= 0) {
			close(l->nics[i].fd);
			l->nics[i].fd = -1;
		}
	return rc;
}
