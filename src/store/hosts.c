/*
 * hosts — the hosts of a cluster, their liveness, and where VMs go.
 *
 * Placement is computed from the store alone, inside one transaction, so
 * every scheduler (each hcd with the scheduler role) reaches the same
 * answer from the same rows, and two placements never both take the last
 * free memory of a host: writers are serialised by either engine.
 *
 * Each host's load (vms, used_cpus, used_mib: what its VMs not deleted ask
 * for) is kept in its own row by the very transactions that change it —
 * a VM created on it, deleted, purged or moved (host_load_add) — so a
 * decision reads the hosts and never the VMs: its cost does not grow with
 * the number of VMs (issue 12 §6).  Registration recounts a host's load
 * from the VMs, so whatever a crash or an older hcd left is healed at
 * every start.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void host_free(struct host *h)
{
	if (!h)
		return;
	free(h->name);
	free(h->address);
	free(h->accel);
	free(h->state);
	memset(h, 0, sizeof(*h));
}

void hosts_free(struct host *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		host_free(&v[i]);
	free(v);
}

/* A host with what its VMs (those not deleted) ask for. */
#define HOST_COLS "h.name, h.address, h.cpus, h.memory_mib, h.accel, h.state, h.drain," \
	" h.last_seen, h.created, h.vms, h.used_cpus, h.used_mib, h.drain_migrate, h.drain_started" \
	" FROM hosts h"

static void fill_host(void *e, const struct sval *c)
{
	struct host *h = e;

	h->name = sv_strdup(&c[0]);
	h->address = sv_strdup(&c[1]);
	h->cpus = (int)c[2].i;
	h->memory_mib = c[3].i;
	h->accel = sv_strdup(&c[4]);
	h->state = sv_strdup(&c[5]);
	h->drain = c[6].i != 0;
	h->last_seen = c[7].i;
	h->created = c[8].i;
	h->vms = (int)c[9].i;
	h->used_cpus = (int)c[10].i;
	h->used_mib = c[11].i;
	h->drain_migrate = (int)c[12].i;
	h->drain_started = c[13].i;
}

static int host_rows(struct store *st, const char *where, const struct sval *p, int n,
		     struct host **out, size_t *count)
{
	struct rows r = { .elem = sizeof(struct host), .fill = fill_host };
	char sql[1024];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " HOST_COLS "%s ORDER BY h.name", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc != STORE_OK) {
		hosts_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*count = r.n;
	return STORE_OK;
}

int store_host_list(struct store *st, struct host **out, size_t *n)
{
	return host_rows(st, "", NULL, 0, out, n);
}

int store_host_get(struct store *st, const char *name, struct host *out)
{
	struct host *v = NULL;
	size_t n = 0;
	int rc = host_rows(st, " WHERE h.name = ?", &SV_S(name), 1, &v, &n);

	if (rc == STORE_OK && n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK) {
		*out = v[0];
		memset(&v[0], 0, sizeof(v[0]));
	}
	hosts_free(v, n);
	return rc;
}

