/*
 * test_usage — bandwidth limits and traffic metering (issue 13 §1, §2)
 * without a kernel: the rate syntax (common/rate.h), the token bucket as
 * the kernel computes it (net/shaping.h), what a NIC gets
 * (bandwidth_effective), what a sample adds (meter_delta), and the store
 * (store/usage.h): limits written with the VM and network they belong to
 * and gone with them, caps and quotas, the throttle of a used-up quota
 * and its end with the month, samples and totals in one transaction,
 * counters of removed NICs, usage per VM and owner that outlives the VM.
 *
 * The store tests run on SQLite and, when HC_TEST_PG names a PostgreSQL
 * database (tests/pg.sh), on that too: the SQL is written once for both.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/bandwidth.h"
#include "agent/meter.h"
#include "common/fsutil.h"
#include "common/rate.h"
#include "net/shaping.h"
#include "store/store_internal.h"
#include "store/usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- the rate syntax ---------------------------------------------------- */

static void rates_parse_and_format(void **state)
{
	static const struct { const char *in; uint64_t bps; const char *out; } ok[] = {
		{ "100mbit", 100000000, "100mbit" }, { "100M", 100000000, "100mbit" },
		{ "1gbit", 1000000000, "1gbit" }, { "1500kbit", 1500000, "1500kbit" },
		{ "8000", 8000, "8kbit" }, { "8001bit", 8001, "8001bit" }, { "400g", 400000000000, "400gbit" },
	};
	static const char *const bad[] = {
		"", "mbit", "0", "0mbit", "7999", "401gbit", "1tbit", "10kbps", "10 mbit", "-1m",
		"1.5mbit", "99999999999999999999mbit", NULL,
	};
	uint64_t bps;
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_true(rate_parse(ok[i].in, &bps));
		assert_int_equal(bps, ok[i].bps);
		rate_format(bps, buf, sizeof(buf));
		assert_string_equal(buf, ok[i].out);
	}
	for (size_t i = 0; bad[i]; i++)
		assert_false(rate_parse(bad[i], &bps));
}

static void specs_round_trip(void **state)
{
	static const struct { const char *in, *out; uint64_t in_rate, in_burst, out_rate; } ok[] = {
		{ "100mbit", "100mbit", 100000000, 0, 100000000 },
		{ "20mbit:64k/10mbit", "20mbit:64k/10mbit", 20000000, 65536, 10000000 },
		{ "none/5mbit", "none/5mbit", 0, 0, 5000000 },
		{ "none", "none", 0, 0, 0 },
		{ "1gbit:1m", "1gbit:1m", 1000000000, 1 << 20, 1000000000 },
		{ "10mbit:5000", "10mbit:5000", 10000000, 5000, 10000000 },
	};
	static const char *const bad[] = {
		"", "/", "10mbit/", "/10mbit", "10mbit/10mbit/10mbit", "10mbit:", "10mbit:1k",
		"10mbit:2g", "none:64k", "fast", NULL,
	};
	struct nic_limit l;
	char buf[160], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_true(rate_spec_parse(ok[i].in, &l, err, sizeof(err)));
		assert_int_equal(l.in.rate, ok[i].in_rate);
		assert_int_equal(l.in.burst, ok[i].in_burst);
		assert_int_equal(l.out.rate, ok[i].out_rate);
		rate_spec_format(&l, buf, sizeof(buf));
		assert_string_equal(buf, ok[i].out);
	}
	for (size_t i = 0; bad[i]; i++) {
		err[0] = '\0';
		assert_false(rate_spec_parse(bad[i], &l, err, sizeof(err)));
		assert_non_null(strstr(err, "is not a rate"));
	}
}

