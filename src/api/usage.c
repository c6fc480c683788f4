/*
 * usage — bandwidth limits, traffic counters, quotas and usage over the
 * API (issue 13 §1, §2).  Handlers only change the store; the agents shape
 * and count (agent/bandwidth.h, agent/meter.h).
 *
 * A limit in JSON: {"in": DIR|null, "out": DIR|null}, DIR = {"rate": bits/s,
 * "burst"?: bytes}; "in" is traffic to the VM, "out" from it (common/rate.h).
 * A member may not give a NIC (or a network's default) a rate above the
 * rate cap an admin set for them: 403 over_cap names the cap.
 */
#include "api/handlers.h"

#include "agent/bandwidth.h"
#include "common/ids.h"
#include "store/usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECONDS_PER_HOUR 3600.0

static json_t *u64_json(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *u64_or_null(uint64_t v)
{
	return v ? u64_json(v) : json_null();
}

static void this_month(char out[MONTH_STRLEN + 1])
{
	usage_month(time(NULL), out);
}

/* ---- limits in JSON ----------------------------------------------------- */

static json_t *dir_to_json(const struct rate_limit *l, bool actual)
{
	if (l->rate == 0)
		return json_null();
	/* A configured burst of 0 is "the default"; in force, it is a number. */
	return json_pack("{s:o, s:o}", "rate", u64_json(l->rate),
			 "burst", actual ? u64_json(rate_burst(l)) : u64_or_null(l->burst));
}

json_t *limit_to_json(const struct nic_limit *l)
{
	return json_pack("{s:o, s:o}", "in", dir_to_json(&l->in, false), "out", dir_to_json(&l->out, false));
}

/* One direction: null = none; {"rate", "burst"?}. */
static bool dir_from_json(struct req *r, json_t *v, const char *which, struct rate_limit *out)
{
	const char *key;
	json_t *m;

	*out = (struct rate_limit){ 0 };
	if (json_is_null(v))
		return true;
	if (!json_is_object(v))
		goto bad;
	json_object_foreach(v, key, m) {
		if (strcmp(key, "rate") != 0 && strcmp(key, "burst") != 0)
			goto bad;
		if (!json_is_integer(m) || json_integer_value(m) <= 0)
			goto bad;
	}
	json_t *rate = json_object_get(v, "rate"), *burst = json_object_get(v, "burst");
	if (rate == NULL)
		goto bad;
	out->rate = (uint64_t)json_integer_value(rate);
	out->burst = burst ? (uint64_t)json_integer_value(burst) : 0;
	if (rate_limit_valid(out))
		return true;
bad:
	req_error(r, 400, "bad_request",
		  "'%s' must be null or {\"rate\": BITS_PER_SECOND, \"burst\"?: BYTES} with a rate of"
		  " %llu..%llu and a burst of %llu..%llu", which, (unsigned long long)RATE_MIN,
		  (unsigned long long)RATE_MAX, (unsigned long long)BURST_MIN,
		  (unsigned long long)BURST_MAX);
	return false;
}

/*
 * A limit object into *l.  Directions left out keep what *l held (a
 * PATCH changes only what it names); false with a 400 set when bad.
 */
static bool limit_from_json(struct req *r, json_t *v, struct nic_limit *l)
{
	const char *key;
	json_t *m;

	if (!json_is_object(v)) {
		req_error(r, 400, "bad_request", "'limit' must be {\"in\": …, \"out\": …}");
		return false;
	}
	json_object_foreach(v, key, m)
		if (strcmp(key, "in") != 0 && strcmp(key, "out") != 0) {
			req_error(r, 400, "bad_request", "unknown field '%s' in 'limit'", key);
			return false;
		}
	json_t *in = json_object_get(v, "in"), *out = json_object_get(v, "out");
	return (in == NULL || dir_from_json(r, in, "limit.in", &l->in)) &&
	       (out == NULL || dir_from_json(r, out, "limit.out", &l->out));
}

/* False with a 403 naming the cap when l is faster than owner's cap. */
static bool cap_allows(struct req *r, uint64_t owner, const struct nic_limit *l)
{
	struct user_traffic t;
	char *name = NULL, cap[32];

	if (store_user_traffic_get(r->api->st, owner, &t) != STORE_OK) {
		req_error(r, 500, "internal", "store failure");
		return false;
	}
	if (t.rate_cap == 0 || (l->in.rate <= t.rate_cap && l->out.rate <= t.rate_cap))
		return true;
	store_user_name(r->api->st, owner, &name);
	rate_format(t.rate_cap, cap, sizeof(cap));
	req_error(r, 403, "over_cap", "a NIC of user '%s' may not exceed its rate cap of %s"
		  " (%llu bit/s)", name ? name : "?", cap, (unsigned long long)t.rate_cap);
	free(name);
	return false;
}

/* ---- VM and network creation (routes.c), a NIC's (vmnet.c) --------------- */

const char *api_nic_network(json_t *v)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_object(v))
		return NULL;
	const char *key;
	json_t *m;
	json_object_foreach(v, key, m)
		if (strcmp(key, "network") != 0 && strcmp(key, "limit") != 0)
			return NULL;
	return json_string_value(json_object_get(v, "network"));
}

