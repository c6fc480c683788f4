/*
 * store — the single source of truth (DESIGN §1, §4).
 *
 * Two layers:
 *   - an engine (store_sqlite.c, store_pg.c) that only knows how to open
 *     a database, run one parameterised statement and manage a
 *     transaction.  Statements use '?' placeholders; an engine that wants
 *     another syntax rewrites them.
 *   - the model functions below (models.c), written once against the
 *     engine interface, so every SQL text works on both engines.
 *
 * Invariants:
 *   - every multi-row change runs in one transaction;
 *   - no two transactions run at once, on any host (SQLite's write lock;
 *     an advisory lock on PostgreSQL), so model code may read and then
 *     write what it read;
 *   - a statement that fails inside a transaction ends it: PostgreSQL runs
 *     nothing more in it, so the caller stops and rolls back (store_tx_end
 *     with the error);
 *   - IDs come from the counters table in the same transaction as the row
 *     that uses them, so they are never reused, even after a crash;
 *   - after every committed change of intent the change callback runs (the
 *     in-process trigger that wakes the reconciler), and an engine that
 *     can reach other processes announces it in the same transaction
 *     (store_notify_fd).  The agent's own bookkeeping — observed state,
 *     purging a row it has finished deleting — is not a change of intent
 *     and does neither;
 *   - every committed change the API shows (a VM's state included) is
 *     recorded in the event log in its own transaction (see "The event
 *     log" below), announced on a channel of its own.
 *
 * Model functions return STORE_OK or a negative enum store_rc; an engine
 * failure is logged once here, at the edge of the database.
 */
#ifndef HC_STORE_H
#define HC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1,       /* the database failed */
	STORE_NOTFOUND = -2,
	STORE_CONFLICT = -3,  /* uniqueness or a reference still in use */
	STORE_FULL = -4,      /* a counter or an address pool is exhausted */
	STORE_AMBIGUOUS = -5, /* a plain name matches several public images */
	STORE_QUOTA = -6,     /* over the owner's quota: store_refusal says which */
};

/* ---- engine interface --------------------------------------------------- */

enum sval_type { SV_NULL, SV_INT, SV_TEXT };

struct sval {
	enum sval_type t;
	int64_t i;
	const char *s;
};

#define SV_I(v) ((struct sval){ .t = SV_INT, .i = (int64_t)(v) })
#define SV_S(v) ((struct sval){ .t = (v) ? SV_TEXT : SV_NULL, .s = (v) })

/* Called once per result row; a non-zero return stops the statement. */
typedef int (*store_row_fn)(void *arg, const struct sval *cols, int ncols);

struct store_engine {
	const char *name;
	void *(*open)(const char *uri, char **err);
	/* Returns STORE_OK, STORE_CONFLICT on a constraint violation, or STORE_ERR. */
	int (*exec)(void *h, const char *sql, const struct sval *params, int n,
		    store_row_fn fn, void *arg, char **err);
	int (*begin)(void *h, char **err);
	int (*commit)(void *h, char **err);
	/* Optional: a read-only snapshot for several statements (ended by
	 * commit), where that is cheaper than one per statement. */
	int (*read_begin)(void *h, char **err);
	void (*rollback)(void *h);
	void (*close)(void *h);
	/* Optional (NULL: not needed).  Hold (lock) or release a lock that
	 * serialises schema migrations between processes opening the same
	 * database at once.  SQLite needs none: each step's BEGIN IMMEDIATE
	 * already serialises them. */
	int (*lock_migrations)(void *h, bool lock, char **err);
	/* Optional, all three or none: announcements to the other processes
	 * on the same database (PostgreSQL's LISTEN/NOTIFY).  SQLite has none:
	 * one host, one writer process, whose change hook is enough.
	 *   announce: inside the open transaction, just before its COMMIT,
	 *     so that listeners hear of it exactly when, and only if, it
	 *     commits; `what` is the payload (store_tx_end's list of tables).
	 *   notify_fd: a descriptor that turns readable when announcements
	 *     may have arrived, or -1 while there is none (the server is
	 *     away); it may change between calls.
	 *   notify_drain: never blocks; how many announcements of other
	 *     connections arrived since the last call (a listener that had
	 *     to be set up again counts one: it may have missed some). */
	int (*announce)(void *h, const char *what, char **err);
	int (*notify_fd)(void *h);
	int (*notify_drain)(void *h);
	/* Optional, both or none: the same for the event log (events.c), on
	 * a channel of its own so that an event wakes only the API's
	 * streams, never an agent.  events_drain counts like notify_drain;
	 * the listener's descriptor is notify_fd's. */
	int (*announce_events)(void *h, const char *what, char **err);
	int (*events_drain)(void *h);
};

extern const struct store_engine store_engine_sqlite;
extern const struct store_engine store_engine_pg;

struct store;

/* uri: "sqlite" (STATE_DIR/hackcloud.db), "sqlite:PATH", or a libpq URI
 * "postgresql://…" / "postgres://…".  Migrates on open; several processes
 * may open one database at once. */
struct store *store_open(const char *uri, const char *state_dir, char **err);
void store_close(struct store *st);
void store_set_change_hook(struct store *st, void (*fn)(void *), void *arg);
int store_schema_version(struct store *st);
/* Why the last call of this handle answered STORE_QUOTA: which quota,
 * its limit and what is in use (text for the API's error). */
const char *store_refusal(struct store *st);

/*
 * Several reads as one: between these, reads see one snapshot and pay
 * for it once (SQLite takes its locks once instead of per statement; a
 * no-op on engines without read_begin).  A write meanwhile is fine: it
 * ends the snapshot first.  Not nested; not across a return to the loop.
 */
