/*
 * test_qemu_argv — the QEMU argv of a VM (src/vm/qemu_argv.h, DESIGN §5):
 * kernel boot (kernel, initrd, cmdline as one argument) and disk boot
 * (a qcow2 overlay on a raw or qcow2 image), tcg and kvm, NICs as tap
 * descriptors with their MACs, the sandbox (no daemonizing, no change of
 * user, spawning denied), QMP and serial chardevs on passed sockets, the
 * NoCloud seed as an IDE CD-ROM, extra data disks after the root disk
 * (also on a kernel image with or without a root disk), and the escaping
 * of commas in option values.
 *
 * The block layer is checked as a graph (issue 11 item 1): every disk is
 * explicit -blockdev nodes, every format node names its file node and
 * its backing (a node defined before it, or null), so QEMU follows no
 * file name written inside an image.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vm/qemu_argv.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct qemu_nic two_nics[] = {
	/* Slots not in argv order's sequence: an unplug and a plug leave
	 * such gaps, and the argv must follow the store, not the order. */
	{ .id = 0x10f, .pci_slot = 0x11, .mac = "02:00:00:00:01:0f", .ifname = "v02000000010f", .fd = 5 },
	{ .id = 0x110, .pci_slot = 0x10, .mac = "02:00:00:00:01:10", .ifname = "v020000000110", .fd = 6 },
};

static struct qemu_spec kernel_spec(const char *accel)
{
	return (struct qemu_spec){
		.vm_id = 0x2a,
		.name = "web-1",
		.cpus = 2,
		.memory_mib = 512,
		.accel = accel,
		.kernel = "/var/lib/hackcloud/images/0000000a/kernel",
		.initrd = "/var/lib/hackcloud/images/0000000a/initrd",
		.cmdline = "console=ttyS0 root=/dev/vda rw quiet",
		.disk = NULL,
		.qmp_fd = 3,
		.serial_fd = 4,
		.serial_log = "/var/lib/hackcloud/vms/000000002a/serial.log",
		.nics = two_nics,
		.n_nics = 2,
	};
}

static struct qemu_spec disk_spec(const char *accel)
{
	return (struct qemu_spec){
		.vm_id = 0x2b,
		.name = "db",
		.cpus = 4,
		.memory_mib = 2048,
		.accel = accel,
		.disk = "/var/lib/hackcloud/vms/000000002b/disk.qcow2",
		.base = "/var/lib/hackcloud/images/ab12/disk",
		.base_format = "qcow2",
		.qmp_fd = 3,
		.serial_fd = 4,
		.serial_log = "/var/lib/hackcloud/vms/000000002b/serial.log",
		.nics = two_nics,
		.n_nics = 1,
	};
}

/* ---- helpers ------------------------------------------------------------ */

static size_t argc_of(char **v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

static size_t count_arg(char **v, const char *a)
{
	size_t n = 0;
	for (size_t i = 0; v[i]; i++)
		n += strcmp(v[i], a) == 0;
	return n;
}

/* The value after the first occurrence of opt; fails the test when absent. */
static const char *value_of(char **v, const char *opt)
{
	for (size_t i = 0; v[i]; i++)
		if (strcmp(v[i], opt) == 0) {
			if (v[i + 1] == NULL)
				fail_msg("%s is the last argument", opt);
			return v[i + 1];
		}
	fail_msg("option %s missing", opt);
	return NULL;
}

/* The value of the n-th occurrence of opt whose value contains needle. */
static const char *value_with(char **v, const char *opt, const char *needle)
{
	for (size_t i = 0; v[i] && v[i + 1]; i++)
		if (strcmp(v[i], opt) == 0 && strstr(v[i + 1], needle))
			return v[i + 1];
	return NULL;
}

/* Values of every occurrence of opt, in order; returns how many. */
static size_t values_of(char **v, const char *opt, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; v[i] && v[i + 1]; i++)
		if (strcmp(v[i], opt) == 0 && n < max)
			out[n++] = v[i + 1];
	return n;
}

/* True when the comma-separated option value has exactly this element
 * (",," is an escaped comma inside an element, not a separator). */
