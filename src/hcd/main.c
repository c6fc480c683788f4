/*
 * hcd — the hackcloud daemon (DESIGN §3).
 *
 * Roles and what wakes them, all in one poll loop of one thread:
 *
 *   role       event sources                        work
 *   api        the unix socket, the TCP listener    api/ (libmicrohttpd)
 *   scheduler  a VM create                          places it on this host (single-host store)
 *   agent      store change hook (this process),    agent/ reconcile pass,
 *              store notifications (other hosts),   one per loop turn for
 *              a transition in flight, the          all that came up
 *              periodic resync
 *   importer   an eventfd: a download thread ended    image/ check, store, mark ready/error
 *   workers    an eventfd: a slow job finished        its done callback (common/worker.h);
 *                                                   the agent's jobs (VM launch, end of a
 *                                                   QEMU) then ask for a pass
 *   migrations an eventfd: a live migration's job ended  agent/migrate: the row's
 *              (a pool of their own: transfers last)    next step, then a pass
 *   events     the store's event hook, announcements   api/events.c: streams of
 *              of other hosts (their own channel)       /v1/events read the log
 *   meter      every meter_interval seconds           agent/meter: counters into the store
 *   (all)      signalfd: TERM/INT stop, HUP reload
 *
 * QEMU processes are not children of the loop: hcd starts each detached
 * (proc_daemon, common/proc.h) and they outlive it; it re-adopts them on
 * start.  The only other threads are the importer's downloads, which never
 * touch the store (image/fetch.h).
 */
#include "agent/meter.h"
#include "agent/reconcile.h"
#include "agent/snapshots.h"
#include "api/api.h"
#include "api/openapi.h"
#include "cluster/cluster.h"
#include "common/addrpool.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/netpool.h"
#include "common/proc.h"
#include "common/stats.h"
#include "common/worker.h"
#include "image/import.h"
#include "metadata/server.h"
#include "store/store.h"
#include "vm/accel.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/file.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

struct hcd {
	struct config cfg;
	char *config_path;
	bool config_optional;
	bool print_config;      /* --print-config: print it and exit */
	char **overrides;
	int n_overrides;
	struct store *st;
	struct agent *agent;
	struct api_server *api;
	struct api_ctx api_ctx;
	struct metadata_server *md;
	struct importer *importer;
	struct worker_pool *workers;
	struct cluster *cluster;
	unsigned wake;          /* AGENT_WAKE_* reasons for the next pass */
	long long next_resync;
};

/* hcd's own options; every hcd.conf key is one too (--KEY=VALUE).  usage()
 * and `hcd --print-config` (so hcd(8)) are made from this table. */
static const struct {
	const char *name, *metavar, *help;
} hcd_opts[] = {
	{ "--state-dir", "DIR", "state directory (default /var/lib/hackcloud); API at DIR/api.sock" },
	{ "--config", "FILE", "config file (default " CONFIG_DEFAULT_PATH "; must exist if given)" },
	{ "--accel", "A", "kvm, tcg or auto (auto proves KVM with a probe guest)" },
	{ "--KEY", "VALUE", "any hcd.conf key, e.g. --listen=[::1]:8443 --auth.token_ttl=3600" },
	{ "--print-config", NULL, "print hcd's options and every hcd.conf key with its value, as JSON" },
	{ "--print-routes", NULL, "print the API's route table (method, path, access, body), as JSON" },
	{ "--help", NULL, "print this help, then exit" },
	{ "--version", NULL, "print hcd's version, then exit" },
};
#define N_HCD_OPTS (sizeof(hcd_opts) / sizeof(hcd_opts[0]))

#define USAGE "[--state-dir DIR] [--config FILE] [--accel kvm|tcg|auto] [--KEY=VALUE]..."

static void usage(FILE *f)
{
	fputs("usage: hcd " USAGE "\n"
	      "\n"
	      "Runs the hackcloud daemon in the foreground.\n", f);
	for (size_t i = 0; i < N_HCD_OPTS; i++) {
		char left[32];
		snprintf(left, sizeof(left), "%s%s%s", hcd_opts[i].name,
			 hcd_opts[i].metavar ? (strcmp(hcd_opts[i].name, "--KEY") ? " " : "=") : "",
			 hcd_opts[i].metavar ? hcd_opts[i].metavar : "");
		fprintf(f, "  %-17s %s\n", left, hcd_opts[i].help);
	}
}

