/*
 * test_ids — identifiers and derived names (src/common/ids.h, DESIGN §2):
 * VM/network ID rendering and parsing, NIC MACs, tap/bridge/vxlan names
 * (IFNAMSIZ bound, round trips, rejection of foreign names) and the
 * modified EUI-64 interface identifier of RFC 4291 appendix A.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/ids.h"

#include <string.h>

/* ---- VM IDs ------------------------------------------------------------- */

static void vm_id_format_is_10_lowercase_hex(void **state)
{
	(void)state;
	assert_string_equal(vm_id_format(0x2a).s, "000000002a");
	assert_string_equal(vm_id_format(0).s, "0000000000");
	assert_string_equal(vm_id_format(0xabcdef).s, "0000abcdef");
	assert_string_equal(vm_id_format(VM_ID_MAX).s, "ffffffffff");
	assert_int_equal(strlen(vm_id_format(VM_ID_MAX).s), VM_ID_STRLEN);
}

static void vm_id_parse_round_trip(void **state)
{
	(void)state;
	const uint64_t ids[] = { 0, 1, 0x2a, 0x10f, 0xdeadbeef, VM_ID_MAX };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint64_t back = ~UINT64_C(0);
		assert_true(vm_id_parse(vm_id_format(ids[i]).s, &back));
		assert_int_equal(back, ids[i]);
	}
}

static void vm_id_parse_rejects(void **state)
{
	(void)state;
	uint64_t id = 77;
	assert_false(vm_id_parse("000000002A", &id));   /* uppercase */
	assert_false(vm_id_parse("00000002a", &id));    /* 9 digits */
	assert_false(vm_id_parse("0000000002a", &id));  /* 11 digits */
	assert_false(vm_id_parse("000000002g", &id));   /* not hex */
	assert_false(vm_id_parse("00000 002a", &id));
	assert_false(vm_id_parse("-00000002a", &id));
	assert_false(vm_id_parse("", &id));
	assert_false(vm_id_parse(NULL, &id));
	assert_int_equal(id, 77); /* untouched on failure */
}

static void net_id_format_and_parse(void **state)
{
	(void)state;
	uint64_t id = 0;
	assert_string_equal(net_id_format(0xc).s, "00000c");
	assert_string_equal(net_id_format(NET_ID_MAX).s, "ffffff");
	assert_true(net_id_parse("00000c", &id));
	assert_int_equal(id, 0xc);
	assert_true(net_id_parse("ffffff", &id));
	assert_int_equal(id, NET_ID_MAX);
	assert_false(net_id_parse("00000C", &id));
	assert_false(net_id_parse("0000c", &id));
	assert_false(net_id_parse("000000c", &id));
	assert_false(net_id_parse("00000z", &id));
}

/* ---- NIC MACs ----------------------------------------------------------- */

static void nic_mac_format_embeds_id(void **state)
{
	(void)state;
	assert_string_equal(nic_mac_format(0x10f).s, "02:00:00:00:01:0f");
	assert_string_equal(nic_mac_format(0).s, "02:00:00:00:00:00");
	assert_string_equal(nic_mac_format(NIC_ID_MAX).s, "02:00:ff:ff:ff:ff");
	assert_string_equal(nic_mac_format(0x12345678).s, "02:00:12:34:56:78");
	assert_int_equal(strlen(nic_mac_format(NIC_ID_MAX).s), MAC_STRLEN);

	uint8_t m[6];
	const uint8_t want[6] = { 0x02, 0x00, 0x12, 0x34, 0x56, 0x78 };
	nic_mac_bytes(0x12345678, m);
	assert_memory_equal(m, want, 6);
	/* Locally administered (bit 1) and unicast (bit 0 clear). */
	assert_true(m[0] & 0x02);
	assert_false(m[0] & 0x01);
}

