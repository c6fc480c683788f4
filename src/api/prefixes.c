/*
 * prefixes — a VM's routed IPv6 prefixes and public IPv4 addresses over
 * the API (issue 13 §3, §4).  Handlers only change the store; the agent of
 * the host running the VM routes the prefixes, puts the public addresses
 * on the uplink and the firewall translates them (net/routes.h,
 * net/fw_gen.c).
 *
 *   GET    /v1/vms/{vm}/prefixes           the VM's prefixes
 *   POST   /v1/vms/{vm}/prefixes           {"length": 64, "nic": MAC}: a new one
 *   DELETE /v1/vms/{vm}/prefixes/{address} its network address ("2001:db8::")
 *   GET    /v1/ips                         the public IPv4 addresses handed out
 *   POST   /v1/vms/{vm}/ips                {"address": A, "nic": MAC}: attach
 *   DELETE /v1/vms/{vm}/ips/{address}      detach
 *
 * Who may: a VM's owner manages its prefixes, within prefix_min_length,
 * prefix_max_per_vm and prefix_max_per_user; public IPv4 addresses are
 * scarce, so members attach them only when public_ipv4_max_per_user
 * allows (admins always).
 */
#include "api/handlers.h"

#include "api/codec.h"
#include "common/addrpool.h"
#include "common/ids.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The NIC of the VM named by the body's "nic" (its MAC or tap name), or
 * the first one that fits (want_ipv4: with an IPv4 address); NULL with an
 * error response set.
 */
static const struct nic *nic_of_body(struct req *r, const struct vm *vm, bool want_ipv4)
{
	const char *ref;
	uint64_t id;
	enum ifname_kind kind;

	if (!get_str(r, "nic", false, &ref))
		return NULL;
	if (ref == NULL) {
		for (size_t i = 0; i < vm->n_nics; i++)
			if (!want_ipv4 || vm->nics[i].ipv4 != NULL)
				return &vm->nics[i];
		req_error(r, 409, "conflict", "vm '%s' has no NIC%s", vm->name,
			  want_ipv4 ? " on a network with IPv4" : "");
		return NULL;
	}
	if (!nic_mac_parse(ref, &id) && !(ifname_parse(ref, &kind, &id) && kind == IFNAME_TAP)) {
		req_error(r, 400, "bad_request", "'nic' is a NIC's MAC or its tap name");
		return NULL;
	}
	for (size_t i = 0; i < vm->n_nics; i++)
		if (vm->nics[i].id == id) {
			if (want_ipv4 && vm->nics[i].ipv4 == NULL) {
				req_error(r, 409, "conflict", "NIC %s is on a network without IPv4", ref);
				return NULL;
			}
			return &vm->nics[i];
		}
	req_error(r, 404, "not_found", "vm '%s' has no NIC %s", vm->name, ref);
	return NULL;
}

/* ---- prefixes ---------------------------------------------------------------- */

static json_t *prefix_to_json(const struct vm *vm, const char *prefix, uint64_t nic_id, int64_t created)
{
	const struct nic *nic = NULL;
	char via[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < vm->n_nics; i++)
		if (vm->nics[i].id == nic_id)
			nic = &vm->nics[i];
	bool have_via = nic && nic->network_ipv6 && nic_ipv6(nic->network_ipv6, nic_id, via, sizeof(via));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}",
		"prefix", prefix,
		"vm", vm_id_format(vm->id).s,
		"nic", nic_mac_format(nic_id).s,
		"network", nic && nic->network_name ? nic->network_name : "",
		"via", have_via ? json_string(via) : json_null(),
		"created", (json_int_t)created);
}

int h_vm_prefix_list(struct req *r)
{
	struct vm vm = { 0 };
	struct vm_prefix *v = NULL;
	size_t n = 0;

	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_prefix_list(r->api->st, vm.id, &v, &n);
	if (rc != STORE_OK) {
		vm_free(&vm);
		return req_store_error(r, rc, "prefix", NULL);
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, prefix_to_json(&vm, v[i].prefix, v[i].nic, v[i].created));
	vm_prefixes_free(v, n);
	vm_free(&vm);
	return req_json(r, 200, arr);
}

int h_vm_prefix_add(struct req *r)
{
	static const char *const keys[] = { "length", "nic", NULL };
	const struct config *cfg = r->api->cfg;
	struct vm vm = { 0 };
	struct prefix *pools = NULL;
	struct vm_prefix p = { 0 };
	size_t n_pools = 0;
	char *err = NULL;
	int len = cfg->prefix_length, rc;

	if (!only_keys(r, keys) || !get_int(r, "length", 16, 64, &len))
		return 0;
	if (prefix_pool_parse(cfg->prefix_pool, &pools, &n_pools, &err) < 0 || n_pools == 0) {
		req_error(r, 409, "no_pool", "this installation hands out no routed prefixes (prefix_pool)");
		goto out;
	}
	if (!r->admin && len < cfg->prefix_min_length) {
		req_error(r, 403, "forbidden", "a prefix may be /%d at most", cfg->prefix_min_length);
		goto out;
	}
	if (!api_vm_of_path(r, &vm))
		goto out;
	const struct nic *nic = nic_of_body(r, &vm, false);
	if (nic == NULL)
		goto out;
	rc = store_prefix_add(r->api->st, pools, n_pools, vm.id, nic->id, (unsigned)len, cfg->prefix_max_per_vm,
			      r->admin ? 0 : cfg->prefix_max_per_user, &p);
	if (rc == STORE_CONFLICT)
		req_error(r, 409, "limit", "vm '%s' has %d prefixes or its owner %d already", vm.name,
			  cfg->prefix_max_per_vm, cfg->prefix_max_per_user);
	else if (rc == STORE_FULL)
		req_error(r, 409, "exhausted", "no free /%d left in prefix_pool", len);
	else if (rc != STORE_OK)
		req_store_error(r, rc, "nic", nic_mac_format(nic->id).s);
	else
		req_json(r, 201, prefix_to_json(&vm, p.prefix, p.nic, p.created));
out:
	free(p.prefix);
	free(err);
	free(pools);
	vm_free(&vm);
	return 0;
}

