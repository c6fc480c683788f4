/* reconcile — see reconcile.h. */
#include "agent/reconcile.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "agent/bandwidth.h"
#include "agent/meter.h"
#include "agent/netstate_load.h"
#include "common/addrpool.h"
#include "net/dnsmasq.h"
#include "net/firewall.h"
#include "net/link.h"
#include "net/routes.h"
#include "net/vxlan.h"
#include "vm/qemu.h"

#include "vm/qmp.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRANSITION_POLL_MS 200
#define QUIT_GRACE_MS 5000

/* What the agent remembers between passes; all of it can be lost (a
 * restarted hcd starts the stop sequence again, which is harmless). */
enum stop_phase { STOP_NONE, STOP_POWERDOWN_SENT, STOP_QUIT_SENT };

struct vm_track {
	uint64_t id;
	enum stop_phase phase;
	long long since;        /* ms when the phase began */
	bool seen_running;      /* this hcd saw its QEMU run */
};

struct agent {
	struct store *st;
	const struct config *cfg;
	const char *accel;
	long tap_owner;         /* uid of qemu_user, or -1 */
	char *vms_dir;
	struct vm_track *tracks;
	size_t n_tracks;
	struct agent_wakeups wakeups;
	unsigned why;           /* the reasons of the pass under way */
	bool told;              /* it logged why it acts */
	struct public4_memory public4; /* net/routes.h: the last conntrack sweep */
	size_t overlay_skipped; /* unusable overlay entries, as last warned about */
	long long last_pass_us; /* for GET /v1/info and bench/scale.sh */
	struct bandwidth *bw;   /* per-NIC limits (issue 13) */
	struct meter *meter;    /* traffic counters and resource use (issue 13) */
};

struct agent *agent_new(struct store *st, const struct config *cfg, const char *accel)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->st = st;
	a->cfg = cfg;
	a->accel = accel;
	a->tap_owner = -1;
	if (cfg->qemu_user && cfg->qemu_user[0]) {
		struct passwd *pw = getpwnam(cfg->qemu_user);
		if (pw)
			a->tap_owner = (long)pw->pw_uid;
	}
	a->vms_dir = str_printf("%s/vms", cfg->state_dir);
	a->bw = bandwidth_new(st, cfg);
	a->meter = a->bw ? meter_new(st, cfg, a->bw) : NULL;
	if (a->vms_dir == NULL || mkdir_p(a->vms_dir, 0700) < 0 || a->meter == NULL) {
		agent_free(a);
		return NULL;
	}
	return a;
}

void agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	free(a->vms_dir);
	free(a->tracks);
	meter_free(a->meter);
	bandwidth_free(a->bw);
	free(a);
}

/* Tracks are kept sorted by VM ID: a pass over 10,000 VMs looks each up
 * in a few steps rather than walking them all (issue 12 §6).  Returns
 * where id is, or where it would go. */
static size_t track_pos(const struct agent *a, uint64_t id)
{
	size_t lo = 0, hi = a->n_tracks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->tracks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct vm_track *track_find(struct agent *a, uint64_t id)
{
	size_t i = track_pos(a, id);

	return i < a->n_tracks && a->tracks[i].id == id ? &a->tracks[i] : NULL;
}

static struct vm_track *track_get(struct agent *a, uint64_t id)
{
	size_t i = track_pos(a, id);

	if (i < a->n_tracks && a->tracks[i].id == id)
		return &a->tracks[i];
	struct vm_track *nt = realloc(a->tracks, (a->n_tracks + 1) * sizeof(*nt));
	if (nt == NULL)
		return NULL;
	a->tracks = nt;
	memmove(&nt[i + 1], &nt[i], (a->n_tracks - i) * sizeof(*nt));
	nt[i] = (struct vm_track){ .id = id };
	a->n_tracks++;
	return &nt[i];
}

static void track_drop(struct agent *a, uint64_t id)
{
	size_t i = track_pos(a, id);

	if (i < a->n_tracks && a->tracks[i].id == id) {
		memmove(&a->tracks[i], &a->tracks[i + 1], (a->n_tracks - i - 1) * sizeof(*a->tracks));
		a->n_tracks--;
	}
}

/*
 * A VM at rest: asked to be stopped and seen stopped, nothing of it in
 * flight.  It has no QEMU — every launch records "starting" in the store
 * before it begins, and "stopped" is recorded only after the process,
 * taps and sockets are gone — so there is nothing to do, not even a look
 * at its pid file.  Most of 10,000 VMs are like this.
 */
static bool vm_at_rest(struct agent *a, const struct vm *vm)
{
	const struct vm_track *t;

	if (strcmp(vm->desired, "stopped") != 0 || strcmp(vm->state, "stopped") != 0)
		return false;
	t = track_find(a, vm->id);
	return t == NULL || (t->phase == STOP_NONE && !t->seen_running);
}

/* A pass that another host's change caused says so at its first change,
 * so the log shows which path acted; a pass that changes nothing stays
 * quiet. */
static void acting(struct agent *a, const struct vm *vm, const char *what)
{
	if (!(a->why & AGENT_WAKE_NOTIFY) || a->told)
		return;
	a->told = true;
	log_info("agent: acting on a store notification: vm %s (%s): %s",
		 vm_id_format(vm->id).s, vm->name, what);
}

/* Record an observed state when it differs from the stored one. */
static void observe(struct agent *a, struct vm *vm, const char *state, const char *error)
{
	bool same_err = (error == NULL && vm->error == NULL) ||
			(error && vm->error && strcmp(error, vm->error) == 0);
	if (strcmp(vm->state, state) == 0 && same_err)
		return;
	acting(a, vm, state);
	vm_id_str id = vm_id_format(vm->id);
	if (error)
		log_warn("vm %s (%s): %s: %s", id.s, vm->name, state, error);
	else
		log_info("vm %s (%s): %s", id.s, vm->name, state);
	store_vm_set_state(a->st, vm->id, state, error);
	free(vm->state);
	vm->state = strdup(state);
}

/* A NIC's tap is about to go: count what it carried, and its ifb goes too
 * (issue 13). */
static void tap_removing(struct agent *a, uint64_t nic)
{
	meter_tap_removing(a->meter, nic);
	bandwidth_nic_gone(a->bw, nic);
}

static int nics_ensure(struct agent *a, const struct vm *vm, char **err)
{
	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *n = &vm->nics[i];
		ifname_str tap = ifname_tap(n->id);
		ifname_str br = ifname_bridge(n->network);
		if (tap_ensure(tap.s, br.s, a->tap_owner, err) < 0)
			return -1;
	}
	return 0;
}

