/*
 * store — engine selection, migrations, transactions and the change hook.
 * See store.h for the contract.
 */
#include "store/store_internal.h"
#include "store/tokencache.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * Numbered migrations; one schema for every engine, so only portable SQL
 * here (no AUTOINCREMENT/SERIAL: IDs come from the counters table).
 * Append new steps; never edit a step that has shipped.
 */
static const char *const migrations[] = {
	/* 1: foundation */
	"CREATE TABLE counters (name TEXT PRIMARY KEY, next BIGINT NOT NULL);"
	"INSERT INTO counters (name, next) VALUES ('vm', 1), ('nic', 1), ('network', 1),"
	" ('image', 1), ('user', 1);"
	"CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" role TEXT NOT NULL, created BIGINT NOT NULL DEFAULT 0);"
	"INSERT INTO users (id, name, role) VALUES (0, 'root', 'admin');"
	"CREATE TABLE images (id BIGINT PRIMARY KEY, name TEXT NOT NULL,"
	" owner BIGINT NOT NULL REFERENCES users(id), sha256 TEXT, format TEXT NOT NULL,"
	" boot TEXT NOT NULL, size BIGINT NOT NULL DEFAULT 0, cmdline TEXT,"
	" has_initrd INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, created BIGINT NOT NULL,"
	" UNIQUE (owner, name));"
	"CREATE TABLE networks (id BIGINT PRIMARY KEY, name TEXT NOT NULL,"
	" owner BIGINT NOT NULL REFERENCES users(id), ipv6 TEXT NOT NULL, ipv4 TEXT,"
	" created BIGINT NOT NULL, UNIQUE (owner, name));"
	"CREATE TABLE vms (id BIGINT PRIMARY KEY, name TEXT NOT NULL,"
	" owner BIGINT NOT NULL REFERENCES users(id), image BIGINT NOT NULL REFERENCES images(id),"
	" cpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL, desired TEXT NOT NULL,"
	" state TEXT NOT NULL, host TEXT, error TEXT, created BIGINT NOT NULL);"
	/* A deleted VM keeps its row until the host has cleaned up; its name is
	 * free for reuse at once. */
	"CREATE UNIQUE INDEX vms_owner_name ON vms (owner, name) WHERE desired <> 'deleted';"
	"CREATE TABLE nics (id BIGINT PRIMARY KEY,"
	" vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
	" network BIGINT NOT NULL REFERENCES networks(id), idx INTEGER NOT NULL, ipv4 TEXT,"
	" UNIQUE (vm, idx), UNIQUE (network, ipv4));",
	/* 2: per-VM inbound firewall rules */
	"CREATE TABLE rules (id BIGINT PRIMARY KEY,"
	" vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
	" proto TEXT NOT NULL, port_lo INTEGER NOT NULL, port_hi INTEGER NOT NULL,"
	" source TEXT, created BIGINT NOT NULL);"
	"INSERT INTO counters (name, next) VALUES ('rule', 1);",
	/* 3: SSH public keys per user, the keys and user data of each VM.
	 * user_data is base64 text, so arbitrary bytes survive either engine. */
	"CREATE TABLE keys (id BIGINT PRIMARY KEY, name TEXT NOT NULL,"
	" owner BIGINT NOT NULL REFERENCES users(id), type TEXT NOT NULL, pubkey TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL, created BIGINT NOT NULL, UNIQUE (owner, name));"
	"CREATE TABLE vm_keys (vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
	" key BIGINT NOT NULL REFERENCES keys(id), PRIMARY KEY (vm, key));"
	"INSERT INTO counters (name, next) VALUES ('key', 1);"
	"ALTER TABLE vms ADD COLUMN user_data TEXT;",
	/* 4: optional NoCloud seed (a cidata CD-ROM) per VM */
	"ALTER TABLE vms ADD COLUMN config_drive INTEGER NOT NULL DEFAULT 0;",
	/* 5: users and authentication (DESIGN §8); image visibility.
	 * auth is a comma list of backends (file, ldap, otp); otp_secret is
	 * sealed with the host's secret key, so the database alone does not
	 * yield it; otp_step is the last accepted TOTP step (replay guard).
	 * Tokens are stored only as hashes. */
	"ALTER TABLE users ADD COLUMN auth TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE users ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;"
	"ALTER TABLE users ADD COLUMN otp_secret TEXT;"
	"ALTER TABLE users ADD COLUMN otp_step BIGINT NOT NULL DEFAULT 0;"
	"CREATE TABLE tokens (id BIGINT PRIMARY KEY,"
	" owner BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	" hash TEXT NOT NULL UNIQUE, created BIGINT NOT NULL, expires BIGINT NOT NULL,"
	" source TEXT);"
	"INSERT INTO counters (name, next) VALUES ('token', 1);"
	"ALTER TABLE images ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private';",
	/* 6: images imported from a URL (issue 6): where from, the checksum
	 * the importer expects, why an import failed (state 'error').  A VM's
	 * root disk size (0 = the image's own) and its extra data disks, in
	 * the order the guest sees them. */
	"ALTER TABLE images ADD COLUMN source TEXT;"
	"ALTER TABLE images ADD COLUMN expect_sha256 TEXT;"
	"ALTER TABLE images ADD COLUMN error TEXT;"
	"ALTER TABLE vms ADD COLUMN disk_size BIGINT NOT NULL DEFAULT 0;"
	"CREATE TABLE vm_disks (vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL, size BIGINT NOT NULL, PRIMARY KEY (vm, idx));",
	/* 7: hosts of a cluster (issue 7).  Each hcd registers itself and
	 * heartbeats; the scheduler marks hosts dead after a silence and
	 * places VMs (vms.host) on live ones.  An ephemeral VM's disks can be
	 * made anew from its image, so it may be restarted elsewhere. */
	"CREATE TABLE hosts (name TEXT PRIMARY KEY, address TEXT, cpus INTEGER NOT NULL,"
	" memory_mib BIGINT NOT NULL, accel TEXT, state TEXT NOT NULL,"
	" drain INTEGER NOT NULL DEFAULT 0, last_seen BIGINT NOT NULL, created BIGINT NOT NULL);"
	"ALTER TABLE vms ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;"
	/* The host whose hcd downloads an import (only it resumes it). */
	"ALTER TABLE images ADD COLUMN import_host TEXT;",
	/* 8: metadata — IMDSv2 per VM (issue 11 item 13): 'optional' answers
	 * plain GETs too (what every VM did before), 'required' only those
	 * with a session token. */
	"ALTER TABLE vms ADD COLUMN metadata_tokens TEXT NOT NULL DEFAULT 'optional';",
	/* 9: tenancy (issue 11 items 2, 4, 12; issue 12 §6).  Per-user quotas
	 * (NULL: the configured default, -1: unlimited, N: at most N).  Each
	 * host's load kept in its row by the transactions that change it, so
	 * placement reads the hosts alone (store_host_register recounts it).
	 * Settings of the installation, e.g. the random ULA /48 members' networks
	 * come from when the operator configured no pool. */
	"ALTER TABLE users ADD COLUMN quota_vms BIGINT;"
	"ALTER TABLE users ADD COLUMN quota_vcpus BIGINT;"
	"ALTER TABLE users ADD COLUMN quota_memory_mib BIGINT;"
	"ALTER TABLE users ADD COLUMN quota_disk_bytes BIGINT;"
	"ALTER TABLE users ADD COLUMN quota_networks BIGINT;"
	"ALTER TABLE users ADD COLUMN quota_images BIGINT;"
	"ALTER TABLE users ADD COLUMN quota_image_bytes BIGINT;"
	"ALTER TABLE hosts ADD COLUMN vms BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE hosts ADD COLUMN used_cpus BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE hosts ADD COLUMN used_mib BIGINT NOT NULL DEFAULT 0;"
	"UPDATE hosts SET"
	" vms = (SELECT COUNT(*) FROM vms v WHERE v.host = hosts.name AND v.desired <> 'deleted'),"
	" used_cpus = (SELECT COALESCE(SUM(v.cpus), 0) FROM vms v"
	" WHERE v.host = hosts.name AND v.desired <> 'deleted'),"
	" used_mib = (SELECT COALESCE(SUM(v.memory_mib), 0) FROM vms v"
	" WHERE v.host = hosts.name AND v.desired <> 'deleted');"
	"CREATE INDEX vms_host ON vms (host);"
	"CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
	/* User data moves to a table of its own, so that no list of VMs reads
	 * it; vms keeps its decoded size, which lists show.  (base64: every 4
	 * characters are 3 bytes, less one per '=' of padding.) */
	"CREATE TABLE vm_user_data (vm BIGINT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,"
	" data TEXT NOT NULL);"
	"INSERT INTO vm_user_data (vm, data) SELECT id, user_data FROM vms WHERE user_data IS NOT NULL;"
	"ALTER TABLE vms ADD COLUMN user_data_size BIGINT NOT NULL DEFAULT 0;"
	"UPDATE vms SET user_data_size = LENGTH(user_data) / 4 * 3 -"
	" CASE WHEN SUBSTR(user_data, LENGTH(user_data) - 1, 2) = '==' THEN 2"
	" WHEN SUBSTR(user_data, LENGTH(user_data), 1) = '=' THEN 1 ELSE 0 END"
	" WHERE user_data IS NOT NULL;"
	"UPDATE vms SET user_data = NULL;",
	/* 10: routing (issue 13 §3, §4): routed IPv6 prefixes of NICs, from the
	 * operator's prefix_pool, kept by their network address (the
	 * allocator never lets two overlap), and public IPv4 addresses mapped
	 * 1:1 to a NIC's IPv4 (one per NIC).  Both go with their NIC. */
	"CREATE TABLE prefixes (address TEXT PRIMARY KEY, len INTEGER NOT NULL,"
	" nic BIGINT NOT NULL REFERENCES nics(id) ON DELETE CASCADE,"
	" vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE, created BIGINT NOT NULL);"
	"CREATE INDEX prefixes_vm ON prefixes (vm);"
	"CREATE TABLE public_ipv4 (address TEXT PRIMARY KEY,"
	" nic BIGINT NOT NULL UNIQUE REFERENCES nics(id) ON DELETE CASCADE,"
	" vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE, created BIGINT NOT NULL);",
	/* 11: observe (issue 15 §2).  The event log behind GET /v1/events:
	 * one row per committed change of a VM or a host, numbered by the
	 * 'event' counter in the change's own transaction (so in commit
	 * order), with the object's JSON as it was then; owner NULL: admins
	 * only.  Kept for events_retention seconds.  The audit trail: one row
	 * per mutating API request, keyed by the serving host and its own
	 * sequence (a replayed journal adds nothing twice); no bodies. */
	"CREATE TABLE events (seq BIGINT PRIMARY KEY, created BIGINT NOT NULL,"
	" kind TEXT NOT NULL, action TEXT NOT NULL, ref TEXT NOT NULL, owner BIGINT,"
	" data TEXT NOT NULL);"
	"CREATE INDEX events_ref ON events (kind, ref, seq);"
	"CREATE INDEX events_created ON events (created);"
	"INSERT INTO counters (name, next) VALUES ('event', 1);"
	"CREATE TABLE audit (host TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL,"
	" user_id BIGINT, user_name TEXT, source TEXT NOT NULL, method TEXT NOT NULL,"
	" route TEXT NOT NULL, ref TEXT, status INTEGER NOT NULL, result TEXT NOT NULL,"
	" PRIMARY KEY (host, seq));"
	"CREATE INDEX audit_time ON audit (time);",
	/* 12: vmrt (issue 12 §1): a stop that skips ACPI (`hc vm stop --force`);
	 * kept in the row so that the agent of the VM's host (and a restarted
	 * hcd) still knows. */
	"ALTER TABLE vms ADD COLUMN force_stop INTEGER NOT NULL DEFAULT 0;",
	/* 13: bandwidth limits and traffic metering (issue 13 §1, §2; usage.h).
	 * Limits in bits/s, bursts and quotas in bytes, 0 = none.  The users'
	 * rate cap and monthly traffic quota are a table of their own, apart
	 * from the users' resource quotas.  Counters: the last raw sample of a
	 * NIC's tap per host (written with the totals it was added to, in one
	 * transaction), traffic per month and NIC, resources per month and VM;
	 * usage rows name their VM and owner and outlive both (billing). */
	"CREATE TABLE nic_limits (nic BIGINT PRIMARY KEY REFERENCES nics(id) ON DELETE CASCADE,"
	" in_rate BIGINT NOT NULL, in_burst BIGINT NOT NULL, out_rate BIGINT NOT NULL,"
	" out_burst BIGINT NOT NULL);"
	"CREATE TABLE net_limits (network BIGINT PRIMARY KEY REFERENCES networks(id) ON DELETE CASCADE,"
	" in_rate BIGINT NOT NULL, in_burst BIGINT NOT NULL, out_rate BIGINT NOT NULL,"
	" out_burst BIGINT NOT NULL);"
	"CREATE TABLE user_traffic (user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
	" rate_cap BIGINT NOT NULL, quota BIGINT NOT NULL);"
	"CREATE TABLE vm_traffic (vm BIGINT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,"
	" quota BIGINT NOT NULL);"
	"CREATE TABLE meter_nics (nic BIGINT NOT NULL, host TEXT NOT NULL, vm BIGINT NOT NULL,"
	" owner BIGINT NOT NULL, ifindex BIGINT NOT NULL, rx_bytes BIGINT NOT NULL,"
	" tx_bytes BIGINT NOT NULL, rx_packets BIGINT NOT NULL, tx_packets BIGINT NOT NULL,"
	" at BIGINT NOT NULL, in_bps BIGINT NOT NULL, out_bps BIGINT NOT NULL,"
	" in_pps BIGINT NOT NULL, out_pps BIGINT NOT NULL, PRIMARY KEY (nic, host));"
	"CREATE INDEX meter_nics_vm ON meter_nics (vm);"
	/* When each host last accounted its VMs' resources, and its boot ID
	 * then: kept in its row, with its heartbeat. */
	"ALTER TABLE hosts ADD COLUMN meter_at BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE hosts ADD COLUMN meter_boot TEXT;"
	"CREATE TABLE usage_nic (month TEXT NOT NULL, nic BIGINT NOT NULL, vm BIGINT NOT NULL,"
	" owner BIGINT NOT NULL, bytes_in BIGINT NOT NULL, bytes_out BIGINT NOT NULL,"
	" packets_in BIGINT NOT NULL, packets_out BIGINT NOT NULL, PRIMARY KEY (month, nic));"
	"CREATE INDEX usage_nic_owner ON usage_nic (month, owner);"
	"CREATE INDEX usage_nic_vm ON usage_nic (vm);"
	"CREATE TABLE usage_vm (month TEXT NOT NULL, vm BIGINT NOT NULL, owner BIGINT NOT NULL,"
	" name TEXT NOT NULL, vcpu_seconds BIGINT NOT NULL, memory_mib_seconds BIGINT NOT NULL,"
	" disk_mib_seconds BIGINT NOT NULL, PRIMARY KEY (month, vm));"
	"CREATE INDEX usage_vm_owner ON usage_vm (month, owner);",
	/* 14: snapshot (issue 14 §2): disk snapshots of VMs, one qcow2 layer
	 * per disk in the VM's directory (vm/snapshot.h).  state is ready or
	 * the operation under way (creating, restoring, deleting); bytes are
	 * the layers' file sizes, counted in the owner's disk_bytes. */
	"CREATE TABLE snapshots (id BIGINT PRIMARY KEY,"
	" vm BIGINT NOT NULL REFERENCES vms(id) ON DELETE CASCADE, name TEXT NOT NULL,"
	" state TEXT NOT NULL, live INTEGER NOT NULL DEFAULT 0, bytes BIGINT NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL, UNIQUE (vm, name));"
	"INSERT INTO counters (name, next) VALUES ('snapshot', 1);",
	/* 15: resize (issue 14 §3): what the VM's QEMU was last started with
	 * as its ceilings — its boot memory (a balloon goes up to it, no
	 * further) and maxcpus (CPU hotplug goes up to it); 0: unknown (a
	 * QEMU started before this), so a running VM is not resized. */
	"ALTER TABLE vms ADD COLUMN run_memory_mib BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE vms ADD COLUMN run_max_cpus BIGINT NOT NULL DEFAULT 0;",
	/* 16: migrate (issue 14 §1).  A VM's live migration, one row per VM
	 * (the last one): a state machine each step of which is written by
	 * the host that owns it (store/migrations.c); vms.host flips in the
	 * step that ends it well.  The PSK of its TLS stream lives here while
	 * it runs, the tail of the source's serial log until the destination
	 * took it.  hosts.drain_migrate: `hc host drain --migrate`'s
	 * parallelism (0: off), since drain_started. */
	"CREATE TABLE vm_migrations (vm BIGINT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,"
	" source TEXT NOT NULL, dest TEXT NOT NULL, source_addr TEXT, dest_addr TEXT NOT NULL,"
	" state TEXT NOT NULL, nbd_port INTEGER NOT NULL, mig_port INTEGER NOT NULL, psk TEXT,"
	" error TEXT, source_done INTEGER NOT NULL DEFAULT 0, dest_done INTEGER NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL, updated BIGINT NOT NULL, total_ms BIGINT, downtime_ms BIGINT,"
	" ram_bytes BIGINT, disk_bytes BIGINT, log TEXT);"
	"CREATE INDEX vm_migrations_dest ON vm_migrations (dest);"
	"ALTER TABLE hosts ADD COLUMN drain_migrate INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE hosts ADD COLUMN drain_started BIGINT NOT NULL DEFAULT 0;",
	/* 17: pcislot (issue 14 §1): each NIC's PCI slot, part of the VM's
	 * definition (NIC_PCI_SLOT_FIRST in store.h), so that a QEMU built
	 * from the store anywhere has the running one's layout even after
	 * hot-plugs.  Existing NICs take 16, 17, … per VM in NIC-id order.
	 * vms.run_nic_slots: the VM's running QEMU was started with its NICs
	 * in their slots (1), or by an hcd from before (0: that QEMU's
	 * migration destination and hot-plugs go without, as it did). */
	"ALTER TABLE nics ADD COLUMN pci_slot INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE vms ADD COLUMN run_nic_slots INTEGER NOT NULL DEFAULT 0;"
	"UPDATE nics SET pci_slot = 16 + (SELECT COUNT(*) FROM nics o"
	" WHERE o.vm = nics.vm AND o.id < nics.id);"
	"CREATE UNIQUE INDEX nics_vm_pci_slot ON nics (vm, pci_slot);",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_q(struct store *st, const char *sql, const struct sval *p, int n,
	    store_row_fn fn, void *arg)
{
	char *err = NULL;
	int rc = st->eng->exec(st->h, sql, p, n, fn, arg, &err);

	if (rc == STORE_ERR) {
		log_err("store: %s", err ? err : "failed");
		stat_inc(STAT_STORE_ERRORS);
	}
	free(err);
	return rc;
}