static bool has_elem(const char *val, const char *elem)
{
	size_t el = strlen(elem);
	const char *p = val;

	while (*p) {
		const char *e = p;
		while (*e && !(e[0] == ',' && e[1] != ',')) {
			if (e[0] == ',' && e[1] == ',')
				e += 2;
			else
				e++;
		}
		if ((size_t)(e - p) == el && strncmp(p, elem, el) == 0)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

/* Every argv element is a non-NULL string; the array is NULL-terminated. */
static void check_well_formed(char **v)
{
	assert_non_null(v);
	assert_non_null(v[0]);
	assert_string_equal(v[0], "qemu-system-x86_64");
	for (size_t i = 1; v[i]; i++)
		assert_true(strlen(v[i]) > 0);
}

/* ---- block nodes -------------------------------------------------------- */

/* The -blockdev values parsed, in argv order (a JSON array; decref it). */
static json_t *blockdevs(char **v)
{
	json_t *all = json_array();

	for (size_t i = 0; v[i] && v[i + 1]; i++) {
		if (strcmp(v[i], "-blockdev") != 0)
			continue;
		json_error_t e;
		json_t *o = json_loads(v[i + 1], 0, &e);
		if (o == NULL || !json_is_object(o))
			fail_msg("-blockdev %s is not a JSON object: %s", v[i + 1], e.text);
		json_array_append_new(all, o);
	}
	return all;
}

/* The node called name (borrowed), or NULL. */
static json_t *node(json_t *all, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(all, i, o) {
		const char *n = json_string_value(json_object_get(o, "node-name"));
		if (n && strcmp(n, name) == 0)
			return o;
	}
	return NULL;
}

static const char *str_of(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/*
 * The property that closes issue 11 item 1, for any argv: no -drive at
 * all; every node has a unique name; a file node has a filename and
 * nothing under it; a format node's "file" is the name of a file node
 * defined before it (never an inline filename), and a qcow2 node says
 * what its backing is: null, or a node defined before it.  Then nothing
 * in any image header decides which file QEMU opens.
 */
static void check_block_graph(char **v)
{
	json_t *all = blockdevs(v), *o;
	size_t i;

	assert_int_equal(count_arg(v, "-drive"), 0);
	assert_int_equal(count_arg(v, "-hda") + count_arg(v, "-cdrom") + count_arg(v, "-snapshot"), 0);
	json_array_foreach(all, i, o) {
		const char *name = str_of(o, "node-name"), *driver = str_of(o, "driver");
		assert_non_null(name);
		assert_non_null(driver);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(str_of(json_array_get(all, k), "node-name"), name);
		if (strcmp(driver, "file") == 0) {
			assert_non_null(str_of(o, "filename"));
			assert_null(json_object_get(o, "backing"));
			continue;
		}
		json_t *file = json_object_get(o, "file");
		assert_true(json_is_string(file));
		json_t *under = node(all, json_string_value(file));
		assert_non_null(under);
		assert_string_equal(str_of(under, "driver"), "file");
		assert_null(json_object_get(o, "filename"));
		if (strcmp(driver, "qcow2") == 0) {
			json_t *b = json_object_get(o, "backing");
			assert_non_null(b);
			assert_true(json_is_null(b) || json_is_string(b));
			if (json_is_string(b)) {
				bool earlier = false;
				for (size_t k = 0; k < i; k++)
					earlier |= strcmp(str_of(json_array_get(all, k), "node-name"),
							  json_string_value(b)) == 0;
				assert_true(earlier);
			}
		} else {
			assert_string_equal(driver, "raw");
		}
	}
	json_decref(all);
}

/* The drive= of every virtio-blk-pci device, in argv order. */
static size_t blk_drives(char **v, char out[][16], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; v[i] && v[i + 1]; i++) {
		const char *d = v[i + 1], *p;
		if (strcmp(v[i], "-device") != 0 || strncmp(d, "virtio-blk-pci,", 15) != 0 || n == max)
			continue;
		assert_non_null(p = strstr(d, "drive="));
		snprintf(out[n++], 16, "%.*s", (int)strcspn(p + 6, ","), p + 6);
	}
	return n;
}

/* ---- kernel boot -------------------------------------------------------- */

static void kernel_boot_tcg(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_string_equal(value_of(v, "-kernel"), s.kernel);
	assert_string_equal(value_of(v, "-initrd"), s.initrd);
	/* The command line is ONE argument, spaces and all, no quoting. */
	assert_string_equal(value_of(v, "-append"), "console=ttyS0 root=/dev/vda rw quiet");
	assert_int_equal(count_arg(v, "console=ttyS0"), 0);
	assert_int_equal(count_arg(v, "-append"), 1);

	assert_string_equal(value_of(v, "-accel"), "tcg");
	assert_string_equal(value_of(v, "-cpu"), "max");
	assert_string_equal(value_of(v, "-smp"), "2,maxcpus=2");
	assert_string_equal(value_of(v, "-m"), "512");
	/* No disk for a kernel image without an overlay. */
	assert_int_equal(count_arg(v, "-drive"), 0);
	assert_int_equal(count_arg(v, "-blockdev"), 0);
	assert_null(value_with(v, "-device", "virtio-blk-pci"));
	strv_free(v);
}

/* Resize (vm/resize.h): CPU hotplug's slots are maxcpus, never fewer
 * than the VM's own; every VM has the balloon QMP's "balloon" drives. */
static void resize_room(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v;

	s.max_cpus = 8;
	v = qemu_argv(&s);
	assert_string_equal(value_of(v, "-smp"), "2,maxcpus=8");
	assert_non_null(value_with(v, "-device", "virtio-balloon-pci,id=" QEMU_BALLOON_ID));
	strv_free(v);
	s.max_cpus = 1;
	v = qemu_argv(&s);
	assert_string_equal(value_of(v, "-smp"), "2,maxcpus=2");
	strv_free(v);
}

static void kernel_boot_kvm(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("kvm");
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_string_equal(value_of(v, "-accel"), "kvm");
	assert_string_equal(value_of(v, "-cpu"), "host");
	assert_int_equal(count_arg(v, "-accel"), 1);
	assert_int_equal(count_arg(v, "-cpu"), 1);
	assert_string_equal(value_of(v, "-kernel"), s.kernel);
	strv_free(v);
}

static void kernel_boot_without_initrd_or_cmdline(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	s.initrd = NULL;
	s.cmdline = NULL;
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_string_equal(value_of(v, "-kernel"), s.kernel);
	assert_int_equal(count_arg(v, "-initrd"), 0);
	assert_int_equal(count_arg(v, "-append"), 0);
	strv_free(v);
}

static void cmdline_with_quotes_and_commas_is_verbatim(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	s.cmdline = "a=\"b c\" d='e' f=1,2 $HOME;`x`";
	char **v = qemu_argv(&s);

	check_well_formed(v);
	/* -append takes a plain string, not an option list: no escaping. */
	assert_string_equal(value_of(v, "-append"), s.cmdline);
	strv_free(v);
}

/* ---- disk boot ---------------------------------------------------------- */

/* The overlay is backed by the image's node, named; the image node by
 * nothing: a qcow2 image that names /etc/shadow as its backing file gets
 * no say. */
static void disk_boot(void **state)
{
	(void)state;
	const char *accels[] = { "tcg", "kvm" };
	for (size_t k = 0; k < 2; k++) {
		struct qemu_spec s = disk_spec(accels[k]);
		char **v = qemu_argv(&s), drives[4][16];
		json_t *all, *img, *imgf, *disk, *diskf;

		check_well_formed(v);
		check_block_graph(v);
		assert_int_equal(count_arg(v, "-kernel"), 0);
		assert_int_equal(count_arg(v, "-initrd"), 0);
		assert_int_equal(count_arg(v, "-append"), 0);
		all = blockdevs(v);
		assert_int_equal(json_array_size(all), 4);
		assert_non_null(imgf = node(all, "img-file"));
		assert_non_null(img = node(all, "img"));
		assert_non_null(diskf = node(all, "disk-file"));
		assert_non_null(disk = node(all, "disk"));
		assert_string_equal(str_of(imgf, "filename"), s.base);
		assert_true(json_is_true(json_object_get(imgf, "read-only")));
		assert_string_equal(str_of(img, "driver"), "qcow2");
		assert_true(json_is_true(json_object_get(img, "read-only")));
		assert_true(json_is_null(json_object_get(img, "backing")));
		assert_string_equal(str_of(diskf, "filename"), s.disk);
		assert_true(json_is_false(json_object_get(diskf, "read-only")));
		assert_string_equal(str_of(disk, "driver"), "qcow2");
		assert_string_equal(str_of(disk, "backing"), "img");
		assert_true(json_is_false(json_object_get(disk, "read-only")));
		/* cache=none as before: O_DIRECT on the host files. */
		assert_true(json_is_true(json_object_get(json_object_get(diskf, "cache"), "direct")));
		json_decref(all);
		/* The guest sees one disk: the overlay. */
		assert_int_equal(blk_drives(v, drives, 4), 1);
		assert_string_equal(drives[0], "disk");
		assert_string_equal(value_of(v, "-accel"), accels[k]);
		assert_string_equal(value_of(v, "-cpu"), k == 0 ? "max" : "host");
		assert_string_equal(value_of(v, "-smp"), "4,maxcpus=4");
		assert_string_equal(value_of(v, "-m"), "2048");
		strv_free(v);
	}
}

/* A raw image has no backing to speak of: its node has no such member
 * (QEMU refuses one), and the overlay still names it. */
static void disk_boot_on_a_raw_image(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	s.base_format = "raw";
	char **v = qemu_argv(&s);
	json_t *all;

	check_well_formed(v);
	check_block_graph(v);
	all = blockdevs(v);
	assert_string_equal(str_of(node(all, "img"), "driver"), "raw");
	assert_null(json_object_get(node(all, "img"), "backing"));
	assert_string_equal(str_of(node(all, "disk"), "backing"), "img");
	json_decref(all);
	strv_free(v);
}

/* A blank root disk (kernel image with --disk-size) is backed by nothing. */
static void blank_root_disk_has_no_backing(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	s.disk = "/var/lib/hackcloud/vms/000000002a/disk.qcow2";
	char **v = qemu_argv(&s);
	json_t *all;

	check_block_graph(v);
	all = blockdevs(v);
	assert_int_equal(json_array_size(all), 2);
	assert_null(node(all, "img"));
	assert_true(json_is_null(json_object_get(node(all, "disk"), "backing")));
	json_decref(all);
	strv_free(v);
}

/* Snapshot layers (issue 14 §2): between the image and the root disk, and
 * under a data disk, every layer is a read-only node named in the argv,
 * backed by the node below it by name — the chain never comes from a
 * layer's header. */
static void snapshot_layers_are_named_nodes(void **state)
{
	(void)state;
	static const char *const root[] = { "/v/000000002b/snap-00000001-disk.qcow2",
					    "/v/000000002b/snap-00000002-disk.qcow2" };
	static const char *const data0[] = { "/v/000000002b/snap-00000001-data0.qcow2",
					     "/v/000000002b/snap-00000002-data0.qcow2" };
	static const char *const one_data[] = { "/v/000000002b/data0.qcow2" };
	struct qemu_layers dl[] = { { data0, 2 } };
	struct qemu_spec s = disk_spec("tcg");
	s.root_layers = (struct qemu_layers){ root, 2 };
	s.data_disks = one_data;
	s.n_data_disks = 1;
	s.data_layers = dl;
	char **v = qemu_argv(&s);
	json_t *all;

	check_block_graph(v);
	all = blockdevs(v);
	assert_int_equal(json_array_size(all), 2 * (1 + 3 + 3));
	assert_true(json_is_null(json_object_get(node(all, "img"), "backing")));
	assert_string_equal(str_of(node(all, "disk-l0"), "backing"), "img");
	assert_string_equal(str_of(node(all, "disk-l1"), "backing"), "disk-l0");
	assert_string_equal(str_of(node(all, "disk"), "backing"), "disk-l1");
	assert_true(json_is_true(json_object_get(node(all, "disk-l0"), "read-only")));
	assert_true(json_is_true(json_object_get(node(all, "disk-l1"), "read-only")));
	assert_true(json_is_false(json_object_get(node(all, "disk"), "read-only")));
	assert_string_equal(str_of(node(all, str_of(node(all, "disk-l1"), "file")), "filename"), root[1]);
	assert_true(json_is_null(json_object_get(node(all, "data0-l0"), "backing")));
	assert_string_equal(str_of(node(all, "data0-l1"), "backing"), "data0-l0");
	assert_string_equal(str_of(node(all, "data0"), "backing"), "data0-l1");
	assert_string_equal(str_of(node(all, str_of(node(all, "data0-l0"), "file")), "filename"), data0[0]);
	json_decref(all);
	strv_free(v);
}

/* ---- data disks --------------------------------------------------------- */

static const char *const three_data_disks[] = {
	"/var/lib/hackcloud/vms/000000002b/data0.qcow2",
	"/var/lib/hackcloud/vms/000000002b/data1.qcow2",
	"/var/lib/hackcloud/vms/000000002b/data2.qcow2",
};

/* The disks in argv order are the guest's vda, vdb, …: root disk first. */
static void data_disks_follow_the_root_disk(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	s.data_disks = three_data_disks;
	s.n_data_disks = 3;
	char **v = qemu_argv(&s), drives[8][16], name[16];
	json_t *all;

	check_well_formed(v);
	check_block_graph(v);
	assert_int_equal(blk_drives(v, drives, 8), 4);
	assert_string_equal(drives[0], "disk");
	all = blockdevs(v);
	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "data%zu", i);
		assert_string_equal(drives[i + 1], name);
		json_t *fmt = node(all, name);
		assert_non_null(fmt);
		assert_string_equal(str_of(fmt, "driver"), "qcow2");
		assert_true(json_is_null(json_object_get(fmt, "backing")));
		assert_true(json_is_false(json_object_get(fmt, "read-only")));
		assert_string_equal(str_of(node(all, str_of(fmt, "file")), "filename"),
				    three_data_disks[i]);
	}
	json_decref(all);
	strv_free(v);
}

