/* usage — see usage.h.  Portable SQL only (both engines). */
#include "store/usage.h"

#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void usage_month(int64_t unix_time, char out[MONTH_STRLEN + 1])
{
	time_t t = (time_t)unix_time;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, MONTH_STRLEN + 1, "%Y-%m", &tm);
}

bool usage_month_valid(const char *s)
{
	if (s == NULL || strlen(s) != MONTH_STRLEN || s[4] != '-')
		return false;
	for (int i = 0; i < MONTH_STRLEN; i++)
		if (i != 4 && (s[i] < '0' || s[i] > '9'))
			return false;
	int year = atoi(s), month = atoi(s + 5);
	return year >= 2000 && month >= 1 && month <= 12;
}

static int64_t i64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static uint64_t u64(const struct sval *v)
{
	return v->t == SV_INT && v->i > 0 ? (uint64_t)v->i : 0;
}

/* Hand the rows collected to the caller, or drop them when the query failed. */
static int rows_give(int rc, struct rows *r, void *out, size_t *n)
{
	if (rc != STORE_OK) {
		free(r->v);
		return rc;
	}
	*(void **)out = r->v;
	*n = r->n;
	return STORE_OK;
}

/* ---- limits and quotas -------------------------------------------------- */

static bool limit_empty(const struct nic_limit *l)
{
	return l->in.rate == 0 && l->out.rate == 0;
}

static int limit_row(void *arg, const struct sval *c, int n)
{
	struct nic_limit *l = arg;

	if (n >= 4)
		*l = (struct nic_limit){ { u64(&c[0]), u64(&c[1]) }, { u64(&c[2]), u64(&c[3]) } };
	return 1;
}

/* The statements of one limits table: (key, in_rate, in_burst, out_rate, out_burst). */
struct limit_sql {
	const char *get, *del, *put;
};

static const struct limit_sql nic_sql = {
	"SELECT in_rate, in_burst, out_rate, out_burst FROM nic_limits WHERE nic = ?",
	"DELETE FROM nic_limits WHERE nic = ?",
	"INSERT INTO nic_limits (nic, in_rate, in_burst, out_rate, out_burst) VALUES (?, ?, ?, ?, ?)"
	" ON CONFLICT (nic) DO UPDATE SET in_rate = excluded.in_rate, in_burst = excluded.in_burst,"
	" out_rate = excluded.out_rate, out_burst = excluded.out_burst",
};

static const struct limit_sql net_sql = {
	"SELECT in_rate, in_burst, out_rate, out_burst FROM net_limits WHERE network = ?",
	"DELETE FROM net_limits WHERE network = ?",
	"INSERT INTO net_limits (network, in_rate, in_burst, out_rate, out_burst) VALUES (?, ?, ?, ?, ?)"
	" ON CONFLICT (network) DO UPDATE SET in_rate = excluded.in_rate, in_burst = excluded.in_burst,"
	" out_rate = excluded.out_rate, out_burst = excluded.out_burst",
};

static int limit_get(struct store *st, const struct limit_sql *q, uint64_t key, struct nic_limit *out)
{
	*out = (struct nic_limit){ 0 };
	return store_q(st, q->get, &SV_I(key), 1, limit_row, out);
}

static int limit_write(struct store *st, const struct limit_sql *q, uint64_t key,
		       const struct nic_limit *l)
{
	if (limit_empty(l))
		return store_w(st, q->del, &SV_I(key), 1);
	struct sval p[] = { SV_I(key), SV_I(i64(l->in.rate)), SV_I(i64(l->in.burst)),
			    SV_I(i64(l->out.rate)), SV_I(i64(l->out.burst)) };
	return store_w(st, q->put, p, 5);
}

static int limit_set(struct store *st, const struct limit_sql *q, uint64_t key,
		     const struct nic_limit *l)
{
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = limit_write(st, q, key, l);
	return store_tx_end(st, rc);
}

int store_nic_limit_get(struct store *st, uint64_t nic, struct nic_limit *out)
{
	return limit_get(st, &nic_sql, nic, out);
}

