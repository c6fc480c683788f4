/*
 * images — image import over the API.
 *
 * An import is three steps so that large files stream straight to disk and
 * a half-sent file never becomes an image:
 *   POST /v1/images                   {name, boot, cmdline?, initrd?} → state "uploading"
 *   PUT  /v1/images/{}/files/{part}   raw bytes of kernel | initrd | disk
 *   POST /v1/images/{}/finalize       validate, hash, move into place → "ready"
 * Files stage in STATE_DIR/images/staging/<id>/ and end content-addressed
 * in STATE_DIR/images/<sha256>/ (see vm/qemu.h), shared by equal imports.
 */
#include "api/api.h"

#include "api/codec.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/validate.h"
#include "vm/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_ID_DIGITS 8
#define IMAGE_MAX_BYTES (64LL << 30)

static char *staging_dir(struct req *r, uint64_t id)
{
	char sid[9];
	image_id_format(id, sid);
	return str_printf("%s/images/staging/%s", r->api->cfg->state_dir, sid);
}

static bool image_resolve(struct req *r, struct image *im)
{
	int rc = store_image_get(r->api->st, r->params[0], req_scope(r), im);

	if (rc != STORE_OK) {
		req_store_error(r, rc, "image", r->params[0]);
		return false;
	}
	return true;
}

/* An image the caller may change: its own (or any, for admins).  Somebody
 * else's public image is visible, so refusing it says nothing new. */
static bool image_resolve_owned(struct req *r, struct image *im)
{
	if (!image_resolve(r, im))
		return false;
	if (!r->admin && im->owner != r->caller) {
		req_error(r, 403, "forbidden", "image '%s' is somebody else's public image",
			  r->params[0]);
		image_free(im);
		return false;
	}
	return true;
}

int h_image_list(struct req *r)
{
	struct image *ims = NULL;
	size_t n = 0;
	int rc = store_image_list(r->api->st, req_scope(r), &ims, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "image", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, image_to_json(&ims[i]));
	images_free(ims, n);
	return req_json(r, 200, arr);
}

int h_image_get(struct req *r)
{
	struct image im = { 0 };

	if (!image_resolve(r, &im))
		return 0;
	req_json(r, 200, image_to_json(&im));
	image_free(&im);
	return 0;
}

int h_image_create(struct req *r)
{
	const char *key;
	json_t *v, *jname, *jboot, *jcmd, *jinitrd;

	json_object_foreach(r->json, key, v) {
		if (strcmp(key, "name") && strcmp(key, "boot") && strcmp(key, "cmdline") &&
		    strcmp(key, "initrd"))
			return req_error(r, 400, "bad_request", "unknown field '%s'", key);
	}
	jname = json_object_get(r->json, "name");
	jboot = json_object_get(r->json, "boot");
	jcmd = json_object_get(r->json, "cmdline");
	jinitrd = json_object_get(r->json, "initrd");
	if (!json_is_string(jname))
		return req_error(r, 400, "bad_request", "'name' is required and must be a string");
	if (!api_name_check(r, json_string_value(jname), IMAGE_ID_DIGITS, "image"))
		return 0;
	const char *boot = json_is_string(jboot) ? json_string_value(jboot) : NULL;
	if (boot == NULL || (strcmp(boot, "kernel") && strcmp(boot, "disk")))
		return req_error(r, 400, "bad_request", "'boot' must be \"kernel\" or \"disk\"");
	bool kernel = strcmp(boot, "kernel") == 0;
	if (jcmd && !json_is_null(jcmd) &&
	    (!kernel || !json_is_string(jcmd) || !cmdline_valid(json_string_value(jcmd))))
		return req_error(r, 400, "bad_request",
				 "'cmdline' is a printable string of kernel images only");
	if (jinitrd && !json_is_null(jinitrd) && (!kernel || !json_is_boolean(jinitrd)))
		return req_error(r, 400, "bad_request", "'initrd' is a boolean of kernel images only");

	struct image im = {
		.name = (char *)json_string_value(jname), .owner = r->caller,
		.format = kernel ? "kernel" : "pending", .boot = (char *)boot,
		.cmdline = json_is_string(jcmd) ? (char *)json_string_value(jcmd) : NULL,
		.has_initrd = json_is_true(jinitrd),
	};
	int rc = store_image_create(r->api->st, &im);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "image", im.name);
	struct image out = { 0 };
	rc = store_image_get_id(r->api->st, im.id, &out);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "image", im.name);
	req_json(r, 201, image_to_json(&out));
	image_free(&out);
	return 0;
}

