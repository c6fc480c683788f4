/*
 * netstate — a plain snapshot of everything the network layer derives
 * from the store: networks, NICs (with their computed addresses), the
 * per-VM inbound rules and the overlay's forwarding entries.  The
 * generators (firewall ruleset, dnsmasq files, vxlan FDB) are pure
 * functions of it; the agent loads it from the store once per reconcile
 * pass.  All strings are owned by the snapshot.
 */
#ifndef HC_NETSTATE_H
#define HC_NETSTATE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ns_net {
	uint64_t id;                 /* 24-bit; the bridge is "b" + 6 hex */
	char *name;
	char bridge[16];
	struct in6_addr prefix6;     /* the /64 */
	bool has_ip4;
	struct in_addr net4;         /* network address */
	unsigned len4;               /* prefix length, 8..30 */
};

struct ns_nic {
	uint64_t id;                 /* 32-bit; MAC 02:00:<id> */
	uint64_t vm_id;
	char *vm_name;
	uint64_t net_id;
	char ifname[16];             /* tap "v" + 12 hex of the MAC */
	uint8_t mac[6];
	struct in6_addr ip6;         /* prefix + modified EUI-64 */
	struct in6_addr ll6;         /* fe80:: + modified EUI-64 */
	bool has_ip4;
	struct in_addr ip4;
	bool active;                 /* its VM is desired running on this host */
};

enum ns_proto { NS_PROTO_TCP, NS_PROTO_UDP, NS_PROTO_ICMP, NS_PROTO_ANY };

/* An inbound rule of a VM: traffic to any of its NICs matching it is
 * accepted (on top of the defaults: established/related and ICMP/ICMPv6
 * in, everything out). */
struct ns_rule {
	uint64_t id;
	uint64_t vm_id;
	enum ns_proto proto;
	int port_lo, port_hi;        /* 0,0 = any port (tcp/udp only) */
	int family;                  /* AF_INET, AF_INET6, or 0 = both (source any) */
	char *source;                /* canonical prefix "addr/len", or NULL = anywhere */
};

/*
 * A forwarding entry of the overlay (DESIGN §6) for a network this host
 * carries (a NIC of a VM placed here, not deleted, is on it): frames for
 * mac go to the host at dst, a live peer with NICs on the network too.
 * The all-zeros MAC is that peer's flood entry (broadcast, multicast and
 * unknown unicast are sent to every peer: head-end replication); any other
 * MAC is a NIC of a VM placed on that peer.
 */
struct ns_fdb {
	uint64_t net_id;
	uint8_t mac[6];
	int family;                  /* of the peer's underlay address: AF_INET or AF_INET6 */
	uint8_t dst[16];             /* that address; AF_INET uses the first 4 bytes */
};

/* A routed IPv6 prefix of a NIC (issue 13 §3): the host running the NIC's
 * VM routes it to the NIC's address (ip6), anti-spoofing admits it as the
 * NIC's own source and inbound rules treat it as the VM's address. */
struct ns_prefix {
	uint64_t nic_id;
	struct in6_addr addr;        /* host bits zero */
	unsigned len;                /* prefix length */
};

/* A public IPv4 address mapped 1:1 to a NIC's IPv4 address on the uplink
 * (issue 13 §4). */
struct ns_public4 {
	uint64_t nic_id;
	struct in_addr addr;
};

/* A port of an incoming live migration on this host's underlay (issue 14
 * §1), open to the migration's source host alone while it runs. */
struct ns_migport {
	int family;                  /* AF_INET or AF_INET6 */
	uint8_t src[16];             /* the source host's underlay address */
	uint16_t port;
};

struct netstate {
	struct ns_net *nets;
	size_t n_nets;
	struct ns_nic *nics;         /* sorted by id */
	size_t n_nics;
	struct ns_rule *rules;       /* sorted by vm_id, id */
	size_t n_rules;
	char *uplink;                /* routed IPv6 / NAT44 upstream, or NULL */
	int metadata_port;           /* the metadata service's TCP port, 0 = none */
	struct ns_fdb *fdb;          /* sorted by net_id, mac, family, dst; no duplicates */
	size_t n_fdb;
	struct ns_prefix *prefixes;  /* in no particular order */
	size_t n_prefixes;
	struct ns_public4 *public4;  /* in no particular order */
	size_t n_public4;
	/* Live migrations: the port range that is fenced (lo 0: none) and
	 * the (source, port) pairs let in; sorted, no duplicates. */
	uint16_t migrate_port_lo, migrate_port_hi;
	struct ns_migport *migports;
	size_t n_migports;
};

void netstate_free(struct netstate *ns);

/* The host's own (gateway) addresses on a network's bridge: prefix::1 and,
 * when the network has IPv4, the subnet's first address. */
struct in6_addr ns_gateway6(const struct ns_net *net);
struct in_addr ns_gateway4(const struct ns_net *net);

#endif
