/*
 * fw_batch — the model as netlink messages; see fw_batch.h.
 *
 * Rules are built with libnftnl expressions, the way nft linearizes the
 * same text: a field's protocol dependency first (fw_fields[].dep, only
 * when the rule has not established that protocol already), then the
 * load into register 1 (concatenations fill consecutive 32-bit
 * registers), then the comparison or lookup.  Set elements, the bulk of
 * the batch, are written as attributes directly (libmnl): no allocation
 * per element.
 */
#include "net/fw_batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most one message may take: elements are cut into messages below it. */
#define MSG_MAX   (64 * 1024)
#define ELEMS_CUT (48 * 1024)

static const uint16_t nfproto[FW_N_FAMILIES] = { NFPROTO_BRIDGE, NFPROTO_INET };

/* ---- the buffer --------------------------------------------------------------- */

static char *room(struct fw_batch *b)
{
	if (b->oom)
		return NULL;
	if (b->cap - b->len < MSG_MAX) {
		size_t cap = b->cap ? 2 * b->cap : 1 << 20;
		while (cap - b->len < MSG_MAX)
			cap *= 2;
		char *p = realloc(b->buf, cap);
		if (p == NULL) {
			b->oom = true;
			return NULL;
		}
		b->buf = p;
		b->cap = cap;
	}
	return b->buf + b->len;
}

static struct nlmsghdr *msg(struct fw_batch *b, uint16_t type, enum fw_family fam, uint16_t flags)
{
	char *p = room(b);
	return p ? nftnl_nlmsg_build_hdr(p, type, nfproto[fam], flags, ++b->seq) : NULL;
}

static void done(struct fw_batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

void fw_batch_begin(struct fw_batch *b, uint32_t seq)
{
	memset(b, 0, sizeof(*b));
	b->first_seq = b->seq = seq;
	char *p = room(b);
	if (p != NULL)
		done(b, nftnl_batch_begin(p, seq));
}

int fw_batch_end(struct fw_batch *b)
{
	char *p = room(b);

	if (p == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* The last real message asks for an acknowledgement (see fw_batch.h);
	 * it is the one before the end, found by walking the batch. */
	struct nlmsghdr *last = NULL;
	for (size_t off = 0; off < b->len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(b->buf + off);
		last = h;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	if (last != NULL && last->nlmsg_seq != b->first_seq)
		last->nlmsg_flags |= NLM_F_ACK;
	done(b, nftnl_batch_end(p, ++b->seq));
	return 0;
}

void fw_batch_free(struct fw_batch *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/* ---- deleting ------------------------------------------------------------------- */

static void named(struct fw_batch *b, uint16_t type, enum fw_family fam, const char *name, bool chain)
{
	struct nlmsghdr *nlh = msg(b, type, fam, 0);
	if (nlh == NULL)
		return;
	mnl_attr_put_strz(nlh, chain ? NFTA_CHAIN_TABLE : NFTA_SET_TABLE, FIREWALL_TABLE);
	if (name != NULL)
		mnl_attr_put_strz(nlh, chain ? NFTA_CHAIN_NAME : NFTA_SET_NAME, name);
	done(b, nlh);
}

void fw_batch_flush_chain(struct fw_batch *b, enum fw_family fam, const char *name)
{
	/* DELRULE with a chain and no handle: every rule of the chain. */
	struct nlmsghdr *nlh = msg(b, NFT_MSG_DELRULE, fam, 0);
	if (nlh == NULL)
		return;
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, FIREWALL_TABLE);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, name);
	done(b, nlh);
}

void fw_batch_del_chain(struct fw_batch *b, enum fw_family fam, const char *name)
{
	named(b, NFT_MSG_DELCHAIN, fam, name, true);
}

void fw_batch_del_set(struct fw_batch *b, enum fw_family fam, const char *name)
{
	named(b, NFT_MSG_DELSET, fam, name, false);
}

static void table_add(struct fw_batch *b, enum fw_family fam)
{
	struct nlmsghdr *nlh = msg(b, NFT_MSG_NEWTABLE, fam, NLM_F_CREATE);
	if (nlh == NULL)
		return;
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, FIREWALL_TABLE);
	mnl_attr_put_u32(nlh, NFTA_TABLE_FLAGS, 0);
	done(b, nlh);
}

void fw_batch_del_table(struct fw_batch *b, enum fw_family fam)
{
	table_add(b, fam);
	struct nlmsghdr *nlh = msg(b, NFT_MSG_DELTABLE, fam, 0);
	if (nlh == NULL)
		return;
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, FIREWALL_TABLE);
	done(b, nlh);
}

