/*
 * sse — reading a server-sent event stream (text/event-stream) as it
 * arrives, in pieces cut anywhere: `hc events` and `hc vm wait`.
 *
 * Per the format: lines end in LF, CRLF or CR; "field: value" (one space
 * after the colon is dropped); a line starting with ':' is a comment
 * (keepalives); "data" lines of one event are joined with LF; an empty
 * line dispatches the event — when it has data (a "retry" alone is none).
 * "id" persists to later events until another replaces it, as a
 * browser's lastEventId does.  Pure; unit tested against the server's
 * framing (api/events.h: sse_frame).
 */
#ifndef HC_CLI_SSE_H
#define HC_CLI_SSE_H

#include <stdbool.h>
#include <stddef.h>

struct sse_parser {
	char *line;                 /* the line being read */
	size_t len, cap;
	bool cr;                    /* the last byte was a CR (a LF after it is the same end) */
	char id[32];                /* the last event ID seen */
	char event[64];
	char *data;
	size_t data_len, data_cap;
	bool has_data;
};

/* An event: fn(arg, id, event name ("message" when unnamed), data);
 * false stops the stream. */
typedef bool (*sse_event_fn)(void *arg, const char *id, const char *event, const char *data);

/* Feed bytes.  1 to go on, 0 when fn asked to stop, -1 out of memory or
 * a line over 16 MiB. */
int sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *arg);
void sse_parser_free(struct sse_parser *p);

#endif
