/*
 * images — image import over the API.
 *
 * An upload is three steps so that large files stream straight to disk and
 * a half-sent file never becomes an image:
 *   POST /v1/images                   {name, boot, cmdline?, initrd?} → state "uploading"
 *   PUT  /v1/images/{}/files/{part}   raw bytes of kernel | initrd | disk, hashed
 *                                     as they arrive
 *   POST /v1/images/{}/finalize       check, move into place → "ready"
 * The slow steps (syncing a PUT's file, qemu-img, the move) run on a worker
 * (req_defer), never on the loop.
 * An import from the web is one:
 *   POST /v1/images                   {name, url, sha256?} → state "importing"
 * and hcd downloads the disk in the background (image/import.h) until the
 * image is "ready" or "error"; GET shows its progress meanwhile.
 * Files stage in STATE_DIR/images/staging/<id>/ and end content-addressed
 * in STATE_DIR/images/<sha256>/ (image/files.h), shared by equal imports.
 * An image from a stopped VM's root disk is one too (capture.c):
 *   POST /v1/images                   {name, from_vm} → state "importing"
 * Concurrent URL imports are capped per user and in total
 * (import_max_per_user, import_max_total): beyond that, 429.
 */
#include "api/handlers.h"

#include "api/codec.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
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
/* What a refused import is told to wait: downloads take a while. */
#define IMPORT_RETRY_AFTER_S 30

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
					    "visibility", "from_vm", NULL };
	const char *name, *boot, *cmdline, *url, *sha, *visibility, *from_vm;
	json_t *jinitrd = json_object_get(r->json, "initrd");
	char expect[SHA256_HEX_LEN + 1];

	if (!only_keys(r, keys) || !get_str(r, "name", true, &name) ||
	    !get_str(r, "boot", false, &boot) || !get_str(r, "cmdline", false, &cmdline) ||
	    !get_str(r, "url", false, &url) || !get_str(r, "sha256", false, &sha) ||
	    !get_str(r, "visibility", false, &visibility) || !get_str(r, "from_vm", false, &from_vm))
		return 0;
	if (!api_name_check(r, name, IMAGE_ID_DIGITS, "image"))
		return 0;
	if (visibility && strcmp(visibility, "private") && strcmp(visibility, "public"))
		return req_error(r, 400, "bad_request", "'visibility' must be \"private\" or \"public\"");
	/* A public image is offered to every user: publishing is for admins,
	 * as in most clouds. */
	if (visibility && strcmp(visibility, "public") == 0 && !r->admin)
		return req_error(r, 403, "forbidden", "only admins publish public images");
	if (from_vm && (url || boot || cmdline || sha || (jinitrd && !json_is_null(jinitrd))))
		return req_error(r, 400, "bad_request", "'from_vm' takes only 'name' and 'visibility'");
	if (from_vm)
		return h_image_capture(r, name, from_vm, visibility);
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
		char why[160];
		if (r->api->importer == NULL)
			return req_error(r, 503, "unavailable", "this hcd does not import from URLs");
		if ((im.source = url_check(r, url)) == NULL)
			return 0;
		if (!importer_has_room(r->api->importer, r->caller, why, sizeof(why))) {
			free(im.source);
			req_retry_after(r, IMPORT_RETRY_AFTER_S);
			return req_error(r, 429, "too_many_imports", "%s", why);
		}
	}
	image_create_reply(r, &im);
	free(im.source);
	return 0;
}

/* ---- uploads in flight ---------------------------------------------------
 *
 * What keeps a file from changing under a finished image:
 *   - every PUT writes its own new file (<part>.part-<random>, O_EXCL) and
 *     hashes the bytes as they arrive; only when its body is complete is
 *     that file synced, made read-only, closed and renamed to <part>.  No
 *     descriptor ever writes a file another request completed;
 *   - every chunk asks whether the upload phase still runs (the image was
 *     not deleted here, and — at most once a second, and at the end — the
 *     store still says "uploading": another host may have finalized it);
 *   - finalize refuses while any PUT of the image is open here, and no PUT
 *     begins while it runs; it trusts the hash taken on arrival only for
 *     the very file that PUT completed (same inode, size and mtime), and
 *     hashes again otherwise (after a restart of hcd).
 * These lists belong to the loop's thread (one API per hcd).
 */

