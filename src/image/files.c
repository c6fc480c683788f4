/* image/files — see files.h. */
#include "image/files.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QEMU_IMG_TIMEOUT_MS 30000
#define QEMU_IMG_OUT_MAX (1 << 20)
/* Enough to see every magic number disk_format_sniff knows. */
#define SNIFF_BYTES 4096

/* ---- what a disk file is ------------------------------------------------- */

/* Formats qemu would recognise by a magic number at an offset.  Taken as
 * raw (the format hcd gives QEMU), they are harmless but useless, so the
 * user hears why instead. */
static const struct {
	size_t off;
	const char *magic;
	size_t len;
	const char *name;
} foreign[] = {
	{ 0, "KDMV", 4, "VMDK" },
	{ 0, "COWD", 4, "VMDK (ESX)" },
	{ 0, "# Disk DescriptorFile", 21, "VMDK descriptor" },
	{ 0x40, "\x7f\x10\xda\xbe", 4, "VDI" },
	{ 0, "conectix", 8, "VHD" },
	{ 0, "vhdxfile", 8, "VHDX" },
	{ 0, "QED\0", 4, "QED" },
	{ 0, "LUKS\xba\xbe", 6, "LUKS" },
	{ 0, "Bochs Virtual HD Image", 22, "Bochs" },
	{ 0, "WithoutFreeSpace", 16, "Parallels" },
	{ 0, "WithouFreSpacExt", 16, "Parallels" },
};

const char *disk_format_sniff(const unsigned char *head, size_t n, char **why)
{
	*why = NULL;
	if (n >= 4 && memcmp(head, "QFI\xfb", 4) == 0)
		return "qcow2";
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		if (n >= foreign[i].off + foreign[i].len &&
		    memcmp(head + foreign[i].off, foreign[i].magic, foreign[i].len) == 0) {
			*why = str_printf("the disk is a %s image; only raw and qcow2 are accepted",
					  foreign[i].name);
			return NULL;
		}
	return "raw";
}

int disk_info_parse(const char *json, const char *format, struct disk_info *out, char **why)
{
	json_t *info = json_loads(json ? json : "", 0, NULL);
	json_t *vsize = json_object_get(info, "virtual-size");
	const char *fmt = json_string_value(json_object_get(info, "format"));
	int rc = -1;

	*why = NULL;
	if (!json_is_object(info)) {
		*why = strdup("qemu-img cannot read the disk file");
		goto out;
	}
	if (fmt == NULL || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2"))) {
		*why = str_printf("disk format '%s' is not raw or qcow2", fmt ? fmt : "?");
		goto out;
	}
	/* We named the format: an answer about another one is not about
	 * what QEMU will be given. */
	if (format && strcmp(fmt, format) != 0) {
		*why = str_printf("qemu-img read the disk as %s, not %s", fmt, format);
		goto out;
	}
	/* Either key means the image reads another file; an external data
	 * file (qcow2 "data-file") does so just as a backing file would. */
	json_t *data = json_object_get(json_object_get(info, "format-specific"), "data");
	if (json_object_get(info, "backing-filename") || json_object_get(info, "full-backing-filename") ||
	    json_object_get(info, "backing-filename-format") || json_object_get(data, "data-file")) {
		*why = strdup("disk images with a backing or external data file are refused");
		goto out;
	}
	if (json_is_true(json_object_get(data, "corrupt"))) {
		*why = strdup("the qcow2 image is marked corrupt");
		goto out;
	}
	if (!json_is_integer(vsize) || json_integer_value(vsize) <= 0) {
		*why = strdup("the disk has no size");
		goto out;
	}
	snprintf(out->format, sizeof(out->format), "%s", fmt);
	out->virtual_size = json_integer_value(vsize);
	rc = 0;
out:
	json_decref(info);
	return rc;
}