/* The table a write statement targets ("INSERT INTO t", "UPDATE t",
 * "DELETE FROM t"), added once to st->changed. */
static void note_table(struct store *st, const char *sql)
{
	static const char *const verbs[] = { "INSERT INTO ", "UPDATE ", "DELETE FROM " };
	size_t have = strlen(st->changed), len = 0;
	const char *t = NULL;

	sql += strspn(sql, " \t\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]) && t == NULL; i++)
		if (strncasecmp(sql, verbs[i], strlen(verbs[i])) == 0)
			t = sql + strlen(verbs[i]);
	if (t)
		len = strspn(t, "abcdefghijklmnopqrstuvwxyz_");
	if (len == 0 || have + len + 2 > sizeof(st->changed))
		return;
	for (const char *c = st->changed; *c;) {
		size_t l = strcspn(c, ",");
		if (l == len && strncmp(c, t, len) == 0)
			return;
		c += l + (c[l] == ',');
	}
	snprintf(st->changed + have, sizeof(st->changed) - have, "%s%.*s", have ? "," : "",
		 (int)len, t);
}

static int count_row(void *arg, const struct sval *c, int n)
{
	(*(size_t *)arg)++;
	return 0;
}

int store_q_count(struct store *st, const char *sql, const struct sval *p, int n, size_t *rows)
{
	int rc = store_tx_begin(st);

	*rows = 0;
	if (rc == STORE_OK)
		rc = store_q(st, sql, p, n, count_row, rows);
	return store_tx_end(st, rc);
}

void store_mark_changed(struct store *st, const char *table)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "UPDATE %s", table);
	st->dirty = true;
	note_table(st, sql);
}