#define UPLOAD_STATE_CHECK_MS 1000

struct upload {
	struct upload *next;         /* in `uploads` while open */
	bool open;
	bool dead;                   /* its upload phase ended: refuse what follows */
	uint64_t image;
	char part[8];
	char *dir, *tmp, *path;      /* staging dir, this PUT's own file, the part's name */
	int fd;
	struct sha256_stream hash;
	long long written;
	long long checked_ms;
	/* set by upload_commit_work */
	int err;
	char sha[SHA256_HEX_LEN + 1];
	struct stat sb;
};

/* A part whose PUT completed here: its hash as the bytes arrived. */
struct staged {
	struct staged *next;
	uint64_t image;
	char part[8];
	char sha[SHA256_HEX_LEN + 1];
	struct stat sb;
};

struct fin_job;

static struct upload *uploads;
static struct staged *staged;
static struct fin_job *finalizing;

static bool upload_open_for(uint64_t image)
{
	for (struct upload *u = uploads; u; u = u->next)
		if (u->image == image && !u->dead)
			return true;
	return false;
}

static void upload_unlist(struct upload *u)
{
	for (struct upload **pp = &uploads; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	u->open = false;
}

/* Stop writing at once: the partial file goes. */
static void upload_abandon(struct upload *u)
{
	if (u->fd >= 0) {
		close(u->fd);
		u->fd = -1;
		unlink(u->tmp);
	}
}

static void upload_free(void *p)
{
	struct upload *u = p;

	if (u->open)
		upload_unlist(u);
	upload_abandon(u);   /* never finished, or refused */
	free(u->dir);
	free(u->tmp);
	free(u->path);
	free(u);
}

static void staged_forget(uint64_t image, const char *part)
{
	for (struct staged **pp = &staged; *pp;) {
		struct staged *s = *pp;
		if (s->image == image && (part == NULL || strcmp(s->part, part) == 0)) {
			*pp = s->next;
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

static void staged_put(const struct upload *u)
{
	struct staged *s = calloc(1, sizeof(*s));

	staged_forget(u->image, u->part);
	if (s == NULL)
		return; /* finalize will hash the file again */
	s->image = u->image;
	memcpy(s->part, u->part, sizeof(s->part));
	memcpy(s->sha, u->sha, sizeof(s->sha));
	s->sb = u->sb;
	s->next = staged;
	staged = s;
}

static const struct staged *staged_get(uint64_t image, const char *part)
{
	for (const struct staged *s = staged; s; s = s->next)
		if (s->image == image && strcmp(s->part, part) == 0)
			return s;
	return NULL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static bool image_finalizing(uint64_t image);

/* ---- upload ------------------------------------------------------------- */

static bool part_valid(const struct image *im, const char *part)
{
	if (strcmp(im->boot, "kernel") == 0)
		return strcmp(part, "kernel") == 0 || (im->has_initrd && strcmp(part, "initrd") == 0);
	return strcmp(part, "disk") == 0;
}

int h_image_upload_begin(struct req *r)
{
	struct image im = { 0 };
	struct upload *u = NULL;
	unsigned char rnd[4];

	if (!image_resolve_owned(r, &im))
		return -1;
	if (strcmp(im.state, "uploading") != 0 || !part_valid(&im, r->params[1])) {
		req_error(r, 409, "conflict", "image '%s' takes no file '%s' now", im.name, r->params[1]);
		goto fail;
	}
	if (image_finalizing(im.id)) {
		req_error(r, 409, "conflict", "image '%s' is being finalized", im.name);
		goto fail;
	}
	const char *cl = req_header(r, "Content-Length");
	if (cl && strtoll(cl, NULL, 10) > IMAGE_MAX_BYTES) {
		req_error(r, 413, "too_large", "image files are limited to %lld bytes", IMAGE_MAX_BYTES);
		goto fail;
	}
	u = calloc(1, sizeof(*u));
	if (u)
		u->fd = -1;
	if (u == NULL || (u->dir = staging_dir(r, im.id)) == NULL || mkdir_p(u->dir, 0700) < 0) {
		req_error(r, 500, "internal", "cannot create the staging directory");
		goto fail;
	}
	u->image = im.id;
	snprintf(u->part, sizeof(u->part), "%s", r->params[1]);
	randombytes_buf(rnd, sizeof(rnd));
	u->tmp = str_printf("%s/%s.part-%02x%02x%02x%02x", u->dir, u->part, rnd[0], rnd[1], rnd[2], rnd[3]);
	u->path = str_printf("%s/%s", u->dir, u->part);
	if (u->tmp == NULL || u->path == NULL ||
	    (u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		req_error(r, 500, "internal", "cannot write the upload: %s", strerror(errno));
		goto fail;
	}
	sha256_begin(&u->hash);
	u->checked_ms = now_ms();
	u->open = true;
	u->next = uploads;
	uploads = u;
	r->stream = u;
	r->stream_free = upload_free;
	image_free(&im);
	return 0;
fail:
	if (u)
		upload_free(u);
	image_free(&im);
	return -1;
}

/*
 * Does the upload phase of u's image still run?  The flag set by a delete
 * here is asked every time; the store (another host may have finalized or
 * deleted the image) once a second, and always when `now`.  False with
 * the 409 set; u writes nothing any more.
 */
static bool upload_wanted(struct req *r, struct upload *u, bool now)
{
	if (!u->dead && (now || now_ms() - u->checked_ms >= UPLOAD_STATE_CHECK_MS)) {
		struct image im = { 0 };
		u->checked_ms = now_ms();
		if (store_image_get_id(r->api->st, u->image, &im) != STORE_OK ||
		    strcmp(im.state, "uploading") != 0)
			u->dead = true;
		image_free(&im);
	}
	if (!u->dead)
		return true;
	upload_abandon(u);
	req_error(r, 409, "conflict", "the upload phase of image %08llx has ended (finalized or deleted)",
		  (unsigned long long)u->image);
	return false;
}

int h_image_upload_chunk(struct req *r, const char *data, size_t len)
{
	struct upload *u = r->stream;

	if (!upload_wanted(r, u, false))
		return -1;
	if (u->written + (long long)len > IMAGE_MAX_BYTES) {
		upload_abandon(u);
		req_error(r, 413, "too_large", "image files are limited to %lld bytes", IMAGE_MAX_BYTES);
		return -1;
	}
	sha256_feed(&u->hash, data, len);
	while (len > 0) {
		ssize_t w = write(u->fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			req_error(r, 507, "storage", "writing the upload failed: %s", strerror(errno));
			upload_abandon(u);
			return -1;
		}
		data += w;
		len -= (size_t)w;
		u->written += w;
	}
	return 0;
}

/* On a worker: the body is complete — make it the part, for good. */
static void upload_commit_work(void *arg)
{
	struct upload *u = arg;

	sha256_final_hex(&u->hash, u->sha);
	/* Read-only before it gets the part's name, and closed right after:
	 * from here on no handle can write it. */
	if (fsync(u->fd) < 0 || fchmod(u->fd, 0444) < 0 || rename(u->tmp, u->path) < 0 ||
	    fstat(u->fd, &u->sb) < 0 || dir_sync(u->dir) < 0)
		u->err = errno ? errno : EIO;
	close(u->fd);
	u->fd = -1;
	if (u->err)
		unlink(u->tmp);
}

static void upload_commit_done(struct req *r, void *arg, bool ran)
{
	struct upload *u = arg;

	upload_unlist(u);
	if (!ran)
		return; /* upload_free drops the file */
	if (u->dead) {
		/* Deleted while the file was being synced: whatever the
		 * rename put back into its staging dir goes too. */
		dir_remove_tree(u->dir);
		req_error(r, 409, "conflict", "image %08llx was deleted", (unsigned long long)u->image);
	} else if (u->err) {
		req_error(r, 507, "storage", "writing the upload failed: %s", strerror(u->err));
	} else {
		staged_put(u);
		req_json(r, 200, json_pack("{s:s, s:I, s:s}", "file", u->part, "size",
					   (json_int_t)u->written, "sha256", u->sha));
	}
}

int h_image_upload(struct req *r)
{
	struct upload *u = r->stream;

	if (!upload_wanted(r, u, true)) {
		upload_unlist(u);
		return 0;
	}
	return req_defer(r, upload_commit_work, upload_commit_done, u);
}

/* ---- finalize ----------------------------------------------------------- */

struct fin_job {
	struct fin_job *next;        /* in `finalizing` */
	uint64_t image;
	char *state_dir, *image_user, *staging;
	bool kernel;
	struct image_parts parts;
	struct staged known[2];      /* hashes taken on arrival; image 0 = none */
	/* the outcome */
	int status;                  /* 0, or the HTTP error */
	const char *code;
	char *why;
	char sha[SHA256_HEX_LEN + 1];
	char format[8];
	int64_t size;
	bool placed;
};

static bool image_finalizing(uint64_t image)
{
	for (const struct fin_job *j = finalizing; j; j = j->next)
		if (j->image == image)
			return true;
	return false;
}

static void fin_fail(struct fin_job *j, int status, const char *code, char *why)
{
	j->status = status;
	j->code = code;
	j->why = why ? why : strdup("out of memory");
}

/* One part: its hash (taken on arrival when this is the file that PUT
 * completed, else read now) and, for a disk, its check. */
static int fin_part(struct fin_job *j, size_t i, char sha[SHA256_HEX_LEN + 1], long long *size)
{
	char *path = str_printf("%s/%s", j->staging, j->parts.name[i]);
	int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1, rc = -1;
	struct stat sb;

	free(path);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (j->kernel && i == 0 && sb.st_size == 0)) {
		fin_fail(j, 409, "incomplete", str_printf("the %s file was not uploaded", j->parts.name[i]));
		goto out;
	}
	*size = sb.st_size;
	j->parts.dev[i] = sb.st_dev;
	j->parts.ino[i] = sb.st_ino;
	if (j->known[i].image && same_file(&j->known[i].sb, &sb)) {
		memcpy(sha, j->known[i].sha, SHA256_HEX_LEN + 1);
	} else {
		struct sha256_stream st;
		sha256_begin(&st);
		if (sha256_update_fd(&st, fd, -1) != (long long)sb.st_size) {
			fin_fail(j, 500, "internal", str_printf("cannot read the %s file", j->parts.name[i]));
			goto out;
		}
		sha256_final_hex(&st, sha);
	}
	if (!j->kernel) {
		struct disk_info info = { 0 };
		char *why = NULL;
		if (disk_inspect(fd, j->image_user, &info, &why) < 0) {
			fin_fail(j, 422, "bad_image", why);
			goto out;
		}
		memcpy(j->format, info.format, sizeof(j->format));
		j->size = info.virtual_size;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* On a worker: hash (if need be), check, move into place. */
static void finalize_work(void *arg)
{
	struct fin_job *j = arg;
	char sha[2][SHA256_HEX_LEN + 1];
	long long size[2] = { 0, 0 };

	for (size_t i = 0; i < j->parts.n; i++)
		if (fin_part(j, i, sha[i], &size[i]) < 0)
			return;
	j->parts.pinned = true; /* what is placed must be what was checked */
	if (j->kernel) {
		image_kernel_sha(sha[0], j->parts.n > 1 ? sha[1] : NULL, j->sha);
		snprintf(j->format, sizeof(j->format), "kernel");
		j->size = size[0] + size[1];
	} else {
		memcpy(j->sha, sha[0], sizeof(j->sha));
	}
	if (image_files_place(j->state_dir, j->staging, j->sha, &j->parts) < 0) {
		fin_fail(j, 500, "internal", str_printf("cannot store the image: %s", strerror(errno)));
		return;
	}
	j->placed = true;
}

static void fin_job_free(struct fin_job *j)
{
	free(j->state_dir);
	free(j->image_user);
	free(j->staging);
	free(j->why);
	free(j);
}

static void finalize_done(struct req *r, void *arg, bool ran)
{
	struct fin_job *j = arg;
	struct image im = { 0 };

	for (struct fin_job **pp = &finalizing; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (!ran)
		goto out;
	if (j->status) {
		req_error(r, j->status, j->code, "%s", j->why);
		goto out;
	}
	/* The files are in place (and synced) under their hash; if the store
	 * fails now, a retry of the same content finds them there. */
	int rc = store_image_finalize(r->api->st, j->image, j->sha, j->format, j->size);
	if (rc == STORE_OK)
		rc = store_image_get_id(r->api->st, j->image, &im);
	if (rc != STORE_OK) {
		req_store_error(r, rc, "image", NULL);
		goto out;
	}
	staged_forget(j->image, NULL);
	req_json(r, 200, image_to_json(&im));
	image_free(&im);
out:
	if (j->placed)
		image_files_release(j->sha);
	fin_job_free(j);
}

int h_image_finalize(struct req *r)
{
	struct image im = { 0 };
	struct fin_job *j = NULL;

	if (json_object_size(r->json) != 0)
		return req_error(r, 400, "bad_request", "finalize takes no fields");
	if (!image_resolve_owned(r, &im))
		return 0;
	if (strcmp(im.state, "uploading") != 0) {
		req_error(r, 409, "conflict", "image '%s' is already %s", im.name, im.state);
		goto out;
	}
	if (image_finalizing(im.id)) {
		req_error(r, 409, "conflict", "image '%s' is being finalized already", im.name);
		goto out;
	}
	/* A body still arriving could replace a part after it was checked. */
	if (upload_open_for(im.id)) {
		req_error(r, 409, "upload_open",
			  "an upload to image '%s' is still open: finish or abort it first", im.name);
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->state_dir = strdup(r->api->cfg->state_dir)) == NULL ||
	    (j->image_user = strdup(r->api->cfg->image_user)) == NULL ||
	    (j->staging = staging_dir(r, im.id)) == NULL) {
		req_error(r, 500, "internal", "out of memory");
		goto out;
	}
	j->image = im.id;
	j->kernel = strcmp(im.boot, "kernel") == 0;
	image_parts_of(j->kernel, im.has_initrd, &j->parts);
	for (size_t i = 0; i < j->parts.n; i++) {
		const struct staged *s = staged_get(im.id, j->parts.name[i]);
		if (s)
			j->known[i] = *s;
	}
	j->next = finalizing;
	finalizing = j;
	image_free(&im);
	return req_defer(r, finalize_work, finalize_done, j);
out:
	if (j)
		fin_job_free(j);
	image_free(&im);
	return 0;
}

int h_image_delete(struct req *r)
{
	struct image im = { 0 };
	int refs = 0;

	if (!image_resolve_owned(r, &im))
		return 0;
	if (image_finalizing(im.id)) {
		req_error(r, 409, "conflict", "image '%s' is being finalized; try again", im.name);
		goto out;
	}
	int rc = store_image_delete(r->api->st, im.id);
	if (rc == STORE_CONFLICT) {
		req_error(r, 409, "in_use", "image '%s' is used by a VM", im.name);
		goto out;
	}
	if (rc != STORE_OK) {
		req_store_error(r, rc, "image", r->params[0]);
		goto out;
	}
	/* Uploads still sending end with their next chunk. */
	for (struct upload *u = uploads; u; u = u->next)
		if (u->image == im.id)
			u->dead = true;
	staged_forget(im.id, NULL);
	/* A download in flight stops; its thread lets go of the files soon,
	 * and the importer removes whatever it wrote meanwhile. */
	if (strcmp(im.state, "importing") == 0 && r->api->importer)
		importer_cancel(r->api->importer, im.id);
	/* Files go when no other image shares them. */
	if (im.sha256 == NULL) {
		char *path = staging_dir(r, im.id);
		if (path)
			dir_remove_tree(path);
		free(path);
	} else if (store_image_sha_refs(r->api->st, im.sha256, im.id, &refs) == STORE_OK && refs == 0) {
		image_files_remove(r->api->cfg->state_dir, im.sha256);
	}
	req_json(r, 200, image_to_json(&im));
out:
	image_free(&im);
	return 0;
}
