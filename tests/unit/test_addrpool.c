/*
 * test_addrpool — the pools of routed IPv6 prefixes and public IPv4
 * addresses (src/common/addrpool.h): parsing, refusals, first-fit
 * allocation of public addresses around what is taken, exhaustion, the
 * configuration check (netpool's tests cover the IPv6 allocation).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/addrpool.h"
#include "common/config.h"
#include "common/netpool.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void prefix_pool_parses_and_refuses(void **state)
{
	(void)state;
	struct prefix *p = NULL;
	size_t n = 0;
	char *err = NULL;

	assert_int_equal(prefix_pool_parse(" 2001:db8:200::/48 , 2001:db8:100::/56", &p, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].len, 48);
	assert_int_equal(p[1].len, 56);
	free(p);
	assert_int_equal(prefix_pool_parse("", &p, &n, &err), 0);
	assert_int_equal(n, 0);
	free(p);

	const char *bad[] = { "2001:db8::1/48", "10.0.0.0/8", "2001:db8::/8", "2001:db8::/80", "fe80::/16",
			      "ff00::/16", "::/16", "2001:db8::/48,2001:db8:0:1::/64", "junk", "2001:db8::/48;rm" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (prefix_pool_parse(bad[i], &p, &n, &err) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_null(p);
		assert_non_null(strstr(err, "prefix_pool"));
		free(err);
		err = NULL;
	}
}

/* hcd refuses a configuration whose routed prefixes could become members'
 * networks, or whose limits make no sense. */
static void config_check(void **state)
{
	(void)state;
	struct config c;
	char *err = NULL;

	config_defaults(&c);
	assert_int_equal(addrpool_config_check(&c, &err), 0);
	config_set(&c, "hcd", "prefix_pool", "2001:db8:100::/48");
	config_set(&c, "hcd", "tenant_ipv6_pool", "2001:db8:100:8000::/49");
	config_set(&c, "hcd", "public_ipv4_pool", "198.51.100.0/28");
	assert_int_equal(addrpool_config_check(&c, &err), -1);
	assert_non_null(strstr(err, "tenant_ipv6_pool"));
	free(err);
	config_set(&c, "hcd", "tenant_ipv6_pool", "2001:db8:200::/48");
	assert_int_equal(addrpool_config_check(&c, &err), 0);
	config_set(&c, "hcd", "prefix_min_length", "60");
	config_set(&c, "hcd", "prefix_length", "56");           /* the default longer than allowed */
	assert_int_equal(addrpool_config_check(&c, &err), -1);
	free(err);
	config_set(&c, "hcd", "prefix_length", "64");
	config_set(&c, "hcd", "public_ipv4_pool", "127.0.0.1");
	assert_int_equal(addrpool_config_check(&c, &err), -1);
	assert_non_null(strstr(err, "public_ipv4_pool"));
	free(err);
	config_free(&c);
}

static void suggested_address(void **state)
{
	(void)state;
	char a[64];

	assert_true(prefix_suggested_address("2001:db8:100:1::/64", a, sizeof(a)));
	assert_string_equal(a, "2001:db8:100:1::1");
	assert_true(prefix_suggested_address("2001:db8:100::/48", a, sizeof(a)));
	assert_string_equal(a, "2001:db8:100::1");
	assert_false(prefix_suggested_address("2001:db8:100::1/48", a, sizeof(a)));
	assert_false(prefix_suggested_address("10.0.0.0/8", a, sizeof(a)));
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
		cmocka_unit_test(prefix_pool_parses_and_refuses),
		cmocka_unit_test(config_check),
		cmocka_unit_test(suggested_address),
		cmocka_unit_test(pool4_parses_and_allocates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