static void nics_remove(struct agent *a, const struct vm *vm)
{
	for (size_t i = 0; i < vm->n_nics; i++) {
		ifname_str tap = ifname_tap(vm->nics[i].id);
		char *err = NULL;
		tap_removing(a, vm->nics[i].id);
		if (link_remove(tap.s, &err) < 0)
			log_warn("%s", err);
		free(err);
	}
}

/* Append s to *buf as a YAML double-quoted scalar. */
static void yaml_quoted(char **buf, const char *s)
{
	char *q = strdup("\""), *n;

	for (const unsigned char *c = (const unsigned char *)s; q && *c; c++) {
		if (*c == '"' || *c == '\\')
			n = str_printf("%s\\%c", q, *c);
		else if (*c < 0x20 || *c == 0x7f)
			n = str_printf("%s\\x%02x", q, *c);
		else
			n = str_printf("%s%c", q, *c);
		free(q);
		q = n;
	}
	n = q && *buf ? str_printf("%s%s\"", *buf, q) : NULL;
	free(q);
	free(*buf);
	*buf = n;
}

static void appendf(char **buf, const char *fmt, const char *a, const char *b)
{
	char *part = *buf ? str_printf(fmt, a, b) : NULL;
	char *n = part ? str_printf("%s%s", *buf, part) : NULL;
	free(part);
	free(*buf);
	*buf = n;
}

/*
 * The NoCloud seed: STATE_DIR/vms/<id>/seed/{meta-data,user-data,
 * network-config} packed by genisoimage into seed.iso, volume ID "cidata".
 * Rebuilt at every launch: names, keys and NICs may have changed.
 * Returns the ISO's path (malloc'd) or NULL with *err set.
 */
