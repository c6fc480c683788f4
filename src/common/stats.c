/* stats — see stats.h. */
#include "common/stats.h"

#include <stdatomic.h>
#include <time.h>

const double stat_bounds[STAT_N_BOUNDS] = { STAT_BOUNDS };

static _Atomic uint64_t counters[STAT_N];

/* Sums in nanoseconds: an integer adds atomically, a double does not. */
static struct {
	_Atomic uint64_t buckets[STAT_N_BOUNDS + 1];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
} hists[HIST_N];

int stat_bucket(double seconds)
{
	int i = 0;

	while (i < STAT_N_BOUNDS && seconds > stat_bounds[i])
		i++;
	return i;
}

void stat_inc(enum stat_counter c)
{
	atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

uint64_t stat_get(enum stat_counter c)
{
	return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

void stat_observe(enum stat_hist h, double seconds)
{
	if (seconds < 0)
		seconds = 0;
	atomic_fetch_add_explicit(&hists[h].buckets[stat_bucket(seconds)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hists[h].sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
	atomic_fetch_add_explicit(&hists[h].count, 1, memory_order_relaxed);
}

void stat_hist_get(enum stat_hist h, struct stat_hist_snap *out)
{
	out->count = 0;
	/* The count is the sum of the buckets read, so the rendered +Inf
	 * bucket and _count always agree. */
	for (int i = 0; i <= STAT_N_BOUNDS; i++) {
		out->buckets[i] = atomic_load_explicit(&hists[h].buckets[i], memory_order_relaxed);
		out->count += out->buckets[i];
	}
	out->sum = (double)atomic_load_explicit(&hists[h].sum_ns, memory_order_relaxed) / 1e9;
}

double stat_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
