/* resize — see resize.h. */
#include "vm/resize.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "vm/qmp.h"
#include "common/sort.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPUS_MAX 64                /* the API's bound on a VM's vCPUs */
#define QEMU_IMG_RESIZE_TIMEOUT_MS 30000

int resize_max_cpus(int configured, int cpus)
{
	long n = configured > 0 ? configured : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > CPUS_MAX)
		n = CPUS_MAX;
	return cpus > n ? cpus : (int)n;
}

uint64_t resize_sig(const struct vm *vm)
{
	uint64_t h = 1469598103934665603ULL;

	h = (h ^ (uint64_t)vm->cpus) * 1099511628211ULL;
	h = (h ^ (uint64_t)vm->memory_mib) * 1099511628211ULL;
	h = (h ^ (uint64_t)vm->disk_size) * 1099511628211ULL;
	for (size_t i = 0; i < vm->n_disks; i++)
		h = (h ^ (uint64_t)vm->disks[i].size) * 1099511628211ULL;
	return h ? h : 1;
}

/* ---- memory ------------------------------------------------------------- */

static int balloon_set(const struct vm *vm, const struct vm_paths *p)
{
	json_t *args = json_pack("{s:I}", "value", (json_int_t)vm->memory_mib << 20);
	char *err = NULL;
	int rc = qmp_command(p->qmp, "balloon", args, NULL, &err);

	/* A QEMU started before resize existed has no balloon; the store
	 * refuses to resize it while it runs, so there is nothing to do. */
	if (rc < 0 && err && strstr(err, "No balloon device")) {
		free(err);
		json_decref(args);
		return 0;
	}
	if (rc < 0)
		log_warn("vm %s: balloon to %d MiB: %s", vm->name, vm->memory_mib, err ? err : "failed");
	json_decref(args);
	free(err);
	return rc;
}

/* ---- vCPUs -------------------------------------------------------------- */

static json_int_t prop(json_t *slot, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(slot, "props"), name));
}

/* Slots in topology order (QEMU lists them in its own). */
static int slot_cmp(const void *x, const void *y)
{
	static const char *const order[] = { "socket-id", "die-id", "core-id", "thread-id" };
	json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		json_int_t d = prop(a, order[i]) - prop(b, order[i]);
		if (d)
			return d < 0 ? -1 : 1;
	}
	return 0;
}

static int cpu_plug(const struct vm *vm, const struct vm_paths *p, json_t *slot, size_t index)
{
	char id[32], *err = NULL;
	json_t *args = json_deep_copy(json_object_get(slot, "props"));
	int rc = -1;

	snprintf(id, sizeof(id), "cpu-%zu", index);
	if (args && json_object_set_new(args, "driver", json_copy(json_object_get(slot, "type"))) == 0 &&
	    json_object_set_new(args, "id", json_string(id)) == 0)
		rc = qmp_command(p->qmp, "device_add", args, NULL, &err);
	if (rc < 0)
		log_warn("vm %s: hot-plug of vCPU %zu: %s", vm->name, index, err ? err : "failed");
	else
		log_info("vm %s: hot-plugged vCPU %zu", vm->name, index);
	json_decref(args);
	free(err);
	return rc;
}

static void cpu_unplug(const struct vm *vm, const struct vm_paths *p, const char *qom, size_t index)
{
	json_t *args = json_pack("{s:s}", "id", qom);
	char *err = NULL;

	if (qmp_command(p->qmp, "device_del", args, NULL, &err) == 0)
		log_info("vm %s: unplugging vCPU %zu", vm->name, index);
	else
		log_warn("vm %s: unplug of vCPU %zu: %s", vm->name, index, err ? err : "failed");
	json_decref(args);
	free(err);
}

static int cpus_converge(const struct vm *vm, const struct vm_paths *p)
{
	json_t *list = NULL, **slots = NULL;
	char *err = NULL;
	size_t n, present = 0, want = vm->cpus > 0 ? (size_t)vm->cpus : 1;
	int rc = qmp_command(p->qmp, "query-hotpluggable-cpus", NULL, &list, &err);

	if (rc < 0) {
		log_warn("vm %s: query-hotpluggable-cpus: %s", vm->name, err ? err : "failed");
		free(err);
		return -1;
	}
	n = json_array_size(list);
	if (n == 0 || (slots = calloc(n, sizeof(*slots))) == NULL) {
		json_decref(list);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		slots[i] = json_array_get(list, i);
		present += json_object_get(slots[i], "qom-path") != NULL;
	}
	sort_array(slots, n, sizeof(*slots), slot_cmp);
	/* More than maxcpus was refused by the store; a QEMU started with
	 * fewer slots than that (configuration changed) gets what fits. */
	if (want > n)
		want = n;
	for (size_t i = 0; present < want && i < n; i++) {
		if (json_object_get(slots[i], "qom-path"))
			continue;
		if (cpu_plug(vm, p, slots[i], i) < 0)
			rc = -1;
		else
			present++;
	}
	for (size_t i = n; present > want && i-- > 1;) {
		const char *qom = json_string_value(json_object_get(slots[i], "qom-path"));
		if (qom == NULL)
			continue;
		/* Gone only once the guest lets go: look again later. */
		cpu_unplug(vm, p, qom, i);
		present--;
		rc = -1;
	}
	free(slots);
	json_decref(list);
	return rc;
}