bool api_nic_limits(struct req *r, json_t *networks, size_t n, struct nic_limit **out)
{
	json_t *all = json_object_get(r->json, "limit"), *v;
	struct nic_limit base = { 0 };
	bool any = all != NULL && !json_is_null(all);
	size_t i;

	*out = NULL;
	if (any && !limit_from_json(r, all, &base))
		return false;
	/* An entry's "limit": null is no limit of its own, as at the top. */
	json_array_foreach(networks, i, v) {
		json_t *own = json_object_get(v, "limit");
		any = any || (own != NULL && !json_is_null(own));
	}
	if (!any || n == 0)
		return true;
	if ((*out = calloc(n, sizeof(**out))) == NULL) {
		req_error(r, 500, "internal", "out of memory");
		return false;
	}
	json_array_foreach(networks, i, v) {
		json_t *own = json_object_get(v, "limit");
		if (i >= n)
			break;
		(*out)[i] = base;
		if ((own && !json_is_null(own) && !limit_from_json(r, own, &(*out)[i])) ||
		    !cap_allows(r, r->caller, &(*out)[i])) {
			free(*out);
			*out = NULL;
			return false;
		}
	}
	return true;
}

bool api_body_limit(struct req *r, uint64_t owner, struct nic_limit *out, bool *given)
{
	json_t *v = json_object_get(r->json, "limit");

	*out = (struct nic_limit){ 0 };
	*given = v != NULL && !json_is_null(v);
	return !*given || (limit_from_json(r, v, out) && cap_allows(r, owner, out));
}

json_t *api_net_json_limit(struct store *st, json_t *obj, uint64_t network)
{
	struct nic_limit l = { 0 };

	store_net_limit_get(st, network, &l);
	json_object_set_new(obj, "limit", limit_to_json(&l));
	return obj;
}

void api_nets_json_limits(struct store *st, json_t *arr)
{
	struct net_limit_row *rows = NULL;
	size_t n = 0, i;
	json_t *obj;

	store_net_limit_list(st, &rows, &n);
	json_array_foreach(arr, i, obj) {
		uint64_t id = 0;
		struct nic_limit l = { 0 };
		net_id_parse(json_string_value(json_object_get(obj, "id")) ?
			     json_string_value(json_object_get(obj, "id")) : "", &id);
		for (size_t j = 0; j < n; j++)
			if (rows[j].network == id)
				l = rows[j].limit;
		json_object_set_new(obj, "limit", limit_to_json(&l));
	}
	free(rows);
}

