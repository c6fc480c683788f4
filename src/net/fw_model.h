/*
 * fw_model — the firewall ruleset as data: what fw_gen.c draws from a
 * snapshot, what fw_text.c prints as nft text and fw_batch.c turns into a
 * netlink batch.  Two renderings of one model, so that the text (for
 * people, the golden files and the libnftables baseline of the benchmark)
 * and the batch the kernel gets cannot drift apart unnoticed: the unit
 * test loads both and compares what the kernel lists back.
 *
 * Contract and invariants:
 *   - Names are stored without the version; the renderers append
 *     "-<version>" to every set and non-base chain name.  The version is
 *     the first FIREWALL_VERSION_LEN hex digits of the SHA-256 over
 *     everything the model holds, field by field (fw_model_finish), so
 *     equal models have equal versions and any difference changes it.
 *   - A rule is matches, then at most one statement, then at most one
 *     verdict — the order nft prints them.  A match reads one field (or a
 *     concatenation of fields, for lookups) from a fixed table (fw_fields)
 *     that says how the kernel loads it and which protocol it implies;
 *     the batch adds those dependencies the way nft does.
 *   - Per-NIC and per-network facts are set elements (flat key bytes in
 *     the kernel's layout: concatenated fields each padded to 4 bytes,
 *     interface names NUL-padded to 16); rules and chains do not grow
 *     with them — per-VM inbound rules included (ranges of ports and
 *     addresses in interval sets).  Adding a per-NIC set is a
 *     fw_model_set() and one fw_model_elem() per NIC.
 *   - Allocation failures are sticky: every builder call after one is a
 *     no-op and fw_model_finish() reports ENOMEM.
 */
#ifndef HC_FW_MODEL_H
#define HC_FW_MODEL_H

#include "net/firewall.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fw_family { FW_BRIDGE, FW_INET, FW_N_FAMILIES };
extern const char *const fw_family_name[FW_N_FAMILIES];

/* What a match or a set key reads from a packet. */
enum fw_field {
	FW_IIFNAME, FW_OIFNAME, FW_MARK, FW_NFPROTO, FW_L4PROTO, FW_CT_STATE,
	FW_ETHER_SADDR, FW_ETHER_TYPE,
	FW_ARP_HTYPE, FW_ARP_PTYPE, FW_ARP_HLEN, FW_ARP_PLEN, FW_ARP_OP,
	FW_ARP_SHA, FW_ARP_SPA, FW_ARP_TPA,
	FW_IP_SADDR, FW_IP_DADDR, FW_IP6_SADDR, FW_IP6_DADDR,
	FW_NH_64_128,               /* @nh,64,128: the IPv6 source, raw */
	FW_TH_64_128,               /* @th,64,128: the NDP target, raw */
	FW_UDP_SPORT, FW_UDP_DPORT, FW_UDP_PORTS /* sport . dport, one load */,
	FW_TCP_DPORT, FW_TH_DPORT, FW_ICMP_TYPE, FW_ICMPV6_TYPE,
	FW_N_FIELDS
};

/* The protocol a field implies, which the kernel must check first. */
enum fw_dep { FW_DEP_NONE, FW_DEP_ARP, FW_DEP_IP, FW_DEP_IP6, FW_DEP_UDP, FW_DEP_TCP,
	      FW_DEP_ICMP, FW_DEP_ICMPV6 };

enum fw_load { FW_LOAD_META, FW_LOAD_PAYLOAD, FW_LOAD_CT };

struct fw_field_desc {
	const char *text;           /* as nft writes it: "ether saddr" */
	uint8_t load;               /* enum fw_load */
	uint8_t key;                /* meta/ct key, or payload base (NFT_PAYLOAD_*) */
	uint8_t off, len;           /* payload offset; bytes loaded */
	uint8_t dep;                /* enum fw_dep */
	uint8_t dtype;              /* nft's datatype number, for set keys */
	uint8_t byteorder;          /* nft's: 1 host, 2 big endian */
	uint8_t proto, tmpl;        /* nft's protocol/field ids (typeof); 0 = raw */
};
extern const struct fw_field_desc fw_fields[FW_N_FIELDS];
#define FW_DTYPE_IFNAME 41          /* nft's "ifname": a NUL-padded string */

#define FW_KEYS_MAX 4

/* A set (or map) of the model.  FW_MAP maps keys to values of a field's
 * type (NAT addresses). */