int store_net_limit_get(struct store *st, uint64_t network, struct nic_limit *out)
{
	return limit_get(st, &net_sql, network, out);
}

int store_nic_limit_set(struct store *st, uint64_t nic, const struct nic_limit *l)
{
	return limit_set(st, &nic_sql, nic, l);
}

int store_net_limit_set(struct store *st, uint64_t network, const struct nic_limit *l)
{
	return limit_set(st, &net_sql, network, l);
}

int store_nic_limit_write(struct store *st, uint64_t nic, const struct nic_limit *l)
{
	return limit_write(st, &nic_sql, nic, l);
}

int store_net_limit_write(struct store *st, uint64_t network, const struct nic_limit *l)
{
	return limit_write(st, &net_sql, network, l);
}

static void fill_net_limit(void *e, const struct sval *c)
{
	struct net_limit_row *r = e;

	r->network = u64(&c[0]);
	limit_row(&r->limit, c + 1, 4);
}

int store_net_limit_list(struct store *st, struct net_limit_row **out, size_t *n)
{
	struct rows r = { .elem = sizeof(**out), .fill = fill_net_limit };
	int rc = store_q(st, "SELECT network, in_rate, in_burst, out_rate, out_burst FROM net_limits"
			 " ORDER BY network", NULL, 0, rows_add, &r);

	return rows_give(rc, &r, out, n);
}

static int traffic_row(void *arg, const struct sval *c, int n)
{
	struct user_traffic *t = arg;

	if (n >= 2)
		*t = (struct user_traffic){ u64(&c[0]), u64(&c[1]) };
	return 1;
}

int store_user_traffic_get(struct store *st, uint64_t user, struct user_traffic *out)
{
	*out = (struct user_traffic){ 0 };
	return store_q(st, "SELECT rate_cap, quota FROM user_traffic WHERE user_id = ?", &SV_I(user), 1,
		       traffic_row, out);
}

int store_user_traffic_set(struct store *st, uint64_t user, const struct user_traffic *t)
{
	struct sval p[] = { SV_I(user), SV_I(i64(t->rate_cap)), SV_I(i64(t->quota)) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK && t->rate_cap == 0 && t->quota == 0)
		rc = store_w(st, "DELETE FROM user_traffic WHERE user_id = ?", p, 1);
	else if (rc == STORE_OK)
		rc = store_w(st, "INSERT INTO user_traffic (user_id, rate_cap, quota) VALUES (?, ?, ?)"
			     " ON CONFLICT (user_id) DO UPDATE SET rate_cap = excluded.rate_cap,"
			     " quota = excluded.quota", p, 3);
	return store_tx_end(st, rc);
}

int store_vm_quota_get(struct store *st, uint64_t vm, uint64_t *quota)
{
	int64_t q = 0;
	int rc = store_q(st, "SELECT quota FROM vm_traffic WHERE vm = ?", &SV_I(vm), 1,
			 store_row_int, &q);

	*quota = q > 0 ? (uint64_t)q : 0;
	return rc;
}

int store_vm_quota_set(struct store *st, uint64_t vm, uint64_t quota)
{
	struct sval p[] = { SV_I(vm), SV_I(i64(quota)) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK && quota == 0)
		rc = store_w(st, "DELETE FROM vm_traffic WHERE vm = ?", p, 1);
	else if (rc == STORE_OK)
		rc = store_w(st, "INSERT INTO vm_traffic (vm, quota) VALUES (?, ?)"
			     " ON CONFLICT (vm) DO UPDATE SET quota = excluded.quota", p, 2);
	return store_tx_end(st, rc);
}

int store_traffic_used(struct store *st, const char *month, uint64_t owner, uint64_t vm,
		       uint64_t *bytes)
{
	int64_t used = 0;
	struct sval p[] = { SV_S(month), SV_I(vm ? 1 : 0), SV_I(vm), SV_I(owner) };
	int rc = store_q(st, "SELECT COALESCE(SUM(bytes_in + bytes_out), 0) FROM usage_nic"
			 " WHERE month = ? AND CASE WHEN ? = 1 THEN vm = ? ELSE owner = ? END",
			 p, 4, store_row_int, &used);

	*bytes = used > 0 ? (uint64_t)used : 0;
	return rc;
}

