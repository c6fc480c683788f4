/*
 * fw_gen — the ruleset, drawn from a snapshot into a model (pure).
 *
 * The ruleset, read top-down (V is the version, every name but the base
 * chains' and the counter's carries it):
 *
 *   table bridge hackcloud          frames on any bridge; only hackcloud
 *                                   taps ("v0200…") and vxlan links
 *                                   ("x…", set overlay-V) are looked at
 *     prerouting  → pre-V           clear the mark bit; from a tap → from-vm-V
 *                                   (anti-spoofing: MAC, ARP, IPv4, IPv6/NDP);
 *                                   from another host → from-peer-V
 *     forward, output → deliver-V   to a tap → to-vm-V (inbound: replies,
 *                                   ICMP, the host's DHCP/RA, the VM's rules);
 *                                   to another host → to-peer-V
 *     sets mac-V, ip4-V, ip6-V      per-NIC facts, keyed by tap name
 *     map vm-V                      tap → jump vm-<vmid>-V (that VM's rules)
 *     sets overlay-V, gw4-V, gw6-V  every network's vxlan link; the host's own
 *                                   addresses on each bridge, keyed by it
 *
 *   table inet hackcloud            routed traffic, conntrack, NAT, the host
 *     input → in-V                  from a bridge or a tap → guest-in-V: only
 *                                   what a guest needs of its host; the rest
 *                                   counted (counter guest-drop) and dropped
 *     forward → fwd-V               into a network: isolation, uplink; sets
 *                                   the mark bit for established traffic
 *     output → out-V                sets the mark bit for the host's replies
 *     postrouting (nat) → nat-V     masquerade IPv4 out of the uplink
 *     sets bridges-V, same-V, dns4-V, dns6-V; maps xvm4-V, xvm6-V (address →
 *     jump vm-…-V, the VM's rules that name a source: the only way between
 *     networks)
 *
 * Why a mark bit: this kernel has bridge-family nftables but no bridge
 * conntrack (CONFIG_NF_CONNTRACK_BRIDGE is off; `ct` in a bridge table
 * fails with EPROTO).  It has br_netfilter (built in, bridge-nf-call-
 * ip{,6}tables = 1 in every namespace), which passes bridged IPv4/IPv6
 * frames through the inet prerouting and forward hooks, where conntrack
 * works.  So the inet table decides "established or related" and stores it
 * in FIREWALL_MARK_EST; the bridge table tests the bit where
 * `ct state established,related accept` would stand.  Order matters and is
 * set by the base chain priorities: bridge prerouting (-200) runs before
 * br_netfilter (0), so spoofed frames never reach conntrack and a stale
 * bit (e.g. one inherited by a VXLAN-decapsulated frame from its
 * established outer packet) is cleared before anything reads it; bridge
 * forward runs at 100, after br_netfilter's forward hook has run the inet
 * forward chain that sets the bit.  Host-originated packets get the bit in
 * inet output, routed ones in inet forward, both before the bridge output
 * hook.  Should the sysctls be off, the bit is never set and replies to
 * VMs are dropped (fail closed) — firewall_apply() ensures them.
 *
 * Why "v0200*" and not "v*": taps are "v" + the MAC and every hackcloud
 * MAC starts 02:00 (DESIGN §2, ifname_parse()); "v*" would also catch the
 * veth ports of other software's bridges and drop their frames (they are
 * in no set).  firewall_check() insists that every tap in the snapshot is
 * exactly ifname_tap(id), so none escapes the wildcard, and a hackcloud tap
 * missing from the snapshot has its frames dropped: fail closed.
 *
 * Why raw payload for IPv6: nft 1.0.6 has no `icmpv6 taddr`, so the NDP
 * target is matched as 16 bytes at offset 8 of the ICMPv6 header, which
 * needs a set of raw 128-bit values; the IPv6 source is matched the same
 * way (offset 8 of the IPv6 header) so that one set serves both — half the
 * elements of an ipv6_addr set plus a raw one.
 *
 * Guests and their host: packets a guest sends to the host itself arrive
 * on the input hook with its network's bridge as the input interface (or
 * its tap, before that is enslaved).  Only these pass: replies to what the
 * host started (conntrack), ICMP echo and the NDP a host must answer (RS,
 * NS, NA), DHCPv4 and DHCPv6 requests, DNS to the gateway addresses of the
 * bridge the packet came in on (that network's dnsmasq, never another
 * network's, which the host would otherwise route to), and the metadata
 * service.  ARP is not IP: the inet table never sees it.  Everything else
 * — sshd, the TCP API, databases, another network's dnsmasq — is counted
 * in the named counter FIREWALL_GUEST_DROP and dropped.  The counter is
 * not versioned, so its count survives swaps; the host's own traffic, the
 * uplink and the underlay (VXLAN) come in on other interfaces and are not
 * looked at.
 *
 * Between networks: traffic routed from one hackcloud bridge to another
 * passes when established/related, or when the destination VM has a rule
 * with an explicit source prefix that matches (cross-net-V looks the
 * destination address up in xvm4/xvm6 → that VM's source-prefix rules;
 * the bridge table then applies all of its rules again).  A rule without a
 * source means "anywhere but the other hackcloud networks": the host, the
 * VM's own network and the uplink.  With an uplink, new connections from
 * it are let into the networks and the VM's rules at the tap decide —
 * routed IPv6 has to reach rules "from anywhere".
 *
 * Between hosts: several hosts bridge one network through its vxlan link
 * (net/vxlan.h), each with the same gateway addresses and its own dnsmasq
 * on its bridge.  What is one host's own business must not cross: DHCP and
 * DHCPv6 (each dnsmasq serves the VMs of its host), router solicitations,
 * advertisements and redirects (each host is the router of its VMs), and
 * ARP/NDP from or about the host's own addresses on the bridge (prefix::1,
 * the subnet's .1, the metadata service's fe80::a9fe:a9fe): a guest would
 * otherwise learn another host's bridge as its gateway, whose metadata
 * service does not know it.  to-peer-V drops those leaving through a vxlan
 * link, from-peer-V those arriving (in prerouting, before the bridge or a
 * tap sees them): each host keeps its own and refuses the others'.  All
 * else between VMs passes: the sending host's anti-spoofing ran at the
 * VM's tap, and the receiving host applies the destination VM's inbound
 * rules at its tap (to-vm-V), where replies are "established" because
 * conntrack of both hosts saw the flow cross their bridges.  The overlay
 * set names the vxlan link of every network, whether it exists or not, so
 * a link is fenced from the moment it appears; a wildcard "x*" would also
 * take other software's links.
 */
