/*
 * test_metadata — the metadata tree (src/metadata/tree.c): EC2 and
 * OpenStack paths, versions, keys, binary user data, and 404s.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "metadata/tree.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct nic nic = { .id = 0x10f, .network = 1, .network_name = "office",
			  .network_ipv6 = "2001:db8:10::/64", .ipv4 = "10.0.0.2" };
static struct vm_key keys[] = {
	{ .id = 1, .name = "laptop", .pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA laptop" },
	{ .id = 2, .name = "ci", .pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ci" },
};
static unsigned char ud[] = { '#', '!', '/', 'b', 'i', 'n', '/', 's', 'h', '\n', 0, 0xff, 'x' };

static struct vm make_vm(void)
{
	struct vm vm = { .id = 0x2a, .name = "web", .desired = "running", .state = "running",
			 .nics = &nic, .n_nics = 1, .keys = keys, .n_keys = 2,
			 .user_data = ud, .user_data_len = sizeof(ud) };
	return vm;
}

static char *get(const char *path, int *status)
{
	struct vm vm = make_vm();
	struct md_reply r;
	*status = metadata_render(&vm, path, &r);
	if (r.body == NULL)
		return NULL;
	char *s = malloc(r.len + 1);
	memcpy(s, r.body, r.len);
	s[r.len] = '\0';
	free(r.body);
	return s;
}

static void expect(const char *path, int status, const char *body)
{
	int st;
	char *s = get(path, &st);
	assert_int_equal(st, status);
	if (body)
		assert_string_equal(s, body);
	free(s);
}

static void ec2_leaves(void **state)
{
	(void)state;
	expect("/latest/meta-data/instance-id", 200, "i-000000002a");
	expect("/latest/meta-data/hostname", 200, "web");
	expect("/latest/meta-data/local-hostname", 200, "web");
	expect("/latest/meta-data/local-ipv4", 200, "10.0.0.2");
	expect("/latest/meta-data/mac", 200, "02:00:00:00:01:0f");
	expect("/2009-04-04/meta-data/instance-id", 200, "i-000000002a");
	expect("/latest/meta-data/", 200,
	       "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\npublic-keys/\n");
	expect("/latest/meta-data/public-ipv4", 404, NULL);     /* none attached */
}

static void ec2_keys(void **state)
{
	(void)state;
	expect("/latest/meta-data/public-keys/", 200, "0=laptop\n1=ci\n");
	expect("/latest/meta-data/public-keys/1/", 200, "openssh-key\n");
	expect("/latest/meta-data/public-keys/0/openssh-key", 200,
	       "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA laptop\n");
	expect("/latest/meta-data/public-keys/2/openssh-key", 404, NULL);
	expect("/latest/meta-data/public-keys/x/openssh-key", 404, NULL);
}

static void user_data_is_binary_safe(void **state)
{
	struct vm vm = make_vm();
	struct md_reply r;
	(void)state;
	assert_int_equal(metadata_render(&vm, "/latest/user-data", &r), 200);
	assert_int_equal(r.len, sizeof(ud));
	assert_memory_equal(r.body, ud, sizeof(ud));
	free(r.body);
	assert_int_equal(metadata_render(&vm, "/openstack/2012-08-10/user_data", &r), 200);
	assert_memory_equal(r.body, ud, sizeof(ud));
	free(r.body);
	vm.user_data = NULL;
	vm.user_data_len = 0;
	assert_int_equal(metadata_render(&vm, "/latest/user-data", &r), 404);
	free(r.body);
}

static void openstack_json(void **state)
{
	int st;
	(void)state;
	char *s = get("/openstack/latest/meta_data.json", &st);
	assert_int_equal(st, 200);
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "web");
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "web");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "public_keys"), "ci")),
			    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ci");
	assert_non_null(strstr(json_string_value(json_object_get(j, "uuid")), "000000002a"));
	json_decref(j);
	free(s);
	s = get("/openstack/2013-10-17/network_data.json", &st);
	assert_int_equal(st, 200);
	j = json_loads(s, 0, NULL);
	json_t *link = json_array_get(json_object_get(j, "links"), 0);
	assert_string_equal(json_string_value(json_object_get(link, "ethernet_mac_address")),
			    "02:00:00:00:01:0f");
	json_decref(j);
	free(s);
}