/* A kernel image: no root disk unless one was asked for; data disks alone
 * come first then. */
static void data_disks_of_a_kernel_image(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v, drives[8][16];

	s.data_disks = three_data_disks;
	s.n_data_disks = 2;
	v = qemu_argv(&s);
	check_well_formed(v);
	check_block_graph(v);
	assert_int_equal(blk_drives(v, drives, 8), 2);
	assert_string_equal(drives[0], "data0");
	assert_string_equal(drives[1], "data1");
	assert_string_equal(value_of(v, "-kernel"), s.kernel);
	strv_free(v);

	/* with a blank root disk (--disk-size on a kernel image) */
	s.disk = "/var/lib/hackcloud/vms/000000002a/disk.qcow2";
	v = qemu_argv(&s);
	check_block_graph(v);
	assert_int_equal(blk_drives(v, drives, 8), 3);
	assert_string_equal(drives[0], "disk");
	assert_string_equal(drives[1], "data0");
	strv_free(v);
}

/* ---- NICs --------------------------------------------------------------- */

/* Each NIC is a tap hcd opened: QEMU gets the descriptor, never a name to
 * open or a script to run. */
static void nics_are_taps_with_macs(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);
	const char *netdevs[8], *devices[16];
	size_t nn, nd, nnic = 0;

	check_well_formed(v);
	nn = values_of(v, "-netdev", netdevs, 8);
	nd = values_of(v, "-device", devices, 16);
	assert_int_equal(nn, 2);

	for (size_t i = 0; i < 2; i++) {
		char want_fd[32], want_mac[128], want_id[32], want_nd[128], want_addr[32];

		snprintf(want_fd, sizeof(want_fd), "fd=%d", two_nics[i].fd);
		snprintf(want_mac, sizeof(want_mac), "mac=%s", two_nics[i].mac);
		snprintf(want_id, sizeof(want_id), "id=" QEMU_NETDEV_FMT, (unsigned long long)two_nics[i].id);
		assert_true(strncmp(netdevs[i], "tap,", 4) == 0);
		assert_true(has_elem(netdevs[i], want_fd));
		assert_true(has_elem(netdevs[i], want_id));
		assert_null(strstr(netdevs[i], "ifname="));
		assert_null(strstr(netdevs[i], "script"));
		assert_null(strstr(netdevs[i], "helper"));

		snprintf(want_nd, sizeof(want_nd), "netdev=" QEMU_NETDEV_FMT,
			 (unsigned long long)two_nics[i].id);
		size_t matches = 0;
		for (size_t d = 0; d < nd; d++) {
			if (strncmp(devices[d], "virtio-net-pci,", 15) != 0)
				continue;
			if (has_elem(devices[d], want_nd)) {
				matches++;
				assert_true(has_elem(devices[d], want_mac));
				/* Its slot from the store, as hot-plug gives it
				 * (store.h: the same layout on every host). */
				snprintf(want_addr, sizeof(want_addr), "addr=0x%x",
					 two_nics[i].pci_slot);
				assert_true(has_elem(devices[d], want_addr));
			}
		}
		assert_int_equal(matches, 1);
	}
	for (size_t d = 0; d < nd; d++) {
		bool nic = strncmp(devices[d], "virtio-net-pci,", 15) == 0;
		nnic += nic;
		/* Only NICs are placed: the rest fill the slots from 2 up,
		 * below NIC_PCI_SLOT_FIRST. */
		if (!nic)
			assert_null(strstr(devices[d], "addr="));
	}
	assert_int_equal(nnic, 2);
	/* Device IDs carry the NIC IDs so that hotplug can diff QEMU's
	 * devices against the store. */
	assert_non_null(value_with(v, "-device", "id=nic-0000010f"));
	assert_non_null(value_with(v, "-device", "id=nic-00000110"));
	strv_free(v);
}

