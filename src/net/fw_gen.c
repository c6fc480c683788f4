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
 *     sets mac-V, ip4-V, ip6-V,     per-NIC facts, keyed by tap name (pfx6:
 *          pfx6-V                   the NIC's routed IPv6 prefixes, ranges)
 *     sets open-V, svc-V, in4-V,    the VMs' inbound rules as elements keyed
 *          in6-V, any4-V, any6-V,   by tap (see "Inbound rules" below); the
 *          src4-V, src6-V,          src… ones hold the rules that name a
 *          srcany4-V, srcany6-V     source, the others those from anywhere
 *     sets overlay-V, gw4-V, gw6-V  every network's vxlan link; the host's own
 *                                   addresses on each bridge, keyed by it
 *
 *   table inet hackcloud            routed traffic, conntrack, NAT, the host
 *     input → in-V                  from a bridge or a tap → guest-in-V: only
 *                                   what a guest needs of its host; the rest
 *                                   counted (counter guest-drop) and dropped
 *     forward → fwd-V               into a network: isolation, uplink; sets
 *                                   the mark bits for established traffic
 *                                   and for traffic between networks
 *     output → out-V                sets the mark bit for the host's replies
 *     postrouting (nat) → nat-V     public IPv4 addresses (map priv4-V) and
 *                                   masquerade IPv4 out of the uplink
 *     prerouting (nat) → dnat-V     public IPv4 addresses in (map pub4-V)
 *     sets bridges-V, same-V, dns4-V, dns6-V
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
 * with an explicit source prefix that matches.  into-net-V marks such a
 * packet with FIREWALL_MARK_CROSS (cleared with the other bit wherever
 * that is) and lets it on; deliver-V lets a marked packet only to a tap
 * (not to another host, nor to any other port), where to-vm-V sends it to
 * to-vm-crossed-V: the VM's rules that name a source, nothing else — not
 * even the ICMP let in from its own network.  A rule without a source
 * means "anywhere but the other hackcloud networks": the host, the VM's
 * own network and the uplink.  With an uplink, new connections from
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
 *
 * Inbound rules: a rule accepts a protocol, a range of destination ports
 * and a source prefix, towards every NIC of its VM.  They are set
 * elements, not chains (DESIGN §6; a chain per VM cost the kernel about
 * 80 µs a VM): to-vm-V looks the packet up as `oifname . meta l4proto .
 * th dport . ip saddr` (and ip6) in sets of concatenated ranges, whose
 * lookup costs the same whatever the number of chains — there are none.
 * Rules overlap and the kernel refuses overlapping ranges, so fw_rules.c
 * cuts each VM's rules into disjoint elements accepting exactly their
 * union.  Two common shapes skip the ranges: "any protocol from anywhere"
 * (set open-V, keyed by the tap alone) and "one tcp/udp port from
 * anywhere" (set svc-V, an exact `oifname . meta l4proto . th dport`: a
 * hash lookup, and a fraction of the kernel's work per element).  "any"
 * rules are matched without ports (any4-V, any6-V): a packet whose
 * transport header cannot be read must still be let in by them.  The
 * rules that name a source have sets of their own (src…-V), which are all
 * that to-vm-crossed-V looks at; no rule is an element twice.
 *
 * Routed prefixes and public IPv4 (issue 13): a NIC may send from its
 * routed IPv6 prefixes (pfx6-V, before the check of its own addresses);
 * packets to a prefix are routed by the host to the NIC and meet the same
 * rules at its tap.  A public IPv4 address is translated 1:1 at the
 * uplink: dnat-V rewrites the destination of what arrives on the uplink
 * for it (into-net-V then lets it in like anything from the uplink, and
 * the VM's rules decide at the tap); nat-V rewrites the source of what
 * the VM sends out of the uplink, before the masquerade of the rest.
 */
#include "net/fw_model.h"

#include "common/ids.h"
#include "metadata/server.h"    /* METADATA_IPV4/6, on every bridge */
#include "common/sort.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The match on hackcloud taps: "v" + MAC, MAC = 02:00:<NIC ID>. */
#define TAP_PREFIX "v0200"

#define MARK_EST FIREWALL_MARK_EST
#define MARK_CROSS FIREWALL_MARK_CROSS

/* ---- the sorted view the model is drawn from ----------------------------- */

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

/* The inbound rules of a VM that has a rule and an active NIC here, as
 * the sets take them (see "Inbound rules" at the top of this file). */
struct vm_in {
	uint64_t vm_id;
	bool open;                      /* "any" from anywhere: everything in */
	const struct ns_rule **svc;     /* one tcp/udp port from anywhere, unique */
	size_t n_svc;
	struct fw_inbound anywhere[2];  /* the other rules from anywhere; [0] IPv4, [1] IPv6 */
	struct fw_inbound sourced[2];   /* the rules that name a source */
};

static int cmp_prefix(const void *a, const void *b)
{
	const struct ns_prefix *x = *(const struct ns_prefix *const *)a, *y = *(const struct ns_prefix *const *)b;
	if (x->nic_id != y->nic_id)
		return (x->nic_id > y->nic_id) - (x->nic_id < y->nic_id);
	int c = memcmp(&x->addr, &y->addr, sizeof(x->addr));
	return c != 0 ? c : (int)x->len - (int)y->len;
}

/* A public IPv4 address with the NIC it leads to. */
struct pub_ref {
	struct in_addr pub;
	const struct ns_nic *nic;
};

static int cmp_pub_ref(const void *a, const void *b)
{
	const struct pub_ref *x = a, *y = b;
	if (x->nic->id != y->nic->id)
		return (x->nic->id > y->nic->id) - (x->nic->id < y->nic->id);
	return memcmp(&x->pub, &y->pub, sizeof(x->pub));
}

struct view {
	const struct ns_net **nets;     /* by ID */
	const struct ns_nic **nics;     /* active ones, by ID */
	const struct ns_nic **by_vm;    /* the same, by VM and ID */
	const struct ns_rule **rules;   /* by VM and ID */
	struct vm_in *vms;              /* by VM ID */
	const struct ns_prefix **prefixes; /* of active NICs, by NIC and address */
	struct pub_ref *pub;            /* public IPv4 of active NICs, by NIC ID */
	size_t n_nets, n_nics, n_rules, n_vms, n_prefixes, n_pub;
};

static void view_free(struct view *v)
{
	for (size_t i = 0; v->vms && i < v->n_vms; i++) {
		free(v->vms[i].svc);
		for (int af = 0; af < 2; af++) {
			fw_inbound_free(&v->vms[i].anywhere[af]);
			fw_inbound_free(&v->vms[i].sourced[af]);
		}
	}
	free(v->nets);
	free(v->nics);
	free(v->by_vm);
	free(v->rules);
	free(v->vms);
	free(v->prefixes);
	free(v->pub);
	memset(v, 0, sizeof(*v));
}

static const struct ns_nic *nic_find(const struct view *v, uint64_t id)
{
	struct ns_nic key = { .id = id };
	const struct ns_nic *k = &key, **p = search_array(&k, v->nics, v->n_nics, sizeof(*v->nics), cmp_nic);
	return p ? *p : NULL;
}

static bool vm_has_nic(const struct view *v, uint64_t vm)
{
	struct ns_nic key = { .id = 0, .vm_id = vm };
	size_t lo = 0, hi = v->n_nics;

	/* The first NIC of the VM or later, in by_vm order. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cmp_nic_vm(&v->by_vm[mid], &(const struct ns_nic *){ &key }) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n_nics && v->by_vm[lo]->vm_id == vm;
}

static const struct vm_in *vm_find(const struct view *v, uint64_t vm)
{
	size_t lo = 0, hi = v->n_vms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->vms[mid].vm_id < vm)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n_vms && v->vms[lo].vm_id == vm ? &v->vms[lo] : NULL;
}

static bool rule_svc(const struct ns_rule *r)
{
	return (r->proto == NS_PROTO_TCP || r->proto == NS_PROTO_UDP) && r->port_lo != 0 &&
	       r->port_lo == r->port_hi && r->source == NULL && r->family == 0;
}

static bool rule_open(const struct ns_rule *r)
{
	return r->proto == NS_PROTO_ANY && r->source == NULL && r->family == 0;
}

static int cmp_svc(const void *a, const void *b)
{
	const struct ns_rule *x = *(const struct ns_rule *const *)a, *y = *(const struct ns_rule *const *)b;
	return x->proto != y->proto ? (int)x->proto - (int)y->proto : x->port_lo - y->port_lo;
}

/* One VM's rules r[0 .. n) into e (see struct vm_in); scratch holds n. */
static int vm_in_build(struct vm_in *e, const struct ns_rule **r, size_t n, const struct ns_rule **scratch)
{
	size_t k = 0;
	static const int afs[2] = { AF_INET, AF_INET6 };

	e->vm_id = r[0]->vm_id;
	if ((e->svc = calloc(n + 1, sizeof(*e->svc))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (rule_open(r[i]))
			e->open = true;
		else if (rule_svc(r[i]))
			e->svc[e->n_svc++] = r[i];
		else if (r[i]->source == NULL)
			scratch[k++] = r[i];
	}
	sort_array(e->svc, e->n_svc, sizeof(*e->svc), cmp_svc);
	size_t u = 0;
	for (size_t i = 0; i < e->n_svc; i++)
		if (u == 0 || cmp_svc(&e->svc[u - 1], &e->svc[i]) != 0)
			e->svc[u++] = e->svc[i];
	e->n_svc = u;
	for (int af = 0; af < 2; af++)
		if (fw_rules_inbound(scratch, k, afs[af], &e->anywhere[af]) < 0)
			return -1;
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i]->source != NULL)
			scratch[k++] = r[i];
	for (int af = 0; af < 2; af++)
		if (fw_rules_inbound(scratch, k, afs[af], &e->sourced[af]) < 0)
			return -1;
	return 0;
}

/* The last address of a prefix. */
static struct in6_addr prefix_last(const struct ns_prefix *p)
{
	struct in6_addr a = p->addr;
	for (unsigned i = p->len; i < 128; i++)
		a.s6_addr[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	return a;
}

static int view_build(const struct netstate *ns, struct view *v)
{
	size_t nn = ns->n_nets, nc = ns->n_nics, nr = ns->n_rules, np = ns->n_prefixes;
	const struct ns_rule **scratch = NULL;

	memset(v, 0, sizeof(*v));
	v->nets = calloc(nn + 1, sizeof(*v->nets));
	v->nics = calloc(nc + 1, sizeof(*v->nics));
	v->by_vm = calloc(nc + 1, sizeof(*v->by_vm));
	v->rules = calloc(nr + 1, sizeof(*v->rules));
	v->vms = calloc(nr + 1, sizeof(*v->vms));
	v->prefixes = calloc(np + 1, sizeof(*v->prefixes));
	v->pub = calloc(ns->n_public4 + 1, sizeof(*v->pub));
	scratch = calloc(nr + 1, sizeof(*scratch));
	if (!v->nets || !v->nics || !v->by_vm || !v->rules || !v->vms || !v->prefixes || !v->pub ||
	    !scratch)
		goto oom;

	for (size_t i = 0; i < nn; i++)
		v->nets[v->n_nets++] = &ns->nets[i];
	sort_array(v->nets, v->n_nets, sizeof(*v->nets), cmp_net);

	for (size_t i = 0; i < nc; i++)
		if (ns->nics[i].active)
			v->nics[v->n_nics++] = &ns->nics[i];
	sort_array(v->nics, v->n_nics, sizeof(*v->nics), cmp_nic);
	memcpy(v->by_vm, v->nics, v->n_nics * sizeof(*v->nics));
	sort_array(v->by_vm, v->n_nics, sizeof(*v->by_vm), cmp_nic_vm);

	for (size_t i = 0; i < nr; i++)
		v->rules[v->n_rules++] = &ns->rules[i];
	sort_array(v->rules, v->n_rules, sizeof(*v->rules), cmp_rule);
	for (size_t i = 0, j; i < v->n_rules; i = j) {
		for (j = i; j < v->n_rules && v->rules[j]->vm_id == v->rules[i]->vm_id; j++)
			;
		if (!vm_has_nic(v, v->rules[i]->vm_id))
			continue;       /* no NIC here: nothing to accept into */
		if (vm_in_build(&v->vms[v->n_vms++], &v->rules[i], j - i, scratch) < 0)
			goto oom;
	}

	for (size_t i = 0; i < np; i++)
		if (nic_find(v, ns->prefixes[i].nic_id) != NULL)
			v->prefixes[v->n_prefixes++] = &ns->prefixes[i];
	sort_array(v->prefixes, v->n_prefixes, sizeof(*v->prefixes), cmp_prefix);

	/* Public IPv4: a NIC with an IPv4 address; one private address per
	 * public one (the lower NIC ID keeps a private address two share). */
	for (size_t i = 0; i < ns->n_public4; i++) {
		const struct ns_nic *c = nic_find(v, ns->public4[i].nic_id);
		if (c != NULL && c->has_ip4)
			v->pub[v->n_pub++] = (struct pub_ref){ ns->public4[i].addr, c };
	}
	sort_array(v->pub, v->n_pub, sizeof(*v->pub), cmp_pub_ref);
	size_t out = 0;
	for (size_t i = 0; i < v->n_pub; i++) {
		bool dup = false;
		for (size_t j = 0; j < out && !dup; j++)
			dup = v->pub[j].nic->ip4.s_addr == v->pub[i].nic->ip4.s_addr;
		if (!dup)
			v->pub[out++] = v->pub[i];
	}
	v->n_pub = out;
	free(scratch);
	return 0;
oom:
	free(scratch);
	view_free(v);
	errno = ENOMEM;
	return -1;
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

/* ---- the VMs' inbound rules as elements --------------------------------------- */

/* The elements of one VM's rules (one family), keyed by key[0..n_key)
 * (a tap, or a destination range), into the sets ports and any. */
static void inbound_elems(struct fw_model *m, uint32_t ports, uint32_t any, const struct fw_inbound *in,
			  const void *key_lo, const void *key_hi)
{
	for (size_t i = 0; i < in->n_ports; i++) {
		const struct fw_port_elem *e = &in->ports[i];
		uint16_t plo = htons(e->port_lo), phi = htons(e->port_hi);
		fw_model_elem_range(m, ports, (const void *[]){ key_lo, &e->proto, &plo, e->src_lo },
				    (const void *[]){ key_hi, &e->proto, &phi, e->src_hi });
	}
	for (size_t i = 0; i < in->n_any; i++)
		fw_model_elem_range(m, any, (const void *[]){ key_lo, in->any[i].lo },
				    (const void *[]){ key_hi, in->any[i].hi });
}

/* The rule of to-vm-V or cross-net-V that looks a packet up in one of
 * them: key . meta l4proto . th dport . <source> (ports), key . <source>
 * (any). */
static void inbound_lookup(struct fw_model *m, uint32_t set, enum fw_field key, bool with_ports,
			   int source)
{
	struct fw_match *x = fw_model_match(m, FW_M_LOOKUP, key);
	if (x == NULL)
		return;
	x->set = set;
	if (with_ports) {
		x->keys[x->n_keys++] = FW_L4PROTO;
		x->keys[x->n_keys++] = FW_TH_DPORT;
	}
	if (source >= 0)
		x->keys[x->n_keys++] = (uint8_t)source;
	fw_model_end(m, FW_S_NONE, FW_V_ACCEPT, 0);
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
			     k_raw6[] = { FW_IIFNAME, FW_NH_64_128 }, k_if[] = { FW_IIFNAME },
			     k_src6[] = { FW_IIFNAME, FW_IP6_SADDR }, k_of[] = { FW_OIFNAME },
			     k_svc[] = { FW_OIFNAME, FW_L4PROTO, FW_TH_DPORT },
			     k_in4[] = { FW_OIFNAME, FW_L4PROTO, FW_TH_DPORT, FW_IP_SADDR },
			     k_in6[] = { FW_OIFNAME, FW_L4PROTO, FW_TH_DPORT, FW_IP6_SADDR },
			     k_any4[] = { FW_OIFNAME, FW_IP_SADDR }, k_any6[] = { FW_OIFNAME, FW_IP6_SADDR };
	const enum fw_family B = FW_BRIDGE;

	/* Chains first (maps jump to them), in the order they are listed. */
	uint32_t base[3];
	bases_declare(m, B, base);
	uint32_t pre = fw_model_chain(m, B, "pre"), from_vm = fw_model_chain(m, B, "from-vm"),
		 from_vm_arp = fw_model_chain(m, B, "from-vm-arp"), from_vm_ip4 = fw_model_chain(m, B, "from-vm-ip4"),
		 from_vm_ip6 = fw_model_chain(m, B, "from-vm-ip6"), deliver = fw_model_chain(m, B, "deliver"),
		 from_peer = fw_model_chain(m, B, "from-peer"), to_peer = fw_model_chain(m, B, "to-peer"),
		 to_vm = fw_model_chain(m, B, "to-vm"), to_vm_crossed = fw_model_chain(m, B, "to-vm-crossed");

	uint32_t mac = fw_model_set(m, B, FW_SET, false, "mac", 2, k_mac);
	for (size_t i = 0; i < v->n_nics; i++)
		fw_model_elem(m, mac, (const void *[]){ v->nics[i]->ifname, v->nics[i]->mac });

	uint32_t ip4 = fw_model_set(m, B, FW_SET, false, "ip4", 2, k_ip4);
	for (size_t i = 0; i < v->n_nics; i++)
		if (v->nics[i]->has_ip4)
			fw_model_elem(m, ip4, (const void *[]){ v->nics[i]->ifname, &v->nics[i]->ip4 });

	/* A NIC's IPv6 addresses (link-local, global) as raw 128-bit values
	 * (see the top of this file). */
	uint32_t ip6 = fw_model_set(m, B, FW_SET, true, "ip6", 2, k_raw6);
	for (size_t i = 0; i < v->n_nics; i++) {
		fw_model_elem(m, ip6, (const void *[]){ v->nics[i]->ifname, &v->nics[i]->ll6 });
		fw_model_elem(m, ip6, (const void *[]){ v->nics[i]->ifname, &v->nics[i]->ip6 });
	}

	/* A NIC's routed prefixes: sources of its own (see the top). */
	uint32_t pfx6 = fw_model_iset(m, B, "pfx6", 2, k_src6);
	for (size_t i = 0; i < v->n_prefixes; i++) {
		const struct ns_prefix *p = v->prefixes[i];
		struct in6_addr last = prefix_last(p);
		const char *tap = nic_find(v, p->nic_id)->ifname;
		fw_model_elem_range(m, pfx6, (const void *[]){ tap, &p->addr }, (const void *[]){ tap, &last });
	}

	/* The VMs' inbound rules, keyed by each of their taps: the rules
	 * from anywhere (open, svc, in4, in6, any4, any6), then those that
	 * name a source (src4, src6, srcany4, srcany6). */
	uint32_t open = fw_model_set(m, B, FW_SET, false, "open", 1, k_of),
		 svc = fw_model_set(m, B, FW_SET, false, "svc", 3, k_svc),
		 in4 = fw_model_iset(m, B, "in4", 4, k_in4), in6 = fw_model_iset(m, B, "in6", 4, k_in6),
		 any4 = fw_model_iset(m, B, "any4", 2, k_any4), any6 = fw_model_iset(m, B, "any6", 2, k_any6),
		 src4 = fw_model_iset(m, B, "src4", 4, k_in4), src6 = fw_model_iset(m, B, "src6", 4, k_in6),
		 srcany4 = fw_model_iset(m, B, "srcany4", 2, k_any4),
		 srcany6 = fw_model_iset(m, B, "srcany6", 2, k_any6);
	for (size_t i = 0; i < v->n_nics; i++) {
		const struct vm_in *e = vm_find(v, v->nics[i]->vm_id);
		const char *tap = v->nics[i]->ifname;
		if (e == NULL)
			continue;
		if (e->open)
			fw_model_elem(m, open, (const void *[]){ tap });
		for (size_t j = 0; !e->open && j < e->n_svc; j++) {
			uint8_t proto = e->svc[j]->proto == NS_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;
			uint16_t port = htons((uint16_t)e->svc[j]->port_lo);
			fw_model_elem(m, svc, (const void *[]){ tap, &proto, &port });
		}
		/* With everything open from anywhere, only the rules naming a
		 * source still say something (between networks). */
		for (int af = 0; !e->open && af < 2; af++)
			inbound_elems(m, af ? in6 : in4, af ? any6 : any4, &e->anywhere[af], tap, tap);
		for (int af = 0; af < 2; af++)
			inbound_elems(m, af ? src6 : src4, af ? srcany6 : srcany4, &e->sourced[af], tap, tap);
	}

	/* The overlay: every network's vxlan link, and the host's own
	 * addresses on the network's bridge keyed by that link (so an
	 * address of one network is not taken for another's gateway). */
	uint32_t overlay = fw_model_set(m, B, FW_SET, false, "overlay", 1, k_if);
	for (size_t i = 0; i < v->n_nets; i++) {
		char x[16] = { 0 };
		snprintf(x, sizeof(x), "%s", ifname_vxlan(v->nets[i]->id).s);
		fw_model_elem(m, overlay, (const void *[]){ x });
	}

	uint32_t gw4 = fw_model_set(m, B, FW_SET, false, "gw4", 2, k_ip4);
	for (size_t i = 0; i < v->n_nets; i++) {
		char x[16] = { 0 };
		struct in_addr gw = ns_gateway4(v->nets[i]);
		snprintf(x, sizeof(x), "%s", ifname_vxlan(v->nets[i]->id).s);
		if (v->nets[i]->has_ip4)
			fw_model_elem(m, gw4, (const void *[]){ x, &gw });
	}

	/* Raw 128-bit values, for the same reason as ip6-V: NDP targets. */
	struct in6_addr md6;
	inet_pton(AF_INET6, METADATA_IPV6, &md6);
	uint32_t gw6 = fw_model_set(m, B, FW_SET, true, "gw6", 2, k_raw6);
	for (size_t i = 0; i < v->n_nets; i++) {
		char x[16] = { 0 };
		struct in6_addr gw = ns_gateway6(v->nets[i]);
		snprintf(x, sizeof(x), "%s", ifname_vxlan(v->nets[i]->id).s);
		fw_model_elem(m, gw6, (const void *[]){ x, &gw });
		fw_model_elem(m, gw6, (const void *[]){ x, &md6 });
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
	/* Advertisements only for the NIC's own addresses, whatever the
	 * source; then a source of its routed prefixes, or its own. */
	cmp8(m, FW_ICMPV6_TYPE, false, 136, "nd-neighbor-advert");
	lookup(m, true, ip6, FW_IIFNAME, FW_TH_64_128);
	DROP(m);
	lookup(m, false, pfx6, FW_IIFNAME, FW_IP6_SADDR);
	ACCEPT(m);
	lookup(m, true, ip6, FW_IIFNAME, FW_NH_64_128);
	DROP(m);
	ACCEPT(m);

	/* Routed here from another network: only to a VM on this host (as
	 * ever: its rules decide), never on to another host or port. */
	fw_model_fill(m, deliver);
	ifglob(m, FW_OIFNAME);
	end(m, FW_V_GOTO, to_vm);
	masked(m, FW_MARK, false, MARK_CROSS, MARK_CROSS, "& 0x02000000 == 0x02000000");
	DROP(m);
	lookup(m, false, overlay, FW_OIFNAME, -1);
	end(m, FW_V_GOTO, to_peer);

	/* Between hosts, both ways: each host's DHCP, routers and gateway
	 * addresses stay its own (see the top of this file). */
	peer_chain_fill(m, from_peer, FW_IIFNAME, gw4, gw6);
	peer_chain_fill(m, to_peer, FW_OIFNAME, gw4, gw6);

	/* Inbound: replies, ICMP/NDP, ARP and the host's DHCP/RA, then the
	 * VM's own rules (elements keyed by the tap), then nothing.  From
	 * another network, only its rules that name a source. */
	fw_model_fill(m, to_vm);
	masked(m, FW_MARK, false, MARK_EST, MARK_EST, "& 0x01000000 == 0x01000000");
	ACCEPT(m);
	cmp16(m, FW_ETHER_TYPE, false, 0x0806, "arp");
	ACCEPT(m);
	masked(m, FW_MARK, false, MARK_CROSS, MARK_CROSS, "& 0x02000000 == 0x02000000");
	end(m, FW_V_GOTO, to_vm_crossed);
	anon(m, B, FW_L4PROTO, "{ icmp, ipv6-icmp }", N(l4_icmp_both), l4_icmp_both);
	ACCEPT(m);
	udp_ports(m, 67, 68, "udp sport 67 udp dport 68");
	ACCEPT(m);
	udp_ports(m, 547, 546, "udp sport 547 udp dport 546");
	ACCEPT(m);
	lookup(m, false, open, FW_OIFNAME, -1);
	ACCEPT(m);
	inbound_lookup(m, svc, FW_OIFNAME, true, -1);
	inbound_lookup(m, in4, FW_OIFNAME, true, FW_IP_SADDR);
	inbound_lookup(m, in6, FW_OIFNAME, true, FW_IP6_SADDR);
	inbound_lookup(m, any4, FW_OIFNAME, false, FW_IP_SADDR);
	inbound_lookup(m, any6, FW_OIFNAME, false, FW_IP6_SADDR);
	end(m, FW_V_GOTO, to_vm_crossed);

	fw_model_fill(m, to_vm_crossed);
	inbound_lookup(m, src4, FW_OIFNAME, true, FW_IP_SADDR);
	inbound_lookup(m, src6, FW_OIFNAME, true, FW_IP6_SADDR);
	inbound_lookup(m, srcany4, FW_OIFNAME, false, FW_IP_SADDR);
	inbound_lookup(m, srcany6, FW_OIFNAME, false, FW_IP6_SADDR);
	DROP(m);
}

/* ---- the inet table ------------------------------------------------------------- */

static void inet_table(struct fw_model *m, const struct view *v, const char *uplink, int md_port,
		       const struct netstate *ns)
{
	unsigned mig_lo = ns->migrate_port_lo, mig_hi = ns->migrate_port_hi;
	static const uint8_t k_if[] = { FW_IIFNAME }, k_same[] = { FW_IIFNAME, FW_OIFNAME },
			     k_dns4[] = { FW_IIFNAME, FW_IP_DADDR }, k_dns6[] = { FW_IIFNAME, FW_IP6_DADDR };
	const enum fw_family I = FW_INET;

	uint32_t base[5];
	bases_declare(m, I, base);
	uint32_t in = fw_model_chain(m, I, "in"), guest_in = fw_model_chain(m, I, "guest-in"),
		 out = fw_model_chain(m, I, "out"), fwd = fw_model_chain(m, I, "fwd"),
		 into_net = fw_model_chain(m, I, "into-net"), from_net = fw_model_chain(m, I, "from-net"),
		 nat = fw_model_chain(m, I, "nat"),
		 dnat = fw_model_chain(m, I, "dnat");

	uint32_t bridges = fw_model_set(m, I, FW_SET, false, "bridges", 1, k_if);
	for (size_t i = 0; i < v->n_nets; i++)
		fw_model_elem(m, bridges, (const void *[]){ v->nets[i]->bridge });

	/* Routed from a network back into itself: not a crossing. */
	uint32_t same = fw_model_set(m, I, FW_SET, false, "same", 2, k_same);
	for (size_t i = 0; i < v->n_nets; i++)
		fw_model_elem(m, same, (const void *[]){ v->nets[i]->bridge, v->nets[i]->bridge });

	/* Public IPv4 addresses, 1:1 to the NICs' own: public → private
	 * in, private → public out. */
	uint32_t pub4 = fw_model_map(m, I, "pub4", FW_IP_DADDR, FW_IP_DADDR),
		 priv4 = fw_model_map(m, I, "priv4", FW_IP_SADDR, FW_IP_SADDR);
	for (size_t i = 0; uplink != NULL && i < v->n_pub; i++) {
		fw_model_elem_data(m, pub4, &v->pub[i].pub, &v->pub[i].nic->ip4);
		fw_model_elem_data(m, priv4, &v->pub[i].nic->ip4, &v->pub[i].pub);
	}

	/* The host's own addresses on each bridge, keyed by it: a guest's
	 * DNS goes to its own network's dnsmasq only. */
	uint32_t dns4 = fw_model_set(m, I, FW_SET, false, "dns4", 2, k_dns4);
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in_addr gw = ns_gateway4(v->nets[i]);
		if (v->nets[i]->has_ip4)
			fw_model_elem(m, dns4, (const void *[]){ v->nets[i]->bridge, &gw });
	}
	uint32_t dns6 = fw_model_set(m, I, FW_SET, false, "dns6", 2, k_dns6);
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in6_addr gw = ns_gateway6(v->nets[i]);
		fw_model_elem(m, dns6, (const void *[]){ v->nets[i]->bridge, &gw });
	}
	m->has_counter[I] = true;

	const uint32_t target[5] = { in, fwd, out, nat, dnat };
	for (int i = 0; i < 5; i++) {
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

	/* Live migrations into this host (issue 14 §1): their port range is
	 * closed to all but each migration's source host, on its own ports,
	 * while the migration runs (set mig4-V, mig6-V); replies to what this
	 * host started from a port in the range pass. */
	if (mig_lo != 0) {
		static const uint8_t k_port[] = { FW_TCP_DPORT }, k_m4[] = { FW_IP_SADDR, FW_TCP_DPORT },
				     k_m6[] = { FW_IP6_SADDR, FW_TCP_DPORT };
		uint32_t ports = fw_model_set(m, I, FW_SET, false, "migports", 1, k_port),
			 m4 = fw_model_set(m, I, FW_SET, false, "mig4", 2, k_m4),
			 m6 = fw_model_set(m, I, FW_SET, false, "mig6", 2, k_m6);
		for (unsigned port = mig_lo; port <= mig_hi; port++) {
			uint16_t be = htons((uint16_t)port);
			fw_model_elem(m, ports, (const void *[]){ &be });
		}
		for (size_t i = 0; i < ns->n_migports; i++) {
			const struct ns_migport *e = &ns->migports[i];
			uint16_t be = htons(e->port);
			fw_model_elem(m, e->family == AF_INET ? m4 : m6, (const void *[]){ e->src, &be });
		}
		lookup(m, false, ports, FW_TCP_DPORT, -1);
		masked(m, FW_CT_STATE, true, 6, 0, "established,related");
		ACCEPT(m);
		lookup(m, false, m6, FW_IP6_SADDR, FW_TCP_DPORT);
		ACCEPT(m);
		lookup(m, false, m4, FW_IP_SADDR, FW_TCP_DPORT);
		ACCEPT(m);
		lookup(m, false, ports, FW_TCP_DPORT, -1);
		DROP(m);
	}

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
	/* Between networks: marked, and the destination VM's rules that name
	 * a source decide at its tap (see the top of this file). */
	lookup(m, false, bridges, FW_IIFNAME, -1);
	fw_model_end(m, FW_S_MARK_CROSS, FW_V_ACCEPT, 0);
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

	fw_model_fill(m, dnat);
	if (uplink != NULL) {
		ifname(m, FW_IIFNAME, uplink);
		fw_model_end_nat(m, FW_S_DNAT, pub4);
	}

	fw_model_fill(m, nat);
	if (uplink != NULL) {
		ifname(m, FW_OIFNAME, uplink);
		fw_model_end_nat(m, FW_S_SNAT, priv4);
	}
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
	inet_table(m, &v, ns->uplink, ns->metadata_port, ns);
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