int store_w(struct store *st, const char *sql, const struct sval *p, int n)
{
	int rc;

	/* Autocommitted, the write would be visible before it could be
	 * announced, and nothing would fire the hook: give it a transaction
	 * of its own, like every other change of intent. */
	if (st->depth == 0) {
		rc = store_tx_begin(st);
		if (rc == STORE_OK)
			rc = store_w(st, sql, p, n);
		return store_tx_end(st, rc);
	}
	rc = store_q(st, sql, p, n, NULL, NULL);
	if (rc == STORE_OK) {
		st->dirty = true;
		note_table(st, sql);
	}
	return rc;
}

void store_read_begin(struct store *st)
{
	char *err = NULL;

	if (st->depth > 0 || st->reading || st->eng->read_begin == NULL)
		return;
	if (st->eng->read_begin(st->h, &err) == STORE_OK)
		st->reading = true;
	else
		log_err("store: %s", err ? err : "cannot begin a read");
	free(err);
}

void store_read_end(struct store *st)
{
	char *err = NULL;

	if (!st->reading)
		return;
	st->reading = false;
	if (st->eng->commit(st->h, &err) != STORE_OK) {
		log_err("store: %s", err ? err : "cannot end a read");
		st->eng->rollback(st->h);
	}
	free(err);
}

