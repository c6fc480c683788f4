/* meter — see meter.h. */
#include "agent/meter.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/worker.h"
#include "net/link.h"

#include <netlink/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct meter {
	struct store *st;
	const struct config *cfg;
	struct bandwidth *bw;
	char boot[64];            /* this boot of the host (/proc/sys/kernel/random/boot_id) */
	long long next;           /* ms (monotonic) when the next sample is due */
	bool busy;                /* a dump is out on a worker */
	/* NICs whose tap went while the dump was out: that dump's reading of
	 * them is older than the sample their removal stored. */
	uint64_t *removed;
	size_t n_removed;
	/* NICs whose taps a job off the loop is removing (meter_tap_leaving). */
	uint64_t *leaving;
	size_t n_leaving;
	struct nl_sock *sk;       /* for the one-link reads of removals */
};

struct dump_job {
	struct meter *m;
	struct link_stat *links;
	size_t n;
	int64_t at_ms;            /* wall clock, for rates and months */
	char *err;
};

static int64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

bool meter_delta(const struct meter_nic *prev, const struct link_stat *cur, struct traffic *delta)
{
	bool same = prev->sampled && prev->ifindex == cur->ifindex &&
		    cur->rx_bytes >= prev->raw.rx_bytes && cur->tx_bytes >= prev->raw.tx_bytes &&
		    cur->rx_packets >= prev->raw.rx_packets && cur->tx_packets >= prev->raw.tx_packets;
	struct raw_counters base = same ? prev->raw : (struct raw_counters){ 0 };

	/* The tap receives what the guest sends: its rx is the VM's "out". */
	delta->bytes_in = cur->tx_bytes - base.tx_bytes;
	delta->bytes_out = cur->rx_bytes - base.rx_bytes;
	delta->packets_in = cur->tx_packets - base.tx_packets;
	delta->packets_out = cur->rx_packets - base.rx_packets;
	return same;
}

static void sample_of(const struct meter_nic *prev, const struct link_stat *cur, int64_t at_ms,
		      struct meter_sample *s)
{
	bool same = meter_delta(prev, cur, &s->delta);
	int64_t dt = at_ms - prev->at_ms;

	s->nic = prev->nic;
	s->vm = prev->vm;
	s->owner = prev->owner;
	s->ifindex = cur->ifindex;
	s->raw = (struct raw_counters){ cur->rx_bytes, cur->tx_bytes, cur->rx_packets, cur->tx_packets };
	s->at_ms = at_ms;
	s->in_bps = s->out_bps = s->in_pps = s->out_pps = 0;
	if (same && dt > 0) {
		s->in_bps = s->delta.bytes_in * 8000 / (uint64_t)dt;
		s->out_bps = s->delta.bytes_out * 8000 / (uint64_t)dt;
		s->in_pps = s->delta.packets_in * 1000 / (uint64_t)dt;
		s->out_pps = s->delta.packets_out * 1000 / (uint64_t)dt;
	}
}

/* Nothing to store: the same tap, nothing new, and its rates already 0. */
static bool sample_idle(const struct meter_nic *prev, const struct meter_sample *s)
{
	return prev->sampled && prev->ifindex == s->ifindex && !prev->moving &&
	       s->delta.bytes_in == 0 && s->delta.bytes_out == 0 &&
	       s->delta.packets_in == 0 && s->delta.packets_out == 0;
}

struct meter *meter_new(struct store *st, const struct config *cfg, struct bandwidth *bw)
{
	struct meter *m = calloc(1, sizeof(*m));
	char *boot = NULL, *err = NULL;

	if (m == NULL)
		return NULL;
	m->st = st;
	m->cfg = cfg;
	m->bw = bw;
	if ((m->sk = link_nl_open(&err)) == NULL) {
		log_err("meter: %s", err ? err : "netlink");
		free(err);
		free(m);
		return NULL;
	}
	/* A VM runs only within one boot of its host: across a reboot the
	 * time since the last accounting was not the VMs' to bill. */
	if (file_read("/proc/sys/kernel/random/boot_id", sizeof(m->boot) - 1, &boot, NULL) == 0)
		snprintf(m->boot, sizeof(m->boot), "%.*s", (int)strcspn(boot, "\n"), boot);
	free(boot);
	return m;
}

