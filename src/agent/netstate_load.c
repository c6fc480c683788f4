/* netstate_load — see netstate_load.h. */
#include "agent/netstate_load.h"

#include "common/ids.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static bool vm_active(const struct vm *vm, const char *host)
{
	if (vm->host && host && strcmp(vm->host, host) != 0)
		return false;
	/* A stopping VM's tap still exists and must stay fenced. */
	return strcmp(vm->desired, "running") == 0 || strcmp(vm->state, "running") == 0 ||
	       strcmp(vm->state, "stopping") == 0 || strcmp(vm->state, "starting") == 0;
}

static enum ns_proto proto_of(const char *p)
{
	if (strcmp(p, "tcp") == 0) return NS_PROTO_TCP;
	if (strcmp(p, "udp") == 0) return NS_PROTO_UDP;
	if (strcmp(p, "icmp") == 0) return NS_PROTO_ICMP;
	return NS_PROTO_ANY;
}

static int cmp_nic(const void *a, const void *b)
{
	const struct ns_nic *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

int netstate_load(struct store *st, const char *host, const char *uplink, struct netstate *ns)
{
	struct network *nets = NULL;
	struct vm *vms = NULL;
	struct rule *rules = NULL;
	size_t n_nets = 0, n_vms = 0, n_rules = 0, total = 0;
	int rc;

	memset(ns, 0, sizeof(*ns));
	rc = store_network_list(st, OWNER_ANY, &nets, &n_nets);
	if (rc == STORE_OK)
		rc = store_vm_list(st, OWNER_ANY, true, &vms, &n_vms);
	if (rc == STORE_OK)
		rc = store_rule_list(st, 0, &rules, &n_rules);
	if (rc != STORE_OK)
		goto out;

	ns->nets = calloc(n_nets ? n_nets : 1, sizeof(*ns->nets));
	for (size_t i = 0; i < n_vms; i++)
		total += vms[i].n_nics;
	ns->nics = calloc(total ? total : 1, sizeof(*ns->nics));
	ns->rules = calloc(n_rules ? n_rules : 1, sizeof(*ns->rules));
	if (!ns->nets || !ns->nics || !ns->rules) {
		rc = STORE_ERR;
		goto out;
	}
	for (size_t i = 0; i < n_nets; i++) {
		struct ns_net *n = &ns->nets[ns->n_nets];
		n->id = nets[i].id;
		n->name = strdup(nets[i].name);
		memcpy(n->bridge, ifname_bridge(n->id).s, sizeof(n->bridge));
		if (!ipv6_prefix64_parse(nets[i].ipv6, &n->prefix6))
			continue;
		n->has_ip4 = nets[i].ipv4 && ipv4_cidr_parse(nets[i].ipv4, &n->net4, &n->len4);
		ns->n_nets++;
	}
	for (size_t i = 0; i < n_vms; i++) {
		bool active = vm_active(&vms[i], host);
		for (size_t j = 0; j < vms[i].n_nics; j++) {
			const struct nic *src = &vms[i].nics[j];
			struct ns_nic *n = &ns->nics[ns->n_nics];
			struct in6_addr prefix;
			n->id = src->id;
			n->vm_id = vms[i].id;
			n->vm_name = strdup(vms[i].name);
			n->net_id = src->network;
			memcpy(n->ifname, ifname_tap(src->id).s, sizeof(n->ifname));
			nic_mac_bytes(src->id, n->mac);
			if (src->network_ipv6 && ipv6_prefix64_parse(src->network_ipv6, &prefix)) {
				n->ip6 = prefix;
				eui64_from_mac(n->mac, &n->ip6.s6_addr[8]);
			}
			n->ll6.s6_addr[0] = 0xfe;
			n->ll6.s6_addr[1] = 0x80;
			eui64_from_mac(n->mac, &n->ll6.s6_addr[8]);
			n->has_ip4 = src->ipv4 && inet_pton(AF_INET, src->ipv4, &n->ip4) == 1;
			n->active = active;
			ns->n_nics++;
		}
	}
	qsort(ns->nics, ns->n_nics, sizeof(*ns->nics), cmp_nic);
	for (size_t i = 0; i < n_rules; i++) {
		struct ns_rule *r = &ns->rules[ns->n_rules++];
		r->id = rules[i].id;
		r->vm_id = rules[i].vm;
		r->proto = proto_of(rules[i].proto);
		r->port_lo = rules[i].port_lo;
		r->port_hi = rules[i].port_hi;
		r->source = rules[i].source ? strdup(rules[i].source) : NULL;
		r->family = r->source == NULL ? 0 : strchr(r->source, ':') ? AF_INET6 : AF_INET;
	}
	ns->uplink = uplink && uplink[0] ? strdup(uplink) : NULL;
out:
	networks_free(nets, n_nets);
	vms_free(vms, n_vms);
	rules_free(rules, n_rules);
	if (rc != STORE_OK)
		netstate_free(ns);
	return rc;
}
