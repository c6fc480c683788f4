/* migrate (agent) — see migrate.h. */
#include "agent/migrate.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "agent/meter.h"
#include "net/link.h"
#include "net/shaping.h"
#include "vm/identity.h"
#include "vm/launch.h"
#include "vm/migrate.h"
#include "vm/qemu.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often a host waiting on its peer looks at the row again. */
#define WAIT_POLL_MS 1000
/* Migration jobs at once on this host (each side's steps are short but
 * for the source's transfer). */
#define MIGRATION_THREADS 4
/* A QEMU that is a copy nobody needs (a failed destination, a source
 * after the switch-over) may be killed at once. */
#define END_GRACE_MS 100

enum job_kind {
	J_PREPARE,      /* destination: QEMU waiting for the stream */
	J_TRANSFER,     /* source: mirrors and RAM */
	J_RESOLVE,      /* source, after a restart mid-transfer: what did QEMU do? */
	J_RESUME,       /* source, after a failure: the guest runs again */
	J_SWITCH,       /* destination: the stream is complete, exports stopped */
	J_RUN,          /* destination, after the switch-over: cont */
	J_DROP,         /* either: the copy not needed any more goes (QEMU, taps, dir) */
};

static const char *const job_names[] = { "prepare", "transfer", "resolve", "resume", "switch",
					 "run", "drop" };

struct job {
	struct migrator *m;
	enum job_kind kind;
	uint64_t vm;
	char *name;                 /* the VM's, for the log */
	struct vm_paths p;
	struct mig_params params;
	struct proc_opts qemu_id;
	struct vm_launch *launch;   /* J_PREPARE */
	char *log_b64;              /* J_RUN */
	struct tap_last taps[16];   /* J_DROP: the NICs, their taps' last counters */
	size_t n_taps;
	bool source;                /* this host is the migration's source */
	volatile int cancel;        /* J_TRANSFER: the loop gives up */
	struct mig_result res;
	char *err;
	int rc;
};

struct migrator {
	struct store *st;
	const struct config *cfg;
	const char *accel;
	struct worker_pool *workers;
	void (*wake)(void *);
	void *wake_arg;
	struct meter *meter;        /* counts a dropped tap's last traffic, or NULL */
	struct job **jobs;          /* in flight, one per VM at most */
	size_t n_jobs;
	uint64_t *owned;            /* VMs whose QEMU is the migration's (last pass) */
	size_t n_owned;
};

