/*
 * migrations — the store's side of live migration (issue 14 §1): one row
 * per VM in vm_migrations, a state machine whose every step is one
 * conditional UPDATE written by the host that owns the step.
 *
 *   requested     the API (or a drain) asked; the destination is chosen,
 *                 its ports and the stream's key are set, and the VM's
 *                 size counts on the destination's load from here on
 *   prepared      the destination's QEMU waits (-incoming, NBD exports)
 *   transferring  the source mirrors the disks and migrates the RAM
 *   transferred   the source's QEMU stopped at the end of the transfer;
 *                 the destination takes over …
 *   done          … in this step: vms.host becomes the destination and
 *                 the source's load drops, in one transaction
 *   failed        either host gave up (the VM stays on the source, the
 *                 destination's load drops); reachable from any state
 *                 but done
 *
 * Exactly one of "transferred → done" (the destination) and "transferred
 * → failed" (the source, after waiting) can win: the conditional UPDATE is
 * the fence that keeps a VM from running on two hosts.  source_done and
 * dest_done say that each host finished its part after the end (the
 * source: cleaned up, or the VM resumed; the destination: the VM runs, or
 * its copy is gone).
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIG_COLS "m.vm, m.source, m.dest, m.source_addr, m.dest_addr, m.state, m.nbd_port," \
	" m.mig_port, m.psk, m.error, m.source_done, m.dest_done, m.created, m.updated," \
	" m.total_ms, m.downtime_ms, m.ram_bytes, m.disk_bytes"

void migration_free(struct migration *m)
{
	if (m == NULL)
		return;
	free(m->source);
	free(m->dest);
	free(m->source_addr);
	free(m->dest_addr);
	free(m->state);
	free(m->psk);
	free(m->error);
	free(m->log);
	memset(m, 0, sizeof(*m));
}

void migrations_free(struct migration *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		migration_free(&v[i]);
	free(v);
}

static void fill_migration(void *e, const struct sval *c)
{
	struct migration *m = e;

	m->vm = (uint64_t)c[0].i;
	m->source = sv_strdup(&c[1]);
	m->dest = sv_strdup(&c[2]);
	m->source_addr = sv_strdup(&c[3]);
	m->dest_addr = sv_strdup(&c[4]);
	m->state = sv_strdup(&c[5]);
	m->nbd_port = (int)c[6].i;
	m->mig_port = (int)c[7].i;
	m->psk = sv_strdup(&c[8]);
	m->error = sv_strdup(&c[9]);
	m->source_done = c[10].i != 0;
	m->dest_done = c[11].i != 0;
	m->created = c[12].i;
	m->updated = c[13].i;
	m->total_ms = c[14].t == SV_INT ? c[14].i : -1;
	m->downtime_ms = c[15].t == SV_INT ? c[15].i : -1;
	m->ram_bytes = c[16].t == SV_INT ? c[16].i : -1;
	m->disk_bytes = c[17].t == SV_INT ? c[17].i : -1;
}

static int migration_rows(struct store *st, const char *where, const struct sval *p, int n,
			  struct migration **out, size_t *count)
{
	struct rows r = { .elem = sizeof(struct migration), .fill = fill_migration };
	char sql[1024];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " MIG_COLS " FROM vm_migrations m %s ORDER BY m.vm", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc != STORE_OK) {
		migrations_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*count = r.n;
	return STORE_OK;
}

bool migration_final(const struct migration *m)
{
	return strcmp(m->state, "done") == 0 || strcmp(m->state, "failed") == 0;
}

int store_migration_get(struct store *st, uint64_t vm, bool with_log, struct migration *out)
{
	struct migration *v = NULL;
	size_t n = 0;
	int rc = migration_rows(st, "WHERE m.vm = ?", &SV_I(vm), 1, &v, &n);

	memset(out, 0, sizeof(*out));
	if (rc == STORE_OK && n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK) {
		*out = v[0];
		v[0] = (struct migration){ 0 };
		if (with_log)
			rc = store_q(st, "SELECT log FROM vm_migrations WHERE vm = ? AND log IS NOT NULL",
				     &SV_I(vm), 1, store_row_str, &out->log);
	}
	migrations_free(v, n);
	if (rc != STORE_OK)
		migration_free(out);
	return rc;
}

int store_migration_list(struct store *st, const char *host, struct migration **out, size_t *n)
{
	struct sval p[] = { SV_S(host), SV_S(host) };

	/* A host's work: the rows it is a side of that are not over for it. */
	return migration_rows(st, "WHERE (m.source = ? AND m.source_done = 0)"
			      " OR (m.dest = ? AND m.dest_done = 0)", p, 2, out, n);
}