/* ---- chains, the counter, sets ---------------------------------------------------- */

static void versioned(char *out, size_t len, const char *name, const struct fw_model *m)
{
	snprintf(out, len, "%s-%s", name, m->version);
}

static void chain_add(struct fw_batch *b, const struct fw_model *m, const struct fw_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	char name[64];
	struct nlmsghdr *nlh;

	if (ch == NULL || (nlh = msg(b, NFT_MSG_NEWCHAIN, c->fam, NLM_F_CREATE)) == NULL) {
		b->oom = true;
		nftnl_chain_free(ch);
		return;
	}
	if (c->base != NULL)
		snprintf(name, sizeof(name), "%s", c->name);
	else
		versioned(name, sizeof(name), c->name, m);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, FIREWALL_TABLE);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, name);
	if (c->base != NULL) {
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, (uint32_t)c->base->hooknum);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c->base->prio);
		nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, c->base->type);
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	nftnl_chain_free(ch);
	done(b, nlh);
}

static void counter_add(struct fw_batch *b, enum fw_family fam)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	if (o == NULL || (nlh = msg(b, NFT_MSG_NEWOBJ, fam, NLM_F_CREATE)) == NULL) {
		b->oom = true;
		nftnl_obj_free(o);
		return;
	}
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, FIREWALL_TABLE);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, FIREWALL_GUEST_DROP);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	done(b, nlh);
}

/* The typeof description of one field (nft's set user data). */
enum { EXPR_PAYLOAD = 7, EXPR_META = 9, EXPR_CONCAT = 13 };

static void typeof_field(struct nftnl_udata_buf *u, enum fw_field f)
{
	const struct fw_field_desc *d = &fw_fields[f];
	struct nftnl_udata *data;

	nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, d->load == FW_LOAD_META ? EXPR_META : EXPR_PAYLOAD);
	data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
	if (d->load == FW_LOAD_META) {
		nftnl_udata_put_u32(u, 0, d->key);
	} else {
		nftnl_udata_put_u32(u, 0, d->proto);
		nftnl_udata_put_u32(u, 1, d->tmpl);
		if (d->proto == 0) {            /* raw: base (nft counts from 1), bits */
			nftnl_udata_put_u32(u, 2, d->key + 1u);
			nftnl_udata_put_u32(u, 3, d->off * 8u);
			nftnl_udata_put_u32(u, 4, d->len * 8u);
		}
	}
	nftnl_udata_nest_end(u, data);
}

/* What nft stores in a set's user data: how to print the keys back. */
static struct nftnl_udata_buf *set_udata(const struct fw_set *s)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);

	if (u == NULL)
		return NULL;
	bool map = s->kind == FW_MAP;

	nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, s->n_keys > 1 ? 0 : fw_fields[s->keys[0]].byteorder);
	if (map)
		nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER,
				    fw_fields[s->data_field].byteorder);
	if (s->n_keys > 1 || s->kind == FW_ANON) {
		struct nftnl_udata *k = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF);
		if (s->n_keys == 1) {
			typeof_field(u, s->keys[0]);
		} else {
			nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, EXPR_CONCAT);
			struct nftnl_udata *data = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA);
			for (unsigned i = 0; s->by_typeof && i < s->n_keys; i++) {
				struct nftnl_udata *sub = nftnl_udata_nest_start(u, (uint8_t)i);
				typeof_field(u, s->keys[i]);
				nftnl_udata_nest_end(u, sub);
			}
			nftnl_udata_nest_end(u, data);
		}
		nftnl_udata_nest_end(u, k);
	}
	if (map)
		nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	return u;
}

static const char *set_name(const struct fw_model *m, const struct fw_set *s, char *buf, size_t len)
{
	if (s->kind == FW_ANON)
		return "__set%d";   /* the kernel numbers anonymous sets */
	versioned(buf, len, s->name, m);
	return buf;
}

