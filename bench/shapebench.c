/*
 * shapebench — per-NIC limits and counters at scale (bench/shaping.sh runs
 * it, each kernel mode in a network namespace of its own).
 *
 *   shapebench scale N IN OUT   make N taps v0200… (a bridge per thousand:
 *                               a bridge takes 1024 ports), then time: a
 *                               converge that creates every limit, one that
 *                               finds them all right (an agent pass), a
 *                               thorough one (reads every redirect back: a
 *                               resync), a link dump with counters (the
 *                               meter's read), and a converge that removes
 *                               the limits of the first 100 (ifb deletions
 *                               wait for an RCU grace period each).  The
 *                               taps stay: the script deletes the
 *                               namespace, which removes them in one batch.
 *   shapebench shape NIC IN OUT limit the existing link of NIC, nothing else.
 *   shapebench store N DIR      a SQLite store in DIR with N VMs of one NIC
 *                               on one host, then time what the meter and
 *                               the agent ask of it: loading the NICs and
 *                               their samples, storing a sample of every
 *                               NIC (all busy) with the totals, accounting
 *                               every VM's resources, the agent's list of
 *                               limits, and the month's usage report.
 * IN/OUT are rates ("100mbit", "none").  One "key value" line per figure.
 */
#include "agent/meter.h"
#include "common/ids.h"
#include "common/rate.h"
#include "net/link.h"
#include "net/linkstats.h"
#include "net/shaping.h"
#include "store/store.h"
#include "store/usage.h"

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

	printf("%s_s %.3f\n%s_changed %zu\n", what, now_s() - t0, what, r.changed + r.strays);
	if (rc < 0)
		fprintf(stderr, "shapebench: %s: %s (%zu failed)\n", what, err ? err : "?", r.failed);
	free(err);
	return rc;
}

static int scale(size_t n, struct rate_limit in, struct rate_limit out)
{
	struct shape_want *w = calloc(n + 1, sizeof(*w));
	struct shaper *s;
	char *err = NULL;

	if (w == NULL || (s = shaper_new(&err)) == NULL) {
		fprintf(stderr, "shapebench: %s\n", err ? err : "out of memory");
		return 1;
	}
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		ifname_str br = ifname_bridge(0xfff000 + i / 1000);
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "fd00:ffff:%zx::/64", i / 1000);
		w[i] = (struct shape_want){ .nic = i + 1, .in = in, .out = out };
		if ((i % 1000 == 0 && bridge_ensure(br.s, prefix, NULL, &err) < 0) ||
		    tap_ensure(ifname_tap(i + 1).s, br.s, -1, &err) < 0) {
			fprintf(stderr, "shapebench: %s\n", err);
			return 1;
		}
	}
	printf("nics %zu\ntaps_s %.3f\n", n, now_s() - t0);
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
		w[i] = (struct shape_want){ .nic = i + 1 };
	printf("unshape_nics %zu\n", few);
	rc |= converge(s, w, n, false, "unshape");
	free(err);
	shaper_free(s);
	free(w);
	return rc ? 1 : 0;
}

static int shape(uint64_t nic, struct rate_limit in, struct rate_limit out)
{
	struct shape_want w = { .nic = nic, .in = in, .out = out };
	struct shaper *s;
	char *err = NULL;

	if ((s = shaper_new(&err)) == NULL) {
		fprintf(stderr, "shapebench: %s\n", err ? err : "out of memory");
		return 1;
	}
	int rc = converge(s, &w, 1, false, "shape");
	shaper_free(s);
	return rc ? 1 : 0;
}

#define TIME(what, call)                                                       \
	do {                                                                   \
		double t0_ = now_s();                                          \
		if ((call) != STORE_OK) {                                      \
			fprintf(stderr, "shapebench: %s failed\n", what);      \
			return 1;                                              \
		}                                                              \
		printf("%s_s %.3f\n", what, now_s() - t0_);                    \
	} while (0)