int h_vm_prefix_remove(struct req *r)
{
	struct vm vm = { 0 };
	struct in6_addr a;
	char canon[INET6_ADDRSTRLEN];

	/* The prefix's network address; "/len" cannot be in a path segment. */
	if (inet_pton(AF_INET6, r->params[1], &a) != 1)
		return req_error(r, 400, "bad_request", "a prefix is named by its network address (2001:db8::)");
	inet_ntop(AF_INET6, &a, canon, sizeof(canon));
	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_prefix_remove(r->api->st, vm.id, canon);
	vm_free(&vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "prefix", canon);
	return req_json(r, 200, json_pack("{s:s}", "deleted", canon));
}

/* ---- public IPv4 ------------------------------------------------------------- */

static json_t *public4_to_json(const struct public4 *p)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}",
		"address", p->address,
		"vm", vm_id_format(p->vm).s,
		"vm_name", p->vm_name ? p->vm_name : "",
		"nic", nic_mac_format(p->nic).s,
		"private_ipv4", p->private_ipv4 ? json_string(p->private_ipv4) : json_null(),
		"created", (json_int_t)p->created);
}

int h_ip_list(struct req *r)
{
	struct public4 *v = NULL;
	size_t n = 0;
	int rc = store_public4_list(r->api->st, req_scope(r), &v, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "address", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, public4_to_json(&v[i]));
	public4s_free(v, n);
	return req_json(r, 200, arr);
}

int h_vm_ip_attach(struct req *r)
{
	static const char *const keys[] = { "address", "nic", NULL };
	const struct config *cfg = r->api->cfg;
	struct vm vm = { 0 };
	struct pool4 pool = { 0 };
	struct public4 p = { 0 };
	struct in_addr a;
	char canon[INET_ADDRSTRLEN], *err = NULL;
	const char *address;
	int rc;

	if (!only_keys(r, keys) || !get_str(r, "address", false, &address))
		return 0;
	if (pool4_parse(cfg->public_ipv4_pool, &pool, &err) < 0 || pool.n == 0) {
		req_error(r, 409, "no_pool", "this installation hands out no public IPv4 addresses"
			  " (public_ipv4_pool)");
		goto out;
	}
	if (!r->admin && cfg->public_ipv4_max_per_user == 0) {
		req_error(r, 403, "forbidden", "public IPv4 addresses are attached by an administrator");
		goto out;
	}
	if (address != NULL) {
		if (inet_pton(AF_INET, address, &a) != 1) {
			req_error(r, 400, "bad_request", "'address' must be an IPv4 address");
			goto out;
		}
		if (!pool4_has(&pool, ntohl(a.s_addr))) {
			req_error(r, 400, "bad_request", "%s is not in public_ipv4_pool", address);
			goto out;
		}
		inet_ntop(AF_INET, &a, canon, sizeof(canon));
		address = canon;
	}
	if (!api_vm_of_path(r, &vm))
		goto out;
	const struct nic *nic = nic_of_body(r, &vm, true);
	if (nic == NULL)
		goto out;
	rc = store_public4_attach(r->api->st, &pool, vm.id, nic->id, address,
				  r->admin ? 0 : cfg->public_ipv4_max_per_user, &p);
	if (rc == STORE_CONFLICT)
		req_error(r, 409, "conflict", "%s is taken, NIC %s has a public address already, or the"
			  " owner's limit (%d) is reached", address ? address : "the address",
			  nic_mac_format(nic->id).s, cfg->public_ipv4_max_per_user);
	else if (rc == STORE_FULL)
		req_error(r, 409, "exhausted", "no free address left in public_ipv4_pool");
	else if (rc != STORE_OK)
		req_store_error(r, rc, "nic", nic_mac_format(nic->id).s);
	else {
		p.vm_name = strdup(vm.name);
		req_json(r, 201, public4_to_json(&p));
	}
out:
	free(p.address);
	free(p.vm_name);
	free(p.private_ipv4);
	free(err);
	pool4_free(&pool);
	vm_free(&vm);
	return 0;
}

int h_vm_ip_detach(struct req *r)
{
	struct vm vm = { 0 };
	struct in_addr a;
	char canon[INET_ADDRSTRLEN];

	if (inet_pton(AF_INET, r->params[1], &a) != 1)
		return req_error(r, 400, "bad_request", "an IPv4 address, please");
	inet_ntop(AF_INET, &a, canon, sizeof(canon));
	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_public4_detach(r->api->st, vm.id, canon);
	vm_free(&vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "address", canon);
	return req_json(r, 200, json_pack("{s:s}", "detached", canon));
}