/* PATCH /v1/networks/{}: {"limit": …} — the default of its NICs. */
int h_net_update(struct req *r)
{
	static const char *const keys[] = { "limit", NULL };
	struct network net = { 0 };
	struct nic_limit l;
	json_t *v = json_object_get(r->json, "limit");
	int rc;

	if (!only_keys(r, keys))
		return 0;
	if (v == NULL)
		return req_error(r, 400, "bad_request", "'limit' is required");
	rc = store_network_get(r->api->st, req_ref(r), req_scope(r), &net);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "network", r->params[0]);
	rc = store_net_limit_get(r->api->st, net.id, &l);
	if (json_is_null(v))
		l = (struct nic_limit){ 0 };
	if (rc == STORE_OK && (json_is_null(v) || limit_from_json(r, v, &l)) &&
	    cap_allows(r, net.owner, &l)) {
		rc = store_net_limit_set(r->api->st, net.id, &l);
		if (rc != STORE_OK)
			req_store_error(r, rc, "network", r->params[0]);
		else
			req_json(r, 200, json_pack("{s:s, s:s, s:o}", "id", net_id_format(net.id).s,
						   "name", net.name, "limit", limit_to_json(&l)));
	} else if (rc != STORE_OK) {
		req_store_error(r, rc, "network", r->params[0]);
	}
	network_free(&net);
	return 0;
}

/* ---- a VM's NICs: limits and counters ----------------------------------- */

static json_t *traffic_json(const struct traffic *t)
{
	return json_pack("{s:o, s:o, s:o, s:o}", "bytes_in", u64_json(t->bytes_in),
			 "bytes_out", u64_json(t->bytes_out), "packets_in", u64_json(t->packets_in),
			 "packets_out", u64_json(t->packets_out));
}

static json_t *effective_json(const struct nic_shaping *s, uint64_t throttle)
{
	enum limit_source why[2];
	struct nic_limit l = bandwidth_effective(s, throttle, why);
	json_t *in = dir_to_json(&l.in, true), *out = dir_to_json(&l.out, true);

	if (json_is_object(in))
		json_object_set_new(in, "source", json_string(limit_source_names[why[0]]));
	if (json_is_object(out))
		json_object_set_new(out, "source", json_string(limit_source_names[why[1]]));
	return json_pack("{s:o, s:o}", "in", in, "out", out);
}

/* One NIC of the stats: what is known of it in each source. */
static json_t *nic_json(uint64_t nic, const struct nic *n, const struct nic_shaping *s,
			const struct nic_stats *c, uint64_t throttle)
{
	static const struct traffic none;
	json_t *o = json_pack("{s:s, s:s}", "mac", nic_mac_format(nic).s, "ifname",
			      ifname_tap(nic).s);

	json_object_set_new(o, "network", n && n->network_name ? json_string(n->network_name)
							     : json_null());
	json_object_set_new(o, "removed", json_boolean(n == NULL));
	if (s) {
		json_object_set_new(o, "limit", limit_to_json(&s->own));
		json_object_set_new(o, "effective", effective_json(s, throttle));
	}
	json_object_set_new(o, "rates", c && c->sampled ?
		json_pack("{s:o, s:o, s:o, s:o, s:I}", "in_bps", u64_json(c->in_bps),
			  "out_bps", u64_json(c->out_bps), "in_pps", u64_json(c->in_pps),
			  "out_pps", u64_json(c->out_pps), "at", (json_int_t)c->at) : json_null());
	json_object_set_new(o, "month", traffic_json(c ? &c->month : &none));
	json_object_set_new(o, "total", traffic_json(c ? &c->total : &none));
	return o;
}

/* GET /v1/vms/{}/stats (and the answer of the PATCHes below): one NIC
 * (nic != 0) or all, current and removed. */
