/*
 * vmnet — a VM's NICs and inbound firewall rules over the API.  Handlers
 * only change the store; the agent hot-plugs NICs into a running QEMU and
 * regenerates the firewall and dnsmasq files from it.
 */
#include "api/handlers.h"

#include "api/codec.h"
#include "common/ids.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_PER_VM_MAX 64
#define NICS_PER_VM_MAX 16

bool api_vm_of_path(struct req *r, struct vm *vm)
{
	int rc = store_vm_get(r->api->st, req_ref(r), req_scope(r), vm);

	if (rc != STORE_OK) {
		req_store_error(r, rc, "vm", r->params[0]);
		return false;
	}
	return true;
}

static int reply_vm_id(struct req *r, int status, uint64_t id)
{
	struct vm vm = { 0 };
	int rc = store_vm_get_id(r->api->st, id, &vm);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "vm", NULL);
	req_json(r, status, vm_to_json(&vm));
	vm_free(&vm);
	return 0;
}

/* POST /v1/vms/{}/nics: {"network": NAME, "limit"?: LIMIT | null} — the
 * limit is the new NIC's own (usage.c's form and checks, the VM owner's
 * rate cap) and is stored with the NIC, so its tap is shaped from the
 * start. */
int h_vm_nic_add(struct req *r)
{
	static const char *const keys[] = { "network", "limit", NULL };
	struct vm vm = { 0 };
	struct network net = { 0 };
	struct nic_limit limit;
	const char *name;
	uint64_t nic_id;
	bool has_limit;
	int rc;

	if (!only_keys(r, keys) || !get_str(r, "network", true, &name))
		return 0;
	if (!api_vm_of_path(r, &vm))
		return 0;
	if (!api_body_limit(r, vm.owner, &limit, &has_limit))
		goto out;
	if (vm.n_nics >= NICS_PER_VM_MAX) {
		req_error(r, 409, "conflict", "vm '%s' has %d NICs already", vm.name, NICS_PER_VM_MAX);
		goto out;
	}
	rc = store_network_get(r->api->st, name, req_scope(r), &net);
	if (rc != STORE_OK) {
		req_store_error(r, rc, "network", name);
		goto out;
	}
	rc = store_nic_add(r->api->st, vm.id, net.id, has_limit ? &limit : NULL, &nic_id);
	if (rc != STORE_OK) {
		req_store_error(r, rc, "nic", name);
		goto out;
	}
	reply_vm_id(r, 201, vm.id);
out:
	network_free(&net);
	vm_free(&vm);
	return 0;
}

bool nic_of_param(const char *s, uint64_t *nic)
{
	enum ifname_kind kind;

	return nic_mac_parse(s, nic) || (ifname_parse(s, &kind, nic) && kind == IFNAME_TAP);
}

int h_vm_nic_remove(struct req *r)
{
	struct vm vm = { 0 };
	uint64_t nic_id;

	if (!nic_of_param(r->params[1], &nic_id))
		return req_error(r, 400, "bad_request", "a NIC is named by its MAC or its tap name");
	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_nic_remove(r->api->st, vm.id, nic_id);
	if (rc != STORE_OK)
		req_store_error(r, rc, "nic", r->params[1]);
	else
		reply_vm_id(r, 200, vm.id);
	vm_free(&vm);
	return 0;
}

static json_t *rule_to_json(const struct rule *ru)
{
	char ports[16] = "";

	if (ru->port_lo && ru->port_lo == ru->port_hi)
		snprintf(ports, sizeof(ports), "%d", ru->port_lo);
	else if (ru->port_lo)
		snprintf(ports, sizeof(ports), "%d-%d", ru->port_lo, ru->port_hi);
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:I}",
		"id", (json_int_t)ru->id,
		"vm", vm_id_format(ru->vm).s,
		"proto", ru->proto,
		"ports", ports[0] ? json_string(ports) : json_null(),
		"source", ru->source ? json_string(ru->source) : json_null(),
		"created", (json_int_t)ru->created);
}

