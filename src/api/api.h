/*
 * api — the REST/JSON API under /v1/ (DESIGN §9), served by libmicrohttpd
 * from hcd's one event loop.
 *
 * The whole surface is the route table in routes.c: method, path pattern,
 * handler, body kind, who may call it.  Handlers validate every input,
 * answer {"error":{"code":…,"message":…}} with a fitting 4xx/5xx status on
 * failure, and touch the host only through the store (the agent does the
 * rest) — except the few imperative verbs (reboot, console, log) that have
 * no desired state.
 */
#ifndef HC_API_H
#define HC_API_H

#include "agent/reconcile.h"
#include "common/config.h"
#include "common/rate.h"
#include "store/store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

struct api_auth;
struct worker_pool;

struct api_ctx {
	struct store *st;
	struct agent *agent;
	struct config *cfg;
	struct api_auth *auth;            /* auth.c: created by api_server_start */
	struct cluster *cluster;          /* placement policy of this host */
	struct importer *importer;        /* image/import.h: downloads from URLs */
	struct worker_pool *workers;      /* common/worker.h: slow steps off the loop */
};

enum body_kind { BODY_NONE, BODY_JSON, BODY_STREAM };

struct req;

struct route {
	const char *method;
	const char *pattern;              /* segments; "{}" captures one */
	int (*handler)(struct req *r);    /* runs once the body is complete */
	enum body_kind body;
	/* BODY_STREAM: begin (may refuse), then every chunk as it arrives. */
	int (*stream_begin)(struct req *r);
	int (*stream_chunk)(struct req *r, const char *data, size_t len);
	/* Who may call: false/ROUTE_USER any identified caller, true/ROUTE_ADMIN
	 * admins only, ROUTE_ANON anybody (logging in needs no identity). */
	int access;
};

enum { ROUTE_USER = 0, ROUTE_ADMIN = 1, ROUTE_ANON = 2 };

#define REQ_MAX_PARAMS 4

struct req {
	struct api_ctx *api;
	struct MHD_Connection *conn;
	const char *method;
	const struct route *route;
	char *params[REQ_MAX_PARAMS];
	size_t n_params;
	uint64_t caller;                  /* user ID */
	bool admin;
	uint64_t token_id;                /* the bearer token used, 0 = none (peer credentials) */
	char source[64];                  /* the peer: an address, or "unix:UID" */
	/* request body */
	char *body;
	size_t body_len;
	bool body_too_large;
	json_t *json;
	void *stream;                     /* handler state of BODY_STREAM routes */
	void (*stream_free)(void *);
	bool stream_failed;
	/* response */
	int status;
	json_t *resp;
	char *text;                       /* text/plain response, malloc'd */
	size_t text_len;
	struct MHD_Response *raw;         /* prebuilt (protocol upgrade) */
	int retry_after;                  /* seconds, sent as Retry-After when > 0 */
	/* req_defer: suspended while a worker runs; the response is ready
	 * once resumed. */
	bool deferred, resumed;
};

/* Scope for store lookups: admins see everything. */
static inline uint64_t req_scope(const struct req *r)
{
	return r->admin ? OWNER_ANY : r->caller;
}