static void nic_mac_parse_round_trip(void **state)
{
	(void)state;
	const uint64_t ids[] = { 0, 1, 0x10f, 0xdeadbeef, NIC_ID_MAX };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint64_t back = ~UINT64_C(0);
		assert_true(nic_mac_parse(nic_mac_format(ids[i]).s, &back));
		assert_int_equal(back, ids[i]);
	}
}

static void nic_mac_parse_accepts_uppercase(void **state)
{
	(void)state;
	uint64_t id = 0;
	assert_true(nic_mac_parse("02:00:DE:AD:BE:EF", &id));
	assert_int_equal(id, 0xdeadbeef);
	assert_true(nic_mac_parse("02:00:00:00:01:0F", &id));
	assert_int_equal(id, 0x10f);
}

static void nic_mac_parse_rejects(void **state)
{
	(void)state;
	uint64_t id = 99;
	assert_false(nic_mac_parse("00:11:22:33:44:55", &id)); /* not ours */
	assert_false(nic_mac_parse("02:01:00:00:01:0f", &id)); /* 02:01 prefix */
	assert_false(nic_mac_parse("06:00:00:00:01:0f", &id));
	assert_false(nic_mac_parse("02:00:00:00:01", &id));    /* short */
	assert_false(nic_mac_parse("02:00:00:00:01:0f:00", &id));
	assert_false(nic_mac_parse("02:00:00:00:01:0g", &id)); /* not hex */
	assert_false(nic_mac_parse("02:00:00-00:01:0f", &id)); /* separator */
	assert_false(nic_mac_parse("02:00:0000:01:0f:", &id));
	assert_false(nic_mac_parse("", &id));
	assert_false(nic_mac_parse(NULL, &id));
	assert_int_equal(id, 99);
}

/* ---- interface names ---------------------------------------------------- */

static void ifnames_render(void **state)
{
	(void)state;
	assert_string_equal(ifname_tap(0x10f).s, "v02000000010f");
	assert_string_equal(ifname_bridge(0xc).s, "b00000c");
	assert_string_equal(ifname_vxlan(0xc).s, "x00000c");
	assert_string_equal(ifname_tap(NIC_ID_MAX).s, "v0200ffffffff");
	assert_string_equal(ifname_ifb(0x10f).s, "i02000000010f");
	assert_string_equal(ifname_bridge(NET_ID_MAX).s, "bffffff");
	assert_string_equal(ifname_vxlan(NET_ID_MAX).s, "xffffff");
}

static void ifnames_fit_ifnamsiz(void **state)
{
	(void)state;
	/* IFNAMSIZ is 16 including the NUL: 15 visible characters at most. */
	assert_true(strlen(ifname_tap(NIC_ID_MAX).s) <= 15);
	assert_true(strlen(ifname_bridge(NET_ID_MAX).s) <= 15);
	assert_true(strlen(ifname_vxlan(NET_ID_MAX).s) <= 15);
	assert_true(IFNAME_MAXLEN <= 15);
	/* Exact lengths: "v" + 12, "b"/"x" + 6. */
	assert_int_equal(strlen(ifname_tap(0).s), 13);
	assert_int_equal(strlen(ifname_ifb(NIC_ID_MAX).s), 13);
	assert_int_equal(strlen(ifname_bridge(0).s), 7);
	assert_int_equal(strlen(ifname_vxlan(0).s), 7);
}

