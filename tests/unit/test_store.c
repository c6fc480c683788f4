/*
 * test_store — the store (src/store/store.h, DESIGN §1, §4) on real
 * databases: migrations and re-open, images, networks, VMs and NICs
 * (counter IDs, IPv4 allocation and reuse after purge), soft delete,
 * conflicts, owner scope, counter and address pool exhaustion, atomicity of
 * failed creates, the change hook, SSH keys with the keys and user data of
 * VMs, images imported from a URL (state, source, checksum, failure), the
 * root disk size and data disks of VMs, and what the engines must agree on (value types, placeholders,
 * constraint errors).
 *
 * Every test runs on SQLite (a file in a fresh temporary directory) and,
 * when HC_TEST_PG names a PostgreSQL database (tests/pg.sh starts one), on
 * that database emptied before each test.  PostgreSQL alone: several
 * processes migrating and writing at once, the connection surviving a
 * server restart (HC_TEST_PG_RESTART, a command that restarts it), and
 * announcements between two handles (LISTEN/NOTIFY): only committed
 * changes of intent, heard at once, after a restart too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/addrpool.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/netpool.h"
#include "store/store.h"
#include "store/store_internal.h" /* white-box: raw counts and counters */

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHA_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The PostgreSQL database of the current group; NULL: SQLite. */
static const char *pg_uri;

struct ctx {
	char dir[64];
	char uri[512];
	struct store *st;
	int hooks;
};

static void on_change(void *arg)
{
	((struct ctx *)arg)->hooks++;
}

/* An empty database for the next test: the schema goes with all it holds. */
static int pg_reset(const char *uri)
{
	char *err = NULL;
	void *h = store_engine_pg.open(uri, &err);
	int rc = h ? STORE_OK : STORE_ERR;

	if (rc == STORE_OK)
		rc = store_engine_pg.exec(h, "DROP SCHEMA public CASCADE", NULL, 0, NULL, NULL, &err);
	if (rc == STORE_OK)
		rc = store_engine_pg.exec(h, "CREATE SCHEMA public", NULL, 0, NULL, NULL, &err);
	if (rc != STORE_OK)
		fprintf(stderr, "pg_reset: %s\n", err ? err : "?");
	free(err);
	if (h)
		store_engine_pg.close(h);
	return rc == STORE_OK ? 0 : -1;
}

/* A fresh temporary dir and an empty database, not opened yet. */
static int setup_empty(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	*state = c;
	snprintf(c->dir, sizeof(c->dir), "/tmp/hc-test-store-XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	if (pg_uri == NULL) {
		snprintf(c->uri, sizeof(c->uri), "sqlite:%s/t.db", c->dir);
		return 0;
	}
	if (strlen(pg_uri) >= sizeof(c->uri))
		return -1;
	snprintf(c->uri, sizeof(c->uri), "%s", pg_uri);
	return pg_reset(c->uri);
}

static int setup(void **state)
{
	struct ctx *c;
	char *err = NULL;

	if (setup_empty(state) != 0)
		return -1;
	c = *state;
	c->st = store_open(c->uri, c->dir, &err);
	if (c->st == NULL) {
		fprintf(stderr, "store_open: %s\n", err ? err : "?");
		free(err);
		return -1;
	}
	store_set_change_hook(c->st, on_change, c);
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

/* ---- helpers ------------------------------------------------------------ */

static int64_t count_rows(struct store *st, const char *sql)
{
	int64_t n = -1;
	assert_int_equal(store_q(st, sql, NULL, 0, store_row_int, &n), STORE_OK);
	return n;
}

static uint64_t make_image(struct store *st, const char *name)
{
	struct image im = { .name = (char *)name, .owner = OWNER_ROOT, .format = "kernel",
			    .boot = "kernel", .cmdline = "console=ttyS0", .has_initrd = true };
	assert_int_equal(store_image_create(st, &im), STORE_OK);
	assert_int_equal(store_image_finalize(st, im.id, SHA_A, "kernel", 4096), STORE_OK);
	return im.id;
}

static uint64_t make_net(struct store *st, const char *name, const char *v6, const char *v4)
{
	struct network n = { .name = (char *)name, .owner = OWNER_ROOT,
			     .ipv6 = (char *)v6, .ipv4 = (char *)v4 };
	assert_int_equal(store_network_create(st, &n), STORE_OK);
	return n.id;
}

static int make_vm(struct store *st, const char *name, uint64_t owner, uint64_t image,
		   const uint64_t *nets, size_t n_nets, uint64_t *id)
{
	struct vm vm = { .name = (char *)name, .owner = owner, .image = image, .cpus = 1,
			 .memory_mib = 128, .desired = "running", .state = "stopped" };
	int rc = store_vm_create(st, &vm, nets, n_nets);
	if (id)
		*id = vm.id;
	return rc;
}

/* The IPv4 of the VM's first NIC, copied; NULL when none. */
static char *first_ipv4(struct store *st, uint64_t vm_id)
{
	struct vm vm = { 0 };
	char *r = NULL;

	assert_int_equal(store_vm_get_id(st, vm_id, &vm), STORE_OK);
	assert_true(vm.n_nics >= 1);
	if (vm.nics[0].ipv4)
		r = strdup(vm.nics[0].ipv4);
	vm_free(&vm);
	return r;
}

/* ---- open and migrations ------------------------------------------------ */

static void open_migrates(void **state)
{
	struct ctx *c = *state;
	char *name = NULL;
	int v = store_schema_version(c->st);

	assert_true(v >= 1);
	/* One schema_version row per migration step. */
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM schema_version"), v);
	/* The root user exists from the first migration. */
	assert_int_equal(store_user_name(c->st, OWNER_ROOT, &name), STORE_OK);
	assert_string_equal(name, "root");
	free(name);
	assert_int_equal(store_user_name(c->st, 42, &name), STORE_NOTFOUND);
	/* Opening does not fire the hook. */
	assert_int_equal(c->hooks, 0);
}

static void reopen_is_idempotent(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	int v = store_schema_version(c->st);
	uint64_t img = make_image(c->st, "kept");

	store_close(c->st);
	c->st = store_open(c->uri, c->dir, &err);
	assert_non_null(c->st);
	assert_null(err);
	assert_int_equal(store_schema_version(c->st), v);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM schema_version"), v);

	/* Data and counters survive: the counters were not re-seeded. */
	struct image im = { 0 };
	assert_int_equal(store_image_get(c->st, "kept", OWNER_ANY, &im), STORE_OK);
	assert_int_equal(im.id, img);
	image_free(&im);
	assert_int_equal(make_image(c->st, "second"), img + 1);

	/* A third open of the same file while the second is still open. */
	struct store *st2 = store_open(c->uri, c->dir, &err);
	assert_non_null(st2);
	assert_int_equal(store_schema_version(st2), v);
	store_close(st2);
}

static void open_rejects_bad_uri(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	char path[160];

	assert_null(store_open("mysql://x", c->dir, &err));
	assert_non_null(err);
	free(err);
	err = NULL;
	/* Nothing listens on port 1: refused at once, with the reason. */
	assert_null(store_open("postgresql://127.0.0.1:1/hc", c->dir, &err));
	assert_non_null(strstr(err, "postgresql"));
	free(err);
	err = NULL;
	assert_null(store_open("postgres://127.0.0.1:1/hc", c->dir, &err));
	assert_non_null(err);
	free(err);
	err = NULL;
	snprintf(path, sizeof(path), "sqlite:%s/no/such/dir/t.db", c->dir);
	assert_null(store_open(path, c->dir, &err));
	assert_non_null(err);
	free(err);
}

static void open_default_path_in_state_dir(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	char path[128];
	FILE *f;

	struct store *st = store_open("sqlite", c->dir, &err);
	assert_non_null(st);
	store_close(st);
	snprintf(path, sizeof(path), "%s/hackcloud.db", c->dir);
	f = fopen(path, "r");
	assert_non_null(f);
	fclose(f);
}

/* ---- images ------------------------------------------------------------- */

static void image_lifecycle(void **state)
{
	struct ctx *c = *state;
	struct image im = { .name = "tiny", .owner = OWNER_ROOT, .format = "kernel",
			    .boot = "kernel", .cmdline = "console=ttyS0 quiet", .has_initrd = true };
	struct image got = { 0 };
	char ref[9];

	assert_int_equal(store_image_create(c->st, &im), STORE_OK);
	assert_int_equal(im.id, 1);
	assert_true(im.created > 0);

	assert_int_equal(store_image_get_id(c->st, im.id, &got), STORE_OK);
	assert_string_equal(got.state, "uploading");
	assert_null(got.sha256);
	image_free(&got);

	assert_int_equal(store_image_finalize(c->st, im.id, SHA_A, "kernel", 123456), STORE_OK);

	/* by name */
	assert_int_equal(store_image_get(c->st, "tiny", OWNER_ANY, &got), STORE_OK);
	assert_int_equal(got.id, im.id);
	assert_string_equal(got.name, "tiny");
	assert_string_equal(got.state, "ready");
	assert_string_equal(got.sha256, SHA_A);
	assert_string_equal(got.format, "kernel");
	assert_string_equal(got.boot, "kernel");
	assert_string_equal(got.cmdline, "console=ttyS0 quiet");
	assert_true(got.has_initrd);
	assert_int_equal(got.size, 123456);
	assert_int_equal(got.owner, OWNER_ROOT);
	assert_string_equal(got.owner_name, "root");
	image_free(&got);

	/* by 8-hex id, in the owner's scope */
	snprintf(ref, sizeof(ref), "%08llx", (unsigned long long)im.id);
	assert_string_equal(ref, "00000001");
	assert_int_equal(store_image_get(c->st, ref, OWNER_ROOT, &got), STORE_OK);
	assert_int_equal(got.id, im.id);
	assert_string_equal(got.name, "tiny");
	image_free(&got);

	/* not found: unknown name, unknown id, another owner's scope */
	assert_int_equal(store_image_get(c->st, "nope", OWNER_ANY, &got), STORE_NOTFOUND);
	assert_int_equal(store_image_get(c->st, "000000ff", OWNER_ANY, &got), STORE_NOTFOUND);
	assert_int_equal(store_image_get(c->st, "tiny", 42, &got), STORE_NOTFOUND);
	assert_int_equal(store_image_get(c->st, ref, 42, &got), STORE_NOTFOUND);
	assert_int_equal(store_image_get_id(c->st, 99, &got), STORE_NOTFOUND);

	/* duplicate name, same owner */
	struct image dup = { .name = "tiny", .owner = OWNER_ROOT, .format = "raw", .boot = "disk" };
	assert_int_equal(store_image_create(c->st, &dup), STORE_CONFLICT);

	/* list and sha refs */
	struct image *list = NULL;
	size_t n = 0;
	uint64_t other = make_image(c->st, "other");   /* same SHA_A */
	assert_int_equal(store_image_list(c->st, OWNER_ANY, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "tiny");
	assert_string_equal(list[1].name, "other");
	images_free(list, n);
	assert_int_equal(store_image_list(c->st, 42, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	images_free(list, n);

	int refs = -1;
	assert_int_equal(store_image_sha_refs(c->st, SHA_A, im.id, &refs), STORE_OK);
	assert_int_equal(refs, 1);
	assert_int_equal(store_image_sha_refs(c->st, SHA_A, 0, &refs), STORE_OK);
	assert_int_equal(refs, 2);

	/* delete an unused image */
	assert_int_equal(store_image_delete(c->st, other), STORE_OK);
	assert_int_equal(store_image_get_id(c->st, other, &got), STORE_NOTFOUND);
	assert_int_equal(store_image_sha_refs(c->st, SHA_A, im.id, &refs), STORE_OK);
	assert_int_equal(refs, 0);
}

static void image_delete_in_use_conflicts(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t vm;
	struct image got = { 0 };

	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &vm), STORE_OK);
	int hooks = c->hooks;
	assert_int_equal(store_image_delete(c->st, img), STORE_CONFLICT);
	assert_int_equal(c->hooks, hooks);            /* nothing committed */
	assert_int_equal(store_image_get_id(c->st, img, &got), STORE_OK);
	assert_string_equal(got.state, "ready");
	assert_string_equal(got.sha256, SHA_A);
	image_free(&got);

	/* A VM marked deleted still holds its image until it is purged. */
	assert_int_equal(store_vm_set_desired(c->st, vm, "deleted"), STORE_OK);
	assert_int_equal(store_image_delete(c->st, img), STORE_CONFLICT);
	assert_int_equal(store_vm_purge(c->st, vm), STORE_OK);
	assert_int_equal(store_image_delete(c->st, img), STORE_OK);
	assert_int_equal(store_image_get_id(c->st, img, &got), STORE_NOTFOUND);
}

/* ---- networks ----------------------------------------------------------- */

static void network_lifecycle(void **state)
{
	struct ctx *c = *state;
	struct network got = { 0 };
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t v6 = make_net(c->st, "v6only", "fd00:1:2:3::/64", NULL);

	assert_int_equal(lan, 1);
	assert_int_equal(v6, 2);

	assert_int_equal(store_network_get(c->st, "lan", OWNER_ANY, &got), STORE_OK);
	assert_int_equal(got.id, lan);
	assert_string_equal(got.ipv6, "2001:db8:10::/64");
	assert_string_equal(got.ipv4, "10.0.0.0/24");
	assert_string_equal(got.owner_name, "root");
	assert_true(got.created > 0);
	network_free(&got);

	assert_int_equal(store_network_get(c->st, net_id_format(v6).s, OWNER_ROOT, &got), STORE_OK);
	assert_string_equal(got.name, "v6only");
	assert_null(got.ipv4);
	network_free(&got);

	assert_int_equal(store_network_get(c->st, "lan", 42, &got), STORE_NOTFOUND);
	assert_int_equal(store_network_get(c->st, "000001", 42, &got), STORE_NOTFOUND);
	assert_int_equal(store_network_get(c->st, "wan", OWNER_ANY, &got), STORE_NOTFOUND);

	struct network dup = { .name = "lan", .owner = OWNER_ROOT, .ipv6 = "2001:db8:11::/64" };
	assert_int_equal(store_network_create(c->st, &dup), STORE_CONFLICT);

	struct network *list = NULL;
	size_t n = 0;
	assert_int_equal(store_network_list(c->st, OWNER_ANY, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "lan");
	assert_string_equal(list[1].name, "v6only");
	networks_free(list, n);
	assert_int_equal(store_network_list(c->st, 42, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	networks_free(list, n);
}

static void network_delete_in_use_conflicts(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t spare = make_net(c->st, "spare", "2001:db8:11::/64", NULL);
	uint64_t vm;
	struct network got = { 0 };

	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, &lan, 1, &vm), STORE_OK);
	assert_int_equal(store_network_delete(c->st, lan), STORE_CONFLICT);
	assert_int_equal(store_network_get(c->st, "lan", OWNER_ANY, &got), STORE_OK);
	network_free(&got);

	assert_int_equal(store_network_delete(c->st, spare), STORE_OK);
	assert_int_equal(store_network_get(c->st, "spare", OWNER_ANY, &got), STORE_NOTFOUND);

	assert_int_equal(store_vm_purge(c->st, vm), STORE_OK);
	assert_int_equal(store_network_delete(c->st, lan), STORE_OK);
	assert_int_equal(store_network_get(c->st, "lan", OWNER_ANY, &got), STORE_NOTFOUND);
}

/* ---- VMs and NICs ------------------------------------------------------- */

static void vm_create_ids_and_nics(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t v6 = make_net(c->st, "v6only", "fd00:1:2:3::/64", NULL);
	uint64_t nets[2] = { lan, v6 };
	uint64_t id1, id2;
	struct vm vm = { 0 };

	assert_int_equal(make_vm(c->st, "web-1", OWNER_ROOT, img, nets, 2, &id1), STORE_OK);
	assert_int_equal(id1, 1);
	assert_int_equal(make_vm(c->st, "web-2", OWNER_ROOT, img, &lan, 1, &id2), STORE_OK);
	assert_int_equal(id2, 2);

	/* by name */
	assert_int_equal(store_vm_get(c->st, "web-1", OWNER_ANY, &vm), STORE_OK);
	assert_int_equal(vm.id, id1);
	assert_string_equal(vm.name, "web-1");
	assert_string_equal(vm.owner_name, "root");
	assert_int_equal(vm.image, img);
	assert_string_equal(vm.image_name, "tiny");
	assert_int_equal(vm.cpus, 1);
	assert_int_equal(vm.memory_mib, 128);
	assert_string_equal(vm.desired, "running");
	assert_string_equal(vm.state, "stopped");
	assert_true(vm.created > 0);
	assert_int_equal(vm.n_nics, 2);
	/* NICs in creation order, distinct IDs, network data joined in. */
	assert_int_equal(vm.nics[0].network, lan);
	assert_string_equal(vm.nics[0].network_name, "lan");
	assert_string_equal(vm.nics[0].network_ipv6, "2001:db8:10::/64");
	assert_string_equal(vm.nics[0].ipv4, "10.0.0.2");       /* .1 is the gateway */
	assert_int_equal(vm.nics[1].network, v6);
	assert_string_equal(vm.nics[1].network_name, "v6only");
	assert_null(vm.nics[1].ipv4);                           /* IPv6-only network */
	assert_int_not_equal(vm.nics[0].id, vm.nics[1].id);
	uint64_t nic_a = vm.nics[0].id, nic_b = vm.nics[1].id;
	vm_free(&vm);

	/* by 10-hex id */
	assert_int_equal(store_vm_get(c->st, "0000000002", OWNER_ROOT, &vm), STORE_OK);
	assert_string_equal(vm.name, "web-2");
	assert_int_equal(vm.n_nics, 1);
	assert_string_equal(vm.nics[0].ipv4, "10.0.0.3");
	assert_int_not_equal(vm.nics[0].id, nic_a);
	assert_int_not_equal(vm.nics[0].id, nic_b);
	vm_free(&vm);

	/* scope */
	assert_int_equal(store_vm_get(c->st, "web-1", 42, &vm), STORE_NOTFOUND);
	assert_int_equal(store_vm_get(c->st, "0000000001", 42, &vm), STORE_NOTFOUND);
	assert_int_equal(store_vm_get(c->st, "web-9", OWNER_ANY, &vm), STORE_NOTFOUND);

	struct vm *list = NULL;
	size_t n = 0;
	assert_int_equal(store_vm_list(c->st, OWNER_ANY, false, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, id1);
	assert_int_equal(list[1].id, id2);
	assert_int_equal(list[0].n_nics, 2);
	vms_free(list, n);
	assert_int_equal(store_vm_list(c->st, 42, true, &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	vms_free(list, n);
}

/* The PCI slot of each of the VM's NICs, in the store's order. */
static size_t nic_slots(struct store *st, uint64_t vm_id, int *slots, size_t max)
{
	struct vm vm = { 0 };
	size_t n = 0;

	assert_int_equal(store_vm_get_id(st, vm_id, &vm), STORE_OK);
	for (; n < vm.n_nics && n < max; n++)
		slots[n] = vm.nics[n].pci_slot;
	vm_free(&vm);
	return n;
}

/* The VM has n NICs, in slots 16, 17, … in the store's order. */
static void assert_slots_in_order(struct store *st, uint64_t vm_id, size_t n)
{
	int slots[NIC_PCI_SLOTS + 1];

	assert_int_equal(nic_slots(st, vm_id, slots, NIC_PCI_SLOTS + 1), n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(slots[i], 16 + (int)i);
}

/* Every NIC has a PCI slot of its own in the VM, from 0x10 up, so that
 * a QEMU built from the store has the running one's layout: made in
 * order at create, the lowest free at a hot-plug (a removed NIC's). */
static void nic_pci_slots(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t v6 = make_net(c->st, "v6only", "fd00:1:2:3::/64", NULL);
	uint64_t nets[3] = { lan, v6, lan }, a, b, nic;
	int slots[NIC_PCI_SLOTS + 1];
	struct vm vm = { 0 };

	assert_int_equal(NIC_PCI_SLOT_FIRST, 16);
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, nets, 3, &a), STORE_OK);
	assert_int_equal(make_vm(c->st, "b", OWNER_ROOT, img, &lan, 1, &b), STORE_OK);
	assert_slots_in_order(c->st, a, 3);
	/* Per VM: b's first NIC is at 16 too. */
	assert_slots_in_order(c->st, b, 1);

	/* A hot-plug takes the next; after a removal, the slot it left. */
	assert_int_equal(store_nic_add(c->st, a, v6, NULL, &nic), STORE_OK);
	assert_int_equal(nic_slots(c->st, a, slots, 4), 4);
	assert_int_equal(slots[3], 19);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	uint64_t second = vm.nics[1].id;
	vm_free(&vm);
	assert_int_equal(store_nic_remove(c->st, a, second), STORE_OK);
	assert_int_equal(store_nic_add(c->st, a, lan, NULL, &nic), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	assert_int_equal(vm.n_nics, 4);
	/* The new NIC is last in the guest's order, in the freed slot. */
	assert_int_equal(vm.nics[3].id, nic);
	assert_int_equal(vm.nics[3].pci_slot, 17);
	vm_free(&vm);

	/* All 16 taken: the store refuses a 17th (the API stops at 16). */
	for (int i = 4; i < NIC_PCI_SLOTS; i++)
		assert_int_equal(store_nic_add(c->st, a, v6, NULL, &nic), STORE_OK);
	assert_int_equal(nic_slots(c->st, a, slots, NIC_PCI_SLOTS + 1), NIC_PCI_SLOTS);
	for (int i = 0; i < NIC_PCI_SLOTS; i++)
		for (int k = 0; k < i; k++)
			assert_int_not_equal(slots[i], slots[k]);
	assert_int_equal(store_nic_add(c->st, a, v6, NULL, &nic), STORE_FULL);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM nics WHERE pci_slot < 16"
				    " OR pci_slot > 31"), 0);
}

/* The migration that brought pci_slot gives NICs made before it 16, 17,
 * … per VM in NIC-id order: rolled back over rows of the old shape, then
 * run again. */
static void nic_pci_slot_backfill(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t nets[2] = { lan, lan }, a, b, nic;
	int step = 0;

	for (int v = 1; store_schema_sql(v); v++)
		if (strstr(store_schema_sql(v), "ADD COLUMN pci_slot"))
			step = v;
	assert_int_not_equal(step, 0);
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, nets, 2, &a), STORE_OK);
	assert_int_equal(make_vm(c->st, "b", OWNER_ROOT, img, &lan, 1, &b), STORE_OK);
	/* a's third NIC comes after b's, by ID. */
	assert_int_equal(store_nic_add(c->st, a, lan, NULL, &nic), STORE_OK);

	assert_int_equal(store_tx_begin(c->st), STORE_OK);
	assert_int_equal(store_q(c->st, "DROP INDEX nics_vm_pci_slot", NULL, 0, NULL, NULL),
			 STORE_OK);
	assert_int_equal(store_q(c->st, "ALTER TABLE nics DROP COLUMN pci_slot", NULL, 0, NULL,
				 NULL), STORE_OK);
	assert_int_equal(store_q(c->st, "ALTER TABLE vms DROP COLUMN run_nic_slots", NULL, 0, NULL,
				 NULL), STORE_OK);
	assert_int_equal(store_schema_step(c->st, step), STORE_OK);
	assert_int_equal(store_tx_end(c->st, STORE_OK), STORE_OK);

	assert_slots_in_order(c->st, a, 3);
	assert_slots_in_order(c->st, b, 1);
	/* Their QEMUs, if running, were started without slots. */
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms WHERE run_nic_slots <> 0"), 0);
	/* And the index is back: no two NICs of a VM share a slot. */
	struct sval p[] = { SV_I(a) };
	assert_int_not_equal(store_w(c->st, "UPDATE nics SET pci_slot = 16 WHERE vm = ?", p, 1),
			     STORE_OK);
}

static void vm_duplicate_name_conflicts(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t id;

	assert_int_equal(make_vm(c->st, "web", OWNER_ROOT, img, &lan, 1, &id), STORE_OK);
	int hooks = c->hooks;
	assert_int_equal(make_vm(c->st, "web", OWNER_ROOT, img, &lan, 1, NULL), STORE_CONFLICT);
	assert_int_equal(c->hooks, hooks);
	/* The failed create left nothing behind: one VM, one NIC. */
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), 1);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM nics"), 1);
	/* And the next address is still .3 (no address leaked to the failure). */
	assert_int_equal(make_vm(c->st, "web2", OWNER_ROOT, img, &lan, 1, &id), STORE_OK);
	char *ip = first_ipv4(c->st, id);
	assert_string_equal(ip, "10.0.0.3");
	free(ip);
}

