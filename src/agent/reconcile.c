/* reconcile — see reconcile.h. */
#include "agent/reconcile.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "agent/migrate.h"
#include "agent/bandwidth.h"
#include "agent/meter.h"
#include "agent/netstate_load.h"
#include "common/addrpool.h"
#include "net/dnsmasq.h"
#include "net/firewall.h"
#include "net/link.h"
#include "net/routes.h"
#include "net/shaping.h"
#include "net/vxlan.h"
#include "vm/hotplug.h"
#include "vm/identity.h"
#include "vm/launch.h"
#include "vm/qemu.h"
#include "vm/resize.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRANSITION_POLL_MS 200
/* How long QEMU has to exit after QMP quit before it gets SIGKILL: a
 * stop lets it close its disks; a delete throws them away, so it gets
 * SIGKILL at once (a quit cost ~10 ms more than the kill here — QEMU's
 * main loop must get to it — and keeps nothing the delete wants). */
#define QUIT_GRACE_MS 5000
#define DELETE_GRACE_MS 0
/* A pass that started QEMUs leaves the network services to a pass this
 * much later at the latest (see agent_reconcile). */
#define NETWORK_DEFER_MS 500
/* After a failed application of the network services. */
#define NETWORK_RETRY_MS 5000

/*
 * What the agent remembers between passes; all of it can be lost.  A
 * restarted hcd sends the powerdown again (harmless); a job whose done
 * never ran left a QEMU that runs (adopted) or none (started again).
 */
enum vm_job {
	JOB_NONE,
	JOB_LAUNCH,     /* vm/launch.h on a worker: files, taps, QEMU */
	JOB_END,        /* qemu_end() on a worker: quit (not for a delete), SIGKILL, gone */
	JOB_HELD,       /* agent_vm_hold: the API works on its disks (snapshots) */
};

struct vm_track {
	uint64_t id;
	enum vm_job job;        /* while set, no pass touches this VM */
	bool powerdown_sent;    /* ACPI asked; `since` says when */
	long long since;
	bool seen_running;      /* this hcd saw its QEMU run */
	uint64_t nics_sig;      /* nics_sig() of the NICs its QEMU is known to have; 0 = ask */
	uint64_t res_sig;       /* resize_sig() of the size its QEMU is known to have; 0 = ask */
};

struct agent {
	struct store *st;
	const struct config *cfg;
	const char *accel;
	struct worker_pool *workers;
	void (*wake)(void *);   /* a job ended: hcd runs a pass soon */
	void *wake_arg;
	char *vms_dir;
	struct vm_track *tracks;
	size_t n_tracks;
	struct agent_wakeups wakeups;
	unsigned why;           /* the reasons of the pass under way */
	bool told;              /* it logged why it acts */
	const struct vm *pass_vms;  /* every VM row, during a pass */
	size_t pass_n;
	size_t launched;        /* launches this pass submitted */
	bool net_busy;          /* network services are being applied (a job) */
	bool net_dirty;         /* a pass wanted them meanwhile */
	long long net_retry_at; /* after a failure: when to try again (ms), or 0 */
	struct public4_memory public4; /* net/routes.h: the last conntrack sweep */
	size_t overlay_skipped; /* unusable overlay entries, as last warned about */
	long long last_pass_us; /* for GET /v1/info and bench/scale.sh */
	struct migrator *mig;   /* live migrations of this host (agent/migrate.h) */
	struct bandwidth *bw;   /* per-NIC limits (issue 13) */
	struct meter *meter;    /* traffic counters and resource use (issue 13) */
};

static void wake(struct agent *a);

static void wake_from_migrator(void *arg)
{
	wake(arg);
}

struct agent *agent_new(struct store *st, const struct config *cfg, const char *accel,
			struct worker_pool *workers, char **err)
{
	struct agent *a = calloc(1, sizeof(*a));