static char *seed_build(const struct vm *vm, const struct vm_paths *p, char **err)
{
	char *dir = str_printf("%s/seed", p->dir);
	char *f_meta = dir ? str_printf("%s/meta-data", dir) : NULL;
	char *f_user = dir ? str_printf("%s/user-data", dir) : NULL;
	char *f_net = dir ? str_printf("%s/network-config", dir) : NULL;
	char *iso = str_printf("%s/seed.iso", p->dir);
	char *tmp = str_printf("%s/seed.iso.tmp", p->dir);
	char *meta = str_printf("instance-id: i-%s\nlocal-hostname: %s\n",
				vm_id_format(vm->id).s, vm->name);
	char *user = NULL, *net = strdup("version: 2\nethernets:\n"), *out = NULL;
	const void *ud;
	size_t ud_len;
	int rc;

	if (!f_meta || !f_user || !f_net || !iso || !tmp || !meta || !net) {
		*err = strdup("out of memory");
		goto fail;
	}
	if (vm->user_data) {
		ud = vm->user_data;
		ud_len = vm->user_data_len;
	} else {
		/* No user data: a cloud-config that installs the VM's keys. */
		user = strdup(vm->n_keys ? "#cloud-config\nssh_authorized_keys:\n" : "#cloud-config\n{}\n");
		for (size_t i = 0; user && i < vm->n_keys; i++) {
			if (vm->keys[i].pubkey == NULL)
				continue;
			appendf(&user, "%s%s", "  - ", "");
			yaml_quoted(&user, vm->keys[i].pubkey);
			appendf(&user, "%s%s", "\n", "");
		}
		if (user == NULL) {
			*err = strdup("out of memory");
			goto fail;
		}
		ud = user;
		ud_len = strlen(user);
	}
	for (size_t i = 0; net && i < vm->n_nics; i++) {
		char ifname[32];
		snprintf(ifname, sizeof(ifname), "eth%zu", i);
		appendf(&net, "  %s:\n    match:\n      macaddress: \"%s\"\n", ifname,
			nic_mac_format(vm->nics[i].id).s);
		appendf(&net, "    set-name: %s\n    dhcp4: %s\n", ifname,
			vm->nics[i].ipv4 ? "true" : "false");
		appendf(&net, "    dhcp6: false\n    accept-ra: true\n%s%s", "", "");
		/* Routed prefixes (issue 13): the address the guest takes from each. */
		for (size_t j = 0, said = 0; j < vm->nics[i].n_prefixes; j++) {
			char addr[INET6_ADDRSTRLEN];
			if (prefix_suggested_address(vm->nics[i].prefixes[j], addr, sizeof(addr)))
				appendf(&net, "%s      - \"%s/128\"\n", said++ ? "" : "    addresses:\n", addr);
		}
	}
	if (net == NULL) {
		*err = strdup("out of memory");
		goto fail;
	}
	if (vm->n_nics == 0) {
		free(net);
		net = strdup("version: 2\nethernets: {}\n");
	}
	if (mkdir_p(dir, 0700) < 0 ||
	    file_write_atomic(f_meta, meta, strlen(meta), 0600) < 0 ||
	    file_write_atomic(f_user, ud, ud_len, 0600) < 0 ||
	    file_write_atomic(f_net, net, strlen(net), 0600) < 0) {
		*err = str_printf("seed: %s: %s", dir, strerror(errno));
		goto fail;
	}
	file_remove(tmp);
	char *argv[] = { "genisoimage", "-quiet", "-output", tmp, "-volid", "cidata", "-joliet",
			 "-rock", f_meta, f_user, f_net, NULL };
	rc = proc_run(argv, 60000, &out, 4096, true);
	if (rc != 0) {
		*err = rc < 0 ? str_printf("genisoimage: %s", strerror(errno))
			      : str_printf("genisoimage failed (%d): %s", rc, out ? out : "");
		file_remove(tmp);
		goto fail;
	}
	if (rename(tmp, iso) < 0) {
		*err = str_printf("seed: %s: %s", iso, strerror(errno));
		file_remove(tmp);
		goto fail;
	}
	goto done;
fail:
	free(iso);
	iso = NULL;
done:
	free(dir);
	free(f_meta);
	free(f_user);
	free(f_net);
	free(tmp);
	free(meta);
	free(user);
	free(net);
	free(out);
	return iso;
}

/* A VM without a seed has none lying around from an earlier setting. */
static void seed_remove(const struct vm_paths *p)
{
	char *dir = str_printf("%s/seed", p->dir);
	char *iso = str_printf("%s/seed.iso", p->dir);

	if (dir)
		dir_remove_tree(dir);
	if (iso)
		file_remove(iso);
	free(dir);
	free(iso);
}

/*
 * The VM's extra data disks, each created empty when missing (a disk that
 * exists keeps what the guest wrote); paths into *out (n_disks of them,
 * malloc'd, free with strv_free).
 */
