/*
 * events.c — `hc events`: follow GET /v1/events, one line per event (or
 * the event's JSON with --json), resuming with Last-Event-ID when the
 * stream breaks (hcd restarted, a slow terminal was cut).  And
 * events_follow, which `hc vm wait` waits with.
 */
#include "cli/cli.h"
#include "cli/sse.h"

#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long `hc events` keeps trying to get its stream back. */
#define RECONNECT_FOR_MS 30000
#define RECONNECT_PAUSE_MS 1000

struct follow {
	struct hc *h;
	struct sse_parser p;
	event_fn fn;
	void *arg;
	int verdict;               /* fn's last answer */
	bool got;                  /* an event arrived */
	char last_id[32];
};

static bool on_event(void *arg, const char *id, const char *name, const char *data)
{
	struct follow *f = arg;
	json_error_t jerr;
	json_t *j = json_loads(data, 0, &jerr);

	f->got = true;
	snprintf(f->last_id, sizeof(f->last_id), "%s", id);
	if (j == NULL) {
		f->verdict = hc_fail(f->h, "hcd sent a malformed event: %s", jerr.text);
		return false;
	}
	f->verdict = f->fn(f->arg, id, name, j);
	json_decref(j);
	return f->verdict > 0;
}

static bool on_bytes(void *arg, const char *data, size_t len)
{
	struct follow *f = arg;
	int rc = sse_feed(&f->p, data, len, on_event, f);

	if (rc < 0)
		f->verdict = hc_fail(f->h, "out of memory reading the event stream");
	return rc > 0;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One stream, from last_id on: as events_follow; *last_id is updated. */
static int follow_once(struct hc *h, char last_id[32], long timeout_ms, event_fn fn, void *arg,
		       bool *timed_out, bool *got)
{
	char *resume = last_id[0] ? str_printf("Last-Event-ID: %s", last_id) : NULL;
	const char *headers[] = { "Accept: text/event-stream", resume, NULL };
	struct follow f = { .h = h, .fn = fn, .arg = arg, .verdict = 1 };
	struct api_req rq = { .method = "GET", .path = "/v1/events", .on_data = on_bytes,
			      .on_data_arg = &f, .headers = headers, .timeout_ms = timeout_ms,
			      .cancel = &hc_interrupted };
	struct api_resp rs;
	int rc = api_request(h, &rq, &rs);

	*timed_out = rs.timed_out;
	*got = f.got;
	if (f.last_id[0])
		snprintf(last_id, 32, "%s", f.last_id);
	api_resp_free(&rs);
	sse_parser_free(&f.p);
	free(resume);
	if (f.verdict <= 0)
		return f.verdict;          /* fn decided (or a parse failed: recorded) */
	if (rc < 0)
		return -2;                 /* no stream, or it broke: recorded */
	return 1;                          /* the stream ended, or the time ran out */
}

int events_follow(struct hc *h, const char *last_id, long timeout_ms, event_fn fn, void *arg,
		  bool *timed_out)
{
	char id[32] = "";
	bool got;

	snprintf(id, sizeof(id), "%s", last_id ? last_id : "");
	*timed_out = false;
	return follow_once(h, id, timeout_ms, fn, arg, timed_out, &got);
}

/* ---- hc events ------------------------------------------------------------- */

static int print_event(void *arg, const char *id, const char *name, json_t *data)
{
	struct hc *h = arg;
	json_t *obj = json_object_get(data, "object");
	int rc;

	if (h->json) {
		char *text = json_dumps(data, JSON_COMPACT);
		rc = text ? printf("%s\n", text) : -1;
		free(text);
	} else if (strcmp(name, "sync") == 0) {
		rc = printf("%s sync: %zu vms, %zu hosts\n", id,
			    json_array_size(json_object_get(obj, "vms")),
			    json_array_size(json_object_get(obj, "hosts")));
	} else if (json_is_null(obj)) {
		rc = printf("%s %s %s\n", id, name, json_str(data, "id"));
	} else if (strcmp(json_str(data, "kind"), "host") == 0) {
		rc = printf("%s %s %s state=%s drain=%s\n", id, name, json_str(data, "id"),
			    json_str(obj, "state"), json_is_true(json_object_get(obj, "drain")) ? "yes" : "no");
	} else {
		rc = printf("%s %s %s %s state=%s desired=%s host=%s\n", id, name, json_str(data, "id"),
			    json_str(obj, "name"), json_str(obj, "state"), json_str(obj, "desired"),
			    json_str(obj, "host"));
	}
	/* Line by line: a pipe reading `hc events` sees each at once. */
	if (rc < 0 || fflush(stdout) != 0)
		return hc_output_failed(h);
	return 1;
}

int cmd_events(struct hc *h, const struct args *a)
{
	char id[32] = "";
	long long lost_at = 0;
	int rc;

	(void)a;
	hc_catch_signals(true);
	for (;;) {
		bool timed_out, got;
		rc = follow_once(h, id, 0, print_event, h, &timed_out, &got);
		if (hc_interrupted || rc == 0) {
			rc = 0;            /* Ctrl-C is how one stops following */
			hc_clear(h);
			break;
		}
		if (rc == -1)
			break;             /* printing failed, or hcd sent garbage */
		if (rc == -2 && !got && lost_at == 0)
			break;             /* never had a stream: refused or unreachable */
		/* The stream broke (or could not be had back yet): again, from
		 * the last event seen, for a while. */
		long long now = mono_ms();
		if (got || lost_at == 0)
			lost_at = now;
		if (now - lost_at > RECONNECT_FOR_MS) {
			rc = hc_fail(h, "lost the event stream of %s and could not get it back",
				     client_url(h->cl));
			break;
		}
		hc_clear(h);
		hc_sleep_ms(RECONNECT_PAUSE_MS);
		if (hc_interrupted) {
			rc = 0;
			break;
		}
	}
	hc_catch_signals(false);
	return rc < 0 ? -1 : 0;
}