#include "net/fw_model.h"

#include "common/ids.h"
#include "metadata/server.h"    /* METADATA_IPV4/6, on every bridge */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The match on hackcloud taps: "v" + MAC, MAC = 02:00:<NIC ID>. */
#define TAP_PREFIX "v0200"

#define MARK_EST FIREWALL_MARK_EST

/* ---- the sorted view the model is drawn from ----------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_net(const void *a, const void *b)
{
	const struct ns_net *x = *(const struct ns_net *const *)a, *y = *(const struct ns_net *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

static int cmp_nic(const void *a, const void *b)
{
	const struct ns_nic *x = *(const struct ns_nic *const *)a, *y = *(const struct ns_nic *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

static int cmp_nic_vm(const void *a, const void *b)
{
	const struct ns_nic *x = *(const struct ns_nic *const *)a, *y = *(const struct ns_nic *const *)b;
	if (x->vm_id != y->vm_id)
		return (x->vm_id > y->vm_id) - (x->vm_id < y->vm_id);
	return cmp_nic(a, b);
}

static int cmp_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

/* By VM and ID; ties (duplicate IDs) by content, so no input order leaks. */
static int cmp_rule(const void *a, const void *b)
{
	const struct ns_rule *x = *(const struct ns_rule *const *)a, *y = *(const struct ns_rule *const *)b;
	if (x->vm_id != y->vm_id)
		return (x->vm_id > y->vm_id) - (x->vm_id < y->vm_id);
	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	if (x->proto != y->proto)
		return (int)x->proto - (int)y->proto;
	if (x->family != y->family)
		return x->family - y->family;
	if (x->port_lo != y->port_lo)
		return x->port_lo - y->port_lo;
	if (x->port_hi != y->port_hi)
		return x->port_hi - y->port_hi;
	return cmp_str(x->source, y->source);
}

/* An address of an active NIC, for the cross-network maps. */
struct addr_ref {
	unsigned char a[16];
	uint64_t nic_id, vm_id;
};

static int cmp_addr_ref(const void *a, const void *b)
{
	const struct addr_ref *x = a, *y = b;
	int c = memcmp(x->a, y->a, sizeof(x->a));
	return c != 0 ? c : (x->nic_id > y->nic_id) - (x->nic_id < y->nic_id);
}

struct view {
	const struct ns_net **nets;     /* by ID */
	const struct ns_nic **nics;     /* active ones, by ID */
	const struct ns_nic **by_vm;    /* the same, by VM and ID */
	const struct ns_rule **rules;   /* by VM and ID */
	uint64_t *rule_vms;             /* VMs with a rule and an active NIC */
	uint64_t *src_vms;              /* … with a rule that names a source */
	struct addr_ref *x4, *x6;       /* addresses of src_vms' NICs, unique */
	size_t n_nets, n_nics, n_rules, n_rule_vms, n_src_vms, n_x4, n_x6;
};

static void view_free(struct view *v)
{
	free(v->nets);
	free(v->nics);
	free(v->by_vm);
	free(v->rules);
	free(v->rule_vms);
	free(v->src_vms);
	free(v->x4);
	free(v->x6);
	memset(v, 0, sizeof(*v));
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	return n > 0 && bsearch(&x, v, n, sizeof(*v), cmp_u64) != NULL;
}

/* Sorted, without duplicates, and only VMs that have an active NIC here:
 * a chain nothing jumps to would be dead weight. */
static size_t vms_unique_active(uint64_t *v, size_t n, const struct view *w)
{
	size_t out = 0, j = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && v[out - 1] == v[i])
			continue;
		while (j < w->n_nics && w->by_vm[j]->vm_id < v[i])
			j++;
		if (j < w->n_nics && w->by_vm[j]->vm_id == v[i])
			v[out++] = v[i];
	}
	return out;
}

static size_t addrs_unique(struct addr_ref *v, size_t n)
{
	size_t out = 0;

	qsort(v, n, sizeof(*v), cmp_addr_ref);
	/* Two NICs with one address (overlapping IPv4 subnets on two
	 * networks) cannot both be routed to; keep the lower NIC ID. */
	for (size_t i = 0; i < n; i++)
		if (out == 0 || memcmp(v[out - 1].a, v[i].a, sizeof(v[i].a)) != 0)
			v[out++] = v[i];
	return out;
}

