/*
 * identity — who is calling (identity.h), and the state the
 * authentication handlers share (auth.h).
 *
 * Local accounts (issue 11 §10): on the unix socket a local user other
 * than root is the hackcloud user of the same name only when the account
 * is a person's: its uid lies in `local_users` (default 1000-59999,
 * Debian's range for people; "none" maps nobody) and its shell is one a
 * person logs in with (not nologin or false).  So `nobody`, `www-data`
 * and every other system account stay strangers even when a hackcloud
 * user happens to bear their name.
 */
#include "api/identity.h"

#include "api/auth.h"
#include "api/websocket.h"
#include "auth/password.h"
#include "auth/throttle.h"
#include "auth/token.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/validate.h"

#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int auth_wait_secs(double s)
{
	int whole = (int)s;

	whole += (double)whole < s;
	return whole > 0 ? whole : 1;
}

int64_t auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "1000-59999" or "none". */
static bool local_users_parse(const char *s, struct api_auth *a)
{
	unsigned long lo, hi;
	char *end;

	if (s == NULL || strcmp(s, "none") == 0 || s[0] == '\0') {
		a->local_users = false;
		return true;
	}
	lo = strtoul(s, &end, 10);
	if (end == s || *end != '-')
		return false;
	s = end + 1;
	hi = strtoul(s, &end, 10);
	if (end == s || *end || lo < 1 || hi < lo || hi >= (uid_t)-1)
		return false;
	a->local_users = true;
	a->local_min = (uid_t)lo;
	a->local_max = (uid_t)hi;
	return true;
}

/* A scraper's token: one line of at least METRICS_TOKEN_MIN printable
 * characters (e.g. `openssl rand -hex 32`); only its hash is kept. */