static int reply_stats(struct req *r, const struct vm *vm, uint64_t only)
{
	struct nic_shaping *sh = NULL;
	struct nic_stats *cs = NULL;
	size_t n_sh = 0, n_cs = 0;
	uint64_t quota = 0, used = 0, throttle = 0;
	char month[MONTH_STRLEN + 1];
	bool throttled = false;

	this_month(month);
	bandwidth_throttle_rate(r->api->cfg, &throttle);
	if (store_nic_shaping_list(r->api->st, NULL, vm->id, month, &sh, &n_sh) != STORE_OK ||
	    store_nic_stats(r->api->st, vm->id, month, &cs, &n_cs) != STORE_OK ||
	    store_vm_quota_get(r->api->st, vm->id, &quota) != STORE_OK ||
	    store_traffic_used(r->api->st, month, 0, vm->id, &used) != STORE_OK) {
		free(sh);
		free(cs);
		return req_error(r, 500, "internal", "store failure");
	}
	json_t *nics = json_array();
	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic_shaping *s = NULL;
		const struct nic_stats *c = NULL;
		for (size_t j = 0; j < n_sh; j++)
			if (sh[j].nic == vm->nics[i].id)
				s = &sh[j];
		for (size_t j = 0; j < n_cs; j++)
			if (cs[j].nic == vm->nics[i].id)
				c = &cs[j];
		throttled = throttled || (s && s->throttled);
		if (only == 0 || only == vm->nics[i].id)
			json_array_append_new(nics, nic_json(vm->nics[i].id, &vm->nics[i], s, c, throttle));
	}
	/* NICs unplugged this month or before: their counters stay the VM's. */
	for (size_t j = 0; only == 0 && j < n_cs; j++) {
		bool current = false;
		for (size_t i = 0; i < vm->n_nics && !current; i++)
			current = vm->nics[i].id == cs[j].nic;
		if (!current)
			json_array_append_new(nics, nic_json(cs[j].nic, NULL, NULL, &cs[j], throttle));
	}
	free(sh);
	free(cs);
	if (only) {
		/* Only a NIC the VM has is asked for. */
		req_json(r, 200, json_incref(json_array_get(nics, 0)));
		json_decref(nics);
		return 0;
	}
	return req_json(r, 200, json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:o}",
		"id", vm_id_format(vm->id).s, "name", vm->name, "month", month,
		"quota", u64_or_null(quota), "used", u64_json(used), "throttled", throttled,
		"nics", nics));
}

int h_vm_stats(struct req *r)
{
	struct vm vm = { 0 };

	if (!api_vm_of_path(r, &vm))
		return 0;
	reply_stats(r, &vm, 0);
	vm_free(&vm);
	return 0;
}

/* PATCH /v1/vms/{}/nics/{}: {"limit": …} — taking effect on the running
 * NIC at once (the agent replaces its TBFs in place). */
int h_vm_nic_update(struct req *r)
{
	static const char *const keys[] = { "limit", NULL };
	struct vm vm = { 0 };
	struct nic_limit l;
	json_t *v = json_object_get(r->json, "limit");
	uint64_t nic;
	bool has = false;
	int rc;

	if (!only_keys(r, keys))
		return 0;
	if (v == NULL)
		return req_error(r, 400, "bad_request", "'limit' is required");
	if (!nic_of_param(r->params[1], &nic))
		return req_error(r, 400, "bad_request", "a NIC is named by its MAC or its tap name");
	if (!api_vm_of_path(r, &vm))
		return 0;
	for (size_t i = 0; i < vm.n_nics; i++)
		has = has || vm.nics[i].id == nic;
	if (!has) {
		req_error(r, 404, "not_found", "vm '%s' has no NIC %s", vm.name, r->params[1]);
		goto out;
	}
	if ((rc = store_nic_limit_get(r->api->st, nic, &l)) != STORE_OK) {
		req_store_error(r, rc, "nic", r->params[1]);
		goto out;
	}
	if (json_is_null(v))
		l = (struct nic_limit){ 0 };
	else if (!limit_from_json(r, v, &l))
		goto out;
	if (!cap_allows(r, vm.owner, &l))
		goto out;
	if ((rc = store_nic_limit_set(r->api->st, nic, &l)) != STORE_OK)
		req_store_error(r, rc, "nic", r->params[1]);
	else
		reply_stats(r, &vm, nic);
out:
	vm_free(&vm);
	return 0;
}

