/*
 * ident — who is calling the metadata service (DESIGN §7), cheaply.
 *
 * The answer comes only from the kernel, never from what the guest sends:
 * the host routes its replies to the source address out of one interface
 * (for an IPv6 link-local source: the interface it came in on), which must
 * be a hackcloud bridge ("b" + 6 hex); the neighbour entry for the address
 * on that bridge holds a MAC 02:00:<NIC id>.  That is the only NIC whose
 * owner can complete a TCP handshake from that address: the kernel sends
 * its SYN-ACK to exactly that MAC through exactly that bridge.  The
 * firewall pins each tap to its own MAC and addresses.
 *
 * Answers are cached per source address (positive and negative), so a
 * request costs a hash lookup, not a netlink dump.  Invariant: a cached
 * answer is never older than what the kernel said after the last change
 * that could alter it.  A netlink socket subscribed to neighbour, link and
 * route changes is read (without blocking) before every lookup:
 *   - a neighbour change for an address drops that address's answer;
 *   - a link change (a rename, a deletion) drops the answers resolved
 *     through that link (changes of the bridges' ports alter no route,
 *     name or neighbour entry: they keep theirs);
 *   - any route change, and a lost event (ENOBUFS), drop them all.
 * Dropping is all an event ever does, so its order relative to the query
 * that filled an entry does not matter: at worst an entry is refilled
 * once more.  A miss costs two netlink requests (a route lookup and the
 * neighbour entry on that interface), never a dump.
 */
#ifndef HC_METADATA_IDENT_H
#define HC_METADATA_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A source address: family, scope (the interface of an IPv6 link-local
 * address, else 0) and address bytes.  24 bytes, no padding to leak. */
struct ident_key {
	uint8_t family;            /* AF_INET or AF_INET6 */
	uint8_t zero[3];
	uint32_t scope;
	uint8_t addr[16];          /* IPv4: the first 4 bytes */
};

struct ident_stats {
	uint64_t lookups;
	uint64_t misses;           /* answers asked of the kernel */
	uint64_t events;           /* change notifications read */
	uint64_t flushes;          /* all answers dropped (link/route change, lost events) */
};

struct ident;

/* NULL and *err (malloc'd) when netlink cannot be opened. */
struct ident *ident_new(char **err);
void ident_free(struct ident *id);

/* The key of a client address; false for another family. */
bool ident_key_of(const struct sockaddr *sa, struct ident_key *k);

/* The hackcloud NIC (and the network of the bridge it was seen on) behind
 * the address, as the kernel has it now; false when there is none. */
bool ident_lookup(struct ident *id, const struct ident_key *k, uint64_t *nic_id, uint64_t *net_id);

const struct ident_stats *ident_stats(const struct ident *id);

/* ---- exposed for the unit tests ---------------------------------------- */

/* For each notification in a buffer read from the netlink socket:
 * drop(arg, key, 0) for a neighbour change of an IPv4/IPv6 address,
 * drop(arg, NULL, ifindex) for a change of that link, drop(arg, NULL, 0)
 * for a route change.  Other messages are skipped. */
void ident_parse_events(const void *buf, size_t len,
			void (*drop)(void *arg, const struct ident_key *k, int ifindex), void *arg);

/* A route lookup's reply: the outgoing interface of a directly connected
 * unicast route; 0 for anything else (an error, a gateway, a local or
 * unreachable route). */
int ident_parse_route(const void *buf, size_t len);

/* A neighbour lookup's reply: the NIC behind a usable entry (not failed or
 * incomplete) with a hackcloud MAC; false for anything else. */
bool ident_parse_neigh(const void *buf, size_t len, uint64_t *nic_id);

#endif