/* Ports in use by the destination's unfinished migrations: the lowest
 * free pair of [base, base + count). */
struct port_scan {
	unsigned char *used;
	int base, count;
};

static int port_row(void *arg, const struct sval *c, int n)
{
	struct port_scan *s = arg;

	for (int i = 0; i < n; i++) {
		int k = (int)c[i].i - s->base;
		if (k >= 0 && k < s->count)
			s->used[k] = 1;
	}
	return 0;
}

static int ports_pick(struct store *st, const char *dest, int base, int count, int *nbd, int *mig)
{
	struct port_scan s = { .used = calloc((size_t)(count > 0 ? count : 1), 1), .base = base,
			       .count = count };
	int rc;

	if (s.used == NULL)
		return STORE_ERR;
	rc = store_q(st, "SELECT nbd_port, mig_port FROM vm_migrations WHERE dest = ? AND dest_done = 0",
		     &SV_S(dest), 1, port_row, &s);
	if (rc == STORE_OK) {
		rc = STORE_FULL;
		for (int k = 0; k + 1 < count; k += 2)
			if (!s.used[k] && !s.used[k + 1]) {
				*nbd = base + k;
				*mig = base + k + 1;
				rc = STORE_OK;
				break;
			}
	}
	free(s.used);
	return rc;
}

static void refuse(struct store *st, const char *fmt, const char *a, const char *b)
{
	snprintf(st->refusal, sizeof(st->refusal), fmt, a, b ? b : "");
}

