/*
 * fw_rules — a VM's inbound rules as elements of interval sets (pure).
 *
 * A rule accepts a box: a protocol, a range of destination ports and a
 * range of source addresses (its prefix, or all of them).  The kernel's
 * set of concatenated ranges (nft_set_pipapo) refuses elements that
 * overlap, yet rules overlap all the time ("tcp 22 from anywhere" and
 * "tcp 1-1024 from 10.0.0.0/8").  So the boxes of one protocol are cut
 * into disjoint ones covering exactly their union: the address axis is
 * cut at every box's first address and after its last, each piece gets
 * the union of the port ranges of the boxes over it (merged where they
 * overlap or touch), and neighbouring pieces with the same ports are
 * joined again.  Which rule accepted a packet never mattered (every rule
 * accepts), so the union is all the ruleset needs.  "any" rules have no
 * ports: their source ranges are merged on one axis.
 *
 * Rules in a VM are at most a few dozen; the cut is quadratic in them and
 * linear in nothing else.
 */
#include "net/fw_model.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

static u128 addr_max(int af)
{
	return af == AF_INET ? (u128)UINT32_MAX : ~(u128)0;
}

static u128 addr_load(const uint8_t *b, int af)
{
	u128 v = 0;
	for (int i = 0; i < (af == AF_INET ? 4 : 16); i++)
		v = v << 8 | b[i];
	return v;
}

static void addr_store(u128 v, uint8_t *b, int af)
{
	for (int i = (af == AF_INET ? 4 : 16) - 1; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

/* A box while cutting: addresses as numbers. */
struct box {
	uint8_t proto;
	uint16_t plo, phi;
	u128 lo, hi;
};

struct boxes {
	struct box *v;
	size_t n, cap;
	bool oom;
};

static void box_add(struct boxes *b, uint8_t proto, uint16_t plo, uint16_t phi, u128 lo, u128 hi)
{
	if (b->oom)
		return;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct box *v = realloc(b->v, cap * sizeof(*v));
		if (v == NULL) {
			b->oom = true;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = (struct box){ proto, plo, phi, lo, hi };
}

/* The rule's source as a range of af and the rule's family in *raf;
 * false when the rule is of the other family (one without a source and
 * without a family is of both).  The source is canonical "addr/len" with
 * its host bits zero (firewall_check() saw to it), so it is read as it
 * stands: this runs for every rule of every VM at every regeneration. */
static bool source_range(const struct ns_rule *r, int af, int *raf, u128 *lo, u128 *hi)
{
	char addr[INET6_ADDRSTRLEN];
	uint8_t a[16] = { 0 };

	*raf = r->source ? (strchr(r->source, ':') ? AF_INET6 : AF_INET) : r->family;
	if (*raf != 0 && *raf != af)
		return false;
	if (r->source == NULL) {
		*lo = 0;
		*hi = addr_max(af);
		return true;
	}
	const char *slash = strchr(r->source, '/');
	size_t n = slash ? (size_t)(slash - r->source) : strlen(r->source);
	unsigned bits = af == AF_INET ? 32 : 128, plen = slash ? (unsigned)atoi(slash + 1) : bits;
	if (n >= sizeof(addr))
		n = sizeof(addr) - 1;
	memcpy(addr, r->source, n);
	addr[n] = '\0';
	inet_pton(af, addr, a);
	*lo = addr_load(a, af);
	/* (A shift by the full width would be undefined.) */
	*hi = plen >= bits ? *lo : plen == 0 ? addr_max(af) : *lo | (addr_max(af) >> plen);
	return true;
}

static int cmp_u128(const void *a, const void *b)
{
	u128 x = *(const u128 *)a, y = *(const u128 *)b;
	return (x > y) - (x < y);
}

struct prange {
	uint16_t lo, hi;
};

static int cmp_prange(const void *a, const void *b)
{
	const struct prange *x = a, *y = b;
	return x->lo != y->lo ? (int)x->lo - (int)y->lo : (int)x->hi - (int)y->hi;
}

/* Merge sorted port ranges that overlap or touch; returns the new count. */
static size_t pranges_merge(struct prange *p, size_t n)
{
	size_t out = 0;

	sort_array(p, n, sizeof(*p), cmp_prange);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && (uint32_t)p[i].lo <= (uint32_t)p[out - 1].hi + 1) {
			if (p[i].hi > p[out - 1].hi)
				p[out - 1].hi = p[i].hi;
		} else {
			p[out++] = p[i];
		}
	}
	return out;
}

static void emit(struct fw_inbound *out, uint8_t proto, uint16_t plo, uint16_t phi, u128 lo, u128 hi, int af)
{
	if (out->oom)
		return;
	if (out->n_ports == out->cap_ports) {
		size_t cap = out->cap_ports ? 2 * out->cap_ports : 16;
		struct fw_port_elem *v = realloc(out->ports, cap * sizeof(*v));
		if (v == NULL) {
			out->oom = true;
			return;
		}
		out->ports = v;
		out->cap_ports = cap;
	}
	struct fw_port_elem *e = &out->ports[out->n_ports++];
	memset(e, 0, sizeof(*e));
	e->proto = proto;
	e->port_lo = plo;
	e->port_hi = phi;
	addr_store(lo, e->src_lo, af);
	addr_store(hi, e->src_hi, af);
}

/*
 * The boxes of one protocol (b->v[first .. first + n)), cut into disjoint
 * ones (see the top of this file).  cuts and pr are scratch space for 2n
 * and n items.
 */
static void cut(const struct box *v, size_t n, int af, u128 *cuts, struct prange *pr,
		struct prange *prev, struct fw_inbound *out)
{
	size_t nc = 0, n_prev = 0;
	u128 max = addr_max(af), run_lo = 0;

	for (size_t i = 0; i < n; i++) {
		cuts[nc++] = v[i].lo;
		if (v[i].hi != max)
			cuts[nc++] = v[i].hi + 1;
	}
	sort_array(cuts, nc, sizeof(*cuts), cmp_u128);
	for (size_t k = 0; k < nc; k++) {
		if (k > 0 && cuts[k] == cuts[k - 1])
			continue;
		u128 lo = cuts[k];
		/* Every box covers this piece whole or not at all. */
		size_t np = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].lo <= lo && v[i].hi >= lo)
				pr[np++] = (struct prange){ v[i].plo, v[i].phi };
		np = pranges_merge(pr, np);
		/* The same ports as the run before, right next to it: extend it. */
		if (n_prev > 0 && np == n_prev && memcmp(pr, prev, np * sizeof(*pr)) == 0)
			continue;
		for (size_t i = 0; i < n_prev; i++)
			emit(out, v[0].proto, prev[i].lo, prev[i].hi, run_lo, lo - 1, af);
		memcpy(prev, pr, np * sizeof(*pr));
		n_prev = np;
		run_lo = lo;
	}
	for (size_t i = 0; i < n_prev; i++)
		emit(out, v[0].proto, prev[i].lo, prev[i].hi, run_lo, max, af);
}

