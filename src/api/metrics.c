/*
 * metrics — GET /metrics (metrics.h): request counts kept on the loop,
 * a scrape collected and rendered on a worker, the disk counter cache.
 *
 * The worker's store handle: the loop's handle belongs to the loop alone
 * (common/worker.h), so a scrape reads through one of its own, opened on
 * the first scrape and used under `lock` by one scrape at a time.  It is
 * a reader: SQLite's WAL lets it read while the loop writes; PostgreSQL
 * gives it a connection of its own.
 */
#include "api/metrics.h"

#include "api/audit.h"
#include "api/events.h"
#include "api/handlers.h"
#include "api/promtext.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/worker.h"
#include "vm/qemu.h"
#include "vm/vmstats.h"

#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_CODES 16            /* distinct statuses counted per route */
#define MAX_DISKS 16            /* per VM: root, data disks, seed */

static const char *const vm_states[] = { "stopped", "starting", "running", "stopping", "error" };
#define N_VM_STATES (sizeof(vm_states) / sizeof(vm_states[0]))

/* Requests of one route (or of none: the last slot). */
struct route_stats {
	struct { int status; uint64_t count; } codes[MAX_CODES];
	size_t n_codes;
	uint64_t buckets[STAT_N_BOUNDS + 1];
	double sum;
};

struct disk_entry {
	uint64_t vm;
	size_t n;
	struct disk_counters d[MAX_DISKS];
};

struct metrics {
	struct api_ctx *ctx;
	double started;                  /* unix time hcd's API came up */
	/* loop only */
	struct route_stats *routes;      /* api_n_routes + 1 */
	uint64_t scrape_buckets[STAT_N_BOUNDS + 1];
	double scrape_sum;
	bool refreshing;                 /* a disk refresh job is out */
	long long refreshed_ms;          /* when the last one was sent */
	struct worker_pool *pool;        /* the metrics' own thread, at nice 19 */
	/* shared with the worker, under lock */
	pthread_mutex_t lock;
	struct store *st;
	struct disk_entry *disks;
	size_t n_disks;
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct metrics *metrics_new(struct api_ctx *ctx, char **err)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL || (m->routes = calloc(api_n_routes + 1, sizeof(*m->routes))) == NULL) {
		free(m);
		*err = strdup("out of memory");
		return NULL;
	}
	m->ctx = ctx;
	m->started = (double)time(NULL);
	pthread_mutex_init(&m->lock, NULL);
	if ((m->pool = worker_pool_new(1, err)) == NULL) {
		metrics_free(m);
		return NULL;
	}
	return m;
}

void metrics_stop(struct metrics *m)
{
	if (m == NULL)
		return;
	worker_pool_free(m->pool);
	m->pool = NULL;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	metrics_stop(m);
	store_close(m->st);
	pthread_mutex_destroy(&m->lock);
	free(m->disks);
	free(m->routes);
	free(m);
}

int metrics_fd(const struct metrics *m)
{
	return m && m->pool ? worker_pool_fd(m->pool) : -1;
}

void metrics_run(struct metrics *m)
{
	if (m && m->pool)
		worker_pool_run(m->pool);
}

/* Every job starts here: the thread is the metrics' alone, so it stays at
 * the lowest priority (raising it again would need CAP_SYS_NICE; lowering
 * needs nothing). */
static void lowest_priority(void)
{
	if (getpriority(PRIO_PROCESS, (id_t)gettid()) < 19)
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
}

void metrics_request(struct metrics *m, const struct route *rt, const char *method, int status,
		     double seconds)
{
	struct route_stats *r;
	size_t i;

	if (m == NULL)
		return;
	r = &m->routes[rt ? (size_t)(rt - api_routes) : api_n_routes];
	(void)method;   /* a route row has one method; unmatched paths are one series */
	for (i = 0; i < r->n_codes && r->codes[i].status != status; i++)
		;
	if (i == r->n_codes && i < MAX_CODES)
		r->codes[r->n_codes++].status = status;
	if (i < MAX_CODES)
		r->codes[i].count++;
	r->buckets[stat_bucket(seconds)]++;
	r->sum += seconds;
}