static int store(size_t n, const char *dir)
{
	char uri[512], *err = NULL, month[MONTH_STRLEN + 1];
	struct store *st;

	snprintf(uri, sizeof(uri), "sqlite:%s/bench.db", dir);
	if ((st = store_open(uri, dir, &err)) == NULL) {
		fprintf(stderr, "shapebench: %s\n", err ? err : "store");
		return 1;
	}
	struct image im = { .name = "k", .owner = OWNER_ROOT, .format = "kernel", .boot = "kernel" };
	struct network net = { .name = "n", .owner = OWNER_ROOT, .ipv6 = "fd00:beef::/64" };
	if (store_image_create(st, &im) != STORE_OK ||
	    store_image_finalize(st, im.id, "00", "kernel", 1) != STORE_OK ||
	    store_network_create(st, &net) != STORE_OK)
		return 1;
	double t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		char name[32];
		struct nic_limit l = { { 100000000, 0 }, { 100000000, 0 } };
		snprintf(name, sizeof(name), "vm%zu", i);
		struct vm vm = { .name = name, .owner = OWNER_ROOT, .image = im.id, .cpus = 1,
				 .memory_mib = 256, .desired = "running", .state = "running",
				 .host = "bench", .nic_limits = &l };
		if (store_vm_create(st, &vm, &net.id, 1) != STORE_OK)
			return 1;
	}
	printf("vms %zu\ncreate_s %.3f\n", n, now_s() - t0);

	struct meter_nic *rows = NULL;
	size_t n_rows = 0;
	usage_month(time(NULL), month);
	TIME("meter_load", store_meter_nics(st, "bench", 0, &rows, &n_rows));
	struct meter_sample *s = calloc(n_rows + 1, sizeof(*s));
	struct meter_vm_add *adds = calloc(n_rows + 1, sizeof(*adds));
	if (s == NULL || adds == NULL)
		return 1;
	for (int round = 1; round <= 2; round++) {
		/* Every NIC busy: a new sample and a delta each. */
		for (size_t i = 0; i < n_rows; i++) {
			struct link_stat cur = { .ifindex = (int)i + 10, .rx_bytes = 1500u * round,
						 .tx_bytes = 3000u * round, .rx_packets = 1u * round,
						 .tx_packets = 2u * round };
			s[i] = (struct meter_sample){ .nic = rows[i].nic, .vm = rows[i].vm,
						      .owner = rows[i].owner, .ifindex = cur.ifindex,
						      .raw = { cur.rx_bytes, cur.tx_bytes, cur.rx_packets,
							       cur.tx_packets }, .at_ms = round * 10000 };
			meter_delta(&rows[i], &cur, &s[i].delta);
			adds[i] = (struct meter_vm_add){ .vm = rows[i].vm, .owner = OWNER_ROOT,
							 .name = "vm", .vcpu_seconds = 10,
							 .memory_mib_seconds = 2560 };
		}
		TIME(round == 1 ? "meter_commit_first" : "meter_commit",
		     store_meter_commit(st, "bench", month, round * 10, "boot", s, n_rows, NULL, 0,
					adds, n_rows));
	}
	struct nic_shaping *sh = NULL;
	size_t n_sh = 0;
	TIME("shaping_list", store_nic_shaping_list(st, "bench", 0, month, &sh, &n_sh));
	struct usage_row *u = NULL;
	size_t n_u = 0;
	TIME("usage_list", store_usage_list(st, month, OWNER_ANY, &u, &n_u));
	printf("usage_rows %zu\nshaping_rows %zu\n", n_u, n_sh);
	usage_rows_free(u, n_u);
	free(sh);
	free(s);
	free(adds);
	free(rows);
	store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	struct rate_limit in = { 0 }, out = { 0 };

	if (argc == 4 && strcmp(argv[1], "store") == 0)
		return store(strtoul(argv[2], NULL, 10), argv[3]);
	if (argc != 5 || !rate_side_parse(argv[3], &in) || !rate_side_parse(argv[4], &out)) {
		fprintf(stderr, "usage: shapebench scale N IN OUT | shape NIC IN OUT | store N DIR\n");
		return 2;
	}
	if (strcmp(argv[1], "scale") == 0)
		return scale(strtoul(argv[2], NULL, 10), in, out);
	if (strcmp(argv[1], "shape") == 0)
		return shape(strtoull(argv[2], NULL, 10), in, out);
	fprintf(stderr, "shapebench: unknown mode '%s'\n", argv[1]);
	return 2;
}