static void vm_create_is_atomic(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t nets[2] = { lan, 0x99 /* no such network */ };
	struct vm vm = { 0 };

	int hooks = c->hooks;
	assert_int_not_equal(make_vm(c->st, "ghost", OWNER_ROOT, img, nets, 2, NULL), STORE_OK);
	assert_int_equal(c->hooks, hooks);
	assert_int_equal(store_vm_get(c->st, "ghost", OWNER_ANY, &vm), STORE_NOTFOUND);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), 0);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM nics"), 0);

	/* A VM on a missing image is refused by the foreign key. */
	assert_int_not_equal(make_vm(c->st, "noimg", OWNER_ROOT, 0x77, &lan, 1, NULL), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), 0);
}

static void vm_soft_delete_and_purge(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t a, b, a2, d;
	struct vm vm = { 0 };
	struct vm *list = NULL;
	size_t n = 0;
	char *ip;

	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, &lan, 1, &a), STORE_OK);
	assert_int_equal(make_vm(c->st, "b", OWNER_ROOT, img, &lan, 1, &b), STORE_OK);

	assert_int_equal(store_vm_set_desired(c->st, a, "deleted"), STORE_OK);
	/* invisible to get (by name and by id) and to list */
	assert_int_equal(store_vm_get(c->st, "a", OWNER_ANY, &vm), STORE_NOTFOUND);
	assert_int_equal(store_vm_get(c->st, vm_id_format(a).s, OWNER_ANY, &vm), STORE_NOTFOUND);
	assert_int_equal(store_vm_list(c->st, OWNER_ANY, false, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, b);
	vms_free(list, n);
	/* ...but the agent still sees it */
	assert_int_equal(store_vm_list(c->st, OWNER_ANY, true, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, a);
	assert_string_equal(list[0].desired, "deleted");
	vms_free(list, n);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	assert_string_equal(vm.desired, "deleted");
	vm_free(&vm);

	/* The name is free at once; the deleted VM keeps its address until purged. */
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, &lan, 1, &a2), STORE_OK);
	assert_int_equal(a2, 3);
	ip = first_ipv4(c->st, a2);
	assert_string_equal(ip, "10.0.0.4");
	free(ip);
	assert_int_equal(store_vm_get(c->st, "a", OWNER_ANY, &vm), STORE_OK);
	assert_int_equal(vm.id, a2);
	vm_free(&vm);

	/* Purge removes the row and its NICs; the address is reused, the ID never. */
	assert_int_equal(count_rows(c->st, "SELECT id FROM nics WHERE vm = 1"), 1);
	assert_int_equal(store_vm_purge(c->st, a), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_NOTFOUND);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM nics WHERE vm = 1"), 0);
	assert_int_equal(make_vm(c->st, "d", OWNER_ROOT, img, &lan, 1, &d), STORE_OK);
	assert_int_equal(d, 4);
	ip = first_ipv4(c->st, d);
	assert_string_equal(ip, "10.0.0.2");
	free(ip);
	/* NIC IDs are never reused either: d's NIC is not a's old NIC 1. */
	assert_int_equal(count_rows(c->st, "SELECT id FROM nics WHERE vm = 4"), 4);

	/* Purging every VM and creating again still continues the counter. */
	assert_int_equal(store_vm_purge(c->st, b), STORE_OK);
	assert_int_equal(store_vm_purge(c->st, a2), STORE_OK);
	assert_int_equal(store_vm_purge(c->st, d), STORE_OK);
	assert_int_equal(make_vm(c->st, "e", OWNER_ROOT, img, &lan, 1, &d), STORE_OK);
	assert_int_equal(d, 5);
}

static void vm_set_state(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t id;
	struct vm vm = { 0 };

	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &id), STORE_OK);
	assert_int_equal(store_vm_set_state(c->st, id, "error", "qemu exited 1"), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, id, &vm), STORE_OK);
	assert_string_equal(vm.state, "error");
	assert_string_equal(vm.error, "qemu exited 1");
	assert_string_equal(vm.desired, "running");
	assert_int_equal(vm.n_nics, 0);
	vm_free(&vm);

	/* A new intent clears the error. */
	assert_int_equal(store_vm_set_desired(c->st, id, "stopped"), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, id, &vm), STORE_OK);
	assert_string_equal(vm.desired, "stopped");
	assert_null(vm.error);
	vm_free(&vm);
}

/* ---- exhaustion --------------------------------------------------------- */

static void ipv4_pool_exhaustion(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	/* A /30 has exactly one address for VMs: .0 net, .1 gateway, .3 broadcast. */
	uint64_t tiny = make_net(c->st, "tiny", "2001:db8:10::/64", "10.9.9.4/30");
	uint64_t id;
	char *ip;

	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, &tiny, 1, &id), STORE_OK);
	ip = first_ipv4(c->st, id);
	assert_string_equal(ip, "10.9.9.6");
	free(ip);
	assert_int_equal(make_vm(c->st, "b", OWNER_ROOT, img, &tiny, 1, NULL), STORE_FULL);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), 1);
	/* After a purge the address is available again. */
	assert_int_equal(store_vm_purge(c->st, id), STORE_OK);
	assert_int_equal(make_vm(c->st, "b", OWNER_ROOT, img, &tiny, 1, &id), STORE_OK);
	ip = first_ipv4(c->st, id);
	assert_string_equal(ip, "10.9.9.6");
	free(ip);
}

static void counter_exhaustion(void **state)
{
	struct ctx *c = *state;
	struct network n = { .name = "last", .owner = OWNER_ROOT, .ipv6 = "2001:db8:10::/64" };
	struct network got = { 0 };

	/* Jump the network counter to its last value (the 24-bit VNI space). */
	assert_int_equal(store_q(c->st, "UPDATE counters SET next = ? WHERE name = 'network'",
				 &SV_I(NET_ID_MAX), 1, NULL, NULL), STORE_OK);
	assert_int_equal(store_network_create(c->st, &n), STORE_OK);
	assert_int_equal(n.id, NET_ID_MAX);
	assert_int_equal(store_network_get(c->st, "ffffff", OWNER_ANY, &got), STORE_OK);
	assert_string_equal(got.name, "last");
	network_free(&got);

	struct network over = { .name = "over", .owner = OWNER_ROOT, .ipv6 = "2001:db8:11::/64" };
	int hooks = c->hooks;
	assert_int_equal(store_network_create(c->st, &over), STORE_FULL);
	assert_int_equal(c->hooks, hooks);
	assert_int_equal(store_network_get(c->st, "over", OWNER_ANY, &got), STORE_NOTFOUND);
	/* Deleting the last network does not give its ID back. */
	assert_int_equal(store_network_delete(c->st, NET_ID_MAX), STORE_OK);
	assert_int_equal(store_network_create(c->st, &over), STORE_FULL);
}

/* ---- change hook -------------------------------------------------------- */

static void change_hook(void **state)
{
	struct ctx *c = *state;
	struct image im = { .name = "tiny", .owner = OWNER_ROOT, .format = "kernel", .boot = "kernel" };
	uint64_t lan, id;

	assert_int_equal(c->hooks, 0);
	assert_int_equal(store_image_create(c->st, &im), STORE_OK);
	assert_int_equal(c->hooks, 1);
	assert_int_equal(store_image_finalize(c->st, im.id, SHA_A, "kernel", 1), STORE_OK);
	assert_int_equal(c->hooks, 2);
	lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	assert_int_equal(c->hooks, 3);
	/* A VM with its NICs is one transaction: one notification. */
	uint64_t nets[2] = { lan, lan };
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, im.id, nets, 2, &id), STORE_OK);
	assert_int_equal(c->hooks, 4);
	assert_int_equal(store_vm_set_desired(c->st, id, "stopped"), STORE_OK);
	assert_int_equal(c->hooks, 5);

	/* Observations are not changes of intent. */
	assert_int_equal(store_vm_set_state(c->st, id, "running", NULL), STORE_OK);
	assert_int_equal(c->hooks, 5);

	/* Reads and failed writes do not notify. */
	struct vm vm = { 0 };
	assert_int_equal(store_vm_get_id(c->st, id, &vm), STORE_OK);
	assert_string_equal(vm.state, "running");
	vm_free(&vm);
	assert_int_equal(store_image_delete(c->st, im.id), STORE_CONFLICT);
	assert_int_equal(store_network_delete(c->st, lan), STORE_CONFLICT);
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, im.id, &lan, 1, NULL), STORE_CONFLICT);
	assert_int_equal(c->hooks, 5);

	/* Without a hook nothing breaks. */
	store_set_change_hook(c->st, NULL, NULL);
	assert_int_equal(store_vm_set_desired(c->st, id, "running"), STORE_OK);
	assert_int_equal(c->hooks, 5);
}

/* Every write of intent reaches the hook, in a transaction or not, and
 * its announcement names the tables it wrote.  SQLite has no
 * announcements to listen for. */
static void announce_interface(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny"), lan, id;

	lan = make_net(c->st, "lan", "2001:db8:10::/64", NULL);
	uint64_t nets[2] = { lan, lan };
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, nets, 2, &id), STORE_OK);
	assert_string_equal(c->st->changed, "vms,nics");
	c->hooks = 0;

	/* Outside a transaction store_w makes one: hook and announcement. */
	assert_int_equal(store_w(c->st, "UPDATE vms SET cpus = 2 WHERE id = ?", &SV_I(id), 1),
			 STORE_OK);
	assert_int_equal(c->hooks, 1);
	assert_int_equal(c->st->depth, 0);
	assert_string_equal(c->st->changed, "vms");
	assert_int_equal(count_rows(c->st, "SELECT cpus FROM vms"), 2);
	/* …and a failed one neither commits nor calls. */
	assert_int_equal(store_w(c->st, "INSERT INTO vms (id) VALUES (1)", NULL, 0), STORE_CONFLICT);
	assert_int_equal(c->hooks, 1);
	assert_int_equal(c->st->depth, 0);

	if (pg_uri == NULL) {
		assert_int_equal(store_notify_fd(c->st), -1);
		assert_int_equal(store_notify_drain(c->st), 0);
	} else {
		assert_true(store_notify_fd(c->st) >= 0);
	}
}

/* ---- keys and user data ------------------------------------------------ */

static uint64_t make_key(struct store *st, const char *name, uint64_t owner, int rc_want)
{
	struct key k = { .name = (char *)name, .owner = owner, .type = "ssh-ed25519",
			 .pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVvfdKMQheBupJMwSl1b5Tidm7uFpdvhrSaCsn3j6UH x",
			 .fingerprint = "SHA256:cVA72Y5jqCuZ+gIskxj4oxoJJJvuUBXLAoF57PKwPGg" };
	assert_int_equal(store_key_create(st, &k), rc_want);
	return k.id;
}

