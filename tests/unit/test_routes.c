/*
 * test_routes — what the host routes and translates for its VMs
 * (src/net/routes.h, src/net/conntrack.h), the pure parts: a prefix is
 * routed to its NIC's address on its network's bridge only while the VM
 * runs here (so it follows the VM from host to host), public IPv4
 * addresses go on the uplink only with one, and which conntrack entries
 * a changed mapping leaves stale.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/ids.h"
#include "net/routes.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	struct netstate ns;
	struct ns_net nets[2];
	struct ns_nic nics[3];
	struct ns_prefix prefixes[4];
	struct ns_public4 public4[3];
};

static void fx(struct fixture *f)
{
	static char uplink[] = "eth0";
	uint8_t iid[8];

	memset(f, 0, sizeof(*f));
	f->ns = (struct netstate){ .nets = f->nets, .n_nets = 2, .nics = f->nics, .n_nics = 3,
				   .prefixes = f->prefixes, .n_prefixes = 4, .public4 = f->public4,
				   .n_public4 = 3, .uplink = uplink };
	for (int i = 0; i < 2; i++) {
		f->nets[i].id = 0x0a + (uint64_t)i;
		snprintf(f->nets[i].bridge, sizeof(f->nets[i].bridge), "%s", ifname_bridge(f->nets[i].id).s);
		inet_pton(AF_INET6, i ? "2001:db8:20::" : "2001:db8:10::", &f->nets[i].prefix6);
	}
	for (int i = 0; i < 3; i++) {
		struct ns_nic *c = &f->nics[i];
		c->id = 0x10f + (uint64_t)i;
		c->vm_id = 0x2a + (uint64_t)i;
		c->net_id = i == 2 ? 0x0b : 0x0a;
		nic_mac_bytes(c->id, c->mac);
		eui64_from_mac(c->mac, iid);
		c->ip6 = f->nets[i == 2].prefix6;
		memcpy(c->ip6.s6_addr + 8, iid, 8);
		c->has_ip4 = i != 2;
		c->ip4.s_addr = htonl(0x0a0a0005u + (uint32_t)i);
		c->active = true;
	}
	const char *p[] = { "2001:db8:100:1::", "2001:db8:100:200::", "2001:db8:100:2::", "2001:db8:100:3::" };
	const unsigned len[] = { 64, 56, 64, 64 };
	const uint64_t nic[] = { 0x110, 0x10f, 0x111, 0x999 };  /* the last: no such NIC */
	for (int i = 0; i < 4; i++) {
		inet_pton(AF_INET6, p[i], &f->prefixes[i].addr);
		f->prefixes[i].len = len[i];
		f->prefixes[i].nic_id = nic[i];
	}
	const char *pub[] = { "198.51.100.9", "198.51.100.7", "198.51.100.8" };
	const uint64_t pnic[] = { 0x110, 0x10f, 0x111 };         /* 0x111 has no IPv4 */
	for (int i = 0; i < 3; i++) {
		inet_pton(AF_INET, pub[i], &f->public4[i].addr);
		f->public4[i].nic_id = pnic[i];
	}
}

static void route_is(const struct route6 *r, const char *dst, unsigned len, const char *via, const char *dev)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	assert_string_equal(inet_ntop(AF_INET6, &r->dst, a, sizeof(a)), dst);
	assert_int_equal(r->len, len);
	assert_string_equal(inet_ntop(AF_INET6, &r->via, b, sizeof(b)), via);
	assert_string_equal(r->dev, dev);
}