/* ---- what the agent shapes ---------------------------------------------- */

static void fill_shaping(void *e, const struct sval *c)
{
	struct nic_shaping *s = e;

	s->nic = u64(&c[0]);
	s->vm = u64(&c[1]);
	s->owner = u64(&c[2]);
	limit_row(&s->own, c + 3, 4);
	limit_row(&s->net, c + 7, 4);
	s->cap = u64(&c[11]);
	s->throttled = c[12].t == SV_INT && c[12].i != 0;
}

int store_nic_shaping_list(struct store *st, const char *host, uint64_t vm, const char *month,
			   struct nic_shaping **out, size_t *n)
{
	struct rows r = { .elem = sizeof(**out), .fill = fill_shaping };
	/* The month's use per owner and per VM, summed once for all NICs. */
	struct sval p[] = { SV_S(month), SV_S(month), SV_I(vm), SV_I(vm), SV_I(host ? 0 : 1),
			    SV_S(host) };
	int rc = store_q(st,
		"SELECT n.id, n.vm, v.owner,"
		" COALESCE(l.in_rate, 0), COALESCE(l.in_burst, 0), COALESCE(l.out_rate, 0),"
		" COALESCE(l.out_burst, 0),"
		" COALESCE(d.in_rate, 0), COALESCE(d.in_burst, 0), COALESCE(d.out_rate, 0),"
		" COALESCE(d.out_burst, 0),"
		" COALESCE(t.rate_cap, 0),"
		" CASE WHEN (COALESCE(t.quota, 0) > 0 AND COALESCE(uu.used, 0) >= t.quota)"
		" OR (COALESCE(q.quota, 0) > 0 AND COALESCE(vu.used, 0) >= q.quota) THEN 1 ELSE 0 END"
		" FROM nics n JOIN vms v ON v.id = n.vm"
		" LEFT JOIN nic_limits l ON l.nic = n.id"
		" LEFT JOIN net_limits d ON d.network = n.network"
		" LEFT JOIN user_traffic t ON t.user_id = v.owner"
		" LEFT JOIN vm_traffic q ON q.vm = v.id"
		" LEFT JOIN (SELECT owner, SUM(bytes_in + bytes_out) AS used FROM usage_nic"
		" WHERE month = ? GROUP BY owner) uu ON uu.owner = v.owner"
		" LEFT JOIN (SELECT vm, SUM(bytes_in + bytes_out) AS used FROM usage_nic"
		" WHERE month = ? GROUP BY vm) vu ON vu.vm = v.id"
		" WHERE (? = 0 OR v.id = ?) AND (? = 1 OR v.host IS NULL OR v.host = ?)"
		" ORDER BY n.id", p, 6, rows_add, &r);

	return rows_give(rc, &r, out, n);
}

/* ---- the meter ---------------------------------------------------------- */

static void fill_meter_nic(void *e, const struct sval *c)
{
	struct meter_nic *m = e;

	m->nic = u64(&c[0]);
	m->vm = u64(&c[1]);
	m->owner = u64(&c[2]);
	m->sampled = c[3].t == SV_INT;
	m->ifindex = c[3].i;
	m->raw = (struct raw_counters){ u64(&c[4]), u64(&c[5]), u64(&c[6]), u64(&c[7]) };
	m->at_ms = c[8].i;
	m->moving = c[9].t == SV_INT && c[9].i != 0;
}

