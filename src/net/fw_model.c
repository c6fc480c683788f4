/*
 * fw_model — building the ruleset model and its version; see fw_model.h.
 */
#include "net/fw_model.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fw_family_name[FW_N_FAMILIES] = { "bridge", "inet" };

/* nft's datatype numbers (set keys) and protocol ids (typeof user data),
 * as nft 1.0.6 sends them; the unit test compares the kernel's listing
 * of our batch with that of nft's own, which catches any mistake here. */
enum { DT_INTEGER = 4, DT_IPV4 = 7, DT_IPV6 = 8, DT_ETHER = 9, DT_INET_PROTO = 12,
       DT_INET_SERVICE = 13, DT_ICMPV6_TYPE = 29, DT_IFNAME = FW_DTYPE_IFNAME };
enum { BO_NONE = 0, BO_HOST = 1, BO_BIG = 2 };
enum { PROTO_UDP = 6, PROTO_ICMPV6 = 14 };

#define META(t, k, l, dt)  { t, FW_LOAD_META, k, 0, l, FW_DEP_NONE, dt, BO_HOST, 0, 0 }
#define PAY(t, b, o, l, d, dt, bo) { t, FW_LOAD_PAYLOAD, NFT_PAYLOAD_##b##_HEADER, o, l, d, dt, bo, 0, 0 }

const struct fw_field_desc fw_fields[FW_N_FIELDS] = {
	[FW_IIFNAME]     = META("iifname", NFT_META_IIFNAME, 16, DT_IFNAME),
	[FW_OIFNAME]     = META("oifname", NFT_META_OIFNAME, 16, DT_IFNAME),
	[FW_MARK]        = META("meta mark", NFT_META_MARK, 4, DT_INTEGER),
	[FW_NFPROTO]     = META("meta nfproto", NFT_META_NFPROTO, 1, DT_INTEGER),
	[FW_L4PROTO]     = META("meta l4proto", NFT_META_L4PROTO, 1, DT_INET_PROTO),
	[FW_CT_STATE]    = { "ct state", FW_LOAD_CT, NFT_CT_STATE, 0, 4, FW_DEP_NONE, DT_INTEGER, BO_HOST, 0, 0 },
	[FW_ETHER_SADDR] = PAY("ether saddr", LL, 6, 6, FW_DEP_NONE, DT_ETHER, BO_BIG),
	[FW_ETHER_TYPE]  = PAY("ether type", LL, 12, 2, FW_DEP_NONE, DT_INTEGER, BO_BIG),
	[FW_ARP_HTYPE]   = PAY("arp htype", NETWORK, 0, 2, FW_DEP_ARP, DT_INTEGER, BO_BIG),
	[FW_ARP_PTYPE]   = PAY("arp ptype", NETWORK, 2, 2, FW_DEP_ARP, DT_INTEGER, BO_BIG),
	[FW_ARP_HLEN]    = PAY("arp hlen", NETWORK, 4, 1, FW_DEP_ARP, DT_INTEGER, BO_BIG),
	[FW_ARP_PLEN]    = PAY("arp plen", NETWORK, 5, 1, FW_DEP_ARP, DT_INTEGER, BO_BIG),
	[FW_ARP_OP]      = PAY("arp operation", NETWORK, 6, 2, FW_DEP_ARP, DT_INTEGER, BO_BIG),
	[FW_ARP_SHA]     = PAY("arp saddr ether", NETWORK, 8, 6, FW_DEP_ARP, DT_ETHER, BO_BIG),
	[FW_ARP_SPA]     = PAY("arp saddr ip", NETWORK, 14, 4, FW_DEP_ARP, DT_IPV4, BO_BIG),
	[FW_ARP_TPA]     = PAY("arp daddr ip", NETWORK, 24, 4, FW_DEP_ARP, DT_IPV4, BO_BIG),
	[FW_IP_SADDR]    = PAY("ip saddr", NETWORK, 12, 4, FW_DEP_IP, DT_IPV4, BO_BIG),
	[FW_IP_DADDR]    = PAY("ip daddr", NETWORK, 16, 4, FW_DEP_IP, DT_IPV4, BO_BIG),
	[FW_IP6_SADDR]   = PAY("ip6 saddr", NETWORK, 8, 16, FW_DEP_IP6, DT_IPV6, BO_BIG),
	[FW_IP6_DADDR]   = PAY("ip6 daddr", NETWORK, 24, 16, FW_DEP_IP6, DT_IPV6, BO_BIG),
	[FW_NH_64_128]   = PAY("@nh,64,128", NETWORK, 8, 16, FW_DEP_NONE, DT_INTEGER, BO_BIG),
	[FW_TH_64_128]   = PAY("@th,64,128", TRANSPORT, 8, 16, FW_DEP_NONE, DT_INTEGER, BO_BIG),
	[FW_UDP_SPORT]   = PAY("udp sport", TRANSPORT, 0, 2, FW_DEP_UDP, DT_INET_SERVICE, BO_BIG),
	[FW_UDP_DPORT]   = { "udp dport", FW_LOAD_PAYLOAD, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, FW_DEP_UDP,
			     DT_INET_SERVICE, BO_BIG, PROTO_UDP, 2 },
	[FW_UDP_PORTS]   = PAY("udp sport . dport", TRANSPORT, 0, 4, FW_DEP_UDP, DT_INTEGER, BO_BIG),
	[FW_TCP_DPORT]   = PAY("tcp dport", TRANSPORT, 2, 2, FW_DEP_TCP, DT_INET_SERVICE, BO_BIG),
	[FW_TH_DPORT]    = PAY("th dport", TRANSPORT, 2, 2, FW_DEP_NONE, DT_INET_SERVICE, BO_BIG),
	[FW_ICMP_TYPE]   = PAY("icmp type", TRANSPORT, 0, 1, FW_DEP_ICMP, DT_INTEGER, BO_BIG),
	[FW_ICMPV6_TYPE] = { "icmpv6 type", FW_LOAD_PAYLOAD, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, FW_DEP_ICMPV6,
			     DT_ICMPV6_TYPE, BO_BIG, PROTO_ICMPV6, 1 },
};

