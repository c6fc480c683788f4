/*
 * hc — the command-line client of hcd's REST API (DESIGN §9).
 *
 * Contract:
 *   - `hc [--url URL | --state-dir DIR] [--json] NOUN [VERB] [ARG|OPTION]...`;
 *     options may come before or after the positional arguments.  The whole
 *     command surface is the table in hc.c (noun, verb, handler, usage,
 *     arity, options): adding a command is adding a row, and every --help
 *     text is derived from that table.
 *   - The daemon is reached at --url, else $HC_URL, else
 *     unix:/var/lib/hackcloud/api.sock.  Every request carries the headers
 *     made in one place (client.c: client_headers), including the bearer
 *     token: $HC_TOKEN, else the one `hc login` saved for this URL.
 *     $HC_CACERT names the CA file for https:// URLs; $HC_TRACE a file to
 *     append every exchange to (client.c).
 *   - stdout carries results only: aligned tables or "key: value" lines, or
 *     with --json the API's JSON as returned (pretty-printed).
 *   - A failure prints exactly one line "hc: <message>" on stderr — the
 *     API's own message when the daemon refused — and exits 1 (API or
 *     connection error) or 2 (usage error).  Success exits 0.
 *   - hc runs no shell, keeps no state between runs, and leaves nothing
 *     behind on the daemon when a multi-step command (image import) fails.
 *
 * Errors are recorded once, in struct hc, by the function that detects them
 * (hc_fail / hc_usage) and printed once, by main.
 */
#ifndef HC_CLI_H
#define HC_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { HC_EXIT_OK = 0, HC_EXIT_FAIL = 1, HC_EXIT_USAGE = 2 };

struct client;
struct progress;

/* One run of hc: where the daemon is, how to print, and the first error. */
struct hc {
	struct client *cl;
	bool json;
	char *err;                 /* the line main prints after "hc: " */
	int status;                /* exit status that goes with err */
	bool quiet;                /* the reader of stdout went away: say nothing */
};

