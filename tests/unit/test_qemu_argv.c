/*
 * test_qemu_argv — the QEMU argv of a VM (src/vm/qemu_argv.h, DESIGN §5):
 * kernel boot (kernel, initrd, cmdline as one argument) and disk boot
 * (qcow2 overlay), tcg and kvm, NICs as tap netdevs with their MACs,
 * daemonize/pidfile/sandbox/runas, QMP and serial chardevs, the NoCloud
 * seed as an IDE CD-ROM, extra data disks as virtio-blk after the root
 * disk (also on a kernel image with or without a root disk), and the
 * escaping of commas in option values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vm/qemu_argv.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct qemu_nic two_nics[] = {
	{ .id = 0x10f, .mac = "02:00:00:00:01:0f", .ifname = "v02000000010f" },
	{ .id = 0x110, .mac = "02:00:00:00:01:10", .ifname = "v020000000110" },
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
		.qmp_path = "/var/lib/hackcloud/vms/000000002a/qmp.sock",
		.serial_path = "/var/lib/hackcloud/vms/000000002a/serial.sock",
		.serial_log = "/var/lib/hackcloud/vms/000000002a/serial.log",
		.pidfile = "/var/lib/hackcloud/vms/000000002a/qemu.pid",
		.runas = NULL,
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
		.qmp_path = "/var/lib/hackcloud/vms/000000002b/qmp.sock",
		.serial_path = "/var/lib/hackcloud/vms/000000002b/serial.sock",
		.serial_log = "/var/lib/hackcloud/vms/000000002b/serial.log",
		.pidfile = "/var/lib/hackcloud/vms/000000002b/qemu.pid",
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
	assert_string_equal(value_of(v, "-smp"), "2");
	assert_string_equal(value_of(v, "-m"), "512");
	/* No disk for a kernel image without an overlay. */
	assert_int_equal(count_arg(v, "-drive"), 0);
	assert_null(value_with(v, "-drive", "format=qcow2"));
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

static void disk_boot(void **state)
{
	(void)state;
	const char *accels[] = { "tcg", "kvm" };
	for (size_t k = 0; k < 2; k++) {
		struct qemu_spec s = disk_spec(accels[k]);
		char **v = qemu_argv(&s);
		const char *drive;

		check_well_formed(v);
		assert_int_equal(count_arg(v, "-kernel"), 0);
		assert_int_equal(count_arg(v, "-initrd"), 0);
		assert_int_equal(count_arg(v, "-append"), 0);
		assert_int_equal(count_arg(v, "-drive"), 1);
		drive = value_of(v, "-drive");
		assert_true(has_elem(drive, "file=/var/lib/hackcloud/vms/000000002b/disk.qcow2"));
		assert_true(has_elem(drive, "format=qcow2"));
		assert_string_equal(value_of(v, "-accel"), accels[k]);
		assert_string_equal(value_of(v, "-cpu"), k == 0 ? "max" : "host");
		assert_string_equal(value_of(v, "-smp"), "4");
		assert_string_equal(value_of(v, "-m"), "2048");
		strv_free(v);
	}
}

/* ---- data disks --------------------------------------------------------- */

static const char *const three_data_disks[] = {
	"/var/lib/hackcloud/vms/000000002b/data0.qcow2",
	"/var/lib/hackcloud/vms/000000002b/data1.qcow2",
	"/var/lib/hackcloud/vms/000000002b/data2.qcow2",
};

/* The drives in argv order are the guest's vda, vdb, …: root disk first. */
static void data_disks_follow_the_root_disk(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	s.data_disks = three_data_disks;
	s.n_data_disks = 3;
	char **v = qemu_argv(&s);
	const char *drives[8];
	char want[128];

	check_well_formed(v);
	assert_int_equal(values_of(v, "-drive", drives, 8), 4);
	assert_true(has_elem(drives[0], "file=/var/lib/hackcloud/vms/000000002b/disk.qcow2"));
	for (size_t i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "file=%s", three_data_disks[i]);
		assert_true(has_elem(drives[i + 1], want));
		assert_true(has_elem(drives[i + 1], "if=virtio"));
		assert_true(has_elem(drives[i + 1], "format=qcow2"));
		assert_false(has_elem(drives[i + 1], "readonly=on"));
	}
	strv_free(v);
}

/* A kernel image: no root disk unless one was asked for; data disks alone
 * come first then. */
static void data_disks_of_a_kernel_image(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	const char *drives[8];
	char **v;

	s.data_disks = three_data_disks;
	s.n_data_disks = 2;
	v = qemu_argv(&s);
	check_well_formed(v);
	assert_int_equal(values_of(v, "-drive", drives, 8), 2);
	assert_true(has_elem(drives[0], "file=/var/lib/hackcloud/vms/000000002b/data0.qcow2"));
	assert_true(has_elem(drives[1], "file=/var/lib/hackcloud/vms/000000002b/data1.qcow2"));
	assert_string_equal(value_of(v, "-kernel"), s.kernel);
	strv_free(v);

	/* with a blank root disk (--disk-size on a kernel image) */
	s.disk = "/var/lib/hackcloud/vms/000000002a/disk.qcow2";
	v = qemu_argv(&s);
	assert_int_equal(values_of(v, "-drive", drives, 8), 3);
	assert_true(has_elem(drives[0], "file=/var/lib/hackcloud/vms/000000002a/disk.qcow2"));
	assert_true(has_elem(drives[1], "file=/var/lib/hackcloud/vms/000000002b/data0.qcow2"));
	strv_free(v);
}

