/*
 * resize — a VM's vCPUs, memory and disks changed after its creation
 * (issue 14 §3).
 *
 * The row says what the VM should have; its agent makes QEMU match
 * (vm/resize.h), at once when it runs, at the next start when not.  So
 * every check is made here, in the transaction that writes the new size:
 * the owner's quotas (quota_admit, for what grows), its host's room and
 * load (hosts.used_cpus, used_mib move by the difference, as they do
 * when a VM is created or deleted), and for a running VM the ceilings
 * its QEMU started with — a balloon gives back at most the boot memory,
 * CPU hotplug goes up to maxcpus; beyond them only a restart helps, and
 * the refusal says so rather than storing a size the VM cannot have.
 */
#include "store/store_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a resize reads of the VM's row. */
struct resize_row {
	bool found;
	uint64_t owner;
	char *host, *state, *name;
	int64_t cpus, mib, run_mib, run_cpus;
	int64_t disk_size;        /* the root disk's bytes; 0 = the image's */
	bool disk_image;          /* the image is a disk (its size is the root's) */
	int64_t image_size;
};

static int resize_row_fill(void *arg, const struct sval *c, int n)
{
	struct resize_row *r = arg;

	(void)n;
	r->found = true;
	r->owner = (uint64_t)c[0].i;
	r->host = sv_strdup(&c[1]);
	r->state = sv_strdup(&c[2]);
	r->cpus = c[3].i;
	r->mib = c[4].i;
	r->run_mib = c[5].i;
	r->run_cpus = c[6].i;
	r->disk_size = c[7].i;
	r->disk_image = c[8].t == SV_TEXT && strcmp(c[8].s, "disk") == 0;
	r->image_size = c[9].i;
	r->name = sv_strdup(&c[10]);
	return 1;
}

static void resize_row_clear(struct resize_row *r)
{
	free(r->host);
	free(r->state);
	free(r->name);
}

static int resize_row_read(struct store *st, uint64_t id, struct resize_row *r)
{
	int rc = store_q(st, "SELECT v.owner, v.host, v.state, v.cpus, v.memory_mib, v.run_memory_mib,"
			 " v.run_max_cpus, v.disk_size, i.boot, i.size, v.name FROM vms v"
			 " JOIN images i ON i.id = v.image WHERE v.id = ? AND v.desired <> 'deleted'",
			 &SV_I(id), 1, resize_row_fill, r);

	return rc == STORE_OK && !r->found ? STORE_NOTFOUND : rc;
}

static int refuse(struct store *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct store *st, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->refusal, sizeof(st->refusal), fmt, ap);
	va_end(ap);
	return rc;
}

struct host_room {
	bool found;
	int64_t cpus, mib, used_cpus, used_mib;
};

static int host_room_fill(void *arg, const struct sval *c, int n)
{
	struct host_room *h = arg;

	(void)n;
	h->found = true;
	h->cpus = c[0].i;
	h->mib = c[1].i;
	h->used_cpus = c[2].i;
	h->used_mib = c[3].i;
	return 1;
}

/* Does the VM's host take dcpus and dmib more?  The same rule as
 * placement (hosts.c host_fits), for the growth only: a shrink always
 * fits, and a VM on no host has no room to check. */
static int host_room_check(struct store *st, const char *host, double ratio, int64_t dcpus,
			   int64_t dmib)
{
	struct host_room h = { 0 };
	int rc;

	if (host == NULL || (dcpus <= 0 && dmib <= 0))
		return STORE_OK;
	rc = store_q(st, "SELECT cpus, memory_mib, used_cpus, used_mib FROM hosts WHERE name = ?",
		     &SV_S(host), 1, host_room_fill, &h);
	if (rc != STORE_OK || !h.found)
		return rc;
	if (dmib > 0 && h.mib - h.used_mib < dmib)
		return refuse(st, STORE_FULL, "host %s has %" PRId64 " MiB of memory free, %" PRId64
			      " more asked", host, h.mib - h.used_mib, dmib);
	if (dcpus > 0 && (double)(h.used_cpus + dcpus) > ratio * (double)h.cpus)
		return refuse(st, STORE_FULL, "host %s has %" PRId64 " vCPUs in use of %.0f (%"
			      PRId64 " CPUs, cpu_ratio %g), %" PRId64 " more asked", host, h.used_cpus,
			      ratio * (double)h.cpus, h.cpus, ratio, dcpus);
	return STORE_OK;
}