/* Set an error response; returns 0 so handlers can `return req_error(…)`. */
int req_error(struct req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Map a store result to an error response about `what`. */
int req_store_error(struct req *r, int rc, const char *what, const char *ref);
/* Set a JSON response (steals the reference). */
int req_json(struct req *r, int status, json_t *body);
/* A resource name is valid and does not read as an ID of id_digits hex. */
bool api_name_check(struct req *r, const char *name, size_t id_digits, const char *what);
/* JSON body members (routes.c).  Each returns false with a 400 set. */
/* Refuse members the endpoint does not know: a typo must not fall back to a default. */
bool only_keys(struct req *r, const char *const *allowed);
/* Optional (or required) string member. */
bool get_str(struct req *r, const char *key, bool required, const char **out);
/* Optional integer member within [lo, hi]; *out untouched when absent. */
bool get_int(struct req *r, const char *key, int lo, int hi, int *out);
/* The VM runs (or would run) on this host; else a 409 naming its host is
 * set: its serial log, console and QMP socket are that host's. */
bool api_vm_here(struct req *r, const struct vm *vm);
/* Query-string argument or NULL. */
const char *req_query(struct req *r, const char *key);
/*
 * Finish a request off the event loop: work(arg) runs on a worker thread
 * (common/worker.h: it must not touch the store or r), then finish(r,
 * arg, ran) runs on the loop and sets the response (ran = false: hcd is
 * stopping and work never ran; finish must still free arg).  The
 * connection is suspended meanwhile, so other requests go on.  A handler
 * calls it last: `return req_defer(r, …);`.  Without a worker pool (unit
 * tests) both run at once, in order.
 */
int req_defer(struct req *r, void (*work)(void *arg),
	      void (*finish)(struct req *r, void *arg, bool ran), void *arg);

/* http.c: listeners.  Returns NULL and a message on failure. */
struct api_server;
struct api_server *api_server_start(struct api_ctx *ctx, char **err);
void api_server_stop(struct api_server *s);
/* Descriptors to poll for input (up to 2) and MHD's wish for a timeout. */
int api_server_fds(struct api_server *s, int fds[2]);
long long api_server_timeout_ms(struct api_server *s);
void api_server_run(struct api_server *s);

/* routes.c */
extern const struct route api_routes[];
extern const size_t api_n_routes;

/* images.c */
int h_image_list(struct req *r);
int h_image_create(struct req *r);
int h_image_get(struct req *r);
int h_image_delete(struct req *r);
int h_image_upload(struct req *r);
int h_image_upload_begin(struct req *r);
int h_image_upload_chunk(struct req *r, const char *data, size_t len);
int h_image_finalize(struct req *r);

/* vmnet.c */
/* The VM of the path's first {} the caller may see; else false, a 404 set. */
bool vm_of_path(struct req *r, struct vm *vm);
/* A NIC named by its MAC or its tap name. */
bool nic_of_param(const char *s, uint64_t *nic);
int h_vm_nic_add(struct req *r);
int h_vm_nic_remove(struct req *r);
int h_vm_rule_list(struct req *r);
int h_vm_rule_add(struct req *r);
int h_vm_rule_delete(struct req *r);

/* usage.c: bandwidth limits, traffic counters, quotas, usage (issue 13) */
int h_vm_stats(struct req *r);
int h_vm_nic_update(struct req *r);
int h_vm_traffic_update(struct req *r);
int h_net_update(struct req *r);
int h_user_traffic_get(struct req *r);
int h_user_traffic_update(struct req *r);
int h_usage(struct req *r);
/* What routes.c's creates take: a "networks" element (a name, or
 * {"network", "limit"}) → its network's name, or NULL when malformed;
 * the NICs' limits ("limit" for all, each element's own) into *out (NULL:
 * none; free it) and the network's default; false with an error set (400,
 * or 403 over the caller's rate cap). */
const char *api_nic_network(json_t *v);
bool api_nic_limits(struct req *r, json_t *networks, size_t n, struct nic_limit **out);
bool api_net_limit(struct req *r, struct nic_limit *out, bool *given);
/* A network's "limit" (its NICs' default) added to its JSON / to a list's. */
void api_net_json_limit(struct store *st, json_t *obj, uint64_t network);
void api_nets_json_limits(struct store *st, json_t *arr);

/* keys.c */
int h_key_list(struct req *r);
int h_key_create(struct req *r);
int h_key_get(struct req *r);
int h_key_delete(struct req *r);
int h_vm_user_data(struct req *r);

/* auth.c: who is calling, logins, users and tokens. */
struct api_auth *api_auth_new(const struct config *cfg, char **err);
void api_auth_free(struct api_auth *a);
/* Establish the caller of r (bearer token, else the unix peer's
 * credentials).  False with the error response set (401, 403, 429). */
bool api_identify(struct req *r, bool is_unix);
int h_login(struct req *r);
int h_logout(struct req *r);
int h_whoami(struct req *r);
int h_token_list(struct req *r);
int h_token_delete(struct req *r);
int h_user_list(struct req *r);
int h_user_create(struct req *r);
int h_user_get(struct req *r);
int h_user_update(struct req *r);
int h_user_delete(struct req *r);
int h_user_password(struct req *r);
int h_user_otp_enable(struct req *r);
int h_user_otp_disable(struct req *r);
int h_auth_backoff(struct req *r);

/* hosts.c */
int h_host_list(struct req *r);
int h_host_get(struct req *r);
int h_host_drain(struct req *r);

/* console.c */
int h_vm_console(struct req *r);

#endif
