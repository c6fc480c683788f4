/*
 * test_observe — the pure parts of metrics, events and audit (issue 15):
 *   - the Prometheus text writer: HELP/TYPE, label escaping, integer and
 *     float values, histograms cumulative with +Inf equal to _count;
 *   - the duration buckets of common/stats.h;
 *   - server-sent events: the server's framing (sse_frame) read back by
 *     hc's parser (cli/sse.h) whole and cut at every byte, comments,
 *     multi-line data, CRLF, the id that persists;
 *   - what /proc and QMP say about a QEMU (vmstats parsers);
 *   - the audit journal's lines, torn lines, and `hc audit --since`.
 * Pruning of the audit trail and the event log runs against real
 * databases in test_store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/audit.h"
#include "api/events.h"
#include "api/promtext.h"
#include "cli/cli.h"
#include "cli/sse.h"
#include "common/stats.h"
#include "vm/vmstats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- promtext ----------------------------------------------------------- */

static void prom_text(void **state)
{
	struct promtext p = { 0 };
	size_t len;
	char *text;
	const uint64_t b[] = { 1, 0, 2, 1 };
	const double bounds[] = { 0.1, 1, 10 };

	(void)state;
	prom_family(&p, "hc_x_total", "counter", "a \\ help\nwith a newline");
	prom_sample_u(&p, "hc_x_total", NULL, 18446744073709551615ULL);
	prom_sample_u(&p, "hc_x_total", (const char *[]){ "name", "a\"b\\c\nd", "k", "v", NULL }, 3);
	prom_family(&p, "hc_g", "gauge", "g");
	prom_sample(&p, "hc_g", (const char *[]){ "vm", "0000000001", NULL }, 1.25);
	prom_sample(&p, "hc_g", NULL, 0.0005);
	prom_family(&p, "hc_h_seconds", "histogram", "h");
	prom_histogram(&p, "hc_h_seconds", (const char *[]){ "route", "/v1/vms/{}", NULL }, bounds, 3, b,
		       12.5);
	prom_histogram(&p, "hc_h_seconds", NULL, bounds, 3, b, 0);
	text = prom_take(&p, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text,
		"# HELP hc_x_total a \\\\ help\\nwith a newline\n"
		"# TYPE hc_x_total counter\n"
		"hc_x_total 18446744073709551615\n"
		"hc_x_total{name=\"a\\\"b\\\\c\\nd\",k=\"v\"} 3\n"
		"# HELP hc_g g\n"
		"# TYPE hc_g gauge\n"
		"hc_g{vm=\"0000000001\"} 1.25\n"
		"hc_g 0.0005\n"
		"# HELP hc_h_seconds h\n"
		"# TYPE hc_h_seconds histogram\n"
		"hc_h_seconds_bucket{route=\"/v1/vms/{}\",le=\"0.1\"} 1\n"
		"hc_h_seconds_bucket{route=\"/v1/vms/{}\",le=\"1\"} 1\n"
		"hc_h_seconds_bucket{route=\"/v1/vms/{}\",le=\"10\"} 3\n"
		"hc_h_seconds_bucket{route=\"/v1/vms/{}\",le=\"+Inf\"} 4\n"
		"hc_h_seconds_sum{route=\"/v1/vms/{}\"} 12.5\n"
		"hc_h_seconds_count{route=\"/v1/vms/{}\"} 4\n"
		"hc_h_seconds_bucket{le=\"0.1\"} 1\n"
		"hc_h_seconds_bucket{le=\"1\"} 1\n"
		"hc_h_seconds_bucket{le=\"10\"} 3\n"
		"hc_h_seconds_bucket{le=\"+Inf\"} 4\n"
		"hc_h_seconds_sum 0\n"
		"hc_h_seconds_count 4\n");
	free(text);
	/* A fresh writer afterwards; nothing written is an empty text. */
	text = prom_take(&p, &len);
	assert_string_equal(text, "");
	assert_int_equal(len, 0);
	free(text);
}

static void stat_buckets(void **state)
{
	struct stat_hist_snap h;

	(void)state;
	assert_int_equal(stat_bucket(0), 0);
	assert_int_equal(stat_bucket(0.0005), 0);      /* le: at the bound counts in */
	assert_int_equal(stat_bucket(0.0006), 1);
	assert_int_equal(stat_bucket(60), STAT_N_BOUNDS - 1);
	assert_int_equal(stat_bucket(61), STAT_N_BOUNDS);
	stat_hist_get(HIST_FIREWALL, &h);
	uint64_t before = h.count;
	stat_observe(HIST_FIREWALL, 0.002);
	stat_observe(HIST_FIREWALL, 100);
	stat_hist_get(HIST_FIREWALL, &h);
	assert_int_equal(h.count, before + 2);
	assert_true(h.buckets[stat_bucket(0.002)] >= 1);
	assert_true(h.buckets[STAT_N_BOUNDS] >= 1);
	assert_true(h.sum >= 100.002 - 1e-6);
}

