/*
 * test_validate — user-input checks (src/common/validate.h): resource names,
 * IPv6 /64 prefixes, IPv4 subnets, kernel command lines, sizes with unit
 * suffixes, SHA-256 hex checksums and addresses of this host or its links.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/validate.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* ---- names -------------------------------------------------------------- */

static void name_valid_accepts(void **state)
{
	(void)state;
	char max[NAME_MAXLEN + 1];
	memset(max, 'a', NAME_MAXLEN);
	max[NAME_MAXLEN] = '\0';

	assert_true(name_valid("a"));
	assert_true(name_valid("0"));
	assert_true(name_valid("web-1"));
	assert_true(name_valid("a-b-c-9"));
	assert_true(name_valid("1abc"));
	assert_int_equal(strlen(max), 63);
	assert_true(name_valid(max));
}

static void name_valid_rejects(void **state)
{
	(void)state;
	char toolong[NAME_MAXLEN + 2];
	memset(toolong, 'a', NAME_MAXLEN + 1);
	toolong[NAME_MAXLEN + 1] = '\0';

	assert_false(name_valid(""));
	assert_false(name_valid(NULL));
	assert_false(name_valid("-a"));
	assert_false(name_valid("A"));
	assert_false(name_valid("webA"));
	assert_false(name_valid("a_b"));
	assert_false(name_valid("a.b"));
	assert_false(name_valid("a b"));
	assert_false(name_valid("a/b"));
	assert_false(name_valid("a\n"));
	assert_false(name_valid("caf\xc3\xa9"));
	assert_int_equal(strlen(toolong), 64);
	assert_false(name_valid(toolong));
}

/* ---- IPv6 prefixes ------------------------------------------------------ */

static void ipv6_prefix64_accepts(void **state)
{
	(void)state;
	struct in6_addr a, want;

	memset(&a, 0xaa, sizeof(a));
	assert_true(ipv6_prefix64_parse("2001:db8:10::/64", &a));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:10::", &want), 1);
	assert_memory_equal(&a, &want, sizeof(a));

	assert_true(ipv6_prefix64_parse("fd00:1:2:3::/64", &a));
	assert_int_equal(inet_pton(AF_INET6, "fd00:1:2:3::", &want), 1);
	assert_memory_equal(&a, &want, sizeof(a));

	assert_true(ipv6_prefix64_parse("2001:db8:0:ffff:0:0:0:0/64", &a));
}

static void ipv6_prefix64_rejects(void **state)
{
	(void)state;
	struct in6_addr a;
	const char *bad[] = {
		"2001:db8:10::/48",      /* not a /64 */
		"2001:db8:10::/128",
		"2001:db8:10::/0",
		"2001:db8::1/64",        /* host bits set */
		"2001:db8::8000:0:0:0/64",
		"2001:db8:10::",         /* missing length */
		"2001:db8:10::/",
		"2001:db8:10::/64x",
		"2001:db8:10::/ 64",
		"2001:db8:10::/+64",
		"2001:db8:10::/-64",
		"garbage/64",
		"10.0.0.0/64",           /* IPv4 */
		"2001:db8:::/64",
		"ff00::/64",             /* multicast */
		"ff02::/64",
		"fe80::/64",             /* link-local */
		"febf::/64",
		"",
		"/64",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ipv6_prefix64_parse(bad[i], &a))
			fail_msg("ipv6_prefix64_parse accepted \"%s\"", bad[i]);
	assert_false(ipv6_prefix64_parse(NULL, &a));
}

/* ---- IPv4 subnets ------------------------------------------------------- */

static void ipv4_cidr_accepts(void **state)
{
	(void)state;
	struct in_addr net;
	unsigned len = 0;

	assert_true(ipv4_cidr_parse("10.0.0.0/24", &net, &len));
	assert_int_equal(len, 24);
	assert_int_equal(ntohl(net.s_addr), 0x0a000000);

	assert_true(ipv4_cidr_parse("192.168.4.0/22", &net, &len));
	assert_int_equal(len, 22);
	assert_int_equal(ntohl(net.s_addr), 0xc0a80400);

	assert_true(ipv4_cidr_parse("10.0.0.0/8", &net, &len));
	assert_int_equal(len, 8);
	assert_true(ipv4_cidr_parse("10.0.0.4/30", &net, &len));
	assert_int_equal(len, 30);
}

static void ipv4_cidr_rejects(void **state)
{
	(void)state;
	struct in_addr net;
	unsigned len;
	const char *bad[] = {
		"10.0.0.1/24",           /* host bits set */
		"10.0.0.128/24",
		"10.0.0.0/31",           /* no room for hosts */
		"10.0.0.0/32",
		"10.0.0.0/7",            /* too large */
		"0.0.0.0/0",
		"10.0.0/24",             /* malformed address */
		"10.0.0.0.0/24",
		"10.0.0.256/24",
		"10.0.0.0/abc",
		"10.0.0.0/",
		"10.0.0.0",
		"10.0.0.0/24 ",
		"10.0.0.0/-24",
		"2001:db8::/64",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ipv4_cidr_parse(bad[i], &net, &len))
			fail_msg("ipv4_cidr_parse accepted \"%s\"", bad[i]);
	assert_false(ipv4_cidr_parse(NULL, &net, &len));
}