static int data_disks_ensure(const struct vm *vm, const struct vm_paths *p, char ***out,
			     char **err)
{
	char **paths = calloc(vm->n_disks + 1, sizeof(*paths));
	struct stat sb;

	*out = NULL;
	if (paths == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	for (size_t i = 0; i < vm->n_disks; i++) {
		if ((paths[i] = vm_data_disk_path(p, i)) == NULL) {
			*err = strdup("out of memory");
			strv_free(paths);
			return -1;
		}
		if (stat(paths[i], &sb) < 0 && qemu_disk_create(paths[i], vm->disks[i].size, err) < 0) {
			strv_free(paths);
			return -1;
		}
	}
	*out = paths;
	return 0;
}

static int vm_launch(struct agent *a, struct vm *vm, const struct vm_paths *p, char **err)
{
	struct image im = { 0 };
	struct qemu_nic *nics = NULL;
	char *kernel = NULL, *initrd = NULL, *base = NULL, *seed = NULL, **data = NULL;
	struct stat sb;
	int rc = -1;

	*err = NULL;
	if (store_image_get_id(a->st, vm->image, &im) != STORE_OK || im.sha256 == NULL) {
		*err = strdup("image is not available");
		goto out;
	}
	if (mkdir_p(p->dir, 0700) < 0) {
		*err = str_printf("%s: %s", p->dir, strerror(errno));
		goto out;
	}
	if (nics_ensure(a, vm, err) < 0)
		goto out;
	nics = calloc(vm->n_nics ? vm->n_nics : 1, sizeof(*nics));
	if (nics == NULL)
		goto out;
	for (size_t i = 0; i < vm->n_nics; i++) {
		mac_str mac = nic_mac_format(vm->nics[i].id);
		ifname_str tap = ifname_tap(vm->nics[i].id);
		nics[i].id = vm->nics[i].id;
		memcpy(nics[i].mac, mac.s, sizeof(nics[i].mac));
		memcpy(nics[i].ifname, tap.s, sizeof(nics[i].ifname));
	}
	struct qemu_spec spec = {
		.vm_id = vm->id, .name = vm->name, .cpus = vm->cpus, .memory_mib = vm->memory_mib,
		.accel = a->accel, .qmp_path = p->qmp, .serial_path = p->serial,
		.serial_log = p->log, .pidfile = p->pid, .nics = nics, .n_nics = vm->n_nics,
		.runas = a->cfg->qemu_user && a->cfg->qemu_user[0] ? a->cfg->qemu_user : NULL,
	};
	if (strcmp(im.boot, "kernel") == 0) {
		kernel = image_file(a->cfg->state_dir, im.sha256, "kernel");
		if (im.has_initrd)
			initrd = image_file(a->cfg->state_dir, im.sha256, "initrd");
		spec.kernel = kernel;
		spec.initrd = initrd;
		spec.cmdline = im.cmdline;
		/* A kernel image has no disk of its own: --disk-size gives the
		 * VM a blank root disk. */
		if (vm->disk_size > 0) {
			if (stat(p->disk, &sb) < 0 && qemu_disk_create(p->disk, vm->disk_size, err) < 0)
				goto out;
			spec.disk = p->disk;
		}
	} else {
		base = image_file(a->cfg->state_dir, im.sha256, "disk");
		if (stat(p->disk, &sb) < 0 &&
		    qemu_overlay_create(base, im.format, p->disk, vm->disk_size, err) < 0)
			goto out;
		spec.disk = p->disk;
	}
	if (data_disks_ensure(vm, p, &data, err) < 0)
		goto out;
	spec.data_disks = (const char *const *)data;
	spec.n_data_disks = vm->n_disks;
	if (vm->config_drive) {
		if ((seed = seed_build(vm, p, err)) == NULL)
			goto out;
		spec.seed_iso = seed;
	} else {
		seed_remove(p);
	}
	rc = qemu_launch(&spec, p, err);
out:
	image_free(&im);
	free(nics);
	free(kernel);
	free(initrd);
	free(base);
	free(seed);
	strv_free(data);
	return rc;
}

/* The NIC IDs of the virtio-net devices QEMU has now ("nic-<8 hex>"). */
static int qemu_nic_ids(const struct vm_paths *p, uint64_t *ids, size_t max, size_t *n)
{
	json_t *list = NULL, *item;
	json_t *args = json_pack("{s:s}", "path", "/machine/peripheral");
	char *err = NULL;
	size_t i;
	int rc = qmp_command(p->qmp, "qom-list", args, &list, &err);

	json_decref(args);
	free(err);
	*n = 0;
	if (rc < 0)
		return -1;
	json_array_foreach(list, i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));
		unsigned long long id;
		if (name && sscanf(name, "nic-%8llx", &id) == 1 && *n < max)
			ids[(*n)++] = id;
	}
	json_decref(list);
	return 0;
}

/*
 * Hot-plug: make the running QEMU's NICs match the store.  A new NIC gets
 * its tap, a netdev and a virtio-net device; a removed one is asked to go
 * (device_del needs the guest's consent, so it completes on a later pass,
 * when its netdev is deleted too and the sweep removes the tap).
 */
static void nics_hotplug(struct agent *a, const struct vm *vm, const struct vm_paths *p)
{
	uint64_t have[64];
	size_t n_have;
	char *err = NULL;

	if (qemu_nic_ids(p, have, 64, &n_have) < 0)
		return;
	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *nic = &vm->nics[i];
		bool present = false;
		for (size_t j = 0; j < n_have && !present; j++)
			present = have[j] == nic->id;
		if (present)
			continue;
		char netdev[16], dev[16];
		snprintf(netdev, sizeof(netdev), QEMU_NETDEV_FMT, (unsigned long long)nic->id);
		snprintf(dev, sizeof(dev), QEMU_NICDEV_FMT, (unsigned long long)nic->id);
		ifname_str tap = ifname_tap(nic->id);
		/* QEMU runs unprivileged: we open the tap and hand it over. */
		json_t *fargs = json_pack("{s:s}", "fdname", netdev);
		json_t *nargs = json_pack("{s:s, s:s, s:s, s:b}", "type", "tap", "id", netdev,
					  "fd", netdev, "vhost", 0);
		json_t *dargs = json_pack("{s:s, s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", dev,
					  "netdev", netdev, "mac", nic_mac_format(nic->id).s);
		int fd = -1;
		/* A tap that is busy already belongs to this QEMU: an earlier
		 * pass (or an hcd killed mid-way) added the netdev but not the
		 * device, so only the device is missing. */
		bool have_netdev = false;
		if (tap_ensure(tap.s, ifname_bridge(nic->network).s, a->tap_owner, &err) == 0) {
			fd = tap_open(tap.s, &err);
			have_netdev = fd < 0 && err && strstr(err, "busy");
		}
		if (!have_netdev && fd >= 0) {
			free(err);
			err = NULL;
		}
		if ((!have_netdev &&
		     (fd < 0 || qmp_command_fd(p->qmp, "getfd", fargs, fd, NULL, &err) < 0 ||
		      (qmp_command(p->qmp, "netdev_add", nargs, NULL, &err) < 0 &&
		       strstr(err, "uplicate") == NULL))) ||
		    (free(err), err = NULL, qmp_command(p->qmp, "device_add", dargs, NULL, &err) < 0))
			log_warn("vm %s: hot-plug of %s: %s", vm->name, tap.s, err ? err : "failed");
		else
			log_info("vm %s: hot-plugged %s", vm->name, tap.s);
		if (fd >= 0)
			close(fd);
		free(err);
		err = NULL;
		json_decref(fargs);
		json_decref(nargs);
		json_decref(dargs);
	}
	for (size_t j = 0; j < n_have; j++) {
		bool wanted = false;
		for (size_t i = 0; i < vm->n_nics && !wanted; i++)
			wanted = vm->nics[i].id == have[j];
		if (wanted)
			continue;
		char dev[16];
		snprintf(dev, sizeof(dev), QEMU_NICDEV_FMT, (unsigned long long)have[j]);
		json_t *args = json_pack("{s:s}", "id", dev);
		if (qmp_command(p->qmp, "device_del", args, NULL, &err) == 0)
			log_info("vm %s: unplugging %s", vm->name, dev);
		free(err);
		err = NULL;
		json_decref(args);
	}
}