static int cmp_box_proto(const void *a, const void *b)
{
	const struct box *x = a, *y = b;
	return (int)x->proto - (int)y->proto;
}

static int cmp_box_lo(const void *a, const void *b)
{
	const struct box *x = a, *y = b;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Source ranges of "any" rules, merged where they overlap or touch. */
static void any_merge(struct boxes *b, int af, struct fw_inbound *out)
{
	u128 max = addr_max(af);
	size_t n = 0;

	sort_array(b->v, b->n, sizeof(*b->v), cmp_box_lo);
	for (size_t i = 0; i < b->n; i++) {
		if (n > 0 && (b->v[n - 1].hi == max || b->v[i].lo <= b->v[n - 1].hi + 1)) {
			if (b->v[i].hi > b->v[n - 1].hi)
				b->v[n - 1].hi = b->v[i].hi;
		} else {
			b->v[n++] = b->v[i];
		}
	}
	for (size_t i = 0; i < n && !out->oom; i++) {
		if (out->n_any == out->cap_any) {
			size_t cap = out->cap_any ? 2 * out->cap_any : 8;
			struct fw_src_range *v = realloc(out->any, cap * sizeof(*v));
			if (v == NULL) {
				out->oom = true;
				return;
			}
			out->any = v;
			out->cap_any = cap;
		}
		struct fw_src_range *r = &out->any[out->n_any++];
		memset(r, 0, sizeof(*r));
		addr_store(b->v[i].lo, r->lo, af);
		addr_store(b->v[i].hi, r->hi, af);
	}
}

int fw_rules_inbound(const struct ns_rule *const *rules, size_t n, int af, struct fw_inbound *out)
{
	struct boxes ports = { 0 }, any = { 0 };
	u128 *cuts = NULL;
	struct prange *pr = NULL, *prev = NULL;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const struct ns_rule *r = rules[i];
		u128 lo, hi;
		int raf;
		if (!source_range(r, af, &raf, &lo, &hi))
			continue;
		uint16_t plo = r->port_lo ? (uint16_t)r->port_lo : 0, phi = r->port_lo ? (uint16_t)r->port_hi : 65535;
		switch (r->proto) {
		case NS_PROTO_TCP:
			box_add(&ports, IPPROTO_TCP, plo, phi, lo, hi);
			break;
		case NS_PROTO_UDP:
			box_add(&ports, IPPROTO_UDP, plo, phi, lo, hi);
			break;
		case NS_PROTO_ICMP:
			/* As the rule chains had it: "meta l4proto icmp" for an IPv4
			 * rule, ipv6-icmp for an IPv6 one, either for one of both. */
			if (raf != AF_INET6)
				box_add(&ports, IPPROTO_ICMP, 0, 65535, lo, hi);
			if (raf != AF_INET)
				box_add(&ports, IPPROTO_ICMPV6, 0, 65535, lo, hi);
			break;
		case NS_PROTO_ANY:
			box_add(&any, 0, 0, 0, lo, hi);
			break;
		}
	}
	cuts = calloc(2 * ports.n + 1, sizeof(*cuts));
	pr = calloc(ports.n + 1, sizeof(*pr));
	prev = calloc(ports.n + 1, sizeof(*prev));
	if (ports.oom || any.oom || cuts == NULL || pr == NULL || prev == NULL) {
		out->oom = true;
		goto out;
	}
	sort_array(ports.v, ports.n, sizeof(*ports.v), cmp_box_proto);
	for (size_t i = 0, j; i < ports.n; i = j) {
		for (j = i; j < ports.n && ports.v[j].proto == ports.v[i].proto; j++)
			;
		cut(ports.v + i, j - i, af, cuts, pr, prev, out);
	}
	any_merge(&any, af, out);
out:
	free(cuts);
	free(pr);
	free(prev);
	free(ports.v);
	free(any.v);
	if (out->oom) {
		fw_inbound_free(out);
		out->oom = true;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void fw_inbound_free(struct fw_inbound *in)
{
	free(in->ports);
	free(in->any);
	memset(in, 0, sizeof(*in));
}