void store_read_begin(struct store *st);
void store_read_end(struct store *st);

/*
 * Changes made by other processes (issue 7, "triggers").  Every committed
 * change of intent is announced to every other store handle on the same
 * database; the change hook above covers this handle's own.
 *   store_notify_fd: poll it for input; -1 when the engine has no
 *     announcements (SQLite) or none can arrive now.  It may change (a
 *     reconnect): ask again before every poll.  The first call starts
 *     listening; only changes committed after it are heard.
 *   store_notify_drain: never blocks; how many announcements arrived
 *     since the last call (0: none).  Cheap when nothing arrived, so a
 *     loop may call it on every turn, not only when the fd was readable.
 */
int store_notify_fd(struct store *st);
int store_notify_drain(struct store *st);

/* ---- models ------------------------------------------------------------- */

#define OWNER_ROOT 0

struct image {
	uint64_t id;
	char *name;
	uint64_t owner;
	char *owner_name;
	char *sha256;     /* NULL until the upload is finalised */
	char *format;     /* raw | qcow2 | kernel */
	char *boot;       /* kernel | disk */
	int64_t size;     /* bytes (virtual size for disks) */
	char *cmdline;    /* kernel images */
	bool has_initrd;
	char *state;      /* uploading | importing | ready | error */
	int64_t created;
	char *visibility; /* private | public */
	char *source;     /* the URL of an import from the web, else NULL */
	char *import_host;/* the host downloading it (clusters: only it resumes it) */
	char *expect_sha256; /* checksum a URL import must have, or NULL */
	char *error;      /* why an import failed (state error), else NULL */
};

struct nic_limit;   /* common/rate.h */

struct network {
	uint64_t id;
	char *name;
	uint64_t owner;
	char *owner_name;
	char *ipv6;       /* "prefix::/64" */
	char *ipv4;       /* "a.b.c.0/24" or NULL */
	int64_t created;
	/* At create only: the default limits of its NICs (usage.h), or NULL. */
	const struct nic_limit *limit;
};

/*
 * The PCI slots of a VM's NICs on QEMU's i440fx bus: 0x10 up to 0x1f, one
 * per NIC (VM_NICS_MAX and NICS_PER_VM_MAX in api/ are 16), fixed when
 * the NIC is made and given explicitly at launch and at hot-plug alike,
 * so that every QEMU of the VM, on any host, has the same layout (a live
 * migration's stream fits no other).  Why 0x10: slots 0 and 1 are the
 * host bridge and PIIX; every device without an explicit address (the
 * root disk, up to 8 data disks, virtio-rng, virtio-balloon; the seed is
 * IDE and -nodefaults leaves out VGA) takes the lowest free slot from 2
 * and never gets this far.
 */
#define NIC_PCI_SLOT_FIRST 0x10
#define NIC_PCI_SLOTS 16

struct nic {
	uint64_t id;
	int pci_slot;     /* NIC_PCI_SLOT_FIRST .. +NIC_PCI_SLOTS-1 */
	uint64_t network;
	char *network_name;
	char *network_ipv6;
	char *ipv4;       /* allocated address or NULL */
	/* routing (prefixes.c): routed IPv6 prefixes ("addr/len", by
	 * address) and the public IPv4 address mapped to ipv4, or none */
	char **prefixes;
	size_t n_prefixes;
	char *public_ipv4;
};

/* A key of a VM, as the VM shows it. */
struct vm_key {
	uint64_t id;
	char *name;
	char *fingerprint;
	char *pubkey;     /* canonical OpenSSH line, for the guest */
};

/* An extra data disk of a VM: STATE_DIR/vms/<id>/data<index>.qcow2. */
struct vm_disk {
	int64_t size;     /* bytes */
};

struct vm {
	uint64_t id;
	char *name;
	uint64_t owner;
	char *owner_name;
	uint64_t image;
	char *image_name;
	int cpus;
	int memory_mib;
	char *desired;    /* running | stopped | deleted */
	char *state;      /* stopped | starting | running | stopping | error */
	char *host;
	char *error;
	int64_t created;
	struct nic *nics;
	size_t n_nics;
	/* At create only .id of each key is read; loaded VMs have them all. */
	struct vm_key *keys;
	size_t n_keys;
	/* User data, verbatim (may hold NULs); NULL when the VM has none. */
	unsigned char *user_data;
	size_t user_data_len;
	/* Attach a NoCloud "cidata" seed ISO as a CD-ROM. */
	bool config_drive;
	/* Its disks can be made anew from the image: the scheduler may restart
	 * it on another host when its own dies. */
	bool ephemeral;
	/* Bytes of the root disk; 0 = the image's own size (a kernel image
	 * then has no root disk at all). */
	int64_t disk_size;
	/* Extra empty data disks, in the order the guest sees them. */
	struct vm_disk *disks;
	size_t n_disks;
	/* The metadata service answers only requests that carry an IMDSv2
	 * session token ("metadata_tokens": "required"), or also plain ones
	 * ("optional"). */
	bool metadata_tokens_required;
	/* At create only: each NIC's own limits (usage.h), one per network
	 * given to store_vm_create, or NULL for none. */
	const struct nic_limit *nic_limits;
	/* desired stopped without ACPI: QMP quit, then SIGKILL */
	bool force_stop;
	/* Its running QEMU has the NICs in their PCI slots (false: an hcd
	 * from before NIC slots started it; hot-plugs go without them). */
	bool run_nic_slots;
};

