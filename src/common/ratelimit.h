/*
 * ratelimit — token-bucket arithmetic with the clock injected, so callers
 * own their tables of buckets and tests own time.
 *
 * A bucket holds up to `burst` tokens and gains `rate` tokens per second;
 * each request takes one.  Invariants: 0 <= tokens <= burst after every
 * call; a clock that steps backwards adds nothing (and does not move at_ms
 * back, so the lost interval is not credited twice later).
 */
#ifndef HC_RATELIMIT_H
#define HC_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rate_bucket {
	double tokens;
	int64_t at_ms;          /* when tokens was last brought up to date */
};

/* A full bucket as of now_ms: a new client may use its whole burst. */
void ratelimit_fill(struct rate_bucket *b, double burst, int64_t now_ms);

/*
 * Refill for the time since at_ms, then take one token.  True when taken.
 * When refused and retry_after_s is not NULL it receives the seconds until
 * one token will be there (0 when taken).  rate <= 0 means unlimited.
 */
bool ratelimit_take(struct rate_bucket *b, double rate, double burst, int64_t now_ms,
		    double *retry_after_s);

#endif