/* ---- NICs --------------------------------------------------------------- */

static void nics_are_taps_with_macs(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);
	const char *netdevs[8], *devices[8];
	size_t nn, nd, nnic = 0;

	check_well_formed(v);
	nn = values_of(v, "-netdev", netdevs, 8);
	nd = values_of(v, "-device", devices, 8);
	assert_int_equal(nn, 2);

	for (size_t i = 0; i < 2; i++) {
		char want_if[128], want_mac[128], id[32];
		const char *nd_id = NULL;

		snprintf(want_if, sizeof(want_if), "ifname=%s", two_nics[i].ifname);
		snprintf(want_mac, sizeof(want_mac), "mac=%s", two_nics[i].mac);
		/* netdev i is a tap on the NIC's interface, no scripts */
		assert_true(strncmp(netdevs[i], "tap,", 4) == 0);
		assert_true(has_elem(netdevs[i], want_if));
		assert_true(has_elem(netdevs[i], "script=no"));
		assert_true(has_elem(netdevs[i], "downscript=no"));
		/* find its id= and the virtio-net device that uses it */
		for (const char *p = netdevs[i]; (p = strstr(p, "id=")) != NULL; p++)
			if (p == netdevs[i] || p[-1] == ',') {
				nd_id = p + 3;
				break;
			}
		assert_non_null(nd_id);
		size_t idlen = strcspn(nd_id, ",");
		assert_true(idlen > 0 && idlen < sizeof(id));
		memcpy(id, nd_id, idlen);
		id[idlen] = '\0';

		char want_nd[128];
		snprintf(want_nd, sizeof(want_nd), "netdev=%s", id);
		size_t matches = 0;
		for (size_t d = 0; d < nd; d++) {
			if (strncmp(devices[d], "virtio-net-pci,", 15) != 0)
				continue;
			if (has_elem(devices[d], want_nd)) {
				matches++;
				assert_true(has_elem(devices[d], want_mac));
			}
		}
		assert_int_equal(matches, 1);
	}
	for (size_t d = 0; d < nd; d++)
		nnic += strncmp(devices[d], "virtio-net-pci,", 15) == 0;
	assert_int_equal(nnic, 2);
	/* The two netdevs have different ids, named after the NIC IDs so that
	 * hotplug can diff QEMU's devices against the store. */
	assert_string_not_equal(netdevs[0], netdevs[1]);
	assert_true(has_elem(netdevs[0], "id=net-0000010f"));
	assert_true(has_elem(devices[0], "id=nic-0000010f") || has_elem(devices[1], "id=nic-0000010f"));
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

static void daemon_pidfile_sandbox(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_int_equal(count_arg(v, "-daemonize"), 1);
	assert_string_equal(value_of(v, "-pidfile"), s.pidfile);
	assert_true(strncmp(value_of(v, "-sandbox"), "on", 2) == 0);
	assert_int_equal(count_arg(v, "-runas"), 0);
	strv_free(v);
}

static void runas_only_when_set(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("kvm");
	s.runas = "hackcloud";
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_int_equal(count_arg(v, "-runas"), 1);
	assert_string_equal(value_of(v, "-runas"), "hackcloud");
	/* -runas needs setuid: the sandbox must not deny elevating privileges. */
	assert_null(strstr(value_of(v, "-sandbox"), "elevateprivileges=deny"));
	assert_true(strncmp(value_of(v, "-sandbox"), "on", 2) == 0);
	strv_free(v);
}