/*
 * Scope of a lookup: who asks, and so which rows exist for it.
 *   an owner ID (a member): only that owner's rows (and public images);
 *   scope_all(caller) (an admin): every row, on behalf of that caller;
 *   OWNER_ANY (the agent, internals): every row, on behalf of root.
 *
 * References (issue 11, item 2).  Every get below takes `ref` as
 *   - an ID of its kind (exactly its hex digits): that row, if in scope;
 *   - NAME: the caller's own row of that name, always — for admins too,
 *     so nobody's name can stand in for the caller's own.  Images only:
 *     without an own image of that name, the public image of that name
 *     (STORE_AMBIGUOUS when several owners published one);
 *   - OWNER/NAME: the row of that user and name, if in scope (admins: any
 *     owner; members: their own, and public images).
 * A row out of scope is STORE_NOTFOUND, exactly like a missing one.
 */
#define SCOPE_ALL_BIT (UINT64_C(1) << 63)
static inline uint64_t scope_all(uint64_t caller)
{
	return caller | SCOPE_ALL_BIT;
}
#define OWNER_ANY scope_all(OWNER_ROOT)

void image_free(struct image *im);
void network_free(struct network *n);
void vm_free(struct vm *vm);
void vms_free(struct vm *v, size_t n);
void images_free(struct image *v, size_t n);
void networks_free(struct network *v, size_t n);

/* Images.  ref is an 8-hex ID, NAME or OWNER/NAME (see References above). */
/* The row in im->state ("uploading" when NULL) with im->visibility
 * ("private" when NULL), source and expect_sha256. */
int store_image_create(struct store *st, struct image *im);
int store_image_get(struct store *st, const char *ref, uint64_t scope, struct image *out);
int store_image_get_id(struct store *st, uint64_t id, struct image *out);
int store_image_list(struct store *st, uint64_t scope, struct image **out, size_t *n);
int store_image_finalize(struct store *st, uint64_t id, const char *sha256,
			 const char *format, int64_t size);
/* An import gave up: state error with the reason (no-op unless importing). */
int store_image_fail(struct store *st, uint64_t id, const char *error);
/* STORE_CONFLICT while a VM uses it. */
int store_image_delete(struct store *st, uint64_t id);
/* How many images (other than except_id) share a content hash. */
int store_image_sha_refs(struct store *st, const char *sha256, uint64_t except_id, int *count);

/* Networks.  ref is a 6-hex ID, NAME or OWNER/NAME. */
int store_network_create(struct store *st, struct network *n);
int store_network_get(struct store *st, const char *ref, uint64_t scope, struct network *out);
int store_network_list(struct store *st, uint64_t scope, struct network **out, size_t *n);
/* STORE_CONFLICT while NICs use it. */
int store_network_delete(struct store *st, uint64_t id);

/*
 * Where a network's prefixes come from (netalloc.c; issue 11, item 4).
 * A network never overlaps another network nor anything of the host
 * (routes and addresses, as net/hostnet.h reads them).
 */
struct prefix;
struct net_policy {
	const struct prefix *host;   /* the host's routes and addresses */
	size_t n_host;
	const struct prefix *pool6;  /* where /64s are allocated from */
	size_t n_pool6;
	const struct prefix *pool4;  /* where IPv4 subnets (/24) are allocated from */
	size_t n_pool4;
	bool want_ipv4;              /* n->ipv4 NULL: allocate one (else none) */
	char why[192];               /* out: what a refusal overlapped or ran out of */
};
/* In one transaction: n->ipv6 (NULL: the first free /64 of pool6) and
 * n->ipv4 (NULL: none, or the first free /24 of pool4) are checked against
 * every other network and the host, then the network is created
 * (store_network_create: n->id, n->created).  STORE_CONFLICT on an
 * overlap, STORE_FULL when a pool has nothing free; pol->why says which. */
int store_network_allocate(struct store *st, struct network *n, struct net_policy *pol);
/* The installation's own ULA /48 ("fdxx:xxxx:xxxx::/48", RFC 4193: 40
 * random bits), made on first use and kept in the store, so every host of
 * a cluster agrees: members' networks come from it when the operator
 * configured no tenant_ipv6_pool.  out: at least 64 bytes. */
int store_ula_prefix(struct store *st, char *out, size_t len);

/* SSH public keys of a user. */
struct key {
	uint64_t id;
	char *name;
	uint64_t owner;
	char *owner_name;
	char *type;       /* ssh-ed25519 | ssh-rsa | ecdsa-sha2-nistp256 | … */
	char *pubkey;     /* canonical line "TYPE BASE64[ COMMENT]" (common/sshkey.h) */
	char *fingerprint;
	int64_t created;
};

#define KEY_ID_DIGITS 8

void key_free(struct key *k);
void keys_free(struct key *v, size_t n);
/* Keys.  ref is an 8-hex ID, NAME or OWNER/NAME.  STORE_CONFLICT on a duplicate name. */
int store_key_create(struct store *st, struct key *k);
int store_key_get(struct store *st, const char *ref, uint64_t scope, struct key *out);
int store_key_list(struct store *st, uint64_t scope, struct key **out, size_t *n);
/* STORE_CONFLICT while a VM (not deleted) uses it. */
int store_key_delete(struct store *st, uint64_t id);

/* VMs.  ref is a 10-hex ID, NAME or OWNER/NAME.  VMs with desired=deleted are
 * invisible to get/list unless include_deleted. */
/* In one transaction: the row, a NIC per network, the VM's keys
 * (vm->keys[i].id), its user data (vm->user_data, may be NULL) and its
 * data disks (vm->disks). */