/* PATCH /v1/vms/{}/traffic (admin): {"quota": BYTES|null}. */
int h_vm_traffic_update(struct req *r)
{
	static const char *const keys[] = { "quota", NULL };
	struct vm vm = { 0 };
	json_t *q = json_object_get(r->json, "quota");

	if (!only_keys(r, keys))
		return 0;
	if (q == NULL || !(json_is_null(q) || (json_is_integer(q) && json_integer_value(q) > 0)))
		return req_error(r, 400, "bad_request", "'quota' must be bytes per month or null");
	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_vm_quota_set(r->api->st, vm.id, json_is_null(q) ? 0 : (uint64_t)json_integer_value(q));
	if (rc != STORE_OK)
		req_store_error(r, rc, "vm", r->params[0]);
	else
		reply_stats(r, &vm, 0);
	vm_free(&vm);
	return 0;
}

/* ---- users: rate cap and traffic quota ---------------------------------- */

static int reply_user_traffic(struct req *r, const struct user *u)
{
	struct user_traffic t;
	uint64_t used = 0;
	char month[MONTH_STRLEN + 1];

	this_month(month);
	if (store_user_traffic_get(r->api->st, u->id, &t) != STORE_OK ||
	    store_traffic_used(r->api->st, month, u->id, 0, &used) != STORE_OK)
		return req_error(r, 500, "internal", "store failure");
	return req_json(r, 200, json_pack("{s:s, s:o, s:o, s:s, s:o, s:b}", "user", u->name,
		"rate_cap", u64_or_null(t.rate_cap), "quota", u64_or_null(t.quota), "month", month,
		"used", u64_json(used), "throttled", t.quota > 0 && used >= t.quota));
}

int h_user_traffic_get(struct req *r)
{
	struct user u = { 0 };

	if (!user_of_path(r, &u))
		return 0;
	reply_user_traffic(r, &u);
	user_free(&u);
	return 0;
}