	*err = NULL;
	if (a == NULL)
		return NULL;
	a->st = st;
	a->cfg = cfg;
	a->accel = accel;
	a->workers = workers;
	if (identity_range_check(cfg->qemu_uid_base, cfg->qemu_uid_count, err) < 0) {
		agent_free(a);
		return NULL;
	}
	/* Every VM's QEMU passes through vms/ to its own directory. */
	a->vms_dir = str_printf("%s/vms", cfg->state_dir);
	if (a->vms_dir == NULL || mkdir_p(a->vms_dir, 0711) < 0 || chmod(a->vms_dir, 0711) < 0) {
		*err = str_printf("%s/vms: %s", cfg->state_dir, strerror(errno));
		agent_free(a);
		return NULL;
	}
	if ((a->mig = migrator_new(st, cfg, accel, wake_from_migrator, a, err)) == NULL) {
		agent_free(a);
		return NULL;
	}
	/* Both log why they could not start. */
	a->bw = bandwidth_new(st, cfg, workers);
	if (a->bw == NULL || (a->meter = meter_new(st, cfg, a->bw)) == NULL) {
		*err = strdup("bandwidth limits or the traffic meter cannot start");
		agent_free(a);
		return NULL;
	}
	migrator_set_meter(a->mig, a->meter);
	return a;
}

void agent_set_wake_hook(struct agent *a, void (*fn)(void *), void *arg)
{
	a->wake = fn;
	a->wake_arg = arg;
}

void agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	free(a->vms_dir);
	free(a->tracks);
	migrator_free(a->mig);
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
	return t == NULL || (t->job == JOB_NONE && !t->powerdown_sent && !t->seen_running);
}

static bool job_in_flight(struct agent *a, uint64_t id)
{
	struct vm_track *t = track_find(a, id);

	return t && t->job != JOB_NONE;
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

static void record(struct agent *a, uint64_t id, const char *name, const char *state,
		   const char *error)
{
	vm_id_str ids = vm_id_format(id);

	if (error)
		log_warn("vm %s (%s): %s: %s", ids.s, name, state, error);
	else
		log_info("vm %s (%s): %s", ids.s, name, state);
	store_vm_set_state(a->st, id, state, error);
}

/* Record an observed state when it differs from the stored one. */
static void observe(struct agent *a, struct vm *vm, const char *state, const char *error)
{
	bool same_err = (error == NULL && vm->error == NULL) ||
			(error && vm->error && strcmp(error, vm->error) == 0);
	if (strcmp(vm->state, state) == 0 && same_err)
		return;
	acting(a, vm, state);
	record(a, vm->id, vm->name, state, error);
	free(vm->state);
	vm->state = strdup(state);
}

static void wake(struct agent *a)
{
	if (a->wake)
		a->wake(a->wake_arg);
}

static int nics_ensure(const struct vm *vm, char **err)
{
	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *n = &vm->nics[i];
		ifname_str tap = ifname_tap(n->id);
		ifname_str br = ifname_bridge(n->network);
		if (tap_ensure(tap.s, br.s, -1, err) < 0)
			return -1;
	}
	return 0;
}

/* The VM's NIC set (IDs and networks) in one number, never 0: QEMU is
 * asked for its devices (QMP, slow while TCG boots the guest) only when
 * this differs from what it was last seen to have. */
static uint64_t nics_sig(const struct vm *vm)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < vm->n_nics; i++) {
		h = (h ^ vm->nics[i].id) * 1099511628211ULL;
		h = (h ^ vm->nics[i].network) * 1099511628211ULL;
	}
	return h ? h : 1;
}

/* A NIC's tap goes, and its ifb with it (net/shaping.h); any thread. */
static void tap_remove(uint64_t nic)
{
	char *err = NULL;

	if (link_remove(ifname_tap(nic).s, &err) < 0)
		log_warn("%s", err);
	free(err);
	if (shaping_ifb_remove(nic, &err) < 0)
		log_warn("%s", err);
	free(err);
}

/* On the loop: what the tap carried is counted right before it goes
 * (agent/meter.h). */
static void tap_remove_counted(struct agent *a, uint64_t nic)
{
	meter_tap_removing(a->meter, nic);
	tap_remove(nic);
}

static void nics_remove(struct agent *a, const struct vm *vm)
{
	for (size_t i = 0; i < vm->n_nics; i++)
		tap_remove_counted(a, vm->nics[i].id);
}

/* ---- jobs on worker threads --------------------------------------------- */

struct launch_job {
	struct agent *a;
	struct vm_launch *l;
	uint64_t nics_sig;      /* of the NICs it starts QEMU with */
	uint64_t res_sig;       /* of the size it starts QEMU with */
	int rc;
};

static void launch_work(void *arg)
{
	struct launch_job *j = arg;

	j->rc = vm_launch_run(j->l);
}

