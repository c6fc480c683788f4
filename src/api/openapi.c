/* openapi — see openapi.h. */
#include "api/openapi.h"

#include "api/handlers.h"
#include "api/route.h"

#include <stdlib.h>
#include <string.h>

/* The names the document uses for route.h's enums (x-hackcloud-access). */
static const char *const access_names[] = {
	[ROUTE_USER] = "user", [ROUTE_ADMIN] = "admin", [ROUTE_ANON] = "anon",
};
static const char *const body_names[] = {
	[BODY_NONE] = "none", [BODY_JSON] = "json", [BODY_STREAM] = "stream",
};

json_t *api_routes_json(void)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < api_n_routes; i++) {
		const struct route *rt = &api_routes[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "method", rt->method,
						     "path", rt->pattern,
						     "access", access_names[rt->access],
						     "body", body_names[rt->body]));
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