/* The base chains, in the order they are declared.  prio is the number
 * the kernel reports for prio_text. */
const struct fw_base fw_bases[] = {
	/* Before br_netfilter (bridge priority 0): spoofed frames never
	 * reach conntrack or the inet hooks, stale mark bits are cleared. */
	{ FW_BRIDGE, "prerouting", "filter", "prerouting", "filter", NF_INET_PRE_ROUTING, -200 },
	/* After br_netfilter's forward hook (0), which runs the inet forward
	 * chain that sets the "established" bit of bridged frames. */
	{ FW_BRIDGE, "forward", "filter", "forward", "100", NF_INET_FORWARD, 100 },
	{ FW_BRIDGE, "output", "filter", "output", "100", NF_INET_LOCAL_OUT, 100 },
	{ FW_INET, "input", "filter", "input", "filter", NF_INET_LOCAL_IN, 0 },
	{ FW_INET, "forward", "filter", "forward", "filter", NF_INET_FORWARD, 0 },
	{ FW_INET, "output", "filter", "output", "filter", NF_INET_LOCAL_OUT, 0 },
	{ FW_INET, "postrouting", "nat", "postrouting", "srcnat", NF_INET_POST_ROUTING, 100 },
	/* Public IPv4 addresses mapped 1:1 to VMs, inbound (see fw_gen.c). */
	{ FW_INET, "prerouting", "nat", "prerouting", "dstnat", NF_INET_PRE_ROUTING, -100 },
};
const size_t fw_n_bases = sizeof(fw_bases) / sizeof(fw_bases[0]);

void fw_model_init(struct fw_model *m)
{
	memset(m, 0, sizeof(*m));
	m->filling = UINT32_MAX;
}

void fw_model_free(struct fw_model *m)
{
	for (size_t i = 0; i < m->n_sets; i++) {
		free(m->sets[i].elems);
		free(m->sets[i].data);
	}
	free(m->sets);
	free(m->chains);
	free(m->rules);
	free(m->matches);
	memset(m, 0, sizeof(*m));
}

