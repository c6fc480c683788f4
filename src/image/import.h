/*
 * image/import — images imported from http(s) URLs, driven from hcd's
 * one loop (DESIGN §3).
 *
 * Each image in state "importing" has a job whose download runs in a
 * fetch thread (image/fetch.h).  Everything else — the store, qemu-img,
 * the move into the content-addressed store — happens here, on the loop's
 * thread, once the thread has reported through the eventfd.
 *
 * Invariants:
 *   - a partial download never becomes an image: only a complete file
 *     whose SHA-256 matches the expected one (when given) and that passes
 *     the same qemu-img check as an upload (image/files.h) is moved into
 *     place and marked ready.  Any failure sets state "error" with the
 *     reason and removes the files; the row stays so its owner can see why,
 *     until deleted;
 *   - deleting an importing image cancels its download; its files go as
 *     soon as the thread has let go of them;
 *   - stopping hcd cancels every download but keeps the partial files and
 *     their checkpoints, and the next start resumes every importing image
 *     (importer_resume) — so no import is lost to a restart or a crash;
 *   - staging directories that no uploading or importing image wants are
 *     removed at start.
 */
#ifndef HC_IMAGE_IMPORT_H
#define HC_IMAGE_IMPORT_H

#include "store/store.h"

#include <stdbool.h>

struct importer;

/* NULL and a malloc'd message on failure.  state_dir must outlive it. */
struct importer *importer_new(struct store *st, const char *state_dir, const char *host,
			      char **err);
/* Cancel and wait for every download (their files stay for a resume). */
void importer_free(struct importer *imp);

/* At start: resume every importing image, sweep unwanted staging dirs. */
void importer_resume(struct importer *imp);

/* The descriptor the loop polls; readable when a download has ended. */
int importer_fd(const struct importer *imp);
/* Finish the downloads that have ended (check, store, mark ready/error). */
void importer_run(struct importer *imp);

/*
 * Start downloading an image whose row is in state importing, from
 * im->source.  allow_local: the image's owner is an admin, who may import
 * from this host's loopback and link-local addresses (nobody else may:
 * that would publish whatever a local service answers as a disk).
 * -1 and a malloc'd message when it cannot start.
 */
int importer_start(struct importer *imp, const struct image *im, bool allow_local, char **err);
/* The image is gone from the store: stop its download and drop its files. */
void importer_cancel(struct importer *imp, uint64_t image_id);
/* Bytes so far and the total (-1: not known yet) of a running import;
 * false when the image has none. */
bool importer_progress(const struct importer *imp, uint64_t image_id,
		       long long *done, long long *total);

#endif
