/*
 * firewall — the nftables ruleset; see firewall.h for the contract.
 *
 * The ruleset, read top-down (V is the version, every name but the base
 * chains' carries it):
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
 *   table inet hackcloud            routed traffic, conntrack, NAT
 *     forward → fwd-V               into a network: isolation, uplink; sets
 *                                   the mark bit for established traffic
 *     output → out-V                sets the mark bit for the host's replies
 *     postrouting (nat) → nat-V     masquerade IPv4 out of the uplink
 *     sets bridges-V, same-V; maps xvm4-V, xvm6-V (address → jump vm-…-V,
 *     the VM's rules that name a source: the only way between networks)
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
 * way (offset 8 of the IPv6 header) so that one set serves both.
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
 *
 * Apply: the names of the chains, sets and maps in our tables are listed
 * (JSON; terse, so no set elements are fetched).  When they are exactly
 * the new version's and the base chains are as declared, nothing is done.
 * Otherwise one transaction flushes every installed chain (dropping the old
 * jumps and every reference into old objects, so deletion order cannot
 * fail), deletes every installed set, map and non-base chain, and loads the
 * new script, whose base chains re-declare themselves (a no-op when they
 * exist) and get their one jump.  A base chain with another hook, priority
 * or policy is deleted and recreated in the same transaction.
 */
#include "net/firewall.h"

#include "common/ids.h"
#include "common/validate.h"
#include "metadata/server.h"    /* METADATA_IPV6, on every bridge */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The match on hackcloud taps: "v" + MAC, MAC = 02:00:<NIC ID>. */
#define TAP_GLOB "v0200*"

/* While generating, the version is not known yet (it is the hash of the
 * text): every place it goes gets VERSION_LEN marker bytes, patched once
 * the hash is known.  The marker cannot occur otherwise: the text holds
 * only keywords, hex, addresses and checked interface names. */
#define MARK_BYTE '\x01'
#define V "\x01\x01\x01\x01\x01\x01\x01\x01"
_Static_assert(sizeof(V) - 1 == FIREWALL_VERSION_LEN, "marker length");

#define MARK_CLEAR "meta mark set meta mark & 0xfeffffff"
#define MARK_SET   "meta mark set meta mark | 0x01000000"
#define MARK_TEST  "meta mark & 0x01000000 == 0x01000000"
_Static_assert(FIREWALL_MARK_EST == 0x01000000u, "MARK_* texts follow FIREWALL_MARK_EST");

enum family { FAM_BRIDGE, FAM_INET };
static const char *const family_name[] = { "bridge", "inet" };

enum kind { KIND_CHAIN, KIND_SET, KIND_MAP };
static const char *const kind_name[] = { "chain", "set", "map" };

/* The base chains: the only unversioned objects, each holding one jump to
 * `target`-V.  prio is the number the kernel reports for prio_text. */
static const struct base_chain {
	enum family fam;
	int prio;
	const char *name, *type, *hook, *prio_text, *target;
} base_chains[] = {
	/* Before br_netfilter (bridge priority 0): spoofed frames never
	 * reach conntrack or the inet hooks, stale mark bits are cleared. */
	{ FAM_BRIDGE, -200, "prerouting",  "filter", "prerouting",  "filter", "pre" },
	/* After br_netfilter's forward hook (0), which runs the inet forward
	 * chain that sets the "established" bit of bridged frames. */
	{ FAM_BRIDGE,  100, "forward",     "filter", "forward",     "100",    "deliver" },
	{ FAM_BRIDGE,  100, "output",      "filter", "output",      "100",    "deliver" },
	{ FAM_INET,      0, "input",       "filter", "input",       "filter", "in" },
	{ FAM_INET,      0, "forward",     "filter", "forward",     "filter", "fwd" },
	{ FAM_INET,      0, "output",      "filter", "output",      "filter", "out" },
	{ FAM_INET,    100, "postrouting", "nat",    "postrouting", "srcnat", "nat" },
};
#define N_BASE (sizeof(base_chains) / sizeof(base_chains[0]))

/* ---- checking the snapshot ----------------------------------------------- */

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	errno = EINVAL;
	return -1;
}

/* An uplink is configuration, not derived from an ID: allow the usual
 * interface-name characters only, so that it can be quoted safely. */