/*
 * --print-config: the option and key tables, each key with its value once
 * the file and the options are read, then exit.  For operators, and for the
 * generated manuals and sample hcd.conf (packaging/gendoc.py, which runs
 * it with --config /dev/null to get the defaults).
 */
static int print_config(const struct config *cfg)
{
	json_t *root = json_object(), *opts = json_array(), *keys = json_array();
	struct config_key_doc k;
	int rc;

	for (size_t i = 0; i < N_HCD_OPTS; i++)
		json_array_append_new(opts, json_pack("{s:s, s:s?, s:s}", "name", hcd_opts[i].name,
						      "metavar", hcd_opts[i].metavar,
						      "help", hcd_opts[i].help));
	for (size_t i = 0; config_key_at(i, &k); i++) {
		char *v = config_value_text(cfg, i);
		json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s?, s:s}", "section", k.section,
						      "name", k.name, "type", k.type, "value", v,
						      "help", k.help));
		free(v);
	}
	json_object_set_new(root, "version", json_string(HC_VERSION));
	json_object_set_new(root, "usage", json_string(USAGE));
	json_object_set_new(root, "config_path", json_string(CONFIG_DEFAULT_PATH));
	json_object_set_new(root, "options", opts);
	json_object_set_new(root, "keys", keys);
	rc = json_dumpf(root, stdout, JSON_INDENT(1));
	json_decref(root);
	return rc == 0 && putchar('\n') != EOF && fflush(stdout) == 0 ? 0 : 1;
}

/*
 * --print-routes: the route table as data, then exit.  The openapi test
 * (tests/openapi) compares it with docs/openapi.json: every route
 * described, nothing described that is not a route.
 */
static int print_routes(void)
{
	json_t *routes = api_routes_json();
	int rc = routes ? json_dumpf(routes, stdout, JSON_INDENT(1)) : -1;

	json_decref(routes);
	return rc == 0 && putchar('\n') != EOF && fflush(stdout) == 0 ? 0 : 1;
}

static enum log_level level_of(const char *s)
{
	if (strcmp(s, "debug") == 0) return LOG_LVL_DEBUG;
	if (strcmp(s, "warn") == 0) return LOG_LVL_WARN;
	if (strcmp(s, "error") == 0) return LOG_LVL_ERR;
	return LOG_LVL_INFO;
}

static int load_config(struct hcd *h, struct config *out)
{
	char *err = NULL;

	config_defaults(out);
	if (config_load(out, h->config_path, h->config_optional, h->overrides,
			h->n_overrides, &err) < 0) {
		log_err("config: %s", err);
		free(err);
		config_free(out);
		return -1;
	}
	if (strcmp(out->accel, "kvm") && strcmp(out->accel, "tcg") && strcmp(out->accel, "auto")) {
		log_err("config: accel must be kvm, tcg or auto");
		config_free(out);
		return -1;
	}
	if (strcmp(out->metadata_tokens, "optional") && strcmp(out->metadata_tokens, "required")) {
		log_err("config: metadata_tokens must be optional or required");
		config_free(out);
		return -1;
	}
	/* The same parse as a network create's, so a typo stops hcd here. */
	struct prefix *pools = NULL;
	size_t n = 0;
	char bad[64];
	bool ok = prefix_list_parse(out->tenant_ipv6_pool, AF_INET6, 64, &pools, &n, bad) &&
		  prefix_list_parse(out->tenant_ipv4_pool, AF_INET, 30, &pools, &n, bad);
	free(pools);
	if (!ok) {
		log_err("config: tenant_ipv6_pool/tenant_ipv4_pool: '%s' is not a prefix of that family"
			" (IPv6 at most /64, IPv4 at most /30)", bad);
		config_free(out);
		return -1;
	}
	/* routed prefixes and public IPv4 (issue 13) */
	if (addrpool_config_check(out, &err) < 0) {
		log_err("config: %s", err);
		free(err);
		config_free(out);
		return -1;
	}
	return 0;
}

/* A pass or a list over 10,000 VMs frees megabytes of small blocks: hand
 * the free pages back rather than keep them resident (issue 12 §6: RSS).
 * Looked at once a second at most (mallinfo2 walks every arena: 5 % of
 * the loop's time under a login flood when it ran every turn), done only
 * after such work. */
