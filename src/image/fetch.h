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
 *   - with a guard (a member's import), no connection to an address the
 *     guard refuses (image/addrguard.h: this host, hackcloud networks,
 *     loopback, link-local, private ranges not allowed, …) — checked on
 *     the address the socket is about to connect to, after DNS and for
 *     every redirect, so neither DNS rebinding nor a redirect gets past
 *     it; no packet is sent to a refused address;
 *   - proxies only as configured (spec.proxy, for every host): the
 *     environment's http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY are
 *     ignored.  Through a proxy the guard sees the proxy's address, so it
 *     judges each request's host instead when that is an address (a name
 *     is the proxy's to resolve, and its policy to enforce);
 *   - the caller's `complete` step (checks, placement) runs in the
 *     thread too, once the file is complete, synced and closed;
 *   - only http and https, also after redirects (at most 5); the size is
 *     limited (Content-Length and the bytes that really arrive); a stalled
 *     transfer times out; transient failures are retried (with the Range)
 *     a few times, and a run that made progress resets that count.
 */
#ifndef HC_IMAGE_FETCH_H
#define HC_IMAGE_FETCH_H

#include "image/addrguard.h"

#include <stdbool.h>

struct fetch_spec {
	const char *url;
	const char *file;          /* the partial download */
	const char *checkpoint;    /* where the resume point is kept */
	long long max_bytes;
	/* NULL: any address (an admin's import); else copied (its host list
	 * is read again for every connection). */
	const struct addr_policy *guard;
	const char *proxy;         /* a proxy URL, or NULL / "": none */
	int wake_fd;               /* an eventfd, written once when finished */
	/* In the thread, after a complete download: 0, or -1 and a malloc'd
	 * reason, which fetch_join reports as the download's failure. */
	int (*complete)(void *arg, const char *sha256, long long size, char **err);
	void *complete_arg;
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