static void buckets(void **state)
{
	struct rate_limit slow = { 1000000, 0 }, fast = { 10000000000, 0 }, set = { 10000000, 32768 };
	struct tbf_params p;

	(void)state;
	/* The default burst: 10 ms at the rate, at least 16 KiB. */
	assert_int_equal(rate_burst(&slow), 16384);
	assert_int_equal(rate_burst(&fast), 12500000);
	assert_int_equal(rate_burst(&set), 32768);
	/* The queue: the burst and 50 ms more. */
	assert_int_equal(rate_queue(&set), 32768 + 62500);
	/* As the kernel keeps it: 10 Mbit/s, 32 KiB = 26.2144 ms = 409600
	 * ticks of 64 ns (what `tc` shows as "burst 32Kb" at "rate 10Mbit"). */
	tbf_params_of(&set, &p);
	assert_int_equal(p.rate, 1250000);
	assert_int_equal(p.burst, 32768);
	assert_int_equal(p.buffer, 409600);
	assert_int_equal(p.limit, 32768 + 62500);
	/* Beyond 32 bits of bytes per second (the kernel's RATE64). */
	struct rate_limit huge = { 100000000000, 0 };
	tbf_params_of(&huge, &p);
	assert_int_equal(p.rate, 12500000000);
}

static void lower_limits(void **state)
{
	struct rate_limit none = { 0 }, a = { 100000000, 1 << 20 }, b = { 2000000, 0 };
	struct rate_limit small = { 100000000, 8192 }, r;

	(void)state;
	r = rate_limit_min(none, b);
	assert_int_equal(r.rate, 2000000);
	r = rate_limit_min(a, none);
	assert_int_equal(r.rate, 100000000);
	assert_int_equal(r.burst, 1 << 20);
	/* Lowered: a large burst must not carry the NIC through at full speed. */
	r = rate_limit_min(a, b);
	assert_int_equal(r.rate, 2000000);
	assert_int_equal(r.burst, 0);
	r = rate_limit_min(small, b);
	assert_int_equal(r.burst, 8192);
	assert_true(rate_limit_equal(&b, &(struct rate_limit){ 2000000, 16384 }));
}

/* ---- what a NIC gets, what a sample adds -------------------------------- */

static void effective_limits(void **state)
{
	struct nic_shaping s = { .nic = 1 };
	enum limit_source why[2];
	struct nic_limit l;

	(void)state;
	l = bandwidth_effective(&s, 1000000, why);
	assert_int_equal(l.in.rate, 0);
	assert_int_equal(why[0], LIMIT_NONE);
	s.net = (struct nic_limit){ { 50000000, 0 }, { 0, 0 } };
	s.own = (struct nic_limit){ { 0, 0 }, { 20000000, 65536 } };
	l = bandwidth_effective(&s, 1000000, why);
	assert_int_equal(l.in.rate, 50000000);
	assert_int_equal(why[0], LIMIT_NETWORK);
	assert_int_equal(l.out.rate, 20000000);
	assert_int_equal(l.out.burst, 65536);
	assert_int_equal(why[1], LIMIT_NIC);
	/* A cap lowers what is above it and fills what is unlimited. */
	s.cap = 30000000;
	s.net.in.rate = 0;
	l = bandwidth_effective(&s, 1000000, why);
	assert_int_equal(l.in.rate, 30000000);
	assert_int_equal(why[0], LIMIT_CAP);
	assert_int_equal(l.out.rate, 20000000);
	assert_int_equal(why[1], LIMIT_NIC);
	/* Over quota: the throttle, lower than all of it. */
	s.throttled = true;
	l = bandwidth_effective(&s, 1000000, why);
	assert_int_equal(l.in.rate, 1000000);
	assert_int_equal(l.out.rate, 1000000);
	assert_int_equal(why[0], LIMIT_THROTTLE);
	assert_int_equal(why[1], LIMIT_THROTTLE);
	/* ...but never faster than the NIC had. */
	s.own.out.rate = 500000;
	l = bandwidth_effective(&s, 1000000, why);
	assert_int_equal(l.out.rate, 500000);
	assert_int_equal(why[1], LIMIT_NIC);
}

