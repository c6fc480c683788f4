/*
 * store_pg — the PostgreSQL engine (DESIGN §4): several hosts share one
 * database through libpq.  Statements arrive with the '?' placeholders the
 * SQLite engine takes and leave as $1..$n with text parameters; rows come
 * back as the same struct sval, so models.c cannot tell the engines apart.
 *
 * Invariants:
 *   - a transaction holds one cluster-wide advisory lock from BEGIN to its
 *     end: the counterpart of SQLite's BEGIN IMMEDIATE.  The model code
 *     reads, then writes what it read (the lowest free address, the next
 *     NIC index, "is it still in use?"), and is correct only when no other
 *     writer runs in between — on one host or on many;
 *   - a lost connection is re-established, with capped exponential backoff,
 *     only between transactions.  Inside one the statement fails, the caller
 *     rolls back, and the server has already dropped the half-done work;
 *   - a statement is sent again after a reconnect only when that cannot
 *     apply a change twice: the server said it did not run it, or it is a
 *     SELECT.  A write whose fate is unknown fails instead;
 *   - a change of intent is announced with NOTIFY on CHANNEL in its own
 *     transaction (pg_announce), so the server delivers it at COMMIT;
 *     a transaction that recorded events (store/events.c) also on
 *     CHANNEL_EVENTS, which only the event streams heed.
 *
 * Announcements arrive on a second connection of our own, opened on the
 * first notify_fd/drain, that does nothing but LISTEN.  On the connection
 * that runs statements they would land in libpq's queue during any query
 * (PQnotifies after each one), and its socket would then not turn
 * readable for them: hcd's poll would sleep on news already in hand.  An
 * idle listener's socket is readable exactly when something arrived.  It
 * is set up again (LISTEN included) when it breaks — the writer's
 * reconnects do not touch it — and a listener set up again counts as one
 * announcement, since it may have missed some meanwhile.  Announcements
 * of our own writer (its backend PID) are dropped: the change hook has
 * already told this process.
 *
 * The connections are used by one thread at a time (hcd's event loop).
 */
#include "store/store.h"

#include "common/fsutil.h"
#include "common/log.h"
#include "common/stats.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Advisory lock keys: fixed and distinct — "hcmigrat" and "hcwriter" in
 * ASCII, read as 64-bit numbers, unlikely to be some other program's. */
#define LOCK_MIGRATIONS "7521976102113403252"
#define LOCK_WRITER     "7521987135918073202"

/* Reconnecting: at once, then after waits doubling from 0.1 s up to 2 s,
 * for five seconds at most (a try on a silent network may itself take
 * connect_timeout) before the statement fails; the next one tries again.
 * hcd's event loop waits meanwhile: without its database it has nothing
 * better to do. */
#define RECONNECT_FIRST_MS  100
#define RECONNECT_MAX_MS    2000
#define RECONNECT_BUDGET_MS 5000

/* Type OIDs (catalog/pg_type.h, not installed with libpq; they are fixed). */
#define OID_BOOL    16
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_TEXT    25
#define OID_NUMERIC 1700

#define MAX_COLS 32

/* One channel per database: every hcd on it hears every change. */
#define CHANNEL "hackcloud"
/* The event log's (events.c): only the API's streams listen to it, so an
 * agent's observed state, recorded as an event, wakes no other agent. */
#define CHANNEL_EVENTS "hackcloud_events"

struct pg {
	PGconn *conn;
	bool in_tx;
	char *uri;              /* for the listener's own connection */
	PGconn *listener;       /* NULL until first asked for, or while down */
	bool listened;          /* a LISTEN succeeded before: a new one may have missed news */
	int missed;             /* listeners set up again since the last drain */
	int missed_events;      /* the same, for the event log's drain */
	int heard, heard_events;/* announcements read and not drained yet, per channel */
	long long listen_retry; /* ms: no new try before (after a failure) */
	int listen_delay;       /* ms: the wait after the next failure */
};

/* libpq's messages end in a newline and may span lines: one log line. */
static char *one_line(const char *prefix, const char *msg)
{
	char *s = str_printf("%s%s", prefix, msg ? msg : "");
	size_t len;

	if (s == NULL)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	len = strlen(s);
	while (len > 0 && s[len - 1] == ' ')
		s[--len] = '\0';
	return s;
}