enum fw_set_kind { FW_SET, FW_MAP, FW_ANON };
struct fw_set {
	enum fw_family fam;
	enum fw_set_kind kind;
	bool by_typeof;             /* declared "typeof …" (raw fields) */
	/* "flags interval": every element is a range per field, stored as its
	 * first key then its last (inclusive).  Concatenations only (the
	 * kernel's pipapo set), whose elements must not overlap. */
	bool interval;
	char name[24];              /* unversioned; anonymous: none */
	uint8_t n_keys, keys[FW_KEYS_MAX]; /* enum fw_field */
	uint8_t key_len;            /* sum of the fields, each padded to 4 */
	uint8_t data_field;         /* FW_MAP: the type of the values (enum fw_field) */
	uint8_t *elems;             /* n_elems * key_len bytes (twice that when interval) */
	uint8_t *data;              /* FW_MAP: per element, fw_fields[data_field].len bytes */
	size_t n_elems, cap_elems;
	const char *text;           /* FW_ANON: "{ 67, 68 }" */
};

enum fw_match_kind {
	FW_M_CMP,                   /* field op value */
	FW_M_MASKED,                /* (field & mask) op value: mark, ct state */
	FW_M_PREFIX,                /* field within value/plen */
	FW_M_LOOKUP,                /* key [!]in set */
	FW_M_ANON,                  /* field in { … } */
	FW_M_IFGLOB,                /* iifname/oifname "prefix*" */
};

struct fw_match {
	uint8_t kind;               /* enum fw_match_kind */
	bool neq;
	uint8_t n_keys, keys[FW_KEYS_MAX]; /* enum fw_field; one unless a lookup */
	uint8_t len;                /* bytes of value / mask / hi; prefix length */
	uint32_t set;               /* FW_M_LOOKUP/ANON: index in sets */
	uint8_t value[16], aux[16]; /* aux: mask (MASKED) */
	const char *text;           /* the value as nft prints it, NULL = derive */
};

/* FW_S_DNAT/FW_S_SNAT: "dnat ip to <key> map @set", the rule's map
 * (an FW_DMAP) giving the new address for the packet's key field. */
/* FW_S_MARK_CLEAR clears both of hackcloud's mark bits, FW_S_MARK_SET sets
 * FIREWALL_MARK_EST, FW_S_MARK_CROSS FIREWALL_MARK_CROSS. */
enum fw_stmt { FW_S_NONE, FW_S_MARK_CLEAR, FW_S_MARK_SET, FW_S_MARK_CROSS, FW_S_MASQ, FW_S_COUNTER,
	       FW_S_DNAT, FW_S_SNAT };
enum fw_verdict { FW_V_NONE, FW_V_ACCEPT, FW_V_DROP, FW_V_JUMP, FW_V_GOTO };

struct fw_rule {
	uint32_t chain;
	uint32_t first, n;          /* matches[first .. first + n) */
	uint8_t stmt;               /* enum fw_stmt */
	uint8_t verdict;            /* enum fw_verdict */
	uint32_t target;            /* JUMP/GOTO: chain index */
	uint32_t stmt_set;          /* DNAT/SNAT: the map, an index in sets */
};

/* A base chain: the hook it is on, unversioned, holding one jump. */
struct fw_base {
	enum fw_family fam;
	const char *name, *type, *hook, *prio_text;
	int hooknum, prio;
};
extern const struct fw_base fw_bases[];
extern const size_t fw_n_bases;

struct fw_chain {
	enum fw_family fam;
	char name[32];              /* unversioned ("vm-000000002a") */
	const struct fw_base *base; /* NULL for a regular chain */
	uint32_t first_rule, n_rules;
};

struct fw_model {
	struct fw_set *sets;
	struct fw_chain *chains;
	struct fw_rule *rules;
	struct fw_match *matches;
	size_t n_sets, n_chains, n_rules, n_matches;
	size_t cap_sets, cap_chains, cap_rules, cap_matches;
	bool has_counter[FW_N_FAMILIES];    /* FIREWALL_GUEST_DROP in that table */
	bool oom;
	char version[FIREWALL_VERSION_LEN + 1];
	uint32_t filling;           /* the chain rules go to */
};

void fw_model_init(struct fw_model *m);
void fw_model_free(struct fw_model *m);
/* Seals the version; -1 (errno ENOMEM) when a builder call failed. */
int fw_model_finish(struct fw_model *m);