static void deltas(void **state)
{
	struct meter_nic prev = { .nic = 1, .sampled = true, .ifindex = 7,
				  .raw = { .rx_bytes = 1000, .tx_bytes = 5000, .rx_packets = 10,
					   .tx_packets = 50 } };
	struct link_stat cur = { .ifindex = 7, .rx_bytes = 1500, .tx_bytes = 9000,
				 .rx_packets = 12, .tx_packets = 60 };
	struct traffic d;

	(void)state;
	/* The same tap: the difference; rx (what the guest sent) is "out". */
	assert_true(meter_delta(&prev, &cur, &d));
	assert_int_equal(d.bytes_out, 500);
	assert_int_equal(d.bytes_in, 4000);
	assert_int_equal(d.packets_out, 2);
	assert_int_equal(d.packets_in, 10);
	/* Another ifindex: a tap made anew, all of it new. */
	cur.ifindex = 8;
	assert_false(meter_delta(&prev, &cur, &d));
	assert_int_equal(d.bytes_out, 1500);
	assert_int_equal(d.bytes_in, 9000);
	/* Counters lower than the sample: made anew too. */
	cur = (struct link_stat){ .ifindex = 7, .rx_bytes = 10, .tx_bytes = 9000 };
	assert_false(meter_delta(&prev, &cur, &d));
	assert_int_equal(d.bytes_out, 10);
	/* Never sampled: from zero. */
	prev.sampled = false;
	cur = (struct link_stat){ .ifindex = 7, .rx_bytes = 1500 };
	assert_false(meter_delta(&prev, &cur, &d));
	assert_int_equal(d.bytes_out, 1500);
}

/* ---- the store ---------------------------------------------------------- */

static const char *pg_uri;

struct ctx {
	char dir[64];
	struct store *st;
	int hooks;
};