/* ---- server-sent events ------------------------------------------------- */

struct got {
	char log[4096];
	int n;
	int stop_after;
};

static bool collect(void *arg, const char *id, const char *event, const char *data)
{
	struct got *g = arg;

	snprintf(g->log + strlen(g->log), sizeof(g->log) - strlen(g->log), "[%s|%s|%s]", id, event,
		 data);
	return ++g->n != g->stop_after;
}

static void sse_roundtrip(void **state)
{
	size_t l1, l2, l3;
	char *f1 = sse_frame("7", "vm.updated", "{\"id\":\"0000000001\"}", &l1);
	char *f2 = sse_frame(NULL, "sync", "line one\nline two", &l2);
	char *f3 = sse_frame("9", "vm.deleted", "", &l3);
	char stream[1024];

	(void)state;
	assert_string_equal(f1, "id: 7\nevent: vm.updated\ndata: {\"id\":\"0000000001\"}\n\n");
	assert_int_equal(l1, strlen(f1));
	assert_string_equal(f2, "event: sync\ndata: line one\ndata: line two\n\n");
	assert_string_equal(f3, "id: 9\nevent: vm.deleted\ndata: \n\n");
	snprintf(stream, sizeof(stream), "retry: 3000\n\n%s: keepalive\n\n%s%s", f1, f2, f3);
	const char *want = "[7|vm.updated|{\"id\":\"0000000001\"}][7|sync|line one\nline two]"
			   "[9|vm.deleted|]";
	/* Whole, and cut at every byte (a network may cut anywhere). */
	for (size_t cut = 0; cut <= strlen(stream); cut++) {
		struct sse_parser p = { 0 };
		struct got g = { .stop_after = -1 };
		assert_int_equal(sse_feed(&p, stream, cut, collect, &g), 1);
		assert_int_equal(sse_feed(&p, stream + cut, strlen(stream) - cut, collect, &g), 1);
		assert_string_equal(g.log, want);
		assert_string_equal(p.id, "9");
		sse_parser_free(&p);
	}
	free(f1);
	free(f2);
	free(f3);
}

static void sse_parser_rules(void **state)
{
	struct sse_parser p = { 0 };
	struct got g = { .stop_after = 2 };
	/* CRLF and CR line ends; no space after the colon; an unnamed event;
	 * a field without a value; a "retry" alone dispatches nothing. */
	const char *s = "data:a\r\ndata\r\n\r\nretry: 5\n\nid:3\revent:x\rdata: b\r\rdata: c\n\n";

	(void)state;
	/* The callback asks to stop after the second event: the rest is not read. */
	assert_int_equal(sse_feed(&p, s, strlen(s), collect, &g), 0);
	assert_string_equal(g.log, "[|message|a\n][3|x|b]");
	sse_parser_free(&p);
}

/* ---- vmstats ------------------------------------------------------------- */