/* ---- one scrape ------------------------------------------------------------- */

/* What the loop hands the worker, and what the worker hands back. */
struct scrape {
	struct metrics *m;
	double t_loop;                   /* seconds the loop spent on this scrape */
	/* copies of loop-owned state */
	struct route_stats *routes;
	uint64_t scrape_buckets[STAT_N_BOUNDS + 1];
	double scrape_sum;
	struct agent_wakeups wakeups;
	struct events_stats events;
	struct audit_stats audit;
	char *host, *store_uri, *state_dir;
	bool gzip;                       /* the scraper takes gzip (Prometheus does) */
	/* results */
	char *text;
	size_t len;
	char *err;
	uint64_t *running;               /* VMs whose QEMU ran, for the disk cache */
	size_t n_running;
};

static void scrape_free(struct scrape *s)
{
	free(s->routes);
	free(s->host);
	free(s->store_uri);
	free(s->state_dir);
	free(s->text);
	free(s->err);
	free(s->running);
	free(s);
}

/* Labels of a VM's series. */
#define VM_LABELS(v, id) "vm", (id), "name", (v)->name ? (v)->name : "", \
	"owner", (v)->owner_name ? (v)->owner_name : ""

static const struct disk_entry *disks_of(const struct metrics *m, uint64_t vm)
{
	for (size_t i = 0; i < m->n_disks; i++)
		if (m->disks[i].vm == vm)
			return &m->disks[i];
	return NULL;
}