/* ---- upload ------------------------------------------------------------- */

struct upload {
	int fd;
	long long written;
	char *path;
};

static void upload_free(void *p)
{
	struct upload *u = p;
	if (u->fd >= 0) {
		/* Never finished: drop the partial file. */
		close(u->fd);
		unlink(u->path);
	}
	free(u->path);
	free(u);
}

static bool part_valid(const struct image *im, const char *part)
{
	if (strcmp(im->boot, "kernel") == 0)
		return strcmp(part, "kernel") == 0 || (im->has_initrd && strcmp(part, "initrd") == 0);
	return strcmp(part, "disk") == 0;
}

int h_image_upload_begin(struct req *r)
{
	struct image im = { 0 };
	struct upload *u;
	char *dir;

	if (!image_resolve_owned(r, &im))
		return -1;
	if (strcmp(im.state, "uploading") != 0 || !part_valid(&im, r->params[1])) {
		req_error(r, 409, "conflict", "image '%s' takes no file '%s' now", im.name, r->params[1]);
		image_free(&im);
		return -1;
	}
	dir = staging_dir(r, im.id);
	image_free(&im);
	u = calloc(1, sizeof(*u));
	if (u == NULL || dir == NULL || mkdir_p(dir, 0700) < 0) {
		free(u);
		free(dir);
		req_error(r, 500, "internal", "cannot create the staging directory");
		return -1;
	}
	u->path = str_printf("%s/%s", dir, r->params[1]);
	free(dir);
	u->fd = open(u->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (u->fd < 0) {
		req_error(r, 500, "internal", "cannot write the upload: %s", strerror(errno));
		free(u->path);
		free(u);
		return -1;
	}
	r->stream = u;
	r->stream_free = upload_free;
	return 0;
}

int h_image_upload_chunk(struct req *r, const char *data, size_t len)
{
	struct upload *u = r->stream;

	if (u->written + (long long)len > IMAGE_MAX_BYTES) {
		req_error(r, 413, "too_large", "image files are limited to %lld bytes", IMAGE_MAX_BYTES);
		return -1;
	}
	while (len > 0) {
		ssize_t w = write(u->fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			req_error(r, 507, "storage", "writing the upload failed: %s", strerror(errno));
			return -1;
		}
		data += w;
		len -= (size_t)w;
		u->written += w;
	}
	return 0;
}

int h_image_upload(struct req *r)
{
	struct upload *u = r->stream;

	if (fsync(u->fd) < 0 || close(u->fd) < 0) {
		u->fd = -1;
		unlink(u->path);
		return req_error(r, 507, "storage", "writing the upload failed");
	}
	u->fd = -1;
	return req_json(r, 200, json_pack("{s:s, s:I}", "file", r->params[1],
					  "size", (json_int_t)u->written));
}

/* ---- finalize ----------------------------------------------------------- */

/* SHA-256 of a file (hex) and its size; -1 when unreadable. */
static int sha256_file(const char *path, char hex[65], long long *size)
{
	crypto_hash_sha256_state st;
	unsigned char buf[1 << 16], digest[crypto_hash_sha256_BYTES];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	*size = 0;
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
		*size += n;
	}
	close(fd);
	if (n < 0)
		return -1;
	crypto_hash_sha256_final(&st, digest);
	sodium_bin2hex(hex, 65, digest, sizeof(digest));
	return 0;
}

/*
 * Ask qemu-img what a disk file is.  Only raw and qcow2 without a backing
 * file are accepted: a backing file would let an upload read any file on
 * the host (a qcow2 backed by /etc/shadow).
 */
static int disk_inspect(struct req *r, const char *path, char **format, long long *vsize)
{
	char *argv[] = { "qemu-img", "info", "--output=json", (char *)path, NULL };
	char *out = NULL;
	json_t *info;
	int rc = proc_run(argv, 30000, &out, 1 << 20, false);

	if (rc != 0) {
		free(out);
		req_error(r, 422, "bad_image", "qemu-img cannot read the disk file");
		return -1;
	}
	info = json_loads(out, 0, NULL);
	free(out);
	const char *fmt = json_string_value(json_object_get(info, "format"));
	if (fmt == NULL || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2"))) {
		req_error(r, 422, "bad_image", "disk format '%s' is not raw or qcow2", fmt ? fmt : "?");
		json_decref(info);
		return -1;
	}
	/* An external data file (qcow2 "data-file") would let the image read
	 * any host file just as a backing file would. */
	json_t *fs = json_object_get(json_object_get(info, "format-specific"), "data");
	if (json_object_get(info, "backing-filename") || json_object_get(info, "full-backing-filename") ||
	    json_object_get(fs, "data-file")) {
		req_error(r, 422, "bad_image", "disk images with a backing or external data file are refused");
		json_decref(info);
		return -1;
	}
	*format = strdup(fmt);
	*vsize = json_integer_value(json_object_get(info, "virtual-size"));
	json_decref(info);
	return 0;
}