/* On the loop: what the launch found becomes the VM's state. */
static void launch_done(void *arg, bool ran)
{
	struct launch_job *j = arg;
	struct vm_launch *l = j->l;
	struct vm_track *t = track_find(j->a, l->vm_id);

	if (t)
		t->job = JOB_NONE;
	if (ran && j->rc < 0) {
		for (size_t i = 0; i < l->spec.n_nics; i++) {
			enum ifname_kind kind;
			uint64_t nic;
			if (ifname_parse(l->nics[i].ifname, &kind, &nic))
				tap_remove_counted(j->a, nic);
		}
		record(j->a, l->vm_id, l->name, "error", l->err ? l->err : "launch failed");
	} else if (ran) {
		if (t) {
			t->seen_running = true;
			t->nics_sig = j->nics_sig;
			t->res_sig = j->res_sig;
		}
		record(j->a, l->vm_id, l->name, "running", NULL);
	}
	wake(j->a);
	vm_launch_free(l);
	free(j);
}

/* The VM's disks go over its snapshot layers.  An operation on them that
 * is not finished (hcd was killed in it; hcd finishes it at start) leaves
 * the files half way: the VM does not start on those. */
static int launch_layers(struct agent *a, struct vm_launch *l, char **err)
{
	struct snapshot *v = NULL;
	size_t n = 0;
	uint64_t *ids = NULL;
	int rc = -1;

	if (store_snapshot_list(a->st, l->vm_id, &v, &n) != STORE_OK) {
		*err = strdup("store failure");
		return -1;
	}
	if ((ids = calloc(n + 1, sizeof(*ids))) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].state, "ready") != 0) {
			*err = str_printf("snapshot '%s' is still %s", v[i].name, v[i].state);
			goto out;
		}
		ids[i] = v[i].id;
	}
	rc = vm_launch_layers(l, ids, n);
out:
	free(ids);
	snapshots_free(v, n);
	return rc;
}

static int launch_submit(struct agent *a, const struct vm *vm, struct vm_track *t, char **err)
{
	struct image im = { 0 };
	struct vm whole = { 0 };
	struct launch_job *j = NULL;
	int rc = -1;

	if (store_image_get_id(a->st, vm->image, &im) != STORE_OK) {
		*err = strdup("image is not available");
		return -1;
	}
	/* A list carries no user data or key material (store.h): the seed
	 * is written from the VM read whole. */
	if (store_vm_get_id(a->st, vm->id, &whole) != STORE_OK) {
		*err = strdup("store failure");
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->l = vm_launch_new(&whole, &im, a->cfg, a->accel, err)) == NULL ||
	    launch_layers(a, j->l, err) < 0)
		goto out;
	j->a = a;
	j->nics_sig = nics_sig(vm);
	j->res_sig = resize_sig(&whole);
	if (worker_submit(a->workers, launch_work, launch_done, j) < 0) {
		*err = strdup("no worker to start it");
		goto out;
	}
	t->job = JOB_LAUNCH;
	a->launched++;
	j = NULL;
	rc = 0;
out:
	if (rc < 0 && *err == NULL)
		*err = strdup("out of memory");
	if (j)
		vm_launch_free(j->l);
	free(j);
	vm_free(&whole);
	image_free(&im);
	return rc;
}

/* Ending a QEMU, and its taps: both take the kernel a while (the
 * process's memory, a link's unregistering), and nothing on the loop
 * waits for them.  Once QEMU has SIGKILL the taps go while the kernel
 * tears it down (its memory first, its descriptors last), which halved
 * a delete's time to "tap gone" here; after a quit they go when QEMU is
 * gone, so that a QEMU closing down cleanly never sees its tap vanish. */
struct end_job {
	struct agent *a;
	uint64_t id;
	int grace_ms;
	char *name;
	struct vm_paths p;
	char *err;
	int rc;
	bool taps_gone;
	size_t n_taps;
	struct tap_last taps[];   /* each tap's last counters, read right before it goes */
};

static void end_taps(void *arg)
{
	struct end_job *j = arg;

	/* A killed QEMU sends nothing more: the counters are its last. */
	for (size_t i = 0; i < j->n_taps; i++) {
		meter_tap_read(j->taps[i].nic, &j->taps[i]);
		tap_remove(j->taps[i].nic);
	}
	j->taps_gone = true;
}

static void end_work(void *arg)
{
	struct end_job *j = arg;

	j->rc = qemu_end(&j->p, j->grace_ms, end_taps, j, &j->err);
	if (j->rc == 0 && !j->taps_gone)
		end_taps(j);
}

