/*
 * audit — the audit trail's rows (see store.h, "The audit trail").
 *
 * Writes go through store_q, never store_w: recording who did something
 * is no change of intent, so it fires no hook and wakes no agent.
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

void audit_entry_clear(struct audit_entry *e)
{
	free(e->host);
	free(e->user_name);
	free(e->source);
	free(e->method);
	free(e->route);
	free(e->ref);
	free(e->result);
	memset(e, 0, sizeof(*e));
}

void audit_entries_free(struct audit_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		audit_entry_clear(&v[i]);
	free(v);
}

int store_audit_add(struct store *st, const struct audit_entry *v, size_t n)
{
	int rc = store_tx_begin(st);

	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		const struct audit_entry *e = &v[i];
		struct sval user = e->user == OWNER_ANY ? SV_S(NULL) : SV_I(e->user);
		struct sval p[] = { SV_S(e->host), SV_I(e->seq), SV_I(e->time), user, user,
				    SV_S(e->source), SV_S(e->method), SV_S(e->route), SV_S(e->ref),
				    SV_I(e->status), SV_S(e->result) };
		/* The name as it is now: a user deleted later stays named. */
		rc = store_q(st, "INSERT INTO audit (host, seq, time, user_id, user_name, source, method,"
			     " route, ref, status, result) VALUES (?, ?, ?, ?,"
			     " (SELECT name FROM users WHERE id = ?), ?, ?, ?, ?, ?, ?)"
			     " ON CONFLICT (host, seq) DO NOTHING", p, 11, NULL, NULL);
	}
	return store_tx_end(st, rc);
}

static void fill_audit(void *e, const struct sval *c)
{
	struct audit_entry *a = e;

	a->host = sv_strdup(&c[0]);
	a->seq = (uint64_t)c[1].i;
	a->time = c[2].i;
	a->user = c[3].t == SV_INT ? (uint64_t)c[3].i : OWNER_ANY;
	a->user_name = sv_strdup(&c[4]);
	a->source = sv_strdup(&c[5]);
	a->method = sv_strdup(&c[6]);
	a->route = sv_strdup(&c[7]);
	a->ref = sv_strdup(&c[8]);
	a->status = (int)c[9].i;
	a->result = sv_strdup(&c[10]);
}

int store_audit_list(struct store *st, const char *user, int64_t since, size_t limit,
		     struct audit_entry **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct audit_entry), .fill = fill_audit };
	/* "" for everyone: a NULL parameter would leave PostgreSQL without
	 * a type for it. */
	const char *who = user ? user : "";
	struct sval p[] = { SV_I(since), SV_S(who), SV_S(who), SV_I(limit) };
	int rc = store_q(st, "SELECT host, seq, time, user_id, user_name, source, method, route, ref,"
			 " status, result FROM audit WHERE time >= ? AND (? = '' OR user_name = ?)"
			 " ORDER BY time DESC, host DESC, seq DESC LIMIT ?", p, 4, rows_add, &r);
	struct audit_entry *v = r.v;

	if (rc != STORE_OK) {
		audit_entries_free(r.v, r.n);
		return rc;
	}
	/* Newest first from the database (the limit keeps the newest);
	 * oldest first to the reader. */
	for (size_t i = 0; i < r.n / 2; i++) {
		struct audit_entry t = v[i];
		v[i] = v[r.n - 1 - i];
		v[r.n - 1 - i] = t;
	}
	*out = v;
	*n = r.n;
	return STORE_OK;
}

int store_audit_prune(struct store *st, int64_t before, size_t max, size_t *n)
{
	struct sval p[] = { SV_I(before), SV_I(max) };

	/* A bounded batch, oldest first: the loop waits for this statement. */
	return store_q_count(st, "DELETE FROM audit WHERE (host, seq) IN (SELECT host, seq FROM audit"
			     " WHERE time < ? ORDER BY time LIMIT ?) RETURNING seq", p, 2, n);
}

int store_audit_last_seq(struct store *st, const char *host, uint64_t *seq)
{
	int64_t v = 0;
	int rc = store_q(st, "SELECT MAX(seq) FROM audit WHERE host = ?", &SV_S(host), 1,
			 store_row_int, &v);

	*seq = v > 0 ? (uint64_t)v : 0;
	return rc;
}