int store_vm_create(struct store *st, struct vm *vm, const uint64_t *networks, size_t n_networks);
int store_vm_get(struct store *st, const char *ref, uint64_t scope, struct vm *out);
int store_vm_get_id(struct store *st, uint64_t id, struct vm *out);
/* A list carries what a list shows: no user data (user_data NULL,
 * user_data_len its size) and no key material (keys[].pubkey NULL); get
 * a VM by itself for those.  Four statements, however many VMs. */
int store_vm_list(struct store *st, uint64_t scope, bool include_deleted,
		  struct vm **out, size_t *n);
/* Also takes back a forced stop (force_stop = false). */
int store_vm_set_desired(struct store *st, uint64_t id, const char *desired);
/* desired = stopped; force skips ACPI (the agent quits QEMU at once). */
int store_vm_stop(struct store *st, uint64_t id, bool force);
/* Whether the metadata service requires IMDSv2 tokens from this VM. */
int store_vm_set_metadata_tokens(struct store *st, uint64_t id, bool required);
/* Actual state as observed by the agent; error may be NULL. Does not fire the hook. */
int store_vm_set_state(struct store *st, uint64_t id, const char *state, const char *error);
/* Remove the row, its NICs, rules and key links for good (after the host
 * cleaned up); no hook. */
int store_vm_purge(struct store *st, uint64_t id);

/* NICs of an existing VM (hotplug when it runs).  The new NIC gets the
 * next index, a fresh ID and, on a network with IPv4, an address; limit
 * (NULL: none) becomes its own limits in the same transaction, so the
 * agent never sees the NIC without them. */
int store_nic_add(struct store *st, uint64_t vm_id, uint64_t network, const struct nic_limit *limit,
		  uint64_t *nic_id);
/* STORE_NOTFOUND when the VM has no such NIC. Frees its IPv4 address. */
int store_nic_remove(struct store *st, uint64_t vm_id, uint64_t nic_id);

/* Inbound firewall rules of a VM. */
struct rule {
	uint64_t id;
	uint64_t vm;
	char *proto;      /* tcp | udp | icmp | any */
	int port_lo, port_hi;  /* 0, 0 = every port */
	char *source;     /* canonical prefix or NULL = anywhere */
	int64_t created;
};

void rules_free(struct rule *v, size_t n);
int store_rule_add(struct store *st, struct rule *r);
/* vm_id 0 = the rules of every VM (for the firewall), sorted by vm, id. */
int store_rule_list(struct store *st, uint64_t vm_id, struct rule **out, size_t *n);
int store_rule_delete(struct store *st, uint64_t vm_id, uint64_t rule_id);

/* ---- routed IPv6 prefixes and public IPv4 addresses (prefixes.c) -------- */

struct pool4;

/* A routed prefix of a NIC (issue 13 §3). */
struct vm_prefix {
	char *prefix;     /* canonical "2001:db8:100:1::/64" */
	uint64_t vm;
	uint64_t nic;
	int64_t created;
};

void vm_prefixes_free(struct vm_prefix *v, size_t n);
/*
 * In one transaction: the lowest free prefix of length len in pools
 * (prefix_pool, common/addrpool.h; only those no longer than len), over-
 * lapping no prefix handed out and no network, for the NIC of a VM that
 * is not deleted.  STORE_NOTFOUND when the VM has no such NIC,
 * STORE_FULL when the pool has no room, STORE_CONFLICT when the VM already
 * has per_vm prefixes or its owner per_owner (0: no cap).
 */
int store_prefix_add(struct store *st, const struct prefix *pools, size_t n_pools, uint64_t vm, uint64_t nic,
		     unsigned len, int per_vm, int per_owner, struct vm_prefix *out);
/* vm 0 = the prefixes of every VM; sorted by VM, then address. */
int store_prefix_list(struct store *st, uint64_t vm, struct vm_prefix **out, size_t *n);
/* By its network address (canonical text); STORE_NOTFOUND when the VM has none such. */
int store_prefix_remove(struct store *st, uint64_t vm, const char *address);

/* A public IPv4 address mapped to a NIC's IPv4 address (issue 13 §4). */
struct public4 {
	char *address;
	uint64_t vm;
	char *vm_name;
	uint64_t owner;
	uint64_t nic;
	char *private_ipv4;
	int64_t created;
};

void public4s_free(struct public4 *v, size_t n);
/*
 * In one transaction: map address (NULL: the lowest free one of the pool)
 * to the NIC of a VM that is not deleted.  STORE_NOTFOUND when the VM has
 * no such NIC or it has no IPv4 address, STORE_CONFLICT when the address
 * is taken, the NIC has one already or the owner has per_owner (0: no
 * cap; admins pass 0), STORE_FULL when the pool is used up.
 */
int store_public4_attach(struct store *st, const struct pool4 *pool, uint64_t vm, uint64_t nic,
			 const char *address, int per_owner, struct public4 *out);
/* Sorted by address; scope as for VMs (OWNER_ANY: all). */
int store_public4_list(struct store *st, uint64_t scope, struct public4 **out, size_t *n);
/* STORE_NOTFOUND when the VM has no such address. */
int store_public4_detach(struct store *st, uint64_t vm, const char *address);
/* The prefixes and public IPv4 address of each NIC of vms[0 .. n) (vm
 * loading calls it: every loaded VM has them). */
int store_vm_routing_load(struct store *st, struct vm *vms, size_t n);

