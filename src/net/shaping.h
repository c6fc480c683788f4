/*
 * shaping — per-NIC bandwidth limits in the kernel, on the host side of
 * the NIC's tap (issue 13 §1, DESIGN §6), through netlink.
 *
 *   to the VM ("in")    the tap's root qdisc: a TBF, handle 4843: ("HC")
 *   from the VM ("out") the tap's ingress qdisc (ffff:) holds one u32
 *                       filter that matches every frame and redirects it
 *                       (mirred egress redirect) to the NIC's ifb
 *                       "i" + the 12 hex of its MAC, whose root qdisc is a
 *                       TBF 4843:; the ifb hands each frame back to the
 *                       tap's receive path once the bucket lets it go, so
 *                       the bridge and the firewall see it arrive on the tap
 *                       exactly as before.
 *
 * Why shaping (a token bucket with a queue) and not policing (tc police,
 * nftables `limit`): a policer drops what exceeds the rate at once, and
 * TCP, which reads every drop as congestion, then settles well below the
 * rate; a queue that delays the excess lets TCP meet it (measured: goodput
 * 94–96 % of the limit, the rest being headers).  This kernel has no `police` action anyway.  Why TBF
 * and not HTB: one class per NIC is all that is needed, and TBF is that
 * class without the hierarchy.  Why an ifb per NIC and not one shared one:
 * a qdisc only queues what a device sends, so what the tap receives must
 * be sent by some device to be shaped; one ifb per NIC needs no classifier
 * (a shared one would need a filter per NIC to pick its class, walked per
 * packet) and goes away with its NIC.  The link is found by name only, so a
 * veth named like a tap (the tests' stand-in for a guest) is shaped by the
 * same code.
 *
 * Contract: shaper_converge() makes the kernel match want[] for every NIC
 * whose link "v<mac>" exists (a NIC without one is not on this host now and
 * is skipped); rate 0 in a direction means no limit, and then nothing of
 * ours is left for it.  Every step compares first and leaves what is
 * already right alone, so a converge after a restart of hcd changes
 * nothing, and changing a limit replaces the TBF in place (no moment
 * without one).  ifbs "i0200…" that no want[] entry needs are removed.
 * Failures of one NIC do not stop the others: they are counted, and the
 * first is returned in *err.
 */
#ifndef HC_SHAPING_H
#define HC_SHAPING_H

#include "common/rate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHAPE_HANDLE  0x48430000u   /* "HC:": the root TBFs that are ours */
#define SHAPE_PRIO    0x4843u       /* the u32 filter's priority on the tap's ingress */

struct shape_want {
	uint64_t nic;
	struct rate_limit in, out;    /* rate 0: none */
};

struct shape_report {
	size_t links;     /* wanted NICs whose link exists here */
	size_t changed;   /* qdiscs, filters and ifbs of wanted NICs created, changed or removed */
	size_t strays;    /* ifbs removed that no wanted NIC needs */
	size_t failed;    /* NICs at least one step failed for */
};

/* A TBF as the kernel keeps it (what a dump shows of it). */
struct tbf_params {
	uint64_t rate;        /* bytes per second */
	uint32_t burst;       /* bytes */
	uint32_t limit;       /* bytes that may queue */
	uint32_t buffer;      /* the burst in psched ticks (64 ns) at the rate */
};

/* Pure: the TBF for a limit (rate in bits/s).  The buffer is computed as
 * the kernel does (psched_ratecfg_precompute, psched_l2t_ns), so a dump of
 * a TBF made from it compares equal. */
void tbf_params_of(const struct rate_limit *l, struct tbf_params *out);

struct shaper;

struct shaper *shaper_new(char **err);
void shaper_free(struct shaper *s);
/* thorough: also read back the filters this shaper already found right
 * (someone may have changed them); else only the qdiscs and links are
 * read, one dump each. */
int shaper_converge(struct shaper *s, const struct shape_want *want, size_t n, bool thorough,
		    struct shape_report *r, char **err);
/* The NIC's ifb goes (its tap's qdiscs go with the tap); any thread. */
int shaping_ifb_remove(uint64_t nic, char **err);

#endif