int h_image_finalize(struct req *r)
{
	struct image im = { 0 };
	char *dir = NULL, *final = NULL, *format = NULL, *p1 = NULL, *p2 = NULL;
	char sha[65], sha2[65];
	long long size = 0, size2 = 0;
	struct stat sb;

	if (json_object_size(r->json) != 0)
		return req_error(r, 400, "bad_request", "finalize takes no fields");
	if (!image_resolve_owned(r, &im))
		return 0;
	if (strcmp(im.state, "uploading") != 0) {
		req_error(r, 409, "conflict", "image '%s' is already %s", im.name, im.state);
		goto out;
	}
	dir = staging_dir(r, im.id);
	if (strcmp(im.boot, "disk") == 0) {
		p1 = str_printf("%s/disk", dir);
		if (sha256_file(p1, sha, &size) < 0) {
			req_error(r, 409, "incomplete", "the disk file was not uploaded");
			goto out;
		}
		if (disk_inspect(r, p1, &format, &size) < 0)
			goto out;
	} else {
		/* A kernel image is named by the hash of its parts' hashes. */
		p1 = str_printf("%s/kernel", dir);
		p2 = str_printf("%s/initrd", dir);
		if (sha256_file(p1, sha, &size) < 0 || size == 0) {
			req_error(r, 409, "incomplete", "the kernel file was not uploaded");
			goto out;
		}
		if (im.has_initrd) {
			if (sha256_file(p2, sha2, &size2) < 0) {
				req_error(r, 409, "incomplete", "the initrd file was not uploaded");
				goto out;
			}
		} else {
			strcpy(sha2, "-");
		}
		char combo[160];
		unsigned char d[crypto_hash_sha256_BYTES];
		snprintf(combo, sizeof(combo), "kernel:%s\ninitrd:%s\n", sha, sha2);
		crypto_hash_sha256(d, (unsigned char *)combo, strlen(combo));
		sodium_bin2hex(sha, sizeof(sha), d, sizeof(d));
		size += size2;
		format = strdup("kernel");
	}
	final = str_printf("%s/images/%s", r->api->cfg->state_dir, sha);
	if (stat(final, &sb) == 0) {
		dir_remove_tree(dir); /* same content already stored */
	} else if (rename(dir, final) < 0) {
		req_error(r, 500, "internal", "cannot store the image: %s", strerror(errno));
		goto out;
	}
	int rc = store_image_finalize(r->api->st, im.id, sha, format, size);
	if (rc != STORE_OK) {
		req_store_error(r, rc, "image", im.name);
		goto out;
	}
	uint64_t id = im.id;
	image_free(&im);
	if (store_image_get_id(r->api->st, id, &im) != STORE_OK)
		goto out;
	req_json(r, 200, image_to_json(&im));
out:
	image_free(&im);
	free(dir);
	free(final);
	free(format);
	free(p1);
	free(p2);
	return 0;
}

int h_image_delete(struct req *r)
{
	struct image im = { 0 };
	int refs = 0;

	if (!image_resolve_owned(r, &im))
		return 0;
	int rc = store_image_delete(r->api->st, im.id);
	if (rc == STORE_CONFLICT) {
		req_error(r, 409, "in_use", "image '%s' is used by a VM", im.name);
		goto out;
	}
	if (rc != STORE_OK) {
		req_store_error(r, rc, "image", r->params[0]);
		goto out;
	}
	/* Files go when no other image shares them. */
	char *path = im.sha256 ? str_printf("%s/images/%s", r->api->cfg->state_dir, im.sha256)
			       : staging_dir(r, im.id);
	if (im.sha256 == NULL || (store_image_sha_refs(r->api->st, im.sha256, im.id, &refs) == STORE_OK &&
				  refs == 0))
		dir_remove_tree(path);
	free(path);
	req_json(r, 200, image_to_json(&im));
out:
	image_free(&im);
	return 0;
}