/* Record an error and return -1, so callers can `return hc_fail(…)`. */
int hc_fail(struct hc *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int hc_usage(struct hc *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writing stdout failed (errno says why).  A closed pipe (`hc vm list |
 * head -1`) fails quietly, as it would for any other Unix tool. */
int hc_output_failed(struct hc *h);
/* Set by SIGINT, SIGTERM and SIGHUP while hc_catch_signals(true) holds:
 * commands that must not die half-way (an import with its cleanup, a
 * console in raw mode) poll it instead.  Delivery interrupts poll() and
 * sleeps (no SA_RESTART). */
extern volatile sig_atomic_t hc_interrupted;
void hc_catch_signals(bool on);
/* Wait between two looks at the daemon; a caught signal ends it early. */
void hc_sleep_ms(long ms);
/* Forget a recorded error (an expected refusal, e.g. 404 in `vm wait --gone`). */
void hc_clear(struct hc *h);
/* Take the recorded message (caller frees), leaving none. */
char *hc_take_error(struct hc *h);

/* ---- the command table (hc.c) ------------------------------------------- */

struct opt_spec {
	const char *name;          /* "--image" */
	const char *metavar;       /* "IMG"; NULL for a flag */
	bool repeat;               /* may be given several times */
	const char *help;
};

struct resource;
struct args;

struct command {
	const char *noun;
	const char *verb;          /* NULL: the noun alone is the command (hc info) */
	int (*run)(struct hc *h, const struct args *a);
	const char *usage;         /* what follows "hc NOUN VERB" */
	const char *summary;
	size_t min_args, max_args; /* positional arguments */
	const struct opt_spec *opts;       /* ends with { NULL }; NULL for none */
	const struct resource *res;        /* the noun's API resource, for the shared verbs */
};

/* A parsed command line: positionals and options, in the order given. */
struct args {
	const struct command *cmd;
	const char **pos;
	size_t n_pos;
	struct { const struct opt_spec *spec; const char *value; } *opts;
	size_t n_opts;
};

/* Value of an option (the last one given), or NULL. */
const char *arg_opt(const struct args *a, const char *name);
/* The n-th value of a repeatable option, or NULL past the last. */
const char *arg_opt_nth(const struct args *a, const char *name, size_t n);
bool arg_flag(const struct args *a, const char *name);
/* Integer option within [lo, hi]: 0 (and *out untouched when absent), or
 * -1 with a usage error. */
int arg_int(struct hc *h, const struct args *a, const char *name, long lo, long hi, long *out);

/* ---- client.c: HTTP to hcd ---------------------------------------------- */

struct api_req {
	const char *method;
	const char *path;          /* "/v1/…", references already escaped */
	json_t *body;              /* JSON body, or NULL */
	FILE *upload;              /* raw body streamed from this file, or NULL */
	long long upload_size;
	struct progress *progress; /* shows the upload's progress on stderr, or NULL */
	volatile sig_atomic_t *cancel;  /* abort the transfer once this is set */
	FILE *sink;                /* a 2xx body is written here instead of kept */
	/* A 2xx body is handed here piece by piece as it arrives (a stream);
	 * returning false ends the transfer (rs->stopped), not as a failure. */
	bool (*on_data)(void *arg, const char *data, size_t len);
	void *on_data_arg;
	const char *const *headers; /* more "Name: value" lines, NULL-terminated, or NULL */
	long timeout_ms;           /* > 0: the transfer ends after that long (rs->timed_out) */
};

struct api_resp {
	long status;               /* HTTP status */
	char *body;                /* NUL-terminated; error bodies always land here */
	size_t len;
	bool stopped;              /* on_data ended the transfer */
	bool timed_out;            /* timeout_ms ran out (status: the answer's, if any) */
};

/* Parse a target ("unix:PATH", "http(s)://HOST[:PORT]"); NULL and *err on a bad one. */
struct client *client_new(const char *url, char **err);
void client_free(struct client *c);
/* The target as the user wrote it, for messages. */
const char *client_url(const struct client *c);
/* Extra request headers ("Name: value"), NULL-terminated: the one place
 * that decides what every request carries. */
const char *const *client_headers(const struct client *c);
/* One HTTP exchange.  0 when the daemon answered (any status), -1 with an
 * error recorded when it could not be reached or the transfer failed. */
int client_perform(struct hc *h, const struct api_req *rq, struct api_resp *rs);
/* One API request: 0 on a 2xx answer; -1 with the API's message (or the
 * transport's) recorded otherwise.  rs->status is 0 when nobody answered;
 * free rs either way. */
int api_request(struct hc *h, const struct api_req *rq, struct api_resp *rs);
void api_resp_free(struct api_resp *rs);
/* The message of an error response (the API's, else a generic one); malloc'd. */
char *api_error_message(const struct api_resp *rs);
/* A JSON call: 0 and *out (may be NULL) on 2xx; -1 with the API's message
 * recorded otherwise.  *status (may be NULL) gets the HTTP status, 0 when
 * the daemon was not reached. */
int api_call(struct hc *h, const char *method, const char *path, json_t *body,
	     json_t **out, long *status);
/* api_call for a command whose answer is its output: takes path (NULL:
 * out of memory) and body; with --json prints the answer and returns 1,
 * else 0 with *out for the caller to print (and free); -1 on failure. */
int api_call_printed(struct hc *h, const char *method, char *path, json_t *body, json_t **out);
/* "/v1/<collection>/<escaped ref>[/<suffix>]", malloc'd. */
char *api_path(const char *collection, const char *ref, const char *suffix);
/* A raw stream to the daemon for a protocol upgrade; also what the Host
 * header must say.  -1 with an error recorded on failure. */
int client_connect_raw(struct hc *h, const struct client *c, const char **host);

/* ---- output.c: what stdout shows ---------------------------------------- */

/* A column of a table, or a line of a "show": title, member, and how to
 * render it (NULL: strings and numbers as they are, null as "-"). */
struct column {
	const char *title;
	const char *key;
	char *(*fmt)(json_t *obj, const char *key);
};

/* An API resource as the shared verbs (list, show, delete) see it. */
struct resource {
	const char *what;          /* "vm", in messages */
	const char *collection;    /* "vms", in /v1/vms */
	const struct column *list; /* ends with { NULL } */
	const struct column *show;
	void (*show_more)(json_t *obj);   /* sections after the fields, or NULL */
	const char *list_fields;   /* members the list columns read, for ?fields=, or NULL */
};

void print_json(json_t *v);
void print_table(json_t *rows, const struct column *cols);
void print_fields(json_t *obj, const struct column *cols);
/* The resource as --json or "show" output. */
void print_resource(const struct hc *h, const struct resource *res, json_t *obj);

/* A string member, or "-" when absent or not a string: safe to print. */
const char *json_str(json_t *obj, const char *key);
/* 14190528 → "13.5 MiB" into buf. */
void human_bytes(long long n, char *buf, size_t len);

char *fmt_plain(json_t *obj, const char *key);
char *fmt_time(json_t *obj, const char *key);      /* unix seconds → UTC */
char *fmt_bytes(json_t *obj, const char *key);     /* 14190528 → "13.5 MiB" */
char *fmt_mib(json_t *obj, const char *key);       /* 256 → "256 MiB" */

/* ---- resource.c: the verbs every noun shares ---------------------------- */

int cmd_list(struct hc *h, const struct args *a);
int cmd_show(struct hc *h, const struct args *a);
int cmd_delete(struct hc *h, const struct args *a);

/* ---- one file per noun -------------------------------------------------- */

/* info.c */
int cmd_info(struct hc *h, const struct args *a);

/* image.c */
extern const struct resource res_image;
int cmd_image_import(struct hc *h, const struct args *a);
int cmd_image_create(struct hc *h, const struct args *a);

/* build.c */
int cmd_image_build(struct hc *h, const struct args *a);

/* key.c */
extern const struct resource res_key;
int cmd_key_add(struct hc *h, const struct args *a);

/* net.c */
extern const struct resource res_net;
int cmd_net_create(struct hc *h, const struct args *a);

/* vm.c */
extern const struct resource res_vm;
int cmd_vm_create(struct hc *h, const struct args *a);
int cmd_vm_set(struct hc *h, const struct args *a);
int cmd_vm_disk(struct hc *h, const struct args *a);
int cmd_vm_start(struct hc *h, const struct args *a);
int cmd_vm_stop(struct hc *h, const struct args *a);
int cmd_vm_reboot(struct hc *h, const struct args *a);
int cmd_vm_log(struct hc *h, const struct args *a);
int cmd_vm_wait(struct hc *h, const struct args *a);

/* user.c */
extern const struct resource res_user;
extern const struct resource res_token;
int cmd_user_create(struct hc *h, const struct args *a);
int cmd_user_set(struct hc *h, const struct args *a);
int cmd_user_show(struct hc *h, const struct args *a);
int cmd_user_passwd(struct hc *h, const struct args *a);
int cmd_user_otp(struct hc *h, const struct args *a);
int cmd_login(struct hc *h, const struct args *a);
int cmd_logout(struct hc *h, const struct args *a);
int cmd_whoami(struct hc *h, const struct args *a);

/* events.c, audit.c (issue 15) */
int cmd_events(struct hc *h, const struct args *a);
int cmd_audit(struct hc *h, const struct args *a);
/* Follow GET /v1/events (from Last-Event-ID last_id, or NULL: a sync
 * first): each event to fn(arg, id, name, data) while it returns 1.
 * Returns fn's 0 (done) or -1 (failed, error recorded); 1 when the
 * stream ended or timeout_ms (0: none) ran out (*timed_out); -2 when
 * there was no stream or it broke (refused by an older hcd or a cap,
 * unreachable, cut): the error is recorded, and a caller may fall back
 * to polling. */
typedef int (*event_fn)(void *arg, const char *id, const char *name, json_t *data);
int events_follow(struct hc *h, const char *last_id, long timeout_ms, event_fn fn, void *arg,
		  bool *timed_out);
/* "1700000000", "90m", "2h", "7d", "2026-12-01", "2026-12-01T08:30[:00]" (UTC) →
 * unix seconds, relative ones counted back from now; -1 for anything else. */
long long since_parse(const char *s, long long now);

/* host.c */
extern const struct resource res_host;
int cmd_host_drain(struct hc *h, const struct args *a);
/* migrate.c: live migration (issue 14 §1) */
int cmd_vm_migrate(struct hc *h, const struct args *a);
int cmd_host_drain_migrate(struct hc *h, const struct args *a, long parallel);

/* console.c */
int cmd_vm_console(struct hc *h, const struct args *a);

/* vmnet.c */
int cmd_vm_nic(struct hc *h, const struct args *a);
/* Run one call (path and body are freed) and print its JSON answer with
 * --json, else done_fmt with a1 and a2. */
int call_and_print(struct hc *h, const char *method, char *path, json_t *body,
		   const char *done_fmt, const char *a1, const char *a2);

/* usage.c: bandwidth limits, counters, quotas, usage (issue 13) */
int cmd_vm_stats(struct hc *h, const struct args *a);
int cmd_net_set(struct hc *h, const struct args *a);
int cmd_usage(struct hc *h, const struct args *a);
/* vm nic set VM MAC --rate SPEC */
int cli_vm_nic_set(struct hc *h, const struct args *a);
/* --rate-cap / --traffic-quota of `user set`, --traffic-quota of `vm set`:
 * 0 none given, 1 done, -1 failed. */
int cli_user_traffic(struct hc *h, const struct args *a);
int cli_vm_traffic(struct hc *h, const struct args *a);
/* A SPEC as the API's limit object / a --net NET[:rate=SPEC] as an element
 * of "networks"; NULL with a usage error. */
json_t *cli_limit_json(struct hc *h, const char *spec, const char *what);
json_t *cli_net_element(struct hc *h, const char *arg);
/* An API limit object as a SPEC. */
char *fmt_limit(json_t *obj, const char *key);
int cmd_vm_rule(struct hc *h, const struct args *a);

/* snapshot.c */
int cmd_vm_snapshot(struct hc *h, const struct args *a);

/* prefix.c: routed prefixes and public IPv4 addresses */
int cmd_vm_prefix(struct hc *h, const struct args *a);
int cmd_ip_attach(struct hc *h, const struct args *a);
int cmd_ip_detach(struct hc *h, const struct args *a);
int cmd_ip_list(struct hc *h, const struct args *a);

#endif