static void end_job_free(struct end_job *j)
{
	vm_paths_free(&j->p);
	free(j->name);
	free(j->err);
	free(j);
}

static void end_done(void *arg, bool ran)
{
	struct end_job *j = arg;
	struct vm_track *t = track_find(j->a, j->id);

	if (t)
		t->job = JOB_NONE;
	if (ran && j->rc < 0)
		log_warn("vm %s: %s", j->name, j->err);
	for (size_t i = 0; i < j->n_taps; i++) {
		if (ran && j->rc == 0)
			meter_tap_gone(j->a->meter, &j->taps[i]);
		else
			meter_tap_kept(j->a->meter, j->taps[i].nic);
	}
	wake(j->a);
	end_job_free(j);
}

/* End QEMU now (quit, then SIGKILL; a delete: SIGKILL), off the loop. */
static void end_submit(struct agent *a, const struct vm *vm, struct vm_track *t)
{
	struct end_job *j = calloc(1, sizeof(*j) + vm->n_nics * sizeof(j->taps[0]));

	if (j == NULL)
		return; /* tried again on the next pass */
	j->a = a;
	j->id = vm->id;
	j->grace_ms = strcmp(vm->desired, "deleted") == 0 ? DELETE_GRACE_MS : QUIT_GRACE_MS;
	j->n_taps = vm->n_nics;
	for (size_t i = 0; i < vm->n_nics; i++)
		j->taps[i].nic = vm->nics[i].id;
	if ((j->name = strdup(vm->name)) == NULL || vm_paths_init(&j->p, a->cfg->state_dir, vm->id) < 0)
		goto fail;
	for (size_t i = 0; i < j->n_taps; i++)
		meter_tap_leaving(a->meter, j->taps[i].nic);
	if (worker_submit(a->workers, end_work, end_done, j) < 0) {
		for (size_t i = 0; i < j->n_taps; i++)
			meter_tap_kept(a->meter, j->taps[i].nic);
		goto fail;
	}
	t->job = JOB_END;
	return;
fail:
	end_job_free(j);
}

/* ---- one VM ------------------------------------------------------------- */

/* Another VM of this host whose files and QEMU would have the same uid
 * (their IDs differ by a multiple of qemu_uid_count), or NULL. */
static const struct vm *identity_clash(const struct agent *a, const struct vm *vm)
{
	long long base = a->cfg->qemu_uid_base, count = a->cfg->qemu_uid_count;
	uid_t uid = identity_uid(base, count, vm->id);

	for (size_t i = 0; i < a->pass_n; i++) {
		const struct vm *o = &a->pass_vms[i];
		if (o->id != vm->id && (o->host == NULL || strcmp(o->host, a->cfg->host_name) == 0) &&
		    identity_uid(base, count, o->id) == uid)
			return o;
	}
	return NULL;
}

/* Desired running: adopt what runs, else start it (on a worker). */
static int vm_run(struct agent *a, struct vm *vm, struct vm_track *t, const struct vm_paths *p,
		  pid_t pid)
{
	char *err = NULL;
	const struct vm *clash;

	if (pid > 0 && t->powerdown_sent) {
		/* Started again while a stop is under way: the guest is
		 * already shutting down.  Let it finish, then launch. */
		return TRANSITION_POLL_MS;
	}
	if (pid <= 0) {
		t->nics_sig = 0;
		t->res_sig = 0;
		if (t->powerdown_sent) {
			t->powerdown_sent = false;
			t->seen_running = false;
			nics_remove(a, vm);
		}
	}
	if (pid > 0) {
		/* Running (or re-adopted after a restart of hcd).  Its taps and
		 * QEMU's NICs are checked when its NIC set changed (hotplug),
		 * and by the periodic resync. */
		uint64_t sig = nics_sig(vm);
		if (sig != t->nics_sig || (a->why & AGENT_WAKE_RESYNC)) {
			if (nics_ensure(vm, &err) < 0)
				log_warn("vm %s: %s", vm->name, err);
			free(err);
			t->nics_sig = hotplug_nics(vm, p) == 0 ? sig : 0;
		}
		/* Its size (vm/resize.h), when the row's changed. */
		uint64_t rsig = resize_sig(vm);
		if (rsig != t->res_sig)
			t->res_sig = resize_running(vm, p) == 0 ? rsig : 0;
		qemu_serial_log_cap(p);
		t->seen_running = true;
		observe(a, vm, "running", NULL);
		return -1;
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
		return -1;
	}
	if (strcmp(vm->state, "error") == 0)
		return -1; /* retried when the user asks again */
	if ((clash = identity_clash(a, vm)) != NULL) {
		char *why = str_printf("its uid %ld is VM %s's too (raise qemu_uid_count)",
				       (long)identity_uid(a->cfg->qemu_uid_base, a->cfg->qemu_uid_count,
							  vm->id), vm_id_format(clash->id).s);
		observe(a, vm, "error", why ? why : "uid in use");
		free(why);
		return -1;
	}
	/* Take it in the store first: when the scheduler has moved it
	 * to another host meanwhile, that host's agent owns it. */
	if (store_vm_claim(a->st, vm->id, a->cfg->host_name) != STORE_OK) {
		log_info("vm %s: no longer placed on this host; not starting it", vm->name);
		return -1;
	}
	/* What the QEMU about to start can be resized up to (vm/resize.h). */
	store_vm_ceilings_set(a->st, vm->id, resize_max_cpus(a->cfg->vm_max_cpus, 0));
	observe(a, vm, "starting", NULL);
	if (launch_submit(a, vm, t, &err) < 0) {
		observe(a, vm, "error", err);
		free(err);
	}
	return -1; /* the job wakes the agent when it is done */
}