static void keys_and_user_data(void **state)
{
	struct ctx *c = *state;
	struct key k = { 0 }, *list = NULL;
	size_t n = 0;
	uint64_t img = make_image(c->st, "img"), vm1, vm2;
	/* Binary: a NUL, bytes that are not UTF-8, a lone CR. */
	static const unsigned char ud[] = { '#', '!', '/', 'b', 'i', 'n', '/', 's', 'h', '\n',
					    0x00, 0xff, 0xfe, 0x80, '\r', 0xc3, 0x28, 'x' };

	assert_int_equal(store_q(c->st, "INSERT INTO users (id, name, role) VALUES (7, 'bob', 'user')",
				 NULL, 0, NULL, NULL), STORE_OK);
	int hooks = c->hooks;
	uint64_t laptop = make_key(c->st, "laptop", OWNER_ROOT, STORE_OK);
	uint64_t desk = make_key(c->st, "desk", OWNER_ROOT, STORE_OK);
	assert_int_equal(laptop, 1);
	assert_int_equal(desk, 2);
	assert_int_equal(c->hooks, hooks + 2);
	make_key(c->st, "laptop", OWNER_ROOT, STORE_CONFLICT);     /* name taken */
	uint64_t bobs = make_key(c->st, "laptop", 7, STORE_OK);    /* another owner's */

	/* By name and by 8-hex ID; another owner's key does not exist for bob. */
	assert_int_equal(store_key_get(c->st, "laptop", OWNER_ROOT, &k), STORE_OK);
	assert_int_equal(k.id, laptop);
	assert_string_equal(k.owner_name, "root");
	assert_string_equal(k.type, "ssh-ed25519");
	assert_string_equal(k.fingerprint, "SHA256:cVA72Y5jqCuZ+gIskxj4oxoJJJvuUBXLAoF57PKwPGg");
	key_free(&k);
	assert_int_equal(store_key_get(c->st, "00000002", OWNER_ROOT, &k), STORE_OK);
	assert_string_equal(k.name, "desk");
	key_free(&k);
	assert_int_equal(store_key_get(c->st, "desk", 7, &k), STORE_NOTFOUND);
	assert_int_equal(store_key_get(c->st, "laptop", 7, &k), STORE_OK);
	assert_int_equal(k.id, bobs);
	key_free(&k);
	assert_int_equal(store_key_list(c->st, OWNER_ROOT, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "laptop");
	keys_free(list, n);
	assert_int_equal(store_key_list(c->st, OWNER_ANY, &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	keys_free(list, n);

	/* A VM with a key and user data reads back byte-identical. */
	struct vm_key vk[] = { { .id = laptop } };
	struct vm vm = { .name = "withkeys", .owner = OWNER_ROOT, .image = img, .cpus = 1,
			 .memory_mib = 128, .desired = "stopped", .state = "stopped",
			 .keys = vk, .n_keys = 1, .user_data = (unsigned char *)ud,
			 .user_data_len = sizeof(ud) };
	assert_int_equal(store_vm_create(c->st, &vm, NULL, 0), STORE_OK);
	vm1 = vm.id;
	struct vm got = { 0 };
	assert_int_equal(store_vm_get(c->st, "withkeys", OWNER_ROOT, &got), STORE_OK);
	assert_int_equal(got.n_keys, 1);
	assert_int_equal(got.keys[0].id, laptop);
	assert_string_equal(got.keys[0].name, "laptop");
	assert_string_equal(got.keys[0].fingerprint, "SHA256:cVA72Y5jqCuZ+gIskxj4oxoJJJvuUBXLAoF57PKwPGg");
	assert_non_null(got.keys[0].pubkey);
	assert_int_equal(got.user_data_len, sizeof(ud));
	assert_memory_equal(got.user_data, ud, sizeof(ud));
	vm_free(&got);

	/* Without either: none. */
	assert_int_equal(make_vm(c->st, "plain", OWNER_ROOT, img, NULL, 0, &vm2), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, vm2, &got), STORE_OK);
	assert_int_equal(got.n_keys, 0);
	assert_null(got.keys);
	assert_null(got.user_data);
	assert_int_equal(got.user_data_len, 0);
	vm_free(&got);

	/* A key that does not exist fails the whole create. */
	int64_t vms_before = count_rows(c->st, "SELECT COUNT(*) FROM vms");
	struct vm_key bad[] = { { .id = desk }, { .id = 999 } };
	struct vm vb = { .name = "badkey", .owner = OWNER_ROOT, .image = img, .cpus = 1,
			 .memory_mib = 128, .desired = "stopped", .state = "stopped",
			 .keys = bad, .n_keys = 2 };
	assert_int_equal(store_vm_create(c->st, &vb, NULL, 0), STORE_CONFLICT);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), vms_before);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vm_keys"), 1);

	/* In use: refused; once the VM is deleted (before its purge): fine. */
	assert_int_equal(store_key_delete(c->st, laptop), STORE_CONFLICT);
	assert_int_equal(store_key_get(c->st, "laptop", OWNER_ROOT, &k), STORE_OK);
	key_free(&k);
	assert_int_equal(store_vm_set_desired(c->st, vm1, "deleted"), STORE_OK);
	assert_int_equal(store_key_delete(c->st, laptop), STORE_OK);
	assert_int_equal(store_key_get(c->st, "laptop", OWNER_ROOT, &k), STORE_NOTFOUND);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vm_keys"), 0);
	assert_int_equal(store_vm_purge(c->st, vm1), STORE_OK);

	/* Purge takes the VM's key links with it. */
	struct vm_key dk[] = { { .id = desk } };
	struct vm v3 = { .name = "third", .owner = OWNER_ROOT, .image = img, .cpus = 1,
			 .memory_mib = 128, .desired = "stopped", .state = "stopped",
			 .keys = dk, .n_keys = 1 };
	assert_int_equal(store_vm_create(c->st, &v3, NULL, 0), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vm_keys"), 1);
	assert_int_equal(store_vm_purge(c->st, v3.id), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vm_keys"), 0);
	assert_int_equal(store_key_delete(c->st, desk), STORE_OK);
}

/* ---- durability --------------------------------------------------------- */

static int text_row(void *arg, const struct sval *c, int n)
{
	if (n > 0 && c[0].t == SV_TEXT)
		snprintf(arg, 16, "%s", c[0].s);
	return 0;
}

/* SQLite commits sync the WAL (synchronous=FULL = 2): an answered change
 * survives a power cut.  PostgreSQL's synchronous_commit is on unless the
 * operator turned it off; the engine leaves that to the server. */
static void sqlite_commits_are_durable(void **state)
{
	struct ctx *c = *state;
	int64_t sync = -1;

	if (pg_uri)
		skip();
	assert_int_equal(store_q(c->st, "PRAGMA synchronous", NULL, 0, store_row_int, &sync),
			 STORE_OK);
	assert_int_equal(sync, 2);
	char mode[16] = "";
	assert_int_equal(store_q(c->st, "PRAGMA journal_mode", NULL, 0, text_row, mode), STORE_OK);
	assert_string_equal(mode, "wal");
}

/* ---- references: own names first, OWNER/NAME, public images ------------ */

static uint64_t add_user(struct store *st, const char *name, const char *role)
{
	struct user u = { .name = (char *)name, .role = (char *)role, .auth = "file",
			  .enabled = true };
	assert_int_equal(store_user_create(st, &u), STORE_OK);
	return u.id;
}

static uint64_t owned_image(struct store *st, const char *name, uint64_t owner, bool pub)
{
	struct image im = { .name = (char *)name, .owner = owner, .format = "kernel",
			    .boot = "kernel", .visibility = pub ? "public" : "private" };
	assert_int_equal(store_image_create(st, &im), STORE_OK);
	assert_int_equal(store_image_finalize(st, im.id, SHA_A, "kernel", 4096), STORE_OK);
	return im.id;
}

static uint64_t owned_net(struct store *st, const char *name, uint64_t owner, const char *v6)
{
	struct network n = { .name = (char *)name, .owner = owner, .ipv6 = (char *)v6 };
	assert_int_equal(store_network_create(st, &n), STORE_OK);
	return n.id;
}

/* The ID of the image, network or key a reference finds in a scope (0:
 * none), after checking the lookup's answer. */
enum ref_kind { REF_IMAGE, REF_NET, REF_KEY };

static uint64_t found(struct store *st, enum ref_kind kind, const char *ref, uint64_t scope,
		      int rc_want)
{
	struct image im = { 0 };
	struct network n = { 0 };
	struct key k = { 0 };
	uint64_t id = 0;

	switch (kind) {
	case REF_IMAGE:
		assert_int_equal(store_image_get(st, ref, scope, &im), rc_want);
		id = im.id;
		break;
	case REF_NET:
		assert_int_equal(store_network_get(st, ref, scope, &n), rc_want);
		id = n.id;
		break;
	case REF_KEY:
		assert_int_equal(store_key_get(st, ref, scope, &k), rc_want);
		id = k.id;
		break;
	}
	image_free(&im);
	network_free(&n);
	key_free(&k);
	return id;
}
#define img_of(st, ref, scope, rc) found(st, REF_IMAGE, ref, scope, rc)
#define net_of(st, ref, scope, rc) found(st, REF_NET, ref, scope, rc)
#define key_of(st, ref, scope, rc) found(st, REF_KEY, ref, scope, rc)

/*
 * Issue 11, item 2: a member with a lower user ID owns tiny, office and
 * laptop; an admin with the same names always gets its own by name, and
 * alice's only as alice/NAME (or by ID); another member never does.
 */
static void references_own_first(void **state)
{
	struct ctx *c = *state;
	uint64_t alice = add_user(c->st, "alice", "member");
	uint64_t adm = add_user(c->st, "adm", "admin");
	uint64_t bob = add_user(c->st, "bob", "member");
	uint64_t a_img = owned_image(c->st, "tiny", alice, false);
	uint64_t a_net = owned_net(c->st, "office", alice, "fd00:a::/64");
	uint64_t a_key = make_key(c->st, "laptop", alice, STORE_OK);
	uint64_t d_img = owned_image(c->st, "tiny", adm, false);
	uint64_t d_net = owned_net(c->st, "office", adm, "fd00:d::/64");
	uint64_t d_key = make_key(c->st, "laptop", adm, STORE_OK);
	uint64_t as_adm = scope_all(adm);
	struct image im = { 0 };
	char id[16];

	assert_true(alice < adm);
	assert_int_equal(img_of(c->st, "tiny", as_adm, STORE_OK), d_img);
	assert_int_equal(net_of(c->st, "office", as_adm, STORE_OK), d_net);
	assert_int_equal(key_of(c->st, "laptop", as_adm, STORE_OK), d_key);
	/* Root (OWNER_ANY acts as root) has none of them. */
	net_of(c->st, "office", OWNER_ANY, STORE_NOTFOUND);
	/* Owner-qualified: the admin reaches alice's, bob does not; alice does. */
	assert_int_equal(img_of(c->st, "alice/tiny", as_adm, STORE_OK), a_img);
	assert_int_equal(net_of(c->st, "alice/office", as_adm, STORE_OK), a_net);
	assert_int_equal(key_of(c->st, "alice/laptop", as_adm, STORE_OK), a_key);
	img_of(c->st, "alice/tiny", bob, STORE_NOTFOUND);
	net_of(c->st, "alice/office", bob, STORE_NOTFOUND);
	key_of(c->st, "alice/laptop", bob, STORE_NOTFOUND);
	net_of(c->st, "office", bob, STORE_NOTFOUND);
	assert_int_equal(net_of(c->st, "alice/office", alice, STORE_OK), a_net);
	assert_int_equal(net_of(c->st, "office", alice, STORE_OK), a_net);
	/* By ID: whoever may see the row. */
	snprintf(id, sizeof(id), "%06llx", (unsigned long long)a_net);
	assert_int_equal(net_of(c->st, id, as_adm, STORE_OK), a_net);
	net_of(c->st, id, bob, STORE_NOTFOUND);
	/* Malformed or unknown owners find nothing. */
	net_of(c->st, "carol/office", as_adm, STORE_NOTFOUND);
	net_of(c->st, "alice/", as_adm, STORE_NOTFOUND);
	net_of(c->st, "/office", as_adm, STORE_NOTFOUND);
	net_of(c->st, "alice/office/x", as_adm, STORE_NOTFOUND);

	/* VMs the same way. */
	uint64_t a_vm, d_vm;
	assert_int_equal(make_vm(c->st, "web", alice, a_img, NULL, 0, &a_vm), STORE_OK);
	assert_int_equal(make_vm(c->st, "web", adm, d_img, NULL, 0, &d_vm), STORE_OK);
	struct vm vm = { 0 };
	assert_int_equal(store_vm_get(c->st, "web", as_adm, &vm), STORE_OK);
	assert_int_equal(vm.id, d_vm);
	vm_free(&vm);
	assert_int_equal(store_vm_get(c->st, "alice/web", as_adm, &vm), STORE_OK);
	assert_int_equal(vm.id, a_vm);
	vm_free(&vm);
	assert_int_equal(store_vm_get(c->st, "alice/web", bob, &vm), STORE_NOTFOUND);

	/* Public images: own first, then public; two publishers of one name
	 * make the plain name ambiguous for the others, never a silent pick. */
	uint64_t pub = owned_image(c->st, "pub", OWNER_ROOT, true);
	assert_int_equal(img_of(c->st, "pub", bob, STORE_OK), pub);
	assert_int_equal(img_of(c->st, "root/pub", bob, STORE_OK), pub);
	uint64_t bobs = owned_image(c->st, "pub", bob, false);
	assert_int_equal(img_of(c->st, "pub", bob, STORE_OK), bobs);
	uint64_t pub2 = owned_image(c->st, "pub", adm, true);
	assert_int_equal(store_image_get(c->st, "pub", alice, &im), STORE_AMBIGUOUS);
	assert_int_equal(img_of(c->st, "adm/pub", alice, STORE_OK), pub2);
	assert_int_equal(img_of(c->st, "pub", as_adm, STORE_OK), pub2);   /* its own */
	assert_int_equal(img_of(c->st, "pub", bob, STORE_OK), bobs);
	img_of(c->st, "bob/pub", alice, STORE_NOTFOUND);                  /* private */
}

/* Issue 12 §6: a list never loads user data or key material (only the
 * size and the key's name and fingerprint, what a list shows); a VM got by
 * itself has them.  NICs, keys and disks land on the right VMs. */
static void vm_list_is_light(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "img");
	uint64_t net = make_net(c->st, "lan", "fd00:11::/64", "10.11.0.0/24");
	uint64_t key = make_key(c->st, "laptop", OWNER_ROOT, STORE_OK);
	static const unsigned char ud[] = "#!/bin/sh\necho hello\n";
	struct vm_key vk[] = { { .id = key } };
	struct vm_disk dk[] = { { .size = 1 << 20 }, { .size = 2 << 20 } };
	struct vm *list = NULL, got = { 0 };
	size_t n = 0;
	uint64_t nets[] = { net, net };

	for (int i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "v%d", i);
		struct vm vm = { .name = name, .owner = OWNER_ROOT, .image = img, .cpus = 1,
				 .memory_mib = 64, .desired = "stopped", .state = "stopped",
				 .keys = i % 2 ? vk : NULL, .n_keys = i % 2 ? 1 : 0,
				 .user_data = i == 3 ? (unsigned char *)ud : NULL,
				 .user_data_len = i == 3 ? sizeof(ud) - 1 : 0,
				 .disks = i == 4 ? dk : NULL, .n_disks = i == 4 ? 2 : 0 };
		assert_int_equal(store_vm_create(c->st, &vm, nets, (size_t)(i % 3)), STORE_OK);
	}
	assert_int_equal(store_vm_list(c->st, OWNER_ANY, false, &list, &n), STORE_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(list[i].n_nics, i % 3);
		assert_int_equal(list[i].n_keys, i % 2);
		assert_int_equal(list[i].n_disks, i == 4 ? 2 : 0);
		assert_null(list[i].user_data);
		assert_int_equal(list[i].user_data_len, i == 3 ? sizeof(ud) - 1 : 0);
		for (size_t k = 0; k < list[i].n_keys; k++) {
			assert_string_equal(list[i].keys[k].name, "laptop");
			assert_non_null(list[i].keys[k].fingerprint);
			assert_null(list[i].keys[k].pubkey);
		}
	}
	assert_string_equal(list[2].nics[1].network_name, "lan");
	assert_string_equal(list[2].nics[0].ipv4, "10.11.0.3");   /* v1 took .2 */
	assert_int_equal(list[4].disks[1].size, 2 << 20);
	uint64_t id3 = list[3].id;
	vms_free(list, n);
	assert_int_equal(store_vm_get_id(c->st, id3, &got), STORE_OK);
	assert_int_equal(got.user_data_len, sizeof(ud) - 1);
	assert_memory_equal(got.user_data, ud, sizeof(ud) - 1);
	assert_non_null(got.keys[0].pubkey);
	vm_free(&got);
	/* Purged: its user data goes with it. */
	assert_int_equal(store_vm_purge(c->st, id3), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vm_user_data"), 0);
}

/* ---- users and tokens --------------------------------------------------- */

static void users_and_tokens(void **state)
{
	struct ctx *c = *state;
	struct user u = { .name = "alice", .role = "member", .auth = "file,otp", .enabled = true };
	struct user got = { 0 }, *ul = NULL;
	struct token t = { .expires = INT64_C(4000000000), .source = "unix" }, tk = { 0 }, *tl = NULL;
	size_t n = 0;
	char *sealed = NULL;
	int64_t step = -1;

	assert_int_equal(store_user_create(c->st, &u), STORE_OK);
	assert_int_equal(u.id, 1);
	struct user dup = { .name = "alice", .role = "member", .auth = "file", .enabled = true };
	assert_int_equal(store_user_create(c->st, &dup), STORE_CONFLICT);
	assert_int_equal(store_user_get(c->st, "alice", &got), STORE_OK);
	assert_int_equal(got.id, u.id);
	assert_string_equal(got.auth, "file,otp");
	assert_true(got.enabled);
	assert_false(got.otp);        /* a truth value computed by the query */
	user_free(&got);
	assert_int_equal(store_user_update(c->st, u.id, "admin", NULL, 0), STORE_OK);
	assert_int_equal(store_user_get_id(c->st, u.id, &got), STORE_OK);
	assert_string_equal(got.role, "admin");
	assert_string_equal(got.auth, "file,otp");
	assert_false(got.enabled);
	user_free(&got);
	assert_int_equal(store_user_update(c->st, u.id, NULL, NULL, 1), STORE_OK);
	assert_int_equal(store_user_list(c->st, &ul, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ul[0].name, "root");
	users_free(ul, n);

	/* TOTP: enrol, use a step once, never again nor an older one. */
	assert_int_equal(store_user_otp_set(c->st, u.id, "sealed-secret"), STORE_OK);
	assert_int_equal(store_user_otp_get(c->st, u.id, &sealed, &step), STORE_OK);
	assert_string_equal(sealed, "sealed-secret");
	assert_int_equal(step, 0);
	free(sealed);
	assert_int_equal(store_user_otp_use(c->st, u.id, 100), STORE_OK);
	assert_int_equal(store_user_otp_use(c->st, u.id, 100), STORE_CONFLICT);
	assert_int_equal(store_user_otp_use(c->st, u.id, 99), STORE_CONFLICT);
	assert_int_equal(store_user_otp_use(c->st, u.id, 101), STORE_OK);
	assert_int_equal(store_user_get_id(c->st, u.id, &got), STORE_OK);
	assert_true(got.otp);
	user_free(&got);
	assert_int_equal(store_user_otp_set(c->st, 77, "x"), STORE_NOTFOUND);

	/* Tokens: live ones by hash, scope, expiry, delete, purge. */
	t.owner = u.id;
	assert_int_equal(store_token_create(c->st, &t, "hash-1"), STORE_OK);
	assert_int_equal(store_token_lookup(c->st, "hash-1", store_now(), &tk), STORE_OK);
	assert_int_equal(tk.id, t.id);
	assert_string_equal(tk.owner_name, "alice");
	assert_true(tk.owner_admin);   /* alice was made admin above */
	token_free(&tk);
	assert_int_equal(store_user_update(c->st, u.id, "member", NULL, -1), STORE_OK);
	assert_int_equal(store_token_lookup(c->st, "hash-1", store_now(), &tk), STORE_OK);
	assert_false(tk.owner_admin);  /* the role is read with the token, not cached */
	token_free(&tk);
	assert_int_equal(store_token_lookup(c->st, "hash-1", INT64_C(4000000000), &tk), STORE_NOTFOUND);
	assert_int_equal(store_token_list(c->st, u.id, &tl, &n), STORE_OK);
	assert_int_equal(n, 1);
	tokens_free(tl, n);
	assert_int_equal(store_token_list(c->st, OWNER_ROOT, &tl, &n), STORE_OK);
	assert_int_equal(n, 0);
	tokens_free(tl, n);
	assert_int_equal(store_token_delete(c->st, t.id, OWNER_ROOT), STORE_NOTFOUND);
	assert_int_equal(store_token_delete(c->st, t.id, u.id), STORE_OK);
	assert_int_equal(store_token_create(c->st, &t, "hash-2"), STORE_OK);
	assert_int_equal(store_token_purge(c->st, INT64_C(4000000001)), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM tokens"), 0);

	/* A user who owns something stays; without it, goes with its tokens. */
	assert_int_equal(store_token_create(c->st, &t, "hash-3"), STORE_OK);
	make_key(c->st, "k", u.id, STORE_OK);
	assert_int_equal(store_user_delete(c->st, u.id), STORE_CONFLICT);
	assert_int_equal(store_key_delete(c->st, 1), STORE_OK);
	assert_int_equal(store_user_delete(c->st, u.id), STORE_OK);
	assert_int_equal(store_user_get(c->st, "alice", &got), STORE_NOTFOUND);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM tokens"), 0);
}

/* ---- what the engines agree on ----------------------------------------- */

struct captured {
	int rows;
	enum sval_type t[8];
	int64_t i[8];
	char s[8][32];
};

static int capture_row(void *arg, const struct sval *c, int n)
{
	struct captured *g = arg;

	g->rows++;
	for (int k = 0; k < n && k < 8; k++) {
		g->t[k] = c[k].t;
		g->i[k] = c[k].i;
		if (c[k].t == SV_TEXT)
			snprintf(g->s[k], sizeof(g->s[k]), "%s", c[k].s);
	}
	return 0;
}

static void engine_values_and_errors(void **state)
{
	struct ctx *c = *state;
	struct captured g = { 0 };
	const char *text = "it's ?";
	struct sval p[] = { SV_I(INT64_C(1) << 40), SV_S(text), SV_S(NULL) };
	uint64_t id = 0;

	/* Parameters of each kind; a '?' inside a literal is no placeholder;
	 * integers, counts and truth values read back as SV_INT. */
	assert_int_equal(store_q(c->st, "SELECT ?, ?, ?, 'a ? in a literal', NULL,"
				 " (SELECT COUNT(*) FROM counters), 1 < 2", p, 3, capture_row, &g),
			 STORE_OK);
	assert_int_equal(g.rows, 1);
	assert_int_equal(g.t[0], SV_INT);
	assert_int_equal(g.i[0], INT64_C(1) << 40);
	assert_int_equal(g.t[1], SV_TEXT);
	assert_string_equal(g.s[1], "it's ?");
	assert_int_equal(g.t[2], SV_NULL);
	assert_int_equal(g.t[3], SV_TEXT);
	assert_string_equal(g.s[3], "a ? in a literal");
	assert_int_equal(g.t[4], SV_NULL);
	assert_int_equal(g.t[5], SV_INT);
	assert_true(g.i[5] >= 5);
	assert_int_equal(g.t[6], SV_INT);
	assert_int_equal(g.i[6], 1);

	/* Constraint violations are conflicts: unique, foreign key, not null. */
	assert_int_equal(store_q(c->st, "INSERT INTO counters (name, next) VALUES ('vm', 1)",
				 NULL, 0, NULL, NULL), STORE_CONFLICT);
	assert_int_equal(store_q(c->st, "INSERT INTO nics (id, vm, network, idx) VALUES (1, 999, 999, 0)",
				 NULL, 0, NULL, NULL), STORE_CONFLICT);
	assert_int_equal(store_q(c->st, "INSERT INTO counters (name, next) VALUES ('x', NULL)",
				 NULL, 0, NULL, NULL), STORE_CONFLICT);
	/* Anything else is a failure of the database. */
	assert_int_equal(store_q(c->st, "SELECT nothing FROM nowhere", NULL, 0, NULL, NULL), STORE_ERR);

	/* A conflict ends its transaction: nothing of it stays. */
	assert_int_equal(store_tx_begin(c->st), STORE_OK);
	int rc = store_w(c->st, "INSERT INTO users (id, name, role) VALUES (9, 'half', 'user')", NULL, 0);
	assert_int_equal(rc, STORE_OK);
	rc = store_w(c->st, "INSERT INTO users (id, name, role) VALUES (10, 'root', 'user')", NULL, 0);
	assert_int_equal(rc, STORE_CONFLICT);
	assert_int_equal(store_tx_end(c->st, rc), STORE_CONFLICT);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM users WHERE id = 9"), 0);
	assert_int_equal(c->hooks, 0);
	/* ...and the connection goes on. */
	assert_int_equal(make_image(c->st, "after"), 1);

	/* A counter hands out its last value, then is full; an unknown one fails. */
	assert_int_equal(store_q(c->st, "UPDATE counters SET next = 5 WHERE name = 'rule'",
				 NULL, 0, NULL, NULL), STORE_OK);
	assert_int_equal(store_tx_begin(c->st), STORE_OK);
	assert_int_equal(store_counter_next(c->st, "rule", 5, &id), STORE_OK);
	assert_int_equal(id, 5);
	assert_int_equal(store_counter_next(c->st, "rule", 5, &id), STORE_FULL);
	assert_int_equal(store_counter_next(c->st, "nosuch", 5, &id), STORE_ERR);
	assert_int_equal(store_tx_end(c->st, STORE_OK), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT next FROM counters WHERE name = 'rule'"), 6);
}

/* ---- PostgreSQL: several processes, a server restart -------------------- */

/*
 * Run fn in n child processes that start at the same moment (they wait on
 * a pipe that the parent then closes) and return how many failed.  A child
 * opens its own store: it never touches the parent's connection.
 */
static int in_children(int n, int (*fn)(struct ctx *c, int who), struct ctx *c)
{
	pid_t pids[8];
	int gate[2], failed = 0;

	assert_true(n <= 8);
	assert_int_equal(pipe(gate), 0);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char b;
			close(gate[1]);
			if (read(gate[0], &b, 1) < 0)
				_exit(9);
			_exit(fn(c, i));
		}
	}
	close(gate[1]);
	close(gate[0]);
	for (int i = 0; i < n; i++) {
		int status = 0;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "child %d: status %#x\n", i, status);
			failed++;
		}
	}
	return failed;
}

