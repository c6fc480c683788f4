/* netstate_load — see netstate_load.h. */
#include "agent/netstate_load.h"

#include "common/ids.h"
#include "common/validate.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static bool vm_active(const struct vm *vm, const char *host)
{
	if (vm->host && host && strcmp(vm->host, host) != 0)
		return false;
	/* A VM being deleted loses its taps at once, while its QEMU ends. */
	if (strcmp(vm->desired, "deleted") == 0)
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

/* Placed here, or nowhere yet (then this host's agent acts on it, as
 * reconcile.c does). */
static bool vm_here(const struct vm *vm, const char *host)
{
	return vm->host == NULL || host == NULL || strcmp(vm->host, host) == 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_fdb(const void *a, const void *b)
{
	const struct ns_fdb *x = a, *y = b;
	int c;

	if (x->net_id != y->net_id)
		return (x->net_id > y->net_id) - (x->net_id < y->net_id);
	if ((c = memcmp(x->mac, y->mac, sizeof(x->mac))) != 0)
		return c;
	if (x->family != y->family)
		return x->family - y->family;
	return memcmp(x->dst, y->dst, sizeof(x->dst));
}

/* A peer: another live host with an underlay address. */
struct peer {
	const char *name;
	int family;
	uint8_t addr[16];
};

static const struct peer *peer_find(const struct peer *v, size_t n, const char *name)
{
	for (size_t i = 0; name != NULL && i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/*
 * The overlay's entries (struct ns_fdb): for each network that a VM
 * placed here (not deleted) has a NIC on, every NIC on it of a VM (not
 * deleted) placed on a peer, and a flood entry per such peer.  A stopped
 * VM keeps its network carried, so stopping and starting VMs does not
 * tear the overlay down and build it again.
 */
static int overlay_load(struct store *st, const char *host, const struct vm *vms, size_t n_vms,
			struct netstate *ns)
{
	struct host *hosts = NULL;
	struct peer *peers = NULL;
	uint64_t *local = NULL;
	size_t n_hosts = 0, n_peers = 0, n_local = 0, total = 0;
	int rc;

	if (host == NULL)
		return STORE_OK;            /* no name, no cluster: no overlay */
	if ((rc = store_host_list(st, &hosts, &n_hosts)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < n_vms; i++)
		total += vms[i].n_nics;
	peers = calloc(n_hosts + 1, sizeof(*peers));
	local = calloc(total + 1, sizeof(*local));
	ns->fdb = calloc(2 * total + 1, sizeof(*ns->fdb));
	if (peers == NULL || local == NULL || ns->fdb == NULL) {
		rc = STORE_ERR;
		goto out;
	}
	for (size_t i = 0; i < n_hosts; i++) {
		const struct host *h = &hosts[i];
		struct peer *p = &peers[n_peers];
		if (strcmp(h->name, host) == 0 || strcmp(h->state, "live") != 0 || h->address == NULL)
			continue;
		memset(p, 0, sizeof(*p));       /* an IPv4 address leaves 12 bytes unwritten */
		if (inet_pton(AF_INET, h->address, p->addr) == 1)
			p->family = AF_INET;
		else if (inet_pton(AF_INET6, h->address, p->addr) == 1)
			p->family = AF_INET6;
		else
			continue;               /* not an address literal: unusable */
		static const uint8_t any[16];
		if (memcmp(p->addr, any, sizeof(any)) == 0)
			continue;               /* 0.0.0.0 or ::, which the kernel reads as "all" */
		p->name = h->name;
		n_peers++;
	}
	for (size_t i = 0; i < n_vms; i++)
		if (strcmp(vms[i].desired, "deleted") != 0 && vm_here(&vms[i], host))
			for (size_t j = 0; j < vms[i].n_nics; j++)
				local[n_local++] = vms[i].nics[j].network;
	sort_array(local, n_local, sizeof(*local), cmp_u64);
	for (size_t i = 0; i < n_vms; i++) {
		const struct peer *p = vm_here(&vms[i], host) ? NULL :
				       peer_find(peers, n_peers, vms[i].host);
		if (p == NULL || strcmp(vms[i].desired, "deleted") == 0)
			continue;
		for (size_t j = 0; j < vms[i].n_nics; j++) {
			uint64_t net = vms[i].nics[j].network;
			if (n_local == 0 || !search_array(&net, local, n_local, sizeof(*local), cmp_u64))
				continue;
			struct ns_fdb *flood = &ns->fdb[ns->n_fdb++], *nic = &ns->fdb[ns->n_fdb++];
			flood->net_id = nic->net_id = net;
			flood->family = nic->family = p->family;
			memcpy(flood->dst, p->addr, sizeof(flood->dst));
			memcpy(nic->dst, p->addr, sizeof(nic->dst));
			nic_mac_bytes(vms[i].nics[j].id, nic->mac);
		}
	}
	/* Sorted and unique: one flood entry per (network, peer). */
	sort_array(ns->fdb, ns->n_fdb, sizeof(*ns->fdb), cmp_fdb);
	size_t out = 0;
	for (size_t i = 0; i < ns->n_fdb; i++)
		if (out == 0 || cmp_fdb(&ns->fdb[out - 1], &ns->fdb[i]) != 0)
			ns->fdb[out++] = ns->fdb[i];
	ns->n_fdb = out;
out:
	free(local);
	free(peers);
	hosts_free(hosts, n_hosts);
	return rc;
}

/* A NIC's routed prefixes and public IPv4 address (issue 13); what does
 * not parse (never written by hackcloud) is left out. */
static void routing_load(const struct nic *src, struct netstate *ns)
{
	for (size_t k = 0; k < src->n_prefixes; k++) {
		struct ns_prefix *p = &ns->prefixes[ns->n_prefixes];
		char canon[INET6_ADDRSTRLEN + 8];
		int af;
		if (!prefix_parse(src->prefixes[k], &af, canon, sizeof(canon)) || af != AF_INET6)
			continue;
		char *slash = strchr(canon, '/');
		p->len = (unsigned)atoi(slash + 1);
		*slash = '\0';
		inet_pton(AF_INET6, canon, &p->addr);
		p->nic_id = src->id;
		ns->n_prefixes++;
	}
	if (src->public_ipv4 && inet_pton(AF_INET, src->public_ipv4, &ns->public4[ns->n_public4].addr) == 1)
		ns->public4[ns->n_public4++].nic_id = src->id;
}

static int cmp_migport(const void *a, const void *b)
{
	const struct ns_migport *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family - y->family;
	if ((c = memcmp(x->src, y->src, sizeof(x->src))) != 0)
		return c;
	return (x->port > y->port) - (x->port < y->port);
}

/*
 * The ports of the live migrations into this host that are under way
 * (issue 14 §1), each for its source host's address: from the request
 * until the row's end, the firewall lets that host (and only it) reach
 * them.
 */
static int migports_load(struct store *st, const char *host, struct netstate *ns)
{
	struct migration *v = NULL;
	size_t n = 0;
	int rc;

	if (host == NULL)
		return STORE_OK;
	if ((rc = store_migration_list(st, host, &v, &n)) != STORE_OK)
		return rc;
	ns->migports = calloc(2 * n + 1, sizeof(*ns->migports));
	if (ns->migports == NULL) {
		migrations_free(v, n);
		return STORE_ERR;
	}
	for (size_t i = 0; i < n; i++) {
		struct ns_migport e = { 0 };
		if (strcmp(v[i].dest, host) != 0 || migration_final(&v[i]) || v[i].source_addr == NULL)
			continue;
		if (inet_pton(AF_INET, v[i].source_addr, e.src) == 1)
			e.family = AF_INET;
		else if (inet_pton(AF_INET6, v[i].source_addr, e.src) == 1)
			e.family = AF_INET6;
		else
			continue;
		e.port = (uint16_t)v[i].nbd_port;
		ns->migports[ns->n_migports++] = e;
		e.port = (uint16_t)v[i].mig_port;
		ns->migports[ns->n_migports++] = e;
	}
	sort_array(ns->migports, ns->n_migports, sizeof(*ns->migports), cmp_migport);
	migrations_free(v, n);
	return STORE_OK;
}

int netstate_load(struct store *st, const char *host, const char *uplink, struct netstate *ns)
{
	struct network *nets = NULL;
	struct vm *vms = NULL;
	size_t n_nets = 0, n_vms = 0;
	int rc;

	memset(ns, 0, sizeof(*ns));
	rc = store_network_list(st, OWNER_ANY, &nets, &n_nets);
	if (rc == STORE_OK)
		rc = store_vm_list(st, OWNER_ANY, true, &vms, &n_vms);
	if (rc == STORE_OK)
		rc = netstate_build(st, host, uplink, nets, n_nets, vms, n_vms, ns);
	networks_free(nets, n_nets);
	vms_free(vms, n_vms);
	return rc;
}

int netstate_build(struct store *st, const char *host, const char *uplink,
		   const struct network *nets, size_t n_nets, const struct vm *vms, size_t n_vms,
		   struct netstate *ns)
{
	struct rule *rules = NULL;
	size_t n_rules = 0, total = 0;
	int rc;

	memset(ns, 0, sizeof(*ns));
	rc = store_rule_list(st, 0, &rules, &n_rules);
	if (rc != STORE_OK)
		goto out;

	ns->nets = calloc(n_nets ? n_nets : 1, sizeof(*ns->nets));
	size_t n_prefixes = 0;
	for (size_t i = 0; i < n_vms; i++) {
		total += vms[i].n_nics;
		for (size_t j = 0; j < vms[i].n_nics; j++)
			n_prefixes += vms[i].nics[j].n_prefixes;
	}
	ns->nics = calloc(total ? total : 1, sizeof(*ns->nics));
	ns->rules = calloc(n_rules ? n_rules : 1, sizeof(*ns->rules));
	/* routing: prefixes and public IPv4 addresses of NICs */
	ns->prefixes = calloc(n_prefixes + 1, sizeof(*ns->prefixes));
	ns->public4 = calloc(total + 1, sizeof(*ns->public4));
	if (!ns->nets || !ns->nics || !ns->rules || !ns->prefixes || !ns->public4) {
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
			routing_load(src, ns);
		}
	}
	sort_array(ns->nics, ns->n_nics, sizeof(*ns->nics), cmp_nic);
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
	rc = overlay_load(st, host, vms, n_vms, ns);
	if (rc == STORE_OK)
		rc = migports_load(st, host, ns);
out:
	rules_free(rules, n_rules);
	if (rc != STORE_OK)
		netstate_free(ns);
	return rc;
}
