/*
 * snapshots — the snapshot rows of VMs (issue 14 §2); see store.h.
 *
 * The rows are the truth about a VM's layers: the files
 * snap-<id>-<disk>.qcow2 in its directory exist for every row, bottom up
 * in ID order (vm/snapshot.h).  A row not ready marks an operation whose
 * files may be half done; it is finished (or rolled back) before the VM
 * may start again.  Every check that decides whether an operation may
 * begin runs in the transaction that marks it, so two requests (on any
 * host) never both begin one on the same VM.
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_COLS "id, vm, name, state, live, bytes, created"

void snapshot_free(struct snapshot *s)
{
	free(s->name);
	free(s->state);
	memset(s, 0, sizeof(*s));
}

void snapshots_free(struct snapshot *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snapshot_free(&v[i]);
	free(v);
}

static void fill_snapshot(void *elem, const struct sval *c)
{
	struct snapshot *s = elem;

	s->id = (uint64_t)c[0].i;
	s->vm = (uint64_t)c[1].i;
	s->name = sv_strdup(&c[2]);
	s->state = sv_strdup(&c[3]);
	s->live = c[4].i != 0;
	s->bytes = c[5].i;
	s->created = c[6].i;
}

static int snapshot_rows(struct store *st, const char *sql, const struct sval *p, int n,
			 struct snapshot **out, size_t *count)
{
	struct rows r = { .elem = sizeof(struct snapshot), .fill = fill_snapshot };
	int rc = store_q(st, sql, p, n, rows_add, &r);

	if (rc != STORE_OK) {
		snapshots_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*count = r.n;
	return STORE_OK;
}

int store_snapshot_list(struct store *st, uint64_t vm, struct snapshot **out, size_t *n)
{
	return snapshot_rows(st, "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE vm = ? ORDER BY id",
			     &SV_I(vm), 1, out, n);
}

int store_snapshot_unfinished(struct store *st, struct snapshot **out, size_t *n)
{
	return snapshot_rows(st, "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE state <> 'ready'"
			     " ORDER BY vm, id", NULL, 0, out, n);
}

int store_snapshot_get(struct store *st, uint64_t vm, const char *ref, struct snapshot *out)
{
	struct snapshot *v = NULL;
	size_t n = 0;
	uint64_t id = 0;
	bool by_id = ref_as_id(ref, 8, &id);
	struct sval p[] = { SV_I(vm), SV_I(by_id ? (int64_t)id : -1), SV_S(ref) };
	int rc = snapshot_rows(st, "SELECT " SNAPSHOT_COLS " FROM snapshots WHERE vm = ?"
			       " AND (id = ? OR name = ?)", p, 3, &v, &n);

	if (rc != STORE_OK)
		return rc;
	if (n == 0) {
		free(v);
		return STORE_NOTFOUND;
	}
	*out = v[0];
	for (size_t i = 1; i < n; i++)
		snapshot_free(&v[i]);
	free(v);
	return STORE_OK;
}

struct vm_row {
	bool found;
	char *state, *desired;
	int64_t owner;
};

static int vm_row_fill(void *arg, const struct sval *c, int n)
{
	struct vm_row *r = arg;
	(void)n;

	r->found = true;
	r->state = sv_strdup(&c[0]);
	r->desired = sv_strdup(&c[1]);
	r->owner = c[2].i;
	return 1;
}

/* In a transaction: the VM is `state` and desired so, and no operation
 * on its snapshots is under way. */
static int vm_quiet(struct store *st, uint64_t vm, const char *state, int64_t *owner)
{
	struct vm_row r = { 0 };
	int64_t busy = 0;
	int rc = store_q(st, "SELECT state, desired, owner FROM vms WHERE id = ?", &SV_I(vm), 1,
			 vm_row_fill, &r);

	if (rc == STORE_OK && !r.found)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK && (!r.state || !r.desired || strcmp(r.state, state) != 0 ||
			       strcmp(r.desired, state) != 0))
		rc = STORE_CONFLICT;
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM snapshots WHERE vm = ? AND state <> 'ready'",
			     &SV_I(vm), 1, store_row_int, &busy);
	if (rc == STORE_OK && busy > 0)
		rc = STORE_CONFLICT;
	/* A live migration moves the disks' top layers: no layer may come
	 * or go under it (a migration refuses VMs with snapshots the same
	 * way, in its own transaction). */
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM vm_migrations WHERE vm = ?"
			     " AND state NOT IN ('done', 'failed')", &SV_I(vm), 1, store_row_int, &busy);
	if (rc == STORE_OK && busy > 0)
		rc = STORE_CONFLICT;
	if (owner)
		*owner = r.owner;
	free(r.state);
	free(r.desired);
	return rc;
}

int store_snapshot_begin(struct store *st, struct snapshot *s)
{
	int64_t owner = -1, taken = 0;
	int64_t add[QUOTA_N] = { [QUOTA_DISK_BYTES] = s->bytes };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = vm_quiet(st, s->vm, s->live ? "running" : "stopped", &owner);
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(s->vm), SV_S(s->name) };
		rc = store_q(st, "SELECT COUNT(*) FROM snapshots WHERE vm = ? AND name = ?", p, 2,
			     store_row_int, &taken);
	}
	if (rc == STORE_OK && taken > 0)
		rc = STORE_CONFLICT;
	if (rc == STORE_OK)
		rc = quota_admit(st, (uint64_t)owner, add);
	if (rc == STORE_OK)
		rc = store_counter_next(st, "snapshot", UINT32_MAX, &s->id);
	s->created = store_now();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(s->id), SV_I(s->vm), SV_S(s->name), SV_I(s->live),
				    SV_I(s->bytes), SV_I(s->created) };
		rc = store_w(st, "INSERT INTO snapshots (id, vm, name, state, live, bytes, created)"
			     " VALUES (?, ?, ?, 'creating', ?, ?, ?)", p, 6);
	}
	return store_tx_end(st, rc);
}

int store_snapshot_mark(struct store *st, uint64_t vm, uint64_t id, const char *state)
{
	int64_t found = 0;
	struct sval p[] = { SV_S(state), SV_I(id), SV_I(vm) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = vm_quiet(st, vm, "stopped", NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM snapshots WHERE id = ? AND vm = ?", &p[1], 2,
			     store_row_int, &found);
	if (rc == STORE_OK && found == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		rc = store_w(st, "UPDATE snapshots SET state = ? WHERE id = ? AND vm = ?", p, 3);
	if (rc == STORE_OK && strcmp(state, "restoring") == 0)
		rc = store_w(st, "UPDATE snapshots SET state = 'deleting' WHERE id > ? AND vm = ?",
			     &p[1], 2);
	return store_tx_end(st, rc);
}

int store_snapshot_ready(struct store *st, uint64_t id, int64_t bytes)
{
	struct sval p[] = { SV_I(bytes), SV_I(id) };

	return store_w(st, "UPDATE snapshots SET state = 'ready', bytes = ? WHERE id = ?", p, 2);
}

int store_snapshot_remove(struct store *st, uint64_t id)
{
	return store_w(st, "DELETE FROM snapshots WHERE id = ?", &SV_I(id), 1);
}