/* Server notices ("relation already exists, skipping") are not errors;
 * libpq would print them to stderr. */
static void pg_notice(void *arg, const char *msg)
{
	char *line = one_line("store: postgresql: ", msg);

	(void)arg;
	log_debug("%s", line ? line : "notice");
	free(line);
}

/* A new connection; NULL and *err when it cannot be made.  Array entries
 * before the URI are defaults that the URI may override; a server that
 * does not answer fails in five seconds. */
static PGconn *pg_connect(const char *uri, const char *app, char **err)
{
	const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *const vals[] = { "5", app, uri, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		/* The message names host and port, never the password. */
		*err = one_line("postgresql: ", conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, pg_notice, NULL);
	return conn;
}

static void *pg_open(const char *uri, char **err)
{
	struct pg *pg = calloc(1, sizeof(*pg));

	if (pg == NULL || (pg->uri = strdup(uri)) == NULL) {
		free(pg);
		*err = strdup("out of memory");
		return NULL;
	}
	pg->conn = pg_connect(uri, "hcd", err);
	if (pg->conn == NULL) {
		free(pg->uri);
		free(pg);
		return NULL;
	}
	return pg;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pg_reconnect(struct pg *pg, char **err)
{
	long long start = now_ms();
	int delay = RECONNECT_FIRST_MS;

	for (;;) {
		PQreset(pg->conn);
		if (PQstatus(pg->conn) == CONNECTION_OK) {
			/* Not an error, but worth a line.  Nothing this session
			 * held needs setting up again: LISTEN lives on the
			 * listener's own connection, which mends itself. */
			log_warn("store: postgresql connection lost; reconnected");
			stat_inc(STAT_STORE_RECONNECTS);
			return STORE_OK;
		}
		if (now_ms() - start + delay > RECONNECT_BUDGET_MS)
			break;
		sleep_ms(delay);
		delay = delay * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : delay * 2;
	}
	*err = one_line("postgresql: cannot reconnect: ", PQerrorMessage(pg->conn));
	return STORE_ERR;
}

/*
 * Make the connection usable for the next statement.  A server that went
 * away while we were idle (a restart, an administrator) has already sent
 * its farewell and closed: reading that now — without blocking; libpq's
 * socket is non-blocking — marks the connection bad before a statement is
 * wasted on it.  The farewell itself reaches pg_notice.
 */
static int pg_ready(struct pg *pg, char **err)
{
	if (PQstatus(pg->conn) == CONNECTION_OK && PQconsumeInput(pg->conn)) {
		(void)PQisBusy(pg->conn);
		(void)PQconsumeInput(pg->conn);
	}
	if (PQstatus(pg->conn) == CONNECTION_OK)
		return STORE_OK;
	if (pg->in_tx) {
		*err = strdup("postgresql: connection lost inside a transaction");
		return STORE_ERR;
	}
	return pg_reconnect(pg, err);
}

/*
 * After a statement failed with the connection gone: may it be sent again
 * on a new connection?  Yes when the server reported why it ended the
 * session (SQLSTATE class 57, operator intervention, or 08, connection
 * exception): it did not run or did not commit the statement.  Yes for a
 * SELECT, which changes nothing (or, like pg_advisory_lock, takes what a
 * new session must take again).  Otherwise the statement may have been
 * committed just before the connection broke.
 */
static bool pg_rerun_safe(const PGresult *res, const char *sql)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (state && (strncmp(state, "57", 2) == 0 || strncmp(state, "08", 2) == 0))
		return true;
	sql += strspn(sql, " \t\n");
	return strncasecmp(sql, "SELECT", 6) == 0;
}

/* '?' becomes $1, $2, … except inside '…' literals and "…" identifiers
 * (a doubled quote inside them toggles twice, so it needs no care).
 * NULL when out of memory. */
static char *pg_placeholders(const char *sql, int *count)
{
	size_t marks = 0, size;
	char *out, *o, quote = 0;
	int n = 0;

	for (const char *p = sql; *p; p++)
		marks += *p == '?';
	/* "$" and up to 10 digits in place of each '?'. */
	size = strlen(sql) + marks * 10 + 1;
	out = malloc(size);
	if (out == NULL)
		return NULL;
	o = out;
	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?') {
			o += snprintf(o, size - (size_t)(o - out), "$%d", ++n);
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	*count = n;
	return out;
}

/*
 * Send one statement.  Parameters go as text with their type: bigint for
 * integers (so "? = -1" compares as bigint and IDs above 2^31 fit), text
 * for strings, and a NULL's type is left to the server to infer.
 */
static PGresult *pg_send(struct pg *pg, const char *sql, const struct sval *params, int n)
{
	const char **values = NULL;
	Oid *types = NULL;
	char (*ints)[24] = NULL;
	PGresult *res = NULL;

	if (n > 0) {
		values = calloc((size_t)n, sizeof(*values));
		types = calloc((size_t)n, sizeof(*types));
		ints = calloc((size_t)n, sizeof(*ints));
	}
	if (n == 0 || (values && types && ints)) {
		for (int i = 0; i < n; i++) {
			switch (params[i].t) {
			case SV_NULL:
				break;
			case SV_INT:
				snprintf(ints[i], sizeof(ints[i]), "%lld", (long long)params[i].i);
				values[i] = ints[i];
				types[i] = OID_INT8;
				break;
			case SV_TEXT:
				values[i] = params[i].s;
				types[i] = OID_TEXT;
				break;
			}
		}
		res = PQexecParams(pg->conn, sql, n, types, values, NULL, NULL, 0);
	}
	free(values);
	free(types);
	free(ints);
	return res;
}

/* Integers, booleans (as 0/1) and integral numerics (what SUM() of a
 * bigint returns) are SV_INT, as SQLite gives them; the rest is text. */
static struct sval pg_value(const PGresult *res, int row, int col, Oid type)
{
	const char *s = PQgetvalue(res, row, col);
	char *end;
	long long v;

	if (PQgetisnull(res, row, col))
		return (struct sval){ .t = SV_NULL };
	switch (type) {
	case OID_BOOL:
		return SV_I(s[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_NUMERIC:
		errno = 0;
		v = strtoll(s, &end, 10);
		if (end != s && *end == '\0' && errno == 0)
			return SV_I(v);
		break;
	default:
		break;
	}
	return (struct sval){ .t = SV_TEXT, .s = s };
}

static void pg_rows(const PGresult *res, store_row_fn fn, void *arg)
{
	struct sval cols[MAX_COLS];
	Oid types[MAX_COLS];
	int nc = PQnfields(res);

	if (nc > MAX_COLS)
		nc = MAX_COLS;
	for (int c = 0; c < nc; c++)
		types[c] = PQftype(res, c);
	for (int r = 0; r < PQntuples(res); r++) {
		for (int c = 0; c < nc; c++)
			cols[c] = pg_value(res, r, c, types[c]);
		if (fn(arg, cols, nc) != 0)
			break;
	}
}

/* Class 23, integrity constraint violation — unique (23505), foreign key
 * (23503), not null, check — is what SQLite reports as SQLITE_CONSTRAINT. */
static int pg_error(struct pg *pg, const PGresult *res, const char *sql, char **err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char *line = one_line("", msg ? msg : PQerrorMessage(pg->conn));

	*err = str_printf("%s (in: %s)", line ? line : "failed", sql);
	free(line);
	return state && strncmp(state, "23", 2) == 0 ? STORE_CONFLICT : STORE_ERR;
}

static int pg_exec(void *h, const char *sql, const struct sval *params, int n,
		   store_row_fn fn, void *arg, char **err)
{
	struct pg *pg = h;
	PGresult *res = NULL;
	int count = 0, rc;
	char *text = pg_placeholders(sql, &count);

	if (text == NULL) {
		*err = strdup("out of memory");
		return STORE_ERR;
	}
	if (count != n) {
		*err = str_printf("%d placeholders, %d parameters (in: %s)", count, n, sql);
		free(text);
		return STORE_ERR;
	}
	rc = pg_ready(pg, err);
	if (rc == STORE_OK) {
		res = pg_send(pg, text, params, n);
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && PQstatus(pg->conn) == CONNECTION_BAD &&
		    !pg->in_tx && pg_rerun_safe(res, sql)) {
			PQclear(res);
			res = NULL;
			rc = pg_reconnect(pg, err);
			if (rc == STORE_OK)
				res = pg_send(pg, text, params, n);
		}
	}
	if (rc == STORE_OK) {
		switch (PQresultStatus(res)) {
		case PGRES_TUPLES_OK:
			if (fn)
				pg_rows(res, fn, arg);
			break;
		case PGRES_COMMAND_OK:
			break;
		default:
			rc = pg_error(pg, res, sql, err);
			break;
		}
	}
	PQclear(res);
	free(text);
	return rc;
}

/*
 * READ COMMITTED, with the writer lock taken first: every later statement
 * takes a fresh snapshot and so sees every transaction committed before the
 * lock was granted.  (REPEATABLE READ would pin a snapshot taken before the
 * lock — stale by exactly the writer we waited for.)
 */
static int pg_begin(void *h, char **err)
{
	static const char sql[] = "BEGIN ISOLATION LEVEL READ COMMITTED;"
				  " SELECT pg_advisory_xact_lock(" LOCK_WRITER ")";
	struct pg *pg = h;
	PGresult *res;

	if (pg_ready(pg, err) != STORE_OK)
		return STORE_ERR;
	res = PQexec(pg->conn, sql);
	/* Beginning applies nothing: on a connection that just broke, again. */
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQstatus(pg->conn) == CONNECTION_BAD) {
		PQclear(res);
		if (pg_reconnect(pg, err) != STORE_OK)
			return STORE_ERR;
		res = PQexec(pg->conn, sql);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_error(pg, res, "BEGIN", err);
		PQclear(res);
		if (PQstatus(pg->conn) == CONNECTION_OK)
			PQclear(PQexec(pg->conn, "ROLLBACK"));
		return STORE_ERR;
	}
	PQclear(res);
	pg->in_tx = true;
	return STORE_OK;
}

static int pg_commit(void *h, char **err)
{
	struct pg *pg = h;
	PGresult *res = PQexec(pg->conn, "COMMIT");
	int rc = STORE_OK;

	/* The transaction is over whatever the answer.  COMMIT of a
	 * transaction that had failed answers "ROLLBACK", not an error. */
	pg->in_tx = false;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		if (PQstatus(pg->conn) == CONNECTION_BAD)
			*err = strdup("postgresql: connection lost during COMMIT; the outcome is unknown");
		else
			pg_error(pg, res, "COMMIT", err);
		rc = STORE_ERR;
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		*err = strdup("postgresql: the transaction had failed and was rolled back");
		rc = STORE_ERR;
	}
	PQclear(res);
	return rc;
}

