/*
 * usage — bandwidth limits, traffic counters and what a provider bills
 * from, in the store (issue 13 §1, §2; DESIGN §6: "traffic counters are
 * sampled from the kernel and accumulated in the store").
 *
 * Limits (intent: writing them fires the change hook, so the agents shape
 * at once): a NIC's own (nic_limits), its network's default for NICs
 * without one (net_limits), an admin's per-user cap on any NIC's rate and
 * monthly traffic quota (user_traffic — a table of its own, apart from the
 * users' resource quotas), a VM's monthly traffic quota (vm_traffic).
 * Rates are bits/s, bursts and quotas bytes; 0 is "none" throughout.
 *
 * Counters (bookkeeping: no hook, no announcement):
 *   meter_nics  the last raw sample of each NIC's tap, per host that took
 *               it: (nic, host) → ifindex, the kernel's counters, when, and
 *               the rates over the interval before.  A row exists while
 *               that host has the tap.
 *   usage_nic   traffic per (month, NIC), with its VM and owner, kept when
 *               the VM is gone (billing outlives the VM).
 *   hosts.meter_at, .meter_boot   when each host last accounted its VMs'
 *               resources, and its boot ID then (a host that rebooted ran no
 *               VM meanwhile); kept in the host's row (registered at start),
 *               which heartbeats rewrite anyway.
 *   usage_vm    vCPU-, memory- and disk-seconds per (month, VM).
 * Invariant: a sample and the totals it was added to are written in one
 * transaction (store_meter_commit), so after a crash the next sample's
 * difference to the stored one is exactly what was not counted yet —
 * never counted twice, and lost only if the tap went away unsampled.
 * Months are UTC "YYYY-MM"; an interval is counted in the month it ends in.
 */
#ifndef HC_STORE_USAGE_H
#define HC_STORE_USAGE_H

#include "common/rate.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define MONTH_STRLEN 7

/* "YYYY-MM" of a time (UTC) into out[MONTH_STRLEN + 1]. */
void usage_month(int64_t unix_time, char out[MONTH_STRLEN + 1]);
/* A valid "YYYY-MM" (2000..9999, 01..12). */
bool usage_month_valid(const char *s);

/* ---- limits and quotas -------------------------------------------------- */

/* A NIC's own limits / a network's default ({0} when none). */
int store_nic_limit_get(struct store *st, uint64_t nic, struct nic_limit *out);
int store_net_limit_get(struct store *st, uint64_t network, struct nic_limit *out);
/* Replace them (all zero: remove); a change of intent. */
int store_nic_limit_set(struct store *st, uint64_t nic, const struct nic_limit *l);
int store_net_limit_set(struct store *st, uint64_t network, const struct nic_limit *l);
/* The same inside the caller's transaction (a VM's or network's create). */
int store_nic_limit_write(struct store *st, uint64_t nic, const struct nic_limit *l);
int store_net_limit_write(struct store *st, uint64_t network, const struct nic_limit *l);
/* Every network's default (for lists), by network ID. */
struct net_limit_row {
	uint64_t network;
	struct nic_limit limit;
};
int store_net_limit_list(struct store *st, struct net_limit_row **out, size_t *n);

struct user_traffic {
	uint64_t rate_cap;    /* no NIC of the user faster than this (bits/s), 0 = none */
	uint64_t quota;       /* bytes in + out per month, 0 = none */
};
int store_user_traffic_get(struct store *st, uint64_t user, struct user_traffic *out);
int store_user_traffic_set(struct store *st, uint64_t user, const struct user_traffic *t);
int store_vm_quota_get(struct store *st, uint64_t vm, uint64_t *quota);
int store_vm_quota_set(struct store *st, uint64_t vm, uint64_t quota);
/* Bytes in + out of a user's VMs / one VM in a month. */
int store_traffic_used(struct store *st, const char *month, uint64_t owner, uint64_t vm,
		       uint64_t *bytes);

/* ---- what the agent shapes ---------------------------------------------- */