static int expected_version;

static int child_open(struct ctx *c, int who)
{
	char *err = NULL;
	struct store *st = store_open(c->uri, c->dir, &err);
	int v;

	(void)who;
	if (st == NULL) {
		fprintf(stderr, "store_open: %s\n", err ? err : "?");
		free(err);
		return 1;
	}
	v = store_schema_version(st);
	store_close(st);
	return v == expected_version ? 0 : 2;
}

static void pg_concurrent_migrations(void **state)
{
	struct ctx *c = *state;
	char sqlite_uri[128], *err = NULL;

	/* The version every engine reaches: whatever SQLite migrates to. */
	snprintf(sqlite_uri, sizeof(sqlite_uri), "sqlite:%s/ref.db", c->dir);
	struct store *ref = store_open(sqlite_uri, c->dir, &err);
	assert_non_null(ref);
	expected_version = store_schema_version(ref);
	store_close(ref);
	assert_true(expected_version >= 5);

	/* Four hcd starting at once on an empty database: one migrates. */
	assert_int_equal(in_children(4, child_open, c), 0);
	c->st = store_open(c->uri, c->dir, &err);
	assert_non_null(c->st);
	assert_int_equal(store_schema_version(c->st), expected_version);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM schema_version"), expected_version);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(DISTINCT version) FROM schema_version"),
			 expected_version);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM users"), 1);
}

#define WRITES 40
/* NICs of the shared VM per child: 3 children stay within the 16 PCI
 * slots a VM has (NIC_PCI_SLOTS). */
#define NIC_WRITES 5

static uint64_t shared_image, shared_net, shared_vm;

/* Networks, VMs (each takes an address of one shared network) and NICs of
 * one shared VM (each takes the next index and the lowest free PCI slot:
 * read, then written). */
static int child_create(struct ctx *c, int who)
{
	char *err = NULL;
	struct store *st = store_open(c->uri, c->dir, &err);
	int failed = 0;

	if (st == NULL) {
		free(err);
		return 1;
	}
	for (int i = 0; i < WRITES; i++) {
		char name[32], v6[64];
		snprintf(name, sizeof(name), "w%d-%d", who, i);
		snprintf(v6, sizeof(v6), "fd00:%x:%x::/64", who, i);
		struct network n = { .name = name, .owner = OWNER_ROOT, .ipv6 = v6 };
		struct vm vm = { .name = name, .owner = OWNER_ROOT, .image = shared_image, .cpus = 1,
				 .memory_mib = 128, .desired = "stopped", .state = "stopped" };
		uint64_t nic;
		failed += store_network_create(st, &n) != STORE_OK;
		failed += store_vm_create(st, &vm, &shared_net, 1) != STORE_OK;
		if (i < NIC_WRITES)
			failed += store_nic_add(st, shared_vm, shared_net, NULL, &nic) != STORE_OK;
	}
	store_close(st);
	return failed ? 1 : 0;
}

#define COUNTS 200

static int id_pipe[2];

/* The counter alone, in transactions that skip the engine's writer lock
 * (plain BEGIN): two of them must still never get the same value. */
static int child_count(struct ctx *c, int who)
{
	char *err = NULL;
	struct store *st = store_open(c->uri, c->dir, &err);
	int failed = 0;

	(void)who;
	if (st == NULL) {
		free(err);
		return 1;
	}
	for (int i = 0; i < COUNTS; i++) {
		uint64_t id = 0;
		failed += store_q(st, "BEGIN", NULL, 0, NULL, NULL) != STORE_OK;
		failed += store_counter_next(st, "rule", UINT32_MAX, &id) != STORE_OK;
		failed += store_q(st, "COMMIT", NULL, 0, NULL, NULL) != STORE_OK;
		failed += write(id_pipe[1], &id, sizeof(id)) != (ssize_t)sizeof(id);
	}
	store_close(st);
	return failed ? 1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How many announcements reach st within ms: poll its fd, drain; stops
 * at the first that arrive.  *after_ms: when they did. */
static int heard(struct store *st, int ms, long long *after_ms)
{
	long long start = mono_ms(), left;
	int total = 0;

	while (total == 0 && (left = start + ms - mono_ms()) > 0) {
		struct pollfd p = { .fd = store_notify_fd(st), .events = POLLIN };
		if (poll(&p, 1, (int)left) > 0)
			total += store_notify_drain(st);
	}
	if (after_ms)
		*after_ms = mono_ms() - start;
	return total;
}

/* A second hcd's store on the same database. */
static struct store *open_other(struct ctx *c)
{
	char *err = NULL;
	struct store *st = store_open(c->uri, c->dir, &err);

	if (st == NULL)
		fprintf(stderr, "store_open: %s\n", err ? err : "?");
	free(err);
	assert_non_null(st);
	return st;
}

/* A change committed through one handle makes the other's fd readable
 * at once, with something to drain; the writer does not hear itself. */
static void pg_announce_across_handles(void **state)
{
	struct ctx *c = *state;
	struct store *b = open_other(c);
	long long ms;
	uint64_t img, id;

	assert_true(store_notify_fd(b) >= 0);
	assert_true(store_notify_fd(c->st) >= 0);
	assert_int_equal(store_notify_drain(b), 0);

	img = make_image(c->st, "tiny");   /* two transactions: create, finalize */
	assert_true(heard(b, 1000, &ms) > 0);
	assert_true(ms < 1000);
	(void)heard(b, 200, NULL);
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &id), STORE_OK);
	assert_int_equal(heard(b, 1000, NULL), 1);
	assert_int_equal(store_vm_set_desired(c->st, id, "stopped"), STORE_OK);
	assert_int_equal(heard(b, 1000, NULL), 1);
	assert_int_equal(heard(c->st, 300, NULL), 0);   /* its own changes: the hook's job */

	/* And the other way round. */
	assert_int_equal(store_vm_set_desired(b, id, "running"), STORE_OK);
	assert_int_equal(heard(c->st, 1000, NULL), 1);
	assert_int_equal(heard(b, 300, NULL), 0);
	store_close(b);
}

/* Only committed changes of intent are announced: not a rolled-back
 * transaction, not a read-only one, not the agent's observations.  Each
 * case is followed by one real change; exactly one announcement arrives
 * (the server delivers in commit order, so a wrong one would come first). */
static void pg_announce_only_commits(void **state)
{
	struct ctx *c = *state;
	struct store *b = open_other(c);
	uint64_t img, id;
	int64_t n = 0;

	img = make_image(c->st, "tiny");
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &id), STORE_OK);
	assert_true(store_notify_fd(b) >= 0);

	/* Rolled back. */
	assert_int_equal(store_tx_begin(c->st), STORE_OK);
	assert_int_equal(store_w(c->st, "UPDATE vms SET cpus = 4 WHERE id = ?", &SV_I(id), 1),
			 STORE_OK);
	assert_int_equal(store_tx_end(c->st, STORE_CONFLICT), STORE_CONFLICT);
	assert_int_equal(store_vm_set_desired(c->st, id, "stopped"), STORE_OK);
	assert_int_equal(heard(b, 1000, NULL) + heard(b, 200, NULL), 1);

	/* Read-only. */
	assert_int_equal(store_tx_begin(c->st), STORE_OK);
	assert_int_equal(store_q(c->st, "SELECT COUNT(*) FROM vms", NULL, 0, store_row_int, &n),
			 STORE_OK);
	assert_int_equal(store_tx_end(c->st, STORE_OK), STORE_OK);
	assert_int_equal(store_vm_set_desired(c->st, id, "running"), STORE_OK);
	assert_int_equal(heard(b, 1000, NULL) + heard(b, 200, NULL), 1);

	/* Observations and a failed write. */
	assert_int_equal(store_vm_set_state(c->st, id, "running", NULL), STORE_OK);
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, NULL), STORE_CONFLICT);
	assert_int_equal(store_vm_set_desired(c->st, id, "stopped"), STORE_OK);
	assert_int_equal(heard(b, 1000, NULL) + heard(b, 200, NULL), 1);
	store_close(b);
}

/* The listener outlives a server restart: it comes back by itself, says
 * it may have missed something, and hears what follows. */
static void pg_listener_after_restart(void **state)
{
	struct ctx *c = *state;
	const char *restart = getenv("HC_TEST_PG_RESTART");
	struct store *b;

	if (restart == NULL)
		skip();
	b = open_other(c);
	assert_true(store_notify_fd(b) >= 0);
	assert_int_equal(system(restart), 0);
	assert_true(heard(b, 3000, NULL) >= 1);
	assert_true(store_notify_fd(b) >= 0);
	make_net(c->st, "after", "2001:db8:10::/64", NULL);
	assert_int_equal(heard(b, 1000, NULL) + heard(b, 200, NULL), 1);
	store_close(b);
}

static void pg_concurrent_writers(void **state)
{
	struct ctx *c = *state;
	uint64_t ids[3 * COUNTS];
	uint64_t next = 0;

	shared_image = make_image(c->st, "tiny");
	shared_net = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/22");
	assert_int_equal(make_vm(c->st, "shared", OWNER_ROOT, shared_image, NULL, 0, &shared_vm),
			 STORE_OK);

	/* Through the model: nothing fails, no ID, address or index twice. */
	assert_int_equal(in_children(3, child_create, c), 0);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM networks"), 1 + 3 * WRITES);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), 1 + 3 * WRITES);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(DISTINCT ipv4) FROM nics"),
			 3 * WRITES + 3 * NIC_WRITES);
	assert_int_equal(count_rows(c->st, "SELECT MAX(idx) FROM nics WHERE vm = 1"), 3 * NIC_WRITES - 1);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(DISTINCT pci_slot) FROM nics WHERE vm = 1"),
			 3 * NIC_WRITES);
	assert_int_equal(store_counter_peek(c->st, "network", &next), STORE_OK);
	assert_int_equal(next, 2 + 3 * WRITES);
	assert_int_equal(store_counter_peek(c->st, "vm", &next), STORE_OK);
	assert_int_equal(next, 2 + 3 * WRITES);

	/* The counter by itself: 1..3*COUNTS, each handed out once. */
	assert_int_equal(pipe(id_pipe), 0);
	assert_int_equal(in_children(3, child_count, c), 0);
	close(id_pipe[1]);
	assert_int_equal(read(id_pipe[0], ids, sizeof(ids)), (ssize_t)sizeof(ids));
	close(id_pipe[0]);
	qsort(ids, 3 * COUNTS, sizeof(ids[0]), cmp_u64);
	for (int i = 0; i < 3 * COUNTS; i++)
		assert_int_equal(ids[i], (uint64_t)i + 1);
}

