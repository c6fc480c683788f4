/*
 * quotas — a user's quotas and what they hold against them (issue 11,
 * item 12; store.h, quotas):
 *   GET   /v1/users/{name}/quota   self or admin: usage against limits
 *   PATCH /v1/users/{name}/quota   admin: {"vms": 10, "vcpus": "unlimited",
 *                                   "memory_mib": "default", …}
 * The limits themselves are enforced by the store, in the transaction of
 * each create; here they are only shown and set.
 */
#include "api/handlers.h"

#include <string.h>

bool user_of_path(struct req *r, struct user *u)
{
	int rc = store_user_get(r->api->st, r->params[0], u);

	if (rc == STORE_OK && !r->admin && u->id != r->caller) {
		user_free(u);
		rc = STORE_NOTFOUND;
	}
	if (rc != STORE_OK)
		req_store_error(r, rc, "user", r->params[0]);
	return rc == STORE_OK;
}

/* A user's own setting as JSON: N, "unlimited" or "default". */
static json_t *setting_json(int64_t v)
{
	if (v == QUOTA_UNLIMITED)
		return json_string("unlimited");
	if (v == QUOTA_DEFAULT)
		return json_string("default");
	return json_integer((json_int_t)v);
}

static int reply_quota(struct req *r, const struct user *u)
{
	struct quota_usage qu;
	int rc = store_quota_get(r->api->st, u->id, &qu);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", u->name);
	json_t *q = json_object();
	for (int i = 0; i < QUOTA_N; i++)
		json_object_set_new(q, quota_names[i], json_pack("{s:I, s:o, s:o}",
			"used", (json_int_t)qu.used[i],
			"limit", qu.limit[i] == QUOTA_UNLIMITED ? json_null()
								: json_integer((json_int_t)qu.limit[i]),
			"set", setting_json(qu.set[i])));
	return req_json(r, 200, json_pack("{s:s, s:o}", "user", u->name, "quota", q));
}

int h_user_quota_get(struct req *r)
{
	struct user u = { 0 };

	if (!user_of_path(r, &u))
		return 0;
	reply_quota(r, &u);
	user_free(&u);
	return 0;
}

/* One member of the body: a limit >= 0, "unlimited", or "default"/null. */
static bool setting_parse(struct req *r, const char *key, json_t *v, int64_t *out)
{
	if (json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), "default") == 0))
		*out = QUOTA_DEFAULT;
	else if (json_is_string(v) && strcmp(json_string_value(v), "unlimited") == 0)
		*out = QUOTA_UNLIMITED;
	else if (json_is_integer(v) && json_integer_value(v) >= 0)
		*out = json_integer_value(v);
	else {
		req_error(r, 400, "bad_request",
			  "'%s' must be a limit (an integer >= 0), \"unlimited\" or \"default\"", key);
		return false;
	}
	return true;
}

int h_user_quota_set(struct req *r)
{
	int64_t set[QUOTA_N];
	struct user u = { 0 };
	const char *key;
	json_t *v;

	for (int i = 0; i < QUOTA_N; i++)
		set[i] = QUOTA_KEEP;
	json_object_foreach(r->json, key, v) {
		int i = 0;
		while (i < QUOTA_N && strcmp(quota_names[i], key) != 0)
			i++;
		if (i == QUOTA_N)
			return req_error(r, 400, "bad_request", "unknown quota '%s'", key);
		if (!setting_parse(r, key, v, &set[i]))
			return 0;
	}
	if (!user_of_path(r, &u))
		return 0;
	int rc = store_quota_set(r->api->st, u.id, set);
	if (rc != STORE_OK)
		req_store_error(r, rc, "user", u.name);
	else
		reply_quota(r, &u);
	user_free(&u);
	return 0;
}