static void on_change(void *arg)
{
	((struct ctx *)arg)->hooks++;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char uri[512], *err = NULL;

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/hc-test-usage-XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	if (pg_uri) {
		/* An empty database: the schema goes with all it holds. */
		void *h = store_engine_pg.open(pg_uri, &err);
		if (h == NULL ||
		    store_engine_pg.exec(h, "DROP SCHEMA public CASCADE", NULL, 0, NULL, NULL, &err) ||
		    store_engine_pg.exec(h, "CREATE SCHEMA public", NULL, 0, NULL, NULL, &err))
			return -1;
		store_engine_pg.close(h);
		snprintf(uri, sizeof(uri), "%s", pg_uri);
	} else {
		snprintf(uri, sizeof(uri), "sqlite:%s/t.db", c->dir);
	}
	if ((c->st = store_open(uri, c->dir, &err)) == NULL) {
		fprintf(stderr, "store_open: %s\n", err ? err : "?");
		return -1;
	}
	store_set_change_hook(c->st, on_change, c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	store_close(c->st);
	dir_remove_tree(c->dir);
	free(c);
	return 0;
}

/* An image, a network with a default limit, and a VM on host h1 with two
 * NICs, the first with limits of its own. */
struct world {
	uint64_t image, net, vm, nic[2];
};

static void make_world(struct store *st, struct world *w, uint64_t owner, const char *name)
{
	struct image im = { .name = (char *)name, .owner = owner, .format = "kernel",
			    .boot = "kernel", .has_initrd = false };
	struct nic_limit dflt = { { 50000000, 0 }, { 0, 0 } };
	struct nic_limit own[2] = { { { 0, 0 }, { 10000000, 65536 } }, { { 0, 0 }, { 0, 0 } } };
	char v6[32];

	assert_int_equal(store_image_create(st, &im), STORE_OK);
	assert_int_equal(store_image_finalize(st, im.id, SHA_A, "kernel", 4096), STORE_OK);
	snprintf(v6, sizeof(v6), "fd00:%llx::/64", (unsigned long long)im.id);
	struct network n = { .name = (char *)name, .owner = owner, .ipv6 = v6, .limit = &dflt };
	assert_int_equal(store_network_create(st, &n), STORE_OK);
	uint64_t nets[2] = { n.id, n.id };
	struct vm_disk disk = { 64 << 20 };
	struct vm vm = { .name = (char *)name, .owner = owner, .image = im.id, .cpus = 2,
			 .memory_mib = 512, .desired = "running", .state = "running", .host = "h1",
			 .nic_limits = own, .disks = &disk, .n_disks = 1 };
	assert_int_equal(store_vm_create(st, &vm, nets, 2), STORE_OK);
	struct vm got = { 0 };
	assert_int_equal(store_vm_get_id(st, vm.id, &got), STORE_OK);
	*w = (struct world){ im.id, n.id, vm.id, { got.nics[0].id, got.nics[1].id } };
	vm_free(&got);
}

static void limits_live_with_their_rows(void **state)
{
	struct ctx *c = *state;
	struct world w;
	struct nic_limit l;

	make_world(c->st, &w, OWNER_ROOT, "a");
	assert_int_equal(store_net_limit_get(c->st, w.net, &l), STORE_OK);
	assert_int_equal(l.in.rate, 50000000);
	assert_int_equal(store_nic_limit_get(c->st, w.nic[0], &l), STORE_OK);
	assert_int_equal(l.out.rate, 10000000);
	assert_int_equal(l.out.burst, 65536);
	assert_int_equal(store_nic_limit_get(c->st, w.nic[1], &l), STORE_OK);
	assert_int_equal(l.out.rate, 0);
	/* A change of intent: the hook fires (the agents shape at once). */
	int hooks = c->hooks;
	l = (struct nic_limit){ { 20000000, 0 }, { 0, 0 } };
	assert_int_equal(store_nic_limit_set(c->st, w.nic[1], &l), STORE_OK);
	assert_int_equal(c->hooks, hooks + 1);
	assert_int_equal(store_nic_limit_get(c->st, w.nic[1], &l), STORE_OK);
	assert_int_equal(l.in.rate, 20000000);
	/* All zero removes the row. */
	assert_int_equal(store_nic_limit_set(c->st, w.nic[1], &(struct nic_limit){ 0 }), STORE_OK);
	int64_t rows = -1;
	assert_int_equal(store_q(c->st, "SELECT COUNT(*) FROM nic_limits", NULL, 0, store_row_int, &rows),
			 STORE_OK);
	assert_int_equal(rows, 1);
	/* Purging the VM takes its NICs' limits; deleting the network its default. */
	assert_int_equal(store_vm_purge(c->st, w.vm), STORE_OK);
	assert_int_equal(store_q(c->st, "SELECT COUNT(*) FROM nic_limits", NULL, 0, store_row_int, &rows),
			 STORE_OK);
	assert_int_equal(rows, 0);
	assert_int_equal(store_network_delete(c->st, w.net), STORE_OK);
	assert_int_equal(store_q(c->st, "SELECT COUNT(*) FROM net_limits", NULL, 0, store_row_int, &rows),
			 STORE_OK);
	assert_int_equal(rows, 0);
}

/* A NIC added to an existing VM with a limit gets it in the same
 * transaction as its row: one change announced (so the agent never sees
 * the NIC without it), and the limit as given; without one, no row. */
static void nic_added_with_its_limit(void **state)
{
	struct ctx *c = *state;
	struct world w;
	struct nic_limit want = { { 30000000, 0 }, { 7000000, 32768 } }, l;
	uint64_t with, without;
	int64_t rows = -1;

	make_world(c->st, &w, OWNER_ROOT, "a");
	int hooks = c->hooks;
	assert_int_equal(store_nic_add(c->st, w.vm, w.net, &want, &with), STORE_OK);
	assert_int_equal(c->hooks, hooks + 1);
	assert_int_equal(store_nic_limit_get(c->st, with, &l), STORE_OK);
	assert_memory_equal(&l, &want, sizeof(l));
	assert_int_equal(store_nic_add(c->st, w.vm, w.net, NULL, &without), STORE_OK);
	assert_int_equal(store_nic_limit_get(c->st, without, &l), STORE_OK);
	assert_int_equal(l.in.rate + l.out.rate, 0);
	/* The make_world NIC with its own limit, and the one added with one. */
	assert_int_equal(store_q(c->st, "SELECT COUNT(*) FROM nic_limits", NULL, 0, store_row_int, &rows),
			 STORE_OK);
	assert_int_equal(rows, 2);
	/* What the agent shapes from: the NIC's own limit over its network's default. */
	struct nic_shaping *sh = NULL;
	size_t n = 0;
	assert_int_equal(store_nic_shaping_list(c->st, NULL, w.vm, "2026-11", &sh, &n), STORE_OK);
	assert_int_equal(n, 4);
	enum limit_source why[2];
	assert_int_equal(sh[2].nic, with);
	assert_int_equal(bandwidth_effective(&sh[2], 0, why).in.rate, 30000000);
	assert_int_equal(why[0], LIMIT_NIC);
	assert_int_equal(sh[3].nic, without);
	assert_int_equal(bandwidth_effective(&sh[3], 0, why).in.rate, 50000000);
	assert_int_equal(why[0], LIMIT_NETWORK);
	free(sh);
}

/* Count one sample of a NIC: delta bytes in and out. */
static void sample(struct store *st, const char *host, const char *month, const struct world *w,
		   int i, int64_t ifindex, uint64_t rx, uint64_t tx, uint64_t din, uint64_t dout)
{
	struct meter_sample s = { .nic = w->nic[i], .vm = w->vm, .owner = OWNER_ROOT,
				  .ifindex = ifindex, .raw = { rx, tx, 1, 1 }, .at_ms = 1000,
				  .delta = { din, dout, 1, 1 }, .in_bps = 8 * din };
	assert_int_equal(store_meter_commit(st, host, month, 0, NULL, &s, 1, NULL, 0, NULL, 0),
			 STORE_OK);
}

static const struct nic_shaping *find(const struct nic_shaping *v, size_t n, uint64_t nic)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].nic == nic)
			return &v[i];
	return NULL;
}