static void pg_reconnects_after_restart(void **state)
{
	struct ctx *c = *state;
	const char *restart = getenv("HC_TEST_PG_RESTART");
	struct image got = { 0 };
	uint64_t img, vm;
	int rc;

	if (restart == NULL)
		skip();
	img = make_image(c->st, "before");
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &vm), STORE_OK);

	/* Between transactions each kind of call finds the connection gone
	 * and reconnects first: a read, a transaction, a single write. */
	assert_int_equal(system(restart), 0);
	assert_int_equal(store_image_get(c->st, "before", OWNER_ANY, &got), STORE_OK);
	assert_int_equal(got.id, img);
	image_free(&got);
	assert_int_equal(system(restart), 0);
	make_net(c->st, "after", "2001:db8:10::/64", NULL);
	assert_int_equal(system(restart), 0);
	assert_int_equal(store_vm_set_state(c->st, vm, "running", NULL), STORE_OK);

	/* Inside a transaction the statement fails, and nothing of the
	 * transaction is applied. */
	int hooks = c->hooks;
	assert_int_equal(store_tx_begin(c->st), STORE_OK);
	rc = store_w(c->st, "INSERT INTO users (id, name, role) VALUES (9, 'half', 'user')", NULL, 0);
	assert_int_equal(rc, STORE_OK);
	assert_int_equal(system(restart), 0);
	rc = store_w(c->st, "INSERT INTO users (id, name, role) VALUES (10, 'other', 'user')", NULL, 0);
	assert_int_equal(rc, STORE_ERR);
	assert_int_equal(store_tx_end(c->st, rc), STORE_ERR);
	assert_int_equal(c->hooks, hooks);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM users WHERE id IN (9, 10)"), 0);
	assert_int_equal(make_image(c->st, "later"), img + 1);
}

/* An import from a URL: the row carries its source and expected checksum
 * while importing; a failure keeps the row with the reason. */
static void image_import_rows(void **state)
{
	struct ctx *c = *state;
	struct image im = { .name = "alpine", .owner = OWNER_ROOT, .format = "pending",
			    .boot = "disk", .state = "importing", .visibility = "public",
			    .source = "https://example.org/alpine.qcow2", .expect_sha256 = SHA_A };
	struct image got = { 0 }, plain = { .name = "up", .owner = OWNER_ROOT, .format = "pending",
					     .boot = "disk" };

	assert_int_equal(store_image_create(c->st, &im), STORE_OK);
	assert_int_equal(store_image_get_id(c->st, im.id, &got), STORE_OK);
	assert_string_equal(got.state, "importing");
	assert_string_equal(got.visibility, "public");
	assert_string_equal(got.source, "https://example.org/alpine.qcow2");
	assert_string_equal(got.expect_sha256, SHA_A);
	assert_null(got.error);
	assert_null(got.sha256);
	image_free(&got);

	assert_int_equal(store_image_fail(c->st, im.id, "checksum mismatch"), STORE_OK);
	assert_int_equal(store_image_get_id(c->st, im.id, &got), STORE_OK);
	assert_string_equal(got.state, "error");
	assert_string_equal(got.error, "checksum mismatch");
	image_free(&got);

	/* Defaults: an upload, private, no source. */
	assert_int_equal(store_image_create(c->st, &plain), STORE_OK);
	assert_int_equal(store_image_get_id(c->st, plain.id, &got), STORE_OK);
	assert_string_equal(got.state, "uploading");
	assert_string_equal(got.visibility, "private");
	assert_null(got.source);
	assert_null(got.expect_sha256);
	image_free(&got);
	/* Only an importing image can fail an import. */
	assert_int_equal(store_image_fail(c->st, plain.id, "no"), STORE_OK);
	assert_int_equal(store_image_get_id(c->st, plain.id, &got), STORE_OK);
	assert_string_equal(got.state, "uploading");
	assert_null(got.error);
	image_free(&got);
}

/* The root disk size and the data disks, in order, and gone with the VM. */
static void vm_disks_roundtrip(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	struct vm_disk disks[] = { { 10LL << 30 }, { 1LL << 20 }, { 3LL << 40 } };
	struct vm vm = { .name = "db", .owner = OWNER_ROOT, .image = img, .cpus = 1,
			 .memory_mib = 128, .desired = "stopped", .state = "stopped",
			 .disk_size = 4LL << 30, .disks = disks, .n_disks = 3 };
	struct vm got = { 0 };
	uint64_t plain;

	assert_int_equal(store_vm_create(c->st, &vm, NULL, 0), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, vm.id, &got), STORE_OK);
	assert_int_equal(got.disk_size, 4LL << 30);
	assert_int_equal(got.n_disks, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(got.disks[i].size, disks[i].size);
	vm_free(&got);

	assert_int_equal(make_vm(c->st, "plain", OWNER_ROOT, img, NULL, 0, &plain), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, plain, &got), STORE_OK);
	assert_int_equal(got.disk_size, 0);
	assert_int_equal(got.n_disks, 0);
	assert_null(got.disks);
	vm_free(&got);

	assert_int_equal(store_vm_purge(c->st, vm.id), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vm_disks"), 0);
}

/* The metadata service's IMDSv2 setting: stored, read back, changed —
 * a change of intent (the hook fires: the service's cache goes). */
static void vm_metadata_tokens(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny"), plain;
	struct vm vm = { .name = "strict", .owner = OWNER_ROOT, .image = img, .cpus = 1,
			 .memory_mib = 128, .desired = "stopped", .state = "stopped",
			 .metadata_tokens_required = true };
	struct vm got = { 0 };
	int hooks;

	assert_int_equal(store_vm_create(c->st, &vm, NULL, 0), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, vm.id, &got), STORE_OK);
	assert_true(got.metadata_tokens_required);
	vm_free(&got);
	assert_int_equal(make_vm(c->st, "plain", OWNER_ROOT, img, NULL, 0, &plain), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, plain, &got), STORE_OK);
	assert_false(got.metadata_tokens_required);
	vm_free(&got);
	hooks = c->hooks;
	assert_int_equal(store_vm_set_metadata_tokens(c->st, vm.id, false), STORE_OK);
	assert_true(c->hooks > hooks);
	assert_int_equal(store_vm_get_id(c->st, vm.id, &got), STORE_OK);
	assert_false(got.metadata_tokens_required);
	vm_free(&got);
}

/* ---- hosts and placement -------------------------------------------------- */

static void add_host(struct store *st, const char *name, int cpus, int64_t mem)
{
	struct host h = { .name = (char *)name, .address = "fd00:99::1", .cpus = cpus,
			  .memory_mib = mem, .accel = "tcg" };
	assert_int_equal(store_host_register(st, &h), STORE_OK);
}

/* Place and create a 1-CPU VM of mem MiB; returns its host (malloc'd) or NULL. */
static char *place_vm(struct store *st, const char *name, uint64_t image, int mem,
		      const char *pin, bool ephemeral, int *rc)
{
	struct vm vm = { .name = (char *)name, .owner = OWNER_ROOT, .image = image, .cpus = 1,
			 .memory_mib = mem, .desired = "running", .state = "stopped",
			 .ephemeral = ephemeral };
	struct placement p = { .cpus = 1, .memory_mib = mem, .pin = pin, .cpu_ratio = 4,
			       .now = store_now(), .fresh = 10 };
	struct vm got = { 0 };
	char *host = NULL;

	*rc = store_vm_create_placed(st, &vm, NULL, 0, &p);
	if (*rc != STORE_OK)
		return NULL;
	assert_int_equal(store_vm_get_id(st, vm.id, &got), STORE_OK);
	host = strdup(got.host);
	assert_int_equal(got.ephemeral, ephemeral);
	vm_free(&got);
	return host;
}

static void hosts_spread_pin_drain(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "img");
	char *h;
	int rc;

	add_host(c->st, "h1", 2, 1000);
	add_host(c->st, "h2", 2, 2000);
	add_host(c->st, "h3", 2, 1500);
	/* Most free memory first: h2 (2000), then h3 (1500 vs h2's 1400)… */
	const char *expect[] = { "h2", "h3", "h2", "h1", "h3" };
	for (size_t i = 0; i < 5; i++) {
		char name[8];
		snprintf(name, sizeof(name), "v%zu", i);
		h = place_vm(c->st, name, img, 600, NULL, false, &rc);
		assert_int_equal(rc, STORE_OK);
		assert_string_equal(h, expect[i]);
		free(h);
	}
	struct host got = { 0 };
	assert_int_equal(store_host_get(c->st, "h2", &got), STORE_OK);
	assert_int_equal(got.vms, 2);
	assert_int_equal(got.used_mib, 1200);
	assert_int_equal(got.used_cpus, 2);
	host_free(&got);
	/* h1: 400 free, h2: 800, h3: 300 — 900 fits nowhere. */
	assert_null(place_vm(c->st, "big", img, 900, NULL, false, &rc));
	assert_int_equal(rc, STORE_FULL);
	/* Pinning: to a host with room, to one without, to an unknown one. */
	h = place_vm(c->st, "pinned", img, 300, "h1", false, &rc);
	assert_int_equal(rc, STORE_OK);
	assert_string_equal(h, "h1");
	free(h);
	assert_null(place_vm(c->st, "p2", img, 500, "h3", false, &rc));
	assert_int_equal(rc, STORE_FULL);
	assert_null(place_vm(c->st, "p3", img, 100, "nowhere", false, &rc));
	assert_int_equal(rc, STORE_NOTFOUND);
	/* A drained host takes nothing new. */
	assert_int_equal(store_host_set_drain(c->st, "h2", true), STORE_OK);
	h = place_vm(c->st, "after-drain", img, 100, NULL, false, &rc);
	assert_int_equal(rc, STORE_OK);
	assert_string_not_equal(h, "h2");
	free(h);
	assert_int_equal(store_host_set_drain(c->st, "nowhere", true), STORE_NOTFOUND);
	/* CPUs count too: 2 CPUs × 4 = 8 VMs of 1 CPU at most. */
	add_host(c->st, "tiny", 1, 100000);
	assert_int_equal(store_host_set_drain(c->st, "h1", true), STORE_OK);
	assert_int_equal(store_host_set_drain(c->st, "h3", true), STORE_OK);
	int placed = 0;
	for (int i = 0; i < 10; i++) {
		char name[8];
		snprintf(name, sizeof(name), "c%d", i);
		h = place_vm(c->st, name, img, 10, NULL, false, &rc);
		placed += rc == STORE_OK;
		free(h);
	}
	assert_int_equal(placed, 4);
}

/* Live migration's rows (issue 14 §1): the request's checks, the room it
 * takes on the destination, ports, the fence between "done" and
 * "failed", the host flip with the loads, and drain --migrate's steps. */
static void migrations_state_machine(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "img");
	struct migration m = { 0 }, m2 = { 0 };
	struct host h = { 0 };
	struct vm vm = { 0 };
	int rc;
	char *at;

	add_host(c->st, "a", 2, 4000);
	add_host(c->st, "b", 2, 4000);
	at = place_vm(c->st, "v", img, 500, "a", false, &rc);
	free(at);
	assert_int_equal(store_vm_get(c->st, "v", OWNER_ANY, &vm), STORE_OK);
	uint64_t id = vm.id;
	vm_free(&vm);
	struct placement p = { .cpu_ratio = 4, .now = store_now(), .fresh = 10 };
	/* Not running yet: refused. */
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 4, "k", &m), STORE_CONFLICT);
	assert_int_equal(store_vm_set_state(c->st, id, "running", NULL), STORE_OK);
	/* Its own host: refused. */
	p.pin = "a";
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 4, "k", &m), STORE_CONFLICT);
	assert_non_null(strstr(store_refusal(c->st), "already"));
	/* Unpinned: the only other host; the room is taken there at once. */
	p.pin = NULL;
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 4, "key1", &m), STORE_OK);
	assert_string_equal(m.source, "a");
	assert_string_equal(m.dest, "b");
	assert_string_equal(m.state, "requested");
	assert_int_equal(m.nbd_port, 7400);
	assert_int_equal(m.mig_port, 7401);
	assert_string_equal(m.psk, "key1");
	assert_int_equal(store_host_get(c->st, "b", &h), STORE_OK);
	assert_int_equal(h.used_mib, 500);
	host_free(&h);
	/* A second request while it runs: refused. */
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 4, "k", &m2), STORE_CONFLICT);
	/* No snapshot layer may come under a migration (it moves the tops). */
	assert_int_equal(store_vm_set_desired(c->st, id, "running"), STORE_OK);
	struct snapshot snap = { .vm = id, .name = "during", .live = true };
	assert_int_equal(store_snapshot_begin(c->st, &snap), STORE_CONFLICT);
	/* Steps are conditional: a step from the wrong state changes nothing. */
	assert_int_equal(store_migration_advance(c->st, id, "prepared", "transferring", NULL, NULL),
			 STORE_CONFLICT);
	assert_int_equal(store_migration_advance(c->st, id, "requested", "prepared", NULL, NULL), STORE_OK);
	assert_int_equal(store_migration_advance(c->st, id, "prepared", "transferring", NULL, NULL), STORE_OK);
	struct migration_report rep = { .total_ms = 900, .downtime_ms = 40, .ram_bytes = 1, .disk_bytes = 2,
					.log = "aGVsbG8=" };
	assert_int_equal(store_migration_advance(c->st, id, "transferring", "transferred", &rep, NULL),
			 STORE_OK);
	/* The fence: the destination's switch-over wins, the source's late
	 * "failed" then loses. */
	c->hooks = 0;
	assert_int_equal(store_migration_advance(c->st, id, "transferred", "done", NULL, NULL), STORE_OK);
	assert_true(c->hooks > 0);
	assert_int_equal(store_migration_advance(c->st, id, "transferred", "failed", NULL, "late"),
			 STORE_CONFLICT);
	assert_int_equal(store_migration_advance(c->st, id, NULL, "failed", NULL, "late"), STORE_CONFLICT);
	assert_int_equal(store_vm_get_id(c->st, id, &vm), STORE_OK);
	assert_string_equal(vm.host, "b");
	vm_free(&vm);
	assert_int_equal(store_host_get(c->st, "a", &h), STORE_OK);
	assert_int_equal(h.used_mib, 0);
	host_free(&h);
	assert_int_equal(store_host_get(c->st, "b", &h), STORE_OK);
	assert_int_equal(h.used_mib, 500);
	host_free(&h);
	migration_free(&m);
	assert_int_equal(store_migration_get(c->st, id, true, &m), STORE_OK);
	assert_string_equal(m.state, "done");
	assert_null(m.psk);               /* the key goes with the end */
	assert_string_equal(m.log, "aGVsbG8=");
	assert_int_equal(m.downtime_ms, 40);
	migration_free(&m);
	/* Both sides' work is listed until each says it is done. */
	struct migration *v = NULL;
	size_t n = 0;
	assert_int_equal(store_migration_list(c->st, "a", &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	migrations_free(v, n);
	assert_int_equal(store_migration_side_done(c->st, id, true), STORE_OK);
	assert_int_equal(store_migration_side_done(c->st, id, false), STORE_OK);
	assert_int_equal(store_migration_list(c->st, "a", &v, &n), STORE_OK);
	assert_int_equal(n, 0);
	migrations_free(v, n);
	assert_int_equal(store_migration_get(c->st, id, true, &m), STORE_OK);
	assert_null(m.log);               /* taken by the destination */
	migration_free(&m);

	/* Back to a, and this time the source gives up first: the VM stays
	 * on b, a's room is given back, the late switch-over loses. */
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 4, "key2", &m), STORE_OK);
	assert_string_equal(m.dest, "a");
	assert_int_equal(store_migration_advance(c->st, id, "requested", "prepared", NULL, NULL), STORE_OK);
	assert_int_equal(store_migration_advance(c->st, id, "prepared", "transferring", NULL, NULL), STORE_OK);
	assert_int_equal(store_migration_advance(c->st, id, "transferring", "transferred", NULL, NULL), STORE_OK);
	assert_int_equal(store_migration_advance(c->st, id, "transferred", "failed", NULL, "too slow"), STORE_OK);
	assert_int_equal(store_migration_advance(c->st, id, "transferred", "done", NULL, NULL), STORE_CONFLICT);
	assert_int_equal(store_vm_get_id(c->st, id, &vm), STORE_OK);
	assert_string_equal(vm.host, "b");
	vm_free(&vm);
	assert_int_equal(store_host_get(c->st, "a", &h), STORE_OK);
	assert_int_equal(h.used_mib, 0);
	host_free(&h);
	/* Until the source has resumed it, no new migration. */
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 4, "k", &m2), STORE_CONFLICT);
	migration_free(&m);

	/* Ports: two per migration into a host; none left, no migration. */
	at = place_vm(c->st, "w", img, 500, "b", false, &rc);
	free(at);
	assert_int_equal(store_vm_get(c->st, "w", OWNER_ANY, &vm), STORE_OK);
	uint64_t w = vm.id;
	vm_free(&vm);
	assert_int_equal(store_vm_set_state(c->st, w, "running", NULL), STORE_OK);
	assert_int_equal(store_migration_side_done(c->st, id, true), STORE_OK);
	assert_int_equal(store_migration_side_done(c->st, id, false), STORE_OK);
	assert_int_equal(store_migration_request(c->st, id, &p, 7400, 2, "k", &m), STORE_OK);
	assert_int_equal(store_migration_request(c->st, w, &p, 7400, 2, "k", &m2), STORE_FULL);
	assert_non_null(strstr(store_refusal(c->st), "port"));
	migration_free(&m);

	/* drain --migrate: b's next running VM not migrating yet (w), one
	 * at a time. */
	assert_int_equal(store_host_drain_migrate(c->st, "b", 1), STORE_OK);
	uint64_t next = 0;
	assert_int_equal(store_drain_step(c->st, "b", &p, 7500, 8, "k", &next), STORE_FULL);
	assert_int_equal(store_migration_advance(c->st, id, NULL, "failed", NULL, "x"), STORE_OK);
	assert_int_equal(store_drain_step(c->st, "b", &p, 7500, 8, "k", &next), STORE_OK);
	assert_int_equal(next, w);
	assert_int_equal(store_host_set_drain(c->st, "b", false), STORE_OK);
	assert_int_equal(store_drain_step(c->st, "b", &p, 7500, 8, "k", &next), STORE_NOTFOUND);
}