/* The VM a NIC belongs to (deleted VMs included: the caller decides). */
int store_vm_by_nic(struct store *st, uint64_t nic_id, struct vm *out);

/* The next value a counter would hand out (IDs below it were issued). */
int store_counter_peek(struct store *st, const char *name, uint64_t *next);

/* The owner's name for display. */
int store_user_name(struct store *st, uint64_t id, char **name);

/* ---- users and tokens (users.c) ----------------------------------------- */

/* A user of hackcloud.  auth is a comma list of backends: "file" (argon2id
 * hash in the passwd file), "ldap" (bind as the directory entry), "otp"
 * (TOTP second factor).  Users are referred to by name. */
struct user {
	uint64_t id;
	char *name;
	char *role;       /* admin | member */
	char *auth;
	bool enabled;
	bool otp;         /* a TOTP secret is enrolled */
	int64_t created;
};

void user_free(struct user *u);
void users_free(struct user *v, size_t n);
/* STORE_CONFLICT on a duplicate name. */
int store_user_create(struct store *st, struct user *u);
int store_user_get(struct store *st, const char *name, struct user *out);
int store_user_get_id(struct store *st, uint64_t id, struct user *out);
int store_user_list(struct store *st, struct user **out, size_t *n);
/* Any of role/auth may be NULL (unchanged); enabled < 0 = unchanged.
 * Disabling a user revokes its tokens in the same transaction. */
int store_user_update(struct store *st, uint64_t id, const char *role, const char *auth,
		      int enabled);
/* STORE_CONFLICT while the user owns anything; the user's tokens go too. */
int store_user_delete(struct store *st, uint64_t id);
/* The sealed TOTP secret (NULL = none) and the last accepted step. */
int store_user_otp_get(struct store *st, uint64_t id, char **sealed, int64_t *step);
/* Enrol (sealed != NULL) or remove the secret; resets the step. */
int store_user_otp_set(struct store *st, uint64_t id, const char *sealed);
/* Record `step` as used, atomically and only if it is newer than the last
 * accepted one: STORE_CONFLICT when it is not (a replayed code), even when
 * two hosts race on the same code. */
int store_user_otp_use(struct store *st, uint64_t id, int64_t step);

/* A login session.  Only the token's hash is ever stored. */
struct token {
	uint64_t id;
	uint64_t owner;
	char *owner_name;
	int64_t created;
	int64_t expires;
	char *source;     /* where the login came from, for the owner to see */
	bool owner_admin; /* the owner's role is admin (read with the token, so
			   * authenticating a request is one query) */
};

#define TOKEN_ID_DIGITS 8

void token_free(struct token *t);
void tokens_free(struct token *v, size_t n);
int store_token_create(struct store *st, struct token *t, const char *hash);
/* The live (unexpired, enabled user) token with this hash; STORE_NOTFOUND otherwise. */
int store_token_lookup(struct store *st, const char *hash, int64_t now, struct token *out);
int store_token_list(struct store *st, uint64_t scope, struct token **out, size_t *n);
/* STORE_NOTFOUND when no such token in scope. */
int store_token_delete(struct store *st, uint64_t id, uint64_t scope);
/* Drop expired tokens. */
int store_token_purge(struct store *st, int64_t now);

/* What a live token stands for: enough to authenticate a request. */
struct token_auth {
	uint64_t id;
	uint64_t owner;
	bool admin;
};
/*
 * As store_token_lookup, for authenticating requests: after the first
 * query the answer comes from a cache (store/tokencache.h) when
 * store_token_cache enabled one.  Every change this handle makes to
 * tokens or users empties it, so revocations here take effect at once;
 * those made through another handle (another host) within ttl_s.
 */
int store_token_auth(struct store *st, const char *hash, int64_t now, struct token_auth *out);
/* Cache token answers for ttl_s seconds (0: no cache). */
void store_token_cache(struct store *st, int ttl_s);
/* STORE_OK while token id is live (unexpired, its user enabled); never
 * cached: for sessions that outlive their request. */
int store_token_live(struct store *st, uint64_t id, int64_t now);
/* Revoke every token of owner except `keep` (0: all). */
int store_token_revoke_user(struct store *st, uint64_t owner, uint64_t keep);

/* ---- snapshots (snapshots.c) ------------------------------------------- */

/* A disk snapshot of a VM (issue 14 §2): one qcow2 layer per disk of the
 * VM, in the order of the rows' IDs (vm/snapshot.h).  `state` is "ready",
 * or the operation under way on it ("creating", "restoring", "deleting"):
 * while a VM has a row that is not ready, nothing starts it, and no other
 * snapshot operation begins on it.  bytes (the layers' file sizes) count
 * in the owner's disk_bytes quota. */
struct snapshot {
	uint64_t id;
	uint64_t vm;
	char *name;
	char *state;
	bool live;        /* taken while the VM ran */
	int64_t bytes;
	int64_t created;
};
void snapshot_free(struct snapshot *s);
void snapshots_free(struct snapshot *v, size_t n);
/* The VM's snapshots, oldest first (the layers' order, bottom up). */
int store_snapshot_list(struct store *st, uint64_t vm, struct snapshot **out, size_t *n);
/* ref: the 8-hex ID or the name, of that VM's snapshots only. */
int store_snapshot_get(struct store *st, uint64_t vm, const char *ref, struct snapshot *out);
/* Every snapshot not ready, of any VM (an operation a crash interrupted). */
int store_snapshot_unfinished(struct store *st, struct snapshot **out, size_t *n);
/*
 * A new snapshot s (name, vm, live, bytes: an estimate until ready) in
 * state creating; s->id and s->created are set.  Atomically checked: the
 * VM is in state `running` and desired running when s->live, else stopped
 * and desired stopped; it has no snapshot operation under way
 * (STORE_CONFLICT otherwise, also for a name it has already); bytes fit
 * the owner's disk_bytes quota (STORE_QUOTA).
 */