/*
 * Desired stopped or deleted, QEMU still there.  A delete (its disks go
 * with it) and a forced stop end QEMU at once; a stop asks the guest
 * (ACPI) and ends QEMU only after stop_timeout.
 */
static int vm_halt(struct agent *a, struct vm *vm, struct vm_track *t)
{
	bool deleting = strcmp(vm->desired, "deleted") == 0;
	long long now = now_ms();
	struct vm_paths p;
	char *err = NULL;

	if (deleting || vm->force_stop ||
	    (t->powerdown_sent && now - t->since >= (long long)a->cfg->stop_timeout * 1000)) {
		/* The worker starts on QEMU first; what follows overlaps it. */
		end_submit(a, vm, t);
		observe(a, vm, "stopping", NULL);
		log_info("vm %s: %s", vm->name, deleting ? "deleted: killing QEMU now" :
			 vm->force_stop ? "forced stop: quitting QEMU now" :
			 "no powerdown in time: quitting QEMU");
		/* A VM being deleted loses its firewall elements in this
		 * pass (netstate_load), while QEMU ends. */
		return t->job == JOB_END ? -1 : TRANSITION_POLL_MS;
	}
	observe(a, vm, "stopping", NULL);
	if (!t->powerdown_sent && vm_paths_init(&p, a->cfg->state_dir, vm->id) == 0) {
		if (qemu_powerdown(&p, &err) < 0)
			log_warn("vm %s: powerdown: %s", vm->name, err);
		free(err);
		vm_paths_free(&p);
		t->powerdown_sent = true;
		t->since = now;
	}
	return TRANSITION_POLL_MS;
}

/* Drive one VM towards its desired state.  Returns ms until it needs
 * another look, or -1. */
static int vm_converge(struct agent *a, struct vm *vm)
{
	struct vm_paths p;
	struct vm_track *t;
	pid_t pid;
	int again = -1;

	if (vm_at_rest(a, vm))
		return -1;
	/* Its QEMU is a live migration's (agent/migrate.h). */
	if (migrator_owns(a->mig, vm->id))
		return -1;
	if ((t = track_get(a, vm->id)) == NULL)
		return TRANSITION_POLL_MS;
	if (t->job != JOB_NONE)
		return -1; /* its job wakes the agent when it is done */
	if (vm_paths_init(&p, a->cfg->state_dir, vm->id) < 0)
		return TRANSITION_POLL_MS;
	pid = qemu_running_pid(&p);
	if (strcmp(vm->desired, "running") == 0) {
		again = vm_run(a, vm, t, &p, pid);
		goto out;
	}
	t->seen_running = false;
	if (pid > 0) {
		again = vm_halt(a, vm, t);
		goto out;
	}
	/* No QEMU: nothing of a running VM may be left. */
	nics_remove(a, vm);
	file_remove(p.qmp);
	file_remove(p.serial);
	file_remove(p.pid);
	t->powerdown_sent = false;
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
	vm_paths_free(&p);
	return again;
}

