/*
 * test_vxlan — the overlay's pure parts (src/net/vxlan.h): the entries a
 * network's vxlan link must hold (its network only, the local address's
 * family only, sorted, one destination per unicast MAC), the diff between
 * those and what the kernel holds (add the missing, delete the extra, any
 * input order, duplicates and junk past an IPv4 address ignored), and the
 * overlay part of netstate_load (src/agent/netstate_load.h) on a real
 * SQLite store: peers are the other live hosts with an address that have
 * NICs (of VMs not deleted) on a network this host carries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/netstate_load.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "net/vxlan.h"
#include "store/store_internal.h" /* white-box: mark a host dead */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- entries ------------------------------------------------------------- */

static const uint8_t ZERO[6];

/* An entry for net to addr (an IPv4 or IPv6 literal) for the NIC nic_id,
 * or the flood entry when nic_id is 0. */
static struct ns_fdb entry(uint64_t net, uint64_t nic_id, const char *addr)
{
	struct ns_fdb e = { .net_id = net };

	if (nic_id != 0)
		nic_mac_bytes(nic_id, e.mac);
	e.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(e.family, addr, e.dst), 1);
	return e;
}

static bool same(const struct ns_fdb *a, const struct ns_fdb *b)
{
	return vxlan_fdb_cmp(a, b) == 0;
}

static void want_filters_sorts_and_dedups(void **state)
{
	(void)state;
	struct ns_fdb v[] = {
		entry(2, 0x111, "192.0.2.3"),
		entry(1, 0x110, "192.0.2.2"),
		entry(1, 0, "192.0.2.2"),
		entry(1, 0, "192.0.2.3"),
		entry(1, 0, "192.0.2.2"),         /* a duplicate */
		entry(1, 0x10f, "2001:db8::9"),   /* the other family */
		entry(1, 0x112, "192.0.2.9"),     /* one MAC, two hosts: */
		entry(1, 0x112, "192.0.2.4"),     /* the lower address stays */
	};
	struct netstate ns = { .fdb = v, .n_fdb = sizeof(v) / sizeof(v[0]) };
	struct ns_fdb *w;
	size_t n, skipped;

	assert_int_equal(vxlan_fdb_want(&ns, 1, AF_INET, &w, &n, &skipped), 0);
	assert_int_equal(skipped, 1);
	assert_int_equal(n, 4);
	struct ns_fdb expect[] = {
		entry(0, 0, "192.0.2.2"), entry(0, 0, "192.0.2.3"),
		entry(0, 0x110, "192.0.2.2"), entry(0, 0x112, "192.0.2.4"),
	};
	for (size_t i = 0; i < n; i++)
		assert_true(same(&w[i], &expect[i]));
	assert_memory_equal(w[0].mac, ZERO, 6);
	free(w);

	/* An IPv6 underlay sees only the IPv6 peer. */
	assert_int_equal(vxlan_fdb_want(&ns, 1, AF_INET6, &w, &n, &skipped), 0);
	assert_int_equal(n, 1);
	assert_int_equal(skipped, 6);
	free(w);

	/* No entries for the network: no link. */
	assert_int_equal(vxlan_fdb_want(&ns, 3, AF_INET, &w, &n, &skipped), 0);
	assert_int_equal(n, 0);
	assert_null(w);
	/* No underlay (family 0): everything is unusable. */
	assert_int_equal(vxlan_fdb_want(&ns, 1, 0, &w, &n, &skipped), 0);
	assert_int_equal(n, 0);
	assert_null(w);
	assert_int_equal(skipped, 7);
}

/* ---- the diff ------------------------------------------------------------ */

static void diff_from_nothing_adds_all(void **state)
{
	(void)state;
	struct ns_fdb want[] = { entry(0, 0x110, "192.0.2.2"), entry(0, 0, "192.0.2.2") };
	struct vxlan_fdb_diff d;

	assert_int_equal(vxlan_fdb_diff(want, 2, NULL, 0, &d), 0);
	assert_int_equal(d.n_add, 2);
	assert_int_equal(d.n_del, 0);
	assert_true(same(&d.add[0], &want[1]));   /* sorted: the flood entry first */
	assert_true(same(&d.add[1], &want[0]));
	vxlan_fdb_diff_free(&d);
}

