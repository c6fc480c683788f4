/* openapi — see openapi.h. */
#include "api/openapi.h"

#include "api/handlers.h"
#include "api/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The names the document uses for route.h's enums (x-hackcloud-access). */
static const char *const access_names[] = {
	[ROUTE_USER] = "user", [ROUTE_ADMIN] = "admin", [ROUTE_ANON] = "anon", [ROUTE_METRICS] = "metrics",
};
static const char *const body_names[] = {
	[BODY_NONE] = "none", [BODY_JSON] = "json", [BODY_STREAM] = "stream",
};

/* names[v], or "?N" for a value the table here does not know yet: the
 * route still shows (and differs from the document), never vanishes. */
static json_t *enum_name(const char *const *names, size_t n, int v)
{
	char buf[16];

	if (v >= 0 && (size_t)v < n && names[v])
		return json_string(names[v]);
	snprintf(buf, sizeof(buf), "?%d", v);
	return json_string(buf);
}

json_t *api_routes_json(void)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < api_n_routes; i++) {
		const struct route *rt = &api_routes[i];
		int who = ROUTE_WHO(rt->access);
		json_t *row = json_pack("{s:s, s:s, s:o, s:o, s:s}", "method", rt->method, "path", rt->pattern,
			"access", enum_name(access_names, sizeof(access_names) / sizeof(access_names[0]), who),
			"body", enum_name(body_names, sizeof(body_names) / sizeof(body_names[0]), (int)rt->body),
			"serves", rt->access & ROUTE_PAGE ? "page" : rt->access & ROUTE_WEBSOCKET ? "websocket"
							 : "api");
		if (row == NULL || json_array_append_new(arr, row) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int h_openapi(struct req *r)
{
	/* The answer owns its bytes (req_bytes frees them): a copy of the
	 * document, which costs a memcpy of ~100 KiB. */
	char *copy = malloc(openapi_doc_len);

	if (copy == NULL)
		return req_error(r, 500, "internal", "out of memory");
	memcpy(copy, openapi_doc, openapi_doc_len);
	return req_bytes(r, 200, "application/json", copy, openapi_doc_len);
}
