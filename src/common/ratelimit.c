/* ratelimit — see ratelimit.h. */
#include "common/ratelimit.h"

void ratelimit_fill(struct rate_bucket *b, double burst, int64_t now_ms)
{
	b->tokens = burst;
	b->at_ms = now_ms;
}

bool ratelimit_take(struct rate_bucket *b, double rate, double burst, int64_t now_ms,
		    double *retry_after_s)
{
	if (retry_after_s)
		*retry_after_s = 0;
	if (rate <= 0)
		return true;
	if (now_ms > b->at_ms) {
		b->tokens += (double)(now_ms - b->at_ms) / 1000.0 * rate;
		b->at_ms = now_ms;
	}
	if (b->tokens > burst)
		b->tokens = burst;
	if (b->tokens < 1.0) {
		if (retry_after_s)
			*retry_after_s = (1.0 - b->tokens) / rate;
		return false;
	}
	b->tokens -= 1.0;
	return true;
}