static bool uplink_valid(const char *s)
{
	enum ifname_kind kind;
	uint64_t id;
	size_t n = strlen(s);

	if (n == 0 || n > IFNAME_MAXLEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	/* One of our own links as the uplink would be filtered as a VM port. */
	return !ifname_parse(s, &kind, &id);
}

static bool is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* The rule's address family: its source's, else its own (0 = both). */
static int rule_family(const struct ns_rule *r, char *canon, size_t canon_len)
{
	int af = r->family;

	if (r->source != NULL && !prefix_parse(r->source, &af, canon, canon_len))
		return -1;
	return af;
}

static int check_rule(const struct ns_rule *r, char **err)
{
	char canon[INET6_ADDRSTRLEN + 8];
	int af;

	if (r->vm_id > VM_ID_MAX)
		return fail(err, "rule %llu: VM ID out of range", (unsigned long long)r->id);
	if (r->family != 0 && r->family != AF_INET && r->family != AF_INET6)
		return fail(err, "rule %llu: bad family %d", (unsigned long long)r->id, r->family);
	if ((af = rule_family(r, canon, sizeof(canon))) < 0)
		return fail(err, "rule %llu: source is not a prefix with zero host bits",
			    (unsigned long long)r->id);
	if (r->family != 0 && af != r->family)
		return fail(err, "rule %llu: source does not match its family", (unsigned long long)r->id);
	switch (r->proto) {
	case NS_PROTO_TCP:
	case NS_PROTO_UDP:
		if (r->port_lo == 0 && r->port_hi == 0)
			return 0;
		if (r->port_lo < 1 || r->port_lo > r->port_hi || r->port_hi > 65535)
			return fail(err, "rule %llu: bad port range %d-%d", (unsigned long long)r->id,
				    r->port_lo, r->port_hi);
		return 0;
	case NS_PROTO_ICMP:
	case NS_PROTO_ANY:
		if (r->port_lo != 0 || r->port_hi != 0)
			return fail(err, "rule %llu: ports go with tcp or udp only", (unsigned long long)r->id);
		return 0;
	}
	return fail(err, "rule %llu: bad protocol %d", (unsigned long long)r->id, (int)r->proto);
}

static int check_nic(const struct ns_nic *c, char **err)
{
	uint8_t mac[6], iid[8];
	static const uint8_t ll_prefix[8] = { 0xfe, 0x80 };

	if (c->id > NIC_ID_MAX || c->vm_id > VM_ID_MAX)
		return fail(err, "nic %llu: ID out of range", (unsigned long long)c->id);
	/* The name reaches the ruleset quoted: it must be exactly the one
	 * derived from the ID (which also makes it ^v[0-9a-f]{12}$). */
	if (strnlen(c->ifname, sizeof(c->ifname)) == sizeof(c->ifname) ||
	    strcmp(c->ifname, ifname_tap(c->id).s) != 0)
		return fail(err, "nic %llu: tap name is not %s", (unsigned long long)c->id,
			    ifname_tap(c->id).s);
	nic_mac_bytes(c->id, mac);
	if (memcmp(mac, c->mac, sizeof(mac)) != 0)
		return fail(err, "nic %llu: MAC is not %s", (unsigned long long)c->id,
			    nic_mac_format(c->id).s);
	/* Anti-spoofing lets exactly these addresses through: they must be
	 * the EUI-64 ones of DESIGN §2, never :: or 0.0.0.0. */
	eui64_from_mac(mac, iid);
	if (memcmp(c->ll6.s6_addr, ll_prefix, 8) != 0 || memcmp(c->ll6.s6_addr + 8, iid, 8) != 0)
		return fail(err, "nic %llu: link-local address is not fe80::/64 + EUI-64",
			    (unsigned long long)c->id);
	if (memcmp(c->ip6.s6_addr + 8, iid, 8) != 0 || memcmp(c->ip6.s6_addr, ll_prefix, 8) == 0 ||
	    is_zero(c->ip6.s6_addr, 8))
		return fail(err, "nic %llu: IPv6 address is not a global prefix + EUI-64",
			    (unsigned long long)c->id);
	if (c->has_ip4 && (c->ip4.s_addr == 0 || c->ip4.s_addr == 0xffffffffu))
		return fail(err, "nic %llu: bad IPv4 address", (unsigned long long)c->id);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Names derive from IDs: a repeated ID would put one name twice into
 * every set (which nft refuses) or two bridges under one name. */
static int ids_unique(const struct netstate *ns, char **err)
{
	size_t n = ns->n_nets > ns->n_nics ? ns->n_nets : ns->n_nics;
	uint64_t *ids = malloc((n + 1) * sizeof(*ids));
	int rc = 0;

	if (ids == NULL) {
		fail(err, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		size_t k = 0;
		for (size_t i = 0; pass == 0 && i < ns->n_nets; i++)
			ids[k++] = ns->nets[i].id;
		for (size_t i = 0; pass == 1 && i < ns->n_nics; i++)
			if (ns->nics[i].active)
				ids[k++] = ns->nics[i].id;
		qsort(ids, k, sizeof(*ids), cmp_u64);
		for (size_t i = 1; i < k && rc == 0; i++)
			if (ids[i] == ids[i - 1])
				rc = fail(err, "%s %llu twice", pass == 0 ? "network" : "nic",
					  (unsigned long long)ids[i]);
	}
	free(ids);
	return rc;
}

int firewall_check(const struct netstate *ns, char **err)
{
	if (err != NULL)
		*err = NULL;
	if (ns == NULL)
		return fail(err, "no snapshot");
	if ((ns->n_nets > 0 && ns->nets == NULL) || (ns->n_nics > 0 && ns->nics == NULL) ||
	    (ns->n_rules > 0 && ns->rules == NULL))
		return fail(err, "snapshot arrays missing");
	for (size_t i = 0; i < ns->n_nets; i++) {
		const struct ns_net *n = &ns->nets[i];
		if (n->id > NET_ID_MAX ||
		    strnlen(n->bridge, sizeof(n->bridge)) == sizeof(n->bridge) ||
		    strcmp(n->bridge, ifname_bridge(n->id).s) != 0)
			return fail(err, "network %llu: bridge name is not %s", (unsigned long long)n->id,
				    ifname_bridge(n->id).s);
		if (n->has_ip4 && (n->len4 < 8 || n->len4 > 30 ||
				   (ntohl(n->net4.s_addr) & (0xffffffffu >> n->len4)) != 0))
			return fail(err, "network %llu: bad IPv4 subnet", (unsigned long long)n->id);
	}
	/* Only NICs of VMs running here reach the ruleset; a bad row elsewhere
	 * must not stop this host's firewall from following the store. */
	for (size_t i = 0; i < ns->n_nics; i++)
		if (ns->nics[i].active && check_nic(&ns->nics[i], err) < 0)
			return -1;
	for (size_t i = 0; i < ns->n_rules; i++)
		if (check_rule(&ns->rules[i], err) < 0)
			return -1;
	if (ns->uplink != NULL && !uplink_valid(ns->uplink))
		return fail(err, "uplink: not a usable interface name");
	if (ns->metadata_port < 0 || ns->metadata_port > 65535)
		return fail(err, "metadata port %d out of range", ns->metadata_port);
	return ids_unique(ns, err);
}

/* ---- the sorted view the text is generated from ------------------------- */

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

static int view_build(const struct netstate *ns, struct view *v, char **err)
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
	    !v->x6)
		goto oom;

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
oom:
	view_free(v);
	fail(err, "out of memory");
	errno = ENOMEM;
	return -1;
}

/* ---- generating the text ------------------------------------------------- */

struct obj {
	enum family fam;
	enum kind kind;
	char *name;                 /* with the version patched in */
	const struct base_chain *base;
};

struct gen {
	char *s;
	size_t len, cap;
	struct obj *objs;           /* every object the text creates */
	size_t n_objs, cap_objs;
	size_t n_elem;              /* elements written into the open set */
	bool oom;
	char version[FIREWALL_VERSION_LEN + 1];
};

static void gen_free(struct gen *g)
{
	free(g->s);
	for (size_t i = 0; i < g->n_objs; i++)
		free(g->objs[i].name);
	free(g->objs);
	memset(g, 0, sizeof(*g));
}

static bool grow(struct gen *g, size_t need)
{
	if (g->len + need + 1 <= g->cap)
		return true;
	size_t cap = g->cap ? g->cap : 65536;
	while (cap < g->len + need + 1)
		cap *= 2;
	char *s = realloc(g->s, cap);
	if (s == NULL) {
		g->oom = true;
		return false;
	}
	g->s = s;
	g->cap = cap;
	return true;
}

static void emit(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (g->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(g->s ? g->s + g->len : NULL, g->s ? g->cap - g->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		g->oom = true;
		return;
	}
	if (g->s == NULL || g->len + (size_t)n + 1 > g->cap) {
		if (!grow(g, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(g->s + g->len, g->cap - g->len, fmt, ap);
		va_end(ap);
	}
	g->len += (size_t)n;
}

/* Record an object the text creates; name is printf'd and may hold V. */
static void obj(struct gen *g, enum family fam, enum kind kind, const struct base_chain *base,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void obj(struct gen *g, enum family fam, enum kind kind, const struct base_chain *base,
		const char *fmt, ...)
{
	va_list ap;
	char *name;

	if (g->oom)
		return;
	if (g->n_objs == g->cap_objs) {
		size_t cap = g->cap_objs ? 2 * g->cap_objs : 64;
		struct obj *o = realloc(g->objs, cap * sizeof(*o));
		if (o == NULL) {
			g->oom = true;
			return;
		}
		g->objs = o;
		g->cap_objs = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&name, fmt, ap) < 0) {
		g->oom = true;
		name = NULL;
	}
	va_end(ap);
	if (name != NULL)
		g->objs[g->n_objs++] = (struct obj){ fam, kind, name, base };
}

/* A named set or map: "type …" line, then elements one per line.  Empty
 * sets are still declared, so that the rules never change shape. */
static void set_open(struct gen *g, enum family fam, enum kind kind, const char *name,
		     const char *type)
{
	obj(g, fam, kind, NULL, "%s-" V, name);
	emit(g, "\t%s %s-" V " {\n\t\t%s\n", kind_name[kind], name, type);
	g->n_elem = 0;
}

static void elem(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void elem(struct gen *g, const char *fmt, ...)
{
	char buf[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	emit(g, "%s%s", g->n_elem++ ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t", buf);
}

static void set_close(struct gen *g)
{
	emit(g, "%s\t}\n", g->n_elem ? "\n\t\t}\n" : "");
}

static void chain_open(struct gen *g, enum family fam, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void chain_open(struct gen *g, enum family fam, const char *fmt, ...)
{
	char name[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	obj(g, fam, KIND_CHAIN, NULL, "%s", name);
	emit(g, "\n\tchain %s {\n", name);
}

static void base_chains_emit(struct gen *g, enum family fam)
{
	for (size_t i = 0; i < N_BASE; i++) {
		const struct base_chain *b = &base_chains[i];
		if (b->fam != fam)
			continue;
		obj(g, fam, KIND_CHAIN, b, "%s", b->name);
		emit(g, "\n\tchain %s {\n\t\ttype %s hook %s priority %s; policy accept;\n"
			"\t\tjump %s-" V "\n\t}\n", b->name, b->type, b->hook, b->prio_text, b->target);
	}
}

static const char *ip4_text(const void *a, char *buf)
{
	return inet_ntop(AF_INET, a, buf, INET_ADDRSTRLEN);
}

static const char *ip6_text(const void *a, char *buf)
{
	return inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN);
}

/* A 128-bit raw payload value as nft writes it for @th,64,128. */
static const char *ip6_hex(const struct in6_addr *a, char buf[35])
{
	static const char hex[] = "0123456789abcdef";

	/* Not snprintf per byte: at 10,000 NICs that was most of the time
	 * spent generating. */
	buf[0] = '0';
	buf[1] = 'x';
	for (int i = 0; i < 16; i++) {
		buf[2 + 2 * i] = hex[a->s6_addr[i] >> 4];
		buf[3 + 2 * i] = hex[a->s6_addr[i] & 15];
	}
	buf[34] = '\0';
	return buf;
}

/* One struct ns_rule as an nft rule (in a per-VM chain). */
static void rule_emit(struct gen *g, const struct ns_rule *r, enum family fam)
{
	char canon[INET6_ADDRSTRLEN + 8];
	int af = rule_family(r, canon, sizeof(canon));   /* checked already */
	const char *l4 = r->proto == NS_PROTO_TCP ? "tcp" : "udp";

	emit(g, "\t\t");
	if (r->source != NULL)
		emit(g, "%s saddr %s ", af == AF_INET ? "ip" : "ip6", canon);
	else if (af != 0 && fam == FAM_BRIDGE)
		emit(g, "ether type %s ", af == AF_INET ? "ip" : "ip6");
	else if (af != 0)
		emit(g, "meta nfproto %s ", af == AF_INET ? "ipv4" : "ipv6");
	switch (r->proto) {
	case NS_PROTO_TCP:
	case NS_PROTO_UDP:
		if (r->port_lo == 0)
			emit(g, "meta l4proto %s ", l4);
		else {
			char ports[16];
			if (r->port_lo == r->port_hi)
				snprintf(ports, sizeof(ports), "%d", r->port_lo);
			else
				snprintf(ports, sizeof(ports), "%d-%d", r->port_lo, r->port_hi);
			emit(g, "%s dport %s ", l4, ports);
		}
		break;
	case NS_PROTO_ICMP:
		emit(g, "meta l4proto %s ", af == AF_INET ? "icmp" : af == AF_INET6 ? "ipv6-icmp" :
		     "{ icmp, ipv6-icmp }");
		break;
	case NS_PROTO_ANY:
		break;
	}
	emit(g, "accept\n");
}

/* The chains of one VM's rules: all of them in the bridge table; only
 * those with a source prefix in the inet table (cross-network). */
static void vm_chains_emit(struct gen *g, const struct view *v, enum family fam)
{
	const uint64_t *vms = fam == FAM_BRIDGE ? v->rule_vms : v->src_vms;
	size_t n = fam == FAM_BRIDGE ? v->n_rule_vms : v->n_src_vms, j = 0;

	for (size_t i = 0; i < n; i++) {
		chain_open(g, fam, "vm-%s-" V, vm_id_format(vms[i]).s);
		while (j < v->n_rules && v->rules[j]->vm_id < vms[i])
			j++;
		for (; j < v->n_rules && v->rules[j]->vm_id == vms[i]; j++)
			if (fam == FAM_BRIDGE || v->rules[j]->source != NULL)
				rule_emit(g, v->rules[j], fam);
		emit(g, "\t}\n");
	}
}

/* The filter of a vxlan port; dir is the port's side of the frame
 * ("iifname" arriving, "oifname" leaving). */
static void peer_chain_emit(struct gen *g, const char *name, const char *dir)
{
	chain_open(g, FAM_BRIDGE, "%s", name);
	emit(g, "\t\tudp dport { 67, 68, 546, 547 } drop\n"
		"\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-redirect } drop\n"
		"\t\t%s . arp saddr ip @gw4-" V " drop\n"
		"\t\t%s . arp daddr ip @gw4-" V " drop\n"
		"\t\t%s . ip saddr @gw4-" V " drop\n"
		"\t\tether type ip6 %s . @nh,64,128 @gw6-" V " drop\n"
		"\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } %s . @th,64,128 @gw6-" V
		" drop\n"
		"\t}\n", dir, dir, dir, dir, dir);
}

static void bridge_table_emit(struct gen *g, const struct view *v)
{
	char a[INET6_ADDRSTRLEN], h[35];

	emit(g, "table bridge " FIREWALL_TABLE " {\n");

	set_open(g, FAM_BRIDGE, KIND_SET, "mac", "type ifname . ether_addr");
	for (size_t i = 0; i < v->n_nics; i++) {
		const uint8_t *m = v->nics[i]->mac;
		elem(g, "\"%s\" . %02x:%02x:%02x:%02x:%02x:%02x", v->nics[i]->ifname,
		     m[0], m[1], m[2], m[3], m[4], m[5]);
	}
	set_close(g);

	set_open(g, FAM_BRIDGE, KIND_SET, "ip4", "type ifname . ipv4_addr");
	for (size_t i = 0; i < v->n_nics; i++)
		if (v->nics[i]->has_ip4)
			elem(g, "\"%s\" . %s", v->nics[i]->ifname, ip4_text(&v->nics[i]->ip4, a));
	set_close(g);

	/* A NIC's IPv6 addresses (link-local, global) as raw 128-bit values:
	 * the nft here cannot name the NDP target (no `icmpv6 taddr`), so it
	 * is matched as the 16 bytes at offset 8 of the ICMPv6 header, which
	 * needs a set of that type; the source address is matched the same
	 * way (offset 8 of the IPv6 header), so that one set serves both —
	 * half the elements of an ipv6_addr set plus a raw one, and element
	 * parsing is what loading costs. */
	set_open(g, FAM_BRIDGE, KIND_SET, "ip6", "typeof iifname . @nh,64,128");
	for (size_t i = 0; i < v->n_nics; i++) {
		elem(g, "\"%s\" . %s", v->nics[i]->ifname, ip6_hex(&v->nics[i]->ll6, h));
		elem(g, "\"%s\" . %s", v->nics[i]->ifname, ip6_hex(&v->nics[i]->ip6, h));
	}
	set_close(g);

	set_open(g, FAM_BRIDGE, KIND_MAP, "vm", "type ifname : verdict");
	for (size_t i = 0; i < v->n_nics; i++)
		if (has_u64(v->rule_vms, v->n_rule_vms, v->nics[i]->vm_id))
			elem(g, "\"%s\" : jump vm-%s-" V, v->nics[i]->ifname,
			     vm_id_format(v->nics[i]->vm_id).s);
	set_close(g);

	/* The overlay: every network's vxlan link, and the host's own
	 * addresses on the network's bridge keyed by that link (so an
	 * address of one network is not taken for another's gateway). */
	set_open(g, FAM_BRIDGE, KIND_SET, "overlay", "type ifname");
	for (size_t i = 0; i < v->n_nets; i++)
		elem(g, "\"%s\"", ifname_vxlan(v->nets[i]->id).s);
	set_close(g);

	set_open(g, FAM_BRIDGE, KIND_SET, "gw4", "type ifname . ipv4_addr");
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in_addr gw = ns_gateway4(v->nets[i]);
		if (v->nets[i]->has_ip4)
			elem(g, "\"%s\" . %s", ifname_vxlan(v->nets[i]->id).s, ip4_text(&gw, a));
	}
	set_close(g);

	/* Raw 128-bit values, for the same reason as ip6-V: NDP targets. */
	struct in6_addr md6;
	inet_pton(AF_INET6, METADATA_IPV6, &md6);
	set_open(g, FAM_BRIDGE, KIND_SET, "gw6", "typeof iifname . @nh,64,128");
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in6_addr gw = ns_gateway6(v->nets[i]);
		elem(g, "\"%s\" . %s", ifname_vxlan(v->nets[i]->id).s, ip6_hex(&gw, h));
		elem(g, "\"%s\" . %s", ifname_vxlan(v->nets[i]->id).s, ip6_hex(&md6, h));
	}
	set_close(g);

	base_chains_emit(g, FAM_BRIDGE);

	chain_open(g, FAM_BRIDGE, "pre-" V);
	emit(g, "\t\t" MARK_CLEAR "\n"
		"\t\tiifname \"" TAP_GLOB "\" goto from-vm-" V "\n"
		"\t\tiifname @overlay-" V " goto from-peer-" V "\n"
		"\t}\n");

	/* Anti-spoofing: a frame from a tap must carry its NIC's MAC and,
	 * per protocol, its NIC's addresses; anything but ARP/IPv4/IPv6
	 * (VLAN tags included) is dropped. */
	chain_open(g, FAM_BRIDGE, "from-vm-" V);
	emit(g, "\t\tiifname . ether saddr != @mac-" V " drop\n"
		"\t\tether type arp goto from-vm-arp-" V "\n"
		"\t\tether type ip goto from-vm-ip4-" V "\n"
		"\t\tether type ip6 goto from-vm-ip6-" V "\n"
		"\t\tdrop\n"
		"\t}\n");

	chain_open(g, FAM_BRIDGE, "from-vm-arp-" V);
	emit(g, "\t\tarp htype != 1 drop\n"
		"\t\tarp ptype != ip drop\n"
		"\t\tarp hlen != 6 drop\n"
		"\t\tarp plen != 4 drop\n"
		"\t\tiifname . arp saddr ether != @mac-" V " drop\n"
		/* RFC 5227 probe: sender 0.0.0.0 before an address is in use. */
		"\t\tarp operation request arp saddr ip 0.0.0.0 accept\n"
		"\t\tiifname . arp saddr ip @ip4-" V " accept\n"
		"\t\tdrop\n"
		"\t}\n");

	chain_open(g, FAM_BRIDGE, "from-vm-ip4-" V);
	emit(g, "\t\tudp sport 67 drop\n"     /* a guest answering DHCP */
		"\t\tip saddr 0.0.0.0 udp sport 68 udp dport 67 accept\n"
		"\t\tiifname . ip saddr @ip4-" V " accept\n"
		"\t\tdrop\n"
		"\t}\n");

	/* IPv6: :: only for what RFC 4861/4862/3810 send before an address
	 * is usable (RS, MLD reports, DAD for one's own address); NDP
	 * advertisements only for one's own targets; router-only messages
	 * (RA, redirect) and DHCPv6 server replies never. */
	chain_open(g, FAM_BRIDGE, "from-vm-ip6-" V);
	emit(g, "\t\ticmpv6 type { nd-router-advert, nd-redirect } drop\n"
		"\t\tudp sport 547 drop\n"
		"\t\tip6 saddr :: icmpv6 type { nd-router-solicit, mld-listener-report, "
		"mld2-listener-report } accept\n"
		"\t\tip6 saddr :: icmpv6 type nd-neighbor-solicit iifname . @th,64,128 @ip6-" V " accept\n"
		"\t\tiifname . @nh,64,128 != @ip6-" V " drop\n"
		"\t\ticmpv6 type nd-neighbor-advert iifname . @th,64,128 != @ip6-" V " drop\n"
		"\t\taccept\n"
		"\t}\n");

	chain_open(g, FAM_BRIDGE, "deliver-" V);
	emit(g, "\t\toifname \"" TAP_GLOB "\" goto to-vm-" V "\n"
		"\t\toifname @overlay-" V " goto to-peer-" V "\n"
		"\t}\n");

	/* Between hosts, both ways: each host's DHCP, routers and gateway
	 * addresses stay its own (see the top of this file). */
	peer_chain_emit(g, "from-peer-" V, "iifname");
	peer_chain_emit(g, "to-peer-" V, "oifname");

	/* Inbound: replies, ICMP/NDP, ARP and the host's DHCP/RA, then the
	 * VM's own rules through the map, then nothing. */
	chain_open(g, FAM_BRIDGE, "to-vm-" V);
	emit(g, "\t\t" MARK_TEST " accept\n"
		"\t\tether type arp accept\n"
		"\t\tmeta l4proto { icmp, ipv6-icmp } accept\n"
		"\t\tudp sport 67 udp dport 68 accept\n"
		"\t\tudp sport 547 udp dport 546 accept\n"
		"\t\toifname vmap @vm-" V "\n"
		"\t\tdrop\n"
		"\t}\n");

	vm_chains_emit(g, v, FAM_BRIDGE);
	emit(g, "}\n");
}

static void inet_table_emit(struct gen *g, const struct view *v, const char *uplink, int md_port)
{
	char a[INET6_ADDRSTRLEN];

	emit(g, "table inet " FIREWALL_TABLE " {\n");

	set_open(g, FAM_INET, KIND_SET, "bridges", "type ifname");
	for (size_t i = 0; i < v->n_nets; i++)
		elem(g, "\"%s\"", v->nets[i]->bridge);
	set_close(g);

	/* Routed from a network back into itself: not a crossing. */
	set_open(g, FAM_INET, KIND_SET, "same", "type ifname . ifname");
	for (size_t i = 0; i < v->n_nets; i++)
		elem(g, "\"%s\" . \"%s\"", v->nets[i]->bridge, v->nets[i]->bridge);
	set_close(g);

	set_open(g, FAM_INET, KIND_MAP, "xvm4", "type ipv4_addr : verdict");
	for (size_t i = 0; i < v->n_x4; i++)
		elem(g, "%s : jump vm-%s-" V, ip4_text(v->x4[i].a, a), vm_id_format(v->x4[i].vm_id).s);
	set_close(g);

	set_open(g, FAM_INET, KIND_MAP, "xvm6", "type ipv6_addr : verdict");
	for (size_t i = 0; i < v->n_x6; i++)
		elem(g, "%s : jump vm-%s-" V, ip6_text(v->x6[i].a, a), vm_id_format(v->x6[i].vm_id).s);
	set_close(g);

	/* The host's own addresses on each bridge, keyed by it: a guest's
	 * DNS goes to its own network's dnsmasq only. */
	set_open(g, FAM_INET, KIND_SET, "dns4", "type ifname . ipv4_addr");
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in_addr gw = ns_gateway4(v->nets[i]);
		if (v->nets[i]->has_ip4)
			elem(g, "\"%s\" . %s", v->nets[i]->bridge, ip4_text(&gw, a));
	}
	set_close(g);

	set_open(g, FAM_INET, KIND_SET, "dns6", "type ifname . ipv6_addr");
	for (size_t i = 0; i < v->n_nets; i++) {
		struct in6_addr gw = ns_gateway6(v->nets[i]);
		elem(g, "\"%s\" . %s", v->nets[i]->bridge, ip6_text(&gw, a));
	}
	set_close(g);

	/* Unversioned like the base chains: its count survives swaps. */
	emit(g, "\tcounter " FIREWALL_GUEST_DROP " {\n\t}\n");

	base_chains_emit(g, FAM_INET);

	/* To the host itself: from a guest (its bridge, or a tap not yet
	 * enslaved) only what a guest needs of its host; the host's own
	 * traffic, the uplink and the underlay are not looked at. */
	chain_open(g, FAM_INET, "in-" V);
	emit(g, "\t\tiifname @bridges-" V " goto guest-in-" V "\n"
		"\t\tiifname \"" TAP_GLOB "\" goto guest-in-" V "\n"
		"\t}\n");

	chain_open(g, FAM_INET, "guest-in-" V);
	emit(g, "\t\tct state established,related accept\n"
		"\t\ticmpv6 type { echo-request, nd-router-solicit, nd-neighbor-solicit, "
		"nd-neighbor-advert } accept\n"
		"\t\ticmp type echo-request accept\n"
		"\t\tudp sport 68 udp dport 67 accept\n"
		"\t\tudp sport 546 udp dport 547 accept\n"
		"\t\tmeta l4proto { tcp, udp } th dport 53 iifname . ip daddr @dns4-" V " accept\n"
		"\t\tmeta l4proto { tcp, udp } th dport 53 iifname . ip6 daddr @dns6-" V " accept\n");
	if (md_port != 0)
		emit(g, "\t\tip daddr " METADATA_IPV4 " tcp dport %d accept\n"
			"\t\tip6 daddr " METADATA_IPV6 " tcp dport %d accept\n", md_port, md_port);
	emit(g, "\t\tcounter name \"" FIREWALL_GUEST_DROP "\" drop\n"
		"\t}\n");

	/* Sent by the host itself into a network. */
	chain_open(g, FAM_INET, "out-" V);
	emit(g, "\t\toifname @bridges-" V " " MARK_CLEAR "\n"
		"\t\toifname @bridges-" V " ct state established,related " MARK_SET "\n"
		"\t}\n");

	chain_open(g, FAM_INET, "fwd-" V);
	emit(g, "\t\toifname @bridges-" V " goto into-net-" V "\n"
		"\t\tiifname @bridges-" V " goto from-net-" V "\n"
		"\t}\n");

	/* Into a network: routed there, or bridged within it (br_netfilter
	 * runs bridged frames through here with the bridge as iif and oif).
	 * DHCP replies are never routed (the host's dnsmasq answers on the
	 * link, through output). */
	chain_open(g, FAM_INET, "into-net-" V);
	emit(g, "\t\t" MARK_CLEAR "\n"
		"\t\tct state established,related " MARK_SET " accept\n"
		"\t\tudp dport { 68, 546 } drop\n"
		"\t\tiifname . oifname @same-" V " accept\n"
		"\t\tiifname @bridges-" V " goto cross-net-" V "\n");
	if (uplink != NULL)
		emit(g, "\t\tiifname \"%s\" accept\n", uplink);
	emit(g, "\t\tdrop\n"
		"\t}\n");

	chain_open(g, FAM_INET, "from-net-" V);
	if (uplink != NULL)
		emit(g, "\t\toifname \"%s\" accept\n", uplink);
	emit(g, "\t\tdrop\n"
		"\t}\n");

	chain_open(g, FAM_INET, "cross-net-" V);
	emit(g, "\t\tip daddr vmap @xvm4-" V "\n"
		"\t\tip6 daddr vmap @xvm6-" V "\n"
		"\t\tdrop\n"
		"\t}\n");

	vm_chains_emit(g, v, FAM_INET);

	chain_open(g, FAM_INET, "nat-" V);
	for (size_t i = 0; uplink != NULL && i < v->n_nets; i++)
		if (v->nets[i]->has_ip4)
			emit(g, "\t\toifname \"%s\" ip saddr %s/%u masquerade\n", uplink,
			     ip4_text(&v->nets[i]->net4, a), v->nets[i]->len4);
	emit(g, "\t}\n");

	emit(g, "}\n");
}

/* Hash the text with its markers, then write the version over them. */
static void version_patch(struct gen *g)
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)g->s, g->len);
	for (int i = 0; i < FIREWALL_VERSION_LEN / 2; i++)
		snprintf(g->version + 2 * i, 3, "%02x", h[i]);
	for (char *p = g->s; (p = memchr(p, MARK_BYTE, g->len - (size_t)(p - g->s))) != NULL;
	     p += FIREWALL_VERSION_LEN)
		memcpy(p, g->version, FIREWALL_VERSION_LEN);
	for (size_t i = 0; i < g->n_objs; i++) {
		char *m = strchr(g->objs[i].name, MARK_BYTE);
		if (m != NULL)
			memcpy(m, g->version, FIREWALL_VERSION_LEN);
	}
}

static int generate(const struct netstate *ns, struct gen *g, char **err)
{
	struct view v;

	memset(g, 0, sizeof(*g));
	if (firewall_check(ns, err) < 0)
		return -1;
	if (view_build(ns, &v, err) < 0)
		return -1;
	emit(g, "# hackcloud firewall " V ": generated from the store, replaced whole on change\n");
	bridge_table_emit(g, &v);
	inet_table_emit(g, &v, ns->uplink, ns->metadata_port);
	view_free(&v);
	if (g->oom) {
		gen_free(g);
		errno = ENOMEM;
		if (err != NULL)
			*err = strdup("out of memory");
		return -1;
	}
	version_patch(g);
	return 0;
}

char *firewall_ruleset(const struct netstate *ns, char **version)
{
	struct gen g;
	char *err = NULL, *text;

	if (version != NULL)
		*version = NULL;
	if (generate(ns, &g, &err) < 0) {
		int saved = errno;
		free(err);
		errno = saved;
		return NULL;
	}
	if (version != NULL && (*version = strdup(g.version)) == NULL) {
		gen_free(&g);
		errno = ENOMEM;
		return NULL;
	}
	text = g.s;
	g.s = NULL;
	gen_free(&g);
	return text;
}

/* ---- applying ------------------------------------------------------------ */

/*
 * br_netfilter hands bridged IPv4/IPv6 frames to the inet hooks, where the
 * "established" bit is computed (see the top of this file).  Both sysctls
 * default to 1 and are per network namespace; make it so.
 */
static int sysctl_ensure_one(const char *path, char **err)
{
	char buf[8] = "";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return fail(err, "%s: %s (br_netfilter is needed for replies to reach VMs)", path,
			    strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0 && buf[0] == '1') {
		close(fd);
		return 0;
	}
	if (pwrite(fd, "1\n", 2, 0) != 2) {
		int saved = errno;
		close(fd);
		return fail(err, "%s: %s", path, strerror(saved));
	}
	close(fd);
	return 0;
}

static int sysctls_ensure(char **err)
{
	if (sysctl_ensure_one("/proc/sys/net/bridge/bridge-nf-call-iptables", err) < 0)
		return -1;
	return sysctl_ensure_one("/proc/sys/net/bridge/bridge-nf-call-ip6tables", err);
}

static struct nft_ctx *nft_open(char **err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);

	if (ctx == NULL) {
		fail(err, "nft: cannot create a context");
		return NULL;
	}
	if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
		nft_ctx_free(ctx);
		fail(err, "nft: cannot buffer output");
		return NULL;
	}
	return ctx;
}

