/*
 * store_sqlite — the embedded engine: one SQLite file in WAL mode with
 * foreign keys on and a busy timeout, so the CLI's direct reads and the
 * daemon's writes never fail on a lock that would clear in a moment.
 *
 * Durability: synchronous=FULL, so every COMMIT has fsync'ed the WAL
 * before it returns — and the API answers only after its transaction
 * committed (issue 11, item 11).  NORMAL would sync only at checkpoints:
 * a revoke, a disable or a delete already answered could be undone by a
 * power cut.
 */
#include "store/store.h"

#include "common/fsutil.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Prepared statements are kept, keyed by their SQL text: the model code
 * runs the same few dozen statements over and over (a GET of a VM is four
 * of them), and preparing is most of what a small query costs.  An open
 * hash table of STMT_SLOTS; a statement in use (a row callback running
 * the same SQL again) is not shared: that caller gets a fresh one.  Every
 * statement is reset as soon as its rows are read, so none holds a read
 * snapshot open between calls.
 */
#define STMT_SLOTS 256
#define STMT_PROBE 8

struct stmt_slot {
	char *sql;
	uint64_t hash;
	sqlite3_stmt *stmt;
	bool busy;
};

/* Most SQL texts are string literals: their address finds their slot
 * without hashing the text (the text is still compared: a buffer on the
 * stack may hold another statement next time). */
#define FAST_SLOTS 128

struct sq {
	sqlite3 *db;
	struct stmt_slot slots[STMT_SLOTS];
	struct { const char *sql; struct stmt_slot *slot; } fast[FAST_SLOTS];
};