/* The destination of a QEMU an hcd from before NIC slots started: its
 * NICs where QEMU puts them, as the source's are (agent/migrate.c). */
static void nics_without_slots(void **state)
{
	(void)state;
	struct qemu_nic nics[2];
	struct qemu_spec s = kernel_spec("tcg");

	memcpy(nics, two_nics, sizeof(nics));
	nics[0].pci_slot = nics[1].pci_slot = 0;
	s.nics = nics;
	char **v = qemu_argv(&s);
	check_well_formed(v);
	assert_non_null(value_with(v, "-device", "id=nic-0000010f"));
	assert_non_null(value_with(v, "-device", "id=nic-00000110"));
	assert_null(value_with(v, "-device", "addr="));
	strv_free(v);
}

static void no_nics(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	s.nics = NULL;
	s.n_nics = 0;
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_int_equal(count_arg(v, "-netdev"), 0);
	assert_null(value_with(v, "-device", "virtio-net-pci"));
	strv_free(v);
}

/* ---- process, QMP, serial ----------------------------------------------- */

/* hcd daemonizes QEMU and gives it its uid: QEMU does neither, so its
 * seccomp filter can deny spawning and changing privileges. */
static void sandbox_denies_spawn_and_privileges(void **state)
{
	(void)state;
	struct qemu_spec specs[] = { kernel_spec("tcg"), disk_spec("kvm") };

	for (size_t k = 0; k < 2; k++) {
		char **v = qemu_argv(&specs[k]);
		const char *sb;
		check_well_formed(v);
		assert_int_equal(count_arg(v, "-daemonize"), 0);
		assert_int_equal(count_arg(v, "-pidfile"), 0);
		assert_int_equal(count_arg(v, "-runas"), 0);
		assert_int_equal(count_arg(v, "-chroot"), 0);
		assert_int_equal(count_arg(v, "-sandbox"), 1);
		sb = value_of(v, "-sandbox");
		assert_string_equal(sb, QEMU_SANDBOX);
		assert_true(has_elem(sb, "on"));
		assert_true(has_elem(sb, "spawn=deny"));
		assert_true(has_elem(sb, "elevateprivileges=deny"));
		assert_true(has_elem(sb, "obsolete=deny"));
		assert_true(has_elem(sb, "resourcecontrol=deny"));
		strv_free(v);
	}
}

