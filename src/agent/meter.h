/*
 * meter — traffic counters of this host's NICs and the resources of its
 * VMs, sampled and accumulated in the store (issue 13 §2, DESIGN §6).
 *
 * Every meter_interval seconds the kernel's counters of every tap are read
 * with one netlink dump (on a worker thread: 10,000 links take a while),
 * then, on the loop, each tap's new sample is compared with the last one
 * the store holds for it on this host (store/usage.h) and the difference
 * is added to the month's totals, in the transaction that stores the new
 * sample.  Hence:
 *   - a restart of hcd (even kill -9) counts nothing twice and loses
 *     nothing: the taps kept counting, the stored sample is where the
 *     totals stop;
 *   - a tap made anew (QEMU restarted, the VM moved here, the host
 *     rebooted) is recognised by its ifindex (or counters lower than the
 *     sample): all it counted since it was made is new;
 *   - a tap that goes (stop, delete, hot-unplug, the VM moving away) is
 *     sampled right before it is removed (meter_tap_removing on the loop;
 *     meter_tap_read in the job that ends a QEMU and its taps), so at most
 *     what a tap carried since the last sample is lost, and only when it
 *     vanished without hcd (a host crash).
 * After counting, the NICs' limits are refreshed when a quota was just
 * used up or a month began (agent/bandwidth.h).
 *
 * Resources: each VM placed here adds, per interval, its vCPUs × seconds
 * and memory × seconds while its state is running, and its disks' size ×
 * seconds while it exists (a stopped VM's disks still take room).  The
 * interval is the time since this host's last accounting (kept in the
 * store with the host's boot ID); across a reboot only disks count.
 * Starts and stops are accurate to one interval.
 */
#ifndef HC_METER_H
#define HC_METER_H

#include "agent/bandwidth.h"
#include "common/config.h"
#include "net/linkstats.h"
#include "store/usage.h"

#include <stdbool.h>

struct worker_pool;
struct meter;

struct meter *meter_new(struct store *st, const struct config *cfg, struct bandwidth *bw);
void meter_free(struct meter *m);
/* Sample when due: starts a dump on pool (or runs it here when pool is
 * NULL); its result is counted when the pool runs the job's done.
 * Returns ms until the next sample is due. */
long long meter_tick(struct meter *m, long long now_ms, struct worker_pool *pool);
/* The NIC's tap is about to be removed: count what it carried since the
 * last sample and forget the sample. */
void meter_tap_removing(struct meter *m, uint64_t nic);

/* A tap's last counters, read right before a job off the loop removes it
 * (the agent's end of a QEMU).  On the loop, before the job starts:
 * meter_tap_leaving — until the job is done, the meter's samples leave the
 * NIC alone (its tap may be gone before the job's end is counted, which
 * must not drop its sample).  On the job's thread: meter_tap_read (its own
 * netlink socket).  On the loop once the job is done: meter_tap_gone, or
 * meter_tap_kept when the job did not remove the tap. */
struct tap_last {
	uint64_t nic;
	int found;                /* 1 read, 0 no such link, -1 not readable */
	struct link_stat l;
	int64_t at_ms;            /* wall clock of the reading */
};
void meter_tap_leaving(struct meter *m, uint64_t nic);
void meter_tap_read(uint64_t nic, struct tap_last *out);
/* Count what the tap carried up to last and forget its sample. */
void meter_tap_gone(struct meter *m, const struct tap_last *last);
void meter_tap_kept(struct meter *m, uint64_t nic);

/*
 * Pure: what a new reading cur of a NIC's tap adds to its last stored
 * sample prev, seen from the VM (in = what the tap sent to it).  A tap
 * other than the sampled one (no sample, another ifindex, or any counter
 * lower) started from zero: all of cur is new.  Returns true when the tap
 * is the sampled one (so rates over the interval mean something).
 */
bool meter_delta(const struct meter_nic *prev, const struct link_stat *cur, struct traffic *delta);

#endif