static int view_build(const struct netstate *ns, struct view *v)
{
	size_t nn = ns->n_nets, nc = ns->n_nics, nr = ns->n_rules;

	memset(v, 0, sizeof(*v));
	v->nets = calloc(nn + 1, sizeof(*v->nets));
	v->nics = calloc(nc + 1, sizeof(*v->nics));
	v->by_vm = calloc(nc + 1, sizeof(*v->by_vm));
	v->rules = calloc(nr + 1, sizeof(*v->rules));
	v->rule_vms = calloc(nr + 1, sizeof(*v->rule_vms));
	v->src_vms = calloc(nr + 1, sizeof(*v->src_vms));
	v->x4 = calloc(nc + 1, sizeof(*v->x4));
	v->x6 = calloc(nc + 1, sizeof(*v->x6));
	if (!v->nets || !v->nics || !v->by_vm || !v->rules || !v->rule_vms || !v->src_vms || !v->x4 ||
	    !v->x6) {
		view_free(v);
		errno = ENOMEM;
		return -1;
	}

	for (size_t i = 0; i < nn; i++)
		v->nets[v->n_nets++] = &ns->nets[i];
	qsort(v->nets, v->n_nets, sizeof(*v->nets), cmp_net);

	for (size_t i = 0; i < nc; i++)
		if (ns->nics[i].active)
			v->nics[v->n_nics++] = &ns->nics[i];
	qsort(v->nics, v->n_nics, sizeof(*v->nics), cmp_nic);
	memcpy(v->by_vm, v->nics, v->n_nics * sizeof(*v->nics));
	qsort(v->by_vm, v->n_nics, sizeof(*v->by_vm), cmp_nic_vm);

	for (size_t i = 0; i < nr; i++) {
		v->rules[v->n_rules++] = &ns->rules[i];
		v->rule_vms[v->n_rule_vms++] = ns->rules[i].vm_id;
		if (ns->rules[i].source != NULL)
			v->src_vms[v->n_src_vms++] = ns->rules[i].vm_id;
	}
	qsort(v->rules, v->n_rules, sizeof(*v->rules), cmp_rule);
	v->n_rule_vms = vms_unique_active(v->rule_vms, v->n_rule_vms, v);
	v->n_src_vms = vms_unique_active(v->src_vms, v->n_src_vms, v);

	for (size_t i = 0; i < v->n_nics; i++) {
		const struct ns_nic *c = v->nics[i];
		if (!has_u64(v->src_vms, v->n_src_vms, c->vm_id))
			continue;
		struct addr_ref *r6 = &v->x6[v->n_x6++];
		memcpy(r6->a, c->ip6.s6_addr, 16);
		r6->nic_id = c->id;
		r6->vm_id = c->vm_id;
		if (c->has_ip4) {
			struct addr_ref *r4 = &v->x4[v->n_x4++];
			memcpy(r4->a, &c->ip4.s_addr, 4);
			r4->nic_id = c->id;
			r4->vm_id = c->vm_id;
		}
	}
	v->n_x4 = addrs_unique(v->x4, v->n_x4);
	v->n_x6 = addrs_unique(v->x6, v->n_x6);
	return 0;
}

/* ---- matches, one line each ------------------------------------------------ */

/* field [!=] value; text is the value as nft prints it (NULL: derived). */
static void cmp(struct fw_model *m, enum fw_field f, bool neq, const void *value, const char *text)
{
	struct fw_match *x = fw_model_match(m, FW_M_CMP, f);
	if (x == NULL)
		return;
	x->neq = neq;
	memcpy(x->value, value, x->len);
	x->text = text;
}

static void cmp8(struct fw_model *m, enum fw_field f, bool neq, uint8_t v, const char *text)
{
	cmp(m, f, neq, &v, text);
}

static void cmp16(struct fw_model *m, enum fw_field f, bool neq, uint16_t v, const char *text)
{
	uint16_t be = htons(v);
	cmp(m, f, neq, &be, text);
}

/* (field & mask) == value, or != value with neq; text follows the field. */
static void masked(struct fw_model *m, enum fw_field f, bool neq, uint32_t mask, uint32_t value,
		   const char *text)
{
	struct fw_match *x = fw_model_match(m, FW_M_MASKED, f);
	if (x == NULL)
		return;
	x->neq = neq;
	memcpy(x->value, &value, 4);    /* meta and ct values are host order */
	memcpy(x->aux, &mask, 4);
	x->text = text;
}

static void ifglob(struct fw_model *m, enum fw_field f)
{
	struct fw_match *x = fw_model_match(m, FW_M_IFGLOB, f);
	if (x == NULL)
		return;
	x->len = sizeof(TAP_PREFIX) - 1;
	memcpy(x->value, TAP_PREFIX, x->len);
}

static void ifname(struct fw_model *m, enum fw_field f, const char *name)
{
	char buf[16] = { 0 };   /* NUL-padded: the kernel compares all 16 bytes */
	snprintf(buf, sizeof(buf), "%s", name);
	cmp(m, f, false, buf, NULL);
}

/* keys [!=] @set: a (concatenated) key looked up in a named set. */
static void lookup(struct fw_model *m, bool neq, uint32_t set, enum fw_field k1, int k2)
{
	struct fw_match *x = fw_model_match(m, FW_M_LOOKUP, k1);
	if (x == NULL)
		return;
	x->neq = neq;
	x->set = set;
	if (k2 >= 0)
		x->keys[x->n_keys++] = (uint8_t)k2;
}

static void vmap(struct fw_model *m, enum fw_field key, uint32_t map)
{
	struct fw_match *x = fw_model_match(m, FW_M_VMAP, key);
	if (x != NULL)
		x->set = map;
}

/* field { values } — an anonymous set of n values of the field's size. */
static void anon(struct fw_model *m, enum fw_family fam, enum fw_field f, const char *text, unsigned n,
		 const void *values)
{
	uint32_t set = fw_model_anon(m, fam, f, text, n, values);
	struct fw_match *x = fw_model_match(m, FW_M_ANON, f);
	if (x != NULL)
		x->set = set;
}

static void prefix(struct fw_model *m, enum fw_field f, const void *addr, unsigned plen)
{
	struct fw_match *x = fw_model_match(m, FW_M_PREFIX, f);
	if (x == NULL)
		return;
	memcpy(x->value, addr, fw_fields[f].len);
	x->len = (uint8_t)plen;
}

static void range(struct fw_model *m, enum fw_field f, int lo, int hi)
{
	struct fw_match *x = fw_model_match(m, FW_M_RANGE, f);
	uint16_t l = htons((uint16_t)lo), h = htons((uint16_t)hi);
	if (x == NULL)
		return;
	memcpy(x->value, &l, 2);
	memcpy(x->aux, &h, 2);
}

static void end(struct fw_model *m, enum fw_verdict v, uint32_t target)
{
	fw_model_end(m, FW_S_NONE, v, target);
}
#define ACCEPT(m) end(m, FW_V_ACCEPT, 0)
#define DROP(m)   end(m, FW_V_DROP, 0)

