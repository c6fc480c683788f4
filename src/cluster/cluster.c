/*
 * cluster — registration, heartbeats, dead hosts and placement.  See
 * cluster.h for the contract.
 */
#include "cluster/cluster.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/validate.h"
#include "vm/migrate.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cluster {
	struct store *st;
	const struct config *cfg;
	bool scheduler;             /* the "scheduler" role is ours */
	long long next_beat;
	int64_t started;            /* when this hcd joined (unix seconds) */
};

/* MemTotal in MiB, from /proc/meminfo; 0 when unreadable. */
static long long host_memory_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	long long kib = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib / 1024;
}

struct cluster *cluster_new(struct store *st, const struct config *cfg, const char *accel,
			    char **err)
{
	struct cluster *c = calloc(1, sizeof(*c));
	long long mem = host_memory_mib() - cfg->reserved_memory_mib;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	*err = NULL;
	if (c == NULL)
		return NULL;
	c->st = st;
	c->cfg = cfg;
	c->scheduler = list_has(cfg->roles, "scheduler");
	c->started = (int64_t)time(NULL);
	struct host h = {
		.name = cfg->host_name,
		.address = cfg->underlay && cfg->underlay[0] ? cfg->underlay : NULL,
		.cpus = cpus > 0 ? (int)cpus : 1,
		.memory_mib = mem > 0 ? mem : 0,
		.accel = (char *)accel,
	};
	if (store_host_register(st, &h) != STORE_OK) {
		*err = str_printf("cannot register host '%s' in the store", cfg->host_name);
		free(c);
		return NULL;
	}
	log_info("cluster: host %s registered (%d CPUs, %lld MiB for VMs, underlay %s)%s",
		 h.name, h.cpus, (long long)h.memory_mib, h.address ? h.address : "none",
		 c->scheduler ? "; scheduler role" : "");
	return c;
}

void cluster_free(struct cluster *c)
{
	free(c);
}

/*
 * Hosts drained with --migrate (issue 14 §1): their running VMs leave
 * through live migrations, drain_migrate of them at a time.  Each step is
 * one transaction (store_drain_step), so schedulers on several hosts
 * never start more than that between them.
 */
static void drain_tick(struct cluster *c)
{
	struct host *v = NULL;
	size_t n = 0;

	if (store_host_list(c->st, &v, &n) != STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; v[i].drain_migrate > 0 && k < v[i].drain_migrate; k++) {
			struct placement tmpl = { 0 };
			char psk[MIG_PSK_HEX + 1];
			uint64_t vm = 0;
			cluster_policy(c, &tmpl);
			mig_psk_new(psk);
			int rc = store_drain_step(c->st, v[i].name, &tmpl, c->cfg->migrate_port_base,
						  c->cfg->migrate_port_count, psk, &vm);
			sodium_memzero(psk, sizeof(psk));
			if (rc != STORE_OK) {
				if (rc == STORE_FULL && strstr(store_refusal(c->st), "port"))
					log_warn("cluster: drain of %s: %s", v[i].name, store_refusal(c->st));
				break;
			}
			log_info("cluster: drain of %s: migrating vm %s", v[i].name, vm_id_format(vm).s);
		}
	}
	hosts_free(v, n);
}

long long cluster_tick(struct cluster *c, long long now_ms)
{
	long long interval = (long long)(c->cfg->heartbeat_interval > 0 ? c->cfg->heartbeat_interval : 1) * 1000;
	int64_t now = (int64_t)time(NULL);
	size_t dead = 0, moved = 0;

	if (now_ms < c->next_beat)
		return c->next_beat - now_ms;
	c->next_beat = now_ms + interval;
	if (store_host_heartbeat(c->st, c->cfg->host_name, now) != STORE_OK)
		log_warn("cluster: heartbeat of %s failed", c->cfg->host_name);
	/* Judging others dead takes having watched them for dead_timeout: a
	 * host alone does not beat (store_host_heartbeat), and starts again
	 * within one interval of seeing this one registered. */
	if (c->scheduler)
		drain_tick(c);
	if (!c->scheduler || now - c->started < c->cfg->dead_timeout)
		return interval;
	if (store_hosts_mark_dead(c->st, now, c->cfg->dead_timeout, c->cfg->host_name,
				  &dead) == STORE_OK && dead > 0)
		log_warn("cluster: %zu host(s) silent for %d s marked dead", dead, c->cfg->dead_timeout);
	/* Also after a restart of every scheduler: evacuation is idempotent. */
	if (store_evacuate_dead(c->st, (double)c->cfg->cpu_overcommit, now, c->cfg->dead_timeout,
				&moved) == STORE_OK && moved > 0)
		log_warn("cluster: %zu ephemeral VM(s) of dead hosts placed anew", moved);
	return interval;
}

void cluster_policy(const struct cluster *c, struct placement *p)
{
	p->cpu_ratio = (double)(c->cfg->cpu_overcommit > 0 ? c->cfg->cpu_overcommit : 1);
	p->now = (int64_t)time(NULL);
	p->fresh = c->cfg->dead_timeout;
	p->self = c->cfg->host_name;
}