/* Per VM: its state, size and, when its QEMU runs, what it uses. */
static void render_vms(struct promtext *p, struct scrape *s, const struct inv_vm *vms, size_t n)
{
	struct metrics *m = s->m;
	struct nicstats *ns = NULL;
	char *err = NULL;
	struct proc_usage *use = calloc(n ? n : 1, sizeof(*use));
	bool *up = calloc(n ? n : 1, sizeof(*up));

	s->running = calloc(n ? n : 1, sizeof(*s->running));
	if (use == NULL || up == NULL || s->running == NULL) {
		p->failed = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct vm_paths paths;
		pid_t pid;
		/* A stopped VM wanted stopped has no QEMU: spare the look. */
		if (strcmp(vms[i].state, "stopped") == 0 && strcmp(vms[i].desired, "running") != 0)
			continue;
		if (vm_paths_init(&paths, s->state_dir, vms[i].id) < 0)
			continue;
		pid = qemu_running_pid(&paths);
		up[i] = pid > 0 && vmstats_proc(pid, &use[i]) == 0;
		if (up[i])
			s->running[s->n_running++] = vms[i].id;
		vm_paths_free(&paths);
	}
	if (s->n_running > 0 && (ns = nicstats_open(&err)) == NULL) {
		log_warn("metrics: %s", err);
		free(err);
	}

	prom_family(p, "hackcloud_vm_state", "gauge",
		    "VM state on this host: 1 for the state it is in, 0 for the others");
	for (size_t i = 0; i < n; i++) {
		vm_id_str id = vm_id_format(vms[i].id);
		for (size_t k = 0; k < N_VM_STATES; k++)
			prom_sample_u(p, "hackcloud_vm_state",
				      (const char *[]){ VM_LABELS(&vms[i], id.s), "state", vm_states[k], NULL },
				      strcmp(vms[i].state, vm_states[k]) == 0);
	}
	prom_family(p, "hackcloud_vm_desired_running", "gauge",
		    "1 when the VM is wanted running, 0 when wanted stopped");
	for (size_t i = 0; i < n; i++) {
		vm_id_str id = vm_id_format(vms[i].id);
		prom_sample_u(p, "hackcloud_vm_desired_running",
			      (const char *[]){ VM_LABELS(&vms[i], id.s), NULL },
			      strcmp(vms[i].desired, "running") == 0);
	}
	prom_family(p, "hackcloud_vm_cpus", "gauge", "virtual CPUs the VM is configured with");
	for (size_t i = 0; i < n; i++) {
		vm_id_str id = vm_id_format(vms[i].id);
		prom_sample_u(p, "hackcloud_vm_cpus", (const char *[]){ VM_LABELS(&vms[i], id.s), NULL },
			      (uint64_t)vms[i].cpus);
	}
	prom_family(p, "hackcloud_vm_memory_configured_bytes", "gauge",
		    "memory the VM is configured with");
	for (size_t i = 0; i < n; i++) {
		vm_id_str id = vm_id_format(vms[i].id);
		prom_sample_u(p, "hackcloud_vm_memory_configured_bytes",
			      (const char *[]){ VM_LABELS(&vms[i], id.s), NULL },
			      (uint64_t)vms[i].memory_mib << 20);
	}
	prom_family(p, "hackcloud_vm_cpu_seconds_total", "counter",
		    "CPU time of the VM's QEMU process (user + system, vCPUs and emulation)");
	for (size_t i = 0; i < n; i++) {
		vm_id_str id = vm_id_format(vms[i].id);
		if (up[i])
			prom_sample(p, "hackcloud_vm_cpu_seconds_total",
				    (const char *[]){ VM_LABELS(&vms[i], id.s), NULL }, use[i].cpu_seconds);
	}
	prom_family(p, "hackcloud_vm_memory_rss_bytes", "gauge",
		    "resident memory of the VM's QEMU process");
	for (size_t i = 0; i < n; i++) {
		vm_id_str id = vm_id_format(vms[i].id);
		if (up[i])
			prom_sample_u(p, "hackcloud_vm_memory_rss_bytes",
				      (const char *[]){ VM_LABELS(&vms[i], id.s), NULL }, use[i].rss_bytes);
	}

	static const struct { const char *name, *help; } nic_fam[] = {
		{ "hackcloud_vm_nic_receive_bytes_total", "bytes the guest received on the NIC" },
		{ "hackcloud_vm_nic_transmit_bytes_total", "bytes the guest sent on the NIC" },
		{ "hackcloud_vm_nic_receive_packets_total", "packets the guest received on the NIC" },
		{ "hackcloud_vm_nic_transmit_packets_total", "packets the guest sent on the NIC" },
	};
	for (size_t f = 0; f < 4; f++) {
		prom_family(p, nic_fam[f].name, "counter", nic_fam[f].help);
		for (size_t i = 0; ns && i < n; i++) {
			vm_id_str id = vm_id_format(vms[i].id);
			for (size_t k = 0; up[i] && k < vms[i].n_nics; k++) {
				struct nic_counters c;
				ifname_str tap = ifname_tap(vms[i].nics[k]);
				mac_str mac = nic_mac_format(vms[i].nics[k]);
				if (nicstats_get(ns, tap.s, &c) < 0)
					continue;
				uint64_t v = f == 0 ? c.rx_bytes : f == 1 ? c.tx_bytes
					   : f == 2 ? c.rx_packets : c.tx_packets;
				prom_sample_u(p, nic_fam[f].name,
					      (const char *[]){ VM_LABELS(&vms[i], id.s), "nic", mac.s,
								"ifname", tap.s, NULL }, v);
			}
		}
	}

	static const struct { const char *name, *help; } disk_fam[] = {
		{ "hackcloud_vm_disk_read_bytes_total", "bytes the guest read from the disk" },
		{ "hackcloud_vm_disk_write_bytes_total", "bytes the guest wrote to the disk" },
		{ "hackcloud_vm_disk_reads_total", "read operations of the guest on the disk" },
		{ "hackcloud_vm_disk_writes_total", "write operations of the guest on the disk" },
	};
	for (size_t f = 0; f < 4; f++) {
		prom_family(p, disk_fam[f].name, "counter", disk_fam[f].help);
		for (size_t i = 0; i < n; i++) {
			const struct disk_entry *d = up[i] ? disks_of(m, vms[i].id) : NULL;
			vm_id_str id = vm_id_format(vms[i].id);
			for (size_t k = 0; d && k < d->n; k++) {
				const struct disk_counters *c = &d->d[k];
				uint64_t v = f == 0 ? c->rd_bytes : f == 1 ? c->wr_bytes
					   : f == 2 ? c->rd_ops : c->wr_ops;
				prom_sample_u(p, disk_fam[f].name,
					      (const char *[]){ VM_LABELS(&vms[i], id.s), "disk", c->name,
								NULL }, v);
			}
		}
	}
out:
	nicstats_close(ns);
	free(use);
	free(up);
}