static const uint8_t icmpv6_ra_redirect[] = { 134, 137 };
static const uint8_t icmpv6_dad_types[] = { 133, 131, 143 };   /* RS, MLD, MLDv2 report */
static const uint8_t icmpv6_router_types[] = { 133, 134, 137 };
static const uint8_t icmpv6_nd_ns_na[] = { 135, 136 };
static const uint8_t icmpv6_guest_in[] = { 128, 133, 135, 136 };
static const uint8_t l4_icmp_both[] = { IPPROTO_ICMP, IPPROTO_ICMPV6 };
static const uint8_t l4_tcp_udp[] = { IPPROTO_TCP, IPPROTO_UDP };
static const uint16_t dhcp_ports_be[] = { 0x4300, 0x4400, 0x2202, 0x2302 };   /* 67 68 546 547 */
static const uint16_t dhcp_client_ports_be[] = { 0x4400, 0x2202 };           /* 68 546 */

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* udp sport S udp dport D, loaded as one 32-bit word (as nft merges it). */
static void udp_ports(struct fw_model *m, int sport, int dport, const char *text)
{
	uint32_t v = htonl((uint32_t)sport << 16 | (uint32_t)dport);
	cmp(m, FW_UDP_PORTS, false, &v, text);
}

static void mark_clear(struct fw_model *m)
{
	fw_model_end(m, FW_S_MARK_CLEAR, FW_V_NONE, 0);
}

/* ---- the per-VM rules --------------------------------------------------------- */

/* One struct ns_rule as a rule (in a per-VM chain). */
static void rule_add(struct fw_model *m, const struct ns_rule *r, enum fw_family fam)
{
	char canon[INET6_ADDRSTRLEN + 8];
	int af = fw_rule_family(r, canon, sizeof(canon));   /* checked already */
	bool tcp = r->proto == NS_PROTO_TCP;

	if (r->source != NULL) {
		unsigned char a[16] = { 0 };
		char *slash = strchr(canon, '/');
		unsigned plen = slash ? (unsigned)atoi(slash + 1) : (af == AF_INET ? 32 : 128);
		if (slash)
			*slash = '\0';
		inet_pton(af, canon, a);
		prefix(m, af == AF_INET ? FW_IP_SADDR : FW_IP6_SADDR, a, plen);
	} else if (af != 0 && fam == FW_BRIDGE) {
		cmp16(m, FW_ETHER_TYPE, false, af == AF_INET ? 0x0800 : 0x86dd, af == AF_INET ? "ip" : "ip6");
	} else if (af != 0) {
		cmp8(m, FW_NFPROTO, false, af == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6,
		     af == AF_INET ? "ipv4" : "ipv6");
	}
	switch (r->proto) {
	case NS_PROTO_TCP:
	case NS_PROTO_UDP:
		if (r->port_lo == 0)
			cmp8(m, FW_L4PROTO, false, tcp ? IPPROTO_TCP : IPPROTO_UDP, tcp ? "tcp" : "udp");
		else if (r->port_lo == r->port_hi)
			cmp16(m, tcp ? FW_TCP_DPORT : FW_UDP_DPORT, false, (uint16_t)r->port_lo, NULL);
		else
			range(m, tcp ? FW_TCP_DPORT : FW_UDP_DPORT, r->port_lo, r->port_hi);
		break;
	case NS_PROTO_ICMP:
		if (af == AF_INET)
			cmp8(m, FW_L4PROTO, false, IPPROTO_ICMP, "icmp");
		else if (af == AF_INET6)
			cmp8(m, FW_L4PROTO, false, IPPROTO_ICMPV6, "ipv6-icmp");
		else
			anon(m, fam, FW_L4PROTO, "{ icmp, ipv6-icmp }", N(l4_icmp_both), l4_icmp_both);
		break;
	case NS_PROTO_ANY:
		break;
	}
	ACCEPT(m);
}

/*
 * The chains of the VMs' rules: all of a VM's rules in the bridge table;
 * in the inet table only its rules naming a source (cross-net).  VMs whose
 * rules are the same (a template given to many VMs) share one chain, named
 * after the lowest of their IDs: a chain and its rules cost the kernel far
 * more than the map elements that lead to it.
 */
struct vm_rules {
	const struct ns_rule *const *r; /* the VM's rules in view order */
	size_t n;                       /* all of them, used or not */
	enum fw_family fam;
	size_t at;                      /* its index in vms[] */
};

static bool rule_used(const struct ns_rule *r, enum fw_family fam)
{
	return fam == FW_BRIDGE || r->source != NULL;
}

/* The used rules of two VMs, compared as lists (IDs aside); then by VM. */
static int cmp_vm_rules(const void *a, const void *b)
{
	const struct vm_rules *x = a, *y = b;
	size_t i = 0, j = 0;

	for (;;) {
		while (i < x->n && !rule_used(x->r[i], x->fam))
			i++;
		while (j < y->n && !rule_used(y->r[j], y->fam))
			j++;
		if (i == x->n || j == y->n)
			break;
		const struct ns_rule *p = x->r[i++], *q = y->r[j++];
		int c = (int)p->proto - (int)q->proto;
		if (c == 0)
			c = p->family - q->family;
		if (c == 0)
			c = p->port_lo - q->port_lo;
		if (c == 0)
			c = p->port_hi - q->port_hi;
		if (c == 0)
			c = cmp_str(p->source, q->source);
		if (c != 0)
			return c;
	}
	if ((i == x->n) != (j == y->n))
		return i == x->n ? -1 : 1;
	return (x->at > y->at) - (x->at < y->at);
}

/* chains[i] is the chain of vms[i]; *leader[i] tells whether vms[i] is
 * the one its chain is named after (and filled from). */
