/*
 * image.c — `hc image …`: images.  list, show and delete are the shared
 * verbs of resource.c; import is here.
 *
 * An import of local files is the API's three steps (create → upload each
 * file → finalize, see src/api/images.c); an import from a URL is one
 * create, after which hc follows hcd's download until the image is ready,
 * showing its progress (cli/progress.h).  Invariant: when hc returns, the
 * import either produced a ready image or left nothing behind — every
 * failure after the create (a refused file, a wrong checksum, a failed
 * download) deletes the half-made image, which also stops hcd's download.
 * Ctrl-C (SIGINT, SIGTERM, SIGHUP) is one of those failures: it is caught
 * for the whole import so that the transfer stops and the cleanup still
 * runs.  Local files are opened and checked before anything is created,
 * and streamed from disk.
 */
#include "cli/cli.h"
#include "cli/progress.h"

#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMPORT_POLL_MS 500

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
	{ "visibility", "visibility", NULL },
	{ "source", "source", NULL },
	{ "error", "error", NULL },
	{ "owner", "owner", NULL },
	{ "created", "created", fmt_time },
	{ 0 },
};

const struct resource res_image = { "image", "images", image_list, image_show, NULL, NULL };

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

/* The parts the options name, opened; the create body says what they are.
 * An import from --url has no parts. */
static int parts_from_args(struct hc *h, const struct args *a, struct part *parts, size_t *n,
			   json_t **create)
{
	const char *kernel = arg_opt(a, "--kernel"), *initrd = arg_opt(a, "--initrd");
	const char *cmdline = arg_opt(a, "--cmdline"), *disk = arg_opt(a, "--disk");
	const char *url = arg_opt(a, "--url"), *sha = arg_opt(a, "--sha256");

	*n = 0;
	*create = NULL;
	if ((kernel != NULL) + (disk != NULL) + (url != NULL) != 1)
		return hc_usage(h, "image import: give one of --kernel F, --disk F or --url URL");
	if ((disk || url) && (initrd || cmdline))
		return hc_usage(h, "image import: --initrd and --cmdline go with --kernel only");
	if (sha && !url)
		return hc_usage(h, "image import: --sha256 goes with --url");
	if (url) {
		*create = json_pack("{s:s, s:s}", "name", a->pos[0], "url", url);
		if (*create && sha)
			json_object_set_new(*create, "sha256", json_string(sha));
	} else if (disk) {
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
	if (*create && arg_flag(a, "--public"))
		json_object_set_new(*create, "visibility", json_string("public"));
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
	struct progress pr;
	/* Over the local socket an upload is quick: only a terminal shows it. */
	bool tty = isatty(STDERR_FILENO);

	progress_init(&pr, p->name, tty);
	struct api_req rq = { .method = "PUT", .path = path, .upload = p->f,
			      .upload_size = p->size, .progress = tty ? &pr : NULL,
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

/*
 * Follow hcd's download of the image `made` until it is ready (0 and
 * *image) or has failed (-1 with the reason hcd recorded); the progress
 * goes to stderr, as a bar on a terminal, else as "N%" lines.
 */
static int await_download(struct hc *h, const char *label, json_t *made, json_t **image)
{
	char *path = api_path("images", json_str(made, "id"), NULL);
	json_t *cur = json_incref(made);
	struct progress pr;
	long long total = -1, done = 0;
	int rc = -1;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	progress_init(&pr, label, isatty(STDERR_FILENO));
	for (;;) {
		json_t *prog = json_object_get(cur, "progress");
		const char *state = json_str(cur, "state");
		if (prog) {
			json_t *jt = json_object_get(prog, "total");
			total = json_is_integer(jt) ? json_integer_value(jt) : -1;
			done = json_integer_value(json_object_get(prog, "done"));
			progress_update(&pr, stderr, done, total);
		}
		if (strcmp(state, "ready") == 0) {
			/* Complete, even when it ended between two looks. */
			long long all = total >= 0 ? total : done;
			if (all > 0 || !pr.tty)
				progress_update(&pr, stderr, all, all);
			*image = cur;
			cur = NULL;
			rc = 0;
			break;
		}
		if (strcmp(state, "importing") != 0) {
			progress_end(&pr, stderr);
			hc_fail(h, "image '%s': %s", json_str(cur, "name"),
				json_is_string(json_object_get(cur, "error")) ? json_str(cur, "error")
				: "the import failed");
			break;
		}
		if (hc_interrupted) {
			progress_end(&pr, stderr);
			hc_fail(h, "interrupted");
			break;
		}
		hc_sleep_ms(IMPORT_POLL_MS);
		if (hc_interrupted)
			continue;
		json_decref(cur);
		cur = NULL;
		if (api_call(h, "GET", path, NULL, &cur, NULL) < 0)
			break;
	}
	progress_end(&pr, stderr);
	json_decref(cur);
	free(path);
	return rc;
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
	} else if (n == 0 ? await_download(h, a->pos[0], made, &image) < 0
			  : fill(h, id, parts, n, &image) < 0) {
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

/* hc image create NAME --from-vm VM: hcd flattens the VM's root disk on a
 * worker; like a download, the image is followed until ready or failed. */
int cmd_image_create(struct hc *h, const struct args *a)
{
	json_t *body, *made = NULL, *image = NULL;
	int rc = -1;

	if (arg_opt(a, "--from-vm") == NULL)
		return hc_usage(h, "image create: --from-vm VM is required");
	body = json_pack("{s:s, s:s}", "name", a->pos[0], "from_vm", arg_opt(a, "--from-vm"));

	if (body && arg_opt(a, "--public"))
		json_object_set_new(body, "visibility", json_string("public"));
	if (body == NULL)
		return hc_fail(h, "out of memory");
	hc_catch_signals(true);
	if (api_call(h, "POST", "/v1/images", body, &made, NULL) == 0) {
		if (await_download(h, a->pos[0], made, &image) == 0) {
			print_resource(h, &res_image, image);
			rc = 0;
		}
	}
	hc_catch_signals(false);
	json_decref(body);
	json_decref(made);
	json_decref(image);
	return rc;
}