int disk_check_parse(const char *json, int status, char **why)
{
	json_t *res = json_loads(json ? json : "", 0, NULL);
	json_t *errs = json_object_get(res, "check-errors");
	json_t *corrupt = json_object_get(res, "corruptions");
	int rc = -1;

	*why = NULL;
	/* qemu-img check: 0 clean, 3 only leaked clusters (space, not
	 * data); 2 corruptions, 1 the check could not finish. */
	if (!json_is_object(res) || (status != 0 && status != 3)) {
		*why = str_printf("qemu-img check found the qcow2 image damaged (status %d)", status);
		goto out;
	}
	if (!json_is_integer(errs) || json_integer_value(errs) != 0 ||
	    (corrupt && (!json_is_integer(corrupt) || json_integer_value(corrupt) != 0))) {
		*why = strdup("qemu-img check found corruption in the qcow2 image");
		goto out;
	}
	rc = 0;
out:
	json_decref(res);
	return rc;
}

/* qemu-img on the file open on fd, as the image user: its JSON output. */
static int qemu_img(char *const argv[], int fd, const char *image_user, char **json, int *status,
		    char **why)
{
	struct proc_opts o = { .timeout_ms = QEMU_IMG_TIMEOUT_MS, .drop = true,
			       .limit_as = QEMU_IMG_LIMIT_AS, .limit_cpu = QEMU_IMG_LIMIT_CPU_S,
			       .pass_fd = fd };

	*json = NULL;
	if (proc_user_lookup(image_user, &o.uid, &o.gid) < 0 || o.uid == 0) {
		*why = str_printf("image_user '%s' is not an unprivileged user of this host",
				  image_user ? image_user : "");
		return -1;
	}
	*status = proc_run_opts(argv, &o, json, QEMU_IMG_OUT_MAX, false);
	if (*status < 0 || *status == 126 || *status == 127) {
		*why = strdup("cannot run qemu-img");
		return -1;
	}
	return 0;
}

int disk_inspect(int fd, const char *image_user, struct disk_info *out, char **why)
{
	unsigned char head[SNIFF_BYTES];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	char *json = NULL;
	int status, rc = -1;

	*why = NULL;
	if (n < 0) {
		*why = str_printf("cannot read the disk file: %s", strerror(errno));
		return -1;
	}
	const char *format = disk_format_sniff(head, (size_t)n, why);
	if (format == NULL)
		return -1;
	/* The file is our fd 3 in qemu-img: image_user needs no access to
	 * the (root-only) staging directory, and no other file is opened. */
	char *info[] = { "qemu-img", "info", "-f", (char *)format, "--output=json", "/dev/fd/3", NULL };
	if (qemu_img(info, fd, image_user, &json, &status, why) < 0)
		return -1;
	if (status != 0) {
		*why = strdup("qemu-img cannot read the disk file");
		goto out;
	}
	if (disk_info_parse(json, format, out, why) < 0)
		goto out;
	if (strcmp(format, "qcow2") == 0) {
		char *check[] = { "qemu-img", "check", "-f", "qcow2", "--output=json", "/dev/fd/3", NULL };
		free(json);
		if (qemu_img(check, fd, image_user, &json, &status, why) < 0 ||
		    disk_check_parse(json, status, why) < 0)
			goto out;
	}
	rc = 0;
out:
	free(json);
	return rc;
}

/* ---- names and parts ------------------------------------------------------ */

char *image_staging_dir(const char *state_dir, uint64_t id)
{
	return str_printf("%s/images/staging/%08llx", state_dir, (unsigned long long)(id & 0xffffffffu));
}

void image_parts_of(bool kernel, bool has_initrd, struct image_parts *out)
{
	memset(out, 0, sizeof(*out));
	out->name[0] = kernel ? "kernel" : "disk";
	out->name[1] = kernel ? "initrd" : NULL;
	out->n = kernel && has_initrd ? 2 : 1;
}

