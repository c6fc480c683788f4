/*
 * route — the API surface as data (STYLE: Redis's command table): one row
 * per endpoint with its method, path pattern, handler, body kind and who
 * may call it.  routes.c holds the table; http.c matches
 * requests against it and knows nothing else of the handlers.
 */
#ifndef HC_API_ROUTE_H
#define HC_API_ROUTE_H

#include <stddef.h>

struct req;

enum body_kind { BODY_NONE, BODY_JSON, BODY_STREAM };

/* Who may call: ROUTE_USER any identified caller, ROUTE_ADMIN admins only,
 * ROUTE_ANON anybody (logging in needs no identity), ROUTE_METRICS admins
 * or the bearer of the metrics token (metrics_token_file: a scraper that
 * may read /metrics and nothing else).  false/true read as USER/ADMIN, as
 * older rows write them.  Each has a name in openapi.c (hcd
 * --print-routes, x-hackcloud-access in docs/openapi.json). */
enum { ROUTE_USER = 0, ROUTE_ADMIN = 1, ROUTE_ANON = 2, ROUTE_METRICS = 3 };

/*
 * What a route serves, or'ed into access (without either: JSON), for the
 * HTTP layer's rules around it:
 *   ROUTE_PAGE       the dashboard's static files (web.c): answered with
 *                    the page's Content-Security-Policy;
 *   ROUTE_WEBSOCKET  an RFC 6455 upgrade from a browser: its bearer token
 *                    may come as the subprotocol "bearer.TOKEN" (a browser
 *                    cannot send Authorization on a WebSocket), and an
 *                    Origin header, when sent, must be the listener's own.
 * (Flags rather than a field of their own: rows written without them
 * stay valid as they are.)  openapi.c names them for hcd --print-routes.
 */
#define ROUTE_PAGE       0x10
#define ROUTE_WEBSOCKET  0x20
/* Who may call a route: its access without those flags. */
#define ROUTE_WHO(access) ((access) & 0x0f)

/* Bodies of ROUTE_ANON routes are read before anyone is identified: they
 * never exceed this (others: the max_body setting). */
#define ROUTE_ANON_MAX_BODY 4096

struct route {
	const char *method;
	const char *pattern;              /* segments; "{}" captures one, a final
	                                   * "*" the (non-empty) rest of the path */
	int (*handler)(struct req *r);    /* runs once the body is complete */
	enum body_kind body;
	/* BODY_STREAM: begin (may refuse), then every chunk as it arrives. */
	int (*stream_begin)(struct req *r);
	int (*stream_chunk)(struct req *r, const char *data, size_t len);
	int access;                       /* ROUTE_USER/ADMIN/ANON [| ROUTE_PAGE/WEBSOCKET] */
};

extern const struct route api_routes[];
extern const size_t api_n_routes;

#endif