int store_snapshot_begin(struct store *st, struct snapshot *s);
/*
 * An operation on a ready snapshot of a stopped VM (desired stopped, no
 * operation under way; else STORE_CONFLICT): its state becomes `state`
 * (restoring | deleting).  A restore marks the VM's newer snapshots
 * deleting as well (they go with it).
 */
int store_snapshot_mark(struct store *st, uint64_t vm, uint64_t id, const char *state);
/* Done: state ready, its bytes as measured. */
int store_snapshot_ready(struct store *st, uint64_t id, int64_t bytes);
/* The row goes (a deleted snapshot, a creation rolled back). */
int store_snapshot_remove(struct store *st, uint64_t id);

/* ---- quotas (quotas.c) -------------------------------------------------- */

/* What a user may hold (issue 11, item 12).  Creates over a quota fail with
 * STORE_QUOTA in their own transaction — store_vm_create (vms, vcpus,
 * memory_mib, disk_bytes: the root disk as sized, else a disk image's
 * size, plus the data disks), store_network_create (networks),
 * store_image_create (images), store_image_finalize (image_bytes) — and
 * store_refusal names the quota. */
enum quota {
	QUOTA_VMS, QUOTA_VCPUS, QUOTA_MEMORY_MIB, QUOTA_DISK_BYTES,
	QUOTA_NETWORKS, QUOTA_IMAGES, QUOTA_IMAGE_BYTES, QUOTA_N
};
extern const char *const quota_names[QUOTA_N];   /* "vms", … as the API says them */

#define QUOTA_UNLIMITED INT64_C(-1)
#define QUOTA_DEFAULT INT64_C(-2)    /* a user's own setting: none, the default applies */
#define QUOTA_KEEP INT64_C(-3)       /* store_quota_set: leave this one as it is */

struct quota_usage {
	int64_t set[QUOTA_N];      /* the user's own: QUOTA_DEFAULT, QUOTA_UNLIMITED or N */
	int64_t limit[QUOTA_N];    /* in force: QUOTA_UNLIMITED or N */
	int64_t used[QUOTA_N];
};

/* The defaults for members without a setting of their own: QUOTA_UNLIMITED
 * or a limit (NULL: all unlimited, as after store_open).  Admins are
 * bound only by settings of their own. */
void store_set_quota_defaults(struct store *st, const int64_t defaults[QUOTA_N]);
int store_quota_get(struct store *st, uint64_t user, struct quota_usage *out);
/* Each entry QUOTA_KEEP, QUOTA_DEFAULT, QUOTA_UNLIMITED or a limit >= 0. */
int store_quota_set(struct store *st, uint64_t user, const int64_t set[QUOTA_N]);

/* ---- hosts and placement (hosts.c) -------------------------------------- */

/* A host of the cluster, with its load: what the VMs placed on it (not
 * deleted) ask for. */
struct host {
	char *name;
	char *address;    /* underlay address (VXLAN source), may be NULL */
	int cpus;
	int64_t memory_mib;
	char *accel;
	char *state;      /* live | dead */
	bool drain;       /* no new placements */
	int64_t last_seen;
	int64_t created;
	int vms;
	int used_cpus;
	int64_t used_mib;
	int drain_migrate;    /* drained with --migrate: VMs moved at once (0: not) */
	int64_t drain_started;/* when that began (unix seconds) */
};

void host_free(struct host *h);
void hosts_free(struct host *v, size_t n);
/* Insert or refresh this host (state live, last_seen now).  Fires the
 * change hook: peers follow hosts that come and go. */
int store_host_register(struct store *st, const struct host *h);
/* Refresh last_seen; a host marked dead comes back to life (hook fires).
 * last_seen is for the other hosts' schedulers (dead detection, placement
 * freshness): a host's own hcd knows it is alive without it.  So a live
 * host with no other live host registered writes nothing — a single host
 * does not write its store every heartbeat for no reader (issue 12 §6). */
int store_host_heartbeat(struct store *st, const char *name, int64_t now);
int store_host_get(struct store *st, const char *name, struct host *out);
int store_host_list(struct store *st, struct host **out, size_t *n);
/* Also ends a drain --migrate (drain_migrate = 0). */
int store_host_set_drain(struct store *st, const char *name, bool drain);
/* Drain and move its running VMs away live, `parallel` at a time (the
 * scheduler's cluster_tick requests the migrations). */
int store_host_drain_migrate(struct store *st, const char *name, int parallel);
/* Mark live hosts silent since before now - timeout as dead, except self
 * (the caller's own host: its hcd is running this; NULL: none); *n_dead
 * tells how many (hook fires when any). */
int store_hosts_mark_dead(struct store *st, int64_t now, int timeout, const char *self,
			  size_t *n_dead);

/* Placement policy: spread (the live, undrained host with the most free
 * memory that fits), or the pinned host, which must be live and fit.
 * STORE_FULL when no host fits, STORE_NOTFOUND for an unknown pin. */
