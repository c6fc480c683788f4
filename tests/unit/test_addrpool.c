/*
 * test_addrpool — the pools of routed IPv6 prefixes and public IPv4
 * addresses (src/common/addrpool.h): parsing, refusals, first-fit
 * allocation around what is taken, alignment, exhaustion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/addrpool.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct span6 sp6(const char *prefix)
{
	char a[64];
	struct in6_addr addr;
	const char *slash = strchr(prefix, '/');

	snprintf(a, sizeof(a), "%.*s", (int)(slash - prefix), prefix);
	assert_int_equal(inet_pton(AF_INET6, a, &addr), 1);
	return span6_of(&addr, (unsigned)atoi(slash + 1));
}

static void assert_alloc6(const struct pool6 *p, unsigned len, const struct span6 *taken, size_t n,
			  const char *want)
{
	struct in6_addr got;
	char text[INET6_ADDRSTRLEN];

	if (want == NULL) {
		assert_false(pool6_alloc(p, len, taken, n, &got));
		return;
	}
	assert_true(pool6_alloc(p, len, taken, n, &got));
	inet_ntop(AF_INET6, &got, text, sizeof(text));
	assert_string_equal(text, want);
}

static void pool6_parses_and_refuses(void **state)
{
	(void)state;
	struct pool6 p;
	char *err = NULL;

	assert_int_equal(pool6_parse(" 2001:db8:200::/48 , 2001:db8:100::/56", &p, &err), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.len[0], 56);         /* sorted */
	assert_int_equal(p.len[1], 48);
	pool6_free(&p);
	assert_int_equal(pool6_parse("", &p, &err), 0);
	assert_int_equal(p.n, 0);
	pool6_free(&p);

	const char *bad[] = { "2001:db8::1/48", "2001:db8::", "10.0.0.0/8", "2001:db8::/8", "2001:db8::/80",
			      "fe80::/16", "ff00::/16", "::/16", "2001:db8::/48,2001:db8:0:1::/64", "junk",
			      "2001:db8::/48;rm" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pool6_parse(bad[i], &p, &err) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(err, "prefix_pool"));
		free(err);
		err = NULL;
	}
}

static void pool6_first_fit(void **state)
{
	(void)state;
	struct pool6 p;
	char *err = NULL;

	assert_int_equal(pool6_parse("2001:db8:100::/48", &p, &err), 0);
	assert_alloc6(&p, 64, NULL, 0, "2001:db8:100::");
	struct span6 t[] = { sp6("2001:db8:100::/64"), sp6("2001:db8:100:1::/64"), sp6("2001:db8:100:3::/64") };
	assert_alloc6(&p, 64, t, 3, "2001:db8:100:2::");           /* the hole */
	assert_alloc6(&p, 56, t, 3, "2001:db8:100:100::");         /* aligned past the /64s */
	assert_alloc6(&p, 48, NULL, 0, "2001:db8:100::");
	assert_alloc6(&p, 48, t, 3, NULL);                          /* the whole pool is not free */
	assert_alloc6(&p, 40, NULL, 0, NULL);                       /* shorter than the pool */
	assert_alloc6(&p, 65, NULL, 0, NULL);
	/* Taken things in any order, nested and outside the pool. */
	struct span6 u[] = { sp6("2001:db8:100:100::/56"), sp6("2001:db9::/32"), sp6("2001:db8:100::/56"),
			     sp6("2001:db8:100:100::/64") };
	assert_alloc6(&p, 56, u, 4, "2001:db8:100:200::");
	assert_alloc6(&p, 64, u, 4, "2001:db8:100:200::");
	pool6_free(&p);

	/* Several items: the next one when the first is full; the last /64. */
	assert_int_equal(pool6_parse("2001:db8:100::/63,2001:db8:ffff:ffff::/64", &p, &err), 0);
	struct span6 full[] = { sp6("2001:db8:100::/64"), sp6("2001:db8:100:1::/64") };
	assert_alloc6(&p, 64, full, 2, "2001:db8:ffff:ffff::");
	struct span6 all[] = { sp6("2001:db8:100::/63"), sp6("2001:db8:ffff:ffff::/64") };
	assert_alloc6(&p, 64, all, 2, NULL);
	pool6_free(&p);

	/* The last /64 of global unicast space, taken: nothing wraps. */
	assert_int_equal(pool6_parse("2001:db8::/32,3fff:ffff:ffff:ffff::/64", &p, &err), 0);
	struct span6 top[] = { sp6("2001:db8::/32"), sp6("3fff:ffff:ffff:ffff::/64") };
	assert_alloc6(&p, 64, top, 2, NULL);
	assert_alloc6(&p, 64, top, 1, "3fff:ffff:ffff:ffff::");
	pool6_free(&p);
}

static void pool4_parses_and_allocates(void **state)
{
	(void)state;
	struct pool4 p;
	char *err = NULL;
	uint32_t a;
	char text[INET_ADDRSTRLEN];

	assert_int_equal(pool4_parse("198.51.100.40-198.51.100.41, 198.51.100.0/30,203.0.113.9,203.0.113.16/32",
				     &p, &err), 0);
	assert_int_equal(p.n, 4);
	/* A /30 without its network and broadcast addresses. */
	assert_false(pool4_has(&p, 0xc6336400u));
	assert_true(pool4_has(&p, 0xc6336401u));
	assert_true(pool4_has(&p, 0xc6336402u));
	assert_false(pool4_has(&p, 0xc6336403u));
	assert_true(pool4_has(&p, 0xcb007109u));
	assert_true(pool4_has(&p, 0xcb007110u));
	assert_true(pool4_alloc(&p, NULL, 0, &a));
	assert_int_equal(a, 0xc6336401u);
	uint32_t taken[] = { 0xc6336402u, 0xc6336401u, 0xc6336401u, 0xc6336428u };
	assert_true(pool4_alloc(&p, taken, 4, &a));
	inet_ntop(AF_INET, &(struct in_addr){ htonl(a) }, text, sizeof(text));
	assert_string_equal(text, "198.51.100.41");
	uint32_t most[] = { 0xc6336401u, 0xc6336402u, 0xc6336428u, 0xc6336429u, 0xcb007109u };
	assert_true(pool4_alloc(&p, most, 5, &a));
	assert_int_equal(a, 0xcb007110u);
	uint32_t all[] = { 0xc6336401u, 0xc6336402u, 0xc6336428u, 0xc6336429u, 0xcb007109u, 0xcb007110u };
	assert_false(pool4_alloc(&p, all, 6, &a));
	pool4_free(&p);

	assert_int_equal(pool4_parse("255.255.255.254", &p, &err), -1);   /* 224/3 */
	free(err);
	const char *bad[] = { "10.0.0.1/24", "10.0.0.9-10.0.0.1", "127.0.0.1", "169.254.1.1", "0.0.0.0/8",
			      "10.0.0.0/28,10.0.0.8", "2001:db8::1", "10.0.0.0/4", "junk" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pool4_parse(bad[i], &p, &err) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(err, "public_ipv4_pool"));
		free(err);
		err = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool6_parses_and_refuses),
		cmocka_unit_test(pool6_first_fit),
		cmocka_unit_test(pool4_parses_and_allocates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
