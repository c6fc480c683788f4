/*
 * openapi — the API describing itself (issue 15 §4):
 *
 *   - api_routes_json: the route table (route.h) as data — method, path
 *     pattern, who may call, body kind — for `hcd --print-routes`, which
 *     the openapi test compares with the document row by row;
 *   - GET /v1/openapi.json: docs/openapi.json, the OpenAPI 3.0 document of
 *     every route, compiled into hcd at build time (openapi_doc.c, made by
 *     scripts/embed.py), so the description served is always the one of
 *     the running binary.  Anybody may fetch it: it is the public
 *     documentation of the API and says nothing about this deployment.
 */
#ifndef HC_API_OPENAPI_H
#define HC_API_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

/* [{"method", "path", "access": "user|admin|anon", "body": "none|json|stream",
 *   "serves": "api|page|websocket"}] in table order (route.h's flags). */
json_t *api_routes_json(void);

/* openapi_doc.c (generated): the document's bytes, and how many. */
extern const char openapi_doc[];
extern const size_t openapi_doc_len;

#endif