static void prefixes_go_where_the_vm_runs(void **state)
{
	(void)state;
	struct fixture f;
	struct route6 *r;
	size_t n;

	fx(&f);
	assert_int_equal(routes_wanted(&f.ns, &r, &n), 0);
	assert_int_equal(n, 3);                                   /* sorted; the unknown NIC's left out */
	route_is(&r[0], "2001:db8:100:1::", 64, "2001:db8:10::ff:fe00:110", "b00000a");
	route_is(&r[1], "2001:db8:100:2::", 64, "2001:db8:20::ff:fe00:111", "b00000b");
	route_is(&r[2], "2001:db8:100:200::", 56, "2001:db8:10::ff:fe00:10f", "b00000a");
	free(r);

	/* The VM of NIC 0x110 runs on another host now: its prefix is that
	 * host's to route (its snapshot has the NIC active), not this one's. */
	f.nics[1].active = false;
	assert_int_equal(routes_wanted(&f.ns, &r, &n), 0);
	assert_int_equal(n, 2);
	route_is(&r[0], "2001:db8:100:2::", 64, "2001:db8:20::ff:fe00:111", "b00000b");
	free(r);
	f.nics[1].active = true;
	for (int i = 0; i < 3; i++)
		f.nics[i].active = !f.nics[i].active;             /* the other host's view */
	assert_int_equal(routes_wanted(&f.ns, &r, &n), 0);
	assert_int_equal(n, 0);
	free(r);
}

static void public_addresses_need_an_uplink_and_ipv4(void **state)
{
	(void)state;
	struct fixture f;
	struct nat_map *m;
	size_t n;

	fx(&f);
	assert_int_equal(public4_wanted(&f.ns, &m, &n), 0);
	assert_int_equal(n, 2);                                    /* 0x111 has no IPv4 */
	assert_int_equal(m[0].pub, 0xc6336407u);
	assert_int_equal(m[0].priv, 0x0a0a0005u);
	assert_int_equal(m[1].pub, 0xc6336409u);
	assert_int_equal(m[1].priv, 0x0a0a0006u);
	free(m);
	/* Two NICs with one private address (overlapping subnets): the lower
	 * NIC ID keeps it, as in the firewall. */
	f.nics[1].ip4 = f.nics[0].ip4;
	assert_int_equal(public4_wanted(&f.ns, &m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].pub, 0xc6336407u);
	free(m);
	f.ns.uplink = NULL;
	assert_int_equal(public4_wanted(&f.ns, &m, &n), 0);
	assert_int_equal(n, 0);
	free(m);
}

static void stale_conntrack_entries(void **state)
{
	(void)state;
	struct pool4 pool;
	char *err = NULL;
	const struct nat_map map[] = { { 0xc6336407u, 0x0a0a0005u } };   /* .7 → 10.10.0.5 */
	const uint32_t up = 0xc0000202u;                                   /* upstream 192.0.2.2 */

	assert_int_equal(pool4_parse("198.51.100.0/28", &pool, &err), 0);
	/* In via .7 to 10.10.0.5 (DNAT: reply from the private address). */
	assert_false(conntrack_stale((uint32_t[]){ up, 0xc6336407u, 0x0a0a0005u, up }, &pool, map, 1));
	/* Out from 10.10.0.5 as .7 (SNAT: the reply goes to the public one). */
	assert_false(conntrack_stale((uint32_t[]){ 0x0a0a0005u, up, up, 0xc6336407u }, &pool, map, 1));
	/* .7 now maps to another VM: its old flows are stale. */
	assert_true(conntrack_stale((uint32_t[]){ up, 0xc6336407u, 0x0a0a0009u, up }, &pool, map, 1));
	/* Detached .8 (in the pool, mapped nowhere). */
	assert_true(conntrack_stale((uint32_t[]){ up, 0xc6336408u, 0x0a0a0006u, up }, &pool, map, 1));
	assert_true(conntrack_stale((uint32_t[]){ up, 0xc6336407u, 0x0a0a0005u, up }, &pool, NULL, 0));
	/* Not ours at all: the host's own flow, another VM's masqueraded one. */
	assert_false(conntrack_stale((uint32_t[]){ 0xc0000201u, up, up, 0xc0000201u }, &pool, map, 1));
	assert_false(conntrack_stale((uint32_t[]){ 0x0a0a0006u, up, up, 0xc0000201u }, &pool, map, 1));
	pool4_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prefixes_go_where_the_vm_runs),
		cmocka_unit_test(public_addresses_need_an_uplink_and_ipv4),
		cmocka_unit_test(stale_conntrack_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
