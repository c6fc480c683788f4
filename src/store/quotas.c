/*
 * quotas — what each user may hold (issue 11, item 12): VMs, their vCPUs,
 * memory and disk bytes, networks, images and image bytes.
 *
 * A user's own setting (users.quota_<name>) is NULL (the configured
 * default applies), -1 (unlimited) or a limit N >= 0.  The defaults
 * (store_set_quota_defaults, from hcd.conf) bind members only: an admin
 * is limited only by a setting of its own.
 *
 * Invariant: quota_admit runs inside the transaction that creates what it
 * counts, after the rows it counts are visible and before the new row is
 * written; writers are serialised on either engine (store.h), so two
 * racing creates can never both pass the last unit of a quota.
 */
#include "store/store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const quota_names[QUOTA_N] = {
	[QUOTA_VMS] = "vms",
	[QUOTA_VCPUS] = "vcpus",
	[QUOTA_MEMORY_MIB] = "memory_mib",
	[QUOTA_DISK_BYTES] = "disk_bytes",
	[QUOTA_NETWORKS] = "networks",
	[QUOTA_IMAGES] = "images",
	[QUOTA_IMAGE_BYTES] = "image_bytes",
};

#define QUOTA_COLS "quota_vms, quota_vcpus, quota_memory_mib, quota_disk_bytes," \
	" quota_networks, quota_images, quota_image_bytes"

void store_set_quota_defaults(struct store *st, const int64_t defaults[QUOTA_N])
{
	for (int q = 0; q < QUOTA_N; q++)
		st->quota_default[q] = defaults ? defaults[q] : QUOTA_UNLIMITED;
}

struct quota_row {
	bool found, admin;
	int64_t set[QUOTA_N];
	char *name;
};

static int quota_row_fill(void *arg, const struct sval *c, int n)
{
	struct quota_row *r = arg;

	r->found = true;
	r->name = sv_strdup(&c[0]);
	r->admin = c[1].t == SV_TEXT && strcmp(c[1].s, "admin") == 0;
	for (int q = 0; q < QUOTA_N && q + 2 < n; q++)
		r->set[q] = c[q + 2].t == SV_INT ? c[q + 2].i : QUOTA_DEFAULT;
	return 1;
}

static int quota_row_read(struct store *st, uint64_t user, struct quota_row *r)
{
	int rc = store_q(st, "SELECT name, role, " QUOTA_COLS " FROM users WHERE id = ?",
			 &SV_I(user), 1, quota_row_fill, r);

	return rc == STORE_OK && !r->found ? STORE_NOTFOUND : rc;
}

/* The limit in force for one quota of a user. */
static int64_t quota_limit(const struct store *st, const struct quota_row *r, int q)
{
	if (r->set[q] != QUOTA_DEFAULT)
		return r->set[q];
	return r->admin ? QUOTA_UNLIMITED : st->quota_default[q];
}

static int vm_usage_fill(void *arg, const struct sval *c, int n)
{
	int64_t *used = arg;

	used[QUOTA_VMS] = c[0].i;
	used[QUOTA_VCPUS] = c[1].i;
	used[QUOTA_MEMORY_MIB] = c[2].i;
	used[QUOTA_DISK_BYTES] = c[3].i;
	return 1;
}