int store_migration_request(struct store *st, uint64_t vm_id, struct placement *p, int port_base,
			    int port_count, const char *psk, struct migration *out)
{
	struct vm vm = { 0 };
	struct host src = { 0 }, dst = { 0 };
	struct migration cur = { 0 };
	char *dest = NULL;
	int nbd = 0, mig = 0;
	int rc = store_tx_begin(st);

	memset(out, 0, sizeof(*out));
	st->refusal[0] = '\0';
	if (rc == STORE_OK)
		rc = store_vm_get_id(st, vm_id, &vm);
	if (rc != STORE_OK)
		goto out;
	if (vm.host == NULL || strcmp(vm.desired, "running") != 0 || strcmp(vm.state, "running") != 0) {
		refuse(st, "vm '%s' is not running on a host%s", vm.name, NULL);
		rc = STORE_CONFLICT;
		goto out;
	}
	int grc = store_migration_get(st, vm_id, false, &cur);
	if (grc == STORE_OK && !(migration_final(&cur) && cur.source_done)) {
		refuse(st, "vm '%s' is migrating (%s)", vm.name, cur.state);
		rc = STORE_CONFLICT;
		goto out;
	}
	if (grc != STORE_OK && grc != STORE_NOTFOUND) {
		rc = grc;
		goto out;
	}
	/* Snapshot layers (vm/snapshot.h) stay under each disk's top in the
	 * VM's directory: the mirror copies tops only. */
	int64_t snaps = 0;
	if ((rc = store_q(st, "SELECT COUNT(*) FROM snapshots WHERE vm = ?", &SV_I(vm_id), 1,
			  store_row_int, &snaps)) != STORE_OK)
		goto out;
	if (snaps > 0) {
		refuse(st, "vm '%s' has snapshots: only the disks' tops would move; delete them%s first",
		       vm.name, NULL);
		rc = STORE_CONFLICT;
		goto out;
	}
	if (p->pin && strcmp(p->pin, vm.host) == 0) {
		refuse(st, "vm '%s' is on host '%s' already", vm.name, vm.host);
		rc = STORE_CONFLICT;
		goto out;
	}
	p->cpus = vm.cpus;
	p->memory_mib = vm.memory_mib;
	p->avoid = vm.host;
	if ((rc = store_place(st, p, &dest)) != STORE_OK)
		goto out;
	if ((rc = store_host_get(st, dest, &dst)) != STORE_OK ||
	    (rc = store_host_get(st, vm.host, &src)) != STORE_OK)
		goto out;
	if (dst.drain) {
		refuse(st, "host '%s' is draining%s", dest, NULL);
		rc = STORE_CONFLICT;
		goto out;
	}
	if (dst.address == NULL) {
		refuse(st, "host '%s' has no underlay address%s", dest, NULL);
		rc = STORE_CONFLICT;
		goto out;
	}
	if ((rc = ports_pick(st, dest, port_base, port_count, &nbd, &mig)) != STORE_OK) {
		if (rc == STORE_FULL)
			refuse(st, "host '%s' has no free migration port%s", dest, NULL);
		goto out;
	}
	int64_t now = store_now();
	struct sval q[] = { SV_I(vm_id), SV_S(vm.host), SV_S(dest), SV_S(src.address),
			    SV_S(dst.address), SV_I(nbd), SV_I(mig), SV_S(psk), SV_I(now), SV_I(now) };
	rc = store_q(st, "DELETE FROM vm_migrations WHERE vm = ?", &SV_I(vm_id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_w(st, "INSERT INTO vm_migrations (vm, source, dest, source_addr, dest_addr,"
			     " state, nbd_port, mig_port, psk, created, updated)"
			     " VALUES (?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?)", q, 10);
	/* The destination's room is taken now: nothing else is placed in it
	 * while the VM is on its way. */
	if (rc == STORE_OK)
		rc = host_load_add(st, dest, 1, vm.cpus, vm.memory_mib);
	if (rc == STORE_OK)
		rc = store_migration_get(st, vm_id, false, out);
	store_event_vm(st, vm_id, "updated");
out:
	p->avoid = NULL;    /* it pointed into vm */
	free(dest);
	vm_free(&vm);
	host_free(&src);
	host_free(&dst);
	migration_free(&cur);
	return store_tx_end(st, rc);
}

int store_migration_advance(struct store *st, uint64_t vm_id, const char *from, const char *to,
			    const struct migration_report *rep, const char *error)
{
	struct migration m = { 0 };
	size_t found = 0;
	int64_t cpus = 0, mib = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_migration_get(st, vm_id, false, &m);
	if (rc != STORE_OK)
		goto out;
	/* from NULL: any state that is not over. */
	if (migration_final(&m) || (from && strcmp(m.state, from) != 0)) {
		rc = STORE_CONFLICT;
		goto out;
	}
	bool done = strcmp(to, "done") == 0, failed = strcmp(to, "failed") == 0;
	struct sval p[] = { SV_S(to), SV_S(error), SV_I(store_now()), SV_I(done || failed ? 0 : 1),
			    SV_I(vm_id), SV_S(m.state) };
	/* The key goes with the end: nothing needs it any more. */
	rc = store_q_count(st, "UPDATE vm_migrations SET state = ?, error = ?, updated = ?,"
			   " psk = CASE WHEN ? = 1 THEN psk END WHERE vm = ? AND state = ? RETURNING 1",
			   p, 6, &found);
	if (rc == STORE_OK && found == 0)
		rc = STORE_CONFLICT;
	if (rc == STORE_OK && rep) {
		struct sval r[] = { SV_I(rep->total_ms), SV_I(rep->downtime_ms), SV_I(rep->ram_bytes),
				    SV_I(rep->disk_bytes), SV_S(rep->log), SV_I(vm_id) };
		rc = store_q(st, "UPDATE vm_migrations SET total_ms = ?, downtime_ms = ?, ram_bytes = ?,"
			     " disk_bytes = ?, log = ? WHERE vm = ?", r, 6, NULL, NULL);
	}
	if (rc == STORE_OK && (done || failed))
		rc = store_q(st, "SELECT cpus, memory_mib FROM vms WHERE id = ?", &SV_I(vm_id), 1,
			     store_row_int, &cpus);
	if (rc == STORE_OK && (done || failed))
		rc = store_q(st, "SELECT memory_mib FROM vms WHERE id = ?", &SV_I(vm_id), 1,
			     store_row_int, &mib);
	if (rc == STORE_OK && done) {
		/* The switch-over: from this commit on the destination runs it. */
		struct sval h[] = { SV_S(m.dest), SV_I(vm_id) };
		rc = store_w(st, "UPDATE vms SET host = ? WHERE id = ?", h, 2);
		if (rc == STORE_OK)
			rc = host_load_add(st, m.source, -1, cpus, mib);
	} else if (rc == STORE_OK && failed) {
		rc = host_load_add(st, m.dest, -1, cpus, mib);
	}
	if (rc == STORE_OK)
		store_mark_changed(st, "vm_migrations");
	store_event_vm(st, vm_id, "updated");
out:
	migration_free(&m);
	return store_tx_end(st, rc);
}

int store_migration_side_done(struct store *st, uint64_t vm_id, bool source)
{
	/* The log was the destination's to take: it goes with its part. */
	return store_w(st, source ? "UPDATE vm_migrations SET source_done = 1 WHERE vm = ?"
				  : "UPDATE vm_migrations SET dest_done = 1, log = NULL WHERE vm = ?",
		       &SV_I(vm_id), 1);
}

int store_migration_count_from(struct store *st, const char *host, int *n)
{
	int64_t v = 0;
	int rc = store_q(st, "SELECT COUNT(*) FROM vm_migrations WHERE source = ?"
			 " AND state NOT IN ('done', 'failed')", &SV_S(host), 1, store_row_int, &v);

	*n = (int)v;
	return rc;
}

int store_drain_step(struct store *st, const char *host, const struct placement *tmpl,
		     int port_base, int port_count, const char *psk, uint64_t *vm_out)
{
	struct host h = { 0 };
	int64_t next = 0;
	int busy = 0;
	int rc = store_tx_begin(st);

	*vm_out = 0;
	st->refusal[0] = '\0';
	if (rc == STORE_OK)
		rc = store_host_get(st, host, &h);
	if (rc == STORE_OK && h.drain_migrate <= 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		rc = store_migration_count_from(st, host, &busy);
	if (rc == STORE_OK && busy >= h.drain_migrate)
		rc = STORE_FULL;
	/* The next running VM that is not migrating, nor failed to since the
	 * drain began (the operator looks at those: no endless retries). */
	struct sval p[] = { SV_S(host), SV_I(h.drain_started) };
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT v.id FROM vms v WHERE v.host = ? AND v.desired = 'running'"
			     " AND v.state = 'running' AND NOT EXISTS (SELECT 1 FROM vm_migrations m"
			     " WHERE m.vm = v.id AND (m.state NOT IN ('done', 'failed') OR"
			     " (m.state = 'failed' AND (m.created >= ? OR m.source_done = 0))))"
			     " ORDER BY v.id LIMIT 1", p, 2, store_row_int, &next);
	if (rc == STORE_OK && next == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK) {
		struct placement pl = *tmpl;
		struct migration m = { 0 };
		pl.pin = NULL;
		rc = store_migration_request(st, (uint64_t)next, &pl, port_base, port_count, psk, &m);
		migration_free(&m);
		if (rc == STORE_OK)
			*vm_out = (uint64_t)next;
	}
	host_free(&h);
	return store_tx_end(st, rc);
}

struct ceilings {
	int64_t mem, cpus, nic_slots;
};

static int ceilings_row(void *arg, const struct sval *c, int n)
{
	struct ceilings *x = arg;

	x->mem = c[0].i;
	x->cpus = c[1].i;
	x->nic_slots = c[2].i;
	return 1;
}

int store_migration_ceilings(struct store *st, uint64_t vm, int *memory_mib, int *max_cpus,
			     bool *nic_slots)
{
	struct ceilings x = { 0 };
	int rc = store_q(st, "SELECT run_memory_mib, run_max_cpus, run_nic_slots FROM vms WHERE id = ?",
			 &SV_I(vm), 1, ceilings_row, &x);

	*memory_mib = (int)x.mem;
	*max_cpus = (int)x.cpus;
	*nic_slots = x.nic_slots != 0;
	return rc;
}