int store_meter_nics(struct store *st, const char *host, uint64_t nic, struct meter_nic **out,
		     size_t *n)
{
	struct rows r = { .elem = sizeof(**out), .fill = fill_meter_nic };
	struct sval p[] = { SV_S(host), SV_S(host), SV_I(nic), SV_I(nic), SV_S(host), SV_I(nic),
			    SV_I(nic), SV_S(host) };
	/* Its VMs' NICs with this host's sample if any, and samples this host
	 * still holds of NICs that are no longer its (removed, or their VM
	 * moved): their taps are counted until they go. */
	int rc = store_q(st,
		"SELECT n.id, n.vm, v.owner, m.ifindex, m.rx_bytes, m.tx_bytes, m.rx_packets,"
		" m.tx_packets, m.at, m.in_bps + m.out_bps + m.in_pps + m.out_pps"
		" FROM nics n JOIN vms v ON v.id = n.vm"
		" LEFT JOIN meter_nics m ON m.nic = n.id AND m.host = ?"
		" WHERE (v.host IS NULL OR v.host = ?) AND (? = 0 OR n.id = ?)"
		" UNION ALL "
		"SELECT m.nic, m.vm, m.owner, m.ifindex, m.rx_bytes, m.tx_bytes, m.rx_packets,"
		" m.tx_packets, m.at, m.in_bps + m.out_bps + m.in_pps + m.out_pps"
		" FROM meter_nics m WHERE m.host = ? AND (? = 0 OR m.nic = ?) AND NOT EXISTS"
		" (SELECT 1 FROM nics n JOIN vms v ON v.id = n.vm"
		" WHERE n.id = m.nic AND (v.host IS NULL OR v.host = ?))", p, 8, rows_add, &r);

	return rows_give(rc, &r, out, n);
}