/* Both sockets are listening descriptors from hcd: QEMU binds nothing. */
static void qmp_and_serial_chardevs(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);
	const char *qmp, *ser, *mon;
	char want[256];

	check_well_formed(v);
	qmp = value_with(v, "-chardev", "id=qmp");
	assert_non_null(qmp);
	assert_true(strncmp(qmp, "socket,", 7) == 0);
	assert_true(has_elem(qmp, "fd=3"));
	assert_true(has_elem(qmp, "server=on"));
	assert_true(has_elem(qmp, "wait=off"));
	assert_null(strstr(qmp, "path="));
	/* The monitor in control (QMP) mode uses that chardev. */
	mon = value_of(v, "-mon");
	assert_true(has_elem(mon, "mode=control"));
	assert_true(has_elem(mon, "chardev=qmp"));

	ser = value_with(v, "-chardev", "id=ser0");
	assert_non_null(ser);
	assert_ptr_not_equal(ser, qmp);
	assert_true(has_elem(ser, "fd=4"));
	assert_true(has_elem(ser, "server=on"));
	assert_true(has_elem(ser, "wait=off"));
	assert_null(strstr(ser, "path="));
	snprintf(want, sizeof(want), "logfile=%s", s.serial_log);
	assert_true(has_elem(ser, want));
	assert_true(has_elem(ser, "logappend=on"));
	assert_string_equal(value_of(v, "-serial"), "chardev:ser0");
	strv_free(v);
}