/* A tap is wanted while its VM should run, is stopping, or has a job in
 * flight (a launch opens its taps on a worker). */
static bool vm_owns_tap(struct agent *a, const struct vm *vms, size_t n, const char *ifname)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(vms[i].desired, "running") != 0 && strcmp(vms[i].state, "stopping") != 0 &&
		    !job_in_flight(a, vms[i].id))
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
			if (vm_owns_tap(a, vms, n_vms, names[i]))
				continue;
			/* An unplugged NIC of a running VM: free its netdev first. */
			for (size_t k = 0; k < n_vms; k++) {
				struct vm_paths p;
				if (strcmp(vms[k].desired, "running") != 0 || job_in_flight(a, vms[k].id) ||
				    vm_paths_init(&p, a->cfg->state_dir, vms[k].id) < 0)
					continue;
				if (qemu_running_pid(&p) > 0)
					hotplug_netdev_release(&p, names[i]);
				vm_paths_free(&p);
			}
			log_info("removing stray tap %s", names[i]);
			enum ifname_kind kind;
			uint64_t nic;
			if (ifname_parse(names[i], &kind, &nic))
				meter_tap_removing(a->meter, nic);
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
 * Per-network services, derived from one snapshot taken after the VMs
 * converged (so purged VMs are already gone from it): the ruleset, a
 * dnsmasq per network (and none for a network that no longer exists),
 * the overlay.  The snapshot is read on the loop; applying it (a ruleset
 * swap, dnsmasq reloads: tens of milliseconds on a busy host) runs on a
 * worker, one application at a time: the loop goes on answering the API
 * meanwhile.  A pass while one is under way marks the services dirty,
 * and the end of that one asks for another pass.
 */
struct net_job {
	struct agent *a;
	struct netstate ns;
	bool failed;
};

static void net_work(void *arg)
{
	struct net_job *j = arg;
	struct agent *a = j->a;
	char *err = NULL;

	forwarding_ensure(a->cfg->uplink);
	/* The whole ruleset: a no-op when its version is the one installed.
	 * First: a new VM's traffic passes (and a deleted VM's elements go)
	 * without waiting for dnsmasq. */
	if (firewall_apply(&j->ns, &err) < 0) {
		log_warn("firewall: %s", err ? err : "failed");
		j->failed = true;
	}
	free(err);
	err = NULL;
	for (size_t i = 0; i < j->ns.n_nets; i++) {
		if (dnsmasq_ensure(&j->ns, &j->ns.nets[i], a->cfg->state_dir, &err) < 0) {
			log_warn("network %s: dnsmasq: %s", j->ns.nets[i].name, err ? err : "failed");
			j->failed = true;
		}
		free(err);
		err = NULL;
	}
	dnsmasq_sweep(&j->ns, a->cfg->state_dir);
	/* Routes after the firewall: what they let in meets the VMs' rules. */
	if (routing_converge(a, &j->ns) < 0)
		j->failed = true;
	/* The overlay after the firewall: the ruleset fences every network's
	 * x-link by name, so a new one is fenced before it comes up. */
	if (overlay_converge(a, &j->ns) < 0)
		j->failed = true;
}

static void net_done(void *arg, bool ran)
{
	struct net_job *j = arg;
	struct agent *a = j->a;

	a->net_busy = false;
	if (ran && j->failed)
		a->net_retry_at = now_ms() + NETWORK_RETRY_MS;
	if (a->net_dirty || (ran && j->failed)) {
		a->net_dirty = false;
		wake(a);
	}
	netstate_free(&j->ns);
	free(j);
}

