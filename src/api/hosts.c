/*
 * hosts — the hosts of the cluster, for admins (issue 7):
 *
 *   GET  /v1/hosts                 every host with its capacity, load and liveness
 *   GET  /v1/hosts/{name}
 *   POST /v1/hosts/{name}/drain    {"drain": true|false}: no new VMs there;
 *                                  {"migrate": true, "parallel": N}: and its
 *                                  running VMs moved away live, N at a time
 *                                  (the scheduler requests the migrations:
 *                                  cluster/drain.c)
 */
#include "api/handlers.h"

#include "api/codec.h"
#include "common/validate.h"

#include <string.h>
#include <time.h>

/* The host answering is alive now, whether or not it wrote a heartbeat
 * (alone, it does not: store_host_heartbeat). */
static json_t *host_json(struct req *r, const struct host *h)
{
	json_t *j = host_to_json(h);

	if (strcmp(h->name, r->api->cfg->host_name) == 0)
		json_object_set_new(j, "last_seen", json_integer((json_int_t)time(NULL)));
	return j;
}

int h_host_list(struct req *r)
{
	struct host *v = NULL;
	size_t n = 0;
	int rc = store_host_list(r->api->st, &v, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "host", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, host_json(r, &v[i]));
	hosts_free(v, n);
	return req_json(r, 200, arr);
}

static int reply_host(struct req *r, const char *name)
{
	struct host h = { 0 };
	int rc = host_name_valid(name) ? store_host_get(r->api->st, name, &h) : STORE_NOTFOUND;

	if (rc != STORE_OK)
		return req_store_error(r, rc, "host", name);
	req_json(r, 200, host_json(r, &h));
	host_free(&h);
	return 0;
}

int h_host_get(struct req *r)
{
	return reply_host(r, r->params[0]);
}

int h_host_drain(struct req *r)
{
	static const char *const keys[] = { "drain", "migrate", "parallel", NULL };
	json_t *jd = json_object_get(r->json, "drain"), *jm = json_object_get(r->json, "migrate");
	bool drain = true, migrate = false;
	int parallel = 1, rc;

	if (!only_keys(r, keys))
		return 0;
	if (jd && !json_is_boolean(jd))
		return req_error(r, 400, "bad_request", "'drain' must be true or false");
	if (jm && !json_is_boolean(jm))
		return req_error(r, 400, "bad_request", "'migrate' must be true or false");
	if (json_object_get(r->json, "parallel") && !get_int(r, "parallel", 1, 16, &parallel))
		return 0;
	if (jd)
		drain = json_is_true(jd);
	migrate = json_is_true(jm);
	if (migrate && !drain)
		return req_error(r, 400, "bad_request", "'migrate' needs 'drain': true");
	if (!host_name_valid(r->params[0]))
		rc = STORE_NOTFOUND;
	else if (migrate)
		rc = store_host_drain_migrate(r->api->st, r->params[0], parallel);
	else
		rc = store_host_set_drain(r->api->st, r->params[0], drain);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "host", r->params[0]);
	return reply_host(r, r->params[0]);
}