/* A NIC with everything its limits derive from. */
struct nic_shaping {
	uint64_t nic, vm, owner;
	struct nic_limit own;     /* the NIC's */
	struct nic_limit net;     /* its network's default */
	uint64_t cap;             /* the owner's rate cap, 0 = none */
	bool throttled;           /* the owner's or the VM's quota of the month is used up */
};
/* The NICs of VMs placed on host (or on none yet), deleted ones included
 * (their taps live until purged); vm 0 = all such, else only that VM's
 * (wherever it is).  Sorted by NIC. */
int store_nic_shaping_list(struct store *st, const char *host, uint64_t vm, const char *month,
			   struct nic_shaping **out, size_t *n);

/* ---- the meter ---------------------------------------------------------- */

/* Raw counters of a link, as the kernel keeps them. */
struct raw_counters {
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

/* Traffic from the VM's side: in = to it (the tap's tx), out = from it. */
struct traffic {
	uint64_t bytes_in, bytes_out, packets_in, packets_out;
};

/* A NIC this host meters: one of its VMs' NICs, or a NIC gone from the
 * store whose sample this host still holds (its tap not yet removed). */
struct meter_nic {
	uint64_t nic, vm, owner;
	bool sampled;             /* a sample of this host exists: */
	int64_t ifindex;
	struct raw_counters raw;
	int64_t at_ms;            /* when it was taken, ms since the epoch */
	bool moving;              /* its rates are not all zero */
};
/* nic 0: all of this host's, else that one only (if it is this host's). */
int store_meter_nics(struct store *st, const char *host, uint64_t nic, struct meter_nic **out,
		     size_t *n);

/* One NIC's new sample and what it adds. */
struct meter_sample {
	uint64_t nic, vm, owner;
	int64_t ifindex;
	struct raw_counters raw;
	int64_t at_ms;
	struct traffic delta;
	uint64_t in_bps, out_bps, in_pps, out_pps;
};

/* A VM this host accounts for: placed here, not deleted. */
struct meter_vm {
	uint64_t vm, owner;
	char *name;
	int cpus;
	int64_t memory_mib;
	int64_t disk_mib;         /* root disk (the image's size when not grown) + data disks */
	bool running;             /* its state now */
};
void meter_vms_free(struct meter_vm *v, size_t n);
int store_meter_vms(struct store *st, const char *host, struct meter_vm **out, size_t *n);
/* When this host last accounted (0: never, or no such host) and its boot
 * ID then (malloc'd, or NULL). */
int store_meter_host(struct store *st, const char *host, int64_t *at, char **boot);

/* What a VM's interval adds. */
struct meter_vm_add {
	uint64_t vm, owner;
	const char *name;
	int64_t vcpu_seconds, memory_mib_seconds, disk_mib_seconds;
};

/*
 * One transaction: each sample replaces the NIC's row of this host and its
 * delta is added to usage_nic of `month`; the rows of `gone` NICs go (their
 * taps are gone); each VM's interval is added to usage_vm; the host's
 * accounting time becomes `now` (seconds) with `boot`.
 */
int store_meter_commit(struct store *st, const char *host, const char *month, int64_t now,
		       const char *boot, const struct meter_sample *samples, size_t n_samples,
		       const uint64_t *gone, size_t n_gone, const struct meter_vm_add *vms,
		       size_t n_vms);

/* ---- reading it back ---------------------------------------------------- */

/* A NIC's counters as `hc vm stats` shows them. */
struct nic_stats {
	uint64_t nic;
	bool sampled;             /* its tap was sampled (the rates are known) */
	int64_t at;               /* seconds, of the last sample */
	uint64_t in_bps, out_bps, in_pps, out_pps;
	struct traffic month, total;
};
/* The NICs of a VM that have counters (current NICs and removed ones). */
int store_nic_stats(struct store *st, uint64_t vm, const char *month, struct nic_stats **out,
		    size_t *n);

/* One VM's month. */
struct usage_row {
	uint64_t vm, owner;
	char *name;               /* the VM's name then */
	char *owner_name;         /* NULL when the user is gone */
	struct traffic traffic;
	int64_t vcpu_seconds, memory_mib_seconds, disk_mib_seconds;
};
void usage_rows_free(struct usage_row *v, size_t n);
/* Every VM with usage in month, of owner (OWNER_ANY: all), by owner, VM. */
int store_usage_list(struct store *st, const char *month, uint64_t owner,
		     struct usage_row **out, size_t *n);

#endif