static void diff_equal_is_empty_in_any_order(void **state)
{
	(void)state;
	struct ns_fdb want[] = { entry(0, 0, "192.0.2.2"), entry(0, 0, "192.0.2.3"),
				 entry(0, 0x110, "192.0.2.3") };
	/* As dumped: another order, a duplicate, bytes past the IPv4 address. */
	struct ns_fdb cur[] = { want[2], want[1], want[0], want[1] };
	struct vxlan_fdb_diff d;

	cur[0].dst[12] = 0xff;
	cur[0].net_id = 99;
	assert_int_equal(vxlan_fdb_diff(want, 3, cur, 4, &d), 0);
	assert_int_equal(d.n_add, 0);
	assert_int_equal(d.n_del, 0);
	vxlan_fdb_diff_free(&d);
}

static void diff_follows_moves_and_dead_peers(void **state)
{
	(void)state;
	/* The VM of NIC 0x110 moved from .2 to .3; host .4 died; a new NIC. */
	struct ns_fdb cur[] = { entry(0, 0, "192.0.2.2"), entry(0, 0, "192.0.2.3"),
				entry(0, 0, "192.0.2.4"), entry(0, 0x110, "192.0.2.2"),
				entry(0, 0x111, "192.0.2.4") };
	struct ns_fdb want[] = { entry(0, 0, "192.0.2.2"), entry(0, 0, "192.0.2.3"),
				 entry(0, 0x110, "192.0.2.3"), entry(0, 0x113, "192.0.2.2") };
	struct vxlan_fdb_diff d;

	assert_int_equal(vxlan_fdb_diff(want, 4, cur, 5, &d), 0);
	assert_int_equal(d.n_add, 2);
	assert_true(same(&d.add[0], &want[2]));
	assert_true(same(&d.add[1], &want[3]));
	assert_int_equal(d.n_del, 3);
	assert_true(same(&d.del[0], &cur[2]));
	assert_true(same(&d.del[1], &cur[3]));
	assert_true(same(&d.del[2], &cur[4]));
	vxlan_fdb_diff_free(&d);

	/* Nothing wanted any more: everything goes. */
	assert_int_equal(vxlan_fdb_diff(NULL, 0, cur, 5, &d), 0);
	assert_int_equal(d.n_add, 0);
	assert_int_equal(d.n_del, 5);
	vxlan_fdb_diff_free(&d);
}

/* ---- netstate_load: which networks, peers and MACs ------------------------ */

struct ctx {
	char dir[64];
	struct store *st;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char uri[128], *err = NULL;

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/hc-test-vxlan-XXXXXX");
	if (mkdtemp(c->dir) == NULL) {
		free(c);
		return -1;
	}
	snprintf(uri, sizeof(uri), "sqlite:%s/t.db", c->dir);
	if ((c->st = store_open(uri, c->dir, &err)) == NULL) {
		fprintf(stderr, "store_open: %s\n", err ? err : "?");
		free(err);
		dir_remove_tree(c->dir);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	store_close(c->st);
	if (dir_remove_tree(c->dir) < 0)
		return -1;
	free(c);
	return 0;
}

static void add_host(struct store *st, const char *name, const char *address)
{
	struct host h = { .name = (char *)name, .address = (char *)address, .cpus = 4,
			  .memory_mib = 4096, .accel = "tcg" };
	assert_int_equal(store_host_register(st, &h), STORE_OK);
}

static uint64_t add_net(struct store *st, const char *name, const char *v6)
{
	struct network n = { .name = (char *)name, .owner = OWNER_ROOT, .ipv6 = (char *)v6 };
	assert_int_equal(store_network_create(st, &n), STORE_OK);
	return n.id;
}

/* A VM placed on host with a NIC on each of nets; its NIC IDs in nics[]. */
static uint64_t add_vm(struct store *st, const char *name, const char *host, uint64_t image,
		       const uint64_t *nets, size_t n_nets, uint64_t *nics)
{
	struct vm vm = { .name = (char *)name, .owner = OWNER_ROOT, .image = image, .cpus = 1,
			 .memory_mib = 128, .desired = "running", .state = "stopped",
			 .host = (char *)host };
	struct vm got = { 0 };

	assert_int_equal(store_vm_create(st, &vm, nets, n_nets), STORE_OK);
	assert_int_equal(store_vm_get_id(st, vm.id, &got), STORE_OK);
	assert_int_equal(got.n_nics, n_nets);
	for (size_t i = 0; i < n_nets; i++)
		nics[i] = got.nics[i].id;
	vm_free(&got);
	return vm.id;
}

static void assert_fdb(const struct netstate *ns, const struct ns_fdb *want, size_t n)
{
	if (ns->n_fdb != n)
		fail_msg("%zu overlay entries, expected %zu", ns->n_fdb, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ns->fdb[i].net_id, want[i].net_id);
		assert_true(same(&ns->fdb[i], &want[i]));
	}
}

