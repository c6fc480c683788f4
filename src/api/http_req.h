/*
 * http_req — the HTTP layer's side of a request, shared by http.c (which
 * reads requests and sends answers) and req.c (which implements the
 * request interface on top of libmicrohttpd).  Handlers never see it.
 */
#ifndef HC_API_HTTP_REQ_H
#define HC_API_HTTP_REQ_H

#include "api/req.h"
#include "api/route.h"

#include <microhttpd.h>

struct upgrade_call;
struct api_server;

struct http_req {
	struct req pub;                   /* first: a struct req * is a struct http_req * */
	struct api_server *server;
	struct MHD_Connection *conn;
	const struct route *route;
	/* the body as it arrives */
	char *body;
	size_t body_len;
	bool body_refused;                /* too large or unwanted: the error is set */
	bool stream_failed;
	/* the answer */
	int status;
	json_t *resp;
	char *text;                       /* text/plain, malloc'd */
	size_t text_len;
	struct MHD_Response *raw;         /* prebuilt: bytes, or a protocol upgrade */
	struct upgrade_call *upgrade;     /* req_upgrade's, until the upgrade runs */
	bool upgraded;                    /* the answer is an upgrade */
	int retry_after;
	/* req_header_add: more headers of the answer (copies) */
	struct { char *name, *value; } headers[REQ_MAX_HEADERS];
	size_t n_headers;
	/* req_defer: suspended while a worker runs (pending: steps handed
	 * to workers and not finished; a finish may hand over the next);
	 * the answer is ready once resumed. */
	bool deferred, resumed;
	int pending;
	/* Observation (metrics.h, audit.h): the route the path matched even
	 * when the request was refused, and when its headers arrived. */
	const struct route *matched;
	double t0;
};

static inline struct http_req *http_req_of(struct req *r)
{
	return (struct http_req *)r;
}

/* req.c: free what an answer holds (before another replaces it, and with
 * the request). */
void http_req_answer_free(struct http_req *h);

/* http.c: h was resumed (req_defer).  In external-select mode nothing wakes
 * libmicrohttpd for it, so the server asks the loop for an immediate turn. */
void http_req_resumed(struct http_req *h);
/* The same for a connection that outlives its request's state (a stream). */
void http_server_resumed(struct api_server *s);

#endif