int h_vm_rule_list(struct req *r)
{
	struct vm vm = { 0 };
	struct rule *rules = NULL;
	size_t n = 0;

	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_rule_list(r->api->st, vm.id, &rules, &n);
	vm_free(&vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "rule", NULL);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, rule_to_json(&rules[i]));
	rules_free(rules, n);
	return req_json(r, 200, arr);
}

/* "80" or "8000-8100" → [lo, hi] within 1..65535. */
static bool ports_parse(const char *s, int *lo, int *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b;

	if (end == s || a < 1 || a > 65535)
		return false;
	if (*end == '\0') {
		*lo = *hi = (int)a;
		return true;
	}
	if (*end != '-')
		return false;
	const char *p = end + 1;
	b = strtol(p, &end, 10);
	if (end == p || *end != '\0' || b < a || b > 65535)
		return false;
	*lo = (int)a;
	*hi = (int)b;
	return true;
}

int h_vm_rule_add(struct req *r)
{
	struct vm vm = { 0 };
	struct rule *existing = NULL;
	size_t n_existing = 0;
	const char *key;
	json_t *v;
	char canon[INET6_ADDRSTRLEN + 8];
	int family, lo = 0, hi = 0;

	json_object_foreach(r->json, key, v)
		if (strcmp(key, "proto") && strcmp(key, "ports") && strcmp(key, "source"))
			return req_error(r, 400, "bad_request", "unknown field '%s'", key);
	json_t *jp = json_object_get(r->json, "proto");
	json_t *jports = json_object_get(r->json, "ports");
	json_t *jsrc = json_object_get(r->json, "source");
	const char *proto = json_string_value(jp);
	if (proto == NULL || (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "icmp") &&
			      strcmp(proto, "any")))
		return req_error(r, 400, "bad_request", "'proto' must be tcp, udp, icmp or any");
	bool has_ports = jports && !json_is_null(jports);
	if (has_ports && (strcmp(proto, "tcp") && strcmp(proto, "udp")))
		return req_error(r, 400, "bad_request", "'ports' go with tcp or udp only");
	if (has_ports && (!json_is_string(jports) || !ports_parse(json_string_value(jports), &lo, &hi)))
		return req_error(r, 400, "bad_request", "'ports' must be \"N\" or \"N-M\" within 1..65535");
	bool has_src = jsrc && !json_is_null(jsrc);
	if (has_src && (!json_is_string(jsrc) ||
			!prefix_parse(json_string_value(jsrc), &family, canon, sizeof(canon))))
		return req_error(r, 400, "bad_request",
				 "'source' must be an IPv4 or IPv6 prefix with its host bits zero");
	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_rule_list(r->api->st, vm.id, &existing, &n_existing);
	rules_free(existing, n_existing);
	if (rc == STORE_OK && n_existing >= RULES_PER_VM_MAX) {
		req_error(r, 409, "conflict", "vm '%s' has %d rules already", vm.name, RULES_PER_VM_MAX);
		vm_free(&vm);
		return 0;
	}
	struct rule ru = { .vm = vm.id, .proto = (char *)proto, .port_lo = lo, .port_hi = hi,
			   .source = has_src ? canon : NULL };
	vm_free(&vm);
	rc = store_rule_add(r->api->st, &ru);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "rule", NULL);
	return req_json(r, 201, rule_to_json(&ru));
}

int h_vm_rule_delete(struct req *r)
{
	struct vm vm = { 0 };
	char *end;
	unsigned long long id = strtoull(r->params[1], &end, 10);

	if (*end != '\0' || id == 0)
		return req_error(r, 400, "bad_request", "a rule is named by its numeric ID");
	if (!api_vm_of_path(r, &vm))
		return 0;
	int rc = store_rule_delete(r->api->st, vm.id, id);
	vm_free(&vm);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "rule", r->params[1]);
	return req_json(r, 200, json_pack("{s:I}", "deleted", (json_int_t)id));
}