static uint32_t *vm_chains_declare(struct fw_model *m, const struct view *v, enum fw_family fam,
				   bool **leader)
{
	const uint64_t *vms = fam == FW_BRIDGE ? v->rule_vms : v->src_vms;
	size_t n = fam == FW_BRIDGE ? v->n_rule_vms : v->n_src_vms, j = 0;
	uint32_t *chains = calloc(n + 1, sizeof(*chains));
	struct vm_rules *byr = calloc(n + 1, sizeof(*byr));
	size_t *lead = calloc(n + 1, sizeof(*lead));

	*leader = calloc(n + 1, sizeof(**leader));
	if (chains == NULL || byr == NULL || lead == NULL || *leader == NULL) {
		m->oom = true;
		free(chains);
		free(*leader);
		*leader = NULL;
		chains = NULL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		while (j < v->n_rules && v->rules[j]->vm_id < vms[i])
			j++;
		byr[i] = (struct vm_rules){ .r = &v->rules[j], .fam = fam, .at = i };
		while (j < v->n_rules && v->rules[j]->vm_id == vms[i])
			byr[i].n++, j++;
	}
	qsort(byr, n, sizeof(*byr), cmp_vm_rules);
	for (size_t i = 0, first = 0; i < n; i++) {
		if (i > 0 && cmp_vm_rules(&(struct vm_rules){ byr[i - 1].r, byr[i - 1].n, fam, 0 },
					  &(struct vm_rules){ byr[i].r, byr[i].n, fam, 0 }) != 0)
			first = i;
		lead[byr[i].at] = byr[first].at;        /* the lowest VM of the group */
	}
	for (size_t i = 0; i < n; i++) {
		(*leader)[i] = lead[i] == i;
		if ((*leader)[i])
			chains[i] = fw_model_chain(m, fam, "vm-%s", vm_id_format(vms[i]).s);
		else
			chains[i] = chains[lead[i]];
	}
out:
	free(byr);
	free(lead);
	return chains;
}

static void vm_chains_fill(struct fw_model *m, const struct view *v, enum fw_family fam,
			   const uint32_t *chains, const bool *leader)
{
	const uint64_t *vms = fam == FW_BRIDGE ? v->rule_vms : v->src_vms;
	size_t n = fam == FW_BRIDGE ? v->n_rule_vms : v->n_src_vms, j = 0;

	for (size_t i = 0; chains != NULL && i < n; i++) {
		while (j < v->n_rules && v->rules[j]->vm_id < vms[i])
			j++;
		if (leader[i])
			fw_model_fill(m, chains[i]);
		for (; j < v->n_rules && v->rules[j]->vm_id == vms[i]; j++)
			if (leader[i] && rule_used(v->rules[j], fam))
				rule_add(m, v->rules[j], fam);
	}
}

/* The chain of a VM, from the sorted list vm_chains_declare() made. */
static uint32_t vm_chain(const uint64_t *vms, size_t n, const uint32_t *chains, uint64_t vm)
{
	const uint64_t *p = bsearch(&vm, vms, n, sizeof(*vms), cmp_u64);
	return chains[p - vms];
}

/* The family's base chains, in fw_bases[] order, into base[]. */
static void bases_declare(struct fw_model *m, enum fw_family fam, uint32_t *base)
{
	for (size_t i = 0, k = 0; i < fw_n_bases; i++)
		if (fw_bases[i].fam == fam)
			base[k++] = fw_model_base(m, &fw_bases[i]);
}

/* ---- the bridge table ----------------------------------------------------------- */

/* The filter of a vxlan port; dir is the port's side of the frame
 * (FW_IIFNAME arriving, FW_OIFNAME leaving). */
static void peer_chain_fill(struct fw_model *m, uint32_t chain, enum fw_field dir, uint32_t gw4,
			    uint32_t gw6)
{
	fw_model_fill(m, chain);
	anon(m, FW_BRIDGE, FW_UDP_DPORT, "{ 67, 68, 546, 547 }", N(dhcp_ports_be), dhcp_ports_be);
	DROP(m);
	anon(m, FW_BRIDGE, FW_ICMPV6_TYPE, "{ nd-router-solicit, nd-router-advert, nd-redirect }",
	     N(icmpv6_router_types), icmpv6_router_types);
	DROP(m);
	lookup(m, false, gw4, dir, FW_ARP_SPA);
	DROP(m);
	lookup(m, false, gw4, dir, FW_ARP_TPA);
	DROP(m);
	lookup(m, false, gw4, dir, FW_IP_SADDR);
	DROP(m);
	cmp16(m, FW_ETHER_TYPE, false, 0x86dd, "ip6");
	lookup(m, false, gw6, dir, FW_NH_64_128);
	DROP(m);
	anon(m, FW_BRIDGE, FW_ICMPV6_TYPE, "{ nd-neighbor-solicit, nd-neighbor-advert }", N(icmpv6_nd_ns_na),
	     icmpv6_nd_ns_na);
	lookup(m, false, gw6, dir, FW_TH_64_128);
	DROP(m);
}