/* Netdevs whose device is gone: delete them so QEMU lets go of the tap. */
static void netdevs_release(const struct vm *vm, const struct vm_paths *p, const char *tap)
{
	enum ifname_kind kind;
	uint64_t id;
	char netdev[16], *err = NULL;

	if (!ifname_parse(tap, &kind, &id))
		return;
	snprintf(netdev, sizeof(netdev), QEMU_NETDEV_FMT, (unsigned long long)id);
	json_t *args = json_pack("{s:s}", "id", netdev);
	qmp_command(p->qmp, "netdev_del", args, NULL, &err);
	json_decref(args);
	free(err);
	(void)vm;
}

#define SERIAL_LOG_MAX (16LL << 20)
#define SERIAL_LOG_KEEP (4LL << 20)

/*
 * QEMU appends everything the guest prints to serial.log; a chatty (or
 * hostile) guest must not fill the disk.  Past SERIAL_LOG_MAX the head is
 * cut off in place (collapse range keeps the inode QEMU appends to and the
 * last SERIAL_LOG_KEEP bytes); where the file system cannot do that, the
 * log starts over.
 */
static void serial_log_cap(const struct vm_paths *p)
{
	struct stat sb;
	int fd;

	if (stat(p->log, &sb) < 0 || sb.st_size <= SERIAL_LOG_MAX)
		return;
	fd = open(p->log, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t cut = (sb.st_size - SERIAL_LOG_KEEP) & ~((off_t)sb.st_blksize - 1);
	if (cut <= 0 || fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, cut) < 0) {
		if (ftruncate(fd, 0) == 0)
			log_warn("%s: over %lld bytes, started over", p->log, SERIAL_LOG_MAX);
	}
	close(fd);
}

/* Drive one VM towards its desired state.  Returns ms until it needs
 * another look, or -1. */