/* Run one command buffer (one transaction); the error text on failure. */
static int nft_run(struct nft_ctx *ctx, const char *cmd, const char *what, char **err)
{
	if (nft_run_cmd_from_buffer(ctx, cmd) == 0)
		return 0;
	const char *e = nft_ctx_get_error_buffer(ctx);
	return fail(err, "nft %s: %.2000s", what, e != NULL && *e ? e : "failed");
}

/* What the kernel holds in the hackcloud tables. */
struct installed {
	struct obj *v;              /* base: the matching base_chains[] entry when
	                               its hook, type, priority and policy agree */
	size_t n, cap;
	bool odd_name;              /* a name we would not dare to write back */
};

static void installed_free(struct installed *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->v[i].name);
	free(in->v);
	memset(in, 0, sizeof(*in));
}

static const struct base_chain *base_of(enum family fam, const char *name, json_t *chain)
{
	for (size_t i = 0; i < N_BASE; i++) {
		const struct base_chain *b = &base_chains[i];
		if (b->fam != fam || strcmp(b->name, name) != 0)
			continue;
		const char *type = json_string_value(json_object_get(chain, "type"));
		const char *hook = json_string_value(json_object_get(chain, "hook"));
		const char *policy = json_string_value(json_object_get(chain, "policy"));
		json_t *prio = json_object_get(chain, "prio");
		if (type && hook && policy && json_is_integer(prio) && strcmp(type, b->type) == 0 &&
		    strcmp(hook, b->hook) == 0 && strcmp(policy, "accept") == 0 &&
		    json_integer_value(prio) == b->prio)
			return b;
		return NULL;
	}
	return NULL;
}

