/* qemu_argv — see qemu_argv.h. */
#include "vm/qemu_argv.h"

#include "common/fsutil.h"
#include "common/ids.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strv {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add(struct strv *a, char *s)
{
	if (s == NULL || a->oom) {
		a->oom = true;
		free(s);
		return;
	}
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		char **nv = realloc(a->v, cap * sizeof(*nv));
		if (nv == NULL) {
			a->oom = true;
			free(s);
			return;
		}
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void add2(struct strv *a, const char *opt, char *val)
{
	add(a, strdup(opt));
	add(a, val);
}

void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/*
 * QEMU option values are comma-separated key=value lists; a comma inside a
 * value is written twice.  Paths come from our state dir and names are
 * validated, but escaping keeps the argv right whatever they hold.
 */
static char *qemu_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == ',' ? 2 : 1;
	char *r = malloc(n + 1), *q = r;
	if (r == NULL)
		return NULL;
	for (const char *p = s; *p; p++) {
		*q++ = *p;
		if (*p == ',')
			*q++ = ',';
	}
	*q = '\0';
	return r;
}

static char *opt_path(const char *fmt_prefix, const char *path, const char *suffix)
{
	char *e = qemu_escape(path);
	char *r = e ? str_printf("%s%s%s", fmt_prefix, e, suffix) : NULL;
	free(e);
	return r;
}

/*
 * A -blockdev value in QEMU's JSON syntax: the only one that can say
 * "backing": null.  Takes the reference to o.
 */
static char *blockdev_json(json_t *o)
{
	char *r = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return r;
}

/*
 * A disk as two nodes: "<node>-file" (the file) and "<node>" (its format),
 * the format node backed by the node named `backing`, or by nothing at
 * all when backing is NULL: then QEMU opens no other file for it,
 * whatever the image's header says.  A raw node has no backing to name.
 */
static void add_blockdev(struct strv *a, const char *node, const char *path, const char *format,
			 bool read_only, const char *backing)
{
	char file_node[48];

	snprintf(file_node, sizeof(file_node), "%s-file", node);
	add2(a, "-blockdev", blockdev_json(json_pack(
		"{s:s, s:s, s:s, s:b, s:{s:b, s:b}, s:s}", "driver", "file", "node-name", file_node,
		"filename", path, "read-only", read_only, "cache", "direct", 1, "no-flush", 0,
		"aio", "threads")));
	json_t *fmt = json_pack("{s:s, s:s, s:s, s:b}", "driver", format, "node-name", node,
				"file", file_node, "read-only", read_only);
	if (fmt && strcmp(format, "raw") != 0)
		json_object_set_new(fmt, "backing", backing ? json_string(backing) : json_null());
	add2(a, "-blockdev", blockdev_json(fmt));
}

/*
 * A VM's disk: its snapshot layers ("<node>-l0", "<node>-l1", …, read-only,
 * each backed by the node below, the lowest by `below` or nothing), then
 * the disk itself on top of them.
 */
static void add_disk(struct strv *a, const char *node, const char *path,
		     const struct qemu_layers *layers, const char *below)
{
	char prev[40] = "", cur[40];

	if (below)
		snprintf(prev, sizeof(prev), "%s", below);
	for (size_t k = 0; layers && k < layers->n; k++) {
		snprintf(cur, sizeof(cur), "%s-l%zu", node, k);
		add_blockdev(a, cur, layers->path[k], "qcow2", true, prev[0] ? prev : NULL);
		memcpy(prev, cur, sizeof(prev));
	}
	add_blockdev(a, node, path, "qcow2", false, prev[0] ? prev : NULL);
}