/* Returns ms until the services want another pass, or -1. */
static int network_services_converge(struct agent *a, const struct network *nets, size_t n_nets,
				     const struct vm *vms, size_t n_vms)
{
	struct net_job *j;

	if (a->net_busy) {
		a->net_dirty = true;
		return -1;
	}
	/* After a failure, only a change or the retry brings them back: a
	 * pass that a job's end caused would only fail again at once. */
	if (a->net_retry_at > now_ms() && !(a->why & (AGENT_WAKE_LOCAL | AGENT_WAKE_NOTIFY |
						      AGENT_WAKE_RESYNC | AGENT_WAKE_RETRY)))
		return (int)(a->net_retry_at - now_ms());
	a->net_retry_at = 0;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NETWORK_RETRY_MS;
	j->a = a;
	if (netstate_build(a->st, a->cfg->host_name, a->cfg->uplink, nets, n_nets, vms, n_vms,
			   &j->ns) != STORE_OK) {
		free(j);
		return NETWORK_RETRY_MS;
	}
	j->ns.metadata_port = a->cfg->metadata_port;
	if (a->cfg->migrate_port_base > 0 && a->cfg->migrate_port_count >= 2 &&
	    a->cfg->migrate_port_base + a->cfg->migrate_port_count <= 65536) {
		j->ns.migrate_port_lo = (uint16_t)a->cfg->migrate_port_base;
		j->ns.migrate_port_hi = (uint16_t)(a->cfg->migrate_port_base + a->cfg->migrate_port_count - 1);
	}
	a->net_busy = true;
	/* The first pass (hcd starts: readiness waits for it), or no worker
	 * (hcd is stopping): here and now. */
	if (a->why == 0 || worker_submit(a->workers, net_work, net_done, j) < 0) {
		net_work(j);
		net_done(j, true);
	}
	return -1;
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
	a->wakeups.job += (why & AGENT_WAKE_JOB) != 0;
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
			again = wait_sooner(again, 5000);
		}
		free(err);
	}
	a->pass_vms = vms;
	a->pass_n = n_vms;
	a->launched = 0;
	again = wait_sooner(again, migrator_pass(a->mig));
	for (size_t i = 0; i < n_vms; i++) {
		if (vms[i].host && strcmp(vms[i].host, a->cfg->host_name) != 0)
			continue;
		again = wait_sooner(again, vm_converge(a, &vms[i]));
	}
	/* A pass that started QEMUs leaves the ruleset swap, dnsmasq and the
	 * sweep to the next pass (a launch's end, or NETWORK_DEFER_MS later
	 * at the latest), so that QEMU's start has the CPU: nothing needs
	 * them sooner.  A new tap that the ruleset does not know yet has its
	 * frames dropped (fail closed), and its guest sends none before its
	 * kernel has booted anyway. */
	if (a->launched > 0) {
		again = wait_sooner(again, NETWORK_DEFER_MS);
		goto out;
	}
	again = wait_sooner(again, network_services_converge(a, nets, n_nets, vms, n_vms));
	sweep_strays(a, vms, n_vms, nets, n_nets);
	/* Limits on every tap that is up now: taps a launch job made (its end
	 * woke this pass), hot-plugged ones (above), ones still there after a
	 * restart of hcd.  After the strays: an ifb whose tap was just swept
	 * goes now.  The first pass and the resync read every redirect back. */
	if (bandwidth_converge(a->bw, why == 0 || (why & AGENT_WAKE_RESYNC), why == 0) < 0)
		again = wait_sooner(again, 5000);
out:
	a->pass_vms = NULL;
	a->pass_n = 0;
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

int agent_migration_fd(const struct agent *a)
{
	return migrator_fd(a->mig);
}

void agent_migration_run(struct agent *a)
{
	migrator_run(a->mig);
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

int agent_vm_hold(struct agent *a, uint64_t vm_id, bool running, char **err)
{
	struct vm_track *t = track_get(a, vm_id);
	struct vm_paths p;
	pid_t pid;

	*err = NULL;
	if (t == NULL || vm_paths_init(&p, a->cfg->state_dir, vm_id) < 0) {
		*err = strdup("out of memory");
		return -1;
	}
	pid = qemu_running_pid(&p);
	vm_paths_free(&p);
	if (t->job != JOB_NONE || t->powerdown_sent) {
		*err = strdup("it is starting or stopping");
		return -1;
	}
	if ((pid > 0) != running) {
		*err = strdup(running ? "its QEMU does not run" : "its QEMU still runs");
		return -1;
	}
	t->job = JOB_HELD;
	return 0;
}

void agent_vm_release(struct agent *a, uint64_t vm_id)
{
	struct vm_track *t = track_find(a, vm_id);

	if (t && t->job == JOB_HELD)
		t->job = JOB_NONE;
	wake(a);
}

char *agent_vm_log_path(struct agent *a, uint64_t vm_id)
{
	return str_printf("%s/%s/serial.log", a->vms_dir, vm_id_format(vm_id).s);
}

char *agent_vm_console_path(struct agent *a, uint64_t vm_id)
{
	return str_printf("%s/%s/serial.sock", a->vms_dir, vm_id_format(vm_id).s);
}