static void smbios_serial_is_vm_id(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_true(has_elem(value_of(v, "-smbios"), "type=1"));
	assert_true(has_elem(value_of(v, "-smbios"), "serial=000000002a"));
	/* cloud-init's ds-identify picks the OpenStack source by this product. */
	assert_true(has_elem(value_of(v, "-smbios"), "product=OpenStack Nova"));
	/* ps shows which VM a QEMU process belongs to. */
	assert_true(strncmp(value_of(v, "-name"), "hc-000000002a", 13) == 0);
	strv_free(v);
}

/* ---- NoCloud seed -------------------------------------------------------- */

static size_t ide_cds(char **v, const char **last)
{
	const char *vals[16];
	size_t n = values_of(v, "-device", vals, 16), cd = 0;

	for (size_t i = 0; i < n; i++)
		if (strncmp(vals[i], "ide-cd,", 7) == 0) {
			cd++;
			*last = vals[i];
		}
	return cd;
}

static void seed_iso_is_one_ide_cdrom(void **state)
{
	(void)state;
	const char *cd = NULL;
	struct qemu_spec s = disk_spec("tcg");
	s.seed_iso = "/var/lib/hackcloud/vms/000000002b/seed.iso";
	char **v = qemu_argv(&s), drives[4][16];
	json_t *all, *seed;

	check_well_formed(v);
	check_block_graph(v);
	/* The disk and the CD-ROM, nothing else. */
	assert_int_equal(blk_drives(v, drives, 4), 1);
	assert_int_equal(ide_cds(v, &cd), 1);
	assert_true(has_elem(cd, "drive=seed"));
	all = blockdevs(v);
	assert_non_null(seed = node(all, "seed"));
	assert_string_equal(str_of(seed, "driver"), "raw");
	assert_true(json_is_true(json_object_get(seed, "read-only")));
	assert_string_equal(str_of(node(all, str_of(seed, "file")), "filename"), s.seed_iso);
	assert_true(json_is_true(json_object_get(node(all, str_of(seed, "file")), "read-only")));
	json_decref(all);
	strv_free(v);

	/* Kernel boot: the CD-ROM is the only drive. */
	s = kernel_spec("kvm");
	s.seed_iso = "/srv/a,b/seed.iso";
	v = qemu_argv(&s);
	check_well_formed(v);
	check_block_graph(v);
	assert_int_equal(blk_drives(v, drives, 4), 0);
	assert_int_equal(ide_cds(v, &cd), 1);
	all = blockdevs(v);
	/* JSON needs no comma escaping: the name is the name. */
	assert_string_equal(str_of(node(all, "seed-file"), "filename"), "/srv/a,b/seed.iso");
	json_decref(all);
	strv_free(v);
}