static void pg_rollback(void *h)
{
	struct pg *pg = h;

	/* On a broken connection the server has rolled back already. */
	if (pg->in_tx && PQstatus(pg->conn) == CONNECTION_OK)
		PQclear(PQexec(pg->conn, "ROLLBACK"));
	pg->in_tx = false;
}

/* A session lock: held across the migration's transactions, and released
 * by the server if this process dies halfway. */
static int pg_lock_migrations(void *h, bool lock, char **err)
{
	return pg_exec(h, lock ? "SELECT pg_advisory_lock(" LOCK_MIGRATIONS ")"
			       : "SELECT pg_advisory_unlock(" LOCK_MIGRATIONS ")",
		       NULL, 0, NULL, NULL, err);
}

/* ---- announcements ------------------------------------------------------ */

/* NOTIFY takes no parameters; pg_notify() does, so the payload needs no
 * quoting. */
static int pg_announce(void *h, const char *what, char **err)
{
	struct sval p[] = { SV_S(what ? what : "") };

	return pg_exec(h, "SELECT pg_notify('" CHANNEL "', ?)", p, 1, NULL, NULL, err);
}

/*
 * A listening connection, made (again) when there is none.  After a
 * failure the next try waits, doubling from RECONNECT_FIRST_MS up to
 * RECONNECT_MAX_MS: the caller asks on every turn of its loop.  Logged
 * once per outage, not per try.
 */