/* Names we create are [a-z0-9-]; anything else in our tables was put
 * there by hand and is not written into a command (see transaction_build). */
static bool name_plain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static int installed_add(struct installed *in, enum family fam, enum kind kind, const char *name,
			 const struct base_chain *base)
{
	if (!name_plain(name)) {
		in->odd_name = true;
		return 0;
	}
	if (in->n == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 64;
		struct obj *o = realloc(in->v, cap * sizeof(*o));
		if (o == NULL)
			return -1;
		in->v = o;
		in->cap = cap;
	}
	struct obj *o = &in->v[in->n];
	if ((o->name = strdup(name)) == NULL)
		return -1;
	o->fam = fam;
	o->kind = kind;
	o->base = base;
	in->n++;
	return 0;
}

/* Parse `nft -j list …` output into in; objects of other tables are
 * ignored. */
static int installed_parse(struct installed *in, const char *text, char **err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr), *items, *it;
	size_t i;

	if (root == NULL || !json_is_array(items = json_object_get(root, "nftables"))) {
		json_decref(root);
		return fail(err, "nft: unreadable listing: %s", root ? "no nftables array" : jerr.text);
	}
	json_array_foreach(items, i, it) {
		const char *key;
		json_t *o;
		json_object_foreach(it, key, o) {
			enum kind kind;
			if (strcmp(key, "chain") == 0)
				kind = KIND_CHAIN;
			else if (strcmp(key, "set") == 0)
				kind = KIND_SET;
			else if (strcmp(key, "map") == 0)
				kind = KIND_MAP;
			else
				continue;
			const char *table = json_string_value(json_object_get(o, "table"));
			const char *family = json_string_value(json_object_get(o, "family"));
			const char *name = json_string_value(json_object_get(o, "name"));
			enum family fam;
			if (!table || !family || !name || strcmp(table, FIREWALL_TABLE) != 0)
				continue;
			if (strcmp(family, family_name[FAM_BRIDGE]) == 0)
				fam = FAM_BRIDGE;
			else if (strcmp(family, family_name[FAM_INET]) == 0)
				fam = FAM_INET;
			else
				continue;
			const struct base_chain *b = kind == KIND_CHAIN ? base_of(fam, name, o) : NULL;
			if (installed_add(in, fam, kind, name, b) < 0) {
				json_decref(root);
				return fail(err, "out of memory");
			}
		}
	}
	json_decref(root);
	return 0;
}