struct migrator *migrator_new(struct store *st, const struct config *cfg, const char *accel,
			      void (*wake)(void *), void *wake_arg, char **err)
{
	struct migrator *m = calloc(1, sizeof(*m));

	*err = NULL;
	if (m == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	m->st = st;
	m->cfg = cfg;
	m->accel = accel;
	m->wake = wake;
	m->wake_arg = wake_arg;
	/* A pool of its own: a transfer holds its thread for as long as it
	 * runs (up to migrate_timeout), which must not hold up the launches
	 * and network jobs of hcd's pool.  More migrations than threads
	 * wait their turn. */
	if ((m->workers = worker_pool_new(MIGRATION_THREADS, err)) == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void migrator_free(struct migrator *m)
{
	if (m == NULL)
		return;
	/* hcd stops: transfers under way are given up (the source resumes
	 * its guest), so that the pool's end need not wait them out; their
	 * done callbacks record it while the store is still open. */
	for (size_t i = 0; i < m->n_jobs; i++)
		m->jobs[i]->cancel = 1;
	worker_pool_free(m->workers);
	free(m->jobs);
	free(m->owned);
	free(m);
}

void migrator_set_meter(struct migrator *m, struct meter *meter)
{
	m->meter = meter;
}

int migrator_fd(const struct migrator *m)
{
	return worker_pool_fd(m->workers);
}

void migrator_run(struct migrator *m)
{
	worker_pool_run(m->workers);
}

bool migrator_owns(const struct migrator *m, uint64_t vm_id)
{
	for (size_t i = 0; i < m->n_owned; i++)
		if (m->owned[i] == vm_id)
			return true;
	return false;
}

static struct job *job_find(struct migrator *m, uint64_t vm)
{
	for (size_t i = 0; i < m->n_jobs; i++)
		if (m->jobs[i]->vm == vm)
			return m->jobs[i];
	return NULL;
}

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->name);
	vm_paths_free(&j->p);
	vm_launch_free(j->launch);
	free(j->log_b64);
	mig_result_free(&j->res);
	sodium_memzero(j->params.psk, sizeof(j->params.psk));
	free(j->err);
	free(j);
}

static void job_forget(struct migrator *m, struct job *j)
{
	for (size_t i = 0; i < m->n_jobs; i++)
		if (m->jobs[i] == j) {
			m->jobs[i] = m->jobs[--m->n_jobs];
			break;
		}
}

static const char *vm_label(uint64_t id)
{
	static char buf[16];

	snprintf(buf, sizeof(buf), "%s", vm_id_format(id).s);
	return buf;
}

/* ---- the work, on a worker ------------------------------------------------ */

static void drop_copy(struct job *j)
{
	char *err = NULL;

	if (qemu_end(&j->p, END_GRACE_MS, NULL, NULL, &err) < 0) {
		j->err = err;
		j->rc = -1;
		return;
	}
	/* As the agent ends a QEMU: each tap's counters read right before
	 * it goes (agent/meter.h), its shaping device with it. */
	for (size_t i = 0; i < j->n_taps; i++) {
		meter_tap_read(j->taps[i].nic, &j->taps[i]);
		if (link_remove(ifname_tap(j->taps[i].nic).s, &err) < 0)
			log_warn("%s", err);
		free(err);
		err = NULL;
		if (shaping_ifb_remove(j->taps[i].nic, &err) < 0)
			log_warn("%s", err);
		free(err);
		err = NULL;
	}
	if (dir_remove_tree(j->p.dir) < 0) {
		j->err = str_printf("%s: %s", j->p.dir, strerror(errno));
		j->rc = -1;
	}
}

static void prepare(struct job *j)
{
	char *dir = NULL, *err = NULL;
	struct vm_launch *l = j->launch;

	/* What an earlier attempt left here is stale: the disks must start
	 * empty, or blocks the source never wrote would show through. */
	drop_copy(j);
	if (j->rc < 0)
		return;
	if (qemu_dir_ensure(&l->paths, &l->qemu_id, &err) < 0 ||
	    mig_tls_write(&l->paths, &l->qemu_id, j->params.psk, &dir, &err) < 0) {
		j->err = err;
		j->rc = -1;
		return;
	}
	l->spec.incoming = true;
	l->spec.tls_psk_dir = dir;
	if (vm_launch_run(l) < 0) {
		j->err = l->err ? strdup(l->err) : strdup("launch failed");
		j->rc = -1;
	} else if (mig_dest_listen(&j->p, &j->params, &j->err) < 0) {
		j->rc = -1;
	}
	l->spec.tls_psk_dir = NULL;
	free(dir);
	if (j->rc < 0) {
		char *e2 = NULL;
		qemu_end(&j->p, END_GRACE_MS, NULL, NULL, &e2);
		free(e2);
	}
}

static void job_work(void *arg)
{
	struct job *j = arg;
	char *dir = NULL;

	j->rc = 0;
	switch (j->kind) {
	case J_PREPARE:
		prepare(j);
		break;
	case J_TRANSFER:
		/* A failure is not undone here: job_done records why, then the
		 * source's J_RESUME undoes it (vm/migrate.h). */
		if (mig_tls_write(&j->p, &j->qemu_id, j->params.psk, &dir, &j->err) < 0 ||
		    mig_source_transfer(&j->p, &j->params, &j->cancel, &j->res, &j->err) < 0)
			j->rc = -1;
		free(dir);
		break;
	case J_RESOLVE: {
		char *st = mig_source_status(&j->p, &j->res);
		/* Undone by the J_RESUME that follows "failed", as a failed
		 * transfer is: the reason is recorded first. */
		if (st == NULL || strcmp(st, "completed") != 0) {
			j->err = str_printf("hcd restarted during the transfer (QEMU: %s)",
					    st ? st : "no answer");
			j->rc = -1;
		}
		free(st);
		break;
	}
	case J_RESUME:
		/* No QEMU: nothing to resume (the agent starts it again). */
		if (qemu_running_pid(&j->p) > 0 && mig_source_abort(&j->p, &j->params, &j->err) < 0)
			j->rc = -1;
		break;
	case J_SWITCH:
		/* Half the source's patience: it gives up on us after all of it. */
		if (mig_dest_finish(&j->p, &j->params, j->m->cfg->migrate_wait_timeout * 500, &j->err) < 0)
			j->rc = -1;
		break;
	case J_RUN:
		if (qemu_running_pid(&j->p) > 0 && mig_dest_run(&j->p, j->log_b64, &j->err) < 0)
			j->rc = -1;
		break;
	case J_DROP:
		drop_copy(j);
		break;
	}
}

/* ---- steps, on the loop ---------------------------------------------------- */

static void advance(struct migrator *m, uint64_t vm, const char *from, const char *to,
		    const struct migration_report *rep, const char *error)
{
	int rc = store_migration_advance(m->st, vm, from, to, rep, error);

	if (rc == STORE_OK && error)
		log_warn("vm %s: migration %s: %s", vm_label(vm), to, error);
	else if (rc == STORE_OK)
		log_info("vm %s: migration %s", vm_label(vm), to);
	else if (rc == STORE_CONFLICT)
		log_info("vm %s: migration no longer %s: the other host took the step", vm_label(vm),
			 from ? from : "under way");
}

/* A job's outcome as the row's next step: to, or failed with its error. */
static void step(struct migrator *m, const struct job *j, const char *from, const char *to,
		 const struct migration_report *rep)
{
	if (j->rc == 0)
		advance(m, j->vm, from, to, rep, NULL);
	else
		advance(m, j->vm, from, "failed", NULL, j->err ? j->err : job_names[j->kind]);
}

static void job_done(void *arg, bool ran)
{
	struct job *j = arg;
	struct migrator *m = j->m;

	job_forget(m, j);
	if (!ran)
		goto out;
	if (j->rc < 0)
		log_warn("vm %s (%s): migration %s: %s", vm_label(j->vm), j->name,
			 job_names[j->kind], j->err ? j->err : "failed");
	switch (j->kind) {
	case J_PREPARE:
		step(m, j, "requested", "prepared", NULL);
		break;
	case J_TRANSFER:
	case J_RESOLVE: {
		struct migration_report rep = {
			.total_ms = j->res.total_ms, .downtime_ms = j->res.downtime_ms,
			.ram_bytes = j->res.ram_bytes, .disk_bytes = j->res.disk_bytes,
			.log = j->res.log_b64,
		};
		step(m, j, "transferring", "transferred", &rep);
		break;
	}
	case J_RESUME:
		if (j->rc == 0)
			store_migration_side_done(m->st, j->vm, true);
		break;
	case J_SWITCH:
		step(m, j, "transferred", "done", NULL);
		break;
	case J_RUN:
		if (j->rc == 0) {
			log_info("vm %s (%s): runs here after its migration", vm_label(j->vm), j->name);
			store_migration_side_done(m->st, j->vm, false);
		}
		break;
	case J_DROP:
		if (j->rc == 0)
			store_migration_side_done(m->st, j->vm, j->source);
		break;
	}
	for (size_t i = 0; m->meter && j->kind == J_DROP && i < j->n_taps; i++) {
		if (ran && j->rc == 0)
			meter_tap_gone(m->meter, &j->taps[i]);
		else
			meter_tap_kept(m->meter, j->taps[i].nic);
	}
out:
	if (m->wake)
		m->wake(m->wake_arg);
	job_free(j);
}

/* The VM's disks as QEMU names them (vm/qemu_argv.c): the root disk
 * "disk" (an overlay over the image when the image is a disk image),
 * then "data0", "data1", … */
static int params_fill(struct migrator *m, const struct migration *r, const struct vm *vm,
		       const char *addr, struct mig_params *pp)
{
	struct image im = { 0 };
	bool disk_image;

	memset(pp, 0, sizeof(*pp));
	if (store_image_get_id(m->st, vm->image, &im) != STORE_OK)
		return -1;
	disk_image = im.boot && strcmp(im.boot, "disk") == 0;
	image_free(&im);
	if (addr == NULL || strlen(addr) >= sizeof(pp->addr) || vm->n_disks + 1 > MIG_DISKS_MAX)
		return -1;
	snprintf(pp->addr, sizeof(pp->addr), "%s", addr);
	pp->nbd_port = r->nbd_port;
	pp->mig_port = r->mig_port;
	if (r->psk)
		snprintf(pp->psk, sizeof(pp->psk), "%s", r->psk);
	if (disk_image || vm->disk_size > 0) {
		snprintf(pp->disks[pp->n_disks].node, sizeof(pp->disks[0].node), "disk");
		pp->disks[pp->n_disks++].top = disk_image;
	}
	for (unsigned i = 0; i < vm->n_disks && i < MIG_DISKS_MAX - 1; i++)
		snprintf(pp->disks[pp->n_disks++].node, sizeof(pp->disks[0].node), "data%u", i % 100);
	pp->max_downtime_ms = m->cfg->migrate_max_downtime_ms;
	pp->max_bandwidth = (long long)m->cfg->migrate_max_bandwidth << 20;
	pp->timeout_s = m->cfg->migrate_timeout;
	pp->stall_s = m->cfg->migrate_stall_timeout;
	return 0;
}

/* A job for a VM of a row: the VM read whole, paths, identity, params. */
static int submit(struct migrator *m, const struct migration *r, enum job_kind kind)
{
	struct vm vm = { 0 };
	struct job *j = calloc(1, sizeof(*j));
	struct job **nj;
	bool source = strcmp(r->source, m->cfg->host_name) == 0;
	char *err = NULL;

	if (j == NULL || store_vm_get_id(m->st, r->vm, &vm) != STORE_OK)
		goto fail;
	j->m = m;
	j->kind = kind;
	j->vm = r->vm;
	j->source = source;
	/* Never a copy of the VM where it lives: only the host the store
	 * names runs it, and nothing here may touch that QEMU or its disks. */
	if (!source && vm.host && strcmp(vm.host, m->cfg->host_name) == 0 &&
	    (kind == J_PREPARE || kind == J_DROP)) {
		err = strdup("the VM lives on this host");
		goto fail;
	}
	if ((j->name = strdup(vm.name)) == NULL ||
	    vm_paths_init(&j->p, m->cfg->state_dir, r->vm) < 0 ||
	    params_fill(m, r, &vm, r->dest_addr, &j->params) < 0 ||
	    identity_qemu(m->cfg->qemu_uid_base, m->cfg->qemu_uid_count, r->vm,
			  strcmp(m->accel, "kvm") == 0, &j->qemu_id, &err) < 0)
		goto fail;
	for (size_t i = 0; i < vm.n_nics && i < sizeof(j->taps) / sizeof(j->taps[0]); i++)
		j->taps[j->n_taps++].nic = vm.nics[i].id;
	if (kind == J_PREPARE) {
		struct image im = { 0 };
		if (store_image_get_id(m->st, vm.image, &im) != STORE_OK)
			goto fail;
		j->launch = vm_launch_new(&vm, &im, m->cfg, m->accel, &err);
		image_free(&im);
		if (j->launch == NULL)
			goto fail;
		/* The source's QEMU as it was started, whatever the row says
		 * now (a balloon below it, this host's own CPU count, NICs
		 * where an hcd from before slots let QEMU put them): the
		 * migration stream fits only the same machine. */
		int mem = 0, maxcpus = 0;
		bool nic_slots = false;
		if (store_migration_ceilings(m->st, r->vm, &mem, &maxcpus, &nic_slots) != STORE_OK)
			goto fail;
		if (mem > 0)
			j->launch->spec.memory_mib = mem;
		if (maxcpus > 0)
			j->launch->spec.max_cpus = maxcpus;
		for (size_t i = 0; !nic_slots && i < j->launch->spec.n_nics; i++)
			j->launch->nics[i].pci_slot = 0;
	}
	if (kind == J_RUN) {
		struct migration full = { 0 };
		if (store_migration_get(m->st, r->vm, true, &full) == STORE_OK) {
			j->log_b64 = full.log;
			full.log = NULL;
		}
		migration_free(&full);
	}
	nj = realloc(m->jobs, (m->n_jobs + 1) * sizeof(*nj));
	if (nj == NULL)
		goto fail;
	m->jobs = nj;
	m->jobs[m->n_jobs++] = j;
	for (size_t i = 0; m->meter && kind == J_DROP && i < j->n_taps; i++)
		meter_tap_leaving(m->meter, j->taps[i].nic);
	if (worker_submit(m->workers, job_work, job_done, j) < 0) {
		for (size_t i = 0; m->meter && kind == J_DROP && i < j->n_taps; i++)
			meter_tap_kept(m->meter, j->taps[i].nic);
		m->n_jobs--;
		goto fail;
	}
	vm_free(&vm);
	return 0;
fail:
	if (err)
		log_warn("vm %s: migration %s: %s", vm_label(r->vm), job_names[kind], err);
	free(err);
	vm_free(&vm);
	job_free(j);
	return -1;
}

static bool host_dead(struct migrator *m, const char *name)
{
	struct host h = { 0 };
	bool dead = store_host_get(m->st, name, &h) == STORE_OK && strcmp(h.state, "dead") == 0;

	host_free(&h);
	return dead;
}

/* The source: it owns the VM until the switch-over. */
static int source_step(struct migrator *m, const struct migration *r)
{
	long long waited = (long long)time(NULL) - r->updated;
	bool late = waited >= m->cfg->migrate_wait_timeout;

	if (strcmp(r->state, "requested") == 0 || strcmp(r->state, "transferred") == 0) {
		if (late || host_dead(m, r->dest)) {
			char why[160];
			snprintf(why, sizeof(why), "host %s did not %s within %d s", r->dest,
				 r->state[0] == 'r' ? "prepare" : "take over", m->cfg->migrate_wait_timeout);
			advance(m, r->vm, r->state, "failed", NULL, why);
			return 0;
		}
		return WAIT_POLL_MS;
	}
	if (strcmp(r->state, "prepared") == 0) {
		if (store_migration_advance(m->st, r->vm, "prepared", "transferring", NULL, NULL) != STORE_OK)
			return 0;
		log_info("vm %s: migration transferring to %s", vm_label(r->vm), r->dest);
		submit(m, r, J_TRANSFER);
		return -1;
	}
	if (strcmp(r->state, "transferring") == 0) {
		/* No job of ours: hcd was restarted in the middle of it. */
		submit(m, r, J_RESOLVE);
		return -1;
	}
	if (strcmp(r->state, "failed") == 0)
		submit(m, r, J_RESUME);
	else if (strcmp(r->state, "done") == 0 && r->dest_done)
		submit(m, r, J_DROP);
	else if (strcmp(r->state, "done") == 0)
		return WAIT_POLL_MS;    /* the copy stays until the destination runs the VM */
	return -1;
}

/* The destination: it owns its copy until the switch-over. */
static int dest_step(struct migrator *m, const struct migration *r)
{
	if (strcmp(r->state, "requested") == 0) {
		submit(m, r, J_PREPARE);
	} else if (strcmp(r->state, "prepared") == 0 || strcmp(r->state, "transferring") == 0) {
		struct vm_paths p;
		if (vm_paths_init(&p, m->cfg->state_dir, r->vm) == 0) {
			if (qemu_running_pid(&p) <= 0)
				advance(m, r->vm, r->state, "failed", NULL,
					"the destination's QEMU is gone");
			vm_paths_free(&p);
		}
		return WAIT_POLL_MS;
	} else if (strcmp(r->state, "transferred") == 0) {
		submit(m, r, J_SWITCH);
	} else if (strcmp(r->state, "done") == 0) {
		submit(m, r, J_RUN);
	} else if (strcmp(r->state, "failed") == 0) {
		submit(m, r, J_DROP);
	}
	return -1;
}

int migrator_pass(struct migrator *m)
{
	struct migration *v = NULL;
	size_t n = 0;
	int again = -1;

	if (store_migration_list(m->st, m->cfg->host_name, &v, &n) != STORE_OK)
		return WAIT_POLL_MS;
	free(m->owned);
	m->owned = calloc(n + 1, sizeof(*m->owned));
	m->n_owned = 0;
	for (size_t i = 0; i < n; i++) {
		const struct migration *r = &v[i];
		bool source = strcmp(r->source, m->cfg->host_name) == 0;
		struct job *j = job_find(m, r->vm);
		/* The source's QEMU is the migration's until its part is over;
		 * the destination's until the switch-over (then the agent
		 * adopts it like any QEMU of this host). */
		if (m->owned && (source || !migration_final(r)))
			m->owned[m->n_owned++] = r->vm;
		if (j) {
			/* A transfer the destination gave up on ends now. */
			if (j->kind == J_TRANSFER && strcmp(r->state, "failed") == 0)
				j->cancel = 1;
			continue;
		}
		again = wait_sooner(again, source ? source_step(m, r) : dest_step(m, r));
	}
	migrations_free(v, n);
	return again;
}