/* ---- kernel command lines ----------------------------------------------- */

static void cmdline_valid_accepts(void **state)
{
	(void)state;
	char max[2049];
	memset(max, 'x', 2048);
	max[2048] = '\0';

	assert_true(cmdline_valid(""));
	assert_true(cmdline_valid("console=ttyS0 root=/dev/vda rw quiet"));
	assert_true(cmdline_valid("init=/sbin/init panic=-1 a=\"b c\" ~!@#$%^&*()"));
	assert_true(cmdline_valid(max));
}

static void cmdline_valid_rejects(void **state)
{
	(void)state;
	char toolong[2050];
	memset(toolong, 'x', 2049);
	toolong[2049] = '\0';

	assert_false(cmdline_valid(NULL));
	assert_false(cmdline_valid("console=ttyS0\n"));
	assert_false(cmdline_valid("a\tb"));
	assert_false(cmdline_valid("a\rb"));
	assert_false(cmdline_valid("\x1b[0m"));
	assert_false(cmdline_valid("a\x7f"));
	assert_false(cmdline_valid("caf\xc3\xa9"));   /* not ASCII */
	assert_false(cmdline_valid(toolong));
}

/* Prefixes that parse but cannot be a guest network. */
static void special_ranges_rejected(void **state)
{
	struct in6_addr p6;
	struct in_addr p4;
	unsigned len;
	(void)state;

	assert_false(ipv6_prefix64_parse("::/64", &p6));
	assert_true(ipv6_prefix64_parse("0:0:0:1::/64", &p6));
	assert_false(ipv4_cidr_parse("0.0.0.0/8", &p4, &len));
	assert_false(ipv4_cidr_parse("127.0.0.0/24", &p4, &len));
	assert_false(ipv4_cidr_parse("169.254.0.0/16", &p4, &len));
	assert_false(ipv4_cidr_parse("169.254.169.0/24", &p4, &len));
	assert_false(ipv4_cidr_parse("224.0.0.0/24", &p4, &len));
	assert_false(ipv4_cidr_parse("240.0.0.0/24", &p4, &len));
	assert_true(ipv4_cidr_parse("169.253.0.0/16", &p4, &len));
	assert_true(ipv4_cidr_parse("223.0.0.0/24", &p4, &len));
}

static void ipv4_overlap(void **state)
{
	struct in_addr a, b;
	unsigned al, bl;
	(void)state;

	assert_true(ipv4_cidr_parse("10.0.0.0/16", &a, &al));
	assert_true(ipv4_cidr_parse("10.0.5.0/24", &b, &bl));
	assert_true(ipv4_cidr_overlap(a, al, b, bl));
	assert_true(ipv4_cidr_overlap(b, bl, a, al));
	assert_true(ipv4_cidr_parse("10.1.0.0/24", &b, &bl));
	assert_false(ipv4_cidr_overlap(a, al, b, bl));
	assert_true(ipv4_cidr_parse("10.0.0.0/24", &b, &bl));
	assert_true(ipv4_cidr_overlap(a, al, b, bl));
}

static void prefix_any_family(void **state)
{
	char canon[64];
	int fam;
	(void)state;

	assert_true(prefix_parse("2001:db8::/32", &fam, canon, sizeof(canon)));
	assert_int_equal(fam, AF_INET6);
	assert_string_equal(canon, "2001:db8::/32");
	assert_true(prefix_parse("10.0.0.0/8", &fam, canon, sizeof(canon)));
	assert_int_equal(fam, AF_INET);
	assert_true(prefix_parse("192.0.2.7", &fam, canon, sizeof(canon)));
	assert_string_equal(canon, "192.0.2.7/32");
	assert_true(prefix_parse("2001:DB8:0::1", &fam, canon, sizeof(canon)));
	assert_string_equal(canon, "2001:db8::1/128");
	assert_false(prefix_parse("10.0.0.1/8", &fam, canon, sizeof(canon)));
	assert_false(prefix_parse("10.0.0.0/33", &fam, canon, sizeof(canon)));
	assert_false(prefix_parse("2001:db8::/129", &fam, canon, sizeof(canon)));
	assert_false(prefix_parse("nonsense", &fam, canon, sizeof(canon)));
	assert_false(prefix_parse("", &fam, canon, sizeof(canon)));
}

/* ---- sizes -------------------------------------------------------------- */