struct placement {
	int cpus;
	int memory_mib;
	const char *pin;      /* host name or NULL */
	const char *avoid;    /* host name or NULL: a dead host being evacuated */
	double cpu_ratio;     /* virtual CPUs per host CPU */
	int64_t now;
	int fresh;            /* seconds: a host silent longer is not a candidate */
	const char *self;     /* the placing hcd's own host, fresh whatever its last_seen
			       * (it does not beat when alone), or NULL */
};
/* In the caller's transaction (or its own): the chosen host's name. */
int store_place(struct store *st, const struct placement *p, char **host);
/* store_vm_create on the host store_place chooses (vm->host is set),
 * in one transaction: two schedulers never both fill the same room. */
int store_vm_create_placed(struct store *st, struct vm *vm, const uint64_t *networks,
			   size_t n_networks, const struct placement *p);
/* VMs of dead hosts: ephemeral ones are placed anew (state stopped, so the
 * new host's agent starts them if they should run); the others get state
 * error until their host returns.  *moved counts the re-placed VMs. */
int store_evacuate_dead(struct store *st, double cpu_ratio, int64_t now, int fresh,
			size_t *moved);
/* Take a VM for this host's agent before starting it: STORE_NOTFOUND when
 * the VM is no longer placed here (it moved, or was deleted), so two
 * agents never both start one VM. */
int store_vm_claim(struct store *st, uint64_t id, const char *host);

/* ---- live migration (migrations.c; issue 14 §1) ------------------------- */

/* A VM's live migration (the last one): see migrations.c for its states. */
struct migration {
	uint64_t vm;
	char *source, *dest;          /* host names */
	char *source_addr, *dest_addr;/* their underlay addresses */
	char *state;      /* requested | prepared | transferring | transferred | done | failed */
	int nbd_port, mig_port;       /* on the destination's underlay address */
	char *psk;        /* the stream's TLS key (hex), NULL once over */
	char *error;
	bool source_done, dest_done;  /* each host finished its part after the end */
	int64_t created, updated;
	int64_t total_ms, downtime_ms, ram_bytes, disk_bytes; /* QEMU's figures; -1: none */
	char *log;        /* base64 of the source's serial log tail (store_migration_get) */
};

/* What the source reports when it hands over. */
struct migration_report {
	int64_t total_ms, downtime_ms, ram_bytes, disk_bytes;
	const char *log;  /* base64 of the source's serial log tail, or NULL */
};

void migration_free(struct migration *m);
void migrations_free(struct migration *v, size_t n);
/* state done or failed */
bool migration_final(const struct migration *m);
/* with_log: also the log tail. */
int store_migration_get(struct store *st, uint64_t vm, bool with_log, struct migration *out);
/* The rows host still has work for (a side whose part is not done). */
int store_migration_list(struct store *st, const char *host, struct migration **out, size_t *n);
/*
 * In one transaction: a running VM's migration to p->pin (or where
 * store_place puts it, never its own host), on the lowest free pair of
 * ports of [port_base, port_base + port_count) of that host, with the
 * stream's key psk; the VM's size counts on the destination from now.
 * STORE_CONFLICT (store_refusal says why: not running, migrating already,
 * its own host, a draining or addressless destination), STORE_FULL (no
 * host has room, no free port), STORE_NOTFOUND (no such VM or pinned host).
 */
int store_migration_request(struct store *st, uint64_t vm_id, struct placement *p, int port_base,
			    int port_count, const char *psk, struct migration *out);
/* from → to (from NULL: any state not over), conditionally: STORE_CONFLICT
 * when the row is not in from (another host took the step).  "done" also
 * moves the VM to the destination (vms.host, loads); "failed" gives the
 * destination's room back.  rep (may be NULL) records QEMU's figures and
 * the log tail; error (may be NULL) why it failed. */
int store_migration_advance(struct store *st, uint64_t vm_id, const char *from, const char *to,
			    const struct migration_report *rep, const char *error);
/* This host finished its part after the end (source or destination). */
int store_migration_side_done(struct store *st, uint64_t vm_id, bool source);
/* What the VM's running QEMU was started with (its boot memory and
 * maxcpus, issue 14 §3; 0: unknown; whether its NICs are in their PCI
 * slots): a migration's destination must be the same machine. */
int store_migration_ceilings(struct store *st, uint64_t vm, int *memory_mib, int *max_cpus,
			     bool *nic_slots);
/* Migrations from host under way. */
int store_migration_count_from(struct store *st, const char *host, int *n);
/* A host drained with --migrate (store_host_drain_migrate): in one
 * transaction, when fewer than its parallelism of migrations from it are
 * under way, request one for its next running VM (placed by tmpl's
 * policy) and say which in *vm.  STORE_NOTFOUND: nothing to do (not
 * draining so, or no VM left to move), STORE_FULL: enough under way or
 * no room; else as store_migration_request. */
int store_drain_step(struct store *st, const char *host, const struct placement *tmpl,
		     int port_base, int port_count, const char *psk, uint64_t *vm);
/* ---- resize (resize.c; issue 14 §3) ------------------------------------ */

/* A new size of a VM; 0 leaves that part as it is. */
struct vm_resize {
	int cpus;
	int memory_mib;
	double cpu_ratio;     /* its host's room: virtual CPUs per host CPU */
};
/*
 * In one transaction: the VM's vCPUs and memory, checked against its
 * owner's quotas (growth only) and its host's room, and that host's load
 * (used_cpus, used_mib) moved by the difference.  A VM without a QEMU
 * (stopped, error) takes any size, for its next start; a running one up
 * to the ceilings its QEMU started with (store_vm_ceilings_set), which
 * its agent reaches by balloon and CPU hotplug.  Refusals, with
 * store_refusal saying why: STORE_CONFLICT (starting or stopping, or
 * beyond a running VM's ceilings), STORE_QUOTA, STORE_FULL (no room on
 * its host).
 */
