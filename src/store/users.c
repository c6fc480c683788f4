/*
 * users — users, their TOTP enrolment and their login tokens in the store.
 * None of this is intent the agent acts on, so writes here go through
 * store_q and never wake the reconciler.
 *
 * The token cache (tokencache.h) is emptied by every write here that can
 * end a token or change what it stands for (role, enabled, deletion), in
 * the same call, before the caller hears of the result.
 */
#include "store/store_internal.h"
#include "store/tokencache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Tokens remembered at once; the table is a few hundred KiB. */
#define TOKEN_CACHE_SLOTS 4096

static void tokens_changed(struct store *st)
{
	tokencache_flush(st->tokens);
}

/* ---- users -------------------------------------------------------------- */

void user_free(struct user *u)
{
	if (!u)
		return;
	free(u->name);
	free(u->role);
	free(u->auth);
	memset(u, 0, sizeof(*u));
}

void users_free(struct user *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		user_free(&v[i]);
	free(v);
}

#define USER_COLS "x.id, x.name, x.role, x.auth, x.enabled, x.otp_secret IS NOT NULL," \
	" x.created FROM users x"

static void fill_user(void *e, const struct sval *c)
{
	struct user *u = e;

	u->id = (uint64_t)c[0].i;
	u->name = sv_strdup(&c[1]);
	u->role = sv_strdup(&c[2]);
	u->auth = sv_strdup(&c[3]);
	u->enabled = c[4].i != 0;
	u->otp = c[5].i != 0;
	u->created = c[6].i;
}

static int user_one(struct store *st, const char *where, const struct sval *p, int n,
		    struct user *out)
{
	struct rows r = { .elem = sizeof(struct user), .fill = fill_user };
	char sql[256];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT " USER_COLS " WHERE %s", where);
	rc = store_q(st, sql, p, n, rows_add, &r);
	if (rc == STORE_OK && r.n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		*out = ((struct user *)r.v)[0];
	for (size_t i = rc == STORE_OK ? 1 : 0; i < r.n; i++)
		user_free(&((struct user *)r.v)[i]);
	free(r.v);
	return rc;
}

int store_user_get(struct store *st, const char *name, struct user *out)
{
	return user_one(st, "x.name = ?", &SV_S(name), 1, out);
}

int store_user_get_id(struct store *st, uint64_t id, struct user *out)
{
	return user_one(st, "x.id = ?", &SV_I(id), 1, out);
}

int store_user_list(struct store *st, struct user **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct user), .fill = fill_user };
	int rc = store_q(st, "SELECT " USER_COLS " ORDER BY x.id", NULL, 0, rows_add, &r);

	if (rc != STORE_OK) {
		users_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_user_create(struct store *st, struct user *u)
{
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_counter_next(st, "user", UINT32_MAX, &u->id);
	u->created = store_now();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(u->id), SV_S(u->name), SV_S(u->role), SV_S(u->auth),
				    SV_I(u->enabled), SV_I(u->created) };
		rc = store_q(st, "INSERT INTO users (id, name, role, auth, enabled, created)"
			     " VALUES (?, ?, ?, ?, ?, ?)", p, 6, NULL, NULL);
	}
	return store_tx_end(st, rc);
}

int store_user_update(struct store *st, uint64_t id, const char *role, const char *auth,
		      int enabled)
{
	struct user cur = { 0 };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_user_get_id(st, id, &cur);
	if (rc == STORE_OK) {
		struct sval p[] = { SV_S(role ? role : cur.role), SV_S(auth ? auth : cur.auth),
				    SV_I(enabled < 0 ? cur.enabled : enabled != 0), SV_I(id) };
		rc = store_q(st, "UPDATE users SET role = ?, auth = ?, enabled = ? WHERE id = ?",
			     p, 4, NULL, NULL);
	}
	/* A disabled user's sessions end with it, not at their expiry. */
	if (rc == STORE_OK && enabled == 0)
		rc = store_q(st, "DELETE FROM tokens WHERE owner = ?", &SV_I(id), 1, NULL, NULL);
	user_free(&cur);
	tokens_changed(st);
	return store_tx_end(st, rc);
}

