/*
 * images — image import over the API.
 *
 * An upload is three steps so that large files stream straight to disk and
 * a half-sent file never becomes an image:
 *   POST /v1/images                   {name, boot, cmdline?, initrd?} → state "uploading"
 *   PUT  /v1/images/{}/files/{part}   raw bytes of kernel | initrd | disk
 *   POST /v1/images/{}/finalize       validate, hash, move into place → "ready"
 * An import from the web is one:
 *   POST /v1/images                   {name, url, sha256?} → state "importing"
 * and hcd downloads the disk in the background (image/import.h) until the
 * image is "ready" or "error"; GET shows its progress meanwhile.
 * Files stage in STATE_DIR/images/staging/<id>/ and end content-addressed
 * in STATE_DIR/images/<sha256>/ (image/files.h), shared by equal imports.
 */
#include "api/api.h"

#include "api/codec.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/validate.h"
#include "image/files.h"
#include "image/import.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_ID_DIGITS 8
#define URL_MAX 2048

static char *staging_dir(struct req *r, uint64_t id)
{
	return image_staging_dir(r->api->cfg->state_dir, id);
}

/* The image as the API shows it: a running import adds its progress. */
static json_t *image_json(struct req *r, const struct image *im)
{
	json_t *j = image_to_json(im);
	long long done, total;

	if (j && strcmp(im->state, "importing") == 0 && r->api->importer &&
	    importer_progress(r->api->importer, im->id, &done, &total))
		json_object_set_new(j, "progress", json_pack("{s:I, s:o}", "done", (json_int_t)done,
			"total", total >= 0 ? json_integer(total) : json_null()));
	return j;
}

static bool image_resolve(struct req *r, struct image *im)
{
	int rc = store_image_get(r->api->st, req_ref(r), req_scope(r), im);

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
		json_array_append_new(arr, image_json(r, &ims[i]));
	images_free(ims, n);
	return req_json(r, 200, arr);
}

int h_image_get(struct req *r)
{
	struct image im = { 0 };

	if (!image_resolve(r, &im))
		return 0;
	req_json(r, 200, image_json(r, &im));
	image_free(&im);
	return 0;
}

/*
 * "url": an absolute http(s) URL with a host and no user:password (the URL
 * is shown with the image, to everyone when the image is public).  Returns
 * curl's normalised form (malloc'd), or NULL with a 400 set.
 */
static char *url_check(struct req *r, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *norm = NULL;

	if (strlen(url) > URL_MAX) {
		req_error(r, 400, "bad_request", "'url' is longer than %d bytes", URL_MAX);
		goto out;
	}
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
			req_error(r, 400, "bad_request", "'url' must not contain spaces or control characters");
			goto out;
		}
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		req_error(r, 400, "bad_request", "'url' must be an absolute http:// or https:// URL");
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		req_error(r, 400, "bad_request", "'url' must be http:// or https://, not %s://", scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		req_error(r, 400, "bad_request", "'url' must not carry a user name or password");
		goto out;
	}
	char *got = NULL;
	if (curl_url_get(u, CURLUPART_URL, &got, 0) != CURLUE_OK) {
		req_error(r, 400, "bad_request", "'url' must be an absolute http:// or https:// URL");
		goto out;
	}
	norm = strdup(got);
	curl_free(got);
	if (norm == NULL)
		req_error(r, 500, "internal", "out of memory");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return norm;
}

/* The new image row, then (for a URL) its download; answers 201. */
static int image_create_reply(struct req *r, struct image *im)
{
	char *err = NULL;
	int rc;

	if (im->source)
		im->import_host = r->api->cfg->host_name;
	rc = store_image_create(r->api->st, im);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "image", im->name);
	if (im->source && importer_start(r->api->importer, im, r->admin, &err) < 0) {
		/* The row says why; the caller sees it in the reply. */
		log_warn("image %s: %s", im->name, err);
		store_image_fail(r->api->st, im->id, err ? err : "cannot start the download");
	}
	free(err);
	struct image out = { 0 };
	rc = store_image_get_id(r->api->st, im->id, &out);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "image", im->name);
	req_json(r, 201, image_json(r, &out));
	image_free(&out);
	return 0;
}