static void no_seed_no_cdrom(void **state)
{
	(void)state;
	const char *cd = NULL;
	struct qemu_spec s = disk_spec("tcg");
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_int_equal(ide_cds(v, &cd), 0);
	for (size_t i = 0; v[i]; i++)
		assert_null(strstr(v[i], "cdrom"));
	strv_free(v);
	s = kernel_spec("tcg");
	v = qemu_argv(&s);
	assert_int_equal(count_arg(v, "-blockdev"), 0);
	strv_free(v);
}

/* ---- a live migration's destination (issue 14 §1) ------------------------- */

static void incoming_waits_paused_with_tls(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	char **v = qemu_argv(&s);
	const char *obj;

	/* An ordinary VM neither waits nor has credentials. */
	assert_int_equal(count_arg(v, "-incoming"), 0);
	assert_int_equal(count_arg(v, "-S"), 0);
	assert_null(value_with(v, "-object", "tls-creds"));
	strv_free(v);
	s.incoming = true;
	s.tls_psk_dir = "/var/lib/hackcloud/vms/000000002a/t,ls";
	v = qemu_argv(&s);
	check_well_formed(v);
	check_block_graph(v);
	assert_int_equal(count_arg(v, "-S"), 1);
	assert_string_equal(value_with(v, "-incoming", "defer"), "defer");
	obj = value_with(v, "-object", "tls-creds-psk");
	assert_non_null(obj);
	assert_true(has_elem(obj, "id=" QEMU_MIGRATE_TLS));
	assert_true(has_elem(obj, "endpoint=server"));
	assert_true(has_elem(obj, "dir=/var/lib/hackcloud/vms/000000002a/t,,ls"));
	/* Still the same machine as its source: sandbox and devices. */
	assert_non_null(value_with(v, "-sandbox", "spawn=deny"));
	assert_non_null(value_with(v, "-device", "virtio-blk-pci,drive=disk"));
	strv_free(v);
}