int store_user_delete(struct store *st, uint64_t id)
{
	static const char *const owned[] = {
		"SELECT COUNT(*) FROM vms WHERE owner = ?",
		"SELECT COUNT(*) FROM networks WHERE owner = ?",
		"SELECT COUNT(*) FROM images WHERE owner = ?",
		"SELECT COUNT(*) FROM keys WHERE owner = ?",
	};
	int rc = store_tx_begin(st);

	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]) && rc == STORE_OK; i++) {
		int64_t count = 0;
		rc = store_q(st, owned[i], &SV_I(id), 1, store_row_int, &count);
		if (rc == STORE_OK && count > 0)
			rc = STORE_CONFLICT;
	}
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM tokens WHERE owner = ?", &SV_I(id), 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM users WHERE id = ?", &SV_I(id), 1, NULL, NULL);
	tokens_changed(st);
	return store_tx_end(st, rc);
}

struct otp_row {
	char *sealed;
	int64_t step;
	bool found;
};

static int otp_row(void *arg, const struct sval *c, int n)
{
	struct otp_row *o = arg;

	o->sealed = sv_strdup(&c[0]);
	o->step = c[1].i;
	o->found = true;
	return 1;
}

int store_user_otp_get(struct store *st, uint64_t id, char **sealed, int64_t *step)
{
	struct otp_row o = { 0 };
	int rc = store_q(st, "SELECT otp_secret, otp_step FROM users WHERE id = ?", &SV_I(id), 1,
			 otp_row, &o);

	if (rc == STORE_OK && !o.found)
		rc = STORE_NOTFOUND;
	*sealed = rc == STORE_OK ? o.sealed : NULL;
	*step = o.step;
	if (rc != STORE_OK)
		free(o.sealed);
	return rc;
}

int store_user_otp_set(struct store *st, uint64_t id, const char *sealed)
{
	struct sval p[] = { SV_S(sealed), SV_I(id) };
	int64_t exists = 0;
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "SELECT COUNT(*) FROM users WHERE id = ?", &SV_I(id), 1,
			     store_row_int, &exists);
	if (rc == STORE_OK && exists == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK)
		rc = store_q(st, "UPDATE users SET otp_secret = ?, otp_step = 0 WHERE id = ?",
			     p, 2, NULL, NULL);
	return store_tx_end(st, rc);
}

int store_user_otp_use(struct store *st, uint64_t id, int64_t step)
{
	/* One conditional UPDATE: under either engine the row lock (or the
	 * database lock) makes the second of two racing writers see the
	 * first one's step and update nothing. */
	struct sval p[] = { SV_I(step), SV_I(id), SV_I(step) };
	size_t updated = 0;
	int rc = store_q_count(st, "UPDATE users SET otp_step = ? WHERE id = ? AND otp_step < ?"
			       " RETURNING id", p, 3, &updated);

	return rc == STORE_OK && updated == 0 ? STORE_CONFLICT : rc;
}

/* ---- tokens ------------------------------------------------------------- */

void token_free(struct token *t)
{
	if (!t)
		return;
	free(t->owner_name);
	free(t->source);
	memset(t, 0, sizeof(*t));
}

void tokens_free(struct token *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		token_free(&v[i]);
	free(v);
}

#define TOKEN_COLS "x.id, x.owner, u.name, x.created, x.expires, x.source, u.role" \
	" FROM tokens x JOIN users u ON u.id = x.owner"

static void fill_token(void *e, const struct sval *c)
{
	struct token *t = e;

	t->id = (uint64_t)c[0].i;
	t->owner = (uint64_t)c[1].i;
	t->owner_name = sv_strdup(&c[2]);
	t->created = c[3].i;
	t->expires = c[4].i;
	t->source = sv_strdup(&c[5]);
	t->owner_admin = c[6].t == SV_TEXT && strcmp(c[6].s, "admin") == 0;
}

int store_token_create(struct store *st, struct token *t, const char *hash)
{
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_counter_next(st, "token", UINT32_MAX, &t->id);
	t->created = store_now();
	if (rc == STORE_OK) {
		struct sval p[] = { SV_I(t->id), SV_I(t->owner), SV_S(hash), SV_I(t->created),
				    SV_I(t->expires), SV_S(t->source) };
		rc = store_q(st, "INSERT INTO tokens (id, owner, hash, created, expires, source)"
			     " VALUES (?, ?, ?, ?, ?, ?)", p, 6, NULL, NULL);
	}
	return store_tx_end(st, rc);
}

