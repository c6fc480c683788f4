/*
 * launch — starting a VM, in two halves (DESIGN §3: slow work off the
 * loop):
 *
 *   vm_launch_new()  on the loop: a self-contained copy of everything the
 *                    start needs, taken from the VM's and its image's rows
 *                    (paths, identity, sizes, NICs, the seed's text);
 *   vm_launch_run()  on a worker thread: the VM's directory, its disks
 *                    (qemu-img as the VM), the seed ISO (genisoimage as
 *                    the VM), its taps, QEMU itself up to QMP "running".
 *
 * The job touches nothing but what it carries and the VM's own files and
 * taps, so the agent may go on converging everything else meanwhile; it
 * only must not act on this VM until the job is done.  Every step is an
 * ensure: a launch interrupted anywhere (hcd killed) is simply run again.
 */
#ifndef HC_LAUNCH_H
#define HC_LAUNCH_H

#include "common/config.h"
#include "store/store.h"
#include "vm/qemu.h"
#include "vm/seed.h"
#include "common/proc.h"

#include <stdbool.h>
#include <sys/types.h>

struct vm_launch {
	/* in */
	uint64_t vm_id;
	char *name;
	char *state_dir;
	struct vm_paths paths;
	struct proc_opts qemu_id;      /* QEMU: the VM's uid/gid (+ /dev/kvm's group) */
	struct proc_opts tool_id;      /* qemu-img, genisoimage: the VM's, limited */
	struct qemu_spec spec;        /* strings below are owned by the launch */
	char *accel, *kernel, *initrd, *cmdline, *base, *base_format;
	long long base_size;          /* the image's virtual size (disk images) */
	long long disk_size;          /* root disk bytes; 0 = the image's */
	bool blank_root;              /* a kernel image with --disk-size: an empty root disk */
	long long *data_sizes;        /* the data disks, in order */
	char **data_paths;
	size_t n_data;
	char **layer_paths;           /* snapshot layers: n_snaps per disk, root disk first */
	struct qemu_layers *layers;   /* per disk (root, data…) views of layer_paths */
	size_t n_snaps;
	bool with_seed;
	struct seed_files seed;
	struct qemu_nic *nics;        /* .fd is set while running */
	char (*bridges)[16];          /* the bridge of each NIC's tap */
	/* out */
	pid_t pid;                    /* QEMU's, once it exists */
	char *err;                    /* why it failed */
};

/* NULL and a message when the rows do not make a VM that can start. */
struct vm_launch *vm_launch_new(const struct vm *vm, const struct image *im,
				const struct config *cfg, const char *accel, char **err);
/* The VM's snapshots (IDs bottom up, vm/snapshot.h): every disk is
 * opened over their layers, and a missing top is made over the highest.
 * -1 on OOM. */
int vm_launch_layers(struct vm_launch *l, const uint64_t *snaps, size_t n);
/* 0 with launch->pid running, or -1 with launch->err. */
int vm_launch_run(struct vm_launch *l);
void vm_launch_free(struct vm_launch *l);

#endif
