/*
 * api — the REST/JSON API under /v1/ (DESIGN §9), served by libmicrohttpd
 * from hcd's one event loop.  This header is what hcd sees of it: the
 * context handlers run in, and the listeners' life cycle.
 *
 * The module, layer by layer (each file includes only the layers below):
 *   route.h     the whole surface as one table: method, path pattern,
 *               handler, body kind and limit, who may call it (routes.c);
 *   http.c      listeners, connection limits, dispatch through the table;
 *               it knows no handler and no credential, only
 *   identity.h  who is calling (identity.c) and
 *   req.h       the request interface, the only thing handlers see;
 *   handlers.h  the handlers, by file (auth, images, keys, vms, …),
 *               and the dashboard's static files (web.h).
 * Handlers validate every input, answer {"error":{"code":…,"message":…}}
 * with a fitting 4xx/5xx status on failure, and touch the host only
 * through the store (the agent does the rest) — except the few imperative
 * verbs (reboot, console, log) that have no desired state.
 */
#ifndef HC_API_H
#define HC_API_H

#include "agent/reconcile.h"
#include "common/config.h"
#include "store/store.h"

struct api_auth;
struct audit;
struct events;
struct metrics;
struct worker_pool;

struct api_ctx {
	struct store *st;
	struct agent *agent;
	struct config *cfg;
	struct api_auth *auth;            /* identity.c: created by api_server_start */
	struct cluster *cluster;          /* placement policy of this host */
	struct importer *importer;        /* image/import.h: downloads from URLs */
	struct worker_pool *workers;      /* common/worker.h: slow steps off the loop */
	/* issue 15, created by api_server_start: */
	struct metrics *metrics;          /* metrics.h: GET /metrics, request counts */
	struct events *events;            /* events.h: GET /v1/events streams */
	struct audit *audit;              /* audit.h: the audit trail's journal */
	struct web *web;                  /* web.h: the dashboard's files (api_server_start) */
};

/* http.c: listeners.  Returns NULL and a message on failure. */
struct api_server;
struct api_server *api_server_start(struct api_ctx *ctx, char **err);
/* Ends open consoles, then closes every connection.  Free the worker pool
 * first: its done callbacks finish suspended requests (req_defer). */
void api_server_stop(struct api_server *s);
/* Descriptors to poll for input (up to API_SERVER_FDS: the listeners',
 * and the metrics' own worker) and the longest the loop may sleep before
 * api_server_run is due (-1: no limit). */
#define API_SERVER_FDS 3
int api_server_fds(struct api_server *s, int fds[API_SERVER_FDS]);
long long api_server_timeout_ms(struct api_server *s);
void api_server_run(struct api_server *s);
/* Once per loop turn, after the store's drains: the event streams read
 * what was committed since (here, or by `remote` other processes). */
void api_server_changes(struct api_server *s, int remote);

#endif