void image_kernel_sha(const char *kernel_sha, const char *initrd_sha, char out[65])
{
	char combo[160];
	struct sha256_stream st;

	snprintf(combo, sizeof(combo), "kernel:%s\ninitrd:%s\n", kernel_sha,
		 initrd_sha ? initrd_sha : "-");
	sha256_begin(&st);
	sha256_feed(&st, combo, strlen(combo));
	sha256_final_hex(&st, out);
}

/* SHA-256 of a regular file (a symlink is refused, not followed). */
static int file_sha(const char *path, char out[65])
{
	struct sha256_stream st;
	struct stat sb;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = -1, saved;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0)
		goto out;
	if (!S_ISREG(sb.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	sha256_begin(&st);
	if (sha256_update_fd(&st, fd, -1) != (long long)sb.st_size) {
		if (errno == 0)
			errno = EIO;
		goto out;
	}
	sha256_final_hex(&st, out);
	rc = 0;
out:
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int image_dir_sha(const char *dir, const struct image_parts *parts, char out[65])
{
	char sha[2][65];

	for (size_t i = 0; i < parts->n; i++) {
		char *path = str_printf("%s/%s", dir, parts->name[i]);
		int rc = path ? file_sha(path, sha[i]) : -1;
		free(path);
		if (rc < 0)
			return -1;
	}
	if (strcmp(parts->name[0], "disk") == 0)
		memcpy(out, sha[0], 65);
	else
		image_kernel_sha(sha[0], parts->n > 1 ? sha[1] : NULL, out);
	return 0;
}

/* ---- placement ------------------------------------------------------------ */

/* Serialises placements and removals in this process (workers and import
 * threads place concurrently), and guards the holds. */
static pthread_mutex_t place_lock = PTHREAD_MUTEX_INITIALIZER;

struct hold {
	char sha[65];
	int count;
	struct hold *next;
};
static struct hold *holds;
static unsigned replaced_seq;

static bool is_part(const struct image_parts *parts, const char *name)
{
	for (size_t i = 0; i < parts->n; i++)
		if (strcmp(parts->name[i], name) == 0)
			return true;
	return false;
}

/* Bring a verified staging dir into the shape of a placed image: only its
 * parts, regular files, read-only, the directory readable by VM users,
 * all of it on disk. */
static int staging_tidy(const char *staging, const struct image_parts *parts)
{
	DIR *d = opendir(staging);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    is_part(parts, de->d_name))
			continue;
		/* A download's checkpoint, a crashed upload's partial file. */
		char *path = str_printf("%s/%s", staging, de->d_name);
		rc = path ? dir_remove_tree(path) : -1;
		free(path);
	}
	closedir(d);
	for (size_t i = 0; rc == 0 && i < parts->n; i++) {
		char *path = str_printf("%s/%s", staging, parts->name[i]);
		struct stat sb;
		if (path == NULL || lstat(path, &sb) < 0)
			rc = -1;
		else if (!S_ISREG(sb.st_mode))
			rc = -1, errno = EINVAL;
		else if (chmod(path, 0444) < 0)
			rc = -1;
		free(path);
	}
	if (rc == 0 && (chmod(staging, 0755) < 0 || dir_sync(staging) < 0))
		rc = -1;
	return rc;
}

static void hold_locked(const char *sha)
{
	for (struct hold *h = holds; h; h = h->next)
		if (strcmp(h->sha, sha) == 0) {
			h->count++;
			return;
		}
	struct hold *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return; /* only a concurrent delete of equal content could then misjudge it */
	memcpy(h->sha, sha, 65);
	h->count = 1;
	h->next = holds;
	holds = h;
}

void image_files_release(const char *sha256)
{
	pthread_mutex_lock(&place_lock);
	for (struct hold **pp = &holds; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->sha, sha256) == 0) {
			struct hold *h = *pp;
			if (--h->count == 0) {
				*pp = h->next;
				free(h);
			}
			break;
		}
	pthread_mutex_unlock(&place_lock);
}