int store_tx_begin(struct store *st)
{
	char *err = NULL;

	if (st->depth++ > 0)
		return STORE_OK;
	/* A write inside a read: the snapshot ends, the write lock is taken. */
	store_read_end(st);
	st->dirty = false;
	st->changed[0] = '\0';
	if (st->eng->begin(st->h, &err) != STORE_OK) {
		log_err("store: %s", err);
		stat_inc(STAT_STORE_ERRORS);
		free(err);
		st->depth = 0;
		return STORE_ERR;
	}
	return STORE_OK;
}

int store_tx_end(struct store *st, int rc)
{
	char *err = NULL;
	size_t events = 0;

	/* After a failed store_tx_begin (depth back at 0) there is nothing to
	 * end; going below 0 would make the next write look autocommitted. */
	if (st->depth == 0)
		return rc;
	/* The event log joins the transaction it describes: recorded while
	 * it is still open (its renderer's reads run inside it too). */
	if (st->depth == 1 && rc == STORE_OK)
		rc = store_events_flush(st, &events);
	if (--st->depth > 0)
		return rc;
	if (rc != STORE_OK) {
		store_events_forget(st);
		st->eng->rollback(st->h);
		return rc;
	}
	/* Announced inside the transaction: the server delivers it when the
	 * COMMIT succeeds and drops it with a rollback, so listeners hear of
	 * exactly the changes that happened. */
	if (st->dirty && st->eng->announce &&
	    st->eng->announce(st->h, st->changed, &err) != STORE_OK) {
		log_err("store: %s", err ? err : "announcing the change failed");
		free(err);
		st->eng->rollback(st->h);
		return STORE_ERR;
	}
	if (events > 0 && st->eng->announce_events &&
	    st->eng->announce_events(st->h, "events", &err) != STORE_OK) {
		log_err("store: %s", err ? err : "announcing the events failed");
		free(err);
		st->eng->rollback(st->h);
		return STORE_ERR;
	}
	if (st->eng->commit(st->h, &err) != STORE_OK) {
		log_err("store: %s", err);
		stat_inc(STAT_STORE_ERRORS);
		free(err);
		st->eng->rollback(st->h);
		return STORE_ERR;
	}
	if (st->dirty && st->hook)
		st->hook(st->hook_arg);
	if (events > 0 && st->event_hook)
		st->event_hook(st->event_hook_arg);
	st->dirty = false;
	return STORE_OK;
}