void meter_vms_free(struct meter_vm *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

static void fill_meter_vm(void *e, const struct sval *c)
{
	struct meter_vm *m = e;
	int64_t disk = c[5].i + c[6].i;

	m->vm = u64(&c[0]);
	m->owner = u64(&c[1]);
	m->name = sv_strdup(&c[2]);
	m->cpus = (int)c[3].i;
	m->memory_mib = c[4].i;
	m->disk_mib = (disk + (1 << 20) - 1) >> 20;
	m->running = c[7].t == SV_INT && c[7].i != 0;
}

int store_meter_vms(struct store *st, const char *host, struct meter_vm **out, size_t *n)
{
	struct rows r = { .elem = sizeof(**out), .fill = fill_meter_vm };
	/* The root disk is what the VM asked for, else its disk image's size
	 * (a kernel image without one has none). */
	int rc = store_q(st,
		"SELECT v.id, v.owner, v.name, v.cpus, v.memory_mib,"
		" CASE WHEN v.disk_size > 0 THEN v.disk_size"
		" WHEN i.boot = 'disk' THEN i.size ELSE 0 END,"
		" COALESCE((SELECT SUM(d.size) FROM vm_disks d WHERE d.vm = v.id), 0),"
		" CASE WHEN v.state = 'running' THEN 1 ELSE 0 END"
		" FROM vms v LEFT JOIN images i ON i.id = v.image"
		" WHERE v.desired <> 'deleted' AND (v.host IS NULL OR v.host = ?) ORDER BY v.id",
		&SV_S(host), 1, rows_add, &r);

	if (rc != STORE_OK) {
		meter_vms_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

struct host_row {
	int64_t at;
	char *boot;
};

static int host_row(void *arg, const struct sval *c, int n)
{
	struct host_row *h = arg;

	if (n >= 2) {
		h->at = c[0].i;
		h->boot = sv_strdup(&c[1]);
	}
	return 1;
}

int store_meter_host(struct store *st, const char *host, int64_t *at, char **boot)
{
	struct host_row h = { 0 };
	int rc = store_q(st, "SELECT meter_at, meter_boot FROM hosts WHERE name = ?", &SV_S(host), 1,
			 host_row, &h);

	*at = h.at;
	*boot = h.boot;
	return rc;
}

static bool traffic_zero(const struct traffic *t)
{
	return t->bytes_in == 0 && t->bytes_out == 0 && t->packets_in == 0 && t->packets_out == 0;
}

/*
 * Rows of one upsert, many at a time: "HEAD VALUES (?, …), (?, …) TAIL".
 * A meter pass writes a row per busy NIC and VM; one statement for 64 of
 * them saves 63 parses (10,000 busy NICs: seconds, not tenths).
 */
#define BATCH_ROWS 64

static int upsert_rows(struct store *st, const char *head, int per_row, const char *tail,
		       const struct sval *p, size_t rows)
{
	int rc = STORE_OK;

	for (size_t done = 0; rc == STORE_OK && done < rows; done += BATCH_ROWS) {
		size_t n = rows - done < BATCH_ROWS ? rows - done : BATCH_ROWS;
		size_t tuple = 3 + 3 * (size_t)per_row, len = strlen(head) + strlen(tail) + 16;
		char *sql = malloc(len + n * tuple), *w = sql;
		if (sql == NULL)
			return STORE_ERR;
		w += sprintf(w, "%s VALUES ", head);
		for (size_t r = 0; r < n; r++) {
			*w++ = r ? ',' : ' ';
			*w++ = '(';
			for (int c = 0; c < per_row; c++)
				w += sprintf(w, c ? ", ?" : "?");
			*w++ = ')';
		}
		sprintf(w, " %s", tail);
		rc = store_q(st, sql, p + done * (size_t)per_row, (int)(n * (size_t)per_row), NULL, NULL);
		free(sql);
	}
	return rc;
}

#define SAMPLE_COLS 14
#define USAGE_COLS 8
#define VM_COLS_ADD 7

static int samples_write(struct store *st, const char *host, const char *month,
			 const struct meter_sample *v, size_t n)
{
	struct sval *p = calloc(n * SAMPLE_COLS + 1, sizeof(*p));
	struct sval *u = calloc(n * USAGE_COLS + 1, sizeof(*u));
	size_t n_u = 0;
	int rc = STORE_ERR;

	if (p == NULL || u == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct meter_sample *s = &v[i];
		struct sval row[SAMPLE_COLS] = { SV_I(s->nic), SV_S(host), SV_I(s->vm), SV_I(s->owner),
			SV_I(s->ifindex), SV_I(i64(s->raw.rx_bytes)), SV_I(i64(s->raw.tx_bytes)),
			SV_I(i64(s->raw.rx_packets)), SV_I(i64(s->raw.tx_packets)), SV_I(s->at_ms),
			SV_I(i64(s->in_bps)), SV_I(i64(s->out_bps)), SV_I(i64(s->in_pps)),
			SV_I(i64(s->out_pps)) };
		memcpy(&p[i * SAMPLE_COLS], row, sizeof(row));
		if (traffic_zero(&s->delta))
			continue;
		struct sval add[USAGE_COLS] = { SV_S(month), SV_I(s->nic), SV_I(s->vm), SV_I(s->owner),
			SV_I(i64(s->delta.bytes_in)), SV_I(i64(s->delta.bytes_out)),
			SV_I(i64(s->delta.packets_in)), SV_I(i64(s->delta.packets_out)) };
		memcpy(&u[n_u++ * USAGE_COLS], add, sizeof(add));
	}
	rc = upsert_rows(st,
		"INSERT INTO meter_nics (nic, host, vm, owner, ifindex, rx_bytes, tx_bytes,"
		" rx_packets, tx_packets, at, in_bps, out_bps, in_pps, out_pps)", SAMPLE_COLS,
		"ON CONFLICT (nic, host) DO UPDATE SET vm = excluded.vm, owner = excluded.owner,"
		" ifindex = excluded.ifindex, rx_bytes = excluded.rx_bytes,"
		" tx_bytes = excluded.tx_bytes, rx_packets = excluded.rx_packets,"
		" tx_packets = excluded.tx_packets, at = excluded.at, in_bps = excluded.in_bps,"
		" out_bps = excluded.out_bps, in_pps = excluded.in_pps, out_pps = excluded.out_pps",
		p, n);
	if (rc == STORE_OK)
		rc = upsert_rows(st,
			"INSERT INTO usage_nic (month, nic, vm, owner, bytes_in, bytes_out, packets_in,"
			" packets_out)", USAGE_COLS,
			"ON CONFLICT (month, nic) DO UPDATE SET"
			" bytes_in = usage_nic.bytes_in + excluded.bytes_in,"
			" bytes_out = usage_nic.bytes_out + excluded.bytes_out,"
			" packets_in = usage_nic.packets_in + excluded.packets_in,"
			" packets_out = usage_nic.packets_out + excluded.packets_out", u, n_u);
out:
	free(p);
	free(u);
	return rc;
}

static int vm_adds_write(struct store *st, const char *month, const struct meter_vm_add *v,
			 size_t n)
{
	struct sval *p = calloc(n * VM_COLS_ADD + 1, sizeof(*p));
	int rc;

	if (p == NULL)
		return STORE_ERR;
	for (size_t i = 0; i < n; i++) {
		struct sval row[VM_COLS_ADD] = { SV_S(month), SV_I(v[i].vm), SV_I(v[i].owner),
			SV_S(v[i].name), SV_I(v[i].vcpu_seconds), SV_I(v[i].memory_mib_seconds),
			SV_I(v[i].disk_mib_seconds) };
		memcpy(&p[i * VM_COLS_ADD], row, sizeof(row));
	}
	rc = upsert_rows(st,
		"INSERT INTO usage_vm (month, vm, owner, name, vcpu_seconds, memory_mib_seconds,"
		" disk_mib_seconds)", VM_COLS_ADD,
		"ON CONFLICT (month, vm) DO UPDATE SET name = excluded.name,"
		" vcpu_seconds = usage_vm.vcpu_seconds + excluded.vcpu_seconds,"
		" memory_mib_seconds = usage_vm.memory_mib_seconds + excluded.memory_mib_seconds,"
		" disk_mib_seconds = usage_vm.disk_mib_seconds + excluded.disk_mib_seconds", p, n);
	free(p);
	return rc;
}

int store_meter_commit(struct store *st, const char *host, const char *month, int64_t now,
		       const char *boot, const struct meter_sample *samples, size_t n_samples,
		       const uint64_t *gone, size_t n_gone, const struct meter_vm_add *vms,
		       size_t n_vms)
{
	int rc = store_tx_begin(st);

	if (rc == STORE_OK && n_samples)
		rc = samples_write(st, host, month, samples, n_samples);
	for (size_t i = 0; rc == STORE_OK && i < n_gone; i++) {
		struct sval p[] = { SV_I(gone[i]), SV_S(host) };
		rc = store_q(st, "DELETE FROM meter_nics WHERE nic = ? AND host = ?", p, 2, NULL, NULL);
	}
	if (rc == STORE_OK && n_vms)
		rc = vm_adds_write(st, month, vms, n_vms);
	if (rc == STORE_OK && now > 0) {
		struct sval p[] = { SV_I(now), SV_S(boot), SV_S(host) };
		rc = store_q(st, "UPDATE hosts SET meter_at = ?, meter_boot = ? WHERE name = ?",
			     p, 3, NULL, NULL);
	}
	return store_tx_end(st, rc);
}

/* ---- reading it back ---------------------------------------------------- */

static void fill_nic_totals(void *e, const struct sval *c)
{
	struct nic_stats *s = e;

	s->nic = u64(&c[0]);
	s->month = (struct traffic){ u64(&c[1]), u64(&c[2]), u64(&c[3]), u64(&c[4]) };
	s->total = (struct traffic){ u64(&c[5]), u64(&c[6]), u64(&c[7]), u64(&c[8]) };
}

struct rate_rows {
	struct nic_stats *v;
	size_t n;
};

/* The rates of the latest sample of each NIC (rows come oldest first). */
static int rate_row(void *arg, const struct sval *c, int n)
{
	struct rate_rows *r = arg;

	for (size_t i = 0; n >= 6 && i < r->n; i++) {
		struct nic_stats *s = &r->v[i];
		if (s->nic != u64(&c[0]))
			continue;
		s->sampled = true;
		s->at = c[1].i / 1000;
		s->in_bps = u64(&c[2]);
		s->out_bps = u64(&c[3]);
		s->in_pps = u64(&c[4]);
		s->out_pps = u64(&c[5]);
	}
	return 0;
}

int store_nic_stats(struct store *st, uint64_t vm, const char *month, struct nic_stats **out,
		    size_t *n)
{
	struct rows r = { .elem = sizeof(**out), .fill = fill_nic_totals };
	struct sval p[] = { SV_S(month), SV_S(month), SV_S(month), SV_S(month), SV_I(vm), SV_I(vm) };
	/* Every NIC with usage, and those sampled that have none yet. */
	int rc = store_q(st,
		"SELECT k.nic,"
		" COALESCE(SUM(CASE WHEN u.month = ? THEN u.bytes_in ELSE 0 END), 0),"
		" COALESCE(SUM(CASE WHEN u.month = ? THEN u.bytes_out ELSE 0 END), 0),"
		" COALESCE(SUM(CASE WHEN u.month = ? THEN u.packets_in ELSE 0 END), 0),"
		" COALESCE(SUM(CASE WHEN u.month = ? THEN u.packets_out ELSE 0 END), 0),"
		" COALESCE(SUM(u.bytes_in), 0), COALESCE(SUM(u.bytes_out), 0),"
		" COALESCE(SUM(u.packets_in), 0), COALESCE(SUM(u.packets_out), 0)"
		" FROM (SELECT nic FROM usage_nic WHERE vm = ? UNION SELECT nic FROM meter_nics"
		" WHERE vm = ?) k LEFT JOIN usage_nic u ON u.nic = k.nic"
		" GROUP BY k.nic ORDER BY k.nic", p, 6, rows_add, &r);

	if (rc == STORE_OK) {
		struct rate_rows rr = { r.v, r.n };
		rc = store_q(st, "SELECT nic, at, in_bps, out_bps, in_pps, out_pps FROM meter_nics"
			     " WHERE vm = ? ORDER BY at", &SV_I(vm), 1, rate_row, &rr);
	}
	return rows_give(rc, &r, out, n);
}

void usage_rows_free(struct usage_row *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].owner_name);
	}
	free(v);
}

