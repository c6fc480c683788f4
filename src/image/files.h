/*
 * image/files — an image's files on this host: what a disk file is and
 * whether hackcloud may use it, and how a verified image enters the store.
 *
 * Invariants:
 *   - only raw and qcow2 disks are accepted, and never one with a backing
 *     file or an external data file: either would let an image read any
 *     file of the host (a qcow2 backed by /etc/shadow).  The format is
 *     decided from the file's first bytes here, and qemu-img is always
 *     told it (-f): it never probes, never follows a name written inside
 *     the file, and runs as the unprivileged image_user with RLIMIT_AS and
 *     RLIMIT_CPU (a crafted image must not exhaust the host, as OpenStack
 *     does for qemu-img since CVE-2015-5162), reading the file through a
 *     descriptor we opened;
 *   - a finished image lives content-addressed in STATE_DIR/images/<sha256>/
 *     (files "disk", or "kernel" and "initrd"), shared by equal imports;
 *     until then its files stage in STATE_DIR/images/staging/<8 hex ID>/,
 *     where nothing ever boots from them;
 *   - a placed file is read-only (0444 in a 0755 directory, owned by
 *     root) and no handle that could write it exists: only complete,
 *     closed, verified files are placed;
 *   - an existing images/<sha256>/ is never trusted for what its name
 *     says: before a new import is deduplicated onto it, its files are
 *     hashed again, and a directory whose content does not match its name
 *     is replaced by the verified one;
 *   - every rename into the store is followed by an fsync of the
 *     directories involved, before anybody is told the image is there.
 */
#ifndef HC_IMAGE_FILES_H
#define HC_IMAGE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The largest image file accepted, uploaded or downloaded. */
#define IMAGE_MAX_BYTES (64LL << 30)

/* Confinement of qemu-img (OpenStack's values for qemu-img info). */
#define QEMU_IMG_LIMIT_AS (1ULL << 30)
#define QEMU_IMG_LIMIT_CPU_S 30

struct disk_info {
	char format[8];          /* raw | qcow2 */
	int64_t virtual_size;    /* bytes the guest sees */
};

/*
 * Pure: the format of a disk from its first bytes (at least 512 when the
 * file has them): "qcow2" (the QFI\xfb magic), "raw" for anything no
 * other image format claims, or NULL and a malloc'd reason for formats
 * hackcloud refuses (vmdk, vdi, vhd, vhdx, qed, luks, …) — taken as raw,
 * they would boot as garbage.
 */
const char *disk_format_sniff(const unsigned char *head, size_t n, char **why);

/*
 * Pure: judge the output of `qemu-img info -f FORMAT --output=json`.  0
 * and *out when the disk is acceptable, else -1 and a malloc'd reason for
 * the user.
 */
int disk_info_parse(const char *json, const char *format, struct disk_info *out, char **why);

/*
 * Pure: judge `qemu-img check -f qcow2 --output=json` (its output and exit
 * status): 0 when the image has no corruption (leaked clusters are
 * harmless), else -1 and a malloc'd reason.
 */
int disk_check_parse(const char *json, int status, char **why);

/*
 * Decide the format of the disk open on fd and check it with qemu-img
 * (info, and check for qcow2) as image_user, confined as above.  The file
 * must be complete and read-only (0444: qemu-img opens it again through
 * /dev/fd/3, as image_user; the directory it is in need not be reachable).
 * 0 and *out, or -1 and a malloc'd reason.
 */
int disk_inspect(int fd, const char *image_user, struct disk_info *out, char **why);

/* STATE_DIR/images/staging/<id> (malloc'd). */
char *image_staging_dir(const char *state_dir, uint64_t id);

/* The files an image consists of: {"disk"} or {"kernel"[, "initrd"]}, and
 * optionally the very files (inodes) that were verified. */
struct image_parts {
	const char *name[2];
	size_t n;
	bool pinned;
	dev_t dev[2];
	ino_t ino[2];
};
void image_parts_of(bool kernel, bool has_initrd, struct image_parts *out);

/*
 * A kernel image's name: the SHA-256 of "kernel:<hex>\ninitrd:<hex or ->\n"
 * (initrd_sha NULL: none).
 */
void image_kernel_sha(const char *kernel_sha, const char *initrd_sha, char out[65]);

/*
 * The content name of the image files in dir, computed by reading them:
 * the disk's SHA-256, or image_kernel_sha of the parts.  Only regular
 * files count (a symlink is refused).  0, or -1 with errno set.
 */
int image_dir_sha(const char *dir, const struct image_parts *parts, char out[65]);

/*
 * Make the verified staging directory the image STATE_DIR/images/<sha256>:
 * everything but the image's parts is removed from it, the parts become
 * 0444 and the directory 0755, then it is renamed into place and the
 * directories are synced.  When the content is stored already, the stored
 * copy is hashed again: it stays (and the staging copy goes) only when it
 * matches; otherwise it is replaced.  With parts->pinned, what lands in
 * place must be those inodes (nothing swapped a file in meanwhile, e.g.
 * another host's upload), else it is taken out again (ESTALE).  The
 * sha256 is held (see below) on success.  -1 with errno set.
 */
int image_files_place(const char *state_dir, const char *staging, const char *sha256,
		      const struct image_parts *parts);

/*
 * Placed files that no committed row references yet: between
 * image_files_place and the store update, a delete of another image with
 * the same content must not remove them.  Release after the update (or
 * after giving up on it).
 */
void image_files_release(const char *sha256);
/* Remove STATE_DIR/images/<sha256> unless held.  -1 with errno set. */
int image_files_remove(const char *state_dir, const char *sha256);

#endif