int64_t store_now(void)
{
	return (int64_t)time(NULL);
}

int store_row_int(void *arg, const struct sval *cols, int ncols)
{
	if (ncols > 0 && cols[0].t == SV_INT)
		*(int64_t *)arg = cols[0].i;
	return 0;
}

int store_row_str(void *arg, const struct sval *cols, int ncols)
{
	if (ncols > 0)
		*(char **)arg = sv_strdup(&cols[0]);
	return 1;
}

char *sv_strdup(const struct sval *v)
{
	return v->t == SV_TEXT && v->s ? strdup(v->s) : NULL;
}

int store_counter_next(struct store *st, const char *name, uint64_t max, uint64_t *out)
{
	/* Increment and read in one statement, under the row's write lock: two
	 * writers never get the same value, whatever the engine or isolation
	 * (reading first, then incrementing, hands one value out twice under
	 * PostgreSQL's READ COMMITTED).  The bump alone is no change of intent:
	 * the row that uses the ID is, so the hook is not armed here. */
	struct sval p[] = { SV_S(name), SV_I(max > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : max) };
	int64_t issued = -1;
	uint64_t next;
	int rc = store_q(st, "UPDATE counters SET next = next + 1 WHERE name = ? AND next <= ?"
			 " RETURNING next - 1", p, 2, store_row_int, &issued);

	if (rc != STORE_OK)
		return rc;
	if (issued < 0)   /* nothing updated: past max, or no such counter */
		return store_counter_peek(st, name, &next) == STORE_OK ? STORE_FULL : STORE_ERR;
	*out = (uint64_t)issued;
	return STORE_OK;
}