int store_vm_resize(struct store *st, uint64_t id, const struct vm_resize *rs);
/* A VM its agent has claimed (state starting: no resize until it runs)
 * gets the ceilings of the QEMU about to start: its memory_mib, and
 * max_cpus or its cpus when more; and run_nic_slots: that QEMU has its
 * NICs in their PCI slots.  Not a change of intent (no hook). */
int store_vm_ceilings_set(struct store *st, uint64_t id, int max_cpus);
/* A disk of a VM grown to size bytes: disk -1 is the root disk (a
 * kernel image's VM without one: STORE_NOTFOUND), 0.. its data disks.
 * Its owner's disk_bytes quota counts the growth.  STORE_CONFLICT
 * (store_refusal) when size is below the disk's size; the same size is
 * no change.  The agent grows the file (vm/resize.h). */
int store_vm_disk_grow(struct store *st, uint64_t id, int disk, int64_t size);

/* ---- observation: inventory.c, events.c, audit.c (issue 15) ------------- */

/* A VM of a host as GET /metrics sees it. */
struct inv_vm {
	uint64_t id;
	char *name;
	char *owner_name;
	char *state;
	char *desired;
	int cpus;
	int memory_mib;
	uint64_t *nics;   /* NIC IDs, in the guest's order */
	size_t n_nics;
};

void inventory_free(struct inv_vm *v, size_t n);
/* The VMs (not deleted) placed on host, or on no host, by ID. */
int store_inventory(struct store *st, const char *host, struct inv_vm **out, size_t *n);

/*
 * The event log (events.c): every committed change of a VM or a host that
 * the API shows is one row, numbered by a counter in the same transaction
 * as the change.  Transactions never overlap (store.h), so the numbers
 * follow the commits: a reader that has seen N has seen everything up to
 * N, on any host, and asking for "after N" misses nothing.
 *
 * The model functions name what they changed (store_event_touch in
 * store_internal.h); when the transaction ends, each object touched is
 * rendered once, by the function set here (the API's JSON of it, so the
 * store need not know it), and recorded — unless it reads exactly as the
 * object's last event (a write that changed nothing visible).  Then the
 * event hook runs (this handle), and the engine announces it to the
 * other processes on a channel of its own (store_events_drain).
 *
 * render(arg, st, kind, ref, action, &owner) runs inside the transaction
 * and may read the store.  It returns the event's JSON (malloc'd), or NULL
 * to record nothing (an update of a VM already deleted); *owner is who
 * may see it besides admins (OWNER_ANY: admins only).  Without a renderer
 * nothing is recorded.
 */
struct event_row {
	uint64_t seq;
	int64_t created;
	char *kind;       /* vm | host */
	char *action;     /* created | updated | deleted */
	char *ref;        /* the VM's ID, the host's name */
	uint64_t owner;   /* OWNER_ANY: admins only */
	char *data;       /* the rendered JSON */
};

typedef char *(*store_event_render_fn)(void *arg, struct store *st, const char *kind,
				       const char *ref, const char *action, uint64_t *owner);
void store_set_event_render(struct store *st, store_event_render_fn fn, void *arg);
void store_set_event_hook(struct store *st, void (*fn)(void *), void *arg);
/* Events recorded by other processes since the last call (a listener set
 * up again counts one); never blocks. */
int store_events_drain(struct store *st);
void event_rows_free(struct event_row *v, size_t n);
/* Up to limit events after seq `after`, in order. */
int store_events_after(struct store *st, uint64_t after, size_t limit, struct event_row **out,
		       size_t *n);
/* The last sequence number issued (0: none yet) and the first still kept
 * (0: none kept). */
int store_events_bounds(struct store *st, uint64_t *first, uint64_t *last);
/* Forget events recorded before `before` (unix seconds), at most max of
 * them; *n: how many went. */
int store_events_prune(struct store *st, int64_t before, size_t max, size_t *n);

/*
 * The audit trail (audit.c): one row per mutating API request, keyed by
 * the host that served it and that host's own sequence number, so a batch
 * written again (a journal replayed after a crash) adds nothing twice.
 * Never a secret: the API writes no bodies, only who, where from, what
 * (method, route pattern, the resource named) and the outcome.
 */
struct audit_entry {
	char *host;
	uint64_t seq;
	int64_t time;       /* unix seconds */
	uint64_t user;      /* OWNER_ANY: not identified */
	char *user_name;    /* as it was when recorded (read by store_audit_list) */
	char *source;       /* an address, or unix:UID */
	char *method;
	char *route;        /* the route table's pattern, "/v1/vms/{}/start" */
	char *ref;          /* the resource named, or NULL */
	int status;
	char *result;       /* "ok", or the error code answered */
};

void audit_entry_clear(struct audit_entry *e);
void audit_entries_free(struct audit_entry *v, size_t n);
/* In one transaction; the user's name is looked up as it is now. */
int store_audit_add(struct store *st, const struct audit_entry *v, size_t n);
/* The newest `limit` entries at or after `since` (unix seconds, 0: any)
 * of user (a name; NULL: everyone), oldest first. */
int store_audit_list(struct store *st, const char *user, int64_t since, size_t limit,
		     struct audit_entry **out, size_t *n);
/* Forget entries before `before`, at most max of them; *n: how many went. */
int store_audit_prune(struct store *st, int64_t before, size_t max, size_t *n);
/* The highest sequence number recorded for host (0: none). */
int store_audit_last_seq(struct store *st, const char *host, uint64_t *seq);

#endif