/*
 * The names of every chain, set and map in our tables.  Not `list table`:
 * with nft 1.0.6 that (and even `list tables`) fetches every set element,
 * about 1 s at 10,000 NICs; `list chains` and a terse `list sets` / `list
 * maps` cost a few ms at any size.
 */
static int installed_list(struct nft_ctx *ctx, struct installed *in, char **err)
{
	static const char *const cmds[] = { "list chains", "list sets", "list maps" };
	unsigned flags = nft_ctx_output_get_flags(ctx);
	int rc = 0;

	memset(in, 0, sizeof(*in));
	nft_ctx_output_set_flags(ctx, flags | NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_TERSE);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && rc == 0; i++)
		if (nft_run(ctx, cmds[i], cmds[i], err) < 0 ||
		    installed_parse(in, nft_ctx_get_output_buffer(ctx), err) < 0)
			rc = -1;
	nft_ctx_output_set_flags(ctx, flags);
	if (rc < 0)
		installed_free(in);
	return rc;
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	if (x->fam != y->fam)
		return (int)x->fam - (int)y->fam;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	return strcmp(x->name, y->name);
}

/* Exactly the new version's objects, base chains as we declare them? */
static bool installed_is(struct installed *in, struct gen *g)
{
	if (in->odd_name || in->n != g->n_objs)
		return false;
	qsort(in->v, in->n, sizeof(*in->v), cmp_obj);
	qsort(g->objs, g->n_objs, sizeof(*g->objs), cmp_obj);
	for (size_t i = 0; i < in->n; i++)
		if (cmp_obj(&in->v[i], &g->objs[i]) != 0 || in->v[i].base != g->objs[i].base)
			return false;
	return true;
}