/* What a user holds now, for the quotas flagged in want. */
static int quota_usage(struct store *st, uint64_t user, const bool want[QUOTA_N],
		       int64_t used[QUOTA_N])
{
	int rc = STORE_OK;

	memset(used, 0, QUOTA_N * sizeof(*used));
	/* A deleted VM is gone for its owner even while its host cleans up.
	 * Disk bytes are the disks as sized: the root disk (its own size, or
	 * a disk image's) and every data disk. */
	if (want[QUOTA_VMS] || want[QUOTA_VCPUS] || want[QUOTA_MEMORY_MIB] || want[QUOTA_DISK_BYTES])
		rc = store_q(st, "SELECT COUNT(*), COALESCE(SUM(v.cpus), 0),"
			     " COALESCE(SUM(v.memory_mib), 0), COALESCE(SUM(CASE WHEN v.disk_size > 0"
			     " THEN v.disk_size WHEN i.boot = 'disk' THEN i.size ELSE 0 END), 0)"
			     " FROM vms v JOIN images i ON i.id = v.image"
			     " WHERE v.owner = ? AND v.desired <> 'deleted'",
			     &SV_I(user), 1, vm_usage_fill, used);
	if (rc == STORE_OK && want[QUOTA_DISK_BYTES]) {
		int64_t data = 0;
		rc = store_q(st, "SELECT COALESCE(SUM(d.size), 0) FROM vm_disks d"
			     " JOIN vms v ON v.id = d.vm WHERE v.owner = ? AND v.desired <> 'deleted'",
			     &SV_I(user), 1, store_row_int, &data);
		used[QUOTA_DISK_BYTES] += data;
		/* Snapshot layers hold bytes beyond the disks' sizes. */
		data = 0;
		if (rc == STORE_OK)
			rc = store_q(st, "SELECT COALESCE(SUM(s.bytes), 0) FROM snapshots s"
				     " JOIN vms v ON v.id = s.vm WHERE v.owner = ? AND v.desired <> 'deleted'",
				     &SV_I(user), 1, store_row_int, &data);
		used[QUOTA_DISK_BYTES] += data;
	}
	if (rc == STORE_OK && want[QUOTA_NETWORKS])
		rc = store_q(st, "SELECT COUNT(*) FROM networks WHERE owner = ?", &SV_I(user), 1,
			     store_row_int, &used[QUOTA_NETWORKS]);
	if (rc == STORE_OK && want[QUOTA_IMAGES])
		rc = store_q(st, "SELECT COUNT(*) FROM images WHERE owner = ?", &SV_I(user), 1,
			     store_row_int, &used[QUOTA_IMAGES]);
	if (rc == STORE_OK && want[QUOTA_IMAGE_BYTES])
		rc = store_q(st, "SELECT COALESCE(SUM(size), 0) FROM images WHERE owner = ?",
			     &SV_I(user), 1, store_row_int, &used[QUOTA_IMAGE_BYTES]);
	return rc;
}

int quota_admit(struct store *st, uint64_t owner, const int64_t add[QUOTA_N])
{
	struct quota_row r = { 0 };
	int64_t limit[QUOTA_N], used[QUOTA_N];
	bool want[QUOTA_N], any = false;
	int rc = quota_row_read(st, owner, &r);

	for (int q = 0; q < QUOTA_N; q++) {
		limit[q] = quota_limit(st, &r, q);
		want[q] = rc == STORE_OK && add[q] > 0 && limit[q] != QUOTA_UNLIMITED;
		any = any || want[q];
	}
	/* Unlimited (the usual case) costs one row read, no counting. */
	if (rc == STORE_OK && any)
		rc = quota_usage(st, owner, want, used);
	for (int q = 0; rc == STORE_OK && q < QUOTA_N; q++) {
		if (!want[q] || used[q] + add[q] <= limit[q])
			continue;
		snprintf(st->refusal, sizeof(st->refusal),
			 "quota '%s' of user %s exceeded: %" PRId64 " in use, %" PRId64
			 " more asked, limit %" PRId64, quota_names[q], r.name ? r.name : "?",
			 used[q], add[q], limit[q]);
		rc = STORE_QUOTA;
	}
	free(r.name);
	return rc;
}

int store_quota_get(struct store *st, uint64_t user, struct quota_usage *out)
{
	struct quota_row r = { 0 };
	bool all[QUOTA_N];
	int rc = store_tx_begin(st);

	for (int q = 0; q < QUOTA_N; q++)
		all[q] = true;
	if (rc == STORE_OK)
		rc = quota_row_read(st, user, &r);
	if (rc == STORE_OK)
		rc = quota_usage(st, user, all, out->used);
	for (int q = 0; rc == STORE_OK && q < QUOTA_N; q++) {
		out->set[q] = r.set[q];
		out->limit[q] = quota_limit(st, &r, q);
	}
	free(r.name);
	return store_tx_end(st, rc);
}

int store_quota_set(struct store *st, uint64_t user, const int64_t set[QUOTA_N])
{
	struct quota_row r = { 0 };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = quota_row_read(st, user, &r);
	for (int q = 0; rc == STORE_OK && q < QUOTA_N; q++) {
		if (set[q] == QUOTA_KEEP)
			continue;
		char sql[96];
		struct sval p[] = { set[q] == QUOTA_DEFAULT ? SV_S(NULL) : SV_I(set[q]), SV_I(user) };
		snprintf(sql, sizeof(sql), "UPDATE users SET quota_%s = ? WHERE id = ?", quota_names[q]);
		rc = store_q(st, sql, p, 2, NULL, NULL);
	}
	free(r.name);
	return store_tx_end(st, rc);
}
