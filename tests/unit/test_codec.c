/*
 * test_codec — JSON shapes of the API resources (src/api/codec.h, DESIGN §9):
 * a hand-built VM with two NICs (IDs in hex, MAC/ifname derived from the NIC
 * ID, IPv6 = network /64 + modified EUI-64) and its disks, images (also
 * ones imported from a URL), networks, free text that is not UTF-8, and
 * nic_ipv6 on good and bad prefixes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/codec.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (v == NULL)
		fail_msg("key \"%s\" missing", key);
	if (!json_is_string(v))
		fail_msg("key \"%s\" is not a string", key);
	return json_string_value(v);
}

static json_int_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (v == NULL || !json_is_integer(v))
		fail_msg("key \"%s\" missing or not an integer", key);
	return json_integer_value(v);
}

static void assert_jnull(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (v == NULL)
		fail_msg("key \"%s\" missing (expected null)", key);
	if (!json_is_null(v))
		fail_msg("key \"%s\" is not null", key);
}

/* ---- nic_ipv6 ----------------------------------------------------------- */

static void nic_ipv6_is_prefix_plus_eui64(void **state)
{
	(void)state;
	char buf[INET6_ADDRSTRLEN];

	assert_true(nic_ipv6("2001:db8:10::/64", 0x10f, buf, sizeof(buf)));
	assert_string_equal(buf, "2001:db8:10::ff:fe00:10f");

	assert_true(nic_ipv6("2001:db8:10::/64", 0xdeadbeef, buf, sizeof(buf)));
	assert_string_equal(buf, "2001:db8:10::deff:fead:beef");

	assert_true(nic_ipv6("fd00:1:2:3::/64", 1, buf, sizeof(buf)));
	assert_string_equal(buf, "fd00:1:2:3:0:ff:fe00:1");

	/* The address is inside the prefix: the first 64 bits are the prefix. */
	struct in6_addr a, p;
	assert_true(nic_ipv6("2001:db8:abcd:12::/64", 0x10f, buf, sizeof(buf)));
	assert_int_equal(inet_pton(AF_INET6, buf, &a), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:abcd:12::", &p), 1);
	assert_memory_equal(&a, &p, 8);
}

static void nic_ipv6_rejects_bad_prefix(void **state)
{
	(void)state;
	char buf[INET6_ADDRSTRLEN];
	assert_false(nic_ipv6("2001:db8:10::/48", 0x10f, buf, sizeof(buf)));
	assert_false(nic_ipv6("2001:db8::1/64", 0x10f, buf, sizeof(buf)));
	assert_false(nic_ipv6("not-an-address", 0x10f, buf, sizeof(buf)));
	assert_false(nic_ipv6("fe80::/64", 0x10f, buf, sizeof(buf)));
	assert_false(nic_ipv6("", 0x10f, buf, sizeof(buf)));
}

static void image_id_is_8_hex(void **state)
{
	(void)state;
	char buf[9];
	id8_format(0xa, buf);
	assert_string_equal(buf, "0000000a");
	id8_format(0xdeadbeef, buf);
	assert_string_equal(buf, "deadbeef");
}

/* ---- VMs ---------------------------------------------------------------- */

static void vm_to_json_full(void **state)
{
	(void)state;
	struct nic nics[2] = {
		{ .id = 0x10f, .network = 0xc, .network_name = "lan",
		  .network_ipv6 = "2001:db8:10::/64", .ipv4 = "10.0.0.2" },
		{ .id = 0x110, .network = 0xd, .network_name = "v6only",
		  .network_ipv6 = "fd00:1:2:3::/64", .ipv4 = NULL },
	};
	struct vm vm = {
		.id = 0x2a, .name = "web-1", .owner = 0, .owner_name = "root",
		.image = 0xa, .image_name = "tiny", .cpus = 2, .memory_mib = 512,
		.desired = "running", .state = "starting", .host = "node1",
		.error = NULL, .created = 1700000000, .nics = nics, .n_nics = 2,
	};
	json_t *j = vm_to_json(&vm);

	assert_non_null(j);
	assert_true(json_is_object(j));
	assert_string_equal(jstr(j, "id"), "000000002a");
	assert_string_equal(jstr(j, "name"), "web-1");
	assert_string_equal(jstr(j, "state"), "starting");
	assert_string_equal(jstr(j, "desired"), "running");
	assert_int_equal(jint(j, "cpus"), 2);
	assert_int_equal(jint(j, "memory_mib"), 512);
	assert_string_equal(jstr(j, "image"), "tiny");
	assert_string_equal(jstr(j, "image_id"), "0000000a");
	assert_string_equal(jstr(j, "owner"), "root");
	assert_string_equal(jstr(j, "host"), "node1");
	assert_jnull(j, "error");
	assert_int_equal(jint(j, "created"), 1700000000);

	json_t *arr = json_object_get(j, "nics");
	assert_non_null(arr);
	assert_true(json_is_array(arr));
	assert_int_equal(json_array_size(arr), 2);

	json_t *n0 = json_array_get(arr, 0);
	assert_string_equal(jstr(n0, "mac"), "02:00:00:00:01:0f");
	assert_string_equal(jstr(n0, "ifname"), "v02000000010f");
	assert_string_equal(jstr(n0, "network"), "lan");
	assert_string_equal(jstr(n0, "network_id"), "00000c");
	assert_string_equal(jstr(n0, "ipv6"), "2001:db8:10::ff:fe00:10f");
	assert_string_equal(jstr(n0, "ipv4"), "10.0.0.2");

	json_t *n1 = json_array_get(arr, 1);
	assert_string_equal(jstr(n1, "mac"), "02:00:00:00:01:10");
	assert_string_equal(jstr(n1, "ifname"), "v020000000110");
	assert_string_equal(jstr(n1, "network"), "v6only");
	assert_string_equal(jstr(n1, "network_id"), "00000d");
	assert_string_equal(jstr(n1, "ipv6"), "fd00:1:2:3:0:ff:fe00:110");
	assert_jnull(n1, "ipv4");

	json_decref(j);
}

static void vm_to_json_nullable_fields(void **state)
{
	(void)state;
	struct nic nic = { .id = 7, .network = 1, .network_name = "broken",
			   .network_ipv6 = "2001:db8::1/64" /* host bits: invalid */ };
	struct vm vm = {
		.id = 0xffffffffffULL, .name = "x", .image = 1, .cpus = 1, .memory_mib = 64,
		.desired = "stopped", .state = "error", .host = NULL,
		.error = "qemu exited", .nics = &nic, .n_nics = 1,
	};
	json_t *j = vm_to_json(&vm);

	assert_non_null(j);
	assert_string_equal(jstr(j, "id"), "ffffffffff");
	assert_jnull(j, "host");
	assert_string_equal(jstr(j, "error"), "qemu exited");
	assert_string_equal(jstr(j, "state"), "error");
	/* Missing display names render as "" rather than failing. */
	assert_string_equal(jstr(j, "image"), "");
	assert_string_equal(jstr(j, "owner"), "");
	json_t *n0 = json_array_get(json_object_get(j, "nics"), 0);
	assert_non_null(n0);
	assert_string_equal(jstr(n0, "mac"), "02:00:00:00:00:07");
	assert_jnull(n0, "ipv6");   /* bad prefix: no address invented */
	assert_jnull(n0, "ipv4");
	json_decref(j);
}

/* Free text that is not UTF-8 (a host name from hcd.conf, an error) still
 * renders, each byte that is not as U+FFFD, the others kept — also the
 * forms a loose decoder takes: surrogates, past U+10FFFF, overlong (found
 * by tests/fuzz/fuzz_codec). */
static void vm_to_json_text_not_utf8(void **state)
{
	(void)state;
	struct vm vm = { .id = 1, .name = "a", .desired = "running", .state = "error",
			 .cpus = 1, .memory_mib = 128, .host = "h\xc3\x28st",
			 .error = "caf\xe9: \xff" };
	json_t *j = vm_to_json(&vm);

	assert_non_null(j);
	assert_string_equal(jstr(j, "host"), "h\xef\xbf\xbd(st");
	assert_string_equal(jstr(j, "error"), "caf\xef\xbf\xbd: \xef\xbf\xbd");
	json_decref(j);
	vm.host = "\xed\xa0\x80";            /* a surrogate */
	vm.error = "\xf4\x90\x80\x80 \xe0\x80\xaf \xc3\xa9";   /* past U+10FFFF, overlong, é */
	j = vm_to_json(&vm);
	assert_non_null(j);
	assert_string_equal(jstr(j, "host"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(jstr(j, "error"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xc3\xa9");
	json_decref(j);
	struct image im = { .id = 1, .name = "i", .format = "raw", .boot = "disk", .state = "error",
			    .error = "the server said \xed\xbf\xbf\xff" };
	j = image_to_json(&im);
	assert_non_null(j);
	assert_string_equal(jstr(j, "error"), "the server said \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
}

/* Every member a VM is written with may be asked for by ?fields= (the
 * list of known names in codec.c is kept by hand beside the writer). */
static void vm_fields_known(void **state)
{
	(void)state;
	char *prefixes[] = { "2001:db8:100::/64" };
	struct nic nic = { .id = 7, .network = 1, .network_name = "lan", .network_ipv6 = "2001:db8::/64",
			   .ipv4 = "10.0.0.2", .prefixes = prefixes, .n_prefixes = 1,
			   .public_ipv4 = "198.51.100.7" };
	struct vm vm = { .id = 1, .name = "x", .image = 1, .cpus = 1, .memory_mib = 64,
			 .desired = "running", .state = "running", .nics = &nic, .n_nics = 1 };
	json_t *j = vm_to_json(&vm), *v, *n0;
	const char *key;
	char name[64];

	assert_non_null(j);
	json_object_foreach(j, key, v) {
		if (!vm_json_field_known(key, strlen(key)))
			fail_msg("VM member '%s' cannot be asked for with ?fields=", key);
	}
	n0 = json_array_get(json_object_get(j, "nics"), 0);
	assert_non_null(n0);
	json_object_foreach(n0, key, v) {
		snprintf(name, sizeof(name), "nics.%s", key);
		if (!vm_json_field_known(name, strlen(name)))
			fail_msg("NIC member '%s' cannot be asked for with ?fields=", name);
	}
	json_decref(j);
}

static void vm_to_json_no_nics(void **state)
{
	(void)state;
	struct vm vm = { .id = 1, .name = "a", .desired = "running", .state = "stopped",
			 .cpus = 1, .memory_mib = 128 };
	json_t *j = vm_to_json(&vm);

	assert_non_null(j);
	json_t *arr = json_object_get(j, "nics");
	assert_true(json_is_array(arr));
	assert_int_equal(json_array_size(arr), 0);
	/* No disks asked for: the image's size, no data disks. */
	assert_jnull(j, "disk_size");
	assert_true(json_is_array(json_object_get(j, "disks")));
	assert_int_equal(json_array_size(json_object_get(j, "disks")), 0);
	json_decref(j);
}

static void vm_to_json_disks(void **state)
{
	(void)state;
	struct vm_disk disks[] = { { (int64_t)10 << 30 }, { (int64_t)1 << 20 } };
	struct vm vm = { .id = 1, .name = "a", .desired = "running", .state = "stopped",
			 .cpus = 1, .memory_mib = 128, .disk_size = (int64_t)4 << 30,
			 .disks = disks, .n_disks = 2 };
	json_t *j = vm_to_json(&vm), *d;

	assert_non_null(j);
	assert_int_equal(jint(j, "disk_size"), (json_int_t)4 << 30);
	d = json_object_get(j, "disks");
	assert_int_equal(json_array_size(d), 2);
	assert_int_equal(jint(json_array_get(d, 0), "size"), (json_int_t)10 << 30);
	assert_int_equal(jint(json_array_get(d, 1), "size"), (json_int_t)1 << 20);
	assert_int_equal(json_object_size(json_array_get(d, 0)), 1);
	json_decref(j);
}

/* ---- images and networks ------------------------------------------------ */

static void image_to_json_fields(void **state)
{
	(void)state;
	struct image im = {
		.id = 0xa, .name = "tiny", .owner = 0, .owner_name = "root",
		.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		.format = "kernel", .boot = "kernel", .size = 12345678,
		.cmdline = "console=ttyS0", .has_initrd = true, .state = "ready",
		.created = 1700000001,
	};
	json_t *j = image_to_json(&im);

	assert_non_null(j);
	assert_string_equal(jstr(j, "id"), "0000000a");
	assert_string_equal(jstr(j, "name"), "tiny");
	assert_string_equal(jstr(j, "sha256"), im.sha256);
	assert_string_equal(jstr(j, "format"), "kernel");
	assert_string_equal(jstr(j, "boot"), "kernel");
	assert_int_equal(jint(j, "size"), 12345678);
	assert_string_equal(jstr(j, "owner"), "root");
	assert_string_equal(jstr(j, "cmdline"), "console=ttyS0");
	assert_true(json_is_true(json_object_get(j, "initrd")));
	assert_string_equal(jstr(j, "state"), "ready");
	assert_int_equal(jint(j, "created"), 1700000001);
	json_decref(j);

	/* An image still uploading: no hash yet, a disk without cmdline. */
	struct image up = { .id = 0xdeadbeef, .name = "deb", .format = "qcow2", .boot = "disk",
			    .size = (int64_t)5 << 32, .state = "uploading" };
	j = image_to_json(&up);
	assert_non_null(j);
	assert_string_equal(jstr(j, "id"), "deadbeef");
	assert_jnull(j, "sha256");
	assert_jnull(j, "cmdline");
	assert_string_equal(jstr(j, "boot"), "disk");
	assert_true(json_is_false(json_object_get(j, "initrd")));
	assert_int_equal(jint(j, "size"), (json_int_t)5 << 32); /* > 32 bits survives */
	assert_string_equal(jstr(j, "visibility"), "private"); /* the default */
	assert_jnull(j, "source");
	assert_jnull(j, "error");
	json_decref(j);

	/* An import from the web that failed. */
	struct image bad = { .id = 3, .name = "alpine", .format = "pending", .boot = "disk",
			     .state = "error", .visibility = "public",
			     .source = "https://example.org/a.qcow2", .error = "checksum mismatch" };
	j = image_to_json(&bad);
	assert_string_equal(jstr(j, "state"), "error");
	assert_string_equal(jstr(j, "visibility"), "public");
	assert_string_equal(jstr(j, "source"), "https://example.org/a.qcow2");
	assert_string_equal(jstr(j, "error"), "checksum mismatch");
	json_decref(j);
}

static void network_to_json_fields(void **state)
{
	(void)state;
	struct network n = { .id = 0xc, .name = "lan", .owner = 0, .owner_name = "root",
			     .ipv6 = "2001:db8:10::/64", .ipv4 = "10.0.0.0/24", .created = 5 };
	json_t *j = network_to_json(&n);

	assert_non_null(j);
	assert_string_equal(jstr(j, "id"), "00000c");
	assert_string_equal(jstr(j, "name"), "lan");
	assert_string_equal(jstr(j, "bridge"), "b00000c");
	assert_string_equal(jstr(j, "ipv6"), "2001:db8:10::/64");
	assert_string_equal(jstr(j, "ipv4"), "10.0.0.0/24");
	assert_string_equal(jstr(j, "owner"), "root");
	assert_int_equal(jint(j, "created"), 5);
	json_decref(j);

	struct network v6 = { .id = 0xabcdef, .name = "v6", .ipv6 = "fd00::/64" };
	j = network_to_json(&v6);
	assert_non_null(j);
	assert_string_equal(jstr(j, "id"), "abcdef");
	assert_string_equal(jstr(j, "bridge"), "babcdef");
	assert_jnull(j, "ipv4");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nic_ipv6_is_prefix_plus_eui64),
		cmocka_unit_test(nic_ipv6_rejects_bad_prefix),
		cmocka_unit_test(image_id_is_8_hex),
		cmocka_unit_test(vm_to_json_full),
		cmocka_unit_test(vm_to_json_nullable_fields),
		cmocka_unit_test(vm_to_json_text_not_utf8),
		cmocka_unit_test(vm_fields_known),
		cmocka_unit_test(vm_to_json_no_nics),
		cmocka_unit_test(vm_to_json_disks),
		cmocka_unit_test(image_to_json_fields),
		cmocka_unit_test(network_to_json_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