/*
 * The one transaction: flush every installed chain (this drops the old
 * jumps and every reference into the old objects, so the deletions below
 * cannot fail on order), delete every installed set and map and every
 * chain that is not one of our base chains as declared, then load the new
 * script.  Same-named objects of a half-present new version are deleted
 * and recreated like any other.
 */
static int transaction_build(const struct installed *in, const struct gen *g, struct gen *tx)
{
	memset(tx, 0, sizeof(*tx));
	if (in->odd_name) {
		/* Not ours to name: replace both tables whole (still atomic). */
		emit(tx, "add table bridge " FIREWALL_TABLE "\ndelete table bridge " FIREWALL_TABLE "\n"
			 "add table inet " FIREWALL_TABLE "\ndelete table inet " FIREWALL_TABLE "\n%s",
		     g->s);
		return tx->oom ? -1 : 0;
	}
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i].kind == KIND_CHAIN)
			emit(tx, "flush chain %s " FIREWALL_TABLE " %s\n", family_name[in->v[i].fam],
			     in->v[i].name);
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i].kind != KIND_CHAIN)
			emit(tx, "delete %s %s " FIREWALL_TABLE " %s\n", kind_name[in->v[i].kind],
			     family_name[in->v[i].fam], in->v[i].name);
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i].kind == KIND_CHAIN && in->v[i].base == NULL)
			emit(tx, "delete chain %s " FIREWALL_TABLE " %s\n", family_name[in->v[i].fam],
			     in->v[i].name);
	emit(tx, "%s", g->s);
	return tx->oom ? -1 : 0;
}