/* ---- disks -------------------------------------------------------------- */

static int node_grow(const struct vm *vm, const struct vm_paths *p, json_t *nodes, const char *node,
		     int64_t size)
{
	json_t *item = NULL, *args;
	size_t i;
	char *err = NULL;
	int rc;

	if (size <= 0)
		return 0;
	json_array_foreach(nodes, i, item) {
		const char *name = json_string_value(json_object_get(item, "node-name"));
		if (name && strcmp(name, node) == 0)
			break;
	}
	if (i == json_array_size(nodes))
		return 0;   /* no such disk in this QEMU */
	if (json_integer_value(json_object_get(json_object_get(item, "image"), "virtual-size")) >= size)
		return 0;
	args = json_pack("{s:s, s:I}", "node-name", node, "size", (json_int_t)size);
	rc = qmp_command(p->qmp, "block_resize", args, NULL, &err);
	if (rc < 0)
		log_warn("vm %s: block_resize of %s: %s", vm->name, node, err ? err : "failed");
	else
		log_info("vm %s: disk %s grown to %lld bytes", vm->name, node, (long long)size);
	json_decref(args);
	free(err);
	return rc;
}

static int disks_converge(const struct vm *vm, const struct vm_paths *p)
{
	json_t *nodes = NULL, *args = json_pack("{s:b}", "flat", 1);
	char *err = NULL, node[32];
	int rc = qmp_command(p->qmp, "query-named-block-nodes", args, &nodes, &err);

	json_decref(args);
	if (rc < 0) {
		log_warn("vm %s: query-named-block-nodes: %s", vm->name, err ? err : "failed");
		free(err);
		return -1;
	}
	/* The root disk's row size is 0 while it is the image's own. */
	if (node_grow(vm, p, nodes, "disk", vm->disk_size) < 0)
		rc = -1;
	for (size_t i = 0; i < vm->n_disks; i++) {
		snprintf(node, sizeof(node), "data%zu", i);
		if (node_grow(vm, p, nodes, node, vm->disks[i].size) < 0)
			rc = -1;
	}
	json_decref(nodes);
	return rc;
}

int resize_running(const struct vm *vm, const struct vm_paths *p)
{
	int rc = balloon_set(vm, p);

	if (cpus_converge(vm, p) < 0)
		rc = -1;
	if (disks_converge(vm, p) < 0)
		rc = -1;
	return rc;
}

/* ---- offline ------------------------------------------------------------ */

/* The virtual size in a qcow2 header (big-endian, at byte 24). */
static int qcow2_size(const char *path, long long *size, char **err)
{
	unsigned char h[32];
	uint64_t v;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof(h), 0);

	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof(h) || memcmp(h, "QFI\xfb", 4) != 0) {
		*err = str_printf("%s: %s", path, got < 0 ? strerror(errno) : "not a qcow2 file");
		return -1;
	}
	memcpy(&v, h + 24, sizeof(v));
	*size = (long long)be64toh(v);
	return 0;
}

int resize_disk_offline(const char *path, long long size, const struct proc_opts *id, char **err)
{
	long long now;
	char sz[32], *spec, *out = NULL;
	json_t *o;
	int rc;

	*err = NULL;
	if (qcow2_size(path, &now, err) < 0)
		return -1;
	if (now >= size)
		return 0;
	/* "backing": null — the overlay's header names its image, which
	 * qemu-img would otherwise open too (DESIGN §5). */
	o = json_pack("{s:s, s:n, s:{s:s, s:s}}", "driver", "qcow2", "backing", "file", "driver",
		      "file", "filename", path);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	spec = text ? str_printf("json:%s", text) : NULL;
	free(text);
	if (spec == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	snprintf(sz, sizeof(sz), "%lld", size);
	char *argv[] = { "qemu-img", "resize", "-q", "-f", "qcow2", spec, sz, NULL };
	struct proc_opts po = *id;
	po.timeout_ms = QEMU_IMG_RESIZE_TIMEOUT_MS;
	rc = proc_run_opts(argv, &po, &out, 4096, true);
	if (rc != 0)
		*err = rc < 0 ? str_printf("cannot run qemu-img: %s", strerror(errno))
			      : str_printf("qemu-img resize failed (%d): %s", rc, out ? out : "");
	free(out);
	free(spec);
	return *err ? -1 : 0;
}
