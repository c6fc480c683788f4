/* image/import — see import.h. */
#include "image/import.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "image/fetch.h"
#include "image/files.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
	uint64_t image_id;
	char *expect_sha256;       /* NULL: any content */
	char *staging;             /* STATE_DIR/images/staging/<id> */
	struct fetch *fetch;
	bool deleted;              /* the row is gone: only clean up */
	struct job *next;
};

struct importer {
	struct store *st;
	const char *state_dir;
	const char *host;           /* this host: it resumes only its own imports */
	int wake_fd;
	struct job *jobs;
};

struct importer *importer_new(struct store *st, const char *state_dir, const char *host,
			      char **err)
{
	struct importer *imp = calloc(1, sizeof(*imp));

	*err = NULL;
	if (imp == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	imp->st = st;
	imp->state_dir = state_dir;
	imp->host = host;
	imp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* Before any thread exists: curl's global setup is not thread-safe. */
	if (imp->wake_fd < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*err = str_printf("cannot set up downloads: %s", strerror(errno));
		if (imp->wake_fd >= 0)
			close(imp->wake_fd);
		free(imp);
		return NULL;
	}
	return imp;
}

static void job_free(struct job *j)
{
	free(j->expect_sha256);
	free(j->staging);
	free(j);
}

void importer_free(struct importer *imp)
{
	if (imp == NULL)
		return;
	for (struct job *j = imp->jobs; j; j = j->next)
		fetch_cancel(j->fetch);
	while (imp->jobs) {
		struct job *j = imp->jobs;
		char sha[65], *err = NULL;
		long long size;
		imp->jobs = j->next;
		fetch_join(j->fetch, sha, &size, &err);
		free(err);
		if (j->deleted)
			dir_remove_tree(j->staging);
		job_free(j);
	}
	close(imp->wake_fd);
	curl_global_cleanup();
	free(imp);
}

int importer_fd(const struct importer *imp)
{
	return imp->wake_fd;
}

static struct job *job_find(const struct importer *imp, uint64_t image_id)
{
	for (struct job *j = imp->jobs; j; j = j->next)
		if (j->image_id == image_id && !j->deleted)
			return j;
	return NULL;
}

int importer_start(struct importer *imp, const struct image *im, bool allow_local, char **err)
{
	struct job *j = calloc(1, sizeof(*j));
	char *file = NULL, *checkpoint = NULL;

	*err = NULL;
	if (im->source == NULL) {
		*err = strdup("the image has no URL to import from");
		goto fail;
	}
	if (j == NULL)
		goto oom;
	j->image_id = im->id;
	j->staging = image_staging_dir(imp->state_dir, im->id);
	file = j->staging ? str_printf("%s/disk", j->staging) : NULL;
	checkpoint = j->staging ? str_printf("%s/checkpoint", j->staging) : NULL;
	if (file == NULL || checkpoint == NULL ||
	    (im->expect_sha256 && (j->expect_sha256 = strdup(im->expect_sha256)) == NULL))
		goto oom;
	if (mkdir_p(j->staging, 0700) < 0) {
		*err = str_printf("%s: %s", j->staging, strerror(errno));
		goto fail;
	}
	struct fetch_spec spec = { .url = im->source, .file = file, .checkpoint = checkpoint,
				   .max_bytes = IMAGE_MAX_BYTES, .allow_local = allow_local,
				   .wake_fd = imp->wake_fd };
	if ((j->fetch = fetch_start(&spec, err)) == NULL)
		goto fail;
	j->next = imp->jobs;
	imp->jobs = j;
	free(file);
	free(checkpoint);
	return 0;
oom:
	*err = strdup("out of memory");
fail:
	free(file);
	free(checkpoint);
	if (j)
		job_free(j);
	return -1;
}

void importer_cancel(struct importer *imp, uint64_t image_id)
{
	struct job *j = job_find(imp, image_id);

	if (j) {
		j->deleted = true;
		fetch_cancel(j->fetch);
	}
}

bool importer_progress(const struct importer *imp, uint64_t image_id,
		       long long *done, long long *total)
{
	struct job *j = job_find(imp, image_id);

	if (j == NULL)
		return false;
	fetch_progress(j->fetch, done, total);
	return true;
}

/* The import ends without an image: say why in the store, drop the files. */
static void job_fail(struct importer *imp, struct job *j, const char *why)
{
	log_warn("import of image %08llx failed: %s", (unsigned long long)j->image_id, why);
	store_image_fail(imp->st, j->image_id, why);
	dir_remove_tree(j->staging);
}

/* Only the disk goes into the store: the checkpoint, and a temporary file
 * a crash may have left next to it, are the download's, not the image's. */
static int staging_keep_disk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "disk") == 0)
			continue;
		char *path = str_printf("%s/%s", dir, de->d_name);
		if (path == NULL || file_remove(path) < 0)
			rc = -1;
		free(path);
	}
	closedir(d);
	return rc;
}

