/*
 * routes — what the host routes for its VMs beyond their networks
 * (issue 13 §3, §4), through netlink (libnl-route-3):
 *
 *   - each routed IPv6 prefix of an active NIC (its VM runs here) goes to
 *     the NIC's own address (network prefix + EUI-64) on its network's
 *     bridge: a static route, so the prefix follows the VM to whichever
 *     host runs it;
 *   - each public IPv4 address of an active NIC is a /32 of scope host on
 *     the uplink, so that the host answers ARP for it there (and never
 *     takes it as the source of its own traffic); the firewall maps it to
 *     the NIC's IPv4 address (net/fw_gen.c); when that mapping changes,
 *     the conntrack entries of the old one go (net/conntrack.h).
 *
 * Generate and apply are separate: routes_wanted() and public4_wanted()
 * are pure.  The converge functions make the kernel hold exactly what is
 * wanted — add what is missing, replace a route whose next hop changed,
 * delete the rest — touching only hackcloud's own: routes of protocol
 * ROUTES_PROTO in the main table, and /32 host-scope addresses of the
 * uplink inside the public IPv4 pool (the pool is the operator's gift to
 * hackcloud).  So after a crash, a move or a deletion nothing stale
 * survives, and nobody else's route or address is touched.
 *
 * Errors: -1 with a malloc'd message in *err; counts of what changed in
 * the report either way.
 */
#ifndef HC_ROUTES_H
#define HC_ROUTES_H

#include "common/addrpool.h"
#include "net/conntrack.h"
#include "net/netstate.h"

#include <stddef.h>

/* rtm_protocol of hackcloud's routes ('H'; 5..255 are free for daemons,
 * /etc/iproute2/rt_protos names none of them 72). */
#define ROUTES_PROTO 72

struct route6 {
	struct in6_addr dst;
	unsigned len;
	struct in6_addr via;        /* the NIC's address */
	char dev[16];               /* its network's bridge */
};

struct routes_report {
	size_t wanted, added, removed;
	size_t forgotten;           /* conntrack entries of mappings gone */
};

/* The routes of the snapshot's routed prefixes, sorted by destination;
 * prefixes of NICs that are not active here (or bad) are left out.  -1
 * when out of memory. */
int routes_wanted(const struct netstate *ns, struct route6 **out, size_t *n);
int routes_converge(const struct netstate *ns, struct routes_report *r, char **err);

/* The public IPv4 addresses of active NICs with an IPv4 address and the
 * private ones they map to, sorted by public address (none without an
 * uplink; a private address two NICs share goes with the lower NIC ID,
 * as in the firewall).  -1 when out of memory. */
int public4_wanted(const struct netstate *ns, struct nat_map **out, size_t *n);

/* What public4_converge() keeps between passes (zeroed at start): the
 * mapping whose conntrack entries were last swept. */
struct public4_memory {
	bool swept;
	uint64_t digest;
};
/* The addresses on the uplink; then, at the first pass and whenever the
 * mapping changed since the last sweep, the conntrack entries it left
 * stale. */
int public4_converge(const struct netstate *ns, const struct pool4 *pool, struct public4_memory *mem,
		     struct routes_report *r, char **err);

#endif