/* Sets: keys are enum fw_field.  Returns the set's index. */
uint32_t fw_model_set(struct fw_model *m, enum fw_family fam, enum fw_set_kind kind,
		      bool by_typeof, const char *name, unsigned n_keys, const uint8_t *keys);
/* An interval set ("flags interval") of a concatenation (n_keys >= 2). */
uint32_t fw_model_iset(struct fw_model *m, enum fw_family fam, const char *name, unsigned n_keys,
		       const uint8_t *keys);
/* A map from key to values of data_field's type (NAT addresses). */
uint32_t fw_model_map(struct fw_model *m, enum fw_family fam, const char *name, enum fw_field key,
		       enum fw_field data_field);
/* One element: the fields' values in order, each value's own length
 * (fw_fields[].len; padding is added here). */
void fw_model_elem(struct fw_model *m, uint32_t set, const void *const *values);
/* One element of an interval set: per field its first and last value. */
void fw_model_elem_range(struct fw_model *m, uint32_t set, const void *const *lo, const void *const *hi);
/* One element of an FW_MAP: the key's value and the data's. */
void fw_model_elem_data(struct fw_model *m, uint32_t set, const void *key, const void *data);
/* An anonymous set for one rule; values of fw_fields[key].len bytes each. */
uint32_t fw_model_anon(struct fw_model *m, enum fw_family fam, enum fw_field key, const char *text,
		       unsigned n, const void *values);

/* Chains are declared (so that jumps can name them before they are
 * filled), then filled one after the other: fw_model_fill() makes a
 * chain the one rules go to; each chain is filled at most once, and its
 * rules are contiguous.  Regular chains are named by printf. */
uint32_t fw_model_base(struct fw_model *m, const struct fw_base *b);
uint32_t fw_model_chain(struct fw_model *m, enum fw_family fam, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fw_model_fill(struct fw_model *m, uint32_t chain);

/* A rule: its matches one by one (the returned match is filled in by the
 * caller; NULL when out of memory), then its end. */
struct fw_match *fw_model_match(struct fw_model *m, enum fw_match_kind kind, enum fw_field key);
void fw_model_end(struct fw_model *m, enum fw_stmt stmt, enum fw_verdict verdict, uint32_t target);
/* A rule ending in a NAT statement through a map: FW_S_DNAT or FW_S_SNAT. */
void fw_model_end_nat(struct fw_model *m, enum fw_stmt stmt, uint32_t map);

/* ---- the firewall's parts (a table of contents) ---------------------------- */

/* fw_check.c: -1 with errno EINVAL and a malloc'd message in *err (when
 * err is not NULL): the firewall's way of failing. */
int fw_fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fw_check.c: the rule's address family (its source's, else its own, 0 =
 * both) and its source in canonical "addr/len" form; -1 when unusable. */
int fw_rule_family(const struct ns_rule *r, char *canon, size_t canon_len);

/* fw_rules.c: the inbound rules of one VM for one address family
 * (AF_INET or AF_INET6) as disjoint elements: ports[] for tcp, udp and
 * icmp rules (protocol, port range, source range; icmp with every
 * "port"), any[] for "any" rules (source range).  Their union accepts
 * exactly what the rules accept.  Addresses in network order, IPv4 in the
 * first 4 bytes.  -1 (ENOMEM) when out of memory.  Pure. */
struct fw_port_elem {
	uint8_t proto;              /* IPPROTO_* */
	uint16_t port_lo, port_hi;
	uint8_t src_lo[16], src_hi[16];
};
struct fw_src_range {
	uint8_t lo[16], hi[16];
};
struct fw_inbound {
	struct fw_port_elem *ports;
	size_t n_ports, cap_ports;
	struct fw_src_range *any;
	size_t n_any, cap_any;
	bool oom;
};
int fw_rules_inbound(const struct ns_rule *const *rules, size_t n, int af, struct fw_inbound *out);
void fw_inbound_free(struct fw_inbound *in);

/* fw_gen.c: the model of the ruleset for a snapshot that firewall_check()
 * accepts; -1 with *err (malloc'd) and errno otherwise.  Pure. */
int fw_generate(const struct netstate *ns, struct fw_model *m, char **err);

/* fw_text.c: the model as an nft script (malloc'd), loadable on its own
 * into an empty kernel; NULL when out of memory.  Pure. */
char *fw_text(const struct fw_model *m);

/* fw_batch.c: the model as one netlink transaction (struct fw_batch);
 * see there.  Pure: bytes in memory. */

#endif
