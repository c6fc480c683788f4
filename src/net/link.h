/*
 * link — the host's network links hackcloud owns, through netlink
 * (libnl-route-3) and /dev/net/tun.  No `ip` or `brctl` shell-outs.
 *
 * Every function is idempotent: *_ensure makes it so whatever is there,
 * *_remove succeeds when the thing is already gone.  Return 0 or -1 with a
 * malloc'd message in *err.
 */
#ifndef HC_LINK_H
#define HC_LINK_H

#include <stddef.h>

/* tap.c: a persistent tap, up, enslaved to bridge (which must exist).
 * owner (uid, or -1) may re-open it without privileges: QEMU after -runas
 * needs that to attach a hot-plugged NIC. */
int tap_ensure(const char *ifname, const char *bridge, long owner, char **err);

/* Open the (existing) tap for a QEMU that may not open /dev/net/tun itself
 * (-runas); the descriptor is handed over with QMP getfd.  -1 on failure
 * (EBUSY while another descriptor is attached to it: a QEMU still using
 * it). */
int tap_open(const char *ifname, char **err);

/* bridge.c */
struct nl_sock;
/* A connected NETLINK_ROUTE socket (free with nl_socket_free), or NULL. */
struct nl_sock *link_nl_open(char **err);
/* A bridge, up, with the gateway addresses (prefix::1/64, a.b.c.1/len)
 * and a fixed MAC 02:01:00 + the 6 hex of its network (the name's hex):
 * a bridge left to itself takes its ports' lowest MAC, so a new tap with
 * a lower MAC would change the gateway's MAC under the running guests
 * (stale ARP/NDP entries for seconds); and every host's bridge of one
 * network has the same gateway MAC, so a VM that moves keeps a valid one. */
int bridge_ensure(const char *ifname, const char *ipv6_prefix, const char *ipv4_cidr, char **err);
/* An address on the loopback link (idempotent).  The metadata service's
 * 169.254.169.254 lives there rather than on the bridges: on a bridge,
 * every network's dnsmasq (bound to all of its bridge's addresses) would
 * try to serve DNS on it and all but one would fail. */
int loopback_addr_ensure(const char *cidr, char **err);
/* Delete any link by name. */
int link_remove(const char *ifname, char **err);
/* Names of all links whose name parses as one of ours (ifname_parse), of
 * the given kind letter ('v', 'b', 'x'); malloc'd array of malloc'd names. */
int link_list_ours(char kind, char ***names, size_t *n, char **err);
void link_names_free(char **names, size_t n);

#endif
