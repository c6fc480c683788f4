/*
 * qemu_argv — the QEMU command line of a VM, built as an argv array from
 * a plain description (pure: no I/O, unit tested).  No shell ever sees it.
 *
 * What the argv guarantees (DESIGN §5, docs/SECURITY.md):
 *   - every block node is given explicitly with -blockdev (a file node and
 *     a format node per disk) and every format node says what its backing
 *     is: the node below it by node name (the image under a VM's overlay,
 *     or the snapshot layers in between, each named), "backing": null
 *     everywhere else, so no file name written inside an image or a layer
 *     is ever followed;
 *   - QEMU opens no network device and binds no socket itself: taps and
 *     the listening QMP and serial sockets are descriptors hcd passes in
 *     (proc_daemon in common/proc.h), so it needs no privilege at all;
 *   - each NIC sits at its own PCI slot (struct nic in store.h), as a
 *     hot-plug puts it, the other devices in the lowest slots below: the
 *     layout is the store's, not the history's, so every QEMU of a VM
 *     (a live migration's destination) has the running one's;
 *   - it neither daemonizes nor changes user (hcd does both), so its
 *     seccomp filter denies spawning, privilege changes, obsolete system
 *     calls and resource control.
 */
#ifndef HC_QEMU_ARGV_H
#define HC_QEMU_ARGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* QEMU object IDs of a NIC: "net-<8 hex>" (netdev) and "nic-<8 hex>" (device). */
#define QEMU_NETDEV_FMT "net-%08llx"
#define QEMU_NICDEV_FMT "nic-%08llx"

/* The memory balloon of every VM (resize). */
#define QEMU_BALLOON_ID "balloon0"

/* The sandbox of every VM's QEMU. */
#define QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

struct qemu_nic {
	uint64_t id;
	int pci_slot;            /* its slot on the PCI bus (store.h); 0: QEMU's choice */
	char mac[18];
	char ifname[16];         /* its tap, which hcd opens */
	int fd;                  /* that descriptor as numbered in QEMU */
};

/* The snapshot layers under one disk (vm/snapshot.h), bottom up: each is
 * opened read-only and backed by the one below it, the lowest by the
 * image (root disk) or by nothing; the disk itself by the highest. */
struct qemu_layers {
	const char *const *path;
	size_t n;
};

struct qemu_spec {
	uint64_t vm_id;
	const char *name;
	int cpus;
	int max_cpus;            /* -smp maxcpus: CPU hotplug's room (below cpus: cpus) */
	int memory_mib;
	const char *accel;       /* kvm | tcg (resolved, never auto) */
	const char *kernel;      /* kernel boot: kernel, optional initrd, cmdline */
	const char *initrd;
	const char *cmdline;
	const char *disk;        /* the root disk (qcow2): the overlay of a disk image, or a
				  * blank one of a kernel image; NULL = none */
	const char *base;        /* the image under disk (opened read-only); NULL = none */
	const char *base_format; /* raw | qcow2 */
	const char *const *data_disks;  /* extra qcow2 data disks, after the root disk */
	size_t n_data_disks;
	struct qemu_layers root_layers;          /* under disk */
	const struct qemu_layers *data_layers;   /* under each data disk; NULL: none */
	const char *seed_iso;    /* NoCloud cidata ISO, attached as an IDE CD-ROM; NULL = none */
	int qmp_fd;              /* listening sockets, as numbered in QEMU */
	int serial_fd;
	const char *serial_log;  /* QEMU appends the console output to it */
	const struct qemu_nic *nics;
	size_t n_nics;
	/* A live migration's destination (vm/migrate.h): paused (-S), waiting
	 * for the stream (-incoming defer), with the TLS-PSK credentials of
	 * the stream (object QEMU_MIGRATE_TLS, server end) read from this
	 * directory's keys.psk; NULL = none. */
	bool incoming;
	const char *tls_psk_dir;
};

/* The QEMU object ID of a migration's TLS credentials, on both ends. */
#define QEMU_MIGRATE_TLS "mig-tls"

/* A NULL-terminated, malloc'd argv (free with strv_free); NULL on OOM. */
char **qemu_argv(const struct qemu_spec *s);
void strv_free(char **v);

#endif