static void ifname_parse_round_trip(void **state)
{
	(void)state;
	const uint64_t nics[] = { 0, 0x10f, 0xdeadbeef, NIC_ID_MAX };
	const uint64_t nets[] = { 0, 1, 0xc, 0xabcdef, NET_ID_MAX };
	enum ifname_kind kind;
	uint64_t id;

	for (size_t i = 0; i < sizeof(nics) / sizeof(nics[0]); i++) {
		kind = IFNAME_BRIDGE;
		id = ~UINT64_C(0);
		assert_true(ifname_parse(ifname_tap(nics[i]).s, &kind, &id));
		assert_int_equal(kind, IFNAME_TAP);
		assert_int_equal(id, nics[i]);

		kind = IFNAME_TAP;
		assert_true(ifname_parse(ifname_ifb(nics[i]).s, &kind, &id));
		assert_int_equal(kind, IFNAME_IFB);
		assert_int_equal(id, nics[i]);
	}
	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		kind = IFNAME_TAP;
		id = ~UINT64_C(0);
		assert_true(ifname_parse(ifname_bridge(nets[i]).s, &kind, &id));
		assert_int_equal(kind, IFNAME_BRIDGE);
		assert_int_equal(id, nets[i]);

		kind = IFNAME_TAP;
		id = ~UINT64_C(0);
		assert_true(ifname_parse(ifname_vxlan(nets[i]).s, &kind, &id));
		assert_int_equal(kind, IFNAME_VXLAN);
		assert_int_equal(id, nets[i]);
	}
}

static void ifname_parse_rejects_foreign(void **state)
{
	(void)state;
	enum ifname_kind kind = IFNAME_BRIDGE;
	uint64_t id = 123;
	const char *bad[] = {
		"eth0", "lo", "v12", "vxyzvxyzvxyz", "v02000000010", "v02000000010f0",
		"v02000000010F",        /* uppercase: not a name we generate */
		"v00112233445",         /* short */
		"v001122334455",        /* MAC not 02:00 */
		"v02010000010f",        /* 02:01 */
		"b00000", "b000000c", "b00000g", "x0000c", "xyzxyz1",
		"B00000c", "d00000c", "", "v", "b", "x",
		"i", "i001122334455", "i02000000010", "ifb0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ifname_parse(bad[i], &kind, &id))
			fail_msg("ifname_parse accepted \"%s\"", bad[i]);
	}
	assert_false(ifname_parse(NULL, &kind, &id));
	assert_int_equal(kind, IFNAME_BRIDGE);
	assert_int_equal(id, 123);
}

/* ---- EUI-64 ------------------------------------------------------------- */

static void eui64_local_mac(void **state)
{
	(void)state;
	const uint8_t mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x0f };
	const uint8_t want[8] = { 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x01, 0x0f };
	uint8_t iid[8];
	memset(iid, 0xaa, sizeof(iid));
	eui64_from_mac(mac, iid);
	assert_memory_equal(iid, want, 8);
}

static void eui64_universal_mac(void **state)
{
	(void)state;
	/* RFC 4291 appendix A: the u/l bit is inverted, ff:fe inserted. */
	const uint8_t mac[6] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55 };
	const uint8_t want[8] = { 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55 };
	uint8_t iid[8];
	eui64_from_mac(mac, iid);
	assert_memory_equal(iid, want, 8);
}

static void eui64_of_nic_mac(void **state)
{
	(void)state;
	uint8_t mac[6], iid[8];
	const uint8_t want[8] = { 0x00, 0x00, 0xde, 0xff, 0xfe, 0xad, 0xbe, 0xef };
	nic_mac_bytes(0xdeadbeef, mac);
	eui64_from_mac(mac, iid);
	assert_memory_equal(iid, want, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vm_id_format_is_10_lowercase_hex),
		cmocka_unit_test(vm_id_parse_round_trip),
		cmocka_unit_test(vm_id_parse_rejects),
		cmocka_unit_test(net_id_format_and_parse),
		cmocka_unit_test(nic_mac_format_embeds_id),
		cmocka_unit_test(nic_mac_parse_round_trip),
		cmocka_unit_test(nic_mac_parse_accepts_uppercase),
		cmocka_unit_test(nic_mac_parse_rejects),
		cmocka_unit_test(ifnames_render),
		cmocka_unit_test(ifnames_fit_ifnamsiz),
		cmocka_unit_test(ifname_parse_round_trip),
		cmocka_unit_test(ifname_parse_rejects_foreign),
		cmocka_unit_test(eui64_local_mac),
		cmocka_unit_test(eui64_universal_mac),
		cmocka_unit_test(eui64_of_nic_mac),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