static bool pg_listener_ensure(struct pg *pg)
{
	char *err = NULL;
	PGresult *res;

	if (pg->listener && PQstatus(pg->listener) == CONNECTION_OK)
		return true;
	if (pg->listener) {
		PQfinish(pg->listener);
		pg->listener = NULL;
	}
	if (now_ms() < pg->listen_retry)
		return false;
	pg->listener = pg_connect(pg->uri, "hcd-listen", &err);
	res = pg->listener ? PQexec(pg->listener, "LISTEN " CHANNEL "; LISTEN " CHANNEL_EVENTS) : NULL;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		if (err == NULL)
			err = one_line("postgresql: LISTEN: ", PQerrorMessage(pg->listener));
		if (pg->listen_delay == 0)
			log_warn("store: cannot listen for changes of other hosts: %s; retrying",
				 err ? err : "failed");
		pg->listen_delay = pg->listen_delay == 0 ? RECONNECT_FIRST_MS
			: pg->listen_delay * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
			: pg->listen_delay * 2;
		pg->listen_retry = now_ms() + pg->listen_delay;
		PQclear(res);
		PQfinish(pg->listener);
		pg->listener = NULL;
		free(err);
		return false;
	}
	PQclear(res);
	if (pg->listened) {
		log_warn("store: listening for changes of other hosts again");
		stat_inc(STAT_STORE_RECONNECTS);
		pg->missed++;
		pg->missed_events++;
	}
	pg->listened = true;
	pg->listen_delay = 0;
	pg->listen_retry = 0;
	return true;
}

