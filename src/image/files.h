/*
 * image/files — an image's files on this host: what a disk file is and
 * whether hackcloud may use it, and where a finished import goes.
 *
 * Invariants:
 *   - only raw and qcow2 disks are accepted, and never one with a backing
 *     file or an external data file: either would let an image read any
 *     file of the host (a qcow2 backed by /etc/shadow);
 *   - a finished image lives content-addressed in STATE_DIR/images/<sha256>/
 *     (files "disk", or "kernel" and "initrd"), shared by equal imports;
 *     until then its files stage in STATE_DIR/images/staging/<8 hex ID>/,
 *     where nothing ever boots from them.
 */
#ifndef HC_IMAGE_FILES_H
#define HC_IMAGE_FILES_H

#include <stdint.h>

/* The largest image file accepted, uploaded or downloaded. */
#define IMAGE_MAX_BYTES (64LL << 30)

struct disk_info {
	char format[8];          /* raw | qcow2 */
	int64_t virtual_size;    /* bytes the guest sees */
};

/*
 * Pure: judge the output of `qemu-img info --output=json`.  0 and *out
 * when the disk is acceptable, else -1 and a malloc'd reason for the user.
 */
int disk_info_parse(const char *json, struct disk_info *out, char **why);

/* Run qemu-img info on a file (never following a backing file) and judge
 * it as above. */
int disk_inspect(const char *path, struct disk_info *out, char **why);

/* STATE_DIR/images/staging/<id> (malloc'd). */
char *image_staging_dir(const char *state_dir, uint64_t id);

/*
 * Move a staging directory to STATE_DIR/images/<sha256>; when that content
 * is stored already, the staging copy is dropped instead.  -1 with errno.
 */
int image_files_place(const char *state_dir, const char *staging, const char *sha256);

#endif
