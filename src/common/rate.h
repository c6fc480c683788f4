/*
 * rate — bandwidth limits as people write them, as the API carries them
 * and as the kernel's token bucket takes them (issue 13 §1).  Pure.
 *
 * Conventions, the same everywhere (API, CLI, store, kernel):
 *   - a rate is bits per second (an integer); 0 means "no limit";
 *   - a burst is bytes; 0 means "the default for that rate";
 *   - "in" is traffic to the VM (what its guest receives: the tap's egress
 *     on the host), "out" is traffic from the VM (what its guest sends: the
 *     tap's ingress on the host).
 *
 * Text forms (the CLI; the API takes the integers):
 *   RATE   N[unit], unit bit|kbit|mbit|gbit|tbit or k|m|g|t (powers of 1000,
 *          bits: "100mbit" = 100,000,000 bit/s; tc's "kbps" — bytes — is
 *          refused rather than silently read as bits)
 *   BURST  bytes with size_parse()'s binary suffixes: "64k" = 65,536
 *   SIDE   RATE[:BURST] | none
 *   SPEC   SIDE            both directions alike
 *          SIDE/SIDE       in (to the VM) / out (from the VM)
 */
#ifndef HC_RATE_H
#define HC_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATE_MIN   UINT64_C(8000)              /* 8 kbit/s */
#define RATE_MAX   UINT64_C(400000000000)      /* 400 gbit/s */
#define BURST_MIN  UINT64_C(4096)              /* well above one full frame */
#define BURST_MAX  (UINT64_C(1) << 30)         /* the kernel keeps it in 32 bits */

/* One direction: rate 0 = no limit; burst 0 = default. */
struct rate_limit {
	uint64_t rate;
	uint64_t burst;
};

/* A NIC's limits, or a network's default for its NICs. */
struct nic_limit {
	struct rate_limit in, out;
};

/* "100mbit" → 100000000.  False for anything else, 0, or outside
 * RATE_MIN..RATE_MAX. */
bool rate_parse(const char *s, uint64_t *bps);
/* "100mbit", "1500kbit", "8000bit": the largest unit that divides exactly. */
void rate_format(uint64_t bps, char *buf, size_t len);
/* A limit as a SPEC that rate_spec_parse() reads back: "20mbit:64k/none";
 * one SIDE when both are alike. */
void rate_spec_format(const struct nic_limit *l, char *buf, size_t len);
/* One SIDE: "none" → {0, 0}. */
bool rate_side_parse(const char *s, struct rate_limit *out);
/* A SPEC; false with a reason in err (len bytes) when it is malformed. */
bool rate_spec_parse(const char *s, struct nic_limit *out, char *err, size_t len);
/* A valid limit: rate 0 (and burst 0), or a rate and a burst (0 or within
 * BURST_MIN..BURST_MAX) in range. */
bool rate_limit_valid(const struct rate_limit *l);

/*
 * The token bucket for a rate (issue 13 §1: shaping, not policing).
 *   burst: the configured one, else 10 ms at the rate but at least 16 KiB
 *     (TCP needs a few segments of credit to keep its window open);
 *   queue: what may wait in the bucket's queue, in bytes: the burst plus
 *     50 ms at the rate — enough for TCP to meet the rate without the
 *     latency of an unbounded queue.
 */
uint64_t rate_burst(const struct rate_limit *l);
uint64_t rate_queue(const struct rate_limit *l);

/* The lower of two limits of one direction (0 = none is the highest).  A
 * limit lowered this way keeps its burst only when that does not exceed
 * the default of the lower rate: a large burst must not carry a throttled
 * NIC through at full speed. */
struct rate_limit rate_limit_min(struct rate_limit a, struct rate_limit b);
bool rate_limit_equal(const struct rate_limit *a, const struct rate_limit *b);

#endif
