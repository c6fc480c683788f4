/*
 * events — GET /v1/events: the store's event log (store.h, "The event
 * log") as server-sent events, with the scope rules of every endpoint (a
 * member sees its own VMs; admins every VM and the hosts).
 *
 * The stream (docs/API.md is the contract):
 *   retry: 3000                      once, first
 *   id: SEQ                          per event; SEQ grows with every
 *   event: KIND.ACTION               committed change, on every host
 *   data: {"kind":…,"action":…,"id":…,"object":…}
 *   : keepalive                      after 15 s without anything else
 * A stream opens with one `sync` event (id: the last SEQ it covers,
 * data.object: {"vms": [...], "hosts": [...]}) unless the request's
 * Last-Event-ID names a SEQ that is still kept: then it resumes right
 * after it, with no sync.  Changes after a sync may repeat what it shows.
 *
 * Invariants:
 *   - nothing here blocks the loop on a client: a stream with nothing to
 *     send sleeps (suspended connection); its pending bytes are bounded
 *     (events_buffer, or twice its sync), a reader slower than that is
 *     cut, never buffered without end;
 *   - every stream sees every event after its start exactly once, in
 *     order, or — when the log no longer holds what it missed — a new
 *     sync;
 *   - a user holds at most events_max_per_user streams (429 beyond).
 */
#ifndef HC_API_EVENTS_H
#define HC_API_EVENTS_H

#include "api/api.h"

#include <stddef.h>
#include <stdint.h>

/* Registers the store's event renderer and hook.  NULL and *err on failure. */
struct events *events_new(struct api_ctx *ctx, char **err);
/* hcd is stopping: every stream ends (its connection is woken to do so).
 * Before the listeners close; events_free after they have. */
void events_stop(struct events *ev);
void events_free(struct events *ev);

/* The loop's turn: read what was committed (remote: announcements of
 * other processes since the last turn). */
void events_changed(struct events *ev, int remote);
/* ms until events_run is due (keepalives, the safety re-read, pruning);
 * -1: nothing pending. */
long long events_timeout_ms(struct events *ev, long long now_ms);
void events_run(struct events *ev, long long now_ms);

/* For GET /metrics (loop only). */
struct events_stats {
	size_t streams;
	uint64_t sent;          /* events written to streams */
	uint64_t cut;           /* streams cut for reading too slowly */
	uint64_t syncs;         /* sync events sent */
	uint64_t announced;     /* turns that read the log for another process's announcement */
};
void events_stats(const struct events *ev, struct events_stats *out);

/* One server-sent event: "id: ID\n" (when id is not NULL), "event: NAME\n",
 * a "data: " line per line of data, and the blank line that ends it.
 * malloc'd, NULL when out of memory. */
char *sse_frame(const char *id, const char *event, const char *data, size_t *len);

#endif
