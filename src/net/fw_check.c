/*
 * fw_check — whether a snapshot can be turned into a ruleset (pure); see
 * firewall.h.  Names derive from IDs and reach the kernel as they are, so
 * every interface name must be exactly the one derived from its ID, every
 * address the one DESIGN §2 derives, every rule well-formed and no ID
 * repeated.  Only NICs of VMs running here are checked: a bad row
 * elsewhere must not stop this host's firewall from following the store.
 */
#include "net/fw_model.h"

#include "common/ids.h"
#include "common/validate.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fw_fail(char **err, const char *fmt, ...)
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
int fw_rule_family(const struct ns_rule *r, char *canon, size_t canon_len)
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
		return fw_fail(err, "rule %llu: VM ID out of range", (unsigned long long)r->id);
	if (r->family != 0 && r->family != AF_INET && r->family != AF_INET6)
		return fw_fail(err, "rule %llu: bad family %d", (unsigned long long)r->id, r->family);
	if ((af = fw_rule_family(r, canon, sizeof(canon))) < 0)
		return fw_fail(err, "rule %llu: source is not a prefix with zero host bits",
			    (unsigned long long)r->id);
	if (r->family != 0 && af != r->family)
		return fw_fail(err, "rule %llu: source does not match its family", (unsigned long long)r->id);
	switch (r->proto) {
	case NS_PROTO_TCP:
	case NS_PROTO_UDP:
		if (r->port_lo == 0 && r->port_hi == 0)
			return 0;
		if (r->port_lo < 1 || r->port_lo > r->port_hi || r->port_hi > 65535)
			return fw_fail(err, "rule %llu: bad port range %d-%d", (unsigned long long)r->id,
				    r->port_lo, r->port_hi);
		return 0;
	case NS_PROTO_ICMP:
	case NS_PROTO_ANY:
		if (r->port_lo != 0 || r->port_hi != 0)
			return fw_fail(err, "rule %llu: ports go with tcp or udp only", (unsigned long long)r->id);
		return 0;
	}
	return fw_fail(err, "rule %llu: bad protocol %d", (unsigned long long)r->id, (int)r->proto);
}