int store_token_lookup(struct store *st, const char *hash, int64_t now, struct token *out)
{
	struct rows r = { .elem = sizeof(struct token), .fill = fill_token };
	struct sval p[] = { SV_S(hash), SV_I(now) };
	int rc = store_q(st, "SELECT " TOKEN_COLS " WHERE x.hash = ? AND x.expires > ?"
			 " AND u.enabled <> 0", p, 2, rows_add, &r);

	if (rc == STORE_OK && r.n == 0)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK) {
		/* The hash is unique: one row at most. */
		*out = ((struct token *)r.v)[0];
		memset(r.v, 0, sizeof(struct token));
	}
	tokens_free(r.v, r.n);
	return rc;
}

int store_token_list(struct store *st, uint64_t scope, struct token **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct token), .fill = fill_token };
	struct sval sp = scope_param(scope);
	struct sval p[] = { SV_I(store_now()), sp, sp };
	int rc = store_q(st, "SELECT " TOKEN_COLS " WHERE x.expires > ? AND (? = -1 OR x.owner = ?)"
			 " ORDER BY x.id", p, 3, rows_add, &r);

	if (rc != STORE_OK) {
		tokens_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_token_delete(struct store *st, uint64_t id, uint64_t scope)
{
	struct sval sp = scope_param(scope);
	struct sval p[] = { SV_I(id), sp, sp };
	size_t deleted = 0;
	int rc = store_q_count(st, "DELETE FROM tokens WHERE id = ? AND (? = -1 OR owner = ?)"
			       " RETURNING id", p, 3, &deleted);

	tokens_changed(st);
	return rc == STORE_OK && deleted == 0 ? STORE_NOTFOUND : rc;
}

int store_token_revoke_user(struct store *st, uint64_t owner, uint64_t keep)
{
	struct sval p[] = { SV_I(owner), SV_I(keep) };
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM tokens WHERE owner = ? AND id <> ?", p, 2, NULL, NULL);
	tokens_changed(st);
	return store_tx_end(st, rc);
}

void store_token_cache(struct store *st, int ttl_s)
{
	tokencache_free(st->tokens);
	st->tokens = ttl_s > 0 ? tokencache_new(TOKEN_CACHE_SLOTS, (int64_t)ttl_s * 1000) : NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct auth_row {
	struct token_auth *out;
	int64_t expires;
	bool found;
};

static int auth_row(void *arg, const struct sval *c, int n)
{
	struct auth_row *a = arg;

	a->out->id = (uint64_t)c[0].i;
	a->out->owner = (uint64_t)c[1].i;
	a->out->admin = c[2].t == SV_TEXT && strcmp(c[2].s, "admin") == 0;
	a->expires = c[3].i;
	a->found = true;
	return 1;
}

int store_token_auth(struct store *st, const char *hash, int64_t now, struct token_auth *out)
{
	const struct tokencache_entry *e;
	struct auth_row a = { .out = out };
	struct sval p[] = { SV_S(hash), SV_I(now) };
	int64_t mono = mono_ms();
	int rc;

	e = st->tokens ? tokencache_get(st->tokens, hash, now, mono) : NULL;
	if (e) {
		*out = (struct token_auth){ .id = e->id, .owner = e->owner, .admin = e->admin };
		return STORE_OK;
	}
	rc = store_q(st, "SELECT x.id, x.owner, u.role, x.expires FROM tokens x JOIN users u"
		     " ON u.id = x.owner WHERE x.hash = ? AND x.expires > ? AND u.enabled <> 0",
		     p, 2, auth_row, &a);
	if (rc == STORE_OK && !a.found)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK && st->tokens)
		tokencache_put(st->tokens, hash, out->id, out->owner, out->admin, a.expires, mono);
	return rc;
}

int store_token_live(struct store *st, uint64_t id, int64_t now)
{
	struct sval p[] = { SV_I(id), SV_I(now) };
	int64_t n = 0;
	int rc = store_q(st, "SELECT COUNT(*) FROM tokens x JOIN users u ON u.id = x.owner"
			 " WHERE x.id = ? AND x.expires > ? AND u.enabled <> 0", p, 2, store_row_int, &n);

	return rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc;
}

int store_token_purge(struct store *st, int64_t now)
{
	int rc = store_tx_begin(st);

	if (rc == STORE_OK)
		rc = store_q(st, "DELETE FROM tokens WHERE expires <= ?", &SV_I(now), 1, NULL, NULL);
	return store_tx_end(st, rc);
}