static bool held_locked(const char *sha)
{
	for (struct hold *h = holds; h; h = h->next)
		if (strcmp(h->sha, sha) == 0)
			return true;
	return false;
}

int image_files_remove(const char *state_dir, const char *sha256)
{
	char *path = str_printf("%s/images/%s", state_dir, sha256);
	int rc = 0, saved;

	if (path == NULL)
		return -1;
	pthread_mutex_lock(&place_lock);
	if (!held_locked(sha256))
		rc = dir_remove_tree(path);
	saved = errno;
	pthread_mutex_unlock(&place_lock);
	free(path);
	errno = saved;
	return rc;
}

/* The stored directory matches its name: keep it (with the modes a placed
 * image has; older versions left them writable). */
static bool stored_matches(const char *final, const char *sha, const struct image_parts *parts)
{
	char have[65];

	if (image_dir_sha(final, parts, have) < 0 || strcmp(have, sha) != 0)
		return false;
	for (size_t i = 0; i < parts->n; i++) {
		char *path = str_printf("%s/%s", final, parts->name[i]);
		if (path)
			chmod(path, 0444);
		free(path);
	}
	chmod(final, 0755);
	return true;
}

/* The files now in place are the inodes that were verified. */
static bool placed_as_verified(const char *final, const struct image_parts *parts)
{
	for (size_t i = 0; parts->pinned && i < parts->n; i++) {
		char *path = str_printf("%s/%s", final, parts->name[i]);
		struct stat sb;
		bool same = path && lstat(path, &sb) == 0 && sb.st_dev == parts->dev[i] &&
			    sb.st_ino == parts->ino[i];
		free(path);
		if (!same)
			return false;
	}
	return true;
}

/* Take a directory out of the store (and remove it).  Locked. */
static int unplace(const char *images, const char *final, const char *sha256)
{
	char *aside = str_printf("%s/.replaced-%s-%ld-%u", images, sha256, (long)getpid(),
				 replaced_seq++);
	int rc = aside ? rename(final, aside) : -1, saved = errno;

	if (rc == 0) {
		dir_sync(images);
		dir_remove_tree(aside);
	}
	free(aside);
	errno = saved;
	return rc;
}

int image_files_place(const char *state_dir, const char *staging, const char *sha256,
		      const struct image_parts *parts)
{
	char *images = str_printf("%s/images", state_dir);
	char *final = str_printf("%s/images/%s", state_dir, sha256);
	char *parent = str_printf("%s/images/staging", state_dir);
	int rc = -1, saved;

	if (images == NULL || final == NULL || parent == NULL) {
		errno = ENOMEM;
		goto out;
	}
	if (staging_tidy(staging, parts) < 0)
		goto out;
	pthread_mutex_lock(&place_lock);
	for (int tries = 0; tries < 3; tries++) {
		if (rename(staging, final) == 0) {
			if (!placed_as_verified(final, parts)) {
				unplace(images, final, sha256);
				errno = ESTALE;
				break;
			}
			/* Both directories changed: the new name must be on
			 * disk before the store says the image is ready. */
			if (dir_sync(images) < 0 || dir_sync(parent) < 0)
				break;
			rc = 0;
			break;
		}
		if (errno != EEXIST && errno != ENOTEMPTY)
			break;
		if (stored_matches(final, sha256, parts)) {
			rc = dir_remove_tree(staging) < 0 ? -1 : dir_sync(parent);
			break;
		}
		/* Not what its name says (a poisoned or damaged copy): it must
		 * not serve this content.  VMs that have it open keep their
		 * file; every new user gets the verified one. */
		log_warn("image store: %s does not hold what its name says; replacing it", final);
		if (unplace(images, final, sha256) < 0 && errno != ENOENT)
			break;
	}
	if (rc == 0)
		hold_locked(sha256);
	saved = errno;
	pthread_mutex_unlock(&place_lock);
	errno = saved;
out:
	saved = errno;
	free(images);
	free(final);
	free(parent);
	errno = saved;
	return rc;
}