/* NEWSET; returns the set's ID in this batch (0 on failure). */
static uint32_t set_add(struct fw_batch *b, const struct fw_model *m, const struct fw_set *s)
{
	struct nftnl_set *set = nftnl_set_alloc();
	struct nftnl_udata_buf *u = set_udata(s);
	struct nlmsghdr *nlh;
	char name[64];
	uint32_t type = 0, flags = s->kind == FW_MAP ? NFT_SET_MAP :
				   s->kind == FW_ANON ? NFT_SET_ANONYMOUS | NFT_SET_CONSTANT : 0;
	uint8_t field_len[FW_KEYS_MAX];

	if (set == NULL || u == NULL || (nlh = msg(b, NFT_MSG_NEWSET, s->fam, NLM_F_CREATE)) == NULL) {
		b->oom = true;
		nftnl_set_free(set);
		if (u != NULL)
			nftnl_udata_buf_free(u);
		return 0;
	}
	for (unsigned i = 0; i < s->n_keys; i++)
		type = type << 6 | fw_fields[s->keys[i]].dtype;
	nftnl_set_set_str(set, NFTNL_SET_TABLE, FIREWALL_TABLE);
	nftnl_set_set_str(set, NFTNL_SET_NAME, set_name(m, s, name, sizeof(name)));
	nftnl_set_set_u32(set, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, type);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, s->key_len);
	if (s->kind == FW_MAP) {
		nftnl_set_set_u32(set, NFTNL_SET_DATA_TYPE, fw_fields[s->data_field].dtype);
		nftnl_set_set_u32(set, NFTNL_SET_DATA_LEN, fw_fields[s->data_field].len);
	}
	/* A concatenation of ranges (the kernel's pipapo set) needs each
	 * field's length to tell the fields apart. */
	if (s->interval) {
		nftnl_set_set_u32(set, NFTNL_SET_FLAGS, flags | NFT_SET_INTERVAL | NFT_SET_CONCAT);
		for (unsigned i = 0; i < s->n_keys; i++)
			field_len[i] = fw_fields[s->keys[i]].len;
		nftnl_set_set_data(set, NFTNL_SET_DESC_CONCAT, field_len, s->n_keys);
	}
	/* The size lets the kernel pick a hash table of the right size
	 * (nft_hash): without it, an rhashtable grows while 10,000s of
	 * elements go in and every insert takes its slow path.  A version's
	 * sets never change after it is loaded, so the size is final. */
	if (s->n_elems > 0)
		nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, (uint32_t)s->n_elems);
	nftnl_set_set_u32(set, NFTNL_SET_ID, ++b->set_id);
	nftnl_set_set_data(set, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_set_nlmsg_build_payload(nlh, set);
	nftnl_set_free(set);
	nftnl_udata_buf_free(u);
	done(b, nlh);
	return b->set_id;
}

/* NEWSETELEM messages with every element, cut below MSG_MAX each. */
static void elems_add(struct fw_batch *b, const struct fw_model *m, const struct fw_set *s, uint32_t id)
{
	char name[64];
	const char *sname = set_name(m, s, name, sizeof(name));

	for (size_t j = 0; j < s->n_elems;) {
		struct nlmsghdr *nlh = msg(b, NFT_MSG_NEWSETELEM, s->fam, NLM_F_CREATE);
		if (nlh == NULL)
			return;
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, FIREWALL_TABLE);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, sname);
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID, htonl(id));
		struct nlattr *list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (; j < s->n_elems && nlh->nlmsg_len < ELEMS_CUT; j++) {
			const uint8_t *key = s->elems + j * (s->interval ? 2u : 1u) * s->key_len;
			struct nlattr *e = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
			struct nlattr *k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
			mnl_attr_put(nlh, NFTA_DATA_VALUE, s->key_len, key);
			mnl_attr_nest_end(nlh, k);
			if (s->interval) {
				k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY_END);
				mnl_attr_put(nlh, NFTA_DATA_VALUE, s->key_len, key + s->key_len);
				mnl_attr_nest_end(nlh, k);
			}
			if (s->kind == FW_MAP) {
				size_t n = fw_fields[s->data_field].len;
				struct nlattr *d = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
				mnl_attr_put(nlh, NFTA_DATA_VALUE, n, s->data + j * n);
				mnl_attr_nest_end(nlh, d);
			}
			mnl_attr_nest_end(nlh, e);
		}
		mnl_attr_nest_end(nlh, list);
		done(b, nlh);
	}
}

/* ---- rules ----------------------------------------------------------------------- */

/* A rule being linearized: the protocols it has established so far. */
enum l3 { L3_NONE, L3_ARP, L3_IP, L3_IP6 };

struct lin {
	struct fw_batch *b;
	const struct fw_model *m;
	struct nftnl_rule *r;
	enum fw_family fam;
	enum l3 l3;
	uint8_t l4;
	uint32_t *set_ids;          /* the batch ID of every set of the model */
};