static uint64_t sql_hash(const char *sql)
{
	uint64_t h = 14695981039346656037ULL;    /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static void *sq_open(const char *path, char **err)
{
	struct sq *q = calloc(1, sizeof(*q));
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	if (q == NULL) {
		*err = str_printf("sqlite %s: out of memory", path);
		return NULL;
	}
	/* Memory statistics cost a global mutex per allocation; nothing reads
	 * them.  Only possible before SQLite initialises (later calls are
	 * refused, harmlessly). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* One thread per handle (hcd's loop; workers never touch the store):
	 * no mutex around every call. */
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*err = str_printf("sqlite %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		free(q);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
			  " PRAGMA synchronous=FULL;", NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		*err = str_printf("sqlite %s: %s", path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		sqlite3_close(db);
		free(q);
		return NULL;
	}
	q->db = db;
	return q;
}

static sqlite3_stmt *stmt_find(struct sq *q, const char *sql, struct stmt_slot **slot);

/* The kept statement for sql (*slot set), or a fresh one to finalize
 * after use (*slot NULL).  NULL when sql does not prepare. */
static sqlite3_stmt *stmt_get(struct sq *q, const char *sql, struct stmt_slot **slot)
{
	unsigned f = (unsigned)(((uintptr_t)sql >> 3) % FAST_SLOTS);
	struct stmt_slot *e = q->fast[f].slot;

	if (q->fast[f].sql == sql && e && e->sql && !e->busy && strcmp(e->sql, sql) == 0) {
		e->busy = true;
		*slot = e;
		return e->stmt;
	}
	sqlite3_stmt *stmt = stmt_find(q, sql, slot);
	if (*slot) {
		q->fast[f].sql = sql;
		q->fast[f].slot = *slot;
	}
	return stmt;
}

static sqlite3_stmt *stmt_find(struct sq *q, const char *sql, struct stmt_slot **slot)
{
	uint64_t h = sql_hash(sql);
	struct stmt_slot *empty = NULL, *idle = NULL;
	sqlite3_stmt *stmt = NULL;
	bool shared = true;

	*slot = NULL;
	for (unsigned k = 0; k < STMT_PROBE; k++) {
		struct stmt_slot *e = &q->slots[(h + k) % STMT_SLOTS];
		if (e->sql && e->hash == h && strcmp(e->sql, sql) == 0) {
			if (e->busy) {
				shared = false;         /* in use further up the stack */
				break;
			}
			e->busy = true;
			*slot = e;
			return e->stmt;
		}
		if (e->sql == NULL && empty == NULL)
			empty = e;
		else if (e->sql && !e->busy && idle == NULL)
			idle = e;
	}
	if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
		return NULL;
	struct stmt_slot *e = empty ? empty : idle;
	if (!shared || e == NULL)
		return stmt;
	/* A full window gives up the statement of another SQL text. */
	if (e->sql) {
		sqlite3_finalize(e->stmt);
		free(e->sql);
	}
	*e = (struct stmt_slot){ .sql = strdup(sql), .hash = h, .stmt = stmt, .busy = true };
	if (e->sql == NULL) {
		e->stmt = NULL;
		e->busy = false;
		return stmt;
	}
	*slot = e;
	return stmt;
}

static void stmt_put(sqlite3_stmt *stmt, struct stmt_slot *slot)
{
	if (slot == NULL) {
		sqlite3_finalize(stmt);
		return;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	slot->busy = false;
}

static int sq_exec(void *h, const char *sql, const struct sval *params, int n,
		   store_row_fn fn, void *arg, char **err)
{
	struct sq *q = h;
	struct stmt_slot *slot;
	sqlite3_stmt *stmt;
	struct sval cols[32];
	int rc, result = STORE_OK;

	stmt = stmt_get(q, sql, &slot);
	if (stmt == NULL) {
		*err = str_printf("%s (in: %s)", sqlite3_errmsg(q->db), sql);
		return STORE_ERR;
	}
	for (int i = 0; i < n; i++) {
		switch (params[i].t) {
		case SV_NULL: sqlite3_bind_null(stmt, i + 1); break;
		case SV_INT:  sqlite3_bind_int64(stmt, i + 1, params[i].i); break;
		case SV_TEXT: sqlite3_bind_text(stmt, i + 1, params[i].s, -1, SQLITE_STATIC); break;
		}
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int nc = sqlite3_column_count(stmt);
		if (nc > 32)
			nc = 32;
		for (int c = 0; c < nc; c++) {
			switch (sqlite3_column_type(stmt, c)) {
			case SQLITE_NULL:
				cols[c] = (struct sval){ .t = SV_NULL };
				break;
			case SQLITE_INTEGER:
				cols[c] = (struct sval){ .t = SV_INT, .i = sqlite3_column_int64(stmt, c) };
				break;
			default:
				cols[c] = (struct sval){ .t = SV_TEXT,
					.s = (const char *)sqlite3_column_text(stmt, c) };
				break;
			}
		}
		if (fn && fn(arg, cols, nc) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(q->db);
		result = (rc == SQLITE_CONSTRAINT || (ext & 0xff) == SQLITE_CONSTRAINT)
			 ? STORE_CONFLICT : STORE_ERR;
		*err = str_printf("%s", sqlite3_errmsg(q->db));
	}
	stmt_put(stmt, slot);
	return result;
}

static int sq_simple(void *h, const char *sql, char **err)
{
	struct sq *q = h;
	char *msg = NULL;

	if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*err = str_printf("%s: %s", sql, msg ? msg : "failed");
		sqlite3_free(msg);
		return STORE_ERR;
	}
	return STORE_OK;
}

/* IMMEDIATE takes the write lock up front: a read-then-write transaction
 * never has to be retried halfway because another writer came first. */
static int sq_begin(void *h, char **err)  { return sq_simple(h, "BEGIN IMMEDIATE", err); }
/* Kept statements: these run for every snapshot of reads. */
static int sq_read_begin(void *h, char **err) { return sq_exec(h, "BEGIN", NULL, 0, NULL, NULL, err); }
static int sq_commit(void *h, char **err) { return sq_exec(h, "COMMIT", NULL, 0, NULL, NULL, err); }

static void sq_rollback(void *h)
{
	sqlite3_exec(((struct sq *)h)->db, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_close(void *h)
{
	struct sq *q = h;

	for (unsigned i = 0; i < STMT_SLOTS; i++) {
		sqlite3_finalize(q->slots[i].stmt);
		free(q->slots[i].sql);
	}
	sqlite3_close(q->db);
	free(q);
}

const struct store_engine store_engine_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.exec = sq_exec,
	.begin = sq_begin,
	.commit = sq_commit,
	.read_begin = sq_read_begin,
	.rollback = sq_rollback,
	.close = sq_close,
};