static int vm_converge(struct agent *a, struct vm *vm)
{
	struct vm_paths p;
	struct vm_track *t;
	pid_t pid;
	char *err = NULL;
	int again = -1;
	long long now = now_ms();

	if (vm_at_rest(a, vm))
		return -1;
	if (vm_paths_init(&p, a->cfg->state_dir, vm->id) < 0)
		return TRANSITION_POLL_MS;
	t = track_get(a, vm->id);
	if (t == NULL)
		goto out;
	pid = qemu_running_pid(&p);

	if (strcmp(vm->desired, "running") == 0) {
		if (pid > 0 && t->phase != STOP_NONE) {
			/* Started again while a stop is under way: the guest is
			 * already shutting down.  Let it finish, then launch. */
			again = TRANSITION_POLL_MS;
			goto out;
		}
		if (pid <= 0 && t->phase != STOP_NONE) {
			t->phase = STOP_NONE;
			t->seen_running = false;
			nics_remove(a, vm);
		}
		if (pid > 0) {
			/* Running (or re-adopted after a restart of hcd). */
			if (nics_ensure(a, vm, &err) < 0)
				log_warn("vm %s: %s", vm->name, err);
			nics_hotplug(a, vm, &p);
			serial_log_cap(&p);
			t->seen_running = true;
			observe(a, vm, "running", NULL);
			goto out;
		}
		if (t->seen_running) {
			/* It ran under our eyes and went away without being asked:
			 * the guest powered itself off.  Take that as its intent. */
			log_info("vm %s: guest powered off", vm->name);
			nics_remove(a, vm);
			t->seen_running = false;
			store_vm_set_desired(a->st, vm->id, "stopped");
			char *d = strdup("stopped");
			if (d) {
				free(vm->desired);
				vm->desired = d;
			}
			observe(a, vm, "stopped", NULL);
			goto out;
		}
		if (strcmp(vm->state, "error") == 0)
			goto out; /* retried when the user asks again */
		/* Take it in the store first: when the scheduler has moved it
		 * to another host meanwhile, that host's agent owns it. */
		if (store_vm_claim(a->st, vm->id, a->cfg->host_name) != STORE_OK) {
			log_info("vm %s: no longer placed on this host; not starting it", vm->name);
			goto out;
		}
		observe(a, vm, "starting", NULL);
		/* A list carries no user data or key material (store.h): the
		 * launch, which may write them into a seed, reads the VM whole. */
		struct vm whole = { 0 };
		int launched = store_vm_get_id(a->st, vm->id, &whole) == STORE_OK
			       ? vm_launch(a, &whole, &p, &err) : (err = strdup("store failure"), -1);
		vm_free(&whole);
		if (launched < 0) {
			nics_remove(a, vm);
			observe(a, vm, "error", err);
			goto out;
		}
		t->seen_running = true;
		observe(a, vm, "running", NULL);
		goto out;
	}

	/* desired stopped or deleted */
	t->seen_running = false;
	if (pid > 0) {
		if (t->phase == STOP_NONE) {
			observe(a, vm, "stopping", NULL);
			if (qemu_powerdown(&p, &err) < 0)
				log_warn("vm %s: powerdown: %s", vm->name, err);
			t->phase = STOP_POWERDOWN_SENT;
			t->since = now;
		} else if (t->phase == STOP_POWERDOWN_SENT &&
			   now - t->since >= (long long)a->cfg->stop_timeout * 1000) {
			log_info("vm %s: no powerdown after %ds, quitting", vm->name,
				 a->cfg->stop_timeout);
			if (qemu_quit(&p, &err) < 0)
				log_warn("vm %s: quit: %s", vm->name, err);
			t->phase = STOP_QUIT_SENT;
			t->since = now;
		} else if (t->phase == STOP_QUIT_SENT && now - t->since >= QUIT_GRACE_MS) {
			log_warn("vm %s: QEMU ignored quit, killing pid %ld", vm->name, (long)pid);
			qemu_kill(&p);
		}
		again = TRANSITION_POLL_MS;
		goto out;
	}
	nics_remove(a, vm);
	file_remove(p.qmp);
	file_remove(p.serial);
	file_remove(p.pid);
	t->phase = STOP_NONE;
	if (strcmp(vm->desired, "deleted") == 0) {
		if (dir_remove_tree(p.dir) < 0) {
			log_warn("vm %s: remove %s: %s", vm->name, p.dir, strerror(errno));
			again = TRANSITION_POLL_MS;
			goto out;
		}
		store_vm_purge(a->st, vm->id);
		/* Gone from the store: its NICs leave this pass's network state. */
		for (size_t i = 0; i < vm->n_nics; i++) {
			free(vm->nics[i].network_name);
			free(vm->nics[i].network_ipv6);
			free(vm->nics[i].ipv4);
		}
		vm->n_nics = 0;
		track_drop(a, vm->id);
		acting(a, vm, "deleted");
		log_info("vm %s (%s): deleted", vm_id_format(vm->id).s, vm->name);
		goto out;
	}
	observe(a, vm, "stopped", NULL);
out:
	free(err);
	vm_paths_free(&p);
	return again;
}

static bool vm_owns_tap(const struct vm *vms, size_t n, const char *ifname)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(vms[i].desired, "running") != 0 && strcmp(vms[i].state, "stopping") != 0)
			continue;
		for (size_t j = 0; j < vms[i].n_nics; j++)
			if (strcmp(ifname_tap(vms[i].nics[j].id).s, ifname) == 0)
				return true;
	}
	return false;
}

/* Remove what looks like ours but no row wants: taps, bridges, VM dirs. */
static void sweep_strays(struct agent *a, const struct vm *vms, size_t n_vms,
			 const struct network *nets, size_t n_nets)
{
	char **names = NULL, *err = NULL;
	size_t n = 0;

	if (link_list_ours('v', &names, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (vm_owns_tap(vms, n_vms, names[i]))
				continue;
			/* An unplugged NIC of a running VM: free its netdev first. */
			for (size_t k = 0; k < n_vms; k++) {
				struct vm_paths p;
				if (strcmp(vms[k].desired, "running") != 0 ||
				    vm_paths_init(&p, a->cfg->state_dir, vms[k].id) < 0)
					continue;
				if (qemu_running_pid(&p) > 0)
					netdevs_release(&vms[k], &p, names[i]);
				vm_paths_free(&p);
			}
			log_info("removing stray tap %s", names[i]);
			enum ifname_kind kind;
			uint64_t nic;
			if (ifname_parse(names[i], &kind, &nic))
				tap_removing(a, nic);
			if (link_remove(names[i], &err) < 0) {
				log_warn("%s", err);
				free(err);
				err = NULL;
			}
		}
		link_names_free(names, n);
	}
	/* Bridges and vxlan links of networks no longer in the store (the
	 * overlay itself removes the x-links it no longer needs). */
	static const enum ifname_kind net_links[] = { IFNAME_VXLAN, IFNAME_BRIDGE };
	for (size_t k = 0; k < sizeof(net_links) / sizeof(net_links[0]); k++) {
		if (link_list_ours((char)net_links[k], &names, &n, &err) != 0) {
			free(err);
			err = NULL;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			enum ifname_kind kind;
			uint64_t id;
			bool wanted = false;
			if (!ifname_parse(names[i], &kind, &id))
				continue;
			for (size_t j = 0; j < n_nets && !wanted; j++)
				wanted = nets[j].id == id;
			if (wanted)
				continue;
			log_info("removing stray %s %s", kind == IFNAME_VXLAN ? "vxlan" : "bridge",
				 names[i]);
			if (link_remove(names[i], &err) < 0) {
				log_warn("%s", err);
				free(err);
				err = NULL;
			}
		}
		link_names_free(names, n);
	}
	free(err);

	uint64_t next_vm = 0;
	if (store_counter_peek(a->st, "vm", &next_vm) != STORE_OK)
		return;
	DIR *d = opendir(a->vms_dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		uint64_t id;
		bool wanted = false;
		if (!vm_id_parse(de->d_name, &id))
			continue;
		for (size_t i = 0; i < n_vms && !wanted; i++)
			wanted = vms[i].id == id;
		if (wanted)
			continue;
		/* An ID this store never issued means hcd runs on the wrong (or
		 * an older) database: killing that VM and deleting its disk
		 * would destroy what the right store still wants. */
		if (id == 0 || id >= next_vm) {
			log_err("VM directory %s is unknown to this store, which never issued that"
				" ID: left alone (wrong store?)", de->d_name);
			continue;
		}
		struct vm_paths p;
		if (vm_paths_init(&p, a->cfg->state_dir, id) < 0)
			continue;
		if (qemu_running_pid(&p) > 0) {
			/* Kill the orphan now; its directory goes on a later pass. */
			log_warn("killing QEMU of unknown VM %s", de->d_name);
			qemu_kill(&p);
		} else {
			log_info("removing stray VM directory %s", p.dir);
			dir_remove_tree(p.dir);
		}
		vm_paths_free(&p);
	}
	if (d)
		closedir(d);
}