static void hosts_dead_and_evacuation(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "img");
	size_t n = 0, moved = 0;
	int rc;
	char *h;

	add_host(c->st, "a", 2, 1000);
	add_host(c->st, "b", 2, 4000);
	h = place_vm(c->st, "eph", img, 500, "b", true, &rc);
	free(h);
	h = place_vm(c->st, "pet", img, 500, "b", false, &rc);
	free(h);
	/* b falls silent: 20 s later it is dead, a is not (it beat). */
	int64_t later = store_now() + 20;
	assert_int_equal(store_host_heartbeat(c->st, "a", later), STORE_OK);
	c->hooks = 0;
	assert_int_equal(store_hosts_mark_dead(c->st, later, 10, NULL, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_true(c->hooks > 0);
	assert_int_equal(store_hosts_mark_dead(c->st, later, 10, NULL, &n), STORE_OK);
	assert_int_equal(n, 0);
	struct host got = { 0 };
	assert_int_equal(store_host_get(c->st, "b", &got), STORE_OK);
	assert_string_equal(got.state, "dead");
	host_free(&got);
	/* A dead host is no candidate even when pinned. */
	assert_null(place_vm(c->st, "late", img, 100, "b", false, &rc));
	assert_int_equal(rc, STORE_FULL);

	assert_int_equal(store_evacuate_dead(c->st, 4, later, 10, &moved), STORE_OK);
	assert_int_equal(moved, 1);
	struct vm vm = { 0 };
	assert_int_equal(store_vm_get(c->st, "eph", OWNER_ANY, &vm), STORE_OK);
	assert_string_equal(vm.host, "a");
	assert_string_equal(vm.state, "stopped");
	uint64_t eph = vm.id;
	vm_free(&vm);
	assert_int_equal(store_vm_get(c->st, "pet", OWNER_ANY, &vm), STORE_OK);
	assert_string_equal(vm.host, "b");
	assert_string_equal(vm.state, "error");
	assert_non_null(strstr(vm.error, "host b is dead"));
	uint64_t pet = vm.id;
	vm_free(&vm);
	/* Idempotent: a second scheduler finds nothing more to do. */
	assert_int_equal(store_evacuate_dead(c->st, 4, later, 10, &moved), STORE_OK);
	assert_int_equal(moved, 0);
	/* Only the host a VM is placed on may claim it. */
	assert_int_equal(store_vm_claim(c->st, eph, "b"), STORE_NOTFOUND);
	assert_int_equal(store_vm_claim(c->st, eph, "a"), STORE_OK);
	assert_int_equal(store_vm_claim(c->st, pet, "a"), STORE_NOTFOUND);
	/* b beats again: alive, and the change is announced. */
	c->hooks = 0;
	assert_int_equal(store_host_heartbeat(c->st, "b", later + 1), STORE_OK);
	assert_true(c->hooks > 0);
	assert_int_equal(store_host_get(c->st, "b", &got), STORE_OK);
	assert_string_equal(got.state, "live");
	host_free(&got);
	c->hooks = 0;
	assert_int_equal(store_host_heartbeat(c->st, "b", later + 2), STORE_OK);
	assert_int_equal(c->hooks, 0); /* a plain heartbeat is no news */
}

/* ---- network prefixes: pools, the host's routes ------------------------- */

static int allocate_net(struct store *st, const char *name, const char *v6, const char *v4,
			struct net_policy *pol, struct network *out)
{
	struct network n = { .name = (char *)name, .owner = OWNER_ROOT, .ipv6 = (char *)v6,
			     .ipv4 = (char *)v4 };
	int rc = store_network_allocate(st, &n, pol);

	if (rc == STORE_OK && out)
		assert_int_equal(store_network_get(st, name, OWNER_ANY, out), STORE_OK);
	return rc;
}

static struct prefix PFX(const char *s)
{
	struct prefix p;
	assert_true(prefix_from_text(s, &p));
	return p;
}

/* Issue 11, item 4: a network never overlaps another one or a route or
 * address of the host; without a prefix it gets the next free one of the
 * pools, skipping both. */
static void networks_from_pools(void **state)
{
	struct ctx *c = *state;
	struct prefix host[] = { PFX("10.88.0.0/16"), PFX("fd00:1:0:1::/64"), PFX("192.0.2.7/32") };
	struct prefix pool6[] = { PFX("fd00:1::/62") }, pool4[] = { PFX("10.88.0.0/15") };
	struct net_policy pol = { .host = host, .n_host = 3, .pool6 = pool6, .n_pool6 = 1,
				  .pool4 = pool4, .n_pool4 = 1 };
	struct network got = { 0 };

	/* The host's LAN route, and an address of the host, are not for taking. */
	assert_int_equal(allocate_net(c->st, "a", "fd00:9::/64", "10.88.1.0/24", &pol, NULL),
			 STORE_CONFLICT);
	assert_non_null(strstr(pol.why, "10.88.0.0/16"));
	assert_non_null(strstr(pol.why, "host"));
	assert_int_equal(allocate_net(c->st, "a", "fd00:9::/64", "192.0.2.0/24", &pol, NULL),
			 STORE_CONFLICT);
	assert_int_equal(allocate_net(c->st, "a", "fd00:1:0:1::/64", NULL, &pol, NULL),
			 STORE_CONFLICT);
	/* Allocated: the pool's first /64 and the first /24 outside the route. */
	pol.want_ipv4 = true;
	assert_int_equal(allocate_net(c->st, "a", NULL, NULL, &pol, &got), STORE_OK);
	assert_string_equal(got.ipv6, "fd00:1::/64");
	assert_string_equal(got.ipv4, "10.89.0.0/24");
	network_free(&got);
	/* The next skips the network and the host's /64. */
	pol.want_ipv4 = false;
	assert_int_equal(allocate_net(c->st, "b", NULL, NULL, &pol, &got), STORE_OK);
	assert_string_equal(got.ipv6, "fd00:1:0:2::/64");
	assert_null(got.ipv4);
	network_free(&got);
	/* Another network's prefixes are as taken as the host's. */
	assert_int_equal(allocate_net(c->st, "c", "fd00:1:0:2::/64", NULL, &pol, NULL),
			 STORE_CONFLICT);
	assert_non_null(strstr(pol.why, "network"));
	assert_int_equal(allocate_net(c->st, "c", "fd00:7::/64", "10.89.0.128/25", &pol, NULL),
			 STORE_CONFLICT);
	/* Asked for and free: fine (whether a member may ask is the API's). */
	assert_int_equal(allocate_net(c->st, "c", "fd00:7::/64", "10.90.0.0/24", &pol, &got),
			 STORE_OK);
	network_free(&got);
	/* Full: fd00:1:0:3::/64 is the last; then nothing. */
	assert_int_equal(allocate_net(c->st, "d", NULL, NULL, &pol, &got), STORE_OK);
	assert_string_equal(got.ipv6, "fd00:1:0:3::/64");
	network_free(&got);
	assert_int_equal(allocate_net(c->st, "e", NULL, NULL, &pol, NULL), STORE_FULL);
	assert_non_null(strstr(pol.why, "IPv6"));
	/* No IPv4 pool: nothing to allocate from. */
	pol.n_pool4 = 0;
	pol.want_ipv4 = true;
	assert_int_equal(allocate_net(c->st, "e", "fd00:8::/64", NULL, &pol, NULL), STORE_FULL);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM networks"), 4);
	/* A name taken is a conflict with nothing overlapped. */
	pol.want_ipv4 = false;
	assert_int_equal(allocate_net(c->st, "a", "fd00:8::/64", NULL, &pol, NULL), STORE_CONFLICT);
	assert_string_equal(pol.why, "");
}

/* One random ULA /48 per installation, the same on every ask. */
static void ula_prefix_is_stable(void **state)
{
	struct ctx *c = *state;
	char a[64], b[64];
	struct prefix p;

	assert_int_equal(store_ula_prefix(c->st, a, sizeof(a)), STORE_OK);
	assert_int_equal(store_ula_prefix(c->st, b, sizeof(b)), STORE_OK);
	assert_string_equal(a, b);
	assert_true(prefix_from_text(a, &p));
	assert_int_equal(p.len, 48);
	assert_int_equal(p.a[0], 0xfd);
}

/* ---- heartbeats of a host alone ------------------------------------------ */

static int64_t last_seen_of(struct store *st, const char *name)
{
	struct host h = { 0 };
	int64_t seen;
	assert_int_equal(store_host_get(st, name, &h), STORE_OK);
	seen = h.last_seen;
	host_free(&h);
	return seen;
}

/* Issue 12 §6: alone, a host writes no heartbeat (nobody reads it), never
 * marks itself dead, and places VMs on itself whatever its last_seen;
 * once a peer registers, it beats again. */
static void heartbeat_alone_writes_nothing(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "img");
	int64_t later = store_now() + 100;
	size_t n = 0;
	char *h = NULL;

	add_host(c->st, "solo", 4, 4000);
	int64_t seen = last_seen_of(c->st, "solo");
	c->hooks = 0;
	assert_int_equal(store_host_heartbeat(c->st, "solo", later), STORE_OK);
	assert_int_equal(last_seen_of(c->st, "solo"), seen);
	assert_int_equal(c->hooks, 0);
	/* Its own scheduler neither buries it nor skips it. */
	assert_int_equal(store_hosts_mark_dead(c->st, later, 10, "solo", &n), STORE_OK);
	assert_int_equal(n, 0);
	struct placement p = { .cpus = 1, .memory_mib = 100, .cpu_ratio = 4, .now = later,
			       .fresh = 10, .self = "solo" };
	assert_int_equal(store_place(c->st, &p, &h), STORE_OK);
	assert_string_equal(h, "solo");
	free(h);
	p.self = NULL;   /* as another host would see it: too quiet */
	assert_int_equal(store_place(c->st, &p, &h), STORE_FULL);
	struct vm vm = { .name = "v", .owner = OWNER_ROOT, .image = img, .cpus = 1, .memory_mib = 100,
			 .desired = "stopped", .state = "stopped" };
	p.self = "solo";
	assert_int_equal(store_vm_create_placed(c->st, &vm, NULL, 0, &p), STORE_OK);
	/* A peer registers: now somebody reads it. */
	add_host(c->st, "peer", 4, 4000);
	assert_int_equal(store_host_heartbeat(c->st, "solo", later), STORE_OK);
	assert_int_equal(last_seen_of(c->st, "solo"), later);
	/* Marked dead by the peer (it was quiet): its next beat revives it. */
	assert_int_equal(store_hosts_mark_dead(c->st, later + 50, 10, "peer", &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_hosts_mark_dead(c->st, later + 50, 10, "peer", &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_host_heartbeat(c->st, "solo", later + 51), STORE_OK);
	assert_int_equal(last_seen_of(c->st, "solo"), later + 51);
	struct host got = { 0 };
	assert_int_equal(store_host_get(c->st, "solo", &got), STORE_OK);
	assert_string_equal(got.state, "live");
	host_free(&got);
}

/* ---- quotas -------------------------------------------------------------- */

static int create_sized(struct store *st, const char *name, uint64_t owner, uint64_t image,
			int cpus, int mib, int64_t disk, int64_t data)
{
	struct vm_disk d[] = { { .size = data } };
	struct vm vm = { .name = (char *)name, .owner = owner, .image = image, .cpus = cpus,
			 .memory_mib = mib, .desired = "stopped", .state = "stopped",
			 .disk_size = disk, .disks = data ? d : NULL, .n_disks = data ? 1 : 0 };
	return store_vm_create(st, &vm, NULL, 0);
}

/* Issue 14 §2: a snapshot begins only of a VM at rest in the state it
 * says (stopped, or running when live), never while another operation is
 * under way, never twice of a name; its bytes count in disk_bytes; a
 * restore marks the newer ones; the rows go with the VM. */
static void snapshots_rows(void **state)
{
	struct ctx *c = *state;
	uint64_t alice = add_user(c->st, "alice", "member");
	uint64_t img = make_image(c->st, "img");
	int64_t set[QUOTA_N];
	struct snapshot s1 = { .name = "one", .bytes = 1000 }, s2 = { .name = "two", .bytes = 500 };
	struct snapshot dup = { .name = "one" }, live = { .name = "live", .live = true };
	struct snapshot *v = NULL, got = { 0 };
	struct quota_usage qu;
	struct vm vm = { 0 };
	size_t n = 0;

	assert_int_equal(create_sized(c->st, "a1", alice, img, 1, 64, 4096, 0), STORE_OK);
	assert_int_equal(store_vm_get(c->st, "a1", alice, &vm), STORE_OK);
	s1.vm = s2.vm = dup.vm = live.vm = vm.id;
	assert_int_equal(store_snapshot_begin(c->st, &live), STORE_CONFLICT); /* not running */
	assert_int_equal(store_snapshot_begin(c->st, &s1), STORE_OK);
	assert_int_equal(store_snapshot_begin(c->st, &s2), STORE_CONFLICT); /* one is under way */
	assert_int_equal(store_snapshot_ready(c->st, s1.id, 2000), STORE_OK);
	assert_int_equal(store_snapshot_begin(c->st, &dup), STORE_CONFLICT); /* the name */
	assert_int_equal(store_snapshot_begin(c->st, &s2), STORE_OK);
	assert_int_equal(store_snapshot_ready(c->st, s2.id, 500), STORE_OK);
	assert_true(s2.id > s1.id);
	assert_int_equal(store_quota_get(c->st, alice, &qu), STORE_OK);
	assert_int_equal(qu.used[QUOTA_DISK_BYTES], 4096 + 2000 + 500);

	/* Over disk_bytes: refused, nothing written. */
	for (int q = 0; q < QUOTA_N; q++)
		set[q] = QUOTA_KEEP;
	set[QUOTA_DISK_BYTES] = 7000;
	assert_int_equal(store_quota_set(c->st, alice, set), STORE_OK);
	struct snapshot big = { .vm = vm.id, .name = "big", .bytes = 1000 };
	assert_int_equal(store_snapshot_begin(c->st, &big), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'disk_bytes'"));

	/* By ID or name; a restore of the first marks the second too. */
	char ref[16];
	snprintf(ref, sizeof(ref), "%08llx", (unsigned long long)s1.id);
	assert_int_equal(store_snapshot_get(c->st, vm.id, ref, &got), STORE_OK);
	assert_string_equal(got.name, "one");
	snapshot_free(&got);
	assert_int_equal(store_snapshot_get(c->st, vm.id, "nosuch", &got), STORE_NOTFOUND);
	assert_int_equal(store_snapshot_mark(c->st, vm.id, s1.id, "restoring"), STORE_OK);
	assert_int_equal(store_snapshot_mark(c->st, vm.id, s1.id, "restoring"), STORE_CONFLICT);
	assert_int_equal(store_snapshot_unfinished(c->st, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].state, "restoring");
	assert_string_equal(v[1].state, "deleting");
	snapshots_free(v, n);
	assert_int_equal(store_snapshot_remove(c->st, s2.id), STORE_OK);
	assert_int_equal(store_snapshot_ready(c->st, s1.id, 2000), STORE_OK);
	assert_int_equal(store_snapshot_list(c->st, vm.id, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	snapshots_free(v, n);

	assert_int_equal(store_vm_purge(c->st, vm.id), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM snapshots"), 0);
	vm_free(&vm);
}

/* Issue 11, item 12: defaults bind members, a user's own setting wins,
 * a refusal names its quota, a deleted VM no longer counts. */
static void quotas_enforced(void **state)
{
	struct ctx *c = *state;
	uint64_t alice = add_user(c->st, "alice", "member");
	uint64_t adm = add_user(c->st, "adm", "admin");
	uint64_t img = make_image(c->st, "img");
	int64_t defaults[QUOTA_N] = { [QUOTA_VMS] = 2, [QUOTA_VCPUS] = QUOTA_UNLIMITED,
		[QUOTA_MEMORY_MIB] = 1024, [QUOTA_DISK_BYTES] = 3LL << 30, [QUOTA_NETWORKS] = 1,
		[QUOTA_IMAGES] = 2, [QUOTA_IMAGE_BYTES] = 10000 };
	int64_t set[QUOTA_N];
	struct quota_usage qu;
	struct vm vm = { 0 };

	store_set_quota_defaults(c->st, defaults);
	assert_int_equal(create_sized(c->st, "a1", alice, img, 1, 256, 1LL << 30, 0), STORE_OK);
	assert_int_equal(create_sized(c->st, "a2", alice, img, 4, 256, 0, 1LL << 30), STORE_OK);
	assert_int_equal(create_sized(c->st, "a3", alice, img, 1, 128, 0, 0), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'vms'"));
	assert_non_null(strstr(store_refusal(c->st), "alice"));
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), 2);
	/* Deleted: no longer counted. */
	assert_int_equal(store_vm_get(c->st, "a1", alice, &vm), STORE_OK);
	assert_int_equal(store_vm_set_desired(c->st, vm.id, "deleted"), STORE_OK);
	vm_free(&vm);
	/* Memory (256 + 800 > 1024), then disks (1 GiB data + 2.5 GiB > 3 GiB). */
	assert_int_equal(create_sized(c->st, "a3", alice, img, 1, 800, 0, 0), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'memory_mib'"));
	assert_int_equal(create_sized(c->st, "a3", alice, img, 1, 256, 5LL << 29, 0), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'disk_bytes'"));
	assert_int_equal(create_sized(c->st, "a3", alice, img, 1, 256, 1LL << 30, 0), STORE_OK);

	/* Her own settings win over the defaults: more VMs, few vCPUs. */
	for (int q = 0; q < QUOTA_N; q++)
		set[q] = QUOTA_KEEP;
	set[QUOTA_VMS] = QUOTA_UNLIMITED;
	set[QUOTA_VCPUS] = 6;
	assert_int_equal(store_quota_set(c->st, alice, set), STORE_OK);
	assert_int_equal(create_sized(c->st, "a4", alice, img, 2, 64, 0, 0), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'vcpus'"));
	assert_int_equal(create_sized(c->st, "a4", alice, img, 1, 64, 0, 0), STORE_OK);
	assert_int_equal(store_quota_get(c->st, alice, &qu), STORE_OK);
	assert_int_equal(qu.used[QUOTA_VMS], 3);
	assert_int_equal(qu.set[QUOTA_VMS], QUOTA_UNLIMITED);
	assert_int_equal(qu.limit[QUOTA_VMS], QUOTA_UNLIMITED);
	assert_int_equal(qu.used[QUOTA_VCPUS], 6);
	assert_int_equal(qu.limit[QUOTA_VCPUS], 6);
	assert_int_equal(qu.set[QUOTA_MEMORY_MIB], QUOTA_DEFAULT);
	assert_int_equal(qu.limit[QUOTA_MEMORY_MIB], 1024);
	assert_int_equal(qu.used[QUOTA_MEMORY_MIB], 256 + 256 + 64);
	assert_int_equal(qu.used[QUOTA_DISK_BYTES], (1LL << 30) * 2);
	/* Back to the default. */
	set[QUOTA_VMS] = QUOTA_DEFAULT;
	assert_int_equal(store_quota_set(c->st, alice, set), STORE_OK);
	assert_int_equal(store_quota_get(c->st, alice, &qu), STORE_OK);
	assert_int_equal(qu.limit[QUOTA_VMS], 2);

	/* Networks, images (count at create, bytes at finalize). */
	assert_int_equal(owned_net(c->st, "n1", alice, "fd00:1::/64"), 1);
	struct network n2 = { .name = "n2", .owner = alice, .ipv6 = "fd00:2::/64" };
	assert_int_equal(store_network_create(c->st, &n2), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'networks'"));
	struct image i1 = { .name = "i1", .owner = alice, .format = "kernel", .boot = "kernel" };
	struct image i2 = { .name = "i2", .owner = alice, .format = "kernel", .boot = "kernel" };
	struct image i3 = { .name = "i3", .owner = alice, .format = "kernel", .boot = "kernel" };
	assert_int_equal(store_image_create(c->st, &i1), STORE_OK);
	assert_int_equal(store_image_create(c->st, &i2), STORE_OK);
	assert_int_equal(store_image_create(c->st, &i3), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'images'"));
	assert_int_equal(store_image_finalize(c->st, i1.id, SHA_A, "kernel", 6000), STORE_OK);
	assert_int_equal(store_image_finalize(c->st, i2.id, SHA_A, "kernel", 6000), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'image_bytes'"));
	assert_int_equal(store_image_finalize(c->st, i2.id, SHA_A, "kernel", 4000), STORE_OK);

	/* An admin is bound by its own settings only. */
	for (int i = 0; i < 4; i++) {
		char name[8];
		snprintf(name, sizeof(name), "d%d", i);
		assert_int_equal(create_sized(c->st, name, adm, img, 1, 512, 0, 0), STORE_OK);
	}
	for (int q = 0; q < QUOTA_N; q++)
		set[q] = QUOTA_KEEP;
	set[QUOTA_VMS] = 4;
	assert_int_equal(store_quota_set(c->st, adm, set), STORE_OK);
	assert_int_equal(create_sized(c->st, "d4", adm, img, 1, 512, 0, 0), STORE_QUOTA);
	assert_int_equal(store_quota_set(c->st, 999, set), STORE_NOTFOUND);
}

#define RACERS 4
#define RACE_TRIES 4
#define RACE_QUOTA 5

static uint64_t race_owner, race_image;
static int race_pipe[2];

static int child_race(struct ctx *c, int who)
{
	char *err = NULL;
	struct store *st = store_open(c->uri, c->dir, &err);
	int64_t defaults[QUOTA_N] = { [QUOTA_VMS] = RACE_QUOTA };
	int won = 0, failed = 0;

	if (st == NULL) {
		free(err);
		return 1;
	}
	for (int q = 1; q < QUOTA_N; q++)
		defaults[q] = QUOTA_UNLIMITED;
	store_set_quota_defaults(st, defaults);
	for (int i = 0; i < RACE_TRIES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "r%d-%d", who, i);
		int rc = create_sized(st, name, race_owner, race_image, 1, 64, 0, 0);
		won += rc == STORE_OK;
		failed += rc != STORE_OK && rc != STORE_QUOTA;
	}
	failed += write(race_pipe[1], &won, sizeof(won)) != (ssize_t)sizeof(won);
	store_close(st);
	return failed ? 1 : 0;
}

/* Creates racing from several processes never pass a quota together:
 * the check runs in the create's own (serialised) transaction. */
static void quotas_hold_under_races(void **state)
{
	struct ctx *c = *state;
	int won[RACERS], total = 0;

	race_owner = add_user(c->st, "alice", "member");
	race_image = make_image(c->st, "img");
	assert_int_equal(pipe(race_pipe), 0);
	assert_int_equal(in_children(RACERS, child_race, c), 0);
	close(race_pipe[1]);
	assert_int_equal(read(race_pipe[0], won, sizeof(won)), (ssize_t)sizeof(won));
	close(race_pipe[0]);
	for (int i = 0; i < RACERS; i++)
		total += won[i];
	assert_int_equal(total, RACE_QUOTA);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM vms"), RACE_QUOTA);
}

/* Every host's kept load equals what its VMs (not deleted) ask for. */
static void assert_load_kept(struct store *st)
{
	assert_int_equal(count_rows(st, "SELECT COUNT(*) FROM hosts h WHERE"
		" h.vms <> (SELECT COUNT(*) FROM vms v WHERE v.host = h.name AND v.desired <> 'deleted')"
		" OR h.used_cpus <> (SELECT COALESCE(SUM(v.cpus), 0) FROM vms v"
		" WHERE v.host = h.name AND v.desired <> 'deleted')"
		" OR h.used_mib <> (SELECT COALESCE(SUM(v.memory_mib), 0) FROM vms v"
		" WHERE v.host = h.name AND v.desired <> 'deleted')"), 0);
}

/* Issue 12 §6: the load is kept by the transactions that change it —
 * create, delete, undelete, purge, evacuation — and registration heals a
 * row that went wrong. */
static void hosts_load_kept(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "img");
	struct vm vm = { 0 };
	size_t moved = 0, n = 0;
	struct host got = { 0 };
	int rc;
	char *h;

	add_host(c->st, "a", 4, 8000);
	add_host(c->st, "b", 4, 1000);
	for (int i = 0; i < 6; i++) {
		char name[8];
		snprintf(name, sizeof(name), "v%d", i);
		h = place_vm(c->st, name, img, 100 + 50 * i, i < 3 ? "b" : NULL, i == 1, &rc);
		assert_int_equal(rc, STORE_OK);
		free(h);
	}
	assert_load_kept(c->st);
	assert_int_equal(store_vm_get(c->st, "v0", OWNER_ANY, &vm), STORE_OK);
	assert_int_equal(store_vm_set_desired(c->st, vm.id, "stopped"), STORE_OK);
	assert_load_kept(c->st);
	assert_int_equal(store_vm_set_desired(c->st, vm.id, "deleted"), STORE_OK);
	assert_load_kept(c->st);
	assert_int_equal(store_vm_set_desired(c->st, vm.id, "deleted"), STORE_OK);
	assert_load_kept(c->st);
	assert_int_equal(store_vm_purge(c->st, vm.id), STORE_OK);
	vm_free(&vm);
	assert_load_kept(c->st);
	assert_int_equal(store_vm_get(c->st, "v2", OWNER_ANY, &vm), STORE_OK);
	assert_int_equal(store_vm_purge(c->st, vm.id), STORE_OK);   /* purged while counted */
	vm_free(&vm);
	assert_load_kept(c->st);
	/* b dies: its ephemeral v1 moves to a, counted there. */
	int64_t later = store_now() + 20;
	assert_int_equal(store_host_heartbeat(c->st, "a", later), STORE_OK);
	assert_int_equal(store_hosts_mark_dead(c->st, later, 10, NULL, &n), STORE_OK);
	assert_int_equal(store_evacuate_dead(c->st, 4, later, 10, &moved), STORE_OK);
	assert_int_equal(moved, 1);
	assert_load_kept(c->st);
	assert_int_equal(store_host_get(c->st, "b", &got), STORE_OK);
	assert_int_equal(got.vms, 0);
	host_free(&got);
	/* A row gone wrong (an older hcd, a hand edit) heals at registration. */
	assert_int_equal(store_q(c->st, "UPDATE hosts SET used_mib = 12345 WHERE name = 'a'",
				 NULL, 0, NULL, NULL), STORE_OK);
	add_host(c->st, "a", 4, 8000);
	assert_load_kept(c->st);
}

/* Issue 14 §3: a resize moves its host's load in its own transaction and
 * is refused, changing nothing, beyond the host's room, the owner's
 * quotas, a running VM's ceilings, or while it starts; disks only grow. */
static void vm_resize_rules(void **state)
{
	struct ctx *c = *state;
	uint64_t alice = add_user(c->st, "alice", "member");
	uint64_t img = make_image(c->st, "img");
	struct vm_disk d[] = { { .size = 1 << 20 } };
	struct vm vm = { .name = "r", .owner = alice, .image = img, .cpus = 1, .memory_mib = 256,
			 .desired = "stopped", .state = "stopped", .host = "a", .disks = d,
			 .n_disks = 1 };
	struct vm_resize rs = { .cpus = 2, .memory_mib = 512, .cpu_ratio = 1 };
	struct vm got = { 0 };
	int64_t set[QUOTA_N];

	add_host(c->st, "a", 2, 1000);
	assert_int_equal(store_vm_create(c->st, &vm, NULL, 0), STORE_OK);
	/* Stopped: any size the host has room for; its load follows. */
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_OK);
	assert_load_kept(c->st);
	rs = (struct vm_resize){ .memory_mib = 1001, .cpu_ratio = 1 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_FULL);
	assert_non_null(strstr(store_refusal(c->st), "MiB of memory free"));
	rs = (struct vm_resize){ .cpus = 3, .cpu_ratio = 1 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_FULL);
	rs.cpu_ratio = 2;
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_OK);
	assert_load_kept(c->st);
	/* The owner's quotas count growth only. */
	for (int q = 0; q < QUOTA_N; q++)
		set[q] = QUOTA_KEEP;
	set[QUOTA_VCPUS] = 3;
	set[QUOTA_MEMORY_MIB] = 600;
	set[QUOTA_DISK_BYTES] = 4 << 20;
	assert_int_equal(store_quota_set(c->st, alice, set), STORE_OK);
	rs = (struct vm_resize){ .cpus = 4, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'vcpus'"));
	rs = (struct vm_resize){ .memory_mib = 700, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_QUOTA);
	rs = (struct vm_resize){ .cpus = 1, .memory_mib = 128, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_OK);
	assert_load_kept(c->st);
	/* Running in a QEMU that has no ceilings recorded: refused. */
	assert_int_equal(store_vm_set_state(c->st, vm.id, "running", NULL), STORE_OK);
	rs = (struct vm_resize){ .memory_mib = 100, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_CONFLICT);
	assert_non_null(strstr(store_refusal(c->st), "stop it"));
	/* Booted with 128 MiB and maxcpus 2: within them, not beyond. */
	int mem = -1, maxcpus = -1;
	bool nic_slots = true;
	assert_int_equal(store_migration_ceilings(c->st, vm.id, &mem, &maxcpus, &nic_slots), STORE_OK);
	assert_false(nic_slots);     /* a QEMU from before: no slots */
	assert_int_equal(store_vm_ceilings_set(c->st, vm.id, 2), STORE_OK);
	assert_int_equal(store_migration_ceilings(c->st, vm.id, &mem, &maxcpus, &nic_slots), STORE_OK);
	assert_int_equal(mem, 128);
	assert_int_equal(maxcpus, 2);
	assert_true(nic_slots);      /* the QEMU starting now has its NICs in their slots */
	assert_int_equal(store_vm_get_id(c->st, vm.id, &got), STORE_OK);
	assert_true(got.run_nic_slots);
	vm_free(&got);
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_OK);
	rs = (struct vm_resize){ .memory_mib = 129, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_CONFLICT);
	assert_non_null(strstr(store_refusal(c->st), "started with 128 MiB"));
	rs = (struct vm_resize){ .cpus = 3, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_CONFLICT);
	rs = (struct vm_resize){ .cpus = 2, .memory_mib = 128, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_OK);
	assert_int_equal(store_vm_set_state(c->st, vm.id, "starting", NULL), STORE_OK);
	rs = (struct vm_resize){ .cpus = 1, .cpu_ratio = 4 };
	assert_int_equal(store_vm_resize(c->st, vm.id, &rs), STORE_CONFLICT);
	assert_int_equal(store_vm_get_id(c->st, vm.id, &got), STORE_OK);
	assert_int_equal(got.cpus, 2);
	assert_int_equal(got.memory_mib, 128);
	vm_free(&got);
	assert_load_kept(c->st);
	/* Disks: a kernel image's VM without disk_size has no root disk. */
	assert_int_equal(store_vm_disk_grow(c->st, vm.id, -1, 2 << 20), STORE_NOTFOUND);
	assert_int_equal(store_vm_disk_grow(c->st, vm.id, 1, 2 << 20), STORE_NOTFOUND);
	assert_int_equal(store_vm_disk_grow(c->st, vm.id, 0, 512 << 10), STORE_CONFLICT);
	assert_non_null(strstr(store_refusal(c->st), "only grows"));
	assert_int_equal(store_vm_disk_grow(c->st, vm.id, 0, 1 << 20), STORE_OK);
	assert_int_equal(store_vm_disk_grow(c->st, vm.id, 0, 8 << 20), STORE_QUOTA);
	assert_non_null(strstr(store_refusal(c->st), "'disk_bytes'"));
	assert_int_equal(store_vm_disk_grow(c->st, vm.id, 0, 4 << 20), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, vm.id, &got), STORE_OK);
	assert_int_equal(got.disks[0].size, 4 << 20);
	vm_free(&got);
}

/* ---- routed prefixes and public IPv4 (prefixes.c) --------------------------- */

static uint64_t make_user(struct store *st, const char *name)
{
	struct user u = { .name = (char *)name, .role = "member", .auth = "file", .enabled = true };
	assert_int_equal(store_user_create(st, &u), STORE_OK);
	return u.id;
}

static void prefixes_allocate_list_free(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	/* A network inside the pool: its /64 is never handed out. */
	uint64_t lan = make_net(c->st, "lan", "2001:db8:100::/64", "10.0.0.0/24");
	uint64_t v6 = make_net(c->st, "v6", "2001:db8:20::/64", NULL);
	uint64_t nets[2] = { lan, v6 }, a, b;
	struct prefix *pool = NULL;
	size_t n_pool = 0;
	struct vm_prefix p, *list = NULL;
	struct vm vm = { 0 };
	size_t n = 0;
	char *err = NULL;

	assert_int_equal(prefix_pool_parse("2001:db8:100::/60", &pool, &n_pool, &err), 0);
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, nets, 2, &a), STORE_OK);
	uint64_t alice = make_user(c->st, "alice");
	assert_int_equal(make_vm(c->st, "b", alice, img, &lan, 1, &b), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	uint64_t nic_a0 = vm.nics[0].id, nic_a1 = vm.nics[1].id;
	vm_free(&vm);

	int hooks = c->hooks;
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, a, nic_a0, 64, 0, 0, &p), STORE_OK);
	assert_string_equal(p.prefix, "2001:db8:100:1::/64");   /* :: is lan's /64 */
	assert_int_equal(p.vm, a);
	assert_int_equal(p.nic, nic_a0);
	assert_true(c->hooks > hooks);                          /* the agent routes it */
	free(p.prefix);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, a, nic_a1, 62, 0, 0, &p), STORE_OK);
	assert_string_equal(p.prefix, "2001:db8:100:4::/62");   /* aligned */
	free(p.prefix);
	/* Not a NIC of that VM; the pool's own length is the most there is. */
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, b, nic_a0, 64, 0, 0, &p), STORE_NOTFOUND);
	assert_null(p.prefix);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, a, nic_a0, 60, 0, 0, &p), STORE_FULL);

	/* A network may not take a routed prefix (its route would go). */
	struct net_policy pol = { 0 };
	assert_int_equal(allocate_net(c->st, "clash", "2001:db8:100:6::/64", NULL, &pol, NULL), STORE_CONFLICT);

	/* A loaded VM carries them, per NIC. */
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	assert_int_equal(vm.nics[0].n_prefixes, 1);
	assert_string_equal(vm.nics[0].prefixes[0], "2001:db8:100:1::/64");
	assert_int_equal(vm.nics[1].n_prefixes, 1);
	assert_string_equal(vm.nics[1].prefixes[0], "2001:db8:100:4::/62");
	vm_free(&vm);

	/* Limits: per VM, per owner. */
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, a, nic_a0, 64, 2, 0, &p), STORE_CONFLICT);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, a, nic_a0, 64, 3, 2, &p), STORE_CONFLICT);
	uint64_t nic_b;
	assert_int_equal(store_vm_get_id(c->st, b, &vm), STORE_OK);
	nic_b = vm.nics[0].id;
	vm_free(&vm);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, b, nic_b, 64, 1, 1, &p), STORE_OK);
	assert_string_equal(p.prefix, "2001:db8:100:2::/64");
	free(p.prefix);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, b, nic_b, 64, 0, 1, &p), STORE_CONFLICT);

	assert_int_equal(store_prefix_list(c->st, 0, &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(list[2].vm, b);
	vm_prefixes_free(list, n);
	assert_int_equal(store_prefix_list(c->st, b, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	vm_prefixes_free(list, n);

	/* Removed by address; then handed out again, lowest first. */
	assert_int_equal(store_prefix_remove(c->st, b, "2001:db8:100:1::"), STORE_NOTFOUND);
	assert_int_equal(store_prefix_remove(c->st, a, "2001:db8:100:1::"), STORE_OK);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, b, nic_b, 64, 0, 0, &p), STORE_OK);
	assert_string_equal(p.prefix, "2001:db8:100:1::/64");
	free(p.prefix);

	/* Unplugging the NIC frees its prefixes; purging the VM frees the rest. */
	assert_int_equal(store_nic_remove(c->st, a, nic_a1), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM prefixes WHERE address = '2001:db8:100:4::'"), 0);
	assert_int_equal(store_vm_set_desired(c->st, b, "deleted"), STORE_OK);
	assert_int_equal(store_prefix_add(c->st, pool, n_pool, b, nic_b, 64, 0, 0, &p), STORE_NOTFOUND);
	assert_int_equal(store_vm_purge(c->st, b), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM prefixes"), 0);
	free(pool);
}

static void public_ipv4_attach_list_detach(void **state)
{
	struct ctx *c = *state;
	uint64_t img = make_image(c->st, "tiny");
	uint64_t lan = make_net(c->st, "lan", "2001:db8:10::/64", "10.0.0.0/24");
	uint64_t v6 = make_net(c->st, "v6", "2001:db8:20::/64", NULL);
	uint64_t nets[2] = { lan, v6 }, a, b;
	struct pool4 pool;
	struct public4 p, *list = NULL;
	struct vm vm = { 0 };
	size_t n = 0;
	char *err = NULL;

	assert_int_equal(pool4_parse("198.51.100.0/30", &pool, &err), 0);    /* .1 and .2 */
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, nets, 2, &a), STORE_OK);
	uint64_t alice = make_user(c->st, "alice");
	assert_int_equal(make_vm(c->st, "b", alice, img, &lan, 1, &b), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	uint64_t nic_a0 = vm.nics[0].id, nic_a1 = vm.nics[1].id;
	vm_free(&vm);
	assert_int_equal(store_vm_get_id(c->st, b, &vm), STORE_OK);
	uint64_t nic_b = vm.nics[0].id;
	vm_free(&vm);

	assert_int_equal(store_public4_attach(c->st, &pool, a, nic_a0, NULL, 0, &p), STORE_OK);
	assert_string_equal(p.address, "198.51.100.1");
	assert_string_equal(p.private_ipv4, "10.0.0.2");
	free(p.address);
	free(p.private_ipv4);
	/* One per NIC; none for a NIC without IPv4; an address once. */
	assert_int_equal(store_public4_attach(c->st, &pool, a, nic_a0, NULL, 0, &p), STORE_CONFLICT);
	assert_int_equal(store_public4_attach(c->st, &pool, a, nic_a1, NULL, 0, &p), STORE_NOTFOUND);
	assert_int_equal(store_public4_attach(c->st, &pool, b, nic_b, "198.51.100.1", 0, &p), STORE_CONFLICT);
	assert_int_equal(store_public4_attach(c->st, &pool, b, nic_a0, NULL, 0, &p), STORE_NOTFOUND);
	/* The owner's cap counts over all its VMs. */
	assert_int_equal(store_public4_attach(c->st, &pool, b, nic_b, NULL, 1, &p), STORE_OK);
	assert_string_equal(p.address, "198.51.100.2");
	free(p.address);
	free(p.private_ipv4);

	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	assert_string_equal(vm.nics[0].public_ipv4, "198.51.100.1");
	assert_null(vm.nics[1].public_ipv4);
	vm_free(&vm);

	assert_int_equal(store_public4_list(c->st, OWNER_ANY, &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[1].address, "198.51.100.2");
	assert_string_equal(list[1].vm_name, "b");
	assert_int_equal(list[1].owner, alice);
	assert_string_equal(list[1].private_ipv4, "10.0.0.3");
	public4s_free(list, n);
	assert_int_equal(store_public4_list(c->st, alice, &list, &n), STORE_OK);
	assert_int_equal(n, 1);
	public4s_free(list, n);

	/* The pool is used up; detaching gives the address back. */
	assert_int_equal(make_vm(c->st, "c", OWNER_ROOT, img, &lan, 1, &a), STORE_OK);
	assert_int_equal(store_vm_get_id(c->st, a, &vm), STORE_OK);
	uint64_t nic_c = vm.nics[0].id;
	vm_free(&vm);
	assert_int_equal(store_public4_attach(c->st, &pool, a, nic_c, NULL, 0, &p), STORE_FULL);
	assert_int_equal(store_public4_detach(c->st, a, "198.51.100.2"), STORE_NOTFOUND);
	assert_int_equal(store_public4_detach(c->st, b, "198.51.100.2"), STORE_OK);
	assert_int_equal(store_public4_attach(c->st, &pool, a, nic_c, NULL, 0, &p), STORE_OK);
	assert_string_equal(p.address, "198.51.100.2");
	free(p.address);
	free(p.private_ipv4);
	/* With its NIC. */
	assert_int_equal(store_vm_purge(c->st, a), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM public_ipv4"), 1);
	pool4_free(&pool);
}

/* ---- the event log and the audit trail (issue 15 §2) -------------------- */

static int event_hooks;

static void on_events(void *arg)
{
	(void)arg;
	event_hooks++;
}

/* A renderer as the API's, smaller: the VM's state and desire, or the
 * host's drain; nothing for a VM already deleted but its deletion. */
static char *test_render(void *arg, struct store *st, const char *kind, const char *ref,
			 const char *action, uint64_t *owner)
{
	(void)arg;
	if (strcmp(kind, "host") == 0) {
		struct host h = { 0 };
		if (store_host_get(st, ref, &h) != STORE_OK)
			return NULL;
		char *out = str_printf("host %s %s drain=%d", ref, action, h.drain);
		host_free(&h);
		return out;
	}
	struct vm vm = { 0 };
	uint64_t id;
	assert_true(vm_id_parse(ref, &id));
	if (store_vm_get_id(st, id, &vm) != STORE_OK)
		return NULL;
	*owner = vm.owner;
	char *out = strcmp(vm.desired, "deleted") == 0 && strcmp(action, "deleted") != 0 ? NULL
		: str_printf("vm %s %s %s/%s", ref, action, vm.state, vm.desired);
	vm_free(&vm);
	return out;
}

static void expect_events(struct store *st, uint64_t after, const char *const *want)
{
	struct event_row *v = NULL;
	size_t n = 0, i;

	assert_int_equal(store_events_after(st, after, 100, &v, &n), STORE_OK);
	for (i = 0; want[i]; i++) {
		assert_true(i < n);
		assert_string_equal(v[i].data, want[i]);
		assert_int_equal(v[i].seq, after + 1 + i);   /* gapless, in commit order */
	}
	assert_int_equal(n, i);
	event_rows_free(v, n);
}

static void events_log(void **state)
{
	struct ctx *c = *state;
	uint64_t img, id, first, last;
	struct host h = { .name = "h1", .cpus = 2, .memory_mib = 1024 };

	/* Without a renderer (the API not started) nothing is recorded. */
	img = make_image(c->st, "tiny");
	assert_int_not_equal(make_vm(c->st, "early", 7, img, NULL, 0, NULL), STORE_OK);   /* no user 7 */
	assert_int_equal(make_vm(c->st, "early", OWNER_ROOT, img, NULL, 0, &id), STORE_OK);
	assert_int_equal(store_events_bounds(c->st, &first, &last), STORE_OK);
	assert_int_equal(last, 0);

	store_set_event_render(c->st, test_render, NULL);
	store_set_event_hook(c->st, on_events, NULL);
	event_hooks = 0;
	c->hooks = 0;
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &id), STORE_OK);
	vm_id_str ref = vm_id_format(id);
	/* The agent's observations: events (the streams' business), but no
	 * change hook (the agents' business). */
	int hooks = c->hooks;
	assert_int_equal(store_vm_claim(c->st, id, "h0"), STORE_NOTFOUND);   /* no host yet */
	assert_int_equal(store_vm_set_state(c->st, id, "starting", NULL), STORE_OK);
	assert_int_equal(store_vm_set_state(c->st, id, "starting", NULL), STORE_OK);  /* no news */
	assert_int_equal(store_vm_set_state(c->st, id, "running", NULL), STORE_OK);
	assert_int_equal(c->hooks, hooks);
	assert_int_equal(store_vm_set_desired(c->st, id, "deleted"), STORE_OK);
	/* Nothing more to tell of a deleted VM. */
	assert_int_equal(store_vm_set_state(c->st, id, "stopping", NULL), STORE_OK);
	assert_int_equal(store_vm_purge(c->st, id), STORE_OK);
	/* A rolled-back change records nothing. */
	assert_int_not_equal(make_vm(c->st, "bad", 7, img, NULL, 0, NULL), STORE_OK);
	assert_int_equal(store_host_register(c->st, &h), STORE_OK);
	assert_int_equal(store_host_set_drain(c->st, "h1", true), STORE_OK);
	assert_int_equal(store_host_set_drain(c->st, "nope", true), STORE_NOTFOUND);

	char w[5][64];
	snprintf(w[0], 64, "vm %s created stopped/running", ref.s);
	snprintf(w[1], 64, "vm %s updated starting/running", ref.s);
	snprintf(w[2], 64, "vm %s updated running/running", ref.s);
	snprintf(w[3], 64, "vm %s deleted stopped/deleted", ref.s);
	const char *const want[] = { w[0], w[1], w[2], w[3], "host h1 updated drain=0",
				     "host h1 updated drain=1", NULL };
	/* set_state to "stopping" of the deleted VM changed its row: the
	 * deletion event shows it as it was then. */
	snprintf(w[3], 64, "vm %s deleted running/deleted", ref.s);
	expect_events(c->st, 0, want);
	assert_int_equal(event_hooks, 6);
	assert_int_equal(store_events_bounds(c->st, &first, &last), STORE_OK);
	assert_int_equal(first, 1);
	assert_int_equal(last, 6);

	/* Scope: the row carries the owner; hosts are for admins. */
	struct event_row *v = NULL;
	size_t n = 0;
	assert_int_equal(store_events_after(c->st, 3, 10, &v, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].owner, OWNER_ROOT);
	assert_string_equal(v[0].action, "deleted");
	assert_string_equal(v[0].ref, ref.s);
	assert_int_equal(v[1].owner, OWNER_ANY);
	assert_string_equal(v[1].kind, "host");
	event_rows_free(v, n);

	/* Pruning by age, oldest first, in batches. */
	size_t gone = 0;
	assert_int_equal(store_q(c->st, "UPDATE events SET created = 100 WHERE seq <= 4", NULL, 0,
				 NULL, NULL), STORE_OK);
	assert_int_equal(store_events_prune(c->st, 1000, 3, &gone), STORE_OK);
	assert_int_equal(gone, 3);
	assert_int_equal(store_events_prune(c->st, 1000, 3, &gone), STORE_OK);
	assert_int_equal(gone, 1);
	assert_int_equal(store_events_bounds(c->st, &first, &last), STORE_OK);
	assert_int_equal(first, 5);
	assert_int_equal(last, 6);
	/* Numbers go on after a prune. */
	assert_int_equal(store_host_set_drain(c->st, "h1", false), STORE_OK);
	expect_events(c->st, 6, (const char *const[]){ "host h1 updated drain=0", NULL });
}

static struct audit_entry entry(const char *host, uint64_t seq, int64_t t, uint64_t user,
				const char *route, int status)
{
	return (struct audit_entry){ .host = (char *)host, .seq = seq, .time = t, .user = user,
				     .source = "unix:0", .method = "POST", .route = (char *)route,
				     .ref = "x", .status = status, .result = status < 400 ? "ok" : "conflict" };
}

static void audit_rows(void **state)
{
	struct ctx *c = *state;
	struct user u = { .name = "alice", .role = "member", .auth = "file", .enabled = true };
	struct audit_entry *v = NULL;
	size_t n = 0;
	uint64_t last;

	assert_int_equal(store_user_create(c->st, &u), STORE_OK);
	struct audit_entry batch[] = {
		entry("a", 1, 1000, OWNER_ROOT, "/v1/vms", 201),
		entry("a", 2, 2000, u.id, "/v1/vms/{}/start", 202),
		entry("b", 1, 3000, u.id, "/v1/vms/{}", 409),
		entry("a", 3, 4000, OWNER_ANY, "/v1/login", 401),
	};
	c->hooks = 0;
	assert_int_equal(store_audit_add(c->st, batch, 4), STORE_OK);
	/* A journal replayed after a crash adds nothing twice. */
	assert_int_equal(store_audit_add(c->st, batch, 4), STORE_OK);
	assert_int_equal(count_rows(c->st, "SELECT COUNT(*) FROM audit"), 4);
	assert_int_equal(c->hooks, 0);   /* no change of intent */
	assert_int_equal(store_audit_last_seq(c->st, "a", &last), STORE_OK);
	assert_int_equal(last, 3);
	assert_int_equal(store_audit_last_seq(c->st, "z", &last), STORE_OK);
	assert_int_equal(last, 0);

	/* All, oldest first; names as recorded; none for the anonymous. */
	assert_int_equal(store_audit_list(c->st, NULL, 0, 100, &v, &n), STORE_OK);
	assert_int_equal(n, 4);
	assert_int_equal(v[0].time, 1000);
	assert_string_equal(v[0].user_name, "root");
	assert_string_equal(v[1].user_name, "alice");
	assert_string_equal(v[2].host, "b");
	assert_int_equal(v[2].status, 409);
	assert_string_equal(v[2].result, "conflict");
	assert_null(v[3].user_name);
	assert_int_equal(v[3].user, OWNER_ANY);
	audit_entries_free(v, n);
	/* By user, since, and the newest of a limit. */
	assert_int_equal(store_audit_list(c->st, "alice", 0, 100, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	audit_entries_free(v, n);
	assert_int_equal(store_audit_list(c->st, NULL, 2500, 100, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].time, 3000);
	audit_entries_free(v, n);
	assert_int_equal(store_audit_list(c->st, NULL, 0, 2, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].time, 3000);
	assert_int_equal(v[1].time, 4000);
	audit_entries_free(v, n);

	/* The name stays when the user goes. */
	assert_int_equal(store_user_delete(c->st, u.id), STORE_OK);
	assert_int_equal(store_audit_list(c->st, "alice", 0, 100, &v, &n), STORE_OK);
	assert_int_equal(n, 2);
	audit_entries_free(v, n);

	/* Pruning: what is older than the cutoff goes, in bounded batches. */
	size_t gone = 0;
	assert_int_equal(store_audit_prune(c->st, 3500, 2, &gone), STORE_OK);
	assert_int_equal(gone, 2);
	assert_int_equal(store_audit_prune(c->st, 3500, 2, &gone), STORE_OK);
	assert_int_equal(gone, 1);
	assert_int_equal(store_audit_prune(c->st, 3500, 2, &gone), STORE_OK);
	assert_int_equal(gone, 0);
	assert_int_equal(store_audit_list(c->st, NULL, 0, 100, &v, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].time, 4000);
	audit_entries_free(v, n);
}

/* The event log has a channel of its own: another handle hears a state
 * the agent observed as an event, and its agent is not woken. */
static void pg_events_channel(void **state)
{
	struct ctx *c = *state;
	struct store *b = open_other(c);
	uint64_t img, id;
	int events = 0;

	store_set_event_render(c->st, test_render, NULL);
	img = make_image(c->st, "tiny");
	assert_int_equal(make_vm(c->st, "a", OWNER_ROOT, img, NULL, 0, &id), STORE_OK);
	assert_true(store_notify_fd(b) >= 0);
	(void)heard(b, 300, NULL);
	(void)store_events_drain(b);
	assert_int_equal(store_vm_set_state(c->st, id, "running", NULL), STORE_OK);
	long long start = mono_ms();
	while (events == 0 && mono_ms() - start < 2000) {
		struct pollfd p = { .fd = store_notify_fd(b), .events = POLLIN };
		if (poll(&p, 1, 100) > 0)
			assert_int_equal(store_notify_drain(b), 0);   /* no agent wakes */
		events += store_events_drain(b);
	}
	assert_int_equal(events, 1);
	/* A change of intent: both channels. */
	assert_int_equal(store_vm_set_desired(c->st, id, "stopped"), STORE_OK);
	assert_int_equal(heard(b, 1000, NULL), 1);
	assert_int_equal(store_events_drain(b), 1);
	store_close(b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	/* On every engine. */
	const struct CMUnitTest tests[] = {
		T(open_migrates),
		T(reopen_is_idempotent),
		T(image_lifecycle),
		T(image_delete_in_use_conflicts),
		T(network_lifecycle),
		T(network_delete_in_use_conflicts),
		T(vm_create_ids_and_nics),
		T(nic_pci_slots),
		T(nic_pci_slot_backfill),
		T(vm_duplicate_name_conflicts),
		T(vm_create_is_atomic),
		T(vm_soft_delete_and_purge),
		T(vm_set_state),
		T(ipv4_pool_exhaustion),
		T(counter_exhaustion),
		T(change_hook),
		T(announce_interface),
		T(keys_and_user_data),
		T(vm_list_is_light),
		T(image_import_rows),
		T(vm_disks_roundtrip),
		T(vm_metadata_tokens),
		T(users_and_tokens),
		T(references_own_first),
		T(sqlite_commits_are_durable),
		T(hosts_spread_pin_drain),
		T(hosts_dead_and_evacuation),
		T(migrations_state_machine),
		T(hosts_load_kept),
		T(vm_resize_rules),
		T(heartbeat_alone_writes_nothing),
		T(quotas_enforced),
		T(snapshots_rows),
		T(networks_from_pools),
		T(ula_prefix_is_stable),
		T(quotas_hold_under_races),
		T(engine_values_and_errors),
		T(prefixes_allocate_list_free),
		T(public_ipv4_attach_list_detach),
		T(events_log),
		T(audit_rows),
	};
	/* About store_open's URIs and files; no server needed. */
	const struct CMUnitTest open_tests[] = {
		T(open_rejects_bad_uri),
		T(open_default_path_in_state_dir),
	};
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(pg_concurrent_migrations, setup_empty, teardown),
		T(pg_concurrent_writers),
		T(pg_reconnects_after_restart),
		T(pg_announce_across_handles),
		T(pg_announce_only_commits),
		T(pg_listener_after_restart),
		T(pg_events_channel),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("open", open_tests, NULL, NULL);
	pg_uri = getenv("HC_TEST_PG");
	if (pg_uri && *pg_uri) {
		failed += cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
		failed += cmocka_run_group_tests_name("postgresql only", pg_tests, NULL, NULL);
	}
	return failed;
}
