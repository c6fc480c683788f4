/*
 * test_netpool — IP prefixes as values (src/common/netpool.h): parsing
 * and lists, overlap and containment both ways, and allocation of the
 * first free subnet of a pool around networks and the host's routes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/netpool.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static struct prefix P(const char *s)
{
	struct prefix p;
	assert_true(prefix_from_text(s, &p));
	return p;
}

static void text_of(const struct prefix *p, const char *want)
{
	char buf[64];
	prefix_text(p, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void parse_and_text(void **state)
{
	struct prefix p;

	(void)state;
	p = P("2001:DB8:0:1::/64");
	assert_int_equal(p.family, AF_INET6);
	text_of(&p, "2001:db8:0:1::/64");
	p = P("10.1.2.0/24");
	assert_int_equal(p.family, AF_INET);
	text_of(&p, "10.1.2.0/24");
	p = P("192.0.2.7");
	assert_int_equal(p.len, 32);
	assert_false(prefix_from_text("10.1.2.1/24", &p));      /* host bits */
	assert_false(prefix_from_text("fd00::/129", &p));
	assert_false(prefix_from_text("office", &p));
	uint8_t a[4] = { 10, 1, 2, 99 };
	p = prefix_make(AF_INET, a, 24);
	text_of(&p, "10.1.2.0/24");
}

static void overlap_and_contains(void **state)
{
	struct prefix lan = P("10.88.0.0/16"), sub = P("10.88.1.0/24"), other = P("10.89.0.0/24");
	struct prefix v6 = P("fd00:1::/48"), v6sub = P("fd00:1:0:5::/64"), v6out = P("fd00:2::/64");

	(void)state;
	assert_true(prefix_overlap(&lan, &sub));
	assert_true(prefix_overlap(&sub, &lan));
	assert_false(prefix_overlap(&lan, &other));
	assert_true(prefix_contains(&lan, &sub));
	assert_false(prefix_contains(&sub, &lan));
	assert_true(prefix_contains(&v6, &v6sub));
	assert_false(prefix_contains(&v6, &v6out));
	assert_false(prefix_overlap(&lan, &v6));                /* families never meet */
	struct prefix set[] = { other, v6sub };
	assert_ptr_equal(prefix_find_overlap(&v6, set, 2), &set[1]);
	assert_null(prefix_find_overlap(&lan, set, 1));
	struct prefix pools[] = { lan, v6 };
	assert_ptr_equal(prefix_find_container(&sub, pools, 2), &pools[0]);
	assert_null(prefix_find_container(&other, pools, 2));
}

static void lists(void **state)
{
	struct prefix *v = NULL;
	size_t n = 0;
	char bad[64];

	(void)state;
	assert_true(prefix_list_parse(" fd00:1::/48 ,2001:db8::/56", AF_INET6, 64, &v, &n, bad));
	assert_int_equal(n, 2);
	text_of(&v[1], "2001:db8::/56");
	assert_true(prefix_list_parse("", AF_INET6, 64, &v, &n, bad));
	assert_int_equal(n, 2);
	assert_false(prefix_list_parse("fd00::/48,10.0.0.0/8", AF_INET6, 64, &v, &n, bad));
	assert_string_equal(bad, "10.0.0.0/8");                 /* wrong family */
	assert_false(prefix_list_parse("fd00:9::/80", AF_INET6, 64, &v, &n, bad));
	assert_string_equal(bad, "fd00:9::/80");                /* holds no /64 */
	assert_false(prefix_list_parse("10.0.0.0/8,nonsense", AF_INET, 30, &v, &n, bad));
	assert_string_equal(bad, "nonsense");
	free(v);
}

static void allocation(void **state)
{
	struct prefix pools[] = { P("fd00:1::/62"), P("fd00:9::/64") };
	struct prefix used[] = { P("fd00:1::/64"), P("fd00:1:0:2::/63") };
	struct prefix out;

	(void)state;
	assert_true(prefix_allocate(pools, 2, 64, used, 1, &out));
	text_of(&out, "fd00:1:0:1::/64");
	/* A used /63 is skipped whole; the next pool when the first is full. */
	struct prefix used2[] = { P("fd00:1::/64"), P("fd00:1:0:1::/64"), P("fd00:1:0:2::/63") };
	assert_true(prefix_allocate(pools, 2, 64, used2, 3, &out));
	text_of(&out, "fd00:9::/64");
	/* A host route covering the whole pool leaves nothing. */
	struct prefix all[] = { P("fd00::/16") };
	assert_false(prefix_allocate(pools, 2, 64, all, 1, &out));
	(void)used;
	/* IPv4 /24s, and a pool smaller than that is handed out whole. */
	struct prefix p4[] = { P("10.50.0.0/23"), P("10.60.0.0/26") };
	struct prefix u4[] = { P("10.50.0.0/24"), P("10.50.1.128/25") };
	assert_true(prefix_allocate(p4, 2, 24, u4, 2, &out));
	text_of(&out, "10.60.0.0/26");
	assert_true(prefix_allocate(p4, 2, 24, u4, 1, &out));
	text_of(&out, "10.50.1.0/24");
	/* At the top of the address space the search stops, it does not wrap. */
	struct prefix top[] = { P("255.255.255.0/24") };
	assert_false(prefix_allocate(top, 1, 24, top, 1, &out));
	/* Thousands of used subnets: one step per used prefix at most. */
	struct prefix big[] = { P("fd00:5::/48") };
	struct prefix *many = calloc(5000, sizeof(*many));
	for (int i = 0; i < 5000; i++) {
		uint8_t a[16] = { 0xfd, 0x00, 0x00, 0x05, 0x00, 0x00, (uint8_t)(i >> 8), (uint8_t)i };
		many[i] = prefix_make(AF_INET6, a, 64);
	}
	assert_true(prefix_allocate(big, 1, 64, many, 5000, &out));
	text_of(&out, "fd00:5:0:1388::/64");
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_and_text),
		cmocka_unit_test(overlap_and_contains),
		cmocka_unit_test(lists),
		cmocka_unit_test(allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