/* nft's register numbering: 128-bit names where the 32-bit index allows. */
static uint32_t reg(unsigned idx32)
{
	return idx32 % 4 == 0 ? NFT_REG_1 + idx32 / 4 : NFT_REG32_00 + idx32;
}

static struct nftnl_expr *expr(struct lin *l, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	if (e == NULL)
		l->b->oom = true;
	else
		nftnl_rule_add_expr(l->r, e);
	return e;
}

static void e_meta(struct lin *l, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr(l, "meta");
	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
}

static void e_payload(struct lin *l, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = expr(l, "payload");
	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}

static void e_cmp(struct lin *l, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(l, "cmp");
	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set_data(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void e_bitwise(struct lin *l, const void *mask, const void *xor, uint32_t len)
{
	struct nftnl_expr *e = expr(l, "bitwise");
	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set_data(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set_data(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
}

/* byteorder hton of a len-byte value, in place; nft gives 1- and 2-byte
 * values the 2-byte operation. */
static void e_hton(struct lin *l, uint32_t r, uint32_t len)
{
	struct nftnl_expr *e = expr(l, "byteorder");
	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, r);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, r);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, len <= 2 ? 2 : 4);
}

static void e_verdict(struct lin *l, int code, const char *chain)
{
	struct nftnl_expr *e = expr(l, "immediate");
	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)code);
	if (chain != NULL)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
}

/* ether type / meta protocol / meta nfproto == proto, as nft writes the
 * dependency of a network-layer field in this family. */
static void dep_l3(struct lin *l, enum l3 l3, bool ether_type)
{
	uint16_t et = htons(l3 == L3_ARP ? 0x0806 : l3 == L3_IP ? 0x0800 : 0x86dd);
	uint8_t nf = l3 == L3_IP ? NFPROTO_IPV4 : NFPROTO_IPV6;

	if (l->l3 == l3)
		return;
	l->l3 = l3;
	if (l->fam == FW_INET) {
		e_meta(l, NFT_META_NFPROTO, NFT_REG_1);
		e_cmp(l, NFT_CMP_EQ, &nf, 1);
	} else if (ether_type || l3 == L3_ARP) {
		e_payload(l, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1);
		e_cmp(l, NFT_CMP_EQ, &et, 2);
	} else {
		e_meta(l, NFT_META_PROTOCOL, NFT_REG_1);
		e_cmp(l, NFT_CMP_EQ, &et, 2);
	}
}

static void dep_l4(struct lin *l, uint8_t proto)
{
	if (l->l4 == proto)
		return;
	l->l4 = proto;
	e_meta(l, NFT_META_L4PROTO, NFT_REG_1);
	e_cmp(l, NFT_CMP_EQ, &proto, 1);
}

static void dep(struct lin *l, enum fw_field f)
{
	switch (fw_fields[f].dep) {
	case FW_DEP_ARP:    dep_l3(l, L3_ARP, true); break;
	case FW_DEP_IP:     dep_l3(l, L3_IP, false); break;
	case FW_DEP_IP6:    dep_l3(l, L3_IP6, false); break;
	case FW_DEP_UDP:    dep_l4(l, IPPROTO_UDP); break;
	case FW_DEP_TCP:    dep_l4(l, IPPROTO_TCP); break;
	case FW_DEP_ICMP:   dep_l3(l, L3_IP, true); dep_l4(l, IPPROTO_ICMP); break;
	case FW_DEP_ICMPV6: dep_l3(l, L3_IP6, true); dep_l4(l, IPPROTO_ICMPV6); break;
	}
}

/* An explicit match on a protocol field is itself a dependency met. */
static void learn(struct lin *l, const struct fw_match *x)
{
	if (x->kind != FW_M_CMP || x->neq)
		return;
	if (x->keys[0] == FW_ETHER_TYPE) {
		uint16_t t = (uint16_t)(x->value[0] << 8 | x->value[1]);
		l->l3 = t == 0x0806 ? L3_ARP : t == 0x0800 ? L3_IP : t == 0x86dd ? L3_IP6 : L3_NONE;
	} else if (x->keys[0] == FW_NFPROTO) {
		l->l3 = x->value[0] == NFPROTO_IPV4 ? L3_IP : L3_IP6;
	} else if (x->keys[0] == FW_L4PROTO) {
		l->l4 = x->value[0];
	}
}