/* Room for one more item of an array; false (and m->oom) when there is none. */
static bool reserve(struct fw_model *m, void **v, size_t n, size_t *cap, size_t size)
{
	if (m->oom)
		return false;
	if (n < *cap)
		return true;
	size_t c = *cap ? 2 * *cap : 64;
	void *p = realloc(*v, c * size);
	if (p == NULL) {
		m->oom = true;
		return false;
	}
	*v = p;
	*cap = c;
	return true;
}
#define RESERVE(m, arr, n, cap) reserve(m, (void **)&(m)->arr, (m)->n, &(m)->cap, sizeof(*(m)->arr))

static uint8_t key_len(unsigned n_keys, const uint8_t *keys)
{
	unsigned len = 0;

	if (n_keys == 1)
		return fw_fields[keys[0]].len;
	for (unsigned i = 0; i < n_keys; i++)
		len += (fw_fields[keys[i]].len + 3u) & ~3u;
	return (uint8_t)len;
}

uint32_t fw_model_set(struct fw_model *m, enum fw_family fam, enum fw_set_kind kind, bool by_typeof,
		      const char *name, unsigned n_keys, const uint8_t *keys)
{
	if (n_keys == 0 || n_keys > FW_KEYS_MAX || !RESERVE(m, sets, n_sets, cap_sets))
		return m->oom = true, 0;
	struct fw_set *s = &m->sets[m->n_sets];
	memset(s, 0, sizeof(*s));
	s->fam = fam;
	s->kind = kind;
	s->by_typeof = by_typeof;
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
	s->n_keys = (uint8_t)n_keys;
	memcpy(s->keys, keys, n_keys);
	s->key_len = key_len(n_keys, keys);
	return (uint32_t)m->n_sets++;
}

uint32_t fw_model_iset(struct fw_model *m, enum fw_family fam, const char *name, unsigned n_keys,
		       const uint8_t *keys)
{
	uint32_t set = fw_model_set(m, fam, FW_SET, false, name, n_keys, keys);

	if (n_keys < 2)         /* a single field would be another kind of set */
		m->oom = true;
	if (!m->oom)
		m->sets[set].interval = true;
	return set;
}

uint32_t fw_model_map(struct fw_model *m, enum fw_family fam, const char *name, enum fw_field key,
		       enum fw_field data_field)
{
	uint8_t k = (uint8_t)key;
	uint32_t set = fw_model_set(m, fam, FW_MAP, false, name, 1, &k);

	if (!m->oom)
		m->sets[set].data_field = (uint8_t)data_field;
	return set;
}

/* Bytes one element's keys take: the first key, and the last when interval. */
static size_t elem_size(const struct fw_set *s)
{
	return s->interval ? 2u * s->key_len : s->key_len;
}

static bool grow(void **p, size_t n, size_t size)
{
	void *q = realloc(*p, n * size);
	if (q != NULL)
		*p = q;
	return q != NULL;
}

static bool elem_reserve(struct fw_model *m, struct fw_set *s)
{
	if (m->oom)
		return false;
	if (s->n_elems < s->cap_elems)
		return true;
	size_t c = s->cap_elems ? 2 * s->cap_elems : 16;
	bool ok = grow((void **)&s->elems, c, elem_size(s));
	if (ok && s->kind == FW_MAP)
		ok = grow((void **)&s->data, c, fw_fields[s->data_field].len);
	if (!ok) {
		m->oom = true;
		return false;
	}
	s->cap_elems = c;
	return true;
}

/* The fields' values, each padded to 4 bytes, into e (key_len bytes). */
static void key_pack(const struct fw_set *s, uint8_t *e, const void *const *values)
{
	memset(e, 0, s->key_len);
	for (unsigned i = 0, off = 0; i < s->n_keys; i++) {
		const struct fw_field_desc *d = &fw_fields[s->keys[i]];
		/* An interface name is a string: the kernel compares all 16
		 * bytes, so whatever follows its NUL must be zeros. */
		size_t n = d->dtype == FW_DTYPE_IFNAME ? strnlen(values[i], d->len) : d->len;
		memcpy(e + off, values[i], n);
		off += (d->len + 3u) & ~3u;
	}
}