static void bridge_table(struct fw_model *m, const struct view *v)
{
	static const uint8_t k_mac[] = { FW_IIFNAME, FW_ETHER_SADDR }, k_ip4[] = { FW_IIFNAME, FW_IP_SADDR },
			     k_raw6[] = { FW_IIFNAME, FW_NH_64_128 }, k_if[] = { FW_IIFNAME };
	const enum fw_family B = FW_BRIDGE;

	/* Chains first (maps jump to them), in the order they are listed. */
	uint32_t base[3];
	bases_declare(m, B, base);
	uint32_t pre = fw_model_chain(m, B, "pre"), from_vm = fw_model_chain(m, B, "from-vm"),
		 from_vm_arp = fw_model_chain(m, B, "from-vm-arp"), from_vm_ip4 = fw_model_chain(m, B, "from-vm-ip4"),
		 from_vm_ip6 = fw_model_chain(m, B, "from-vm-ip6"), deliver = fw_model_chain(m, B, "deliver"),
		 from_peer = fw_model_chain(m, B, "from-peer"), to_peer = fw_model_chain(m, B, "to-peer"),
		 to_vm = fw_model_chain(m, B, "to-vm");
	bool *leader;
	uint32_t *vm_chains = vm_chains_declare(m, v, B, &leader);

	uint32_t mac = fw_model_set(m, B, FW_SET, false, "mac", 2, k_mac);
	for (size_t i = 0; i < v->n_nics; i++)
		fw_model_elem(m, mac, (const void *[]){ v->nics[i]->ifname, v->nics[i]->mac }, 0);

	uint32_t ip4 = fw_model_set(m, B, FW_SET, false, "ip4", 2, k_ip4);
	for (size_t i = 0; i < v->n_nics; i++)
		if (v->nics[i]->has_ip4)
			fw_model_elem(m, ip4, (const void *[]){ v->nics[i]->ifname, &v->nics[i]->ip4 }, 0);

	/* A NIC's IPv6 addresses (link-local, global) as raw 128-bit values
	 * (see the top of this file). */
	uint32_t ip6 = fw_model_set(m, B, FW_SET, true, "ip6", 2, k_raw6);
	for (size_t i = 0; i < v->n_nics; i++) {
		fw_model_elem(m, ip6, (const void *[]){ v->nics[i]->ifname, &v->nics[i]->ll6 }, 0);
		fw_model_elem(m, ip6, (const void *[]){ v->nics[i]->ifname, &v->nics[i]->ip6 }, 0);
	}

	uint32_t vm = fw_model_set(m, B, FW_MAP, false, "vm", 1, k_if);
	for (size_t i = 0; vm_chains != NULL && i < v->n_nics; i++)
		if (has_u64(v->rule_vms, v->n_rule_vms, v->nics[i]->vm_id))
			fw_model_elem(m, vm, (const void *[]){ v->nics[i]->ifname },
				      vm_chain(v->rule_vms, v->n_rule_vms, vm_chains, v->nics[i]->vm_id));

	/* The overlay: every network's vxlan link, and the host's own
	 * addresses on the network's bridge keyed by that link (so an
	 * address of one network is not taken for another's gateway). */
	uint32_t overlay = fw_model_set(m, B, FW_SET, false, "overlay", 1, k_if);
	for (size_t i = 0; i < v->n_nets; i++) {
		char x[16] = { 0 };
		snprintf(x, sizeof(x), "%s", ifname_vxlan(v->nets[i]->id).s);
		fw_model_elem(m, overlay, (const void *[]){ x }, 0);
	}

	uint32_t gw4 = fw_model_set(m, B, FW_SET, false, "gw4", 2, k_ip4);
	for (size_t i = 0; i < v->n_nets; i++) {
		char x[16] = { 0 };
		struct in_addr gw = ns_gateway4(v->nets[i]);
		snprintf(x, sizeof(x), "%s", ifname_vxlan(v->nets[i]->id).s);
		if (v->nets[i]->has_ip4)
			fw_model_elem(m, gw4, (const void *[]){ x, &gw }, 0);
	}

	/* Raw 128-bit values, for the same reason as ip6-V: NDP targets. */
	struct in6_addr md6;
	inet_pton(AF_INET6, METADATA_IPV6, &md6);
	uint32_t gw6 = fw_model_set(m, B, FW_SET, true, "gw6", 2, k_raw6);
	for (size_t i = 0; i < v->n_nets; i++) {
		char x[16] = { 0 };
		struct in6_addr gw = ns_gateway6(v->nets[i]);
		snprintf(x, sizeof(x), "%s", ifname_vxlan(v->nets[i]->id).s);
		fw_model_elem(m, gw6, (const void *[]){ x, &gw }, 0);
		fw_model_elem(m, gw6, (const void *[]){ x, &md6 }, 0);
	}

	const uint32_t target[3] = { pre, deliver, deliver };
	for (int i = 0; i < 3; i++) {
		fw_model_fill(m, base[i]);
		end(m, FW_V_JUMP, target[i]);
	}

	fw_model_fill(m, pre);
	mark_clear(m);
	ifglob(m, FW_IIFNAME);
	end(m, FW_V_GOTO, from_vm);
	lookup(m, false, overlay, FW_IIFNAME, -1);
	end(m, FW_V_GOTO, from_peer);

	/* Anti-spoofing: a frame from a tap must carry its NIC's MAC and,
	 * per protocol, its NIC's addresses; anything but ARP/IPv4/IPv6
	 * (VLAN tags included) is dropped. */
	fw_model_fill(m, from_vm);
	lookup(m, true, mac, FW_IIFNAME, FW_ETHER_SADDR);
	DROP(m);
	cmp16(m, FW_ETHER_TYPE, false, 0x0806, "arp");
	end(m, FW_V_GOTO, from_vm_arp);
	cmp16(m, FW_ETHER_TYPE, false, 0x0800, "ip");
	end(m, FW_V_GOTO, from_vm_ip4);
	cmp16(m, FW_ETHER_TYPE, false, 0x86dd, "ip6");
	end(m, FW_V_GOTO, from_vm_ip6);
	DROP(m);

	fw_model_fill(m, from_vm_arp);
	cmp16(m, FW_ARP_HTYPE, true, 1, "1");
	DROP(m);
	cmp16(m, FW_ARP_PTYPE, true, 0x0800, "ip");
	DROP(m);
	cmp8(m, FW_ARP_HLEN, true, 6, "6");
	DROP(m);
	cmp8(m, FW_ARP_PLEN, true, 4, "4");
	DROP(m);
	lookup(m, true, mac, FW_IIFNAME, FW_ARP_SHA);
	DROP(m);
	/* RFC 5227 probe: sender 0.0.0.0 before an address is in use. */
	cmp16(m, FW_ARP_OP, false, 1, "request");
	cmp(m, FW_ARP_SPA, false, "\0\0\0\0", "0.0.0.0");
	ACCEPT(m);
	lookup(m, false, ip4, FW_IIFNAME, FW_ARP_SPA);
	ACCEPT(m);
	DROP(m);

	fw_model_fill(m, from_vm_ip4);
	cmp16(m, FW_UDP_SPORT, false, 67, "67");         /* a guest answering DHCP */
	DROP(m);
	cmp(m, FW_IP_SADDR, false, "\0\0\0\0", "0.0.0.0");
	udp_ports(m, 68, 67, "udp sport 68 udp dport 67");
	ACCEPT(m);
	lookup(m, false, ip4, FW_IIFNAME, FW_IP_SADDR);
	ACCEPT(m);
	DROP(m);

	/* IPv6: :: only for what RFC 4861/4862/3810 send before an address
	 * is usable (RS, MLD reports, DAD for one's own address); NDP
	 * advertisements only for one's own targets; router-only messages
	 * (RA, redirect) and DHCPv6 server replies never. */
	static const uint8_t zero6[16];
	fw_model_fill(m, from_vm_ip6);
	anon(m, B, FW_ICMPV6_TYPE, "{ nd-router-advert, nd-redirect }", N(icmpv6_ra_redirect), icmpv6_ra_redirect);
	DROP(m);
	cmp16(m, FW_UDP_SPORT, false, 547, "547");
	DROP(m);
	cmp(m, FW_IP6_SADDR, false, zero6, "::");
	anon(m, B, FW_ICMPV6_TYPE, "{ nd-router-solicit, mld-listener-report, mld2-listener-report }",
	     N(icmpv6_dad_types), icmpv6_dad_types);
	ACCEPT(m);
	cmp(m, FW_IP6_SADDR, false, zero6, "::");
	cmp8(m, FW_ICMPV6_TYPE, false, 135, "nd-neighbor-solicit");
	lookup(m, false, ip6, FW_IIFNAME, FW_TH_64_128);
	ACCEPT(m);
	lookup(m, true, ip6, FW_IIFNAME, FW_NH_64_128);
	DROP(m);
	cmp8(m, FW_ICMPV6_TYPE, false, 136, "nd-neighbor-advert");
	lookup(m, true, ip6, FW_IIFNAME, FW_TH_64_128);
	DROP(m);
	ACCEPT(m);

	fw_model_fill(m, deliver);
	ifglob(m, FW_OIFNAME);
	end(m, FW_V_GOTO, to_vm);
	lookup(m, false, overlay, FW_OIFNAME, -1);
	end(m, FW_V_GOTO, to_peer);

	/* Between hosts, both ways: each host's DHCP, routers and gateway
	 * addresses stay its own (see the top of this file). */
	peer_chain_fill(m, from_peer, FW_IIFNAME, gw4, gw6);
	peer_chain_fill(m, to_peer, FW_OIFNAME, gw4, gw6);

	/* Inbound: replies, ICMP/NDP, ARP and the host's DHCP/RA, then the
	 * VM's own rules through the map, then nothing. */
	fw_model_fill(m, to_vm);
	masked(m, FW_MARK, false, MARK_EST, MARK_EST, "& 0x01000000 == 0x01000000");
	ACCEPT(m);
	cmp16(m, FW_ETHER_TYPE, false, 0x0806, "arp");
	ACCEPT(m);
	anon(m, B, FW_L4PROTO, "{ icmp, ipv6-icmp }", N(l4_icmp_both), l4_icmp_both);
	ACCEPT(m);
	udp_ports(m, 67, 68, "udp sport 67 udp dport 68");
	ACCEPT(m);
	udp_ports(m, 547, 546, "udp sport 547 udp dport 546");
	ACCEPT(m);
	vmap(m, FW_OIFNAME, vm);
	end(m, FW_V_NONE, 0);
	DROP(m);

	vm_chains_fill(m, v, B, vm_chains, leader);
	free(vm_chains);
	free(leader);
}