static void load(struct lin *l, enum fw_field f, uint32_t dreg)
{
	const struct fw_field_desc *d = &fw_fields[f];

	if (d->load == FW_LOAD_META) {
		e_meta(l, d->key, dreg);
	} else if (d->load == FW_LOAD_CT) {
		struct nftnl_expr *e = expr(l, "ct");
		if (e == NULL)
			return;
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, d->key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	} else {
		e_payload(l, d->key, d->off, d->len, dreg);
	}
}

/* dreg: where a map's value goes, -1 for a set. */
static void e_lookup(struct lin *l, uint32_t set, bool inv, int dreg)
{
	const struct fw_set *s = &l->m->sets[set];
	char name[64];
	struct nftnl_expr *e = expr(l, "lookup");

	if (e == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set_name(l->m, s, name, sizeof(name)));
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, l->set_ids[set]);
	if (dreg >= 0)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
	if (inv)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
}

static void match_add(struct lin *l, const struct fw_match *x)
{
	enum fw_field f = x->keys[0];
	const struct fw_field_desc *d = &fw_fields[f];
	uint32_t op = x->neq ? NFT_CMP_NEQ : NFT_CMP_EQ;

	for (unsigned i = 0; i < x->n_keys; i++)
		dep(l, x->keys[i]);
	switch (x->kind) {
	case FW_M_CMP:
	case FW_M_IFGLOB:
		load(l, f, NFT_REG_1);
		e_cmp(l, op, x->value, x->len);
		break;
	case FW_M_MASKED: {
		static const uint8_t zero[4];
		load(l, f, NFT_REG_1);
		e_bitwise(l, x->aux, zero, 4);
		e_cmp(l, op, x->value, 4);
		break;
	}
	case FW_M_PREFIX: {
		/* As nft: a whole-byte prefix compares that many bytes, any
		 * other (and /0) masks the whole address. */
		unsigned plen = x->len, full = d->len;
		if (plen == full * 8 || (plen % 8 == 0 && plen > 0)) {
			e_payload(l, d->key, d->off, plen / 8, NFT_REG_1);
			e_cmp(l, NFT_CMP_EQ, x->value, plen / 8);
		} else {
			uint8_t mask[16] = { 0 }, zero[16] = { 0 }, v[16];
			for (unsigned i = 0; i < plen; i++)
				mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
			for (unsigned i = 0; i < full; i++)
				v[i] = x->value[i] & mask[i];
			load(l, f, NFT_REG_1);
			e_bitwise(l, mask, zero, full);
			e_cmp(l, NFT_CMP_EQ, v, full);
		}
		break;
	}
	case FW_M_LOOKUP:
	case FW_M_ANON:
		for (unsigned i = 0, idx = 0; i < x->n_keys; i++) {
			load(l, x->keys[i], reg(idx));
			/* As nft does for a key of ranges: a host-order number in
			 * network order (for one byte, a no-op the kernel lists). */
			if (l->m->sets[x->set].interval && fw_fields[x->keys[i]].byteorder == 1 &&
			    fw_fields[x->keys[i]].dtype != FW_DTYPE_IFNAME)
				e_hton(l, reg(idx), fw_fields[x->keys[i]].len);
			idx += (fw_fields[x->keys[i]].len + 3u) / 4;
		}
		e_lookup(l, x->set, x->neq, -1);
		break;
	}
	learn(l, x);
}

/* snat/dnat ip to <key> map @set: the key (with its dependency) looked
 * up for the new address, which the nat expression takes from reg 1. */
static void nat_add(struct lin *l, enum fw_stmt s, uint32_t set)
{
	enum fw_field key = l->m->sets[set].keys[0];
	struct nftnl_expr *e;

	dep(l, key);
	load(l, key, NFT_REG_1);
	e_lookup(l, set, false, NFT_REG_1);
	if ((e = expr(l, "nat")) == NULL)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, s == FW_S_DNAT ? NFT_NAT_DNAT : NFT_NAT_SNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
}

