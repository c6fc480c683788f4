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

int store_tx_begin(struct store *st);
/* Commits when rc == STORE_OK, else rolls back; returns rc (or STORE_ERR). */
int store_tx_end(struct store *st, int rc);

/* Next value of a named counter; STORE_FULL beyond max. In a transaction. */
int store_counter_next(struct store *st, const char *name, uint64_t max, uint64_t *out);

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

#endif
