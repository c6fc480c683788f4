/*
 * vmstats — what a running VM uses, read from the host's kernel and from
 * QEMU, for GET /metrics (issue 15 §1):
 *   - CPU time and resident memory of its QEMU process (/proc/PID/stat
 *     utime+stime, /proc/PID/status VmRSS): the vCPUs' work plus QEMU's
 *     own, which is what the host pays;
 *   - bytes and packets of each NIC, from the link statistics of its tap
 *     (netlink), turned round to the guest's point of view: what the tap
 *     transmits, the guest receives;
 *   - reads, writes and bytes of each disk, from QMP query-blockstats.
 *
 * Every function may run on a worker thread: none touches the store or
 * anything of the loop.  The parsers are pure and unit tested.
 *
 * The NIC counters come from one place (nicstats_*), the same link dump
 * the traffic meter samples (net/linkstats.h).  They are the taps' own:
 * they start at zero with each tap; the totals that survive restarts are
 * the meter's, in the store (store/usage.h, GET /v1/vms/{ref}/stats).
 */
#ifndef HC_VMSTATS_H
#define HC_VMSTATS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_usage {
	double cpu_seconds;     /* user + system time of every thread */
	uint64_t rss_bytes;
};

/* 0, or -1 when the process is gone or /proc says something unexpected. */
int vmstats_proc(pid_t pid, struct proc_usage *out);
/* The contents of /proc/PID/stat → utime + stime in seconds. */
int vmstats_parse_stat(const char *text, long ticks_per_s, double *cpu_seconds);
/* The contents of /proc/PID/status → VmRSS in bytes. */
int vmstats_parse_rss(const char *text, uint64_t *bytes);

/* Counters of a NIC from the guest's side. */
struct nic_counters {
	uint64_t rx_bytes, rx_packets;  /* into the guest */
	uint64_t tx_bytes, tx_packets;  /* out of the guest */
};

struct nicstats;
/* One snapshot of every link's counters (one netlink dump); NULL and a
 * message on failure. */
struct nicstats *nicstats_open(char **err);
/* The counters of the tap ifname: 0, or -1 when there is no such link. */
int nicstats_get(struct nicstats *s, const char *ifname, struct nic_counters *out);
void nicstats_close(struct nicstats *s);

struct disk_counters {
	char name[48];          /* QEMU's device name ("virtio0"), else its qdev or node */
	uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops;
};

/* query-blockstats' "return" → up to max disks; how many were filled. */
size_t vmstats_blockstats_parse(json_t *reply, struct disk_counters *out, size_t max);
/* Ask the VM's QMP socket; -1 and a message when QEMU does not answer
 * (bounded by QMP_TIMEOUT_MS). */
int vmstats_blockstats(const char *qmp_path, struct disk_counters *out, size_t max, size_t *n,
		       char **err);

#endif