int h_image_create(struct req *r)
{
	static const char *const keys[] = { "name", "boot", "cmdline", "initrd", "url", "sha256",
					    "visibility", NULL };
	const char *name, *boot, *cmdline, *url, *sha, *visibility;
	json_t *jinitrd = json_object_get(r->json, "initrd");
	char expect[SHA256_HEX_LEN + 1];

	if (!only_keys(r, keys) || !get_str(r, "name", true, &name) ||
	    !get_str(r, "boot", false, &boot) || !get_str(r, "cmdline", false, &cmdline) ||
	    !get_str(r, "url", false, &url) || !get_str(r, "sha256", false, &sha) ||
	    !get_str(r, "visibility", false, &visibility))
		return 0;
	if (!api_name_check(r, name, IMAGE_ID_DIGITS, "image"))
		return 0;
	if (visibility && strcmp(visibility, "private") && strcmp(visibility, "public"))
		return req_error(r, 400, "bad_request", "'visibility' must be \"private\" or \"public\"");
	/* A public image is offered to every user: publishing is for admins,
	 * as in most clouds. */
	if (visibility && strcmp(visibility, "public") == 0 && !r->admin)
		return req_error(r, 403, "forbidden", "only admins publish public images");
	if (url && boot && strcmp(boot, "disk") != 0)
		return req_error(r, 400, "bad_request", "an image from a 'url' is a disk image");
	if (url == NULL && (boot == NULL || (strcmp(boot, "kernel") && strcmp(boot, "disk"))))
		return req_error(r, 400, "bad_request", "'boot' must be \"kernel\" or \"disk\"");
	bool kernel = boot && strcmp(boot, "kernel") == 0;
	if (cmdline && (!kernel || !cmdline_valid(cmdline)))
		return req_error(r, 400, "bad_request",
				 "'cmdline' is a printable string of kernel images only");
	if (jinitrd && !json_is_null(jinitrd) && (!kernel || !json_is_boolean(jinitrd)))
		return req_error(r, 400, "bad_request", "'initrd' is a boolean of kernel images only");
	if (sha && (url == NULL || !sha256_hex_parse(sha, expect)))
		return req_error(r, 400, "bad_request", "'sha256' is 64 hex digits and goes with 'url'");

	struct image im = {
		.name = (char *)name, .owner = r->caller,
		.format = kernel ? "kernel" : "pending", .boot = kernel ? "kernel" : "disk",
		.cmdline = (char *)cmdline, .has_initrd = json_is_true(jinitrd),
		.state = url ? "importing" : "uploading", .visibility = (char *)visibility,
		.expect_sha256 = sha ? expect : NULL,
	};
	if (url) {
		if (r->api->importer == NULL)
			return req_error(r, 503, "unavailable", "this hcd does not import from URLs");
		if ((im.source = url_check(r, url)) == NULL)
			return 0;
	}
	image_create_reply(r, &im);
	free(im.source);
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

int h_image_finalize(struct req *r)
{
	struct image im = { 0 };
	char *dir = NULL, *format = NULL, *p1 = NULL, *p2 = NULL, *why = NULL;
	char sha[65], sha2[65];
	long long size = 0, size2 = 0;

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
		struct disk_info info = { 0 };
		if (disk_inspect(p1, &info, &why) < 0) {
			req_error(r, 422, "bad_image", "%s", why);
			goto out;
		}
		format = strdup(info.format);
		size = info.virtual_size;
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
	if (image_files_place(r->api->cfg->state_dir, dir, sha) < 0) {
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
	free(format);
	free(p1);
	free(p2);
	free(why);
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
	/* A download in flight stops; its thread lets go of the files soon,
	 * and the importer removes whatever it wrote meanwhile. */
	if (strcmp(im.state, "importing") == 0 && r->api->importer)
		importer_cancel(r->api->importer, im.id);
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