static void load_peers_and_remote_macs(void **state)
{
	struct ctx *c = *state;
	struct image im = { .name = "img", .owner = OWNER_ROOT, .format = "kernel",
			    .boot = "kernel", .cmdline = "console=ttyS0" };
	uint64_t n1, n2, n3, nic[2], local[2], far, gone, dead_nic, anon_nic, stopped, v6nic;
	struct netstate ns;

	assert_int_equal(store_image_create(c->st, &im), STORE_OK);
	add_host(c->st, "h1", "192.0.2.1");       /* this host */
	add_host(c->st, "h2", "192.0.2.2");
	add_host(c->st, "h3", "2001:db8::3");
	add_host(c->st, "h4", "192.0.2.4");       /* dead, below */
	add_host(c->st, "h5", NULL);              /* no underlay */
	assert_int_equal(store_w(c->st, "UPDATE hosts SET state = 'dead' WHERE name = 'h4'", NULL,
				 0), STORE_OK);
	n1 = add_net(c->st, "one", "2001:db8:1::/64");
	n2 = add_net(c->st, "two", "2001:db8:2::/64");
	n3 = add_net(c->st, "three", "2001:db8:3::/64");

	/* Nothing here yet: this host carries no network, no overlay. */
	nic[0] = n1;
	add_vm(c->st, "far", "h2", im.id, nic, 1, &far);
	assert_int_equal(netstate_load(c->st, "h1", NULL, &ns), STORE_OK);
	assert_int_equal(ns.n_fdb, 0);
	netstate_free(&ns);

	uint64_t both[] = { n1, n2 };
	add_vm(c->st, "here", "h1", im.id, both, 2, local);
	uint64_t only3[] = { n3 };
	add_vm(c->st, "elsewhere", "h2", im.id, only3, 1, nic);         /* n3: not carried here */
	uint64_t vm_gone = add_vm(c->st, "gone", "h2", im.id, &n2, 1, &gone);
	assert_int_equal(store_vm_set_desired(c->st, vm_gone, "deleted"), STORE_OK);
	add_vm(c->st, "on-dead", "h4", im.id, &n1, 1, &dead_nic);
	add_vm(c->st, "no-underlay", "h5", im.id, &n1, 1, &anon_nic);
	uint64_t vm_stopped = add_vm(c->st, "stopped", "h2", im.id, &n1, 1, &stopped);
	assert_int_equal(store_vm_set_desired(c->st, vm_stopped, "stopped"), STORE_OK);
	add_vm(c->st, "v6", "h3", im.id, &n2, 1, &v6nic);

	assert_int_equal(netstate_load(c->st, "h1", NULL, &ns), STORE_OK);
	struct ns_fdb want[] = {
		entry(n1, 0, "192.0.2.2"),
		entry(n1, far, "192.0.2.2"),
		entry(n1, stopped, "192.0.2.2"),          /* stopped, not deleted: kept */
		entry(n2, 0, "2001:db8::3"),
		entry(n2, v6nic, "2001:db8::3"),
	};
	assert_fdb(&ns, want, sizeof(want) / sizeof(want[0]));
	/* The local NICs are not in the overlay (the bridge has them). */
	for (size_t i = 0; i < ns.n_fdb; i++) {
		uint8_t mac[6];
		nic_mac_bytes(local[0], mac);
		assert_memory_not_equal(ns.fdb[i].mac, mac, 6);
	}
	netstate_free(&ns);

	/* Seen from h2: h1 is its peer on n1 (and n2 only through h1). */
	assert_int_equal(netstate_load(c->st, "h2", NULL, &ns), STORE_OK);
	struct ns_fdb from_h2[] = {
		entry(n1, 0, "192.0.2.1"),
		entry(n1, local[0], "192.0.2.1"),
	};
	assert_fdb(&ns, from_h2, sizeof(from_h2) / sizeof(from_h2[0]));
	netstate_free(&ns);

	/* No host name: no overlay. */
	assert_int_equal(netstate_load(c->st, NULL, NULL, &ns), STORE_OK);
	assert_int_equal(ns.n_fdb, 0);
	netstate_free(&ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(want_filters_sorts_and_dedups),
		cmocka_unit_test(diff_from_nothing_adds_all),
		cmocka_unit_test(diff_equal_is_empty_in_any_order),
		cmocka_unit_test(diff_follows_moves_and_dead_peers),
		cmocka_unit_test_setup_teardown(load_peers_and_remote_macs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
