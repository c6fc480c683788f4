/*
 * image/fetch — one download of an image from an http(s) URL into a
 * staging file, in a thread of its own (libcurl easy interface).
 *
 * The thread touches only its job: the partial file, its checkpoint file
 * and the fields behind this interface.  It never calls the store; when it
 * has finished it writes to the caller's eventfd, and the caller (hcd's
 * one loop, image/import.c) joins it and does the rest.
 *
 * Invariants:
 *   - the file holds exactly the first `done` bytes of the resource, and
 *     the running SHA-256 covers exactly those bytes: the checksum is
 *     computed on the fly, never by reading the file again;
 *   - the checkpoint ("OFFSET\nVALIDATOR\n") only ever names bytes that
 *     were synced to disk.  A restarted download truncates the file to it,
 *     hashes that prefix again and asks for the rest with a Range request
 *     (If-Range with the ETag or Last-Modified the server gave, so a
 *     resource that changed meanwhile comes whole);
 *   - a server that answers with the whole resource (200) instead of the
 *     range starts the file over from byte 0; so does any answer that does
 *     not continue exactly where the file ends;
 *   - unless allowed, no connection to this host or its links (loopback,
 *     link-local: the metadata service, services bound to lo) — checked on
 *     the address really connected to, after DNS and every redirect;
 *   - only http and https, also after redirects (at most 5); the size is
 *     limited (Content-Length and the bytes that really arrive); a stalled
 *     transfer times out; transient failures are retried (with the Range)
 *     a few times, and a run that made progress resets that count.
 */
#ifndef HC_IMAGE_FETCH_H
#define HC_IMAGE_FETCH_H

#include <stdbool.h>

struct fetch_spec {
	const char *url;
	const char *file;          /* the partial download */
	const char *checkpoint;    /* where the resume point is kept */
	long long max_bytes;
	bool allow_local;          /* may connect to loopback / link-local */
	int wake_fd;               /* an eventfd, written once when finished */
};

struct fetch;

/* Start the thread (resuming from the checkpoint when there is one).
 * NULL and a malloc'd message when it cannot start. */
struct fetch *fetch_start(const struct fetch_spec *spec, char **err);

/* True once the thread is done: fetch_join will not block. */
bool fetch_finished(const struct fetch *f);

/* Bytes in the file so far, and the resource's size (-1: not known yet). */
void fetch_progress(const struct fetch *f, long long *done, long long *total);

/* Ask the thread to stop soon (a transfer in flight is aborted); the file
 * and its checkpoint stay, so a later fetch of the same file resumes. */
void fetch_cancel(struct fetch *f);

/*
 * Wait for the thread and free f.  0 with the SHA-256 (hex) and size of
 * the complete file; -1 with a malloc'd reason in *err, or *err NULL when
 * it was cancelled.
 */
int fetch_join(struct fetch *f, char sha256[65], long long *size, char **err);

#endif