static int pg_notify_fd(void *h)
{
	struct pg *pg = h;

	return pg_listener_ensure(pg) ? PQsocket(pg->listener) : -1;
}

/* Read what arrived (never blocks) and count it per channel. */
static void pg_listen_read(struct pg *pg)
{
	PGnotify *n;
	int self;

	/* PQconsumeInput reads what the socket holds without blocking; it
	 * fails when the connection broke (its socket then reads as EOF, so
	 * it is dropped here, not polled again). */
	if (pg_listener_ensure(pg) &&
	    (!PQconsumeInput(pg->listener) || PQstatus(pg->listener) != CONNECTION_OK)) {
		PQfinish(pg->listener);
		pg->listener = NULL;
		pg_listener_ensure(pg);
	}
	if (pg->listener == NULL)
		return;
	self = PQbackendPID(pg->conn);
	while ((n = PQnotifies(pg->listener)) != NULL) {
		bool events = strcmp(n->relname, CHANNEL_EVENTS) == 0;
		if (n->be_pid != self) {
			if (!events)
				log_debug("store: change announced by backend %d: %s", n->be_pid,
					  n->extra && n->extra[0] ? n->extra : "(unnamed)");
			if (events)
				pg->heard_events++;
			else
				pg->heard++;
		}
		PQfreemem(n);
	}
}

/* What one channel heard since its last drain (a listener set up again
 * counts one: it may have missed some). */
static int pg_drain(struct pg *pg, int *missed, int *heard)
{
	int count;

	pg_listen_read(pg);
	count = *missed + *heard;
	*missed = *heard = 0;
	return count;
}

static int pg_notify_drain(void *h)
{
	struct pg *pg = h;

	return pg_drain(pg, &pg->missed, &pg->heard);
}

static int pg_announce_events(void *h, const char *what, char **err)
{
	struct sval p[] = { SV_S(what ? what : "") };

	return pg_exec(h, "SELECT pg_notify('" CHANNEL_EVENTS "', ?)", p, 1, NULL, NULL, err);
}

static int pg_events_drain(void *h)
{
	struct pg *pg = h;

	return pg_drain(pg, &pg->missed_events, &pg->heard_events);
}

static void pg_close(void *h)
{
	struct pg *pg = h;

	if (pg == NULL)
		return;
	PQfinish(pg->listener);
	PQfinish(pg->conn);
	free(pg->uri);
	free(pg);
}

const struct store_engine store_engine_pg = {
	.name = "postgresql",
	.open = pg_open,
	.exec = pg_exec,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.close = pg_close,
	.lock_migrations = pg_lock_migrations,
	.announce = pg_announce,
	.notify_fd = pg_notify_fd,
	.notify_drain = pg_notify_drain,
	.announce_events = pg_announce_events,
	.events_drain = pg_events_drain,
};