void meter_free(struct meter *m)
{
	if (m == NULL)
		return;
	nl_socket_free(m->sk);
	free(m->removed);
	free(m->leaving);
	free(m);
}

static bool listed(const uint64_t *v, size_t n, uint64_t nic)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == nic)
			return true;
	return false;
}

/* The resources of this host's VMs since its last accounting. */
static int vm_adds(struct meter *m, int64_t now, struct meter_vm **vms, size_t *n_vms,
		   struct meter_vm_add **adds, size_t *n_adds)
{
	int64_t at = 0, dt;
	char *boot = NULL;
	int rc = store_meter_host(m->st, m->cfg->host_name, &at, &boot);
	bool same_boot = boot && strcmp(boot, m->boot) == 0;

	free(boot);
	*adds = NULL;
	*n_adds = 0;
	if (rc != STORE_OK || (rc = store_meter_vms(m->st, m->cfg->host_name, vms, n_vms)) != STORE_OK)
		return rc;
	dt = at > 0 && at < now ? now - at : 0;
	*adds = calloc(*n_vms + 1, sizeof(**adds));
	if (*adds == NULL)
		return STORE_ERR;
	for (size_t i = 0; dt > 0 && i < *n_vms; i++) {
		const struct meter_vm *v = &(*vms)[i];
		bool ran = v->running && same_boot;
		if (!ran && v->disk_mib == 0)
			continue;
		(*adds)[(*n_adds)++] = (struct meter_vm_add){
			.vm = v->vm, .owner = v->owner, .name = v->name,
			.vcpu_seconds = ran ? v->cpus * dt : 0,
			.memory_mib_seconds = ran ? v->memory_mib * dt : 0,
			.disk_mib_seconds = v->disk_mib * dt,
		};
	}
	return STORE_OK;
}

/* Count one dump: every tap's difference to its sample, in one transaction. */
static void count(struct meter *m, const struct link_stat *links, size_t n_links, int64_t at_ms)
{
	struct meter_nic *rows = NULL;
	struct meter_sample *samples = NULL;
	struct meter_vm *vms = NULL;
	struct meter_vm_add *adds = NULL;
	uint64_t *gone = NULL;
	size_t n_rows = 0, n_samples = 0, n_gone = 0, n_vms = 0, n_adds = 0;
	char month[MONTH_STRLEN + 1];
	int rc;

	usage_month(at_ms / 1000, month);
	rc = store_meter_nics(m->st, m->cfg->host_name, 0, &rows, &n_rows);
	if (rc == STORE_OK) {
		samples = calloc(n_rows + 1, sizeof(*samples));
		gone = calloc(n_rows + 1, sizeof(*gone));
		if (samples == NULL || gone == NULL)
			rc = STORE_ERR;
	}
	for (size_t i = 0; rc == STORE_OK && i < n_rows; i++) {
		const struct meter_nic *r = &rows[i];
		if (listed(m->removed, m->n_removed, r->nic) || listed(m->leaving, m->n_leaving, r->nic))
			continue;
		const struct link_stat *l = link_stats_find(links, n_links, ifname_tap(r->nic).s);
		if (l == NULL) {
			/* Gone without its removal sampling it (a crash of the
			 * host, someone else's hand): its sample means nothing. */
			if (r->sampled)
				gone[n_gone++] = r->nic;
			continue;
		}
		sample_of(r, l, at_ms, &samples[n_samples]);
		if (!sample_idle(r, &samples[n_samples]))
			n_samples++;
	}
	if (rc == STORE_OK)
		rc = vm_adds(m, at_ms / 1000, &vms, &n_vms, &adds, &n_adds);
	if (rc == STORE_OK)
		rc = store_meter_commit(m->st, m->cfg->host_name, month, at_ms / 1000, m->boot,
					samples, n_samples, gone, n_gone, adds, n_adds);
	if (rc != STORE_OK)
		log_warn("meter: storing the counters failed; the next sample counts them");
	free(rows);
	free(samples);
	free(gone);
	free(adds);
	meter_vms_free(vms, n_vms);
	/* A quota just used up, or a month just begun, changes the limits. */
	if (rc == STORE_OK && m->bw)
		bandwidth_refresh(m->bw);
}

