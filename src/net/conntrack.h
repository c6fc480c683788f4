/*
 * conntrack — forgetting the kernel's connection-tracking entries of
 * public IPv4 addresses that no longer map where they did (issue 13 §4),
 * through libnetfilter_conntrack.
 *
 * Why: a 1:1 NAT binding lives on in the conntrack entries of the flows
 * it translated after the nft rule that made it is gone — an established
 * TCP flow for days.  When a public address is detached, moves to another
 * VM or host, or its VM stops, those entries must go too, or traffic keeps
 * reaching (and leaving as) the old VM.
 *
 * An entry is stale when one of its addresses (either direction, source or
 * destination) is in the public pool and that address does not map, now,
 * to a private address the entry also has.  Everything else is left
 * alone, so the host's own flows and other VMs' are untouched.
 */
#ifndef HC_CONNTRACK_H
#define HC_CONNTRACK_H

#include "common/addrpool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A public address and the private one it maps to (host order). */
struct nat_map {
	uint32_t pub, priv;
};

/* The four IPv4 addresses of an entry (original source and destination,
 * reply source and destination; host order): is it stale?  map is sorted
 * by pub.  Pure. */
bool conntrack_stale(const uint32_t addr[4], const struct pool4 *pool, const struct nat_map *map, size_t n);

/* Delete every stale IPv4 entry; *removed counts them.  -1 with a
 * malloc'd message in *err. */
int conntrack_forget(const struct pool4 *pool, const struct nat_map *map, size_t n, size_t *removed,
		     char **err);

#endif