static void memory_return(void)
{
	static long long next_look;
	long long now = now_ms();

	if (now < next_look)
		return;
	next_look = now + 1000;
	if (mallinfo2().fordblks > (2u << 20))
		malloc_trim(0);
}

/* Members' default quotas (config: 0 = unlimited) into the store. */
static void quota_defaults_apply(struct hcd *h)
{
	int64_t d[QUOTA_N];

	_Static_assert(QUOTA_N == sizeof(h->cfg.default_quota) / sizeof(h->cfg.default_quota[0]),
		       "config.h's default_quota follows store.h's enum quota");
	for (int q = 0; q < QUOTA_N; q++)
		d[q] = h->cfg.default_quota[q] > 0 ? h->cfg.default_quota[q] : QUOTA_UNLIMITED;
	store_set_quota_defaults(h->st, d);
}

/* SIGHUP: take the settings that can change at run time. */
static void reload_config(struct hcd *h)
{
	struct config c;

	if (load_config(h, &c) < 0) {
		log_warn("reload: keeping the previous configuration");
		return;
	}
	h->cfg.stop_timeout = c.stop_timeout;
	h->cfg.resync_interval = c.resync_interval;
	h->cfg.max_body = c.max_body;
	memcpy(h->cfg.default_quota, c.default_quota, sizeof(c.default_quota));
	quota_defaults_apply(h);
	free(h->cfg.log_level);
	h->cfg.log_level = strdup(c.log_level);
	free(h->cfg.metadata_tokens);
	h->cfg.metadata_tokens = strdup(c.metadata_tokens);
	log_set_level(level_of(c.log_level));
	/* An operator grows (or shrinks) the pools of routed prefixes and
	 * public IPv4 addresses without a restart; what is handed out stays. */
	free(h->cfg.prefix_pool);
	h->cfg.prefix_pool = strdup(c.prefix_pool);
	free(h->cfg.public_ipv4_pool);
	h->cfg.public_ipv4_pool = strdup(c.public_ipv4_pool);
	h->cfg.prefix_length = c.prefix_length;
	h->cfg.prefix_min_length = c.prefix_min_length;
	h->cfg.prefix_max_per_vm = c.prefix_max_per_vm;
	h->cfg.prefix_max_per_user = c.prefix_max_per_user;
	h->cfg.public_ipv4_max_per_user = c.public_ipv4_max_per_user;
	config_free(&c);
	log_info("configuration reloaded (state_dir, store, accel and listeners need a restart)");
	h->wake |= AGENT_WAKE_RESYNC;
}

static void on_store_change(void *arg)
{
	struct hcd *h = arg;

	h->wake |= AGENT_WAKE_LOCAL;
	/* Before the next metadata request: it must see the change. */
	metadata_invalidate(h->md);
}

static void on_agent_job(void *arg)
{
	((struct hcd *)arg)->wake |= AGENT_WAKE_JOB;
}

static int parse_args(struct hcd *h, int argc, char **argv)
{
	h->config_path = strdup(CONFIG_DEFAULT_PATH);
	h->config_optional = true;
	h->overrides = calloc((size_t)argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--print-config") == 0) {
			h->print_config = true;
			continue;
		}
		/* The table needs no configuration: none is read. */
		if (strcmp(a, "--print-routes") == 0)
			exit(print_routes());
		if (strcmp(a, "--version") == 0) {
			printf("hcd %s\n", HC_VERSION);
			exit(0);
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "hcd: unexpected argument '%s'\n", a);
			return -1;
		}
		a += 2;
		const char *eq = strchr(a, '=');
		size_t klen = eq ? (size_t)(eq - a) : strlen(a);
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, "hcd: --%s needs a value\n", a);
			return -1;
		}
		if (klen == 6 && strncmp(a, "config", 6) == 0) {
			free(h->config_path);
			h->config_path = strdup(val);
			h->config_optional = false;
			continue;
		}
		char *kv = str_printf("%.*s=%s", (int)klen, a, val);
		h->overrides[h->n_overrides++] = kv;
	}
	return 0;
}