int store_counter_peek(struct store *st, const char *name, uint64_t *next)
{
	int64_t v = -1;
	int rc = store_q(st, "SELECT next FROM counters WHERE name = ?", &SV_S(name), 1,
			 store_row_int, &v);

	if (rc == STORE_OK && v < 0)
		rc = STORE_NOTFOUND;
	*next = v < 0 ? 0 : (uint64_t)v;
	return rc;
}

const char *store_schema_sql(int version)
{
	return version >= 1 && version <= N_MIGRATIONS ? migrations[version - 1] : NULL;
}

int store_schema_step(struct store *st, int version)
{
	const char *sql = store_schema_sql(version);
	char *step = sql ? strdup(sql) : NULL;
	int rc = step ? STORE_OK : STORE_ERR;

	/* Engines run one statement per exec: split the step on ';'. */
	for (char *save = NULL, *stmt = step ? strtok_r(step, ";", &save) : NULL;
	     stmt && rc == STORE_OK; stmt = strtok_r(NULL, ";", &save))
		rc = store_q(st, stmt, NULL, 0, NULL, NULL);
	free(step);
	return rc;
}

static int migrate_steps(struct store *st)
{
	int64_t version = 0;
	int rc;
	char *err = NULL;

	rc = st->eng->exec(st->h, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
			   NULL, 0, NULL, NULL, &err);
	if (rc != STORE_OK)
		goto fail;
	for (;;) {
		version = 0;
		if (store_tx_begin(st) != STORE_OK)
			return STORE_ERR;
		rc = store_q(st, "SELECT MAX(version) FROM schema_version", NULL, 0,
			     store_row_int, &version);
		if (rc != STORE_OK || version >= N_MIGRATIONS) {
			store_tx_end(st, rc);
			return rc;
		}
		rc = store_schema_step(st, (int)version + 1);
		if (rc == STORE_OK)
			rc = store_q(st, "INSERT INTO schema_version (version) VALUES (?)",
				     &SV_I(version + 1), 1, NULL, NULL);
		st->dirty = false;
		if (store_tx_end(st, rc) != STORE_OK)
			return STORE_ERR;
		log_info("store: migrated to schema version %lld", (long long)version + 1);
	}
fail:
	log_err("store: %s", err);
	free(err);
	return STORE_ERR;
}

