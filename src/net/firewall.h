/*
 * firewall — the hackcloud nftables ruleset (DESIGN §6): generated from a
 * netstate snapshot, applied as one netlink transaction.
 *
 * The parts, one job each (net/fw_model.h is their table of contents):
 *   fw_check.c  may this snapshot become a ruleset? (pure)
 *   fw_gen.c    the ruleset, drawn from the snapshot into a model (pure)
 *   fw_model.c  the model: sets, chains, rules, and its version (pure)
 *   fw_text.c   the model as nft text, for people and tests (pure)
 *   fw_batch.c  the model as netlink messages, built with libnftnl (pure)
 *   fw_apply.c  what is installed, the transaction sent (the kernel)
 *
 * Contract and invariants:
 *   - The ruleset is a pure function of the snapshot.  Everything is
 *     sorted, so the same store state always yields the same model; its
 *     version (8 hex digits of a SHA-256 over the model) is part of every
 *     chain and set name except the base chains and the counter.  A
 *     restarted daemon with an unchanged store therefore changes nothing.
 *   - Generate and apply are separate: only firewall_apply() and
 *     firewall_remove() talk to the kernel.
 *   - hackcloud owns two tables, "bridge hackcloud" and "inet hackcloud",
 *     entirely.  Their base chains hold exactly one rule each: a jump to the
 *     chain of the current version.  An apply builds the new version's
 *     chains and sets, swaps those jumps and deletes every other chain and
 *     set in the two tables, all in one transaction: packets see the old
 *     ruleset or the new one, never a mix, and nothing stale survives.
 *   - Per-packet work does not grow with the number of NICs, VMs or
 *     networks: per-NIC facts are set elements (concatenations keyed by
 *     the tap name), per-VM rules are reached through verdict maps.  Only
 *     a VM's own rules are evaluated for a packet to that VM.
 *   - Guests reach their host only for what they need of it (the input
 *     chain, see fw_gen.c); what else they send the host is dropped and
 *     counted in the named counter FIREWALL_GUEST_DROP of the inet table.
 *   - Only names derived from IDs, addresses and numbers reach the kernel;
 *     no user string (VM or network names) ever does.  Every interface
 *     name is checked against its ID first.
 *   - Bits FIREWALL_MARK_EST and FIREWALL_MARK_CROSS of the packet mark
 *     belong to hackcloud (see fw_gen.c: the bridge family here has no
 *     conntrack, so the inet table hands "established/related" to the
 *     bridge table in the first; the second says "routed here from
 *     another hackcloud network", which only rules naming a source let
 *     in).
 *
 * Errors: -1 (or NULL) with a malloc'd message in *err, never logged here.
 */
#ifndef HC_FIREWALL_H
#define HC_FIREWALL_H

#include "net/netstate.h"

#define FIREWALL_TABLE      "hackcloud"
#define FIREWALL_VERSION_LEN 8
#define FIREWALL_MARK_EST   0x01000000u
#define FIREWALL_MARK_CROSS 0x02000000u
/* The named counter (inet table) of what guests sent their host and the
 * input chain dropped; unversioned, so it counts across swaps. */
#define FIREWALL_GUEST_DROP "guest-drop"

/* 0 when the snapshot can be turned into a ruleset; -1 and why otherwise
 * (a bad interface name, MAC, rule, duplicate, …).  Pure. */
int firewall_check(const struct netstate *ns, char **err);

/* The complete ruleset as an nft script (malloc'd), loadable on its own
 * into an empty kernel — what firewall_apply() installs, as text; its
 * version (FIREWALL_VERSION_LEN hex digits, malloc'd) in *version when
 * version is not NULL.  NULL with errno EINVAL when firewall_check()
 * refuses the snapshot, ENOMEM when out of memory.  Pure. */
char *firewall_ruleset(const struct netstate *ns, char **version);

/* Make the kernel's hackcloud tables hold exactly the ruleset of ns:
 * nothing happens when that version is already installed; otherwise one
 * netlink transaction adds it, swaps the base-chain jumps and deletes
 * every other chain and set in the hackcloud tables.  First ensures the
 * bridge-netfilter sysctls the ruleset depends on (see fw_gen.c). */
int firewall_apply(const struct netstate *ns, char **err);

/* Remove both hackcloud tables; absent tables are success. */
int firewall_remove(char **err);

#endif