static int check_nic(const struct ns_nic *c, char **err)
{
	uint8_t mac[6], iid[8];
	static const uint8_t ll_prefix[8] = { 0xfe, 0x80 };

	if (c->id > NIC_ID_MAX || c->vm_id > VM_ID_MAX)
		return fw_fail(err, "nic %llu: ID out of range", (unsigned long long)c->id);
	/* The name reaches the ruleset quoted: it must be exactly the one
	 * derived from the ID (which also makes it ^v[0-9a-f]{12}$). */
	if (strnlen(c->ifname, sizeof(c->ifname)) == sizeof(c->ifname) ||
	    strcmp(c->ifname, ifname_tap(c->id).s) != 0)
		return fw_fail(err, "nic %llu: tap name is not %s", (unsigned long long)c->id,
			    ifname_tap(c->id).s);
	nic_mac_bytes(c->id, mac);
	if (memcmp(mac, c->mac, sizeof(mac)) != 0)
		return fw_fail(err, "nic %llu: MAC is not %s", (unsigned long long)c->id,
			    nic_mac_format(c->id).s);
	/* Anti-spoofing lets exactly these addresses through: they must be
	 * the EUI-64 ones of DESIGN §2, never :: or 0.0.0.0. */
	eui64_from_mac(mac, iid);
	if (memcmp(c->ll6.s6_addr, ll_prefix, 8) != 0 || memcmp(c->ll6.s6_addr + 8, iid, 8) != 0)
		return fw_fail(err, "nic %llu: link-local address is not fe80::/64 + EUI-64",
			    (unsigned long long)c->id);
	if (memcmp(c->ip6.s6_addr + 8, iid, 8) != 0 || memcmp(c->ip6.s6_addr, ll_prefix, 8) == 0 ||
	    is_zero(c->ip6.s6_addr, 8))
		return fw_fail(err, "nic %llu: IPv6 address is not a global prefix + EUI-64",
			    (unsigned long long)c->id);
	if (c->has_ip4 && (c->ip4.s_addr == 0 || c->ip4.s_addr == 0xffffffffu))
		return fw_fail(err, "nic %llu: bad IPv4 address", (unsigned long long)c->id);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The IDs of the active NICs, sorted; NULL when out of memory. */
static uint64_t *active_ids(const struct netstate *ns, size_t *n)
{
	uint64_t *ids = malloc((ns->n_nics + 1) * sizeof(*ids));

	*n = 0;
	for (size_t i = 0; ids != NULL && i < ns->n_nics; i++)
		if (ns->nics[i].active)
			ids[(*n)++] = ns->nics[i].id;
	if (ids != NULL)
		sort_array(ids, *n, sizeof(*ids), cmp_u64);
	return ids;
}

static bool has_id(const uint64_t *ids, size_t n, uint64_t id)
{
	return search_array(&id, ids, n, sizeof(*ids), cmp_u64) != NULL;
}

/* A routed prefix of an active NIC reaches anti-spoofing: a global
 * unicast prefix with its host bits zero (never ::/0, link-local or
 * multicast, which would let the NIC send as anyone). */
static int check_prefix(const struct ns_prefix *p, char **err)
{
	const uint8_t *a = p->addr.s6_addr;

	if (p->len < 8 || p->len > 128)
		return fw_fail(err, "prefix of nic %llu: length %u", (unsigned long long)p->nic_id, p->len);
	for (unsigned i = p->len; i < 128; i++)
		if (a[i / 8] & (0x80 >> (i % 8)))
			return fw_fail(err, "prefix of nic %llu: host bits set", (unsigned long long)p->nic_id);
	if (a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || is_zero(a, 16))
		return fw_fail(err, "prefix of nic %llu: not a global unicast prefix",
			       (unsigned long long)p->nic_id);
	return 0;
}

static int cmp_public4(const void *a, const void *b)
{
	const struct ns_public4 *x = *(const struct ns_public4 *const *)a, *y = *(const struct ns_public4 *const *)b;
	return memcmp(&x->addr, &y->addr, sizeof(x->addr));
}

/* Public IPv4 addresses of active NICs: real unicast ones, each once (the
 * map from public to private address has one element per address). */
static int check_public4(const struct netstate *ns, const uint64_t *ids, size_t n_ids, char **err)
{
	const struct ns_public4 **v = calloc(ns->n_public4 + 1, sizeof(*v));
	size_t n = 0;
	int rc = 0;

	if (v == NULL) {
		fw_fail(err, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < ns->n_public4 && rc == 0; i++) {
		const struct ns_public4 *p = &ns->public4[i];
		uint32_t a = ntohl(p->addr.s_addr);
		if (!has_id(ids, n_ids, p->nic_id))
			continue;
		if (a == 0 || a == 0xffffffffu || (a >> 24) == 127 || (a >> 28) == 0xe)
			rc = fw_fail(err, "public IPv4 address of nic %llu: not unicast",
				     (unsigned long long)p->nic_id);
		v[n++] = p;
	}
	sort_array(v, n, sizeof(*v), cmp_public4);
	for (size_t i = 1; i < n && rc == 0; i++)
		if (v[i]->addr.s_addr == v[i - 1]->addr.s_addr)
			rc = fw_fail(err, "public IPv4 address of nic %llu twice",
				     (unsigned long long)v[i]->nic_id);
	free(v);
	return rc;
}

/* Names derive from IDs: a repeated ID would put one name twice into
 * every set (which nft refuses) or two bridges under one name.  nics:
 * the active NICs' IDs, sorted. */
static int ids_unique(const struct netstate *ns, const uint64_t *nics, size_t n_nics, char **err)
{
	uint64_t *ids = malloc((ns->n_nets + 1) * sizeof(*ids));

	if (ids == NULL) {
		fw_fail(err, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < ns->n_nets; i++)
		ids[i] = ns->nets[i].id;
	sort_array(ids, ns->n_nets, sizeof(*ids), cmp_u64);
	for (size_t i = 1; i < ns->n_nets; i++)
		if (ids[i] == ids[i - 1]) {
			unsigned long long twice = ids[i];
			free(ids);
			return fw_fail(err, "network %llu twice", twice);
		}
	free(ids);
	for (size_t i = 1; i < n_nics; i++)
		if (nics[i] == nics[i - 1])
			return fw_fail(err, "nic %llu twice", (unsigned long long)nics[i]);
	return 0;
}

/* What depends on which NICs are active: prefixes, public addresses,
 * repeated IDs. */
static int check_active(const struct netstate *ns, char **err)
{
	size_t n = 0;
	uint64_t *ids = active_ids(ns, &n);
	int rc = 0;

	if (ids == NULL) {
		fw_fail(err, "out of memory");
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < ns->n_prefixes && rc == 0; i++)
		if (has_id(ids, n, ns->prefixes[i].nic_id))
			rc = check_prefix(&ns->prefixes[i], err);
	if (rc == 0)
		rc = check_public4(ns, ids, n, err);
	if (rc == 0)
		rc = ids_unique(ns, ids, n, err);
	free(ids);
	return rc;
}

int firewall_check(const struct netstate *ns, char **err)
{
	if (err != NULL)
		*err = NULL;
	if (ns == NULL)
		return fw_fail(err, "no snapshot");
	if ((ns->n_nets > 0 && ns->nets == NULL) || (ns->n_nics > 0 && ns->nics == NULL) ||
	    (ns->n_rules > 0 && ns->rules == NULL) || (ns->n_prefixes > 0 && ns->prefixes == NULL) ||
	    (ns->n_public4 > 0 && ns->public4 == NULL))
		return fw_fail(err, "snapshot arrays missing");
	for (size_t i = 0; i < ns->n_nets; i++) {
		const struct ns_net *n = &ns->nets[i];
		if (n->id > NET_ID_MAX ||
		    strnlen(n->bridge, sizeof(n->bridge)) == sizeof(n->bridge) ||
		    strcmp(n->bridge, ifname_bridge(n->id).s) != 0)
			return fw_fail(err, "network %llu: bridge name is not %s", (unsigned long long)n->id,
				    ifname_bridge(n->id).s);
		if (n->has_ip4 && (n->len4 < 8 || n->len4 > 30 ||
				   (ntohl(n->net4.s_addr) & (0xffffffffu >> n->len4)) != 0))
			return fw_fail(err, "network %llu: bad IPv4 subnet", (unsigned long long)n->id);
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
		return fw_fail(err, "uplink: not a usable interface name");
	if (ns->metadata_port < 0 || ns->metadata_port > 65535)
		return fw_fail(err, "metadata port %d out of range", ns->metadata_port);
	return check_active(ns, err);
}