static int min_wait(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/*
 * With an uplink the host routes between the networks and upstream (the
 * firewall decides what may cross); without one it routes nothing, which
 * keeps networks apart even before any rule is loaded.
 */
static void forwarding_ensure(const char *uplink)
{
	static const char *const knobs[] = { "/proc/sys/net/ipv4/ip_forward",
					     "/proc/sys/net/ipv6/conf/all/forwarding" };
	const char *want = uplink && uplink[0] ? "1\n" : NULL;

	if (want == NULL)
		return; /* never switch off what the administrator may need */
	for (size_t i = 0; i < 2; i++) {
		char *cur = NULL;
		if (file_read(knobs[i], 16, &cur, NULL) == 0 && cur[0] != '1') {
			FILE *f = fopen(knobs[i], "w");
			if (f == NULL || fputs(want, f) < 0)
				log_warn("cannot enable %s", knobs[i]);
			if (f)
				fclose(f);
		}
		free(cur);
	}
}

/*
 * The VXLAN links and their FDB (net/vxlan.h).  Logged when something
 * changed, so a quiet pass says nothing; entries that cannot be used
 * (a peer of the other address family, no underlay here) are warned about
 * when their number changes.
 */
static int overlay_converge(struct agent *a, const struct netstate *ns)
{
	struct vxlan_report r;
	char *err = NULL;
	int rc = vxlan_converge(ns, a->cfg->underlay, a->cfg->vxlan_port, &r, &err);

	if (rc < 0)
		log_warn("overlay: %s", err ? err : "failed");
	free(err);
	if (r.links_created || r.links_removed || r.fdb_added || r.fdb_removed)
		log_info("overlay: %zu vxlan links (%zu created, %zu removed), fdb entries"
			 " %zu added, %zu removed", r.links, r.links_created, r.links_removed,
			 r.fdb_added, r.fdb_removed);
	if (r.skipped != a->overlay_skipped && r.skipped > 0)
		log_warn("overlay: %zu fdb entries unusable (%s)", r.skipped,
			 a->cfg->underlay && a->cfg->underlay[0] ?
			 "peers whose underlay address family differs from ours" :
			 "this host has no underlay address");
	else if (r.skipped != a->overlay_skipped)
		log_info("overlay: every fdb entry usable again");
	a->overlay_skipped = r.skipped;
	return rc;
}

/*
 * Routed IPv6 prefixes and public IPv4 addresses of the VMs running here
 * (net/routes.h, issue 13): logged when something changed.
 */
static int routing_converge(struct agent *a, const struct netstate *ns)
{
	struct routes_report r6, r4;
	struct pool4 pool;
	char *err = NULL;
	int rc = 0;

	if (routes_converge(ns, &r6, &err) < 0) {
		log_warn("routes: %s", err ? err : "failed");
		rc = -1;
	}
	free(err);
	if (r6.added || r6.removed)
		log_info("routes: %zu routed prefixes (%zu added, %zu removed)", r6.wanted, r6.added, r6.removed);
	if (pool4_parse(a->cfg->public_ipv4_pool, &pool, &err) < 0) {
		log_warn("%s", err);            /* hcd checked it at start: out of memory */
		free(err);
		return -1;
	}
	if (public4_converge(ns, &pool, &a->public4, &r4, &err) < 0) {
		log_warn("public IPv4: %s", err ? err : "failed");
		rc = -1;
	}
	free(err);
	if (r4.added || r4.removed || r4.forgotten)
		log_info("public IPv4: %zu addresses on the uplink (%zu added, %zu removed), %zu stale"
			 " conntrack entries forgotten", r4.wanted, r4.added, r4.removed, r4.forgotten);
	pool4_free(&pool);
	return rc;
}

/*
 * Per-network services, derived from the pass's own list of networks and
 * VMs after the VMs converged (a VM purged in this pass has no NICs left
 * in it; states are as observed): a dnsmasq per network, and none for a
 * network that no longer exists.
 */
static int network_services_converge(struct agent *a, const struct network *nets, size_t n_nets,
				     const struct vm *vms, size_t n_vms)
{
	struct netstate ns;
	char *err = NULL;
	int again = -1;

	if (netstate_build(a->st, a->cfg->host_name, a->cfg->uplink, nets, n_nets, vms, n_vms,
			   &ns) != STORE_OK)
		return 5000;
	ns.metadata_port = a->cfg->metadata_port;
	forwarding_ensure(a->cfg->uplink);
	for (size_t i = 0; i < ns.n_nets; i++) {
		if (dnsmasq_ensure(&ns, &ns.nets[i], a->cfg->state_dir, &err) < 0) {
			log_warn("network %s: dnsmasq: %s", ns.nets[i].name, err ? err : "failed");
			again = 5000;
		}
		free(err);
		err = NULL;
	}
	dnsmasq_sweep(&ns, a->cfg->state_dir);
	/* The whole ruleset, every pass: a no-op when its version (a hash of
	 * its text) is the one installed. */
	if (firewall_apply(&ns, &err) < 0) {
		log_warn("firewall: %s", err ? err : "failed");
		again = 5000;
	}
	free(err);
	/* Routes after the firewall: what they let in meets the VMs' rules. */
	if (routing_converge(a, &ns) < 0)
		again = 5000;
	/* The overlay after the firewall: the ruleset fences every network's
	 * x-link by name, so a new one is fenced before it comes up. */
	if (overlay_converge(a, &ns) < 0)
		again = 5000;
	netstate_free(&ns);
	return again;
}

int agent_reconcile(struct agent *a, unsigned why)
{
	struct vm *vms = NULL;
	struct network *nets = NULL;
	size_t n_vms = 0, n_nets = 0;
	int again = -1;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	a->wakeups.local += (why & AGENT_WAKE_LOCAL) != 0;
	a->wakeups.notify += (why & AGENT_WAKE_NOTIFY) != 0;
	a->wakeups.resync += (why & AGENT_WAKE_RESYNC) != 0;
	a->wakeups.retry += (why & AGENT_WAKE_RETRY) != 0;
	a->why = why;
	a->told = false;
	if (store_network_list(a->st, OWNER_ANY, &nets, &n_nets) != STORE_OK ||
	    store_vm_list(a->st, OWNER_ANY, true, &vms, &n_vms) != STORE_OK) {
		again = 5000;
		goto out;
	}
	if (n_nets > 0) {
		char *err = NULL;
		/* Guests reach the metadata service through their gateway. */
		if (loopback_addr_ensure("169.254.169.254/32", &err) < 0)
			log_warn("metadata address: %s", err);
		free(err);
	}
	for (size_t i = 0; i < n_nets; i++) {
		char *err = NULL;
		if (bridge_ensure(ifname_bridge(nets[i].id).s, nets[i].ipv6, nets[i].ipv4, &err) < 0) {
			log_warn("network %s: %s", nets[i].name, err);
			again = min_wait(again, 5000);
		}
		free(err);
	}
	for (size_t i = 0; i < n_vms; i++) {
		if (vms[i].host && strcmp(vms[i].host, a->cfg->host_name) != 0)
			continue;
		again = min_wait(again, vm_converge(a, &vms[i]));
	}
	again = min_wait(again, network_services_converge(a, nets, n_nets, vms, n_vms));
	sweep_strays(a, vms, n_vms, nets, n_nets);
	/* After the strays: an ifb whose tap was just swept goes now.  The
	 * first pass and the resync read every redirect back. */
	if (bandwidth_converge(a->bw, why == 0 || (why & AGENT_WAKE_RESYNC)) < 0)
		again = min_wait(again, 5000);
out:
	vms_free(vms, n_vms);
	networks_free(nets, n_nets);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	a->last_pass_us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
	return again;
}

struct meter *agent_meter(struct agent *a)
{
	return a->meter;
}

void agent_wakeups(const struct agent *a, struct agent_wakeups *out)
{
	*out = a->wakeups;
}

long long agent_last_pass_us(const struct agent *a)
{
	return a->last_pass_us;
}

int agent_vm_reboot(struct agent *a, uint64_t vm_id, char **err)
{
	struct vm_paths p;
	int rc;

	*err = NULL;
	if (vm_paths_init(&p, a->cfg->state_dir, vm_id) < 0) {
		*err = strdup("out of memory");
		return -1;
	}
	if (qemu_running_pid(&p) <= 0) {
		*err = strdup("VM is not running");
		rc = -1;
	} else {
		rc = qemu_reset(&p, err);
	}
	vm_paths_free(&p);
	return rc;
}

char *agent_vm_log_path(struct agent *a, uint64_t vm_id)
{
	return str_printf("%s/%s/serial.log", a->vms_dir, vm_id_format(vm_id).s);
}

char *agent_vm_console_path(struct agent *a, uint64_t vm_id)
{
	return str_printf("%s/%s/serial.sock", a->vms_dir, vm_id_format(vm_id).s);
}
