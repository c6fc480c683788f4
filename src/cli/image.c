/*
 * image.c — `hc image …`: images.  list, show and delete are the shared
 * verbs of resource.c; import is here.
 *
 * An import is the API's three steps (create → upload each file → finalize,
 * see src/api/images.c).  Invariant: when hc returns, the import either
 * produced a ready image or left nothing behind — every failure after the
 * create deletes the half-made image.  Ctrl-C (SIGINT, SIGTERM, SIGHUP) is
 * one of those failures: it is caught for the whole import so that the
 * transfer stops and the cleanup still runs.  Local files are opened and
 * checked before anything is created, and streamed from disk.
 */
#include "cli/cli.h"

#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct column image_list[] = {
	{ "ID", "id", NULL },
	{ "NAME", "name", NULL },
	{ "BOOT", "boot", NULL },
	{ "FORMAT", "format", NULL },
	{ "SIZE", "size", fmt_bytes },
	{ "STATE", "state", NULL },
	{ 0 },
};

static const struct column image_show[] = {
	{ "id", "id", NULL },
	{ "name", "name", NULL },
	{ "state", "state", NULL },
	{ "boot", "boot", NULL },
	{ "format", "format", NULL },
	{ "size", "size", fmt_bytes },
	{ "sha256", "sha256", NULL },
	{ "cmdline", "cmdline", NULL },
	{ "initrd", "initrd", NULL },
	{ "owner", "owner", NULL },
	{ "created", "created", fmt_time },
	{ 0 },
};

const struct resource res_image = { "image", "images", image_list, image_show, NULL };

/* ---- local files -------------------------------------------------------- */

/* One file of the image: what the API calls it and where it comes from. */
struct part {
	const char *name;          /* kernel | initrd | disk */
	const char *path;
	FILE *f;
	long long size;
};

#define MAX_PARTS 2

static int part_open(struct hc *h, struct part *p)
{
	struct stat st;
	int fd = open(p->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hc_fail(h, "%s file '%s': %s", p->name, p->path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hc_fail(h, "%s file '%s' is not a regular file", p->name, p->path);
	}
	p->size = st.st_size;
	if ((p->f = fdopen(fd, "rb")) == NULL) {
		close(fd);
		return hc_fail(h, "%s file '%s': %s", p->name, p->path, strerror(errno));
	}
	return 0;
}

/* The parts the options name, opened; the create body says what they are. */
static int parts_from_args(struct hc *h, const struct args *a, struct part *parts, size_t *n,
			   json_t **create)
{
	const char *kernel = arg_opt(a, "--kernel"), *initrd = arg_opt(a, "--initrd");
	const char *cmdline = arg_opt(a, "--cmdline"), *disk = arg_opt(a, "--disk");

	*n = 0;
	*create = NULL;
	if ((kernel == NULL) == (disk == NULL))
		return hc_usage(h, "image import: give one of --kernel F or --disk F");
	if (disk && (initrd || cmdline))
		return hc_usage(h, "image import: --initrd and --cmdline go with --kernel only");
	if (disk) {
		parts[(*n)++] = (struct part){ .name = "disk", .path = disk };
		*create = json_pack("{s:s, s:s}", "name", a->pos[0], "boot", "disk");
	} else {
		parts[(*n)++] = (struct part){ .name = "kernel", .path = kernel };
		if (initrd)
			parts[(*n)++] = (struct part){ .name = "initrd", .path = initrd };
		*create = json_pack("{s:s, s:s, s:b}", "name", a->pos[0], "boot", "kernel",
				    "initrd", initrd != NULL);
		if (*create && cmdline)
			json_object_set_new(*create, "cmdline", json_string(cmdline));
	}
	if (*create == NULL)
		return hc_usage(h, "arguments must be valid UTF-8 text");
	for (size_t i = 0; i < *n; i++)
		if (part_open(h, &parts[i]) < 0)
			return -1;
	return 0;
}

static void parts_close(struct part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (parts[i].f)
			fclose(parts[i].f);
}

/* ---- the steps ---------------------------------------------------------- */

static int upload_part(struct hc *h, const char *id, const struct part *p)
{
	char *suffix = str_printf("files/%s", p->name);
	char *path = suffix ? api_path("images", id, suffix) : NULL;
	bool tty = isatty(STDERR_FILENO);
	struct api_req rq = { .method = "PUT", .path = path, .upload = p->f,
			      .upload_size = p->size, .progress = tty ? p->name : NULL,
			      .cancel = &hc_interrupted };
	struct api_resp rs;
	int rc;

	free(suffix);
	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_request(h, &rq, &rs);
	api_resp_free(&rs);
	free(path);
	return rc;
}

static int finalize(struct hc *h, const char *id, json_t **image)
{
	char *path = api_path("images", id, "finalize");
	json_t *empty = json_object();
	int rc = -1;

	if (path && empty)
		rc = api_call(h, "POST", path, empty, image, NULL);
	else
		hc_fail(h, "out of memory");
	free(path);
	json_decref(empty);
	return rc;
}

/* Delete the half-made image; the first error stays the one reported. */
static void discard(struct hc *h, const char *id)
{
	int status = h->status;
	char *first = hc_take_error(h), *path = api_path("images", id, NULL);

	if (path == NULL || api_call(h, "DELETE", path, NULL, NULL, NULL) < 0) {
		char *why = hc_take_error(h);
		hc_fail(h, "%s (and removing the unfinished image %s failed: %s)",
			first ? first : "import failed", id, why ? why : "out of memory");
		free(why);
	} else {
		hc_fail(h, "%s", first ? first : "import failed");
	}
	h->status = status ? status : HC_EXIT_FAIL;
	free(first);
	free(path);
}

/* Upload every part and finalize the image `id`; 0 with *image when ready. */
static int fill(struct hc *h, const char *id, const struct part *parts, size_t n, json_t **image)
{
	for (size_t i = 0; i < n; i++) {
		if (hc_interrupted)
			return hc_fail(h, "interrupted");
		if (upload_part(h, id, &parts[i]) < 0)
			return -1;
	}
	if (hc_interrupted)
		return hc_fail(h, "interrupted");
	return finalize(h, id, image);
}

int cmd_image_import(struct hc *h, const struct args *a)
{
	struct part parts[MAX_PARTS] = { 0 };
	size_t n = 0;
	json_t *create = NULL, *made = NULL, *image = NULL;
	char *id = NULL;
	int rc = -1;

	if (parts_from_args(h, a, parts, &n, &create) < 0)
		goto out;
	hc_catch_signals(true);
	if (api_call(h, "POST", "/v1/images", create, &made, NULL) < 0)
		goto restore;
	/* From here on the image exists: finish it or remove it. */
	id = strdup(json_str(made, "id"));
	if (id == NULL) {
		hc_fail(h, "out of memory");
	} else if (fill(h, id, parts, n, &image) < 0) {
		discard(h, id);
	} else {
		print_resource(h, &res_image, image);
		rc = 0;
	}
restore:
	hc_catch_signals(false);
out:
	parts_close(parts, n);
	json_decref(create);
	json_decref(made);
	json_decref(image);
	free(id);
	return rc;
}