/* ---- escaping ----------------------------------------------------------- */

static void commas_in_paths(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	s.disk = "/srv/a,b/disk.qcow2";
	s.base = "/srv/i\"m,g/disk";
	s.serial_log = "/srv/a,b,c/serial.log";
	char **v = qemu_argv(&s);
	const char *ser;
	json_t *all;

	check_well_formed(v);
	check_block_graph(v);
	all = blockdevs(v);
	assert_string_equal(str_of(node(all, "disk-file"), "filename"), "/srv/a,b/disk.qcow2");
	assert_string_equal(str_of(node(all, "img-file"), "filename"), "/srv/i\"m,g/disk");
	json_decref(all);

	/* Option lists double a comma inside a value. */
	ser = value_with(v, "-chardev", "id=ser0");
	assert_non_null(ser);
	assert_true(has_elem(ser, "logfile=/srv/a,,b,,c/serial.log"));
	/* No element is a bare piece of the split path. */
	assert_false(has_elem(ser, "c/serial.log"));
	strv_free(v);
}

static void options_have_values(void **state)
{
	(void)state;
	static const char *const valued[] = {
		"-name", "-display", "-machine", "-accel", "-cpu", "-smp", "-m", "-smbios",
		"-chardev", "-mon", "-serial", "-kernel", "-initrd", "-append", "-blockdev",
		"-netdev", "-device", "-sandbox",
	};
	struct qemu_spec s = kernel_spec("kvm");
	s.disk = "/var/lib/hackcloud/vms/000000002a/disk.qcow2";
	s.seed_iso = "/var/lib/hackcloud/vms/000000002a/seed.iso";
	char **v = qemu_argv(&s);

	check_well_formed(v);
	/* No default devices sneak in (monitor, serial, network, VGA). */
	assert_int_equal(count_arg(v, "-nodefaults"), 1);
	/* Every option that takes a value is followed by one, never by
	 * another option or the end of argv. */
	for (size_t i = 1; v[i]; i++)
		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			if (strcmp(v[i], valued[k]) == 0) {
				if (v[i + 1] == NULL || v[i + 1][0] == '-')
					fail_msg("%s at argv[%zu] has no value", v[i], i);
				i++;
				break;
			}
	assert_true(argc_of(v) > 20);
	strv_free(v);
	strv_free(NULL); /* must be a no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kernel_boot_tcg),
		cmocka_unit_test(incoming_waits_paused_with_tls),
		cmocka_unit_test(resize_room),
		cmocka_unit_test(kernel_boot_kvm),
		cmocka_unit_test(kernel_boot_without_initrd_or_cmdline),
		cmocka_unit_test(cmdline_with_quotes_and_commas_is_verbatim),
		cmocka_unit_test(disk_boot),
		cmocka_unit_test(disk_boot_on_a_raw_image),
		cmocka_unit_test(blank_root_disk_has_no_backing),
		cmocka_unit_test(snapshot_layers_are_named_nodes),
		cmocka_unit_test(data_disks_follow_the_root_disk),
		cmocka_unit_test(data_disks_of_a_kernel_image),
		cmocka_unit_test(nics_are_taps_with_macs),
		cmocka_unit_test(nics_without_slots),
		cmocka_unit_test(no_nics),
		cmocka_unit_test(sandbox_denies_spawn_and_privileges),
		cmocka_unit_test(qmp_and_serial_chardevs),
		cmocka_unit_test(smbios_serial_is_vm_id),
		cmocka_unit_test(seed_iso_is_one_ide_cdrom),
		cmocka_unit_test(no_seed_no_cdrom),
		cmocka_unit_test(commas_in_paths),
		cmocka_unit_test(options_have_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
