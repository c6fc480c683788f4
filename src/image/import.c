/* image/import — see import.h. */
#include "image/import.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/proc.h"
#include "image/addrguard.h"
#include "image/fetch.h"
#include "image/files.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
	struct importer *imp;
	uint64_t image_id;
	uint64_t owner;
	char *expect_sha256;       /* NULL: any content */
	char *staging;             /* STATE_DIR/images/staging/<id> */
	struct fetch *fetch;
	bool deleted;              /* the row is gone: only clean up */
	/* set by job_verify in the download's thread */
	bool placed;
	char sha[65];
	struct disk_info info;
	struct job *next;
};

struct importer {
	struct store *st;
	const char *state_dir;
	const char *host;           /* this host: it resumes only its own imports */
	char *image_user;
	char *proxy;                /* NULL: none */
	struct addr_list allow;     /* import_allow */
	int max_per_user, max_total;
	int wake_fd;
	struct job *jobs;
};

struct importer *importer_new(struct store *st, const struct config *cfg, char **err)
{
	struct importer *imp = calloc(1, sizeof(*imp));
	uid_t uid;
	gid_t gid;

	*err = NULL;
	if (imp == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	imp->st = st;
	imp->state_dir = cfg->state_dir;
	imp->host = cfg->host_name;
	imp->max_per_user = cfg->import_max_per_user;
	imp->max_total = cfg->import_max_total;
	imp->wake_fd = -1;
	if (addr_list_parse(&imp->allow, cfg->import_allow, err) < 0) {
		char *e = str_printf("import_allow: %s", *err ? *err : "out of memory");
		free(*err);
		*err = e;
		goto fail;
	}
	/* Fail at start, not at the first image: qemu-img must never run as
	 * root on a file a user sent. */
	if (proc_user_lookup(cfg->image_user, &uid, &gid) < 0 || uid == 0) {
		*err = str_printf("image_user '%s' is not an unprivileged user of this host",
				  cfg->image_user ? cfg->image_user : "");
		goto fail;
	}
	if ((imp->image_user = strdup(cfg->image_user)) == NULL ||
	    (cfg->import_proxy && cfg->import_proxy[0] &&
	     (imp->proxy = strdup(cfg->import_proxy)) == NULL)) {
		*err = strdup("out of memory");
		goto fail;
	}
	imp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* Before any thread exists: curl's global setup is not thread-safe. */
	if (imp->wake_fd < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*err = str_printf("cannot set up downloads: %s", strerror(errno));
		goto fail;
	}
	return imp;
fail:
	if (imp->wake_fd >= 0)
		close(imp->wake_fd);
	addr_list_free(&imp->allow);
	free(imp->image_user);
	free(imp->proxy);
	free(imp);
	return NULL;
}

static void job_complete(struct importer *imp, struct job *j, long long size);

static void job_free(struct job *j)
{
	free(j->expect_sha256);
	free(j->staging);
	free(j);
}

/* A download is over without making an image.  Of a deleted image,
 * what it left goes, placed files included unless another image has the
 * same content; otherwise its partial file stays for a resume. */
static void job_discard(struct importer *imp, struct job *j)
{
	int refs = 0;

	if (j->placed) {
		image_files_release(j->sha);
		if (j->deleted && store_image_sha_refs(imp->st, j->sha, j->image_id, &refs) == STORE_OK &&
		    refs == 0)
			image_files_remove(imp->state_dir, j->sha);
	}
	if (j->deleted)
		dir_remove_tree(j->staging);
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
		/* A download that ended complete before it saw the cancel is
		 * an image: say so now rather than fetch it again next time. */
		if (fetch_join(j->fetch, sha, &size, &err) == 0 && !j->deleted)
			job_complete(imp, j, size);
		else
			job_discard(imp, j);
		free(err);
		job_free(j);
	}
	close(imp->wake_fd);
	curl_global_cleanup();
	addr_list_free(&imp->allow);
	free(imp->image_user);
	free(imp->proxy);
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

/* In the download's thread, once the file is complete: what an upload's
 * finalize does — checksum, qemu-img as the image user, placement. */
static int job_verify(void *arg, const char *sha, long long size, char **err)
{
	struct job *j = arg;
	char *file = str_printf("%s/disk", j->staging);
	int fd = file ? open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1, rc = -1;
	struct image_parts parts;
	struct stat sb;
	(void)size;

	*err = NULL;
	image_parts_of(false, false, &parts);
	/* Complete and closed: read-only from here on (as disk_inspect wants). */
	if (fd < 0 || fchmod(fd, 0444) < 0 || fstat(fd, &sb) < 0) {
		*err = str_printf("cannot read the download: %s", strerror(errno));
	} else if (j->expect_sha256 && strcmp(j->expect_sha256, sha) != 0) {
		*err = str_printf("checksum mismatch: expected sha256 %s, got %s", j->expect_sha256, sha);
	} else if (disk_inspect(fd, j->imp->image_user, &j->info, err) == 0) {
		parts.pinned = true;
		parts.dev[0] = sb.st_dev;
		parts.ino[0] = sb.st_ino;
		if (image_files_place(j->imp->state_dir, j->staging, sha, &parts) < 0) {
			*err = str_printf("cannot store the image: %s", strerror(errno));
		} else {
			memcpy(j->sha, sha, sizeof(j->sha));
			j->placed = true;
			rc = 0;
		}
	}
	if (fd >= 0)
		close(fd);
	free(file);
	if (rc < 0 && *err == NULL)
		*err = strdup("out of memory");
	return rc;
}

/* The networks of the store, as prefixes a member's import may not reach. */
static int guard_networks(struct importer *imp, struct addr_list *l)
{
	struct network *nets = NULL;
	size_t n = 0;
	int rc = 0;

	if (store_network_list(imp->st, OWNER_ANY, &nets, &n) != STORE_OK)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((nets[i].ipv6 && addr_list_add(l, nets[i].ipv6) < 0) ||
		    (nets[i].ipv4 && addr_list_add(l, nets[i].ipv4) < 0))
			rc = -1;
	networks_free(nets, n);
	return rc;
}

int importer_start(struct importer *imp, const struct image *im, bool admin, char **err)
{
	struct job *j = calloc(1, sizeof(*j));
	char *file = NULL, *checkpoint = NULL;
	struct addr_policy guard = { 0 };

	*err = NULL;
	if (im->source == NULL) {
		*err = strdup("the image has no URL to import from");
		goto fail;
	}
	if (j == NULL)
		goto oom;
	j->imp = imp;
	j->image_id = im->id;
	j->owner = im->owner;
	j->staging = image_staging_dir(imp->state_dir, im->id);
	file = j->staging ? str_printf("%s/disk", j->staging) : NULL;
	checkpoint = j->staging ? str_printf("%s/checkpoint", j->staging) : NULL;
	if (file == NULL || checkpoint == NULL ||
	    (im->expect_sha256 && (j->expect_sha256 = strdup(im->expect_sha256)) == NULL))
		goto oom;
	if (!admin && (guard_networks(imp, &guard.networks) < 0 ||
		       addr_list_copy(&guard.allow, &imp->allow) < 0)) {
		*err = strdup("cannot read the networks to keep the download away from");
		goto fail;
	}
	if (mkdir_p(j->staging, 0700) < 0) {
		*err = str_printf("%s: %s", j->staging, strerror(errno));
		goto fail;
	}
	struct fetch_spec spec = { .url = im->source, .file = file, .checkpoint = checkpoint,
				   .max_bytes = IMAGE_MAX_BYTES, .guard = admin ? NULL : &guard,
				   .proxy = imp->proxy, .wake_fd = imp->wake_fd,
				   .complete = job_verify, .complete_arg = j };
	if ((j->fetch = fetch_start(&spec, err)) == NULL)
		goto fail;
	j->next = imp->jobs;
	imp->jobs = j;
	addr_policy_free(&guard);
	free(file);
	free(checkpoint);
	return 0;
oom:
	*err = strdup("out of memory");
fail:
	addr_policy_free(&guard);
	free(file);
	free(checkpoint);
	if (j)
		job_free(j);
	return -1;
}

bool importer_has_room(const struct importer *imp, uint64_t owner, char *why, size_t len)
{
	int mine = 0, all = 0;

	for (const struct job *j = imp->jobs; j; j = j->next)
		if (!j->deleted) {
			all++;
			mine += j->owner == owner;
		}
	if (imp->max_per_user > 0 && mine >= imp->max_per_user) {
		snprintf(why, len, "you have %d imports running, the most allowed (import_max_per_user);"
			 " try again when one has finished", mine);
		return false;
	}
	if (imp->max_total > 0 && all >= imp->max_total) {
		snprintf(why, len, "this host runs %d imports, the most allowed (import_max_total);"
			 " try again later", all);
		return false;
	}
	return true;
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

/* A complete, checked and placed download: the image is ready. */
static void job_complete(struct importer *imp, struct job *j, long long size)
{
	/* The files are in place under their hash; if the store fails, a
	 * retry of the same content finds them there.  Over the owner's
	 * image_bytes quota, the image fails with the quota's reason. */
	int rc = store_image_finalize(imp->st, j->image_id, j->sha, j->info.format,
				      j->info.virtual_size);
	if (rc != STORE_OK)
		store_image_fail(imp->st, j->image_id,
				 rc == STORE_QUOTA ? store_refusal(imp->st) : "store failure");
	else
		log_info("image %08llx imported: %s, %lld bytes, sha256 %s",
			 (unsigned long long)j->image_id, j->info.format, size, j->sha);
	image_files_release(j->sha);
	j->placed = false;
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
			job_discard(imp, j);
		else if (rc < 0)
			job_fail(imp, j, err ? err : "the download stopped");
		else
			job_complete(imp, j, size);
		free(err);
		job_free(j);
	}
}

/*
 * A ready image whose directory in the store is missing but whose staging
 * directory is there: the rename that placed it did not reach the disk
 * (a power cut after the row was committed).  Put it back if its content
 * is what the row says; never remove it.  At start, before the loop
 * serves anyone: the hash may take a while, but only after such a crash.
 */
static bool staging_recover(struct importer *imp, const struct image *im, const char *path)
{
	struct image_parts parts;
	char have[65], *final = str_printf("%s/images/%s", imp->state_dir, im->sha256);
	struct stat sb;
	bool done = false;

	image_parts_of(strcmp(im->boot, "kernel") == 0, im->has_initrd, &parts);
	if (final && stat(final, &sb) == 0) {
		done = true; /* in place: the staging copy is a leftover */
	} else if (image_dir_sha(path, &parts, have) < 0 || strcmp(have, im->sha256) != 0) {
		log_warn("image %08llx (%s): its files are missing from the store, and %s does not"
			 " hold its content; keeping it", (unsigned long long)im->id, im->name, path);
	} else if (image_files_place(imp->state_dir, path, im->sha256, &parts) < 0) {
		log_warn("image %08llx (%s): cannot put its files back in place: %s",
			 (unsigned long long)im->id, im->name, strerror(errno));
	} else {
		image_files_release(im->sha256);
		log_info("image %08llx (%s): its files were back in staging (a rename lost in a crash);"
			 " restored to the store", (unsigned long long)im->id, im->name);
	}
	free(final);
	return done;
}

/* Staging dirs whose image is gone or finished: leftovers of a crash.
 * next_id was read before the rows. */
static void staging_sweep(struct importer *imp, const struct image *ims, size_t n, uint64_t next_id)
{
	char *dir = str_printf("%s/images/staging", imp->state_dir);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		char *end;
		unsigned long long id = strtoull(de->d_name, &end, 16);
		const struct image *row = NULL;
		if (strlen(de->d_name) != 8 || *end != '\0')
			continue;
		for (size_t i = 0; i < n && row == NULL; i++)
			if (ims[i].id == id)
				row = &ims[i];
		/* An ID this store never issued (or issued after the rows
		 * were read) belongs to another store or a newer image: not
		 * ours to judge (as with VM directories). */
		if (id >= next_id || (row && (strcmp(row->state, "uploading") == 0 ||
					      strcmp(row->state, "importing") == 0)))
			continue;
		char *path = str_printf("%s/%s", dir, de->d_name);
		if (path && row && row->sha256 && strcmp(row->state, "ready") == 0 &&
		    !staging_recover(imp, row, path)) {
			free(path);
			continue;
		}
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
	uint64_t next_id = 0;

	/* The counter first: every image missing from the rows read next has
	 * an ID at or above it, and its staging directory is left alone. */
	if (store_counter_peek(imp->st, "image", &next_id) != STORE_OK)
		next_id = 0;
	if (store_image_list(imp->st, OWNER_ANY, &ims, &n) != STORE_OK) {
		log_warn("import: cannot list images; interrupted imports are not resumed");
		return;
	}
	staging_sweep(imp, ims, n, next_id);
	for (size_t i = 0; i < n; i++) {
		struct user owner = { 0 };
		char *err = NULL;
		if (strcmp(ims[i].state, "importing") != 0 || job_find(imp, ims[i].id))
			continue;
		/* In a cluster the host that took the import downloads it. */
		if (ims[i].import_host && imp->host && strcmp(ims[i].import_host, imp->host) != 0)
			continue;
		/* A capture from a VM (api/capture.c) is not resumed: its copy
		 * was made by a worker that is gone. */
		if (ims[i].source && strncmp(ims[i].source, "vm:", 3) == 0) {
			store_image_fail(imp->st, ims[i].id, "hcd restarted during the capture from the"
					 " VM: delete the image and capture again");
			continue;
		}
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