/* Several hcd may start at once on one database: one migrates while the
 * others wait, then find nothing left to do. */
static int migrate(struct store *st)
{
	char *err = NULL;
	int rc;

	if (st->eng->lock_migrations == NULL)
		return migrate_steps(st);
	if (st->eng->lock_migrations(st->h, true, &err) != STORE_OK) {
		log_err("store: %s", err);
		free(err);
		return STORE_ERR;
	}
	rc = migrate_steps(st);
	if (st->eng->lock_migrations(st->h, false, &err) != STORE_OK) {
		/* Do not run on holding it: closing the connection releases it. */
		log_err("store: %s", err);
		free(err);
		rc = STORE_ERR;
	}
	return rc;
}

struct store *store_open(const char *uri, const char *state_dir, char **err)
{
	struct store *st = calloc(1, sizeof(*st));
	char *path = NULL;

	if (st == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	st->eng = &store_engine_sqlite;
	if (strcmp(uri, "sqlite") == 0) {
		path = str_printf("%s/hackcloud.db", state_dir);
	} else if (strncmp(uri, "sqlite:", 7) == 0) {
		path = strdup(uri + 7);
	} else if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0) {
		/* libpq reads the whole URI: host, port, user, database, options. */
		st->eng = &store_engine_pg;
		path = strdup(uri);
	} else {
		*err = str_printf("store '%s': unsupported (use sqlite, sqlite:PATH or postgresql://…)",
				  uri);
		free(st);
		return NULL;
	}
	store_set_quota_defaults(st, NULL);
	st->h = st->eng->open(path, err);
	free(path);
	if (st->h == NULL) {
		free(st);
		return NULL;
	}
	if (migrate(st) != STORE_OK) {
		*err = strdup("schema migration failed");
		store_close(st);
		return NULL;
	}
	return st;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->eng->close(st->h);
	tokencache_free(st->tokens);
	free(st->touched);
	free(st);
}

void store_set_change_hook(struct store *st, void (*fn)(void *), void *arg)
{
	st->hook = fn;
	st->hook_arg = arg;
}

int store_notify_fd(struct store *st)
{
	return st->eng->notify_fd ? st->eng->notify_fd(st->h) : -1;
}

int store_notify_drain(struct store *st)
{
	return st->eng->notify_drain ? st->eng->notify_drain(st->h) : 0;
}

int store_schema_version(struct store *st)
{
	int64_t v = 0;
	store_q(st, "SELECT MAX(version) FROM schema_version", NULL, 0, store_row_int, &v);
	return (int)v;
}

const char *store_refusal(struct store *st)
{
	return st->refusal[0] ? st->refusal : "over quota";
}