int firewall_apply(const struct netstate *ns, char **err)
{
	struct gen g, tx = { 0 };
	struct installed in = { 0 };
	struct nft_ctx *ctx = NULL;
	int rc = -1;

	*err = NULL;
	if (generate(ns, &g, err) < 0)
		return -1;
	if (sysctls_ensure(err) < 0 || (ctx = nft_open(err)) == NULL)
		goto out;
	if (installed_list(ctx, &in, err) < 0)
		goto out;
	if (installed_is(&in, &g)) {
		rc = 0;                 /* this version is in place: touch nothing */
		goto out;
	}
	if (transaction_build(&in, &g, &tx) < 0) {
		fail(err, "out of memory");
		goto out;
	}
	rc = nft_run(ctx, tx.s, "apply", err);
out:
	gen_free(&tx);
	installed_free(&in);
	if (ctx != NULL)
		nft_ctx_free(ctx);
	gen_free(&g);
	return rc;
}

int firewall_remove(char **err)
{
	/* "add" first makes "delete" succeed when a table is already gone. */
	static const char cmd[] =
		"add table bridge " FIREWALL_TABLE "\n"
		"delete table bridge " FIREWALL_TABLE "\n"
		"add table inet " FIREWALL_TABLE "\n"
		"delete table inet " FIREWALL_TABLE "\n";
	struct nft_ctx *ctx;
	int rc;

	*err = NULL;
	if ((ctx = nft_open(err)) == NULL)
		return -1;
	rc = nft_run(ctx, cmd, "remove", err);
	nft_ctx_free(ctx);
	return rc;
}