static void vmstats_parsers(void **state)
{
	/* A COMM with spaces and parentheses; utime 250, stime 150 ticks. */
	const char *stat = "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 5";
	const char *status = "Name:\tqemu\nVmPeak:\t  900 kB\nVmRSS:\t  163140 kB\nThreads:\t5\n";
	double cpu = 0;
	uint64_t rss = 0;

	(void)state;
	assert_int_equal(vmstats_parse_stat(stat, 100, &cpu), 0);
	assert_true(cpu > 3.999 && cpu < 4.001);
	assert_int_equal(vmstats_parse_stat("4242 (short) S 1 2", 100, &cpu), -1);
	assert_int_equal(vmstats_parse_stat("no parenthesis", 100, &cpu), -1);
	assert_int_equal(vmstats_parse_rss(status, &rss), 0);
	assert_int_equal(rss, 163140ULL * 1024);
	assert_int_equal(vmstats_parse_rss("Name:\tkthread\n", &rss), -1);

	json_t *reply = json_loads(
		"[{\"device\":\"virtio0\",\"stats\":{\"rd_bytes\":512,\"wr_bytes\":4096,"
		"\"rd_operations\":1,\"wr_operations\":2}},"
		" {\"device\":\"\",\"qdev\":\"/machine/peripheral-anon/device[1]/virtio-backend\","
		"\"stats\":{\"rd_bytes\":7}},"
		" {\"device\":\"\",\"node-name\":\"data0\",\"stats\":{\"wr_bytes\":9}},"
		" {\"device\":\"x\"},"
		/* QEMU 7.2 with hcd's -blockdev/-device IDs (vm/qemu_argv.c) */
		" {\"device\":\"\",\"node-name\":\"disk-t5\","
		"\"qdev\":\"/machine/peripheral/vd-disk/virtio-backend\",\"stats\":{\"rd_bytes\":1}},"
		" {\"device\":\"\",\"node-name\":\"seed\",\"qdev\":\"cd-seed\",\"stats\":{}}]", 0, NULL);
	struct disk_counters d[6];
	assert_non_null(reply);
	assert_int_equal(vmstats_blockstats_parse(reply, d, 6), 5);
	assert_string_equal(d[3].name, "disk");
	assert_string_equal(d[4].name, "seed");
	assert_string_equal(d[0].name, "virtio0");
	assert_int_equal(d[0].rd_bytes, 512);
	assert_int_equal(d[0].wr_bytes, 4096);
	assert_int_equal(d[0].rd_ops, 1);
	assert_int_equal(d[0].wr_ops, 2);
	assert_string_equal(d[1].name, "device[1]");
	assert_int_equal(d[1].rd_bytes, 7);
	assert_string_equal(d[2].name, "data0");
	assert_int_equal(d[2].wr_bytes, 9);
	assert_int_equal(vmstats_blockstats_parse(reply, d, 1), 1);   /* bounded */
	json_decref(reply);
}

/* ---- audit ---------------------------------------------------------------- */

static void audit_journal_lines(void **state)
{
	struct audit_entry e = { .host = "h", .seq = 41, .time = 1700000000, .user = 3,
				 .source = "2001:db8::1", .method = "POST", .route = "/v1/vms/{}/start",
				 .ref = "web", .status = 202, .result = "ok" };
	struct audit_entry back;
	char *line = audit_line(&e);

	(void)state;
	assert_non_null(line);
	/* One line: its only newline ends it. */
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	assert_int_equal(audit_line_parse(line, "h", &back), 0);
	assert_int_equal(back.seq, 41);
	assert_int_equal(back.time, 1700000000);
	assert_int_equal(back.user, 3);
	assert_string_equal(back.host, "h");
	assert_string_equal(back.source, "2001:db8::1");
	assert_string_equal(back.method, "POST");
	assert_string_equal(back.route, "/v1/vms/{}/start");
	assert_string_equal(back.ref, "web");
	assert_int_equal(back.status, 202);
	assert_string_equal(back.result, "ok");
	audit_entry_clear(&back);
	/* Not identified, no resource. */
	e.user = OWNER_ANY;
	e.ref = NULL;
	free(line);
	line = audit_line(&e);
	assert_int_equal(audit_line_parse(line, "h", &back), 0);
	assert_int_equal(back.user, OWNER_ANY);
	assert_null(back.ref);
	audit_entry_clear(&back);
	/* A line torn by a crash in the middle of its write is no entry. */
	line[strlen(line) / 2] = '\0';
	assert_int_equal(audit_line_parse(line, "h", &back), -1);
	assert_int_equal(audit_line_parse("{\"seq\":0,\"time\":1,\"user\":null,\"status\":200}", "h",
					  &back), -1);
	free(line);
}

static void since_forms(void **state)
{
	const long long now = 1800000000;

	(void)state;
	assert_int_equal(since_parse("1700000000", now), 1700000000);
	assert_int_equal(since_parse("90m", now), now - 5400);
	assert_int_equal(since_parse("2h", now), now - 7200);
	assert_int_equal(since_parse("7d", now), now - 7 * 86400);
	assert_int_equal(since_parse("2026-12-01", now), 1796083200);
	assert_int_equal(since_parse("2026-12-01T08:30", now), 1796083200 + 8 * 3600 + 1800);
	assert_int_equal(since_parse("2026-12-01T08:30:15", now), 1796083200 + 8 * 3600 + 1815);
	assert_int_equal(since_parse("7x", now), -1);
	assert_int_equal(since_parse("yesterday", now), -1);
	assert_int_equal(since_parse("2026-12-01 08:30", now), -1);
	assert_int_equal(since_parse("", now), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prom_text),
		cmocka_unit_test(stat_buckets),
		cmocka_unit_test(sse_roundtrip),
		cmocka_unit_test(sse_parser_rules),
		cmocka_unit_test(vmstats_parsers),
		cmocka_unit_test(audit_journal_lines),
		cmocka_unit_test(since_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
