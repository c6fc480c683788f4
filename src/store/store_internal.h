/*
 * store_internal — what models.c needs from store.c: running statements
 * through the engine with errors logged once, transactions, counters.
 */
#ifndef HC_STORE_INTERNAL_H
#define HC_STORE_INTERNAL_H

#include "store/store.h"

struct store {
	const struct store_engine *eng;
	void *h;
	void (*hook)(void *);
	void *hook_arg;
	int depth;            /* nesting of store_tx_begin */
	bool reading;         /* store_read_begin's snapshot is open */
	bool dirty;           /* a write happened in the current transaction */
	/* The tables store_w wrote in it, comma-separated: the payload of
	 * its announcement, for listeners' logs (advisory: a write that only
	 * set `dirty` adds nothing, a name that does not fit is left out). */
	char changed[96];
	/* What bearer tokens stand for (users.c; NULL: not cached). */
	struct tokencache *tokens;

	/* What store_refusal returns: set with STORE_QUOTA. */
	char refusal[192];
	int64_t quota_default[QUOTA_N];   /* store_set_quota_defaults */
	/* The event log (events.c): objects the open transaction changed,
	 * rendered and recorded when it ends. */
	struct event_touch *touched;
	size_t n_touched, cap_touched;
	store_event_render_fn event_render;
	void *event_render_arg;
	void (*event_hook)(void *);
	void *event_hook_arg;
};

/* events.c: an object the transaction changed, as the API shows it. */
struct event_touch {
	char kind[8];
	char ref[72];
	char action[8];
};

/* Run one statement; engine errors are logged here. */
int store_q(struct store *st, const char *sql, const struct sval *p, int n,
	    store_row_fn fn, void *arg);
/* Run a write of intent: the change hook fires and the change is
 * announced when its transaction commits (outside one, it gets its own). */
int store_w(struct store *st, const char *sql, const struct sval *p, int n);
/* Run one statement that returns a row per row it touched (RETURNING) in
 * a transaction of its own (or the caller's); *rows counts them.  For the
 * conditional updates whose outcome is "did it apply". */
int store_q_count(struct store *st, const char *sql, const struct sval *p, int n, size_t *rows);
/* A write made with store_q (to read rows back) that turned out to change
 * intent after all: fire the hook and announce `table` at commit. */
void store_mark_changed(struct store *st, const char *table);

/* Migration step `version` (1-based) of store.c: its SQL (NULL past the
 * last), and its statements run in the open transaction, without
 * recording the version (tests re-run one over older rows). */
const char *store_schema_sql(int version);
int store_schema_step(struct store *st, int version);

int store_tx_begin(struct store *st);
/* Commits when rc == STORE_OK, else rolls back; returns rc (or STORE_ERR). */
int store_tx_end(struct store *st, int rc);

/* events.c.  Name an object (kind "vm" with its ID, "host" with its
 * name) the open transaction changes; action "created", "updated" or
 * "deleted" (the strongest of several touches wins).  Outside a
 * transaction it is ignored: every change of a VM or host runs in one. */
void store_event_touch(struct store *st, const char *kind, const char *ref, const char *action);
/* The same for a VM, by ID. */
void store_event_vm(struct store *st, uint64_t id, const char *action);
/* Before the outermost commit: record the touched objects (STORE_OK or
 * the failure that must roll the transaction back); *recorded: how many. */
int store_events_flush(struct store *st, size_t *recorded);
/* The transaction ended without a commit: forget what it touched. */
void store_events_forget(struct store *st);

/* Next value of a named counter; STORE_FULL beyond max. In a transaction. */
int store_counter_next(struct store *st, const char *name, uint64_t max, uint64_t *out);

/* quotas.c: may owner hold add[q] more of each quota?  STORE_QUOTA (and
 * st->refusal) when not.  In the transaction that creates it. */
int quota_admit(struct store *st, uint64_t owner, const int64_t add[QUOTA_N]);
/* models.c: quota_admit for a new VM (itself, its vCPUs, memory, disks). */
int vm_admit(struct store *st, const struct vm *vm);

/* hosts.c: a host's load (hosts.vms, used_cpus, used_mib), in the
 * caller's transaction.  host_load_add: sign +1/-1 of one VM of that size
 * (host NULL: none).  host_load_vm: before the VM row's desired state
 * becomes `next` (NULL: before the row is removed) — the load changes
 * when the VM crosses "deleted". */
int host_load_add(struct store *st, const char *host, int sign, int64_t cpus, int64_t mib);
int host_load_vm(struct store *st, uint64_t vm_id, const char *next);

/* Row helpers. */
/* Collects result rows into a growing array of elem-sized structs. */
struct rows {
	void *v;
	size_t n, cap, elem;
	void (*fill)(void *elem, const struct sval *c);
};
int rows_add(void *arg, const struct sval *c, int ncols);
/* A ref is an ID when it is exactly `digits` lowercase hex digits. */
bool ref_as_id(const char *ref, size_t digits, uint64_t *id);
/* Scope clause parameter: OWNER_ANY matches every owner. */
struct sval scope_param(uint64_t scope);
int64_t store_now(void);
char *sv_strdup(const struct sval *v);
int store_row_int(void *arg, const struct sval *cols, int ncols);
/* The first column of the first row, strdup'd into *(char **)arg. */
int store_row_str(void *arg, const struct sval *cols, int ncols);

#endif
