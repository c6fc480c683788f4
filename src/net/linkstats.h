/*
 * linkstats — hackcloud's links as the kernel sees them now: index, up or
 * not, and the 64-bit traffic counters (IFLA_STATS64), read with one
 * netlink dump (issue 13 §2: "sampled from the kernel").
 *
 * Counters are the link's own view: for a NIC's tap, rx is what the guest
 * sent and tx what the host delivered to it (after shaping).  They start at
 * zero when the link is made and are never reset while it lives; a link
 * made anew under the same name has another ifindex.
 */
#ifndef HC_LINKSTATS_H
#define HC_LINKSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nl_sock;

struct link_stat {
	char name[16];
	int ifindex;
	bool up;
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

/* A NETLINK_ROUTE socket for big dumps (free with nl_socket_free), or NULL:
 * dumps come in chunks of at most what a read asks for (the kernel caps it
 * at 32 KiB) and some (qdiscs) walk every device from the first again for
 * each chunk, so it asks for big ones — or 10,000 NICs cost a quadratic
 * number of steps. */
struct nl_sock *link_dump_socket(char **err);

/* Every link whose name parses as one of ours (ifname_parse) with a kind
 * letter in `kinds` (e.g. "vi"), sorted by name; free *out.  sk: a
 * connected NETLINK_ROUTE socket (link_nl_open). */
int link_stats_dump(struct nl_sock *sk, const char *kinds, struct link_stat **out, size_t *n,
		    char **err);
/* The entry for name in a sorted dump, or NULL. */
const struct link_stat *link_stats_find(const struct link_stat *v, size_t n, const char *name);
/* One link by name: 1 found, 0 no such link, -1 error. */
int link_stats_get(struct nl_sock *sk, const char *name, struct link_stat *out, char **err);

#endif
