/*
 * migrate — a live migration's QEMU steps on each host (issue 14 §1),
 * for worker threads: each touches only the VM's QMP socket and files.
 * The store's state machine and who takes which step are agent/migrate.c.
 *
 * Destination (QEMU started by vm/launch.h with spec.incoming, paused):
 *   mig_dest_listen   TLS for the stream, QEMU's NBD server on the
 *                     underlay exporting the fresh disks (writable), and
 *                     the migration's listener
 *   mig_dest_finish   the stream ended well (query-migrate "completed",
 *                     waited for a moment: the source is done before this
 *                     end has loaded it all; the guest paused): exports
 *                     and NBD server stopped
 *   mig_dest_run      the source's serial log tail appended, then `cont`
 * Source:
 *   mig_source_transfer  disks mirrored to the NBD exports (sync "top"
 *                     for an overlay over the shared image, "full" for
 *                     the others), RAM migrated once every mirror is
 *                     ready; QEMU pauses before the switch-over
 *                     (pause-before-switchover), the mirrors are ended
 *                     there — the guest is paused, so the copies are
 *                     exact — and the migration completes.  On failure
 *                     nothing is undone yet: the caller records the
 *                     reason, then calls mig_source_abort (cancelling
 *                     ends the destination's QEMU, whose host would
 *                     otherwise report that instead of the reason).
 *   mig_source_abort  idempotent: the stream's connections destroyed
 *                     (net/sockkill.h), the migration cancelled, mirror
 *                     jobs and NBD clients gone, the guest running again
 *   mig_source_status query-migrate's status (a restarted hcd's look)
 *
 * The stream is TLS with a pre-shared key (QEMU's tls-creds-psk, object
 * QEMU_MIGRATE_TLS) for NBD and RAM alike: a fresh random key per
 * migration, in DIR/tls/keys.psk (the VM's uid, 0600) on both hosts.
 */
#ifndef HC_MIGRATE_H
#define HC_MIGRATE_H

#include "common/proc.h"
#include "vm/qemu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_PSK_HEX 64          /* 32 random bytes */
#define MIG_DISKS_MAX 17        /* the root disk and up to 16 data disks */

struct mig_disk {
	char node[16];          /* the QEMU node: "disk", "data0", … */
	bool top;               /* an overlay over the shared image: mirror its top only */
};

struct mig_params {
	char addr[64];          /* the destination's underlay address (literal) */
	int nbd_port, mig_port;
	char psk[MIG_PSK_HEX + 1];
	struct mig_disk disks[MIG_DISKS_MAX];
	size_t n_disks;
	int max_downtime_ms;
	long long max_bandwidth;/* bytes/s; 0 = unlimited */
	int timeout_s, stall_s;
};

struct mig_result {
	long long total_ms, downtime_ms, ram_bytes, disk_bytes;
	char *log_b64;          /* the tail of the source's serial log (malloc'd) */
};

/* A fresh key, as hex (buf: MIG_PSK_HEX + 1 bytes). */
void mig_psk_new(char *buf);

/* DIR/tls/keys.psk with the key, the directory and file the VM's (id).
 * The path of DIR/tls in *dir (malloc'd). */
int mig_tls_write(const struct vm_paths *p, const struct proc_opts *id, const char *psk,
		  char **dir, char **err);
void mig_tls_remove(const struct vm_paths *p);

int mig_dest_listen(const struct vm_paths *p, const struct mig_params *m, char **err);
/* Waits up to wait_ms for this end of the stream to complete. */
int mig_dest_finish(const struct vm_paths *p, const struct mig_params *m, int wait_ms, char **err);
int mig_dest_run(const struct vm_paths *p, const char *log_b64, char **err);

/* *cancel is read between steps: the loop sets it to give up. */
int mig_source_transfer(const struct vm_paths *p, const struct mig_params *m,
			const volatile int *cancel, struct mig_result *r, char **err);
int mig_source_abort(const struct vm_paths *p, const struct mig_params *m, char **err);
/* query-migrate's status ("none" when QEMU never migrated; malloc'd), and
 * QEMU's figures when it completed and handed the guest over (paused in
 * "postmigrate"); NULL when QEMU does not answer. */
char *mig_source_status(const struct vm_paths *p, struct mig_result *r);

void mig_result_free(struct mig_result *r);

#endif