/* This host: its VMs by state and what they take of it. */
static void render_host(struct promtext *p, struct scrape *s, const struct inv_vm *vms, size_t n,
			const struct host *h, bool have_host)
{
	const char *host = s->host;
	uint64_t count[N_VM_STATES] = { 0 };

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < N_VM_STATES; k++)
			count[k] += strcmp(vms[i].state, vm_states[k]) == 0;
	prom_family(p, "hackcloud_host_vms", "gauge", "VMs placed on this host, by state");
	for (size_t k = 0; k < N_VM_STATES; k++)
		prom_sample_u(p, "hackcloud_host_vms",
			      (const char *[]){ "host", host, "state", vm_states[k], NULL }, count[k]);
	if (!have_host)
		return;
	prom_family(p, "hackcloud_host_up", "gauge", "1 while the host is live in the store");
	prom_sample_u(p, "hackcloud_host_up", (const char *[]){ "host", host, NULL },
		      strcmp(h->state, "live") == 0);
	prom_family(p, "hackcloud_host_cpus", "gauge", "CPUs of the host");
	prom_sample_u(p, "hackcloud_host_cpus", (const char *[]){ "host", host, NULL },
		      (uint64_t)h->cpus);
	prom_family(p, "hackcloud_host_cpus_allocated", "gauge",
		    "virtual CPUs of the VMs placed on the host");
	prom_sample_u(p, "hackcloud_host_cpus_allocated", (const char *[]){ "host", host, NULL },
		      (uint64_t)h->used_cpus);
	prom_family(p, "hackcloud_host_memory_bytes", "gauge", "memory of the host available to VMs");
	prom_sample_u(p, "hackcloud_host_memory_bytes", (const char *[]){ "host", host, NULL },
		      (uint64_t)h->memory_mib << 20);
	prom_family(p, "hackcloud_host_memory_allocated_bytes", "gauge",
		    "memory of the VMs placed on the host");
	prom_sample_u(p, "hackcloud_host_memory_allocated_bytes",
		      (const char *[]){ "host", host, NULL }, (uint64_t)h->used_mib << 20);
}

static void counter(struct promtext *p, const char *name, const char *help, uint64_t v)
{
	prom_family(p, name, "counter", help);
	prom_sample_u(p, name, NULL, v);
}

static void histogram(struct promtext *p, const char *name, const char *help, const uint64_t *b,
		      double sum)
{
	prom_family(p, name, "histogram", help);
	prom_histogram(p, name, NULL, stat_bounds, STAT_N_BOUNDS, b, sum);
}

