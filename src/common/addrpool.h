/*
 * addrpool — the operator's pools of routed IPv6 prefixes and public IPv4
 * addresses (issue 13 §3, §4), and the choice of the next free item in
 * them.  Pure: the store hands in what is taken, in the transaction that
 * then takes the answer.
 *
 *   prefix_pool      = 2001:db8:100::/48[,PREFIX…]      (lengths 16..64)
 *   public_ipv4_pool = 198.51.100.0/28[,A.B.C.D-E.F.G.H|ADDRESS…]
 *
 * A CIDR of /30 or shorter in the IPv4 pool leaves out its first and last
 * address (the network and broadcast addresses of an on-link subnet); a
 * range or a single address is taken as written.  Items of one pool must
 * not overlap.  Allocation is first-fit from the lowest address, so the
 * result is a function of the pool and what is taken.
 *
 * IPv6 prefixes handed out are 16..64 bits long, so only the upper 64 bits
 * of an address matter here: a prefix is a range of /64s.
 */
#ifndef HC_ADDRPOOL_H
#define HC_ADDRPOOL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A range of /64s (upper 64 bits of the addresses), inclusive. */
struct span6 {
	uint64_t lo, hi;
};

struct pool6 {
	struct span6 *v;            /* each a prefix, sorted, disjoint */
	unsigned *len;              /* its prefix length */
	size_t n;
};

/* A range of IPv4 addresses, host order, inclusive. */
struct span4 {
	uint32_t lo, hi;
};

struct pool4 {
	struct span4 *v;            /* sorted, disjoint */
	size_t n;
};

/* Parse a pool; "" is an empty pool.  -1 with a malloc'd message. */
int pool6_parse(const char *text, struct pool6 *out, char **err);
int pool4_parse(const char *text, struct pool4 *out, char **err);
void pool6_free(struct pool6 *p);
void pool4_free(struct pool4 *p);

/* The /64s of an IPv6 prefix (16 <= len <= 64, host bits zero), and back. */
struct span6 span6_of(const struct in6_addr *addr, unsigned len);
void span6_addr(uint64_t lo, struct in6_addr *out);

/*
 * The lowest prefix of length len (the pool's own length .. 64) inside the
 * pool that overlaps none of taken[0 .. n) (any order: existing prefixes,
 * networks' /64s).  False when none is left.
 */
bool pool6_alloc(const struct pool6 *p, unsigned len, const struct span6 *taken, size_t n,
		 struct in6_addr *out);

/* The address hackcloud's data sources (metadata service, NoCloud seed)
 * suggest a guest configures from a routed prefix "addr/len": its first
 * host address (addr + 1), as text into buf.  False for a bad prefix. */
bool prefix_suggested_address(const char *prefix, char *buf, size_t len);

struct config;
/* The configuration's pools and prefix lengths make sense (checked when
 * hcd starts); -1 with a malloc'd message otherwise. */
int addrpool_config_check(const struct config *c, char **err);

/* Is the address in the pool? */
bool pool4_has(const struct pool4 *p, uint32_t addr);
/* The lowest address of the pool not in taken[0 .. n) (any order). */
bool pool4_alloc(const struct pool4 *p, const uint32_t *taken, size_t n, uint32_t *out);

#endif
