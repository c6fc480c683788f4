/* migrate — see migrate.h. */
#include "vm/migrate.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "net/sockkill.h"
#include "vm/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How much of the source's serial log goes along (the log is capped at
 * 16 MiB anyway; this is what `hc vm log` shows by default and more). */
#define LOG_TAIL_BYTES (256 * 1024)
/* Polls of QEMU: the pause before the switch-over lasts at least one of
 * these, so that one is short. */
#define POLL_FAST_MS 20
#define POLL_SLOW_MS 100
/* Ending mirror jobs, cancelling a migration, resuming: each bounded. */
#define SETTLE_MS 5000

void mig_psk_new(char *buf)
{
	unsigned char raw[MIG_PSK_HEX / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(buf, MIG_PSK_HEX + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

static char *tls_dir(const struct vm_paths *p)
{
	return str_printf("%s/tls", p->dir);
}

int mig_tls_write(const struct vm_paths *p, const struct proc_opts *id, const char *psk,
		  char **dir, char **err)
{
	char *file = NULL, *line = NULL;
	int fd = -1, rc = -1;

	*err = NULL;
	*dir = tls_dir(p);
	if (*dir == NULL || (file = str_printf("%s/keys.psk", *dir)) == NULL ||
	    (line = str_printf("qemu:%s\n", psk)) == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	/* The VM's directory is root's: nobody but hcd makes or swaps this. */
	if ((mkdir(*dir, 0700) < 0 && errno != EEXIST) || chown(*dir, id->uid, id->gid) < 0 ||
	    chmod(*dir, 0700) < 0) {
		*err = str_printf("%s: %s", *dir, strerror(errno));
		goto out;
	}
	file_remove(file);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchown(fd, id->uid, id->gid) < 0 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		*err = str_printf("%s: %s", file, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (line)
		sodium_memzero(line, strlen(line));
	free(line);
	free(file);
	if (rc < 0) {
		free(*dir);
		*dir = NULL;
	}
	return rc;
}

void mig_tls_remove(const struct vm_paths *p)
{
	char *dir = tls_dir(p);

	if (dir)
		dir_remove_tree(dir);
	free(dir);
}

/* One QMP command; takes the reference to args. */
static int qmp(const struct vm_paths *p, const char *cmd, json_t *args, json_t **ret, char **err)
{
	int rc = qmp_command(p->qmp, cmd, args, ret, err);

	json_decref(args);
	if (rc < 0) {
		/* Name the command: "no reply" alone says nothing of where. */
		char *e = str_printf("%s: %s", cmd, *err ? *err : "failed");
		if (e) {
			free(*err);
			*err = e;
		}
	}
	return rc;
}

/* The same when failure does not matter (undoing what may not exist). */
static void qmp_try(const struct vm_paths *p, const char *cmd, json_t *args)
{
	char *err = NULL;

	qmp(p, cmd, args, NULL, &err);
	free(err);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* "tcp:[v6]:port" or "tcp:v4:port" */
static char *tcp_uri(const char *addr, int port)
{
	return strchr(addr, ':') ? str_printf("tcp:[%s]:%d", addr, port)
				 : str_printf("tcp:%s:%d", addr, port);
}

static char *status_of(json_t *j)
{
	const char *s = json_string_value(json_object_get(j, "status"));

	return strdup(s ? s : "none");
}

/* ---- destination ---------------------------------------------------------- */

int mig_dest_listen(const struct vm_paths *p, const struct mig_params *m, char **err)
{
	char port[16], *uri = NULL;
	int rc = -1;

	*err = NULL;
	snprintf(port, sizeof(port), "%d", m->nbd_port);
	if (qmp(p, "migrate-set-parameters", json_pack("{s:s}", "tls-creds", QEMU_MIGRATE_TLS), NULL,
		err) < 0 ||
	    qmp(p, "nbd-server-start", json_pack("{s:{s:s, s:{s:s, s:s}}, s:s}", "addr", "type", "inet",
						 "data", "host", m->addr, "port", port,
						 "tls-creds", QEMU_MIGRATE_TLS), NULL, err) < 0)
		goto out;
	for (size_t i = 0; i < m->n_disks; i++) {
		char id[32];
		snprintf(id, sizeof(id), "exp-%s", m->disks[i].node);
		if (qmp(p, "block-export-add", json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "nbd",
							  "id", id, "node-name", m->disks[i].node,
							  "name", m->disks[i].node, "writable", 1),
			NULL, err) < 0)
			goto out;
	}
	if ((uri = tcp_uri(m->addr, m->mig_port)) == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	rc = qmp(p, "migrate-incoming", json_pack("{s:s}", "uri", uri), NULL, err);
out:
	free(uri);
	return rc;
}

int mig_dest_finish(const struct vm_paths *p, const struct mig_params *m, int wait_ms, char **err)
{
	long long deadline = now_ms() + wait_ms;
	json_t *r = NULL;
	char *mig = NULL, *run = NULL;
	int rc = -1;

	*err = NULL;
	/* The source is done sending; this end may still be loading the
	 * last of the stream (its devices' state): a moment more. */
	for (;;) {
		if (qmp(p, "query-migrate", NULL, &r, err) < 0)
			goto out;
		free(mig);
		mig = status_of(r);
		json_decref(r);
		r = NULL;
		if (strcmp(mig, "completed") == 0 || strcmp(mig, "failed") == 0 ||
		    strcmp(mig, "cancelled") == 0 || now_ms() >= deadline)
			break;
		sleep_ms(POLL_FAST_MS);
	}
	if (qmp(p, "query-status", NULL, &r, err) < 0)
		goto out;
	run = status_of(r);
	/* Complete, and still paused: nothing of it ran here yet. */
	if (strcmp(mig, "completed") != 0 || strcmp(run, "paused") != 0) {
		*err = str_printf("the incoming migration is %s, the guest %s", mig, run);
		goto out;
	}
	for (size_t i = 0; i < m->n_disks; i++) {
		char id[32];
		snprintf(id, sizeof(id), "exp-%s", m->disks[i].node);
		qmp_try(p, "block-export-del", json_pack("{s:s}", "id", id));
	}
	qmp_try(p, "nbd-server-stop", NULL);
	mig_tls_remove(p);
	rc = 0;
out:
	json_decref(r);
	free(mig);
	free(run);
	return rc;
}

/* The source's console output first, so that the log reads on. */
static void log_append(const struct vm_paths *p, const char *b64)
{
	size_t cap = strlen(b64), len = 0;
	unsigned char *bin = malloc(cap + 1);
	int fd;

	if (bin == NULL || sodium_base642bin(bin, cap + 1, b64, cap, NULL, &len, NULL,
					     sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(bin);
		return;
	}
	fd = open(p->log, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, bin, len) != (ssize_t)len)
			log_warn("%s: %s", p->log, strerror(errno));
		close(fd);
	}
	free(bin);
}

int mig_dest_run(const struct vm_paths *p, const char *log_b64, char **err)
{
	json_t *r = NULL;
	int rc;

	*err = NULL;
	if (log_b64 && log_b64[0]) {
		/* Only while the guest has not run here: its own output follows. */
		char *st = qmp_query_status(p->qmp);
		if (st && strcmp(st, "paused") == 0)
			log_append(p, log_b64);
		free(st);
	}
	rc = qmp(p, "cont", NULL, NULL, err);
	if (rc == 0 && qmp(p, "query-status", NULL, &r, err) == 0 &&
	    !json_is_true(json_object_get(r, "running"))) {
		*err = strdup("the guest does not run after cont");
		rc = -1;
	}
	json_decref(r);
	return rc;
}

/* ---- source --------------------------------------------------------------- */

struct progress {
	long long last_value;
	long long last_change;      /* ms */
	long long deadline;         /* ms */
	int stall_ms;
};

/* Gives up at the deadline, after a stall, or when asked to. */
static int progress_check(struct progress *g, long long value, const volatile int *cancel,
			  const char *what, char **err)
{
	long long now = now_ms();

	if (value != g->last_value) {
		g->last_value = value;
		g->last_change = now;
	}
	if (cancel && *cancel)
		*err = str_printf("%s: given up", what);
	else if (now >= g->deadline)
		*err = str_printf("%s: not done within the migration's time limit", what);
	else if (now - g->last_change >= g->stall_ms)
		*err = str_printf("%s: no progress for %d s", what, g->stall_ms / 1000);
	return *err ? -1 : 0;
}

/* A poll QEMU did not answer (a busy host, or its main loop waiting on a
 * peer that went away): no progress, so the stall timeout decides. */
static int monitor_busy(struct progress *g, const volatile int *cancel, const char *what,
			char **err)
{
	free(*err);
	*err = NULL;
	if (progress_check(g, g->last_value, cancel, what, err) < 0)
		return -1;
	sleep_ms(POLL_SLOW_MS);
	return 0;
}

static json_t *job_find(json_t *jobs, const char *id)
{
	size_t i;
	json_t *j;

	json_array_foreach(jobs, i, j) {
		const char *dev = json_string_value(json_object_get(j, "device"));
		if (dev && strcmp(dev, id) == 0)
			return j;
	}
	return NULL;
}

static void job_id(char *buf, size_t len, const struct mig_disk *d)
{
	snprintf(buf, len, "mig-%s", d->node);
}

/* Every mirror ready (source and copy in step), or an error. */
static int mirrors_ready(const struct vm_paths *p, const struct mig_params *m, struct progress *g,
			 const volatile int *cancel, long long *bytes, char **err)
{
	for (;;) {
		json_t *jobs = NULL;
		long long offset = 0, len = 0;
		size_t ready = 0;
		if (qmp(p, "query-block-jobs", NULL, &jobs, err) < 0) {
			if (monitor_busy(g, cancel, "disk mirror", err) < 0)
				return -1;
			continue;
		}
		for (size_t i = 0; i < m->n_disks && *err == NULL; i++) {
			char id[32];
			job_id(id, sizeof(id), &m->disks[i]);
			json_t *j = job_find(jobs, id);
			const char *st = json_string_value(json_object_get(j, "status"));
			if (j == NULL || (st && strcmp(st, "concluded") == 0)) {
				const char *e = json_string_value(json_object_get(j, "error"));
				*err = str_printf("mirror of %s ended: %s", m->disks[i].node,
						  e ? e : "gone");
				break;
			}
			offset += json_integer_value(json_object_get(j, "offset"));
			len += json_integer_value(json_object_get(j, "len"));
			ready += json_is_true(json_object_get(j, "ready"));
		}
		json_decref(jobs);
		if (*err)
			return -1;
		if (ready == m->n_disks) {
			*bytes = len;
			return 0;
		}
		if (progress_check(g, offset, cancel, "disk mirror", err) < 0)
			return -1;
		sleep_ms(POLL_SLOW_MS);
	}
}

/* Wait (until deadline) for a mirror job to conclude, then (drop) dismiss
 * it and remove its NBD client (mirror_drop).  strict: its error, or not
 * concluding, is a failure (-1); else it is left behind after the
 * deadline (0). */
static void mirror_drop(const struct vm_paths *p, const struct mig_disk *d)
{
	char id[32];

	job_id(id, sizeof(id), d);
	qmp_try(p, "job-dismiss", json_pack("{s:s}", "id", id));
	qmp_try(p, "blockdev-del", json_pack("{s:s}", "node-name", id));
}

static int mirror_gone(const struct vm_paths *p, const struct mig_disk *d, long long deadline,
		       bool strict, bool drop, char **err)
{
	char id[32];

	job_id(id, sizeof(id), d);
	for (;;) {
		json_t *jobs = NULL;
		/* A monitor that does not answer is busy (QEMU's main loop
		 * drains the mirror's last requests to the NBD target), not
		 * gone: asked again until the deadline. */
		if (qmp(p, "query-block-jobs", NULL, &jobs, err) < 0) {
			if (now_ms() < deadline) {
				free(*err);
				*err = NULL;
				sleep_ms(POLL_FAST_MS);
				continue;
			}
			if (strict)
				return -1;
			free(*err);
			*err = NULL;
			return 0;
		}
		json_t *j = job_find(jobs, id);
		const char *st = json_string_value(json_object_get(j, "status"));
		const char *e = json_string_value(json_object_get(j, "error"));
		bool over = j == NULL || (st && strcmp(st, "concluded") == 0);
		if (over && e && strict)
			*err = str_printf("mirror of %s: %s", d->node, e);
		json_decref(jobs);
		if (*err)
			return -1;
		if (over)
			break;
		if (now_ms() >= deadline) {
			if (strict) {
				*err = str_printf("mirror of %s does not end", d->node);
				return -1;
			}
			log_warn("%s: mirror of %s still there (%s); left to the next attempt",
				 p->dir, d->node, st ? st : "?");
			return 0;
		}
		sleep_ms(POLL_FAST_MS);
	}
	if (drop)
		mirror_drop(p, d);
	return 0;
}

/* Every mirror of m forced off and its NBD client removed, waiting up to
 * SETTLE_MS for them: a copy that is not wanted (any more). */
static void mirrors_off(const struct vm_paths *p, const struct mig_params *m)
{
	long long deadline = now_ms() + SETTLE_MS;
	char *err = NULL;

	for (size_t i = 0; i < m->n_disks; i++) {
		char id[32];
		job_id(id, sizeof(id), &m->disks[i]);
		qmp_try(p, "block-job-cancel", json_pack("{s:s, s:b}", "device", id, "force", 1));
	}
	for (size_t i = 0; i < m->n_disks; i++)
		mirror_gone(p, &m->disks[i], deadline, false, true, &err);
	free(err);
}

/* At the pause before the switch-over: each mirror is ended where the
 * guest stopped (cancel of a ready mirror = an exact copy), its NBD
 * client removed. */
static int mirrors_end(const struct vm_paths *p, const struct mig_params *m, char **err)
{
	long long deadline = now_ms() + SETTLE_MS;

	for (size_t i = 0; i < m->n_disks; i++) {
		char id[32];
		job_id(id, sizeof(id), &m->disks[i]);
		if (qmp(p, "block-job-cancel", json_pack("{s:s}", "device", id), NULL, err) < 0)
			return -1;
	}
	/* The guest is paused meanwhile: the jobs and their NBD clients are
	 * cleared away after the switch-over, not here. */
	for (size_t i = 0; i < m->n_disks; i++)
		if (mirror_gone(p, &m->disks[i], deadline, true, false, err) < 0)
			return -1;
	return 0;
}

static void figures(json_t *q, struct mig_result *r)
{
	r->total_ms = json_integer_value(json_object_get(q, "total-time"));
	r->downtime_ms = json_integer_value(json_object_get(q, "downtime"));
	r->ram_bytes = json_integer_value(json_object_get(json_object_get(q, "ram"), "transferred"));
}

static void log_tail(const struct vm_paths *p, struct mig_result *r)
{
	char *text = NULL;
	size_t len = 0;

	if (file_read_tail(p->log, LOG_TAIL_BYTES, &text, &len) == 0 && len > 0) {
		size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
		if ((r->log_b64 = malloc(cap)) != NULL)
			sodium_bin2base64(r->log_b64, cap, (unsigned char *)text, len,
					  sodium_base64_VARIANT_ORIGINAL);
	}
	free(text);
}

/* Options and the mirrors towards the destination's NBD exports. */
static int mirrors_start(const struct vm_paths *p, const struct mig_params *m, char **err)
{
	char port[16], *dir = tls_dir(p);
	json_t *caps = json_pack("[{s:s, s:b}, {s:s, s:b}]",
				 "capability", "pause-before-switchover", "state", 1,
				 "capability", "auto-converge", "state", 1);
	int rc = -1;

	snprintf(port, sizeof(port), "%d", m->nbd_port);
	/* What an earlier attempt may have left: a mirror whose target hung
	 * (a cut network) ends only when its requests time out, after the
	 * abort gave up waiting for it. */
	mirrors_off(p, m);
	qmp_try(p, "object-del", json_pack("{s:s}", "id", QEMU_MIGRATE_TLS));
	if (dir == NULL ||
	    qmp(p, "object-add", json_pack("{s:s, s:s, s:s, s:s}", "qom-type", "tls-creds-psk",
					   "id", QEMU_MIGRATE_TLS, "dir", dir, "endpoint", "client"),
		NULL, err) < 0 ||
	    qmp(p, "migrate-set-capabilities", json_pack("{s:o}", "capabilities", caps), NULL, err) < 0 ||
	    qmp(p, "migrate-set-parameters",
		json_pack("{s:s, s:I, s:I}", "tls-creds", QEMU_MIGRATE_TLS,
			  "downtime-limit", (json_int_t)m->max_downtime_ms,
			  /* QEMU's default is 128 MiB/s: "unlimited" is 1 TiB/s */
			  "max-bandwidth", (json_int_t)(m->max_bandwidth > 0 ? m->max_bandwidth
									     : 1LL << 40)),
		NULL, err) < 0)
		goto out;
	for (size_t i = 0; i < m->n_disks; i++) {
		char id[32];
		job_id(id, sizeof(id), &m->disks[i]);
		if (qmp(p, "blockdev-add", json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s}",
						      "driver", "nbd", "node-name", id, "server",
						      "type", "inet", "host", m->addr, "port", port,
						      "export", m->disks[i].node,
						      "tls-creds", QEMU_MIGRATE_TLS), NULL, err) < 0 ||
		    qmp(p, "blockdev-mirror", json_pack("{s:s, s:s, s:s, s:s, s:b}", "job-id", id,
							 "device", m->disks[i].node, "target", id,
							 "sync", m->disks[i].top ? "top" : "full",
							 "auto-dismiss", 0), NULL, err) < 0)
			goto out;
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

int mig_source_transfer(const struct vm_paths *p, const struct mig_params *m,
			const volatile int *cancel, struct mig_result *r, char **err)
{
	struct progress g = { .last_value = -1, .last_change = now_ms(),
			      .deadline = now_ms() + (long long)m->timeout_s * 1000,
			      .stall_ms = m->stall_s * 1000 };
	char *uri = NULL;
	json_t *q = NULL;

	*err = NULL;
	memset(r, 0, sizeof(*r));
	if (mirrors_start(p, m, err) < 0 ||
	    mirrors_ready(p, m, &g, cancel, &r->disk_bytes, err) < 0)
		goto fail;
	if ((uri = tcp_uri(m->addr, m->mig_port)) == NULL) {
		*err = strdup("out of memory");
		goto fail;
	}
	if (qmp(p, "migrate", json_pack("{s:s}", "uri", uri), NULL, err) < 0)
		goto fail;
	g.last_value = -1;
	g.last_change = now_ms();
	for (;;) {
		if (qmp(p, "query-migrate", NULL, &q, err) < 0) {
			if (monitor_busy(&g, cancel, "RAM migration", err) < 0)
				goto fail;
			continue;
		}
		const char *st = json_string_value(json_object_get(q, "status"));
		if (st == NULL)
			st = "none";
		if (strcmp(st, "completed") == 0) {
			figures(q, r);
			break;
		}
		if (strcmp(st, "pre-switchover") == 0) {
			if (mirrors_end(p, m, err) < 0 ||
			    qmp(p, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"), NULL,
				err) < 0)
				goto fail;
		} else if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0 ||
			   strcmp(st, "none") == 0) {
			const char *why = json_string_value(json_object_get(q, "error-desc"));
			*err = str_printf("migration %s: %s", st, why ? why : "no reason given");
			goto fail;
		}
		json_t *ram = json_object_get(q, "ram");
		if (progress_check(&g, json_integer_value(json_object_get(ram, "transferred")), cancel,
				   "RAM migration", err) < 0)
			goto fail;
		json_decref(q);
		q = NULL;
		sleep_ms(POLL_FAST_MS);
	}
	json_decref(q);
	free(uri);
	for (size_t i = 0; i < m->n_disks; i++)
		mirror_drop(p, &m->disks[i]);
	log_tail(p, r);
	return 0;
fail:
	/* Not undone here: the caller records why first (cancelling ends the
	 * destination's QEMU, and a destination that saw that before the
	 * reason was written would record "its QEMU is gone" instead). */
	json_decref(q);
	free(uri);
	return -1;
}

static bool migration_active(const char *st)
{
	return strcmp(st, "setup") == 0 || strcmp(st, "active") == 0 ||
	       strcmp(st, "pre-switchover") == 0 || strcmp(st, "device") == 0 ||
	       strcmp(st, "cancelling") == 0 || strcmp(st, "wait-unplug") == 0;
}

int mig_source_abort(const struct vm_paths *p, const struct mig_params *m, char **err)
{
	long long deadline = now_ms() + SETTLE_MS;
	json_t *r = NULL;
	char *st = NULL;
	int rc = -1;

	*err = NULL;
	/* Its connections first: towards a host that no longer answers, a
	 * request in flight holds QEMU's main loop (and so the guest and the
	 * monitor) until TCP gives up (net/sockkill.h). */
	for (int k = 0; m && k < 2; k++) {
		char *kerr = NULL;
		if (tcp_kill_peer(m->addr, k == 0 ? m->nbd_port : m->mig_port, &kerr) < 0)
			log_warn("%s: %s", p->dir, kerr);
		free(kerr);
	}
	/* The migration: cancelled (its socket is shut down at once, even
	 * towards a host that no longer answers). */
	for (;;) {
		if (qmp(p, "query-migrate", NULL, &r, err) < 0)
			goto out;
		free(st);
		st = status_of(r);
		json_decref(r);
		r = NULL;
		if (!migration_active(st) || now_ms() >= deadline)
			break;
		if (strcmp(st, "cancelling") != 0)
			qmp_try(p, "migrate_cancel", NULL);
		sleep_ms(POLL_FAST_MS);
	}
	if (m)
		mirrors_off(p, m);
	qmp_try(p, "object-del", json_pack("{s:s}", "id", QEMU_MIGRATE_TLS));
	mig_tls_remove(p);
	/* The guest: running again (a completed migration left it paused, its
	 * disks handed over: cont takes them back). */
	deadline = now_ms() + SETTLE_MS;
	for (;;) {
		if (qmp(p, "query-status", NULL, &r, err) < 0)
			goto out;
		bool running = json_is_true(json_object_get(r, "running"));
		free(st);
		st = status_of(r);
		json_decref(r);
		r = NULL;
		if (running) {
			rc = 0;
			break;
		}
		if (now_ms() >= deadline) {
			*err = str_printf("the guest is %s and does not resume", st);
			break;
		}
		if (strcmp(st, "postmigrate") == 0 || strcmp(st, "paused") == 0)
			qmp_try(p, "cont", NULL);
		sleep_ms(POLL_FAST_MS);
	}
out:
	json_decref(r);
	free(st);
	return rc;
}

char *mig_source_status(const struct vm_paths *p, struct mig_result *r)
{
	json_t *q = NULL;
	char *err = NULL, *st = NULL;

	memset(r, 0, sizeof(*r));
	if (qmp(p, "query-migrate", NULL, &q, &err) == 0) {
		st = status_of(q);
		/* A QEMU that was itself a migration's destination says
		 * "completed" of that one: only a source that handed over is
		 * stopped in "postmigrate". */
		char *run = st && strcmp(st, "completed") == 0 ? qmp_query_status(p->qmp) : NULL;
		if (run && strcmp(run, "postmigrate") == 0) {
			figures(q, r);
			log_tail(p, r);
		} else if (run) {
			free(st);
			st = str_printf("not handed over (the guest is %s)", run);
		}
		free(run);
	}
	json_decref(q);
	free(err);
	return st;
}

void mig_result_free(struct mig_result *r)
{
	free(r->log_b64);
	r->log_b64 = NULL;
}