static void qmp_and_serial_chardevs(void **state)
{
	(void)state;
	struct qemu_spec s = kernel_spec("tcg");
	char **v = qemu_argv(&s);
	const char *qmp, *ser, *mon;
	char want[256];

	check_well_formed(v);
	snprintf(want, sizeof(want), "path=%s", s.qmp_path);
	qmp = value_with(v, "-chardev", want);
	assert_non_null(qmp);
	assert_true(strncmp(qmp, "socket,", 7) == 0);
	assert_true(has_elem(qmp, "server=on"));
	assert_true(has_elem(qmp, "wait=off"));
	assert_true(has_elem(qmp, want));
	/* The monitor in control (QMP) mode uses that chardev. */
	mon = value_of(v, "-mon");
	assert_true(has_elem(mon, "mode=control"));
	assert_true(has_elem(qmp, "id=qmp"));
	assert_true(has_elem(mon, "chardev=qmp"));

	snprintf(want, sizeof(want), "path=%s", s.serial_path);
	ser = value_with(v, "-chardev", want);
	assert_non_null(ser);
	assert_ptr_not_equal(ser, qmp);
	assert_true(has_elem(ser, want));
	snprintf(want, sizeof(want), "logfile=%s", s.serial_log);
	assert_true(has_elem(ser, want));
	assert_true(has_elem(ser, "logappend=on"));
	assert_true(has_elem(ser, "id=ser0"));
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

static size_t cdrom_drives(char **v, const char **last)
{
	const char *vals[16];
	size_t n = values_of(v, "-drive", vals, 16), cd = 0;

	for (size_t i = 0; i < n; i++)
		if (has_elem(vals[i], "media=cdrom")) {
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
	char **v = qemu_argv(&s);

	check_well_formed(v);
	/* The disk and the CD-ROM, nothing else. */
	assert_int_equal(count_arg(v, "-drive"), 2);
	assert_int_equal(cdrom_drives(v, &cd), 1);
	assert_true(has_elem(cd, "file=/var/lib/hackcloud/vms/000000002b/seed.iso"));
	assert_true(has_elem(cd, "if=ide"));
	assert_true(has_elem(cd, "readonly=on"));
	assert_true(has_elem(cd, "format=raw"));
	strv_free(v);

	/* Kernel boot: the CD-ROM is the only drive; commas are escaped. */
	s = kernel_spec("kvm");
	s.seed_iso = "/srv/a,b/seed.iso";
	v = qemu_argv(&s);
	check_well_formed(v);
	assert_int_equal(count_arg(v, "-drive"), 1);
	assert_int_equal(cdrom_drives(v, &cd), 1);
	assert_true(has_elem(cd, "file=/srv/a,,b/seed.iso"));
	strv_free(v);
}

static void no_seed_no_cdrom(void **state)
{
	(void)state;
	const char *cd = NULL;
	struct qemu_spec s = disk_spec("tcg");
	char **v = qemu_argv(&s);

	check_well_formed(v);
	assert_int_equal(cdrom_drives(v, &cd), 0);
	for (size_t i = 0; v[i]; i++)
		assert_null(strstr(v[i], "cdrom"));
	strv_free(v);
	s = kernel_spec("tcg");
	v = qemu_argv(&s);
	assert_int_equal(count_arg(v, "-drive"), 0);
	strv_free(v);
}

/* ---- escaping ----------------------------------------------------------- */

static void commas_in_paths_are_doubled(void **state)
{
	(void)state;
	struct qemu_spec s = disk_spec("tcg");
	s.disk = "/srv/a,b/disk.qcow2";
	s.qmp_path = "/srv/a,b/qmp.sock";
	s.serial_path = "/srv/a,b/serial.sock";
	s.serial_log = "/srv/a,b,c/serial.log";
	char **v = qemu_argv(&s);
	const char *drive, *qmp, *ser;

	check_well_formed(v);
	drive = value_of(v, "-drive");
	assert_non_null(strstr(drive, "file=/srv/a,,b/disk.qcow2"));
	assert_true(has_elem(drive, "file=/srv/a,,b/disk.qcow2"));
	assert_true(has_elem(drive, "format=qcow2"));

	qmp = value_with(v, "-chardev", "qmp.sock");
	assert_non_null(qmp);
	assert_true(has_elem(qmp, "path=/srv/a,,b/qmp.sock"));

	ser = value_with(v, "-chardev", "serial.sock");
	assert_non_null(ser);
	assert_true(has_elem(ser, "path=/srv/a,,b/serial.sock"));
	assert_true(has_elem(ser, "logfile=/srv/a,,b,,c/serial.log"));
	/* No element is a bare piece of the split path. */
	assert_false(has_elem(drive, "b/disk.qcow2"));
	assert_false(has_elem(ser, "c/serial.log"));
	strv_free(v);
}

static void options_have_values(void **state)
{
	(void)state;
	static const char *const valued[] = {
		"-name", "-display", "-machine", "-accel", "-cpu", "-smp", "-m", "-smbios",
		"-chardev", "-mon", "-serial", "-kernel", "-initrd", "-append", "-drive",
		"-netdev", "-device", "-pidfile", "-sandbox", "-runas",
	};
	struct qemu_spec s = kernel_spec("kvm");
	s.disk = "/var/lib/hackcloud/vms/000000002a/disk.qcow2";
	s.runas = "nobody";
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
		cmocka_unit_test(kernel_boot_kvm),
		cmocka_unit_test(kernel_boot_without_initrd_or_cmdline),
		cmocka_unit_test(cmdline_with_quotes_and_commas_is_verbatim),
		cmocka_unit_test(disk_boot),
		cmocka_unit_test(data_disks_follow_the_root_disk),
		cmocka_unit_test(data_disks_of_a_kernel_image),
		cmocka_unit_test(nics_are_taps_with_macs),
		cmocka_unit_test(no_nics),
		cmocka_unit_test(daemon_pidfile_sandbox),
		cmocka_unit_test(runas_only_when_set),
		cmocka_unit_test(qmp_and_serial_chardevs),
		cmocka_unit_test(smbios_serial_is_vm_id),
		cmocka_unit_test(seed_iso_is_one_ide_cdrom),
		cmocka_unit_test(no_seed_no_cdrom),
		cmocka_unit_test(commas_in_paths_are_doubled),
		cmocka_unit_test(options_have_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