/* A complete download: check it like an upload, then make it the image. */
static void job_complete(struct importer *imp, struct job *j, const char *sha, long long size)
{
	struct disk_info info = { 0 };
	int rc;
	char *why = NULL, *file = str_printf("%s/disk", j->staging);

	if (file == NULL) {
		job_fail(imp, j, "out of memory");
	} else if (j->expect_sha256 && strcmp(j->expect_sha256, sha) != 0) {
		why = str_printf("checksum mismatch: expected sha256 %s, got %s", j->expect_sha256, sha);
		job_fail(imp, j, why ? why : "checksum mismatch");
	} else if (disk_inspect(file, &info, &why) < 0) {
		job_fail(imp, j, why);
	} else if (staging_keep_disk(j->staging) < 0 ||
		   image_files_place(imp->state_dir, j->staging, sha) < 0) {
		why = str_printf("cannot store the image: %s", strerror(errno));
		job_fail(imp, j, why ? why : "cannot store the image");
	} else if ((rc = store_image_finalize(imp->st, j->image_id, sha, info.format,
					      info.virtual_size)) != STORE_OK) {
		/* The files are in place under their hash; a retry of the
		 * same content finds them there. */
		store_image_fail(imp->st, j->image_id,
				 rc == STORE_QUOTA ? store_refusal(imp->st) : "store failure");
	} else {
		log_info("image %08llx imported: %s, %lld bytes, sha256 %s",
			 (unsigned long long)j->image_id, info.format, size, sha);
	}
	free(why);
	free(file);
}

void importer_run(struct importer *imp)
{
	uint64_t n;

	/* Drain the counter first: a thread that ends while we work wakes
	 * the loop again. */
	if (read(imp->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("import: wake-up: %s", strerror(errno));
	for (struct job **pp = &imp->jobs; *pp;) {
		struct job *j = *pp;
		char sha[65], *err = NULL;
		long long size = 0;

		if (!fetch_finished(j->fetch)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		int rc = fetch_join(j->fetch, sha, &size, &err);
		if (j->deleted)
			dir_remove_tree(j->staging);
		else if (rc < 0)
			job_fail(imp, j, err ? err : "the download stopped");
		else
			job_complete(imp, j, sha, size);
		free(err);
		job_free(j);
	}
}

/* Staging dirs whose image is gone or finished: leftovers of a crash. */
static void staging_sweep(struct importer *imp, const struct image *ims, size_t n)
{
	char *dir = str_printf("%s/images/staging", imp->state_dir);
	uint64_t next_id = 0;
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	if (d && store_counter_peek(imp->st, "image", &next_id) != STORE_OK)
		next_id = 0;
	while (d && (de = readdir(d)) != NULL) {
		char *end;
		unsigned long long id = strtoull(de->d_name, &end, 16);
		bool wanted = false;
		if (strlen(de->d_name) != 8 || *end != '\0')
			continue;
		for (size_t i = 0; i < n && !wanted; i++)
			wanted = ims[i].id == id && (strcmp(ims[i].state, "uploading") == 0 ||
						    strcmp(ims[i].state, "importing") == 0);
		/* An ID this store never issued belongs to another store:
		 * not ours to judge (as with VM directories). */
		if (wanted || id >= next_id)
			continue;
		char *path = str_printf("%s/%s", dir, de->d_name);
		if (path) {
			log_info("removing stale image staging directory %s", path);
			dir_remove_tree(path);
		}
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
}

void importer_resume(struct importer *imp)
{
	struct image *ims = NULL;
	size_t n = 0;

	if (store_image_list(imp->st, OWNER_ANY, &ims, &n) != STORE_OK) {
		log_warn("import: cannot list images; interrupted imports are not resumed");
		return;
	}
	staging_sweep(imp, ims, n);
	for (size_t i = 0; i < n; i++) {
		struct user owner = { 0 };
		char *err = NULL;
		if (strcmp(ims[i].state, "importing") != 0 || job_find(imp, ims[i].id))
			continue;
		/* In a cluster the host that took the import downloads it. */
		if (ims[i].import_host && imp->host && strcmp(ims[i].import_host, imp->host) != 0)
			continue;
		/* As when it began: what the owner may reach depends on its role now. */
		bool admin = store_user_get_id(imp->st, ims[i].owner, &owner) == STORE_OK &&
			     owner.role && strcmp(owner.role, "admin") == 0;
		user_free(&owner);
		log_info("image %08llx (%s): resuming its import from %s",
			 (unsigned long long)ims[i].id, ims[i].name, ims[i].source ? ims[i].source : "?");
		if (importer_start(imp, &ims[i], admin, &err) < 0) {
			store_image_fail(imp->st, ims[i].id, err ? err : "cannot resume the import");
			log_warn("image %08llx: %s", (unsigned long long)ims[i].id, err ? err : "?");
		}
		free(err);
	}
	images_free(ims, n);
}