static void dump_work(void *arg)
{
	struct dump_job *j = arg;
	struct nl_sock *sk = link_dump_socket(&j->err);

	j->at_ms = wall_ms();
	if (sk)
		link_stats_dump(sk, "v", &j->links, &j->n, &j->err);
	nl_socket_free(sk);
}

static void dump_done(void *arg, bool ran)
{
	struct dump_job *j = arg;
	struct meter *m = j->m;

	if (ran && j->err)
		log_warn("meter: %s", j->err);
	else if (ran)
		count(m, j->links, j->n, j->at_ms);
	m->busy = false;
	m->n_removed = 0;
	free(j->links);
	free(j->err);
	free(j);
}

long long meter_tick(struct meter *m, long long now, struct worker_pool *pool)
{
	long long interval = (long long)(m->cfg->meter_interval > 0 ? m->cfg->meter_interval : 10) * 1000;

	if (m->next == 0)
		m->next = now + interval;   /* the first pass at start has just run */
	if (now < m->next)
		return m->next - now;
	m->next = now + interval;
	if (m->busy)
		return interval;            /* the last dump is still out: skip one */
	struct dump_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return interval;
	j->m = m;
	m->busy = true;
	if (pool == NULL || worker_submit(pool, dump_work, dump_done, j) < 0) {
		dump_work(j);
		dump_done(j, true);
	}
	return interval;
}

/* Its reading of a removed NIC is older than what the removal stores. */
static void note_removed(struct meter *m, uint64_t nic)
{
	uint64_t *nv;

	if (!m->busy || (nv = realloc(m->removed, (m->n_removed + 1) * sizeof(*nv))) == NULL)
		return;
	m->removed = nv;
	m->removed[m->n_removed++] = nic;
}

static void tap_read(struct nl_sock *sk, uint64_t nic, struct tap_last *out)
{
	char *err = NULL;

	memset(out, 0, sizeof(*out));
	out->nic = nic;
	out->at_ms = wall_ms();
	out->found = sk ? link_stats_get(sk, ifname_tap(nic).s, &out->l, &err) : -1;
	if (out->found < 0)
		log_warn("meter: %s", err ? err : "netlink");
	free(err);
}

void meter_tap_read(uint64_t nic, struct tap_last *out)
{
	char *err = NULL;
	struct nl_sock *sk = link_nl_open(&err);

	if (sk == NULL)
		log_warn("meter: %s", err ? err : "netlink");
	free(err);
	tap_read(sk, nic, out);
	if (sk)
		nl_socket_free(sk);
}

void meter_tap_leaving(struct meter *m, uint64_t nic)
{
	uint64_t *nv = realloc(m->leaving, (m->n_leaving + 1) * sizeof(*nv));

	/* Out of memory: a dump may then drop its sample (the tap's last
	 * interval is lost, as when the host crashes). */
	if (nv == NULL)
		return;
	m->leaving = nv;
	m->leaving[m->n_leaving++] = nic;
}

void meter_tap_kept(struct meter *m, uint64_t nic)
{
	for (size_t i = 0; i < m->n_leaving; i++)
		if (m->leaving[i] == nic) {
			m->leaving[i] = m->leaving[--m->n_leaving];
			return;
		}
}

void meter_tap_gone(struct meter *m, const struct tap_last *last)
{
	struct meter_nic *rows = NULL;
	struct meter_sample s;
	size_t n = 0;
	char month[MONTH_STRLEN + 1];

	meter_tap_kept(m, last->nic);
	note_removed(m, last->nic);
	if (store_meter_nics(m->st, m->cfg->host_name, last->nic, &rows, &n) != STORE_OK || n == 0) {
		free(rows);
		return;
	}
	usage_month(last->at_ms / 1000, month);
	if (last->found > 0)
		sample_of(&rows[0], &last->l, last->at_ms, &s);
	if (store_meter_commit(m->st, m->cfg->host_name, month, 0, NULL, &s, last->found > 0 ? 1 : 0,
			       &last->nic, 1, NULL, 0) != STORE_OK)
		log_warn("meter: the last counters of %s were not stored", ifname_tap(last->nic).s);
	free(rows);
}

void meter_tap_removing(struct meter *m, uint64_t nic)
{
	struct tap_last last;

	tap_read(m->sk, nic, &last);
	meter_tap_gone(m, &last);
}
