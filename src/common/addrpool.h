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

/* A range of IPv4 addresses, host order, inclusive. */
struct span4 {
	uint32_t lo, hi;
};

struct pool4 {
	struct span4 *v;            /* sorted, disjoint */
	size_t n;
};

struct prefix;

/* prefix_pool as prefixes (common/netpool.h, whose prefix_allocate hands
 * them out), checked: IPv6, /16../64, global unicast, disjoint; "" is
 * none.  -1 with a malloc'd message (*out freed). */
int prefix_pool_parse(const char *text, struct prefix **out, size_t *n, char **err);

/* public_ipv4_pool; "" is an empty pool.  -1 with a malloc'd message. */
int pool4_parse(const char *text, struct pool4 *out, char **err);
void pool4_free(struct pool4 *p);

/* The address hackcloud's data sources (metadata service, NoCloud seed)
 * suggest a guest configures from a routed prefix "addr/len": its first
 * host address (addr + 1), as text into buf.  False for a bad prefix. */
bool prefix_suggested_address(const char *prefix, char *buf, size_t len);

struct config;
/* The configuration's pools and prefix lengths make sense, and
 * prefix_pool shares nothing with tenant_ipv6_pool (checked when hcd
 * starts); -1 with a malloc'd message otherwise. */
int addrpool_config_check(const struct config *c, char **err);

/* Is the address in the pool? */
bool pool4_has(const struct pool4 *p, uint32_t addr);
/* The lowest address of the pool not in taken[0 .. n) (any order). */
bool pool4_alloc(const struct pool4 *p, const uint32_t *taken, size_t n, uint32_t *out);

#endif