/* hcd itself: the API, the agent, the firewall, metadata, logins, store. */
static void render_hcd(struct promtext *p, struct scrape *s)
{
	struct stat_hist_snap h;

	prom_family(p, "hackcloud_build_info", "gauge", "hcd's version");
	prom_sample_u(p, "hackcloud_build_info", (const char *[]){ "version", HC_VERSION, NULL }, 1);
	prom_family(p, "hackcloud_start_time_seconds", "gauge", "when hcd's API started (unix time)");
	prom_sample(p, "hackcloud_start_time_seconds", NULL, s->m->started);

	prom_family(p, "hackcloud_api_requests_total", "counter",
		    "API requests answered, by route pattern, method and status");
	for (size_t i = 0; i <= api_n_routes; i++) {
		const struct route_stats *r = &s->routes[i];
		const char *route = i < api_n_routes ? api_routes[i].pattern : "unmatched";
		const char *method = i < api_n_routes ? api_routes[i].method : "any";
		for (size_t k = 0; k < r->n_codes; k++) {
			char code[8];
			snprintf(code, sizeof(code), "%d", r->codes[k].status);
			prom_sample_u(p, "hackcloud_api_requests_total",
				      (const char *[]){ "route", route, "method", method, "code", code, NULL },
				      r->codes[k].count);
		}
	}
	prom_family(p, "hackcloud_api_request_duration_seconds", "histogram",
		    "from a request's headers to its answer being queued, by route pattern");
	for (size_t i = 0; i <= api_n_routes; i++) {
		const struct route_stats *r = &s->routes[i];
		if (r->n_codes == 0)
			continue;
		prom_histogram(p, "hackcloud_api_request_duration_seconds",
			       (const char *[]){ "route", i < api_n_routes ? api_routes[i].pattern : "unmatched",
						 "method", i < api_n_routes ? api_routes[i].method : "any",
						 NULL },
			       stat_bounds, STAT_N_BOUNDS, r->buckets, r->sum);
	}

	prom_family(p, "hackcloud_reconcile_passes_total", "counter",
		    "agent passes by cause (a pass with two causes counts for both)");
	static const char *const causes[] = { "local", "notify", "resync", "retry" };
	const uint64_t passes[] = { s->wakeups.local, s->wakeups.notify, s->wakeups.resync,
				    s->wakeups.retry };
	for (size_t i = 0; i < 4; i++)
		prom_sample_u(p, "hackcloud_reconcile_passes_total",
			      (const char *[]){ "cause", causes[i], NULL }, passes[i]);
	stat_hist_get(HIST_RECONCILE, &h);
	histogram(p, "hackcloud_reconcile_duration_seconds", "duration of agent passes", h.buckets,
		  h.sum);
	stat_hist_get(HIST_FIREWALL, &h);
	histogram(p, "hackcloud_firewall_apply_duration_seconds",
		  "firewall_apply: generate the ruleset, compare, send it when it changed",
		  h.buckets, h.sum);
	prom_family(p, "hackcloud_firewall_applies_total", "counter",
		    "firewall applies by outcome");
	prom_sample_u(p, "hackcloud_firewall_applies_total",
		      (const char *[]){ "result", "changed", NULL }, stat_get(STAT_FIREWALL_CHANGED));
	prom_sample_u(p, "hackcloud_firewall_applies_total",
		      (const char *[]){ "result", "unchanged", NULL }, stat_get(STAT_FIREWALL_UNCHANGED));
	prom_sample_u(p, "hackcloud_firewall_applies_total",
		      (const char *[]){ "result", "failed", NULL }, stat_get(STAT_FIREWALL_FAILED));

	counter(p, "hackcloud_metadata_requests_total", "requests to the metadata service",
		stat_get(STAT_METADATA_REQUESTS));
	counter(p, "hackcloud_metadata_throttled_total",
		"metadata requests refused 429 (a VM over metadata_rate)",
		stat_get(STAT_METADATA_THROTTLED));
	counter(p, "hackcloud_login_failures_total", "logins refused for a wrong user, password or code",
		stat_get(STAT_LOGIN_FAILURES));
	counter(p, "hackcloud_login_throttled_total", "logins refused 429 while backing off",
		stat_get(STAT_LOGIN_THROTTLED));
	counter(p, "hackcloud_password_checks_total",
		"argon2id runs of credential checks (the user's hash or the dummy): one per checked attempt",
		stat_get(STAT_PASSWORD_CHECKS));
	counter(p, "hackcloud_store_errors_total", "statements and transactions the database failed",
		stat_get(STAT_STORE_ERRORS));
	counter(p, "hackcloud_store_reconnects_total",
		"PostgreSQL connections made again (statements or notifications)",
		stat_get(STAT_STORE_RECONNECTS));

	prom_family(p, "hackcloud_event_streams", "gauge", "open /v1/events streams");
	prom_sample_u(p, "hackcloud_event_streams", NULL, s->events.streams);
	counter(p, "hackcloud_events_sent_total", "events written to /v1/events streams",
		s->events.sent);
	counter(p, "hackcloud_event_syncs_total", "sync events written to /v1/events streams",
		s->events.syncs);
	counter(p, "hackcloud_event_streams_cut_total", "event streams cut for reading too slowly",
		s->events.cut);
	counter(p, "hackcloud_event_announcements_total",
		"loop turns that read the event log because another host announced events",
		s->events.announced);
	prom_family(p, "hackcloud_audit_pending", "gauge",
		    "audit entries in the journal, not yet in the store");
	prom_sample_u(p, "hackcloud_audit_pending", NULL, s->audit.pending);
	counter(p, "hackcloud_audit_recorded_total", "audit entries moved into the store",
		s->audit.recorded);
	counter(p, "hackcloud_audit_failures_total", "audit journal writes or batches that failed",
		s->audit.failures);
	histogram(p, "hackcloud_metrics_scrape_loop_seconds",
		  "event loop time of earlier scrapes of /metrics (the rest runs on a worker)",
		  s->scrape_buckets, s->scrape_sum);
}

