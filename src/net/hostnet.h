/*
 * hostnet — what the host's own network already holds: every route (all
 * tables, both families) and every address, read through netlink in
 * hcd's network namespace (issue 11, item 4).  A new hackcloud network
 * must overlap none of it, or its bridge's connected route would capture
 * traffic the host sends elsewhere (a member's 10.88.1.0/24 taking over
 * the route to the host's LAN).
 *
 * Left out, because they cannot be captured or are checked elsewhere:
 *   - default routes (length 0): every prefix is inside them;
 *   - routes that forward nothing (blackhole, unreachable, prohibit,
 *     throw — e.g. the aggregate of a routed tenant pool), broadcast,
 *     multicast and anycast entries;
 *   - routes and addresses on hackcloud's own links (b…, x…, v…): they
 *     mirror hackcloud networks, which the store checks against each
 *     other.
 * In a cluster this is the host that handles the request: another host's
 * routes are not seen.
 */
#ifndef HC_HOSTNET_H
#define HC_HOSTNET_H

#include "common/netpool.h"

#include <stddef.h>

/* The prefixes (malloc'd array) of the host's routes and addresses, an
 * address also as itself (/32, /128).  0, or -1 and a malloc'd *err. */
int hostnet_prefixes(struct prefix **out, size_t *n, char **err);

#endif