static void quotas_throttle_within_their_month(void **state)
{
	struct ctx *c = *state;
	struct world w;
	struct nic_shaping *sh = NULL;
	size_t n = 0;

	make_world(c->st, &w, OWNER_ROOT, "a");
	sample(c->st, "h1", "2026-11", &w, 0, 5, 100, 200, 6000, 4000);
	/* The list of host h1: both NICs, their limits, not throttled. */
	assert_int_equal(store_nic_shaping_list(c->st, "h1", 0, "2026-11", &sh, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(find(sh, n, w.nic[0])->own.out.rate, 10000000);
	assert_int_equal(find(sh, n, w.nic[1])->net.in.rate, 50000000);
	assert_false(find(sh, n, w.nic[0])->throttled);
	free(sh);
	/* Another host has none of them. */
	assert_int_equal(store_nic_shaping_list(c->st, "h2", 0, "2026-11", &sh, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(sh);
	/* The VM's quota: 10,000 bytes used of 10,000 → throttled, both NICs. */
	assert_int_equal(store_vm_quota_set(c->st, w.vm, 10000), STORE_OK);
	assert_int_equal(store_nic_shaping_list(c->st, "h1", 0, "2026-11", &sh, &n), STORE_OK);
	assert_true(find(sh, n, w.nic[0])->throttled && find(sh, n, w.nic[1])->throttled);
	free(sh);
	/* The next month starts over. */
	assert_int_equal(store_nic_shaping_list(c->st, "h1", 0, "2026-12", &sh, &n), STORE_OK);
	assert_false(find(sh, n, w.nic[0])->throttled);
	free(sh);
	/* The owner's quota and cap, for all of the owner's VMs. */
	assert_int_equal(store_vm_quota_set(c->st, w.vm, 0), STORE_OK);
	struct user_traffic t = { .rate_cap = 30000000, .quota = 20000 };
	assert_int_equal(store_user_traffic_set(c->st, OWNER_ROOT, &t), STORE_OK);
	assert_int_equal(store_nic_shaping_list(c->st, NULL, w.vm, "2026-11", &sh, &n), STORE_OK);
	assert_false(find(sh, n, w.nic[0])->throttled);
	assert_int_equal(find(sh, n, w.nic[0])->cap, 30000000);
	free(sh);
	sample(c->st, "h1", "2026-11", &w, 1, 6, 0, 0, 10000, 0);
	assert_int_equal(store_nic_shaping_list(c->st, NULL, w.vm, "2026-11", &sh, &n), STORE_OK);
	assert_true(find(sh, n, w.nic[1])->throttled);
	free(sh);
	uint64_t used = 0;
	assert_int_equal(store_traffic_used(c->st, "2026-11", OWNER_ROOT, 0, &used), STORE_OK);
	assert_int_equal(used, 20000);
	assert_int_equal(store_traffic_used(c->st, "2026-11", 0, w.vm, &used), STORE_OK);
	assert_int_equal(used, 20000);
	assert_int_equal(store_user_traffic_get(c->st, OWNER_ROOT, &t), STORE_OK);
	assert_int_equal(t.quota, 20000);
}

static void samples_and_totals(void **state)
{
	struct ctx *c = *state;
	struct world w;
	struct meter_nic *m = NULL;
	struct nic_stats *ns = NULL;
	size_t n = 0;

	make_world(c->st, &w, OWNER_ROOT, "a");
	/* Nothing sampled yet: the NICs of h1's VMs, without samples. */
	assert_int_equal(store_meter_nics(c->st, "h1", 0, &m, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_false(m[0].sampled || m[1].sampled);
	free(m);
	int hooks = c->hooks;
	sample(c->st, "h1", "2026-11", &w, 0, 5, 100, 200, 200, 100);
	sample(c->st, "h1", "2026-12", &w, 0, 5, 150, 260, 60, 50);
	/* Bookkeeping, not intent: no hook. */
	assert_int_equal(c->hooks, hooks);
	assert_int_equal(store_meter_nics(c->st, "h1", w.nic[0], &m, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_true(m[0].sampled && m[0].moving);
	assert_int_equal(m[0].ifindex, 5);
	assert_int_equal(m[0].raw.rx_bytes, 150);
	assert_int_equal(m[0].raw.tx_bytes, 260);
	free(m);
	assert_int_equal(store_nic_stats(c->st, w.vm, "2026-12", &ns, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ns[0].nic, w.nic[0]);
	assert_true(ns[0].sampled);
	assert_int_equal(ns[0].month.bytes_in, 60);
	assert_int_equal(ns[0].total.bytes_in, 260);
	assert_int_equal(ns[0].total.bytes_out, 150);
	free(ns);
	/* The NIC leaves the VM (hot-unplug): its sample on h1 stays listed
	 * until its tap goes, with the VM and owner to count it for. */
	assert_int_equal(store_nic_remove(c->st, w.vm, w.nic[0]), STORE_OK);
	assert_int_equal(store_meter_nics(c->st, "h1", 0, &m, &n), STORE_OK);
	assert_int_equal(n, 2);
	const struct meter_nic *left = m[0].nic == w.nic[0] ? &m[0] : &m[1];
	assert_int_equal(left->nic, w.nic[0]);
	assert_int_equal(left->vm, w.vm);
	assert_true(left->sampled);
	free(m);
	uint64_t gone = w.nic[0];
	assert_int_equal(store_meter_commit(c->st, "h1", "2026-12", 0, NULL, NULL, 0, &gone, 1, NULL, 0),
			 STORE_OK);
	assert_int_equal(store_meter_nics(c->st, "h1", 0, &m, &n), STORE_OK);
	assert_int_equal(n, 1);
	free(m);
	/* Its totals stay the VM's. */
	assert_int_equal(store_nic_stats(c->st, w.vm, "2026-12", &ns, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ns[0].total.bytes_in, 260);
	assert_false(ns[0].sampled);
	free(ns);
}

static void usage_per_vm_and_owner(void **state)
{
	struct ctx *c = *state;
	struct world a, b;
	struct meter_vm *vms = NULL;
	struct usage_row *u = NULL;
	size_t n = 0;
	int64_t at = -1;
	char *boot = NULL;

	make_world(c->st, &a, OWNER_ROOT, "a");
	make_world(c->st, &b, OWNER_ROOT, "b");
	struct host h1 = { .name = "h1", .cpus = 2, .memory_mib = 4096, .accel = "tcg" };
	assert_int_equal(store_host_register(c->st, &h1), STORE_OK);
	/* What the meter accounts on h1: both VMs, disks 64 MiB. */
	assert_int_equal(store_meter_vms(c->st, "h1", &vms, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(vms[0].disk_mib, 64);
	assert_int_equal(vms[0].cpus, 2);
	assert_true(vms[0].running);
	meter_vms_free(vms, n);
	assert_int_equal(store_meter_host(c->st, "h1", &at, &boot), STORE_OK);
	assert_int_equal(at, 0);
	assert_null(boot);
	struct meter_vm_add add[2] = {
		{ a.vm, OWNER_ROOT, "a", 20, 5120, 640 },
		{ b.vm, OWNER_ROOT, "b", 0, 0, 640 },
	};
	assert_int_equal(store_meter_commit(c->st, "h1", "2026-12", 1000, "boot-1", NULL, 0, NULL, 0,
					    add, 2), STORE_OK);
	assert_int_equal(store_meter_commit(c->st, "h1", "2026-12", 1010, "boot-1", NULL, 0, NULL, 0,
					    add, 1), STORE_OK);
	assert_int_equal(store_meter_host(c->st, "h1", &at, &boot), STORE_OK);
	assert_int_equal(at, 1010);
	assert_string_equal(boot, "boot-1");
	free(boot);
	sample(c->st, "h1", "2026-12", &b, 0, 9, 0, 0, 300, 700);
	/* The VM goes; its usage stays, under the name it had. */
	assert_int_equal(store_vm_purge(c->st, a.vm), STORE_OK);
	assert_int_equal(store_usage_list(c->st, "2026-12", OWNER_ANY, &u, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(u[0].name, "a");
	assert_string_equal(u[0].owner_name, "root");
	assert_int_equal(u[0].vcpu_seconds, 40);
	assert_int_equal(u[0].memory_mib_seconds, 10240);
	assert_int_equal(u[0].disk_mib_seconds, 1280);
	assert_int_equal(u[1].traffic.bytes_in, 300);
	assert_int_equal(u[1].traffic.bytes_out, 700);
	assert_int_equal(u[1].disk_mib_seconds, 640);
	usage_rows_free(u, n);
	/* Another owner, another month: nothing. */
	assert_int_equal(store_usage_list(c->st, "2026-12", 42, &u, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(u);
	assert_int_equal(store_usage_list(c->st, "2026-11", OWNER_ANY, &u, &n), STORE_OK);
	assert_int_equal(n, 0);
	free(u);
}

static void months(void **state)
{
	char m[MONTH_STRLEN + 1];

	(void)state;
	usage_month(1795983921, m);   /* 2026-11-30T… UTC */
	assert_string_equal(m, "2026-11");
	usage_month(1796083200, m);   /* 2026-12-01T00:00:00 UTC */
	assert_string_equal(m, "2026-12");
	assert_true(usage_month_valid("2026-12"));
	assert_false(usage_month_valid("2026-13"));
	assert_false(usage_month_valid("2026-1"));
	assert_false(usage_month_valid("1999-12"));
	assert_false(usage_month_valid("2026/12"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(rates_parse_and_format),
		cmocka_unit_test(specs_round_trip),
		cmocka_unit_test(buckets),
		cmocka_unit_test(lower_limits),
		cmocka_unit_test(effective_limits),
		cmocka_unit_test(deltas),
		cmocka_unit_test(months),
	};
	const struct CMUnitTest store[] = {
		T(limits_live_with_their_rows),
		T(nic_added_with_its_limit),
		T(quotas_throttle_within_their_month),
		T(samples_and_totals),
		T(usage_per_vm_and_owner),
	};
	int failed = cmocka_run_group_tests_name("pure", pure, NULL, NULL);

	failed += cmocka_run_group_tests_name("sqlite", store, NULL, NULL);
	pg_uri = getenv("HC_TEST_PG");
	if (pg_uri && *pg_uri)
		failed += cmocka_run_group_tests_name("postgresql", store, NULL, NULL);
	return failed;
}