void fw_model_elem(struct fw_model *m, uint32_t set, const void *const *values)
{
	struct fw_set *s = &m->sets[set];

	if (s->interval || s->kind == FW_MAP) {         /* not the call for these */
		m->oom = true;
		return;
	}
	if (!elem_reserve(m, s))
		return;
	key_pack(s, s->elems + s->n_elems * s->key_len, values);
	s->n_elems++;
}

void fw_model_elem_range(struct fw_model *m, uint32_t set, const void *const *lo, const void *const *hi)
{
	struct fw_set *s = &m->sets[set];

	if (!s->interval) {
		m->oom = true;
		return;
	}
	if (!elem_reserve(m, s))
		return;
	uint8_t *e = s->elems + s->n_elems * elem_size(s);
	key_pack(s, e, lo);
	key_pack(s, e + s->key_len, hi);
	s->n_elems++;
}

void fw_model_elem_data(struct fw_model *m, uint32_t set, const void *key, const void *data)
{
	struct fw_set *s = &m->sets[set];
	size_t n = fw_fields[s->data_field].len;

	if (s->kind != FW_MAP) {
		m->oom = true;
		return;
	}
	if (!elem_reserve(m, s))
		return;
	key_pack(s, s->elems + s->n_elems * s->key_len, &key);
	memcpy(s->data + s->n_elems * n, data, n);
	s->n_elems++;
}

uint32_t fw_model_anon(struct fw_model *m, enum fw_family fam, enum fw_field key, const char *text,
		       unsigned n, const void *values)
{
	uint8_t k = (uint8_t)key;
	uint32_t set = fw_model_set(m, fam, FW_ANON, false, NULL, 1, &k);

	if (m->oom)
		return 0;
	m->sets[set].text = text;
	for (unsigned i = 0; i < n; i++) {
		const void *v = (const uint8_t *)values + i * fw_fields[key].len;
		fw_model_elem(m, set, &v);
	}
	return set;
}

uint32_t fw_model_base(struct fw_model *m, const struct fw_base *b)
{
	if (!RESERVE(m, chains, n_chains, cap_chains))
		return 0;
	struct fw_chain *c = &m->chains[m->n_chains];
	memset(c, 0, sizeof(*c));
	c->fam = b->fam;
	snprintf(c->name, sizeof(c->name), "%s", b->name);
	c->base = b;
	return (uint32_t)m->n_chains++;
}

uint32_t fw_model_chain(struct fw_model *m, enum fw_family fam, const char *fmt, ...)
{
	va_list ap;

	if (!RESERVE(m, chains, n_chains, cap_chains))
		return 0;
	struct fw_chain *c = &m->chains[m->n_chains];
	memset(c, 0, sizeof(*c));
	c->fam = fam;
	va_start(ap, fmt);
	vsnprintf(c->name, sizeof(c->name), fmt, ap);
	va_end(ap);
	return (uint32_t)m->n_chains++;
}

void fw_model_fill(struct fw_model *m, uint32_t chain)
{
	if (m->oom)
		return;
	m->filling = chain;
	m->chains[chain].first_rule = (uint32_t)m->n_rules;
	m->chains[chain].n_rules = 0;
}

/* The matches of the rule being built start where the last rule ended. */
static size_t rule_start(const struct fw_model *m)
{
	if (m->n_rules == 0)
		return 0;
	const struct fw_rule *r = &m->rules[m->n_rules - 1];
	return r->first + r->n;
}

struct fw_match *fw_model_match(struct fw_model *m, enum fw_match_kind kind, enum fw_field key)
{
	if (!RESERVE(m, matches, n_matches, cap_matches))
		return NULL;
	struct fw_match *x = &m->matches[m->n_matches++];
	memset(x, 0, sizeof(*x));
	x->kind = (uint8_t)kind;
	x->n_keys = 1;
	x->keys[0] = (uint8_t)key;
	x->len = fw_fields[key].len;
	return x;
}