int store_host_register(struct store *st, const struct host *h)
{
	int64_t now = store_now();
	struct sval p[] = { SV_S(h->name), SV_S(h->address), SV_I(h->cpus), SV_I(h->memory_mib),
			    SV_S(h->accel), SV_I(now), SV_I(now) };
	struct sval n[] = { SV_S(h->name), SV_S(h->name), SV_S(h->name), SV_S(h->name) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_w(st, "INSERT INTO hosts (name, address, cpus, memory_mib, accel, state,"
			     " last_seen, created) VALUES (?, ?, ?, ?, ?, 'live', ?, ?)"
			     " ON CONFLICT (name) DO UPDATE SET address = excluded.address,"
			     " cpus = excluded.cpus, memory_mib = excluded.memory_mib,"
			     " accel = excluded.accel, state = 'live', last_seen = excluded.last_seen",
			     p, 7);
	/* The one place the load is counted from the VMs (see the top). */
	if (rc == STORE_OK)
		rc = store_q(st, "UPDATE hosts SET"
			     " vms = (SELECT COUNT(*) FROM vms v WHERE v.host = ? AND v.desired <> 'deleted'),"
			     " used_cpus = (SELECT COALESCE(SUM(v.cpus), 0) FROM vms v"
			     " WHERE v.host = ? AND v.desired <> 'deleted'),"
			     " used_mib = (SELECT COALESCE(SUM(v.memory_mib), 0) FROM vms v"
			     " WHERE v.host = ? AND v.desired <> 'deleted') WHERE name = ?",
			     n, 4, NULL, NULL);
	store_event_touch(st, "host", h->name, "updated");
	return store_tx_end(st, rc);
}

/* The row's share of a host's load, and the host it counts on. */
struct vm_load {
	char *host;
	int64_t cpus, mib;
	bool deleted;
};

static int vm_load_row(void *arg, const struct sval *c, int n)
{
	struct vm_load *l = arg;

	l->host = sv_strdup(&c[0]);
	l->cpus = c[1].i;
	l->mib = c[2].i;
	l->deleted = c[3].t == SV_TEXT && strcmp(c[3].s, "deleted") == 0;
	return 1;
}

int host_load_add(struct store *st, const char *host, int sign, int64_t cpus, int64_t mib)
{
	struct sval p[] = { SV_I(sign), SV_I(sign * cpus), SV_I(sign * mib), SV_S(host) };

	if (host == NULL)
		return STORE_OK;
	return store_q(st, "UPDATE hosts SET vms = vms + ?, used_cpus = used_cpus + ?,"
		       " used_mib = used_mib + ? WHERE name = ?", p, 4, NULL, NULL);
}

int host_load_vm(struct store *st, uint64_t vm_id, const char *next)
{
	struct vm_load l = { 0 };
	int rc = store_q(st, "SELECT host, cpus, memory_mib, desired FROM vms WHERE id = ?",
			 &SV_I(vm_id), 1, vm_load_row, &l);
	/* A VM counts while it is not deleted. */
	int was = rc == STORE_OK && l.host && !l.deleted;
	int will = l.host && next && strcmp(next, "deleted") != 0;

	if (rc == STORE_OK && was != will)
		rc = host_load_add(st, l.host, will - was, l.cpus, l.mib);
	free(l.host);
	return rc;
}

int store_host_heartbeat(struct store *st, const char *name, int64_t now)
{
	struct sval p[] = { SV_I(now), SV_S(name) };
	struct sval q[] = { SV_S(name), SV_S(name) };
	size_t revived = 0;
	int64_t readers = 0;
	/* Who would read it: another live host, or (we are marked dead) the
	 * cluster that must see us back.  A plain read: no write lock. */
	int rc = store_q(st, "SELECT COUNT(*) FROM hosts WHERE (name <> ? AND state = 'live')"
			 " OR (name = ? AND state <> 'live')", q, 2, store_row_int, &readers);

	if (rc != STORE_OK || readers == 0)
		return rc;
	rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "UPDATE hosts SET last_seen = ? WHERE name = ?", p, 2, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q_count(st, "UPDATE hosts SET state = 'live' WHERE name = ? AND state = 'dead'"
				   " RETURNING 1", &SV_S(name), 1, &revived);
	/* Only a return to life is news for the other hosts. */
	if (rc == STORE_OK && revived > 0) {
		store_mark_changed(st, "hosts");
		store_event_touch(st, "host", name, "updated");
	}
	return store_tx_end(st, rc);
}

int store_host_set_drain(struct store *st, const char *name, bool drain)
{
	struct sval p[] = { SV_I(drain ? 1 : 0), SV_S(name) };
	size_t found = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q_count(st, "UPDATE hosts SET drain = ?, drain_migrate = 0 WHERE name = ?"
				   " RETURNING 1", p, 2, &found);
	if (rc == STORE_OK && found == 0)
		rc = STORE_NOTFOUND;
	store_event_touch(st, "host", name, "updated");
	return store_tx_end(st, rc);
}

int store_host_drain_migrate(struct store *st, const char *name, int parallel)
{
	struct sval p[] = { SV_I(parallel), SV_I(store_now()), SV_S(name) };
	size_t found = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q_count(st, "UPDATE hosts SET drain = 1, drain_migrate = ?, drain_started = ?"
				   " WHERE name = ? RETURNING 1", p, 3, &found);
	if (rc == STORE_OK && found == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		store_mark_changed(st, "hosts");
	store_event_touch(st, "host", name, "updated");
	return store_tx_end(st, rc);
}

struct dead_pass {
	struct store *st;
	size_t n;
};

/* Each host just marked dead is news for the event streams. */
static int host_died(void *arg, const struct sval *c, int n)
{
	struct dead_pass *d = arg;

	if (n > 0 && c[0].t == SV_TEXT)
		store_event_touch(d->st, "host", c[0].s, "updated");
	d->n++;
	return 0;
}

int store_hosts_mark_dead(struct store *st, int64_t now, int timeout, const char *self,
			  size_t *n_dead)
{
	struct sval p[] = { SV_I(now - timeout), SV_S(self ? self : "") };
	struct dead_pass d = { .st = st };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "UPDATE hosts SET state = 'dead' WHERE state = 'live'"
			     " AND last_seen < ? AND name <> ? RETURNING name", p, 2, host_died, &d);
	*n_dead = rc == STORE_OK ? d.n : 0;
	if (rc == STORE_OK && *n_dead > 0)
		store_mark_changed(st, "hosts");
	return store_tx_end(st, rc);
}

/* Does a host take a VM of this size? */
static bool host_fits(const struct host *h, const struct placement *p)
{
	return h->memory_mib - h->used_mib >= p->memory_mib &&
	       (double)(h->used_cpus + p->cpus) <= p->cpu_ratio * (double)h->cpus;
}

static bool host_candidate(const struct host *h, const struct placement *p)
{
	bool fresh = h->last_seen >= p->now - p->fresh || (p->self && strcmp(h->name, p->self) == 0);

	return strcmp(h->state, "live") == 0 && fresh && !(p->avoid && strcmp(h->name, p->avoid) == 0);
}

int store_place(struct store *st, const struct placement *p, char **host)
{
	struct host *v = NULL;
	size_t n = 0;
	const struct host *best = NULL;
	int rc = store_tx_begin(st);

	*host = NULL;
	if (rc == STORE_OK)
		rc = store_host_list(st, &v, &n);
	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		const struct host *h = &v[i];
		if (p->pin) {
			if (strcmp(h->name, p->pin) == 0)
				best = host_candidate(h, p) && host_fits(h, p) ? h : NULL;
			continue;
		}
		if (h->drain || !host_candidate(h, p) || !host_fits(h, p))
			continue;
		/* Spread: the most free memory wins; ties go to fewer VMs, then the name. */
		int64_t free_h = h->memory_mib - h->used_mib;
		int64_t free_b = best ? best->memory_mib - best->used_mib : -1;
		if (!best || free_h > free_b || (free_h == free_b && h->vms < best->vms))
			best = h;
	}
	if (rc == STORE_OK && p->pin) {
		bool known = false;
		for (size_t i = 0; i < n; i++)
			known = known || strcmp(v[i].name, p->pin) == 0;
		if (!known)
			rc = STORE_NOTFOUND;
	}
	if (rc == STORE_OK && best == NULL)
		rc = STORE_FULL;
	if (rc == STORE_OK && (*host = strdup(best->name)) == NULL)
		rc = STORE_ERR;
	hosts_free(v, n);
	return store_tx_end(st, rc);
}