/* ---- the inet table ------------------------------------------------------------- */

static void inet_table(struct fw_model *m, const struct view *v, const char *uplink, int md_port)
{
	static const uint8_t k_if[] = { FW_IIFNAME }, k_same[] = { FW_IIFNAME, FW_OIFNAME },
			     k_ip4[] = { FW_IP_DADDR }, k_ip6[] = { FW_IP6_DADDR },
			     k_dns4[] = { FW_IIFNAME, FW_IP_DADDR }, k_dns6[] = { FW_IIFNAME, FW_IP6_DADDR };
	const enum fw_family I = FW_INET;

	uint32_t base[4];
	bases_declare(m, I, base);
	uint32_t in = fw_model_chain(m, I, "in"), guest_in = fw_model_chain(m, I, "guest-in"),
		 out = fw_model_chain(m, I, "out"), fwd = fw_model_chain(m, I, "fwd"),
		 into_net = fw_model_chain(m, I, "into-net"), from_net = fw_model_chain(m, I, "from-net"),
		 cross_net = fw_model_chain(m, I, "cross-net");
	bool *leader;
	uint32_t *vm_chains = vm_chains_declare(m, v, I, &leader);
	uint32_t nat = fw_model_chain(m, I, "nat");

	uint32_t bridges = fw_model_set(m, I, FW_SET, false, "bridges", 1, k_if);
	for (size_t i = 0; i < v->n_nets; i++)
		fw_model_elem(m, bridges, (const void *[]){ v->nets[i]->bridge }, 0);

	/* Routed from a network back into itself: not a crossing. */
	uint32_t same = fw_model_set(m, I, FW_SET, false, "same", 2, k_same);
	for (size_t i = 0; i < v->n_nets; i++)
		fw_model_elem(m, same, (const void *[]){ v->nets[i]->bridge, v->nets[i]->bridge }, 0);

	uint32_t xvm4 = fw_model_set(m, I, FW_MAP, false, "xvm4", 1, k_ip4);
	for (size_t i = 0; vm_chains != NULL && i < v->n_x4; i++)
		fw_model_elem(m, xvm4, (const void *[]){ v->x4[i].a },
			      vm_chain(v->src_vms, v->n_src_vms, vm_chains, v->x4[i].vm_id));

	uint32_t xvm6 = fw_model_set(m, I, FW_MAP, false, "xvm6", 1, k_ip6);
	for (size_t i = 0; vm_chains != NULL && i < v->n_x6; i++)
		fw_model_elem(m, xvm6, (const void *[]){ v->x6[i].a },
			      vm_chain(v->src_vms, v->n_src_vms, vm_chains, v->x6[i].vm_id));

	/* The host's own addresses on each bridge, keyed by it: a guest's
	 * DNS goes to its own network's dnsmasq only. */
	uint32_t dns4 = fw_model_set(m, I, FW_SET, false, "dns4", 2, k_dns4);
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in_addr gw = ns_gateway4(v->nets[i]);
		if (v->nets[i]->has_ip4)
			fw_model_elem(m, dns4, (const void *[]){ v->nets[i]->bridge, &gw }, 0);
	}
	uint32_t dns6 = fw_model_set(m, I, FW_SET, false, "dns6", 2, k_dns6);
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in6_addr gw = ns_gateway6(v->nets[i]);
		fw_model_elem(m, dns6, (const void *[]){ v->nets[i]->bridge, &gw }, 0);
	}
	m->has_counter[I] = true;

	const uint32_t target[4] = { in, fwd, out, nat };
	for (int i = 0; i < 4; i++) {
		fw_model_fill(m, base[i]);
		end(m, FW_V_JUMP, target[i]);
	}

	/* To the host itself: from a guest (its bridge, or a tap not yet
	 * enslaved) only what a guest needs of its host. */
	fw_model_fill(m, in);
	lookup(m, false, bridges, FW_IIFNAME, -1);
	end(m, FW_V_GOTO, guest_in);
	ifglob(m, FW_IIFNAME);
	end(m, FW_V_GOTO, guest_in);

	fw_model_fill(m, guest_in);
	masked(m, FW_CT_STATE, true, 6, 0, "established,related");
	ACCEPT(m);
	anon(m, I, FW_ICMPV6_TYPE, "{ echo-request, nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }",
	     N(icmpv6_guest_in), icmpv6_guest_in);
	ACCEPT(m);
	cmp8(m, FW_ICMP_TYPE, false, 8, "echo-request");
	ACCEPT(m);
	udp_ports(m, 68, 67, "udp sport 68 udp dport 67");
	ACCEPT(m);
	udp_ports(m, 546, 547, "udp sport 546 udp dport 547");
	ACCEPT(m);
	for (int af = 0; af < 2; af++) {
		anon(m, I, FW_L4PROTO, "{ tcp, udp }", N(l4_tcp_udp), l4_tcp_udp);
		cmp16(m, FW_TH_DPORT, false, 53, "53");
		lookup(m, false, af == 0 ? dns4 : dns6, FW_IIFNAME, af == 0 ? FW_IP_DADDR : FW_IP6_DADDR);
		ACCEPT(m);
	}
	if (md_port != 0) {
		struct in_addr md4;
		struct in6_addr md6;
		inet_pton(AF_INET, METADATA_IPV4, &md4);
		inet_pton(AF_INET6, METADATA_IPV6, &md6);
		cmp(m, FW_IP_DADDR, false, &md4, METADATA_IPV4);
		cmp16(m, FW_TCP_DPORT, false, (uint16_t)md_port, NULL);
		ACCEPT(m);
		cmp(m, FW_IP6_DADDR, false, &md6, METADATA_IPV6);
		cmp16(m, FW_TCP_DPORT, false, (uint16_t)md_port, NULL);
		ACCEPT(m);
	}
	fw_model_end(m, FW_S_COUNTER, FW_V_DROP, 0);

	/* Sent by the host itself into a network. */
	fw_model_fill(m, out);
	lookup(m, false, bridges, FW_OIFNAME, -1);
	mark_clear(m);
	lookup(m, false, bridges, FW_OIFNAME, -1);
	masked(m, FW_CT_STATE, true, 6, 0, "established,related");
	fw_model_end(m, FW_S_MARK_SET, FW_V_NONE, 0);

	fw_model_fill(m, fwd);
	lookup(m, false, bridges, FW_OIFNAME, -1);
	end(m, FW_V_GOTO, into_net);
	lookup(m, false, bridges, FW_IIFNAME, -1);
	end(m, FW_V_GOTO, from_net);

	/* Into a network: routed there, or bridged within it (br_netfilter
	 * runs bridged frames through here with the bridge as iif and oif).
	 * DHCP replies are never routed (the host's dnsmasq answers on the
	 * link, through output). */
	fw_model_fill(m, into_net);
	mark_clear(m);
	masked(m, FW_CT_STATE, true, 6, 0, "established,related");
	fw_model_end(m, FW_S_MARK_SET, FW_V_ACCEPT, 0);
	anon(m, I, FW_UDP_DPORT, "{ 68, 546 }", N(dhcp_client_ports_be), dhcp_client_ports_be);
	DROP(m);
	lookup(m, false, same, FW_IIFNAME, FW_OIFNAME);
	ACCEPT(m);
	lookup(m, false, bridges, FW_IIFNAME, -1);
	end(m, FW_V_GOTO, cross_net);
	if (uplink != NULL) {
		ifname(m, FW_IIFNAME, uplink);
		ACCEPT(m);
	}
	DROP(m);

	fw_model_fill(m, from_net);
	if (uplink != NULL) {
		ifname(m, FW_OIFNAME, uplink);
		ACCEPT(m);
	}
	DROP(m);

	fw_model_fill(m, cross_net);
	vmap(m, FW_IP_DADDR, xvm4);
	end(m, FW_V_NONE, 0);
	vmap(m, FW_IP6_DADDR, xvm6);
	end(m, FW_V_NONE, 0);
	DROP(m);

	vm_chains_fill(m, v, I, vm_chains, leader);
	free(vm_chains);
	free(leader);

	fw_model_fill(m, nat);
	for (size_t i = 0; uplink != NULL && i < v->n_nets; i++) {
		if (!v->nets[i]->has_ip4)
			continue;
		ifname(m, FW_OIFNAME, uplink);
		prefix(m, FW_IP_SADDR, &v->nets[i]->net4, v->nets[i]->len4);
		fw_model_end(m, FW_S_MASQ, FW_V_NONE, 0);
	}
}

int fw_generate(const struct netstate *ns, struct fw_model *m, char **err)
{
	struct view v;

	fw_model_init(m);
	if (firewall_check(ns, err) < 0)
		return -1;
	if (view_build(ns, &v) < 0)
		goto oom;
	bridge_table(m, &v);
	inet_table(m, &v, ns->uplink, ns->metadata_port);
	view_free(&v);
	if (fw_model_finish(m) < 0)
		goto oom;
	return 0;
oom:
	fw_model_free(m);
	if (err != NULL)
		*err = strdup("out of memory");
	errno = ENOMEM;
	return -1;
}