void fw_model_end(struct fw_model *m, enum fw_stmt stmt, enum fw_verdict verdict, uint32_t target)
{
	if (m->filling == UINT32_MAX || !RESERVE(m, rules, n_rules, cap_rules))
		return (void)(m->oom = true);
	size_t first = rule_start(m);
	m->rules[m->n_rules] = (struct fw_rule){ .chain = m->filling, .first = (uint32_t)first,
						 .n = (uint32_t)(m->n_matches - first), .stmt = (uint8_t)stmt,
						 .verdict = (uint8_t)verdict, .target = target };
	m->n_rules++;
	m->chains[m->filling].n_rules++;
}

void fw_model_end_nat(struct fw_model *m, enum fw_stmt stmt, uint32_t map)
{
	fw_model_end(m, stmt, FW_V_NONE, 0);
	if (!m->oom)
		m->rules[m->n_rules - 1].stmt_set = map;
}

/* ---- the version ------------------------------------------------------------ */

static void hash_u32(crypto_hash_sha256_state *h, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	crypto_hash_sha256_update(h, b, sizeof(b));
}

static void hash_str(crypto_hash_sha256_state *h, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	hash_u32(h, (uint32_t)n);
	crypto_hash_sha256_update(h, (const unsigned char *)(s ? s : ""), n);
}

/* Everything a renderer reads, field by field (no struct padding). */
int fw_model_finish(struct fw_model *m)
{
	crypto_hash_sha256_state h;
	unsigned char d[crypto_hash_sha256_BYTES];

	if (m->oom) {
		errno = ENOMEM;
		return -1;
	}
	crypto_hash_sha256_init(&h);
	for (size_t i = 0; i < m->n_sets; i++) {
		const struct fw_set *s = &m->sets[i];
		hash_u32(&h, (uint32_t)s->fam << 24 | (uint32_t)s->kind << 16 | (uint32_t)s->interval << 8 |
				     s->by_typeof);
		hash_str(&h, s->name);
		hash_str(&h, s->text);
		hash_u32(&h, s->n_keys);
		crypto_hash_sha256_update(&h, s->keys, s->n_keys);
		hash_u32(&h, s->data_field);
		hash_u32(&h, (uint32_t)s->n_elems);
		crypto_hash_sha256_update(&h, s->elems ? s->elems : (const uint8_t *)"",
					  s->n_elems * elem_size(s));
		if (s->kind == FW_MAP)
			crypto_hash_sha256_update(&h, s->data ? s->data : (const uint8_t *)"",
						  s->n_elems * fw_fields[s->data_field].len);
	}
	for (size_t i = 0; i < m->n_chains; i++) {
		const struct fw_chain *c = &m->chains[i];
		hash_u32(&h, (uint32_t)c->fam);
		hash_str(&h, c->name);
		hash_u32(&h, c->base ? (uint32_t)(c->base - fw_bases) : UINT32_MAX);
		hash_u32(&h, c->first_rule);
		hash_u32(&h, c->n_rules);
	}
	for (size_t i = 0; i < m->n_rules; i++) {
		const struct fw_rule *r = &m->rules[i];
		hash_u32(&h, r->chain);
		hash_u32(&h, r->n);
		for (uint32_t j = 0; j < r->n; j++) {
			const struct fw_match *x = &m->matches[r->first + j];
			hash_u32(&h, (uint32_t)x->kind << 24 | (uint32_t)x->neq << 16 | (uint32_t)x->n_keys << 8 |
					     x->len);
			crypto_hash_sha256_update(&h, x->keys, x->n_keys);
			hash_u32(&h, x->set);
			crypto_hash_sha256_update(&h, x->value, sizeof(x->value));
			crypto_hash_sha256_update(&h, x->aux, sizeof(x->aux));
			hash_str(&h, x->text);
		}
		hash_u32(&h, (uint32_t)r->stmt << 8 | r->verdict);
		hash_u32(&h, r->target);
		hash_u32(&h, r->stmt_set);
	}
	for (int f = 0; f < FW_N_FAMILIES; f++)
		hash_u32(&h, m->has_counter[f]);
	crypto_hash_sha256_final(&h, d);
	for (int i = 0; i < FIREWALL_VERSION_LEN / 2; i++)
		snprintf(m->version + 2 * i, 3, "%02x", d[i]);
	return 0;
}