static void stmt_add(struct lin *l, enum fw_stmt s)
{
	uint32_t keep = ~(FIREWALL_MARK_EST | FIREWALL_MARK_CROSS), none = 0,
		 set = s == FW_S_MARK_CROSS ? FIREWALL_MARK_CROSS : FIREWALL_MARK_EST;

	switch (s) {
	case FW_S_NONE:
		return;
	case FW_S_MARK_CLEAR:
	case FW_S_MARK_SET:
	case FW_S_MARK_CROSS: {
		/* x | b is (x & ~b) ^ b, as nft writes it. */
		if (s != FW_S_MARK_CLEAR)
			keep = ~set;
		e_meta(l, NFT_META_MARK, NFT_REG_1);
		e_bitwise(l, &keep, s == FW_S_MARK_CLEAR ? &none : &set, 4);
		struct nftnl_expr *e = expr(l, "meta");
		if (e == NULL)
			return;
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
		return;
	}
	case FW_S_MASQ:
		expr(l, "masq");
		return;
	case FW_S_DNAT:
	case FW_S_SNAT:
		return;         /* rule_add: nat_add() needs the rule's map */
	case FW_S_COUNTER: {
		struct nftnl_expr *e = expr(l, "objref");
		if (e == NULL)
			return;
		nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
		nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, FIREWALL_GUEST_DROP);
		return;
	}
	}
}

static void rule_add(struct fw_batch *b, const struct fw_model *m, const struct fw_rule *r, uint32_t *set_ids)
{
	const struct fw_chain *c = &m->chains[r->chain];
	char chain[64], target[64];
	struct lin l = { .b = b, .m = m, .fam = c->fam, .set_ids = set_ids };

	/* Anonymous sets first: the rule refers to them by batch ID. */
	for (uint32_t i = 0; i < r->n; i++) {
		const struct fw_match *x = &m->matches[r->first + i];
		if (x->kind == FW_M_ANON) {
			set_ids[x->set] = set_add(b, m, &m->sets[x->set]);
			elems_add(b, m, &m->sets[x->set], set_ids[x->set]);
		}
	}
	if ((l.r = nftnl_rule_alloc()) == NULL) {
		b->oom = true;
		return;
	}
	if (c->base != NULL)
		snprintf(chain, sizeof(chain), "%s", c->name);
	else
		versioned(chain, sizeof(chain), c->name, m);
	nftnl_rule_set_str(l.r, NFTNL_RULE_TABLE, FIREWALL_TABLE);
	nftnl_rule_set_str(l.r, NFTNL_RULE_CHAIN, chain);
	for (uint32_t i = 0; i < r->n; i++)
		match_add(&l, &m->matches[r->first + i]);
	if (r->stmt == FW_S_DNAT || r->stmt == FW_S_SNAT)
		nat_add(&l, r->stmt, r->stmt_set);
	else
		stmt_add(&l, r->stmt);
	switch (r->verdict) {
	case FW_V_ACCEPT: e_verdict(&l, NF_ACCEPT, NULL); break;
	case FW_V_DROP:   e_verdict(&l, NF_DROP, NULL); break;
	case FW_V_JUMP:
	case FW_V_GOTO:
		versioned(target, sizeof(target), m->chains[r->target].name, m);
		e_verdict(&l, r->verdict == FW_V_JUMP ? NFT_JUMP : NFT_GOTO, target);
		break;
	}
	struct nlmsghdr *nlh = msg(b, NFT_MSG_NEWRULE, c->fam, NLM_F_CREATE | NLM_F_APPEND);
	if (nlh != NULL) {
		nftnl_rule_nlmsg_build_payload(nlh, l.r);
		done(b, nlh);
	}
	nftnl_rule_free(l.r);
}

void fw_batch_model(struct fw_batch *b, const struct fw_model *m)
{
	uint32_t *set_ids = calloc(m->n_sets + 1, sizeof(*set_ids));

	if (set_ids == NULL) {
		b->oom = true;
		return;
	}
	for (int fam = 0; fam < FW_N_FAMILIES; fam++) {
		table_add(b, fam);
		/* Chains before sets: map elements jump to them. */
		for (size_t i = 0; i < m->n_chains; i++)
			if (m->chains[i].fam == (enum fw_family)fam)
				chain_add(b, m, &m->chains[i]);
		if (m->has_counter[fam])
			counter_add(b, fam);
		for (size_t i = 0; i < m->n_sets; i++)
			if (m->sets[i].fam == (enum fw_family)fam && m->sets[i].kind != FW_ANON) {
				set_ids[i] = set_add(b, m, &m->sets[i]);
				elems_add(b, m, &m->sets[i], set_ids[i]);
			}
		for (size_t i = 0; i < m->n_chains; i++) {
			const struct fw_chain *c = &m->chains[i];
			if (c->fam != (enum fw_family)fam)
				continue;
			for (uint32_t j = 0; j < c->n_rules; j++)
				rule_add(b, m, &m->rules[c->first_rule + j], set_ids);
		}
	}
	free(set_ids);
}