static void hcd_free(struct hcd *h)
{
	/* Workers first: their done callbacks may resume API requests. */
	worker_pool_free(h->workers);
	api_server_stop(h->api);
	importer_free(h->importer);
	cluster_free(h->cluster);
	metadata_stop(h->md);
	agent_free(h->agent);
	store_close(h->st);
	config_free(&h->cfg);
	for (int i = 0; i < h->n_overrides; i++)
		free(h->overrides[i]);
	free(h->overrides);
	free(h->config_path);
}

int main(int argc, char **argv)
{
	struct hcd h = { 0 };
	char *err = NULL, *why = NULL;
	const char *accel;
	sigset_t mask;
	int sfd, rc = 1;

	/* Large transient buffers (a list of 10,000 VMs is megabytes of
	 * JSON) are mapped and unmapped on their own, not left in the heap
	 * after glibc raised its threshold. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	if (parse_args(&h, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (load_config(&h, &h.cfg) < 0)
		goto out;
	if (h.print_config) {
		rc = print_config(&h.cfg);
		goto out;
	}
	log_set_level(level_of(h.cfg.log_level));
	umask(077);
	if (mkdir_p(h.cfg.state_dir, 0700) < 0) {
		log_err("state dir %s: %s", h.cfg.state_dir, strerror(errno));
		goto out;
	}

	/* One hcd per state dir: two agents converging the same host would
	 * fight over every QEMU, tap and rule. */
	char *lock_path = str_printf("%s/hcd.lock", h.cfg.state_dir);
	int lock_fd = lock_path ? open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	free(lock_path);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_err("state dir %s: %s", h.cfg.state_dir,
			errno == EWOULDBLOCK ? "another hcd is running on it" : strerror(errno));
		goto out;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	h.st = store_open(h.cfg.store, h.cfg.state_dir, &err);
	if (h.st == NULL) {
		log_err("store: %s", err);
		goto out;
	}
	store_set_change_hook(h.st, on_store_change, &h);
	quota_defaults_apply(&h);
	/* Listen before the first pass: what other hosts change after it
	 * reads the store is heard. */
	(void)store_notify_fd(h.st);

	accel = accel_resolve(h.cfg.accel, h.cfg.state_dir, &why);
	log_info("%s", why);
	free(why);
	free(h.cfg.accel);
	h.cfg.accel = strdup(accel);

	h.workers = worker_pool_new(h.cfg.workers > 0 ? h.cfg.workers : 1, &err);
	if (h.workers == NULL) {
		log_err("%s", err);
		goto out;
	}
	h.agent = agent_new(h.st, &h.cfg, accel, h.workers, &err);
	if (h.agent == NULL) {
		log_err("agent: %s", err ? err : "out of memory");
		goto out;
	}
	agent_set_wake_hook(h.agent, on_agent_job, &h);
	/* Before the first pass, which would start VMs on their layers. */
	snapshots_recover(h.st, &h.cfg);
	h.cluster = cluster_new(h.st, &h.cfg, accel, &err);
	if (h.cluster == NULL) {
		log_err("%s", err ? err : "cluster: out of memory");
		goto out;
	}
	h.importer = importer_new(h.st, &h.cfg, &err);
	if (h.importer == NULL) {
		log_err("images: %s", err);
		goto out;
	}
	importer_resume(h.importer);
	h.api_ctx = (struct api_ctx){ .st = h.st, .agent = h.agent, .cfg = &h.cfg,
				      .importer = h.importer, .cluster = h.cluster,
				      .workers = h.workers };
	h.api = api_server_start(&h.api_ctx, &err);
	if (h.api == NULL) {
		log_err("api: %s", err);
		goto out;
	}

	h.md = metadata_start(h.st, h.cfg.metadata_port, h.cfg.metadata_rate, &err);
	if (h.md == NULL) {
		log_warn("metadata service on %s:%d: %s; guests get no metadata", METADATA_IPV4,
			 h.cfg.metadata_port, err ? err : "failed");
		free(err);
		err = NULL;
	}

	/* Converge once before announcing readiness: VMs that ran before a
	 * restart are adopted, strays removed. */
	h.wake = 0;   /* this pass covers every change made so far (registration) */
	double t0 = stat_now();
	int again = agent_reconcile(h.agent, 0);
	stat_observe(HIST_RECONCILE, stat_now() - t0);
	metadata_sync(h.md);
	long long next_pass = again >= 0 ? now_ms() + again : -1;
	h.next_resync = now_ms() + (long long)h.cfg.resync_interval * 1000;
	log_info("hcd %s ready: state %s, api %s/api.sock%s%s", HC_VERSION, h.cfg.state_dir,
		 h.cfg.state_dir, h.cfg.listen ? " and " : "", h.cfg.listen ? h.cfg.listen : "");
	sd_notify(0, "READY=1");

	for (;;) {
		struct pollfd pfd[1 + API_SERVER_FDS + 64 + 4];
		int fds[API_SERVER_FDS + 64], n = api_server_fds(h.api, fds);
		n += (int)metadata_fds(h.md, fds + n, 64);
		long long now = now_ms();
		long long wake = h.next_resync;

		if (next_pass >= 0 && next_pass < wake)
			wake = next_pass;
		long long beat = cluster_tick(h.cluster, now);
		if (now + beat < wake)
			wake = now + beat;
		/* Traffic counters: a dump on a worker, counted when it is done. */
		long long sample = meter_tick(agent_meter(h.agent), now, h.workers);
		if (now + sample < wake)
			wake = now + sample;
		long long timeout = wake - now;
		long long mhd = api_server_timeout_ms(h.api);
		if (mhd >= 0 && mhd < timeout)
			timeout = mhd;
		mhd = h.md ? metadata_timeout_ms(h.md) : -1;
		if (mhd >= 0 && mhd < timeout)
			timeout = mhd;
		if (timeout < 0)
			timeout = 0;
		pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		for (int i = 0; i < n; i++)
			pfd[1 + i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		pfd[1 + n] = (struct pollfd){ .fd = importer_fd(h.importer), .events = POLLIN };
		/* Asked anew each turn: a reconnect changes it (-1: ignored). */
		pfd[2 + n] = (struct pollfd){ .fd = store_notify_fd(h.st), .events = POLLIN };
		pfd[3 + n] = (struct pollfd){ .fd = worker_pool_fd(h.workers), .events = POLLIN };
		pfd[4 + n] = (struct pollfd){ .fd = agent_migration_fd(h.agent), .events = POLLIN };
		if (poll(pfd, (nfds_t)(1 + n + 4), (int)timeout) < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			bool stop = false;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					reload_config(&h);
				else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					stop = true;
			}
			if (stop) {
				log_info("shutting down; VMs keep running");
				sd_notify(0, "STOPPING=1");
				rc = 0;
				break;
			}
		}
		api_server_run(h.api);
		if (h.md)
			metadata_run(h.md);
		if (pfd[1 + n].revents & POLLIN)
			importer_run(h.importer);
		if (pfd[3 + n].revents & POLLIN)
			worker_pool_run(h.workers);
		if (pfd[4 + n].revents & POLLIN)
			agent_migration_run(h.agent);
		/* Every turn, not only on input: a listener set up again after
		 * a lost connection has no input to show, yet may have missed
		 * changes.  With nothing there this is one non-blocking read. */
		if (store_notify_drain(h.st) > 0) {
			h.wake |= AGENT_WAKE_NOTIFY;
			metadata_invalidate(h.md);
		}
		int remote_events = store_events_drain(h.st);

		now = now_ms();
		if (now >= h.next_resync) {
			h.wake |= AGENT_WAKE_RESYNC;
			h.next_resync = now + (long long)h.cfg.resync_interval * 1000;
		}
		if (next_pass >= 0 && now >= next_pass)
			h.wake |= AGENT_WAKE_RETRY;
		if (h.wake) {
			unsigned causes = h.wake;
			h.wake = 0;
			double t0 = stat_now();
			again = agent_reconcile(h.agent, causes);
			stat_observe(HIST_RECONCILE, stat_now() - t0);
			/* Nothing else runs during a pass: a local change now is
			 * the agent's own (a claim, a purge), which that pass
			 * already took into account; another pass for it would
			 * only hold up the loop (and a VM's launch ending). */
			h.wake &= ~AGENT_WAKE_LOCAL;
			next_pass = again >= 0 ? now_ms() + again : -1;
			metadata_sync(h.md);
		}
		/* After the pass: the states it observed reach the event
		 * streams in the same turn. */
		api_server_changes(h.api, remote_events);
		memory_return();
	}
	close(sfd);
out:
	free(err);
	hcd_free(&h);
	return rc;
}
