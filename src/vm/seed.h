/*
 * seed — the NoCloud "cidata" seed of a VM (DESIGN §7): meta-data,
 * user-data and network-config packed into an ISO 9660 image that QEMU
 * attaches as a CD-ROM, for guests that cannot reach the metadata
 * service.
 *
 * Generating the three files is pure (seed_render, on the loop: a copy of
 * what the VM's row says); building the ISO runs genisoimage as the VM
 * (seed_build, on a worker thread).  Rebuilt at every launch: names, keys
 * and NICs may have changed.  Files: STATE_DIR/vms/<id>/seed/ (root:<VM
 * gid> 0750, the inputs) and seed.iso (the VM's).
 */
#ifndef HC_SEED_H
#define HC_SEED_H

#include "store/store.h"
#include "vm/qemu.h"
#include "common/proc.h"

#include <stddef.h>

struct seed_files {
	char *meta;                /* NUL-terminated YAML */
	unsigned char *user;       /* user data, verbatim (may hold NULs) */
	size_t user_len;
	char *net;                 /* netplan v2 YAML */
};

/* The files of vm's seed.  -1 on out of memory. */
int seed_render(const struct vm *vm, struct seed_files *out);
void seed_files_free(struct seed_files *f);

/* Write the files and pack them; the ISO's path (malloc'd), or NULL and a
 * message. */
char *seed_build(const struct seed_files *f, const struct vm_paths *p, const struct proc_opts *id,
		 char **err);

/* A VM without a seed has none lying around from an earlier setting. */
void seed_remove(const struct vm_paths *p);

#endif