/* A running VM: the new size within what its QEMU started with. */
static int ceilings_check(struct store *st, const struct resize_row *r, int64_t cpus, int64_t mib)
{
	if (strcmp(r->state, "running") != 0)
		return STORE_OK;
	if (r->run_mib <= 0 || r->run_cpus <= 0)
		return refuse(st, STORE_CONFLICT, "vm '%s' runs in a QEMU started without resizing"
			      " (before this version): stop it to resize it", r->name);
	if (mib > r->run_mib)
		return refuse(st, STORE_CONFLICT, "vm '%s' started with %" PRId64 " MiB, the most a"
			      " balloon gives it back: stop it and set %" PRId64 " MiB, then start it",
			      r->name, r->run_mib, mib);
	if (cpus > r->run_cpus)
		return refuse(st, STORE_CONFLICT, "vm '%s' started with room for %" PRId64 " vCPUs"
			      " (maxcpus): stop it and set %" PRId64 ", then start it", r->name,
			      r->run_cpus, cpus);
	return STORE_OK;
}

int store_vm_resize(struct store *st, uint64_t id, const struct vm_resize *rs)
{
	struct resize_row r = { 0 };
	int64_t cpus = 0, mib = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = resize_row_read(st, id, &r);
	if (rc == STORE_OK) {
		cpus = rs->cpus > 0 ? rs->cpus : r.cpus;
		mib = rs->memory_mib > 0 ? rs->memory_mib : r.mib;
		/* A QEMU being started or ended has sizes in flight: the
		 * launch read the row already, the stop ends it anyway. */
		if (strcmp(r.state, "starting") == 0 || strcmp(r.state, "stopping") == 0)
			rc = refuse(st, STORE_CONFLICT, "vm '%s' is %s: resize it once it is running"
				    " or stopped", r.name, r.state);
	}
	if (rc == STORE_OK)
		rc = ceilings_check(st, &r, cpus, mib);
	if (rc == STORE_OK) {
		/* The owner's quotas before the host's room: over quota is
		 * the answer that tells the user what to do. */
		int64_t add[QUOTA_N] = { [QUOTA_VCPUS] = cpus - r.cpus, [QUOTA_MEMORY_MIB] = mib - r.mib };
		rc = quota_admit(st, r.owner, add);
	}
	if (rc == STORE_OK)
		rc = host_room_check(st, r.host, rs->cpu_ratio, cpus - r.cpus, mib - r.mib);
	if (rc == STORE_OK && (cpus != r.cpus || mib != r.mib)) {
		struct sval p[] = { SV_I(cpus), SV_I(mib), SV_I(id) };
		struct sval h[] = { SV_I(cpus - r.cpus), SV_I(mib - r.mib), SV_S(r.host) };
		rc = store_w(st, "UPDATE vms SET cpus = ?, memory_mib = ? WHERE id = ?", p, 3);
		if (rc == STORE_OK && r.host)
			rc = store_q(st, "UPDATE hosts SET used_cpus = used_cpus + ?,"
				     " used_mib = used_mib + ? WHERE name = ?", h, 3, NULL, NULL);
		store_event_vm(st, id, "updated");
		if (r.host)
			store_event_touch(st, "host", r.host, "updated");
	}
	resize_row_clear(&r);
	return store_tx_end(st, rc);
}

int store_vm_ceilings_set(struct store *st, uint64_t id, int max_cpus)
{
	struct sval p[] = { SV_I(max_cpus), SV_I(max_cpus), SV_I(id) };

	return store_q(st, "UPDATE vms SET run_memory_mib = memory_mib, run_nic_slots = 1, run_max_cpus ="
		       " CASE WHEN cpus > ? THEN cpus ELSE ? END WHERE id = ?", p, 3, NULL, NULL);
}

int store_vm_disk_grow(struct store *st, uint64_t id, int disk, int64_t size)
{
	struct resize_row r = { 0 };
	int64_t now = 0;
	bool found = false;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = resize_row_read(st, id, &r);
	if (rc == STORE_OK && disk < 0) {
		now = r.disk_size > 0 ? r.disk_size : r.disk_image ? r.image_size : 0;
		found = now > 0;
	} else if (rc == STORE_OK) {
		struct sval p[] = { SV_I(id), SV_I(disk) };
		now = -1;
		rc = store_q(st, "SELECT size FROM vm_disks WHERE vm = ? AND idx = ?", p, 2,
			     store_row_int, &now);
		found = now >= 0;
	}
	if (rc == STORE_OK && !found)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK && size < now)
		rc = refuse(st, STORE_CONFLICT, "a disk only grows: it has %" PRId64 " bytes, %" PRId64
			    " asked (data past the new end would be cut off)", now, size);
	if (rc == STORE_OK && size > now) {
		int64_t add[QUOTA_N] = { [QUOTA_DISK_BYTES] = size - now };
		rc = quota_admit(st, r.owner, add);
	}
	if (rc == STORE_OK && size > now) {
		struct sval p[] = { SV_I(size), SV_I(id), SV_I(disk) };
		if (disk < 0)
			rc = store_w(st, "UPDATE vms SET disk_size = ? WHERE id = ?", p, 2);
		else
			rc = store_w(st, "UPDATE vm_disks SET size = ? WHERE vm = ? AND idx = ?", p, 3);
		store_event_vm(st, id, "updated");
	}
	resize_row_clear(&r);
	return store_tx_end(st, rc);
}
