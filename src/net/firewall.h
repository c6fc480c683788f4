/*
 * firewall — the hackcloud nftables ruleset (DESIGN §6): generated as text
 * from a netstate snapshot, applied through libnftables in one transaction.
 *
 * Contract and invariants:
 *   - The ruleset is a pure function of the snapshot.  firewall_ruleset()
 *     sorts everything it emits, so the same store state always yields
 *     byte-identical text; its version (8 hex digits of the SHA-256 of the
 *     text) is part of every chain and set name except the base chains.  A
 *     restarted daemon with an unchanged store therefore changes nothing.
 *   - Generate and apply are separate: firewall_ruleset() and
 *     firewall_check() touch nothing; firewall_apply() and firewall_remove()
 *     are the only functions that talk to the kernel.
 *   - hackcloud owns two tables, "bridge hackcloud" and "inet hackcloud",
 *     entirely.  Their base chains hold exactly one rule each: a jump to the
 *     chain of the current version.  An apply builds the new version's
 *     chains and sets, swaps those jumps and deletes every other object in
 *     the two tables, all in one transaction: packets see the old ruleset
 *     or the new one, never a mix, and nothing stale survives.
 *   - Per-packet work does not grow with the number of NICs, VMs or
 *     networks: per-NIC facts are set elements (concatenations keyed by
 *     the tap name), per-VM rules are reached through verdict maps.  Only
 *     a VM's own rules are evaluated for a packet to that VM.
 *   - Only names derived from IDs, addresses and numbers reach the text;
 *     no user string (VM or network names) is ever emitted.  Every
 *     interface name is checked against its ID before it is written.
 *   - Bit FIREWALL_MARK_EST of the packet mark belongs to hackcloud (see
 *     firewall.c: the bridge family here has no conntrack, so the inet
 *     table hands "established/related" to the bridge table in that bit).
 *
 * Errors: -1 (or NULL) with a malloc'd message in *err, never logged here.
 */
#ifndef HC_FIREWALL_H
#define HC_FIREWALL_H

#include "net/netstate.h"

#define FIREWALL_TABLE      "hackcloud"
#define FIREWALL_VERSION_LEN 8
#define FIREWALL_MARK_EST   0x01000000u
/* The named counter (inet table) of what guests sent their host and the
 * input chain dropped; unversioned, so it counts across swaps. */
#define FIREWALL_GUEST_DROP "guest-drop"

/* 0 when the snapshot can be turned into a ruleset; -1 and why otherwise
 * (a bad interface name, MAC, rule, duplicate, …).  Pure. */
int firewall_check(const struct netstate *ns, char **err);

/* The complete ruleset as an nft script (malloc'd), loadable on its own
 * into an empty kernel; its version (FIREWALL_VERSION_LEN hex digits,
 * malloc'd) in *version when version is not NULL.  NULL with errno EINVAL
 * when firewall_check() refuses the snapshot, ENOMEM when out of memory.
 * Pure. */
char *firewall_ruleset(const struct netstate *ns, char **version);

/* Make the kernel's hackcloud tables hold exactly firewall_ruleset(ns):
 * nothing happens when that version is already installed; otherwise one
 * transaction adds it, swaps the base-chain jumps and deletes everything
 * else in the hackcloud tables.  First ensures the bridge-netfilter
 * sysctls the ruleset depends on (see firewall.c). */
int firewall_apply(const struct netstate *ns, char **err);

/* Remove both hackcloud tables; absent tables are success. */
int firewall_remove(char **err);

#endif