/* The text as a gzip member (malloc'd), or NULL. */
static char *gzip_text(const char *text, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	uLong bound;
	char *out;

	/* windowBits 15 + 16: a gzip header and trailer around deflate. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	bound = deflateBound(&z, (uLong)len);
	if ((out = malloc(bound)) == NULL) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)text;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* On a worker: read, measure, render (and compress). */
static void scrape_work(void *arg)
{
	struct scrape *s = arg;
	struct metrics *m = s->m;
	struct promtext p = { 0 };
	struct inv_vm *vms = NULL;
	struct host h = { 0 };
	size_t n = 0;
	bool have_host = false;
	int rc;

	lowest_priority();
	pthread_mutex_lock(&m->lock);
	if (m->st == NULL && (m->st = store_open(s->store_uri, s->state_dir, &s->err)) == NULL)
		goto out;
	rc = store_inventory(m->st, s->host, &vms, &n);
	if (rc == STORE_OK)
		have_host = store_host_get(m->st, s->host, &h) == STORE_OK;
	if (rc != STORE_OK) {
		s->err = strdup("cannot read the store");
		goto out;
	}
	render_vms(&p, s, vms, n);
	render_host(&p, s, vms, n, &h, have_host);
	render_hcd(&p, s);
	if ((s->text = prom_take(&p, &s->len)) == NULL)
		s->err = strdup("out of memory");
	/* Compressed here, not on the loop, which then sends a tenth of the
	 * bytes.  Uncompressed when that fails: still an answer. */
	if (s->text && s->gzip) {
		size_t zlen;
		char *z = gzip_text(s->text, s->len, &zlen);
		if (z) {
			free(s->text);
			s->text = z;
			s->len = zlen;
		} else {
			s->gzip = false;
		}
	}
out:
	pthread_mutex_unlock(&m->lock);
	prom_free(&p);
	inventory_free(vms, n);
	host_free(&h);
}

/* ---- the disk cache ------------------------------------------------------------ */

struct refresh {
	struct metrics *m;
	char *state_dir;
	uint64_t *vms;
	size_t n;
};

/* On a worker: ask each VM's QEMU, then swap the cache whole. */
static void refresh_work(void *arg)
{
	struct refresh *j = arg;
	struct disk_entry *v = calloc(j->n ? j->n : 1, sizeof(*v));
	size_t n = 0;

	lowest_priority();
	for (size_t i = 0; v && i < j->n; i++) {
		struct vm_paths paths;
		char *err = NULL;
		if (vm_paths_init(&paths, j->state_dir, j->vms[i]) < 0)
			continue;
		v[n].vm = j->vms[i];
		if (vmstats_blockstats(paths.qmp, v[n].d, MAX_DISKS, &v[n].n, &err) == 0)
			n++;
		else
			log_debug("metrics: query-blockstats of vm %s: %s", vm_id_format(j->vms[i]).s, err);
		free(err);
		vm_paths_free(&paths);
	}
	pthread_mutex_lock(&j->m->lock);
	free(j->m->disks);
	j->m->disks = v;
	j->m->n_disks = n;
	pthread_mutex_unlock(&j->m->lock);
}

static void refresh_done(void *arg, bool ran)
{
	struct refresh *j = arg;

	(void)ran;
	j->m->refreshing = false;
	free(j->state_dir);
	free(j->vms);
	free(j);
}

/* The scrape saw these VMs run: their disk counters are asked for when
 * the cache is older than metrics_disk_interval. */
static void refresh_maybe(struct metrics *m, struct scrape *s)
{
	long long now = mono_ms();
	struct refresh *j;

	if (m->refreshing || m->pool == NULL || s->n_running == 0 ||
	    now - m->refreshed_ms < (long long)m->ctx->cfg->metrics_disk_interval * 1000)
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	*j = (struct refresh){ .m = m, .state_dir = strdup(s->state_dir), .vms = s->running,
			       .n = s->n_running };
	s->running = NULL;
	s->n_running = 0;
	if (j->state_dir == NULL || worker_submit(m->pool, refresh_work, refresh_done, j) < 0) {
		free(j->state_dir);
		free(j->vms);
		free(j);
		return;
	}
	m->refreshing = true;
	m->refreshed_ms = now;
}

/* ---- the handler ---------------------------------------------------------------- */

static void scrape_finish(struct req *r, void *arg, bool ran)
{
	struct scrape *s = arg;
	struct metrics *m = s->m;
	double t0 = stat_now();

	if (!ran)
		req_error(r, 503, "unavailable", "hcd is stopping");
	else if (s->text == NULL)
		req_error(r, 500, "internal", "metrics: %s", s->err ? s->err : "failed");
	else {
		req_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", s->text, s->len);
		s->text = NULL;
		req_header_add(r, "Vary", "Accept-Encoding");
		if (s->gzip)
			req_header_add(r, "Content-Encoding", "gzip");
		refresh_maybe(m, s);
	}
	s->t_loop += stat_now() - t0;
	m->scrape_buckets[stat_bucket(s->t_loop)]++;
	m->scrape_sum += s->t_loop;
	scrape_free(s);
}

/* Accept-Encoding names gzip, not with q=0 ("gzip", "gzip, deflate",
 * "deflate;q=1.0, gzip;q=0.5"). */
static bool accepts_gzip(const char *ae)
{
	for (const char *p = ae; p && (p = strstr(p, "gzip")) != NULL; p += 4) {
		const char *q = p + 4;
		bool token = (p == ae || p[-1] == ' ' || p[-1] == ',') &&
			     (*q == '\0' || *q == ',' || *q == ';' || *q == ' ');
		if (!token)
			continue;
		q += strspn(q, " ");
		if (*q == ';') {
			q += 1 + strspn(q + 1, " ");
			if (strncmp(q, "q=0", 3) == 0 && strspn(q + 3, ".0") == strcspn(q + 3, ", "))
				return false;
		}
		return true;
	}
	return false;
}

int h_metrics(struct req *r)
{
	struct metrics *m = r->api->metrics;
	const struct config *cfg = r->api->cfg;
	double t0 = stat_now();
	struct scrape *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->routes = malloc((api_n_routes + 1) * sizeof(*s->routes))) == NULL) {
		free(s);
		return req_error(r, 500, "internal", "out of memory");
	}
	s->m = m;
	memcpy(s->routes, m->routes, (api_n_routes + 1) * sizeof(*s->routes));
	memcpy(s->scrape_buckets, m->scrape_buckets, sizeof(s->scrape_buckets));
	s->scrape_sum = m->scrape_sum;
	if (r->api->agent)
		agent_wakeups(r->api->agent, &s->wakeups);
	events_stats(r->api->events, &s->events);
	audit_stats(r->api->audit, &s->audit);
	s->gzip = accepts_gzip(req_header(r, "Accept-Encoding"));
	s->host = strdup(cfg->host_name);
	s->store_uri = strdup(cfg->store);
	s->state_dir = strdup(cfg->state_dir);
	if (s->host == NULL || s->store_uri == NULL || s->state_dir == NULL) {
		scrape_free(s);
		return req_error(r, 500, "internal", "out of memory");
	}
	s->t_loop = stat_now() - t0;
	return req_defer_on(r, m->pool, scrape_work, scrape_finish, s);
}