/* A member: null (none) or a positive integer; false with a 400 set. */
static bool optional_u64(struct req *r, const char *key, bool *given, uint64_t *out)
{
	json_t *v = json_object_get(r->json, key);

	*given = v != NULL;
	if (v == NULL || json_is_null(v)) {
		*out = 0;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		req_error(r, 400, "bad_request", "'%s' must be a positive integer or null", key);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* PATCH /v1/users/{}/traffic (admin): {"rate_cap": BITS/S|null, "quota": BYTES|null}. */
int h_user_traffic_update(struct req *r)
{
	static const char *const keys[] = { "rate_cap", "quota", NULL };
	struct user u = { 0 };
	struct user_traffic t;
	uint64_t cap, quota;
	bool has_cap, has_quota;

	if (!only_keys(r, keys) || !optional_u64(r, "rate_cap", &has_cap, &cap) ||
	    !optional_u64(r, "quota", &has_quota, &quota))
		return 0;
	if (has_cap && cap && (cap < RATE_MIN || cap > RATE_MAX))
		return req_error(r, 400, "bad_request", "'rate_cap' must be %llu..%llu bit/s",
				 (unsigned long long)RATE_MIN, (unsigned long long)RATE_MAX);
	if (!user_of_path(r, &u))
		return 0;
	int rc = store_user_traffic_get(r->api->st, u.id, &t);
	if (has_cap)
		t.rate_cap = cap;
	if (has_quota)
		t.quota = quota;
	if (rc == STORE_OK)
		rc = store_user_traffic_set(r->api->st, u.id, &t);
	if (rc != STORE_OK)
		req_store_error(r, rc, "user", r->params[0]);
	else
		reply_user_traffic(r, &u);
	user_free(&u);
	return 0;
}

/* ---- usage: what a provider bills from ---------------------------------- */

struct user_sum {
	uint64_t owner;
	const char *name;
	struct traffic traffic;
	int64_t vcpu, mem, disk;
	size_t vms;
};

static json_t *resources_json(json_t *o, int64_t vcpu, int64_t mem, int64_t disk)
{
	json_object_set_new(o, "vcpu_seconds", json_integer(vcpu));
	json_object_set_new(o, "memory_mib_seconds", json_integer(mem));
	json_object_set_new(o, "disk_mib_seconds", json_integer(disk));
	json_object_set_new(o, "vcpu_hours", json_real((double)vcpu / SECONDS_PER_HOUR));
	json_object_set_new(o, "memory_gib_hours", json_real((double)mem / 1024 / SECONDS_PER_HOUR));
	json_object_set_new(o, "disk_gib_hours", json_real((double)disk / 1024 / SECONDS_PER_HOUR));
	return o;
}

static json_t *traffic_fields(json_t *o, const struct traffic *t)
{
	json_t *fields = traffic_json(t);

	json_object_update(o, fields);
	json_decref(fields);
	return o;
}

/* GET /v1/usage[?user=NAME][&month=YYYY-MM]: per VM and per user. */
int h_usage(struct req *r)
{
	const char *who = req_query(r, "user"), *m = req_query(r, "month");
	char month[MONTH_STRLEN + 1];
	uint64_t scope = r->admin ? OWNER_ANY : r->caller;
	struct usage_row *rows = NULL;
	struct user_sum *sums = NULL;
	size_t n = 0, n_sums = 0;

	if (m && !usage_month_valid(m))
		return req_error(r, 400, "bad_request", "'month' must be YYYY-MM");
	if (m)
		snprintf(month, sizeof(month), "%s", m);
	else
		this_month(month);
	if (who) {
		struct user u = { 0 };
		int rc = store_user_get(r->api->st, who, &u);
		if (rc == STORE_OK && !r->admin && u.id != r->caller)
			rc = STORE_NOTFOUND;
		if (rc != STORE_OK)
			return req_store_error(r, rc, "user", who);
		scope = u.id;
		user_free(&u);
	}
	if (store_usage_list(r->api->st, month, scope, &rows, &n) != STORE_OK)
		return req_error(r, 500, "internal", "store failure");
	json_t *vms = json_array(), *users = json_array();
	sums = calloc(n + 1, sizeof(*sums));
	for (size_t i = 0; sums && i < n; i++) {
		const struct usage_row *u = &rows[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "id", vm_id_format(u->vm).s,
				      "name", u->name ? u->name : "", "owner",
				      u->owner_name ? u->owner_name : "");
		json_array_append_new(vms, resources_json(traffic_fields(o, &u->traffic),
							  u->vcpu_seconds, u->memory_mib_seconds,
							  u->disk_mib_seconds));
		/* Rows come by owner: one sum per run of them. */
		if (n_sums == 0 || sums[n_sums - 1].owner != u->owner)
			sums[n_sums++] = (struct user_sum){ .owner = u->owner, .name = u->owner_name };
		struct user_sum *s = &sums[n_sums - 1];
		s->traffic.bytes_in += u->traffic.bytes_in;
		s->traffic.bytes_out += u->traffic.bytes_out;
		s->traffic.packets_in += u->traffic.packets_in;
		s->traffic.packets_out += u->traffic.packets_out;
		s->vcpu += u->vcpu_seconds;
		s->mem += u->memory_mib_seconds;
		s->disk += u->disk_mib_seconds;
		s->vms++;
	}
	for (size_t i = 0; i < n_sums; i++) {
		struct user_traffic t = { 0 };
		const struct user_sum *s = &sums[i];
		uint64_t used = s->traffic.bytes_in + s->traffic.bytes_out;
		store_user_traffic_get(r->api->st, s->owner, &t);
		json_t *o = json_pack("{s:s, s:I, s:o, s:b}", "user", s->name ? s->name : "",
				      "vms", (json_int_t)s->vms, "quota", u64_or_null(t.quota),
				      "throttled", t.quota > 0 && used >= t.quota);
		json_array_append_new(users, resources_json(traffic_fields(o, &s->traffic), s->vcpu,
							    s->mem, s->disk));
	}
	free(sums);
	usage_rows_free(rows, n);
	return req_json(r, 200, json_pack("{s:s, s:o, s:o}", "month", month, "users", users,
					  "vms", vms));
}