static void unknown_paths(void **state)
{
	(void)state;
	expect("/latest/meta-data/nope", 404, NULL);
	expect("/1.0/meta-data/hostname", 404, NULL);
	expect("/latest/../etc/passwd", 404, NULL);
	expect("/openstack/latest/secret", 404, NULL);
	expect("/openstack/20xx-01-01/meta_data.json", 404, NULL);
	expect("/", 200, "latest\n2009-04-04\nopenstack\n");
}

/* Routed prefixes and a public IPv4 address (issue 13): EC2's
 * network/interfaces/macs/<mac>/ipv6-prefix and public-ipv4(s), and an
 * address of each prefix in OpenStack's network_data.json. */
static void routed_prefixes_and_public_ipv4(void **state)
{
	(void)state;
	char *prefixes[] = { "2001:db8:100:1::/64", "2001:db8:100:200::/56" };
	struct nic nics[2] = {
		{ .id = 0x10f, .network = 1, .network_name = "office", .network_ipv6 = "2001:db8:10::/64",
		  .ipv4 = "10.0.0.2", .prefixes = prefixes, .n_prefixes = 2, .public_ipv4 = "198.51.100.7" },
		{ .id = 0x110, .network = 2, .network_name = "backend", .network_ipv6 = "2001:db8:20::/64" },
	};
	struct vm vm = make_vm();
	struct md_reply r;
	vm.nics = nics;
	vm.n_nics = 2;
	const struct { const char *path; int status; const char *body; } want[] = {
		{ "/latest/meta-data/", 200,
		  "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\npublic-ipv4\npublic-keys/\n" },
		{ "/latest/meta-data/public-ipv4", 200, "198.51.100.7" },
		{ "/latest/meta-data/network/", 200, "interfaces/\n" },
		{ "/latest/meta-data/network/interfaces/", 200, "macs/\n" },
		{ "/latest/meta-data/network/interfaces/macs/", 200, "02:00:00:00:01:0f/\n02:00:00:00:01:10/\n" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0f/", 200,
		  "mac\nipv6-prefix\npublic-ipv4s\n" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0f/ipv6-prefix", 200,
		  "2001:db8:100:1::/64\n2001:db8:100:200::/56" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0f/public-ipv4s", 200, "198.51.100.7" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:10/", 200, "mac\n" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:10/mac", 200, "02:00:00:00:01:10" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:10/ipv6-prefix", 404, NULL },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:11/", 404, NULL },
		{ "/latest/meta-data/network/interfaces/macsx/", 404, NULL },
		{ "/latest/meta-data/networkx", 404, NULL },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int st = metadata_render(&vm, want[i].path, &r);
		if (st != want[i].status)
			fail_msg("%s: status %d, want %d", want[i].path, st, want[i].status);
		if (want[i].body != NULL && (r.body == NULL || r.len != strlen(want[i].body) ||
					     memcmp(r.body, want[i].body, r.len) != 0))
			fail_msg("%s: body '%.*s', want '%s'", want[i].path, (int)r.len, r.body ? r.body : "",
				 want[i].body);
		free(r.body);
	}

	assert_int_equal(metadata_render(&vm, "/openstack/latest/network_data.json", &r), 200);
	json_t *j = json_loadb(r.body, r.len, 0, NULL), *net;
	size_t i, statics = 0;
	assert_non_null(j);
	json_array_foreach(json_object_get(j, "networks"), i, net) {
		if (strcmp(json_string_value(json_object_get(net, "type")), "ipv6") != 0)
			continue;
		assert_string_equal(json_string_value(json_object_get(net, "link")), "tap0");
		const char *addr = json_string_value(json_object_get(net, "ip_address"));
		assert_true(strcmp(addr, statics ? "2001:db8:100:200::1" : "2001:db8:100:1::1") == 0);
		statics++;
	}
	assert_int_equal(statics, 2);
	json_decref(j);
	free(r.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ec2_leaves),
		cmocka_unit_test(ec2_keys),
		cmocka_unit_test(user_data_is_binary_safe),
		cmocka_unit_test(openstack_json),
		cmocka_unit_test(unknown_paths),
		cmocka_unit_test(routed_prefixes_and_public_ipv4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
