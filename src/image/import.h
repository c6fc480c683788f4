/*
 * image/import — images imported from http(s) URLs, driven from hcd's
 * one loop (DESIGN §3).
 *
 * Each image in state "importing" has a job whose download runs in a
 * fetch thread (image/fetch.h).  The same thread then checks the file
 * (checksum, qemu-img as the image user) and moves it into the
 * content-addressed store (image/files.h); the store is updated here, on
 * the loop's thread, once the thread has reported through the eventfd.
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
 *   - a member's download connects only where image/addrguard.h allows
 *     (import_allow widens it to chosen private ranges); an admin's
 *     anywhere.  Proxies only from import_proxy, never the environment;
 *   - at most import_max_per_user downloads of one user and
 *     import_max_total in all run on this host (importer_has_room);
 *   - staging directories that no uploading or importing image wants are
 *     removed at start — never one a committed row still needs: the rows
 *     are read after the ID counter (an image created meanwhile has an ID
 *     the sweep leaves alone), and a ready image whose directory in the
 *     store is missing (a rename a power cut undid) is put back from its
 *     staging directory once its content checks out.
 */
#ifndef HC_IMAGE_IMPORT_H
#define HC_IMAGE_IMPORT_H

#include "common/config.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

struct importer;

/* NULL and a malloc'd message on failure (also for a bad import_allow or
 * an image_user that is no unprivileged user here).  cfg->state_dir and
 * cfg->host_name must outlive it. */
struct importer *importer_new(struct store *st, const struct config *cfg, char **err);
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
 * im->source.  admin: the image's owner is an admin, who may import from
 * any address (nobody else may reach this host or its networks: that
 * would publish whatever a local service answers as a disk).
 * -1 and a malloc'd message when it cannot start.
 */
int importer_start(struct importer *imp, const struct image *im, bool admin, char **err);
/* May `owner` start another download now?  False with the reason in why. */
bool importer_has_room(const struct importer *imp, uint64_t owner, char *why, size_t len);
/* The image is gone from the store: stop its download and drop its files. */
void importer_cancel(struct importer *imp, uint64_t image_id);
/* Bytes so far and the total (-1: not known yet) of a running import;
 * false when the image has none. */
bool importer_progress(const struct importer *imp, uint64_t image_id,
		       long long *done, long long *total);

#endif
