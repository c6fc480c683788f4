/*
 * dnsmasq — one dnsmasq per network on this host: IPv6 router
 * advertisements (SLAAC, RDNSS, DNSSL), DHCPv4 static leases, and DNS for
 * the VM names of the network (DESIGN §6).
 *
 * Layout of STATE_DIR/net/<6 hex>/ (everything of one network, nothing else):
 *   dnsmasq.conf  generated; a change restarts dnsmasq
 *   dhcp-hosts    generated "MAC,IPv4[,name]"; a change is a SIGHUP
 *   dns-hosts     generated hosts(5) lines;    a change is a SIGHUP
 *   dnsmasq.pid   written by dnsmasq
 *   leases        written by dnsmasq
 *   pending       transient: a restart/reload decided but not yet done
 *
 * Invariants:
 *   - generate and apply are separate: the three generated files are pure
 *     functions of the netstate snapshot (deterministic, byte-stable, unit
 *     tested); dnsmasq_ensure only compares, writes and signals;
 *   - a dnsmasq runs iff its network is in the store: ensure starts it (and
 *     restarts a dead one, which is the whole supervision), remove and sweep
 *     stop it and delete its directory;
 *   - "our dnsmasq" is a live process named dnsmasq whose command line
 *     carries this network's conf path: the PID in dnsmasq.pid when it
 *     passes that check (as for QEMU, a recycled PID is never signalled),
 *     else found in /proc, so a lost pid file neither starts a second one
 *     nor leaves one behind; dnsmasq daemonizes and outlives hcd;
 *   - DNS names (<vm>.<network> and the bare <vm>) exist for every NIC of
 *     the network, running or not: the addresses are reserved for the NIC
 *     as long as it exists, and `active` only says "runs on *this* host",
 *     which would hide the VMs of other hosts on a multi-host network;
 *   - a DHCPv4 lease whose MAC/IP pair the store no longer grants is
 *     released at once (dhcp_release), so a freed IPv4 can be handed to the
 *     next NIC without waiting for the lease to expire;
 *   - dnsmasq drops root to user dnsmasq and re-reads the hosts files as
 *     that user: dhcp-hosts and dns-hosts are 0600 owned by dnsmasq,
 *     dnsmasq.conf and leases 0600 root (opened before dropping root) —
 *     tenants' names and addresses are readable by root and dnsmasq only;
 *     every directory
 *     above them must be searchable by others (ensure makes STATE_DIR and
 *     net/ o+x, not o+r).
 * Apply functions return 0, or -1 with a malloc'd message in *err.
 */
#ifndef HC_DNSMASQ_H
#define HC_DNSMASQ_H

#include "net/netstate.h"

#include <stddef.h>
#include <stdint.h>

/* ---- generate (pure) ---------------------------------------------------- */

/* The dnsmasq.conf of one network whose files live in dir (absolute).
 * NULL with errno EINVAL for a name that is not a valid resource name. */
char *dnsmasq_conf(const struct ns_net *net, const char *dir);

/* "02:00:00:00:01:0f,10.0.0.2,web" per NIC of net_id with an IPv4, by NIC id. */
char *dnsmasq_dhcp_hosts(const struct netstate *ns, uint64_t net_id);

/* "<ip> <vm>.<network> <vm>" per address of every NIC of net_id, by NIC
 * id, IPv6 line first. */
char *dnsmasq_dns_hosts(const struct netstate *ns, uint64_t net_id);

/* A DHCPv4 lease as dnsmasq writes it to its lease file. */
struct dnsmasq_lease {
	char mac[24];                /* as in the lease file, e.g. 02:00:00:00:01:0f */
	char ip[16];
};

/* The leases in the lease file text that the dhcp-hosts text no longer
 * grants (their MAC,IP pair is not listed).  *out is malloc'd (NULL when
 * *n is 0).  -1 on allocation failure. */
int dnsmasq_stale_leases(const char *leases, const char *dhcp_hosts,
			 struct dnsmasq_lease **out, size_t *n);

/* ---- apply -------------------------------------------------------------- */

/* Files as generated, dnsmasq running with them; see the invariants. */
int dnsmasq_ensure(const struct netstate *ns, const struct ns_net *net,
		   const char *state_dir, char **err);

/* No dnsmasq and no directory left for net_id; gone already is success. */
int dnsmasq_remove(uint64_t net_id, const char *state_dir, char **err);

/* Remove (as dnsmasq_remove) every STATE_DIR/net/<6 hex>/ whose network is
 * not in the snapshot, and stop any dnsmasq of this STATE_DIR whose
 * network is not in it: leftovers of a crash.  Logs what it removes and
 * what it cannot; returns 0, or -1 when something could not be removed. */
int dnsmasq_sweep(const struct netstate *ns, const char *state_dir);

#endif
