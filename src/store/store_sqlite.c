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
#include <stdlib.h>
#include <string.h>

static void *sq_open(const char *path, char **err)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*err = str_printf("sqlite %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
			  " PRAGMA synchronous=FULL;", NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		*err = str_printf("sqlite %s: %s", path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int sq_exec(void *h, const char *sql, const struct sval *params, int n,
		   store_row_fn fn, void *arg, char **err)
{
	sqlite3 *db = h;
	sqlite3_stmt *stmt = NULL;
	struct sval cols[32];
	int rc, result = STORE_OK;

	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		*err = str_printf("%s (in: %s)", sqlite3_errmsg(db), sql);
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
		int ext = sqlite3_extended_errcode(db);
		result = (rc == SQLITE_CONSTRAINT || (ext & 0xff) == SQLITE_CONSTRAINT)
			 ? STORE_CONFLICT : STORE_ERR;
		*err = str_printf("%s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(stmt);
	return result;
}

static int sq_simple(void *h, const char *sql, char **err)
{
	char *msg = NULL;

	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*err = str_printf("%s: %s", sql, msg ? msg : "failed");
		sqlite3_free(msg);
		return STORE_ERR;
	}
	return STORE_OK;
}

/* IMMEDIATE takes the write lock up front: a read-then-write transaction
 * never has to be retried halfway because another writer came first. */
static int sq_begin(void *h, char **err)  { return sq_simple(h, "BEGIN IMMEDIATE", err); }
static int sq_commit(void *h, char **err) { return sq_simple(h, "COMMIT", err); }

static void sq_rollback(void *h)
{
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_close(void *h)
{
	sqlite3_close(h);
}

const struct store_engine store_engine_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.exec = sq_exec,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.close = sq_close,
};
