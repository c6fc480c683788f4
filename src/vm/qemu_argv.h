/*
 * qemu_argv — the QEMU command line of a VM, built as an argv array from
 * a plain description (pure: no I/O, unit tested).  No shell ever sees it.
 */
#ifndef HC_QEMU_ARGV_H
#define HC_QEMU_ARGV_H

#include <stddef.h>
#include <stdint.h>

/* QEMU object IDs of a NIC: "net-<8 hex>" (netdev) and "nic-<8 hex>" (device). */
#define QEMU_NETDEV_FMT "net-%08llx"
#define QEMU_NICDEV_FMT "nic-%08llx"

struct qemu_nic {
	uint64_t id;
	char mac[18];
	char ifname[16];
};

struct qemu_spec {
	uint64_t vm_id;
	const char *name;
	int cpus;
	int memory_mib;
	const char *accel;       /* kvm | tcg (resolved, never auto) */
	const char *kernel;      /* kernel boot: kernel, optional initrd, cmdline */
	const char *initrd;
	const char *cmdline;
	const char *disk;        /* the root disk (qcow2): the overlay of a disk image, or a
				  * blank one of a kernel image; NULL = none */
	const char *const *data_disks;  /* extra qcow2 data disks, after the root disk */
	size_t n_data_disks;
	const char *seed_iso;    /* NoCloud cidata ISO, attached as an IDE CD-ROM; NULL = none */
	const char *qmp_path;
	const char *serial_path;
	const char *serial_log;
	const char *pidfile;
	const char *runas;       /* drop to this user after setup; NULL = stay */
	const struct qemu_nic *nics;
	size_t n_nics;
};

/* A NULL-terminated, malloc'd argv (free with strv_free); NULL on OOM. */
char **qemu_argv(const struct qemu_spec *s);
void strv_free(char **v);

#endif
