/*
 * shapebench — the kernel side of per-NIC limits and counters at scale
 * (bench/shaping.sh runs it in a network namespace of its own).
 *
 *   shapebench N IN OUT     make N taps v0200…, then time: a converge that
 *                           creates every limit, one that finds them all
 *                           right, a thorough one (reads every filter back),
 *                           a link dump with counters (the meter's read),
 *                           a converge that removes the limits of the
 *                           first 100 (ifb deletions: one RCU grace period
 *                           each).  IN/OUT are rates ("100mbit", "none").
 * The taps stay: the script deletes the namespace, which removes them all
 * in one batch.
 * Prints one "key value" line per figure.
 */
#include "common/ids.h"
#include "common/rate.h"
#include "net/link.h"
#include "net/linkstats.h"
#include "net/shaping.h"

#include <netlink/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int converge(struct shaper *s, const struct shape_want *w, size_t n, bool thorough,
		    const char *what)
{
	struct shape_report r;
	char *err = NULL;
	double t0 = now_s();
	int rc = shaper_converge(s, w, n, thorough, &r, &err);

	printf("%s_s %.3f\n%s_changed %zu\n", what, now_s() - t0, what, r.changed);
	if (rc < 0)
		fprintf(stderr, "shapebench: %s: %s (%zu failed)\n", what, err ? err : "?", r.failed);
	free(err);
	return rc;
}

int main(int argc, char **argv)
{
	struct rate_limit in = { 0 }, out = { 0 };
	struct shaper *s;
	char *err = NULL;

	if (argc != 4 || (!rate_side_parse(argv[2], &in)) || !rate_side_parse(argv[3], &out)) {
		fprintf(stderr, "usage: shapebench N IN OUT\n");
		return 2;
	}
	size_t n = strtoul(argv[1], NULL, 10);
	struct shape_want *w = calloc(n + 1, sizeof(*w)), *none = calloc(n + 1, sizeof(*none));
	if (w == NULL || none == NULL || (s = shaper_new(&err)) == NULL) {
		fprintf(stderr, "shapebench: %s\n", err ? err : "out of memory");
		return 1;
	}
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		/* A bridge takes at most 1024 ports: a network per thousand. */
		ifname_str br = ifname_bridge(0xfff000 + i / 1000);
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "fd00:ffff:%zx::/64", i / 1000);
		w[i] = (struct shape_want){ .nic = i + 1, .in = in, .out = out };
		none[i] = (struct shape_want){ .nic = i + 1 };
		if ((i % 1000 == 0 && bridge_ensure(br.s, prefix, NULL, &err) < 0) ||
		    tap_ensure(ifname_tap(i + 1).s, br.s, -1, &err) < 0) {
			fprintf(stderr, "shapebench: %s\n", err);
			return 1;
		}
	}
	printf("taps_s %.3f\n", now_s() - t0);
	int rc = converge(s, w, n, false, "apply");
	rc |= converge(s, w, n, false, "again");
	rc |= converge(s, w, n, true, "thorough");

	struct nl_sock *sk = link_dump_socket(&err);
	struct link_stat *st = NULL;
	size_t n_st = 0;
	t0 = now_s();
	if (sk == NULL || link_stats_dump(sk, "v", &st, &n_st, &err) < 0)
		fprintf(stderr, "shapebench: %s\n", err);
	printf("stats_dump_s %.3f\nstats_links %zu\n", now_s() - t0, n_st);
	free(st);
	nl_socket_free(sk);

	size_t few = n < 100 ? n : 100;
	for (size_t i = 0; i < few; i++)
		w[i] = none[i];
	printf("unshape_nics %zu\n", few);
	rc |= converge(s, w, n, false, "unshape");
	free(err);
	shaper_free(s);
	free(w);
	free(none);
	return rc ? 1 : 0;
}