#define METRICS_TOKEN_MIN 32
static int metrics_token_load(const char *path, struct api_auth *a, char **err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = -1;

	if (file_read(path, 4096, &text, &len) < 0) {
		*err = str_printf("metrics_token_file %s: cannot read it", path);
		return -1;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = '\0';
	bool printable = len == strlen(text);
	for (size_t i = 0; printable && i < len; i++)
		printable = text[i] > ' ' && text[i] < 0x7f;
	if (len < METRICS_TOKEN_MIN || !printable) {
		*err = str_printf("metrics_token_file %s: the token must be one line of at least %d"
				  " printable characters without spaces", path, METRICS_TOKEN_MIN);
	} else {
		token_hash(text, a->metrics_hash);
		a->metrics_token = true;
		rc = 0;
	}
	sodium_memzero(text, len);
	free(text);
	return rc;
}

bool api_metrics_token(struct req *r)
{
	const struct api_auth *a = r->api->auth;
	const char *authz = req_header(r, "Authorization");
	char hash[TOKEN_HASH_LEN + 1];

	if (!a->metrics_token || authz == NULL || strncmp(authz, "Bearer ", 7) != 0)
		return false;
	token_hash(authz + 7, hash);
	return sodium_memcmp(hash, a->metrics_hash, TOKEN_HASH_LEN) == 0;
}

struct api_auth *api_auth_new(struct api_ctx *ctx, char **err)
{
	const struct config *cfg = ctx->cfg;
	struct api_auth *a = calloc(1, sizeof(*a));

	*err = NULL;
	if (a == NULL)
		return NULL;
	a->ctx = ctx;
	if (!local_users_parse(cfg->local_users, a)) {
		*err = str_printf("local_users '%s': expected a uid range FIRST-LAST (e.g. 1000-59999)"
				  " or none", cfg->local_users);
		goto fail;
	}
	a->passwd_path = cfg->passwd_file && cfg->passwd_file[0] ? strdup(cfg->passwd_file)
		: str_printf("%s/passwd", cfg->state_dir);
	a->key_path = cfg->secret_key_file && cfg->secret_key_file[0]
		? strdup(cfg->secret_key_file) : str_printf("%s/secret.key", cfg->state_dir);
	a->throttle = throttle_new(&(struct throttle_config){ .users = 1024, .addrs = 1024,
							      .base_s = 1, .cap_s = 300 });
	if (a->passwd_path == NULL || a->key_path == NULL || a->throttle == NULL) {
		*err = strdup("out of memory");
		goto fail;
	}
	a->pw = passwd_open(a->passwd_path);
	if (a->pw == NULL) {
		*err = str_printf("%s: cannot open the password file", a->passwd_path);
		goto fail;
	}
	if (cfg->metrics_token_file && cfg->metrics_token_file[0] &&
	    metrics_token_load(cfg->metrics_token_file, a, err) < 0)
		goto fail;
	store_token_cache(ctx->st, cfg->token_cache_ttl);
	return a;
fail:
	api_auth_free(a);
	return NULL;
}

void api_auth_free(struct api_auth *a)
{
	if (a == NULL)
		return;
	passwd_close(a->pw);
	throttle_free(a->throttle);
	free(a->passwd_path);
	free(a->key_path);
	free(a);
}

/* A token bucket per user, in a table indexed by user ID: beyond 256
 * users some share a bucket, which is stricter, never looser. */
static bool rate_allow(struct req *r)
{
	struct api_auth *a = r->api->auth;
	const struct config *cfg = r->api->cfg;
	struct user_bucket *slot = &a->buckets[r->caller % RATE_BUCKETS];
	int64_t now = auth_now_ms();
	double retry = 0;

	if (cfg->api_rate <= 0)
		return true;
	/* Users whose IDs collide share one bucket rather than refilling
	 * it for each other, which would lift the limit for both. */
	if (!slot->used) {
		slot->used = true;
		ratelimit_fill(&slot->b, cfg->api_burst, now);
	}
	if (ratelimit_take(&slot->b, cfg->api_rate, cfg->api_burst, now, &retry))
		return true;
	int secs = auth_wait_secs(retry);
	req_error(r, 429, "rate_limited", "too many requests; retry in %d s", secs);
	req_retry_after(r, secs);
	return false;
}

static bool identify_token(struct req *r, const char *tok)
{
	char hash[TOKEN_HASH_LEN + 1];
	struct token_auth t;
	int rc;

	if (!token_looks_valid(tok)) {
		req_error(r, 401, "unauthorized", "invalid or expired token");
		return false;
	}
	token_hash(tok, hash);
	rc = store_token_auth(r->api->st, hash, (int64_t)time(NULL), &t);
	if (rc != STORE_OK) {
		if (rc == STORE_NOTFOUND)
			req_error(r, 401, "unauthorized", "invalid or expired token");
		else
			req_store_error(r, rc, "token", "");
		return false;
	}
	r->caller = t.owner;
	r->admin = t.admin;
	r->token_id = t.id;
	return rate_allow(r);
}

/* A person's account: in the uid range, with a shell to log in with. */
static bool local_account_maps(const struct api_auth *a, const struct passwd *pw)
{
	const char *sh = pw->pw_shell ? pw->pw_shell : "";
	const char *base = strrchr(sh, '/') ? strrchr(sh, '/') + 1 : sh;

	if (!a->local_users || pw->pw_uid < a->local_min || pw->pw_uid > a->local_max)
		return false;
	/* An empty shell field means /bin/sh (passwd(5)). */
	return strcmp(base, "nologin") != 0 && strcmp(base, "false") != 0;
}

static bool identify_peer(struct req *r, const struct peer *p)
{
	char buf[4096];
	struct passwd pwd, *res = NULL;
	struct user u = { 0 };

	if (p->uid == 0) {
		r->caller = OWNER_ROOT;
		r->admin = true;
		return true;
	}
	if (getpwuid_r(p->uid, &pwd, buf, sizeof(buf), &res) != 0 || res == NULL ||
	    !local_account_maps(r->api->auth, res) || !name_valid(res->pw_name) ||
	    store_user_get(r->api->st, res->pw_name, &u) != STORE_OK) {
		req_error(r, 403, "forbidden", "local user %u is not a hackcloud user",
			  (unsigned)p->uid);
		return false;
	}
	bool ok = u.enabled;
	r->caller = u.id;
	r->admin = strcmp(u.role, "admin") == 0;
	user_free(&u);
	if (!ok) {
		req_error(r, 403, "forbidden", "this hackcloud user is disabled");
		return false;
	}
	return rate_allow(r);
}

bool api_identify(struct req *r, const struct peer *p, bool websocket)
{
	const char *authz = req_header(r, "Authorization");
	char tok[TOKEN_LEN + 2];

	if (authz) {
		if (strncmp(authz, "Bearer ", 7) != 0) {
			req_error(r, 401, "unauthorized", "Authorization must be 'Bearer TOKEN'");
			return false;
		}
		return identify_token(r, authz + 7);
	}
	/* A browser's WebSocket cannot carry Authorization: its page offers
	 * the token as a subprotocol, which is never part of a URL. */
	if (websocket && ws_bearer(req_header(r, "Sec-WebSocket-Protocol"), tok, sizeof(tok))) {
		bool ok = identify_token(r, tok);
		sodium_memzero(tok, sizeof(tok));
		return ok;
	}
	if (!p->is_unix) {
		req_error(r, 401, "unauthorized", "authentication required: log in for a token");
		return false;
	}
	if (!p->have_cred) {
		req_error(r, 403, "forbidden", "cannot tell who is calling");
		return false;
	}
	return identify_peer(r, p);
}

bool api_session_valid(struct api_ctx *ctx, uint64_t user, uint64_t token_id)
{
	struct user u = { 0 };
	bool ok;

	if (token_id)
		return store_token_live(ctx->st, token_id, (int64_t)time(NULL)) == STORE_OK;
	if (user == OWNER_ROOT)
		return true;
	ok = store_user_get_id(ctx->st, user, &u) == STORE_OK && u.enabled;
	user_free(&u);
	return ok;
}