static void size_parse_accepts(void **state)
{
	(void)state;
	uint64_t v = 1;

	assert_true(size_parse("0", &v));
	assert_int_equal(v, 0);
	assert_true(size_parse("1073741824", &v));
	assert_int_equal(v, 1073741824ULL);
	assert_true(size_parse("512", &v));
	assert_int_equal(v, 512);
	assert_true(size_parse("4K", &v));
	assert_int_equal(v, 4096);
	assert_true(size_parse("4k", &v));
	assert_int_equal(v, 4096);
	assert_true(size_parse("512M", &v));
	assert_int_equal(v, 512ULL << 20);
	assert_true(size_parse("4G", &v));
	assert_int_equal(v, 4ULL << 30);
	assert_true(size_parse("10g", &v));
	assert_int_equal(v, 10ULL << 30);
	assert_true(size_parse("2T", &v));
	assert_int_equal(v, 2ULL << 40);
	assert_true(size_parse("007M", &v));
	assert_int_equal(v, 7ULL << 20);
	/* the largest that fits: 2^63 - 1 bytes, 2^23 - 1 TiB */
	assert_true(size_parse("9223372036854775807", &v));
	assert_int_equal(v, 9223372036854775807ULL);
	assert_true(size_parse("8388607T", &v));
	assert_int_equal(v, 8388607ULL << 40);
}

static void size_parse_rejects(void **state)
{
	(void)state;
	uint64_t v = 42;
	const char *bad[] = { "", "G", "-1", "+1", " 1", "1 ", "1.5G", "1GB", "1GiB", "1P", "1E",
			      "4G4", "0x10", "1e9", "9223372036854775808", "8388608T",
			      "99999999999999999999", "18446744073709551616", "1\n", NULL };

	for (size_t i = 0; bad[i]; i++)
		if (size_parse(bad[i], &v))
			fail_msg("size_parse accepted '%s'", bad[i]);
	assert_false(size_parse(NULL, &v));
	assert_int_equal(v, 42); /* untouched on failure */
}

static void sha256_hex_parse_checks(void **state)
{
	(void)state;
	char out[65];
	const char *lower = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

	assert_true(sha256_hex_parse(lower, out));
	assert_string_equal(out, lower);
	assert_true(sha256_hex_parse("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", out));
	assert_string_equal(out, lower);
	assert_false(sha256_hex_parse(NULL, out));
	assert_false(sha256_hex_parse("", out));
	assert_false(sha256_hex_parse("ba7816bf", out));
	assert_false(sha256_hex_parse("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", out));
	assert_false(sha256_hex_parse("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", out));
	assert_false(sha256_hex_parse("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a ", out));
}

static void host_local_addresses(void **state)
{
	(void)state;
	const char *local[] = { "127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254",
				"169.254.0.1", "::1", "::", "fe80::a9fe:a9fe", "fe80::1",
				"febf::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", NULL };
	const char *remote[] = { "10.0.0.1", "192.168.1.1", "8.8.8.8", "128.0.0.1",
				 "169.253.255.255", "169.255.0.1", "2001:db8::1", "fd00::1",
				 "fec0::1", "::ffff:8.8.8.8", "localhost", "", "1.2.3", NULL };

	for (size_t i = 0; local[i]; i++)
		if (!ip_is_host_local(local[i]))
			fail_msg("%s is not seen as local", local[i]);
	for (size_t i = 0; remote[i]; i++)
		if (ip_is_host_local(remote[i]))
			fail_msg("%s is seen as local", remote[i]);
	assert_false(ip_is_host_local(NULL));
}

static void host_names_and_lists(void **state)
{
	(void)state;
	assert_true(host_name_valid("h1"));
	assert_true(host_name_valid("Node-7.example.org"));
	assert_false(host_name_valid(""));
	assert_false(host_name_valid(NULL));
	assert_false(host_name_valid("-h"));
	assert_false(host_name_valid(".h"));
	assert_false(host_name_valid("bad host"));
	assert_false(host_name_valid("h/1"));

	assert_true(list_has("api,scheduler,agent", "scheduler"));
	assert_true(list_has("file", "file"));
	assert_true(list_has("file,otp", "otp"));
	assert_false(list_has("file,otp", "ot"));
	assert_false(list_has("files", "file"));
	assert_false(list_has("", "file"));
	assert_false(list_has(NULL, "file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(name_valid_accepts),
		cmocka_unit_test(name_valid_rejects),
		cmocka_unit_test(host_names_and_lists),
		cmocka_unit_test(ipv6_prefix64_accepts),
		cmocka_unit_test(ipv6_prefix64_rejects),
		cmocka_unit_test(ipv4_cidr_accepts),
		cmocka_unit_test(ipv4_cidr_rejects),
		cmocka_unit_test(cmdline_valid_accepts),
		cmocka_unit_test(cmdline_valid_rejects),
		cmocka_unit_test(special_ranges_rejected),
		cmocka_unit_test(ipv4_overlap),
		cmocka_unit_test(prefix_any_family),
		cmocka_unit_test(size_parse_accepts),
		cmocka_unit_test(size_parse_rejects),
		cmocka_unit_test(sha256_hex_parse_checks),
		cmocka_unit_test(host_local_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