int store_vm_create_placed(struct store *st, struct vm *vm, const uint64_t *networks,
			   size_t n_networks, const struct placement *p)
{
	char *host = NULL;
	int rc = store_tx_begin(st);

	/* The owner's quota before the hosts' room: over quota is the
	 * answer that tells the user what to do. */
	if (rc == STORE_OK)
		rc = vm_admit(st, vm);
	if (rc == STORE_OK)
		rc = store_place(st, p, &host);
	if (rc == STORE_OK) {
		vm->host = host;
		rc = store_vm_create(st, vm, networks, n_networks);
		vm->host = NULL;
	}
	free(host);
	return store_tx_end(st, rc);
}

struct stranded {
	uint64_t id;
	int cpus, memory_mib;
	bool ephemeral;
	char *host;
};

static void fill_stranded(void *e, const struct sval *c)
{
	struct stranded *s = e;

	s->id = (uint64_t)c[0].i;
	s->cpus = (int)c[1].i;
	s->memory_mib = (int)c[2].i;
	s->ephemeral = c[3].i != 0;
	s->host = sv_strdup(&c[4]);
}

int store_evacuate_dead(struct store *st, double cpu_ratio, int64_t now, int fresh,
			size_t *moved)
{
	struct rows r = { .elem = sizeof(struct stranded), .fill = fill_stranded };
	int64_t dead = 0;
	/* Every scheduler asks every heartbeat: with no dead host (the usual
	 * case) that is one read of the hosts, not a look at every VM. */
	int rc = store_q(st, "SELECT COUNT(*) FROM hosts WHERE state = 'dead'", NULL, 0,
			 store_row_int, &dead);

	*moved = 0;
	if (rc != STORE_OK || dead == 0)
		return rc;
	rc = store_tx_begin(st);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT v.id, v.cpus, v.memory_mib, v.ephemeral, v.host FROM vms v"
			     " WHERE v.host IN (SELECT name FROM hosts WHERE state = 'dead')"
			     " AND v.desired <> 'deleted' AND (v.ephemeral <> 0 OR v.state <> 'error')"
			     " ORDER BY v.id", NULL, 0, rows_add, &r);
	for (size_t i = 0; rc == STORE_OK && i < r.n; i++) {
		struct stranded *s = &((struct stranded *)r.v)[i];
		char *to = NULL;
		if (s->ephemeral) {
			struct placement p = { .cpus = s->cpus, .memory_mib = s->memory_mib,
					       .avoid = s->host, .cpu_ratio = cpu_ratio,
					       .now = now, .fresh = fresh };
			int prc = store_place(st, &p, &to);
			if (prc == STORE_OK) {
				struct sval q[] = { SV_S(to), SV_I(s->id) };
				rc = host_load_add(st, s->host, -1, s->cpus, s->memory_mib);
				if (rc == STORE_OK)
					rc = host_load_add(st, to, 1, s->cpus, s->memory_mib);
				if (rc == STORE_OK)
					rc = store_w(st, "UPDATE vms SET host = ?, state = 'stopped',"
						     " error = NULL WHERE id = ?", q, 2);
				store_event_vm(st, s->id, "updated");
				(*moved)++;
				free(to);
				continue;
			}
			if (prc != STORE_FULL) {
				rc = prc;
				break;
			}
		}
		/* Its disks are on the dead host (or no host has room): it waits. */
		char err[160];
		snprintf(err, sizeof(err), "host %s is dead%s", s->host,
			 s->ephemeral ? " and no live host has room" : "");
		const char *msg = err;
		struct sval q[] = { SV_S(msg), SV_I(s->id) };
		rc = store_q(st, "UPDATE vms SET state = 'error', error = ? WHERE id = ?", q, 2,
			     NULL, NULL);
		store_event_vm(st, s->id, "updated");
	}
	for (size_t i = 0; i < r.n; i++)
		free(((struct stranded *)r.v)[i].host);
	free(r.v);
	return store_tx_end(st, rc);
}

int store_vm_claim(struct store *st, uint64_t id, const char *host)
{
	struct sval p[] = { SV_I(id), SV_S(host) };
	size_t found = 0;
	int rc = store_tx_begin(st);

	/* One conditional UPDATE: the scheduler moves a VM only in a
	 * transaction of its own, so this sees either the old placement or
	 * the new one, never half of it. */
	if (rc == STORE_OK)
		rc = store_q_count(st, "UPDATE vms SET state = 'starting' WHERE id = ? AND host = ?"
				   " AND desired = 'running' RETURNING 1", p, 2, &found);
	if (rc == STORE_OK && found == 0)
		rc = STORE_NOTFOUND;
	store_event_vm(st, id, "updated");
	return store_tx_end(st, rc);
}
