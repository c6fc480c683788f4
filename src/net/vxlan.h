/*
 * vxlan — the overlay that joins one network's bridges across hosts
 * (DESIGN §6).
 *
 * For each network this host carries that another live host carries too
 * (the snapshot's struct ns_fdb entries say which), a vxlan link "x<6 hex>":
 * VNI = the network ID, local = this host's underlay address, the
 * configured UDP port, no multicast group, no learning, MTU VXLAN_MTU,
 * enslaved to the network's bridge "b<6 hex>", up.  Its forwarding
 * database is programmed from the store: an all-zeros entry per peer host
 * (broadcast, multicast and unknown unicast are copied to each of them:
 * head-end replication) and one entry per remote NIC's MAC → the underlay
 * address of the host its VM is placed on.  Entries are NUD_PERMANENT,
 * NTF_SELF (the vxlan device's own table, not the bridge's).
 *
 * Contract and invariants:
 *   - Generate and apply are separate: vxlan_fdb_want() and
 *     vxlan_fdb_diff() are pure (unit tested); vxlan_converge() is the only
 *     function that talks to the kernel.
 *   - The FDB is synced, never patched blindly: each pass dumps what the
 *     device holds, adds what is missing and deletes what is extra, so
 *     nothing stale survives (a VM that moved, a host that died).
 *   - A link exists iff its network has entries and this host has an
 *     underlay address; every other "x…" link is removed.  A link whose
 *     VNI, local address, port or learning differ is re-created.
 *   - One link speaks one address family (its local address's): entries
 *     of peers whose underlay address has the other family cannot be used
 *     and are counted as skipped.
 *   - MTU: the guests keep Ethernet's 1500, so the vxlan port takes 1500
 *     frames too (a smaller port would make the bridge drop big frames
 *     silently).  The underlay must carry 1500 + 50 (IPv4) or + 70 (IPv6)
 *     bytes; where it cannot, the kernel answers oversized guest packets
 *     with ICMP "too big" from the vxlan port (PMTU discovery).
 *
 * Errors: -1 with a malloc'd message in *err; nothing is logged here.
 */
#ifndef HC_VXLAN_H
#define HC_VXLAN_H

#include "net/netstate.h"

#include <stddef.h>
#include <stdint.h>

#define VXLAN_MTU 1500

/* Orders entries by MAC, family, destination (net_id is not compared:
 * one link is one network). */
int vxlan_fdb_cmp(const void *a, const void *b);

/*
 * The entries the link of net_id must hold: the snapshot's entries of
 * that network whose destination has `family` (that of the local
 * address), sorted, without duplicates and with at most one destination
 * per unicast MAC (two would make the kernel's replace flap between
 * them).  *out is malloc'd (free it; NULL when *n is 0); *skipped counts
 * entries left out for their family.  -1 only when out of memory.  Pure.
 */
int vxlan_fdb_want(const struct netstate *ns, uint64_t net_id, int family, struct ns_fdb **out,
		   size_t *n, size_t *skipped);

/* What turns the entries cur into want: add what is missing, delete what
 * is extra.  Inputs in any order, duplicates allowed; outputs sorted. */
struct vxlan_fdb_diff {
	struct ns_fdb *add, *del;
	size_t n_add, n_del;
};
/* -1 only when out of memory.  Pure. */
int vxlan_fdb_diff(const struct ns_fdb *want, size_t n_want, const struct ns_fdb *cur,
		   size_t n_cur, struct vxlan_fdb_diff *d);
void vxlan_fdb_diff_free(struct vxlan_fdb_diff *d);

/* What one vxlan_converge() changed, for the caller to log once. */
struct vxlan_report {
	size_t links;             /* overlay links wanted now */
	size_t links_created, links_removed;
	size_t fdb_added, fdb_removed;
	size_t skipped;           /* entries that cannot be used (family, no underlay) */
};

/*
 * Make every overlay link and its FDB match the snapshot.  underlay is this
 * host's address (NULL or "": no overlay at all, every x-link goes); port
 * the UDP port (1..65535).  The networks' bridges must exist.  Goes on with
 * the other networks after a failure; -1 and the first error when any
 * failed.
 */
int vxlan_converge(const struct netstate *ns, const char *underlay, int port,
		   struct vxlan_report *r, char **err);

#endif