char **qemu_argv(const struct qemu_spec *s)
{
	struct strv a = { 0 };
	vm_id_str id = vm_id_format(s->vm_id);
	bool kvm = strcmp(s->accel, "kvm") == 0;

	add(&a, strdup("qemu-system-x86_64"));
	add2(&a, "-name", str_printf("hc-%s,process=hc-%s", id.s, id.s));
	add(&a, strdup("-nodefaults"));
	add(&a, strdup("-no-user-config"));
	add2(&a, "-display", strdup("none"));
	/* i440fx ("pc"): its PCI bus takes hot-plugged NICs without
	 * pre-created root ports, and it has the IDE CD-ROM that the cloud
	 * kernel (no AHCI driver) can read a NoCloud seed from. */
	add2(&a, "-machine", strdup("pc"));
	add2(&a, "-accel", strdup(kvm ? "kvm" : "tcg"));
	add2(&a, "-cpu", strdup(kvm ? "host" : "max"));
	/* maxcpus: the slots CPU hotplug may fill while it runs (vm/resize.h). */
	add2(&a, "-smp", str_printf("%d,maxcpus=%d", s->cpus, s->max_cpus > s->cpus ? s->max_cpus
								    : s->cpus));
	add2(&a, "-m", str_printf("%d", s->memory_mib));
	/* The instance ID as SMBIOS serial: guests (and cloud-init) read it.
	 * The product "OpenStack Nova" is what cloud-init's ds-identify looks
	 * for to try the OpenStack data source, which hackcloud serves, so
	 * stock cloud images find their metadata unchanged (DESIGN §7). */
	add2(&a, "-smbios", str_printf("type=1,manufacturer=hackcloud,product=OpenStack Nova,serial=%s",
				       id.s));

	/* Both sockets are bound by hcd and passed in: their files live in a
	 * directory QEMU may not write to. */
	add2(&a, "-chardev", str_printf("socket,id=qmp,fd=%d,server=on,wait=off", s->qmp_fd));
	add2(&a, "-mon", strdup("chardev=qmp,mode=control"));
	/* The serial console is a socket for `hc vm console`; QEMU itself
	 * appends everything the guest prints to the log, so the log keeps
	 * growing while hcd is down.  The log's path in argv is also what
	 * tells this VM's QEMU from a process that recycled its pid. */
	char *prefix = str_printf("socket,id=ser0,fd=%d,server=on,wait=off,logappend=on,logfile=",
				  s->serial_fd);
	add2(&a, "-chardev", prefix ? opt_path(prefix, s->serial_log, "") : NULL);
	free(prefix);
	add2(&a, "-serial", strdup("chardev:ser0"));

	if (s->kernel) {
		add2(&a, "-kernel", strdup(s->kernel));
		if (s->initrd)
			add2(&a, "-initrd", strdup(s->initrd));
		if (s->cmdline && s->cmdline[0])
			add2(&a, "-append", strdup(s->cmdline));
	}
	/* virtio-blk in this order: the guest sees the root disk as vda and
	 * the data disks as vdb, vdc, … (vda onwards without a root disk). */
	if (s->disk) {
		if (s->base)
			add_blockdev(&a, "img", s->base, s->base_format, true, NULL);
		add_disk(&a, "disk", s->disk, &s->root_layers, s->base ? "img" : NULL);
		add2(&a, "-device", strdup("virtio-blk-pci,drive=disk,id=vd-disk"));
	}
	for (size_t i = 0; i < s->n_data_disks; i++) {
		char node[32];
		snprintf(node, sizeof(node), "data%zu", i);
		add_disk(&a, node, s->data_disks[i], s->data_layers ? &s->data_layers[i] : NULL, NULL);
		add2(&a, "-device", str_printf("virtio-blk-pci,drive=%s,id=vd-%s", node, node));
	}
	if (s->seed_iso) {
		add_blockdev(&a, "seed", s->seed_iso, "raw", true, NULL);
		add2(&a, "-device", strdup("ide-cd,drive=seed,id=cd-seed"));
	}
	for (size_t i = 0; i < s->n_nics; i++) {
		const struct qemu_nic *n = &s->nics[i];
		/* IDs carry the NIC's ID, so hotplug can diff QEMU's devices
		 * against the store.  The slot is the store's, as at hot-plug:
		 * the same layout on every host (store.h, NIC_PCI_SLOT_FIRST);
		 * none for the destination of a QEMU started without slots. */
		char addr[24] = "";
		if (n->pci_slot > 0)
			snprintf(addr, sizeof(addr), ",addr=0x%x", n->pci_slot);
		add2(&a, "-netdev", str_printf("tap,id=" QEMU_NETDEV_FMT ",fd=%d",
					       (unsigned long long)n->id, n->fd));
		add2(&a, "-device", str_printf("virtio-net-pci,netdev=" QEMU_NETDEV_FMT ",mac=%s,id="
					       QEMU_NICDEV_FMT "%s", (unsigned long long)n->id,
					       n->mac, (unsigned long long)n->id, addr));
	}
	add2(&a, "-device", strdup("virtio-rng-pci"));
	/* The balloon gives a running VM less memory than it booted with, and
	 * back up to that (vm/resize.h). */
	add2(&a, "-device", strdup("virtio-balloon-pci,id=" QEMU_BALLOON_ID));
	if (s->tls_psk_dir)
		add2(&a, "-object", opt_path("tls-creds-psk,id=" QEMU_MIGRATE_TLS ",endpoint=server,dir=",
					     s->tls_psk_dir, ""));
	if (s->incoming) {
		/* Paused after the stream: it runs once the store says it is
		 * the VM's host (agent/migrate.c). */
		add(&a, strdup("-S"));
		add2(&a, "-incoming", strdup("defer"));
	}
	add2(&a, "-sandbox", strdup(QEMU_SANDBOX));

	if (a.oom) {
		strv_free(a.v);
		return NULL;
	}
	return a.v;
}