static void fill_usage(void *e, const struct sval *c)
{
	struct usage_row *u = e;

	u->vm = u64(&c[0]);
	u->owner = u64(&c[1]);
	u->name = sv_strdup(&c[2]);
	u->owner_name = sv_strdup(&c[3]);
	u->traffic = (struct traffic){ u64(&c[4]), u64(&c[5]), u64(&c[6]), u64(&c[7]) };
	u->vcpu_seconds = c[8].i;
	u->memory_mib_seconds = c[9].i;
	u->disk_mib_seconds = c[10].i;
}

int store_usage_list(struct store *st, const char *month, uint64_t owner,
		     struct usage_row **out, size_t *n)
{
	struct rows r = { .elem = sizeof(**out), .fill = fill_usage };
	struct sval sp = scope_param(owner);
	struct sval p[] = { SV_S(month), sp, sp, SV_S(month), sp, sp, SV_S(month), SV_S(month) };
	/* A VM may have traffic but no resource row (a NIC of a VM placed on
	 * another host) or the other way round: the union of both, the name
	 * from whichever knows it. */
	int rc = store_q(st,
		"SELECT k.vm, k.owner, COALESCE(uv.name, vv.name), us.name,"
		" COALESCE(t.bi, 0), COALESCE(t.bo, 0), COALESCE(t.pi, 0), COALESCE(t.po, 0),"
		" COALESCE(uv.vcpu_seconds, 0), COALESCE(uv.memory_mib_seconds, 0),"
		" COALESCE(uv.disk_mib_seconds, 0)"
		" FROM (SELECT vm, owner FROM usage_nic WHERE month = ? AND (? = -1 OR owner = ?)"
		" UNION SELECT vm, owner FROM usage_vm WHERE month = ? AND (? = -1 OR owner = ?)) k"
		" LEFT JOIN usage_vm uv ON uv.month = ? AND uv.vm = k.vm"
		" LEFT JOIN (SELECT vm, SUM(bytes_in) AS bi, SUM(bytes_out) AS bo,"
		" SUM(packets_in) AS pi, SUM(packets_out) AS po FROM usage_nic WHERE month = ?"
		" GROUP BY vm) t ON t.vm = k.vm"
		" LEFT JOIN vms vv ON vv.id = k.vm LEFT JOIN users us ON us.id = k.owner"
		" ORDER BY k.owner, k.vm", p, 8, rows_add, &r);

	if (rc != STORE_OK) {
		usage_rows_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}
