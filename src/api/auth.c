/*
 * auth — who is calling, and everything about users (DESIGN §8):
 *
 *   POST   /v1/login              {user, password?, otp?} → a bearer token
 *   POST   /v1/logout             revoke the token this request carries
 *   GET    /v1/whoami
 *   GET    /v1/tokens             live tokens (the caller's; all for admins)
 *   DELETE /v1/tokens/{id}
 *   GET    /v1/users              (members see themselves only)
 *   POST   /v1/users              admin: {name, role?, auth?, password?}
 *   GET    /v1/users/{name}       self or admin
 *   PATCH  /v1/users/{name}       admin: {role?, auth?, enabled?} (members: 404/403)
 *   DELETE /v1/users/{name}       admin; refused while the user owns anything
 *   POST   /v1/users/{name}/password   self or admin: {password}
 *   POST   /v1/users/{name}/otp   self or admin: enrol TOTP → otpauth:// URI
 *   DELETE /v1/users/{name}/otp   self or admin
 *   GET    /v1/auth/backoff       admin: the failed-login backoff state
 *
 * Identity: a bearer token on any listener; otherwise, on the unix socket,
 * the peer's credentials (root is the admin "root"; another local user is
 * the hackcloud user of the same name, when one exists and is enabled).
 * A member who names somebody else's user or token gets 404, as for every
 * other resource.
 *
 * Logins: the password is checked by the user's backend (passwd file or
 * LDAP), then the TOTP code when the user has one.  Every failure backs
 * off the user name and the source address (exponential, capped); while a
 * key must wait, attempts are answered 429 without being checked.  Users
 * with a token are rate limited per user (token bucket).  No secret is
 * ever logged.
 */
#include "api/api.h"

#include "api/codec.h"
#include "auth/backoff.h"
#include "auth/ldap.h"
#include "auth/password.h"
#include "auth/seal.h"
#include "auth/token.h"
#include "auth/totp.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RATE_BUCKETS 256

struct user_bucket {
	bool used;
	struct rate_bucket b;
};

struct api_auth {
	const struct config *cfg;
	char *passwd_path;
	struct passwd_file *pw;
	char *key_path;
	struct backoff *backoff;
	struct user_bucket buckets[RATE_BUCKETS];
};

/* Whole seconds to wait, rounded up, at least 1 (Retry-After). */
static int wait_secs(double s)
{
	int whole = (int)s;

	whole += (double)whole < s;
	return whole > 0 ? whole : 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct api_auth *api_auth_new(const struct config *cfg, char **err)
{
	struct api_auth *a = calloc(1, sizeof(*a));

	*err = NULL;
	if (a == NULL)
		return NULL;
	a->cfg = cfg;
	a->passwd_path = cfg->passwd_file && cfg->passwd_file[0] ? strdup(cfg->passwd_file)
		: str_printf("%s/passwd", cfg->state_dir);
	a->key_path = cfg->secret_key_file && cfg->secret_key_file[0]
		? strdup(cfg->secret_key_file) : str_printf("%s/secret.key", cfg->state_dir);
	a->backoff = backoff_new(&(struct backoff_config){ .capacity = 1024, .base_s = 1, .cap_s = 300 });
	if (a->passwd_path == NULL || a->key_path == NULL || a->backoff == NULL) {
		*err = strdup("out of memory");
		goto fail;
	}
	a->pw = passwd_open(a->passwd_path);
	if (a->pw == NULL) {
		*err = str_printf("%s: cannot open the password file", a->passwd_path);
		goto fail;
	}
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
	backoff_free(a->backoff);
	free(a->passwd_path);
	free(a->key_path);
	free(a);
}

/* ---- identity ----------------------------------------------------------- */

static void set_source(struct req *r, bool is_unix, const struct ucred *cred)
{
	const union MHD_ConnectionInfo *ci;

	if (is_unix) {
		snprintf(r->source, sizeof(r->source), "unix:%u", cred ? (unsigned)cred->uid : 0u);
		return;
	}
	snprintf(r->source, sizeof(r->source), "unknown");
	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr,
			  r->source, sizeof(r->source));
	else if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr,
			  r->source, sizeof(r->source));
}

/* A token bucket per user, in a table indexed by user ID: beyond 256
 * users some share a bucket, which is stricter, never looser. */
static bool rate_allow(struct req *r)
{
	struct api_auth *a = r->api->auth;
	const struct config *cfg = r->api->cfg;
	struct user_bucket *slot = &a->buckets[r->caller % RATE_BUCKETS];
	int64_t now = now_ms();
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
	r->retry_after = wait_secs(retry);
	req_error(r, 429, "rate_limited", "too many requests; retry in %d s", r->retry_after);
	return false;
}

static bool identify_token(struct req *r, const char *header)
{
	char hash[TOKEN_HASH_LEN + 1];
	struct token t = { 0 };
	const char *tok;
	int rc;

	if (strncmp(header, "Bearer ", 7) != 0) {
		req_error(r, 401, "unauthorized", "Authorization must be 'Bearer TOKEN'");
		return false;
	}
	tok = header + 7;
	if (!token_looks_valid(tok)) {
		req_error(r, 401, "unauthorized", "invalid or expired token");
		return false;
	}
	token_hash(tok, hash);
	rc = store_token_lookup(r->api->st, hash, (int64_t)time(NULL), &t);
	if (rc != STORE_OK) {
		if (rc == STORE_NOTFOUND)
			req_error(r, 401, "unauthorized", "invalid or expired token");
		else
			req_store_error(r, rc, "token", "");
		return false;
	}
	r->caller = t.owner;
	r->admin = t.owner_admin;
	r->token_id = t.id;
	token_free(&t);
	return rate_allow(r);
}

/* A local user other than root is the hackcloud user of the same name. */
static bool identify_peer(struct req *r, const struct ucred *cred)
{
	char buf[4096];
	struct passwd pwd, *res = NULL;
	struct user u = { 0 };

	if (cred->uid == 0) {
		r->caller = OWNER_ROOT;
		r->admin = true;
		return true;
	}
	if (getpwuid_r(cred->uid, &pwd, buf, sizeof(buf), &res) != 0 || res == NULL ||
	    !name_valid(res->pw_name) || store_user_get(r->api->st, res->pw_name, &u) != STORE_OK) {
		req_error(r, 403, "forbidden", "local user %u is not a hackcloud user",
			  (unsigned)cred->uid);
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

bool api_identify(struct req *r, bool is_unix)
{
	const char *authz = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_AUTHORIZATION);
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	bool have_cred = false;

	if (is_unix) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		have_cred = ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
	}
	set_source(r, is_unix, have_cred ? &cred : NULL);
	/* Logging in needs no identity, and a stale token must not stop it. */
	if (r->route && r->route->access == ROUTE_ANON)
		return true;
	if (authz)
		return identify_token(r, authz);
	if (!is_unix) {
		req_error(r, 401, "unauthorized", "authentication required: log in for a token");
		return false;
	}
	if (!have_cred) {
		req_error(r, 403, "forbidden", "cannot tell who is calling");
		return false;
	}
	return identify_peer(r, &cred);
}

/* ---- login -------------------------------------------------------------- */

/* Wait keys of the backoff table: the user name and the source. */
static void backoff_keys(const struct req *r, const char *user, char k_user[96], char k_addr[96])
{
	snprintf(k_user, 96, "user:%s", user);
	snprintf(k_addr, 96, "addr:%s", r->source);
}

static int too_many(struct req *r, double wait_s)
{
	r->retry_after = wait_secs(wait_s);
	return req_error(r, 429, "too_many_attempts",
			 "too many failed logins; retry in %d s", r->retry_after);
}

static int login_failed(struct req *r, const char *user, const char *why)
{
	struct api_auth *a = r->api->auth;
	char k_user[96], k_addr[96];
	unsigned failures = 0;
	double delay = 0;
	int64_t until = 0;

	backoff_keys(r, user, k_user, k_addr);
	backoff_fail(a->backoff, k_user, now_ms());
	backoff_fail(a->backoff, k_addr, now_ms());
	backoff_get(a->backoff, k_user, &failures, &delay, &until);
	log_warn("auth: login of '%s' from %s failed (%s); %u failures, next attempt in %.0f s",
		 user, r->source, why, failures, delay);
	return req_error(r, 401, "invalid_credentials", "wrong user name, password or code");
}

/* The user's TOTP secret, unsealed; NULL when the user has none or the
 * host key cannot open it (logged). */
static unsigned char *otp_secret(struct req *r, uint64_t user, size_t *len, int64_t *step)
{
	unsigned char key[SEAL_KEY_LEN];
	unsigned char *secret = NULL;
	char *sealed = NULL;
	char *err = NULL;

	if (store_user_otp_get(r->api->st, user, &sealed, step) != STORE_OK || sealed == NULL)
		return NULL;
	if (seal_key_load(r->api->auth->key_path, key, &err) < 0) {
		log_err("auth: %s", err);
	} else if (seal_decrypt(key, sealed, &secret, len) < 0) {
		log_err("auth: a sealed OTP secret does not open with %s", r->api->auth->key_path);
		secret = NULL;
	}
	sodium_memzero(key, sizeof(key));
	free(sealed);
	free(err);
	return secret;
}

/* 0: the code is right and now used; 1: wrong or replayed. */
static int otp_check(struct req *r, uint64_t user, const char *code)
{
	size_t len = 0;
	int64_t step = 0, accepted = 0;
	unsigned char *secret = otp_secret(r, user, &len, &step);
	int rc = 1;

	if (secret == NULL)
		return 1;
	if (totp_verify(secret, len, (int64_t)time(NULL), code, step, &accepted) == 0 &&
	    store_user_otp_use(r->api->st, user, accepted) == STORE_OK)
		rc = 0;
	sodium_memzero(secret, len);
	free(secret);
	return rc;
}

static int ldap_check(struct req *r, const char *user, const char *password)
{
	const struct config *cfg = r->api->cfg;
	struct ldap_auth_cfg lc = {
		.uri = cfg->ldap_uri, .starttls = cfg->ldap_starttls != 0, .base = cfg->ldap_base,
		.filter = cfg->ldap_filter, .bind_dn = cfg->ldap_bind_dn,
		.timeout_s = cfg->ldap_timeout, .ca_file = cfg->ldap_ca_file,
	};
	char *bind_pw = NULL, *err = NULL;
	int rc;

	if (cfg->ldap_uri == NULL || cfg->ldap_uri[0] == '\0')
		return AUTH_UNAVAILABLE;
	if (cfg->ldap_bind_dn && cfg->ldap_bind_dn[0] && cfg->ldap_bind_password_file &&
	    cfg->ldap_bind_password_file[0]) {
		if (file_read(cfg->ldap_bind_password_file, 4096, &bind_pw, NULL) < 0) {
			log_err("auth: cannot read %s", cfg->ldap_bind_password_file);
			return AUTH_UNAVAILABLE;
		}
		bind_pw[strcspn(bind_pw, "\r\n")] = '\0';
		lc.bind_password = bind_pw;
	}
	rc = ldap_authenticate(&lc, user, password, &err);
	if (rc == AUTH_UNAVAILABLE)
		log_err("auth: LDAP: %s", err ? err : "unavailable");
	if (bind_pw) {
		sodium_memzero(bind_pw, strlen(bind_pw));
		free(bind_pw);
	}
	free(err);
	return rc;
}

static json_t *user_json(const struct user *u)
{
	char id[9];

	id8_format(u->id, id);
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I}", "id", id, "name", u->name,
			 "role", u->role, "auth", u->auth ? u->auth : "", "enabled", u->enabled,
			 "otp", u->otp, "created", (json_int_t)u->created);
}

static int issue_token(struct req *r, const struct user *u)
{
	char tok[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1], id[9];
	struct token t = { .owner = u->id, .source = r->source };
	int rc;

	t.expires = (int64_t)time(NULL) + r->api->cfg->token_ttl;
	token_new(tok);
	token_hash(tok, hash);
	rc = store_token_create(r->api->st, &t, hash);
	if (rc != STORE_OK) {
		sodium_memzero(tok, sizeof(tok));
		return req_store_error(r, rc, "token", "");
	}
	id8_format(t.id, id);
	req_json(r, 200, json_pack("{s:s, s:s, s:I, s:o}", "token", tok, "id", id,
				   "expires", (json_int_t)t.expires, "user", user_json(u)));
	sodium_memzero(tok, sizeof(tok));
	log_info("auth: '%s' logged in from %s (token %s)", u->name, r->source, id);
	return 0;
}

int h_login(struct req *r)
{
	static const char *const keys[] = { "user", "password", "otp", NULL };
	struct api_auth *a = r->api->auth;
	const char *name, *password, *otp;
	char k_user[96], k_addr[96];
	double wait_user = 0, wait_addr = 0;
	struct user u = { 0 };
	bool pw_ok = false, have_pw_backend;
	int rc;

	if (!only_keys(r, keys) || !get_str(r, "user", true, &name) ||
	    !get_str(r, "password", false, &password) || !get_str(r, "otp", false, &otp))
		return 0;
	if (!name_valid(name))
		return req_error(r, 400, "bad_name", "user name must match [a-z0-9][a-z0-9-]{0,62}");
	if (password && strlen(password) > PASSWORD_MAX)
		return req_error(r, 400, "bad_request", "password too long");
	if (otp && (strlen(otp) < 6 || strlen(otp) > 8 || strspn(otp, "0123456789") != strlen(otp)))
		return req_error(r, 400, "bad_request", "'otp' must be 6 to 8 digits");

	backoff_keys(r, name, k_user, k_addr);
	bool user_waits = !backoff_check(a->backoff, k_user, now_ms(), &wait_user);
	bool addr_waits = !backoff_check(a->backoff, k_addr, now_ms(), &wait_addr);
	if (user_waits || addr_waits)
		return too_many(r, wait_user > wait_addr ? wait_user : wait_addr);

	rc = store_user_get(r->api->st, name, &u);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return req_store_error(r, rc, "user", name);
	if (rc == STORE_NOTFOUND || !u.enabled) {
		/* Spend the time a real check would, so timing does not tell. */
		passwd_verify(a->pw, name, password ? password : "");
		user_free(&u);
		return login_failed(r, name, "unknown or disabled user");
	}
	have_pw_backend = list_has(u.auth, "file") || list_has(u.auth, "ldap");
	if (!have_pw_backend && !list_has(u.auth, "otp")) {
		user_free(&u);
		return login_failed(r, name, "the user has no login backend");
	}
	if (have_pw_backend) {
		if (password == NULL || password[0] == '\0') {
			user_free(&u);
			return login_failed(r, name, "no password");
		}
		if (list_has(u.auth, "file")) {
			pw_ok = passwd_verify(a->pw, name, password) == PASSWD_OK;
		} else {
			rc = ldap_check(r, name, password);
			if (rc == AUTH_UNAVAILABLE) {
				user_free(&u);
				return req_error(r, 503, "auth_unavailable",
						 "the LDAP server cannot be reached; try again later");
			}
			pw_ok = rc == AUTH_OK;
		}
		if (!pw_ok) {
			user_free(&u);
			return login_failed(r, name, "wrong password");
		}
	}
	if (list_has(u.auth, "otp")) {
		/* Two steps: a right password without a code asks for the code
		 * (not a failure); the code alone is throttled like a password. */
		if (otp == NULL) {
			user_free(&u);
			return req_error(r, 401, "otp_required", "a one-time code is required");
		}
		if (otp_check(r, u.id, otp) != 0) {
			user_free(&u);
			return login_failed(r, name, "wrong or reused one-time code");
		}
	}
	backoff_success(a->backoff, k_user);
	backoff_success(a->backoff, k_addr);
	rc = issue_token(r, &u);
	user_free(&u);
	return rc;
}

int h_logout(struct req *r)
{
	int rc;

	if (r->token_id == 0)
		return req_error(r, 400, "bad_request", "this request carries no token");
	rc = store_token_delete(r->api->st, r->token_id, OWNER_ANY);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "token", "");
	return req_json(r, 200, json_object());
}

int h_whoami(struct req *r)
{
	struct user u = { 0 };
	int rc = store_user_get_id(r->api->st, r->caller, &u);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", "");
	json_t *j = user_json(&u);
	json_object_set_new(j, "via", json_string(r->token_id ? "token" : "peer"));
	user_free(&u);
	return req_json(r, 200, j);
}

/* ---- tokens ------------------------------------------------------------- */

static json_t *token_json(const struct token *t, uint64_t current)
{
	char id[9];

	id8_format(t->id, id);
	return json_pack("{s:s, s:s, s:I, s:I, s:s?, s:b}", "id", id, "owner", t->owner_name,
			 "created", (json_int_t)t->created, "expires", (json_int_t)t->expires,
			 "source", t->source, "current", t->id == current);
}

int h_token_list(struct req *r)
{
	struct token *v = NULL;
	size_t n = 0;
	int rc = store_token_list(r->api->st, req_scope(r), &v, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "token", "");
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, token_json(&v[i], r->token_id));
	tokens_free(v, n);
	return req_json(r, 200, arr);
}

int h_token_delete(struct req *r)
{
	const char *ref = r->params[0];
	char *end;
	unsigned long long id;
	int rc;

	if (strlen(ref) != TOKEN_ID_DIGITS || strspn(ref, "0123456789abcdef") != TOKEN_ID_DIGITS)
		return req_error(r, 404, "not_found", "token '%s' not found", ref);
	id = strtoull(ref, &end, 16);
	rc = store_token_delete(r->api->st, id, req_scope(r));
	if (rc != STORE_OK)
		return req_store_error(r, rc, "token", ref);
	return req_json(r, 200, json_object());
}

/* ---- users -------------------------------------------------------------- */

/* The user named by the path, as the caller may see it: members see only
 * themselves, anything else is "not found". */
static bool user_resolve(struct req *r, struct user *u)
{
	int rc = store_user_get(r->api->st, r->params[0], u);

	if (rc == STORE_OK && !r->admin && u->id != r->caller) {
		user_free(u);
		rc = STORE_NOTFOUND;
	}
	if (rc != STORE_OK) {
		req_store_error(r, rc, "user", r->params[0]);
		return false;
	}
	return true;
}

/* "file,otp" or ["file","otp"] → a canonical comma list of known backends. */
static bool parse_auth(struct req *r, json_t *v, char out[64])
{
	static const char *const known[] = { "file", "ldap", "otp" };
	bool want[3] = { false };
	size_t n = 0;

	out[0] = '\0';
	if (json_is_string(v)) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", json_string_value(v));
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			size_t k = 0;
			while (k < 3 && strcmp(known[k], t) != 0)
				k++;
			if (k == 3)
				goto bad;
			want[k] = true;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			size_t k = 0;
			while (k < 3 && !(json_is_string(e) && strcmp(known[k], json_string_value(e)) == 0))
				k++;
			if (k == 3)
				goto bad;
			want[k] = true;
		}
	} else {
		goto bad;
	}
	if (want[0] && want[1]) {
		req_error(r, 400, "bad_request", "a user has one password backend: file or ldap");
		return false;
	}
	for (size_t k = 0; k < 3; k++)
		if (want[k])
			n += (size_t)snprintf(out + n, 64 - n, "%s%s", n ? "," : "", known[k]);
	return true;
bad:
	req_error(r, 400, "bad_request", "'auth' must list backends among file, ldap, otp");
	return false;
}

static bool password_acceptable(struct req *r, const char *pw)
{
	size_t len = strlen(pw);

	if (len < 8 || len > PASSWORD_MAX) {
		req_error(r, 400, "bad_password", "a password has 8 to %d characters", PASSWORD_MAX);
		return false;
	}
	return true;
}

int h_user_list(struct req *r)
{
	struct user *v = NULL;
	size_t n = 0;
	int rc = store_user_list(r->api->st, &v, &n);

	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", "");
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		if (r->admin || v[i].id == r->caller)
			json_array_append_new(arr, user_json(&v[i]));
	users_free(v, n);
	return req_json(r, 200, arr);
}

int h_user_create(struct req *r)
{
	static const char *const keys[] = { "name", "role", "auth", "password", NULL };
	const char *name, *role, *password;
	char auth[64] = "";
	json_t *jauth;
	int rc;

	if (!only_keys(r, keys) || !get_str(r, "name", true, &name) ||
	    !get_str(r, "role", false, &role) || !get_str(r, "password", false, &password))
		return 0;
	if (!api_name_check(r, name, 8, "user"))
		return 0;
	if (role && strcmp(role, "admin") != 0 && strcmp(role, "member") != 0)
		return req_error(r, 400, "bad_request", "'role' must be admin or member");
	jauth = json_object_get(r->json, "auth");
	if (jauth && !json_is_null(jauth) && !parse_auth(r, jauth, auth))
		return 0;
	if (password && !password_acceptable(r, password))
		return 0;
	if (list_has(auth, "file") && password == NULL)
		return req_error(r, 400, "bad_request", "the file backend needs a 'password'");
	if (password && !list_has(auth, "file"))
		return req_error(r, 400, "bad_request", "'password' is only for the file backend");

	struct user u = { .name = (char *)name, .role = (char *)(role ? role : "member"),
			  .auth = auth, .enabled = true };
	rc = store_user_create(r->api->st, &u);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", name);
	if (password && passwd_set(r->api->auth->pw, name, password) != PASSWD_OK) {
		/* Without its password the user would be half made: take it back. */
		store_user_delete(r->api->st, u.id);
		return req_error(r, 500, "internal", "cannot write the password file");
	}
	log_info("auth: user '%s' created (%s, backends '%s')", name, u.role, auth);
	struct user out = { 0 };
	rc = store_user_get_id(r->api->st, u.id, &out);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", name);
	req_json(r, 201, user_json(&out));
	user_free(&out);
	return 0;
}

int h_user_get(struct req *r)
{
	struct user u = { 0 };

	if (!user_resolve(r, &u))
		return 0;
	req_json(r, 200, user_json(&u));
	user_free(&u);
	return 0;
}

int h_user_update(struct req *r)
{
	static const char *const keys[] = { "role", "auth", "enabled", NULL };
	struct user u = { 0 };
	const char *role;
	char auth[64];
	json_t *jauth, *jen;
	int enabled = -1, rc;

	if (!only_keys(r, keys) || !get_str(r, "role", false, &role))
		return 0;
	if (role && strcmp(role, "admin") != 0 && strcmp(role, "member") != 0)
		return req_error(r, 400, "bad_request", "'role' must be admin or member");
	jauth = json_object_get(r->json, "auth");
	if (jauth && !parse_auth(r, jauth, auth))
		return 0;
	jen = json_object_get(r->json, "enabled");
	if (jen) {
		if (!json_is_boolean(jen))
			return req_error(r, 400, "bad_request", "'enabled' must be true or false");
		enabled = json_is_true(jen);
	}
	if (!user_resolve(r, &u))
		return 0;
	if (!r->admin) {
		user_free(&u);
		return req_error(r, 403, "forbidden", "admin only");
	}
	if (u.id == OWNER_ROOT && (role || enabled == 0)) {
		user_free(&u);
		return req_error(r, 400, "bad_request", "root stays an enabled admin");
	}
	rc = store_user_update(r->api->st, u.id, role, jauth ? auth : NULL, enabled);
	if (rc == STORE_OK && enabled == 0)
		/* A disabled user's tokens stop working at once (lookup checks
		 * enabled); dropping them keeps the table honest too. */
		log_info("auth: user '%s' disabled", u.name);
	user_free(&u);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", r->params[0]);
	if (!user_resolve(r, &u))
		return 0;
	req_json(r, 200, user_json(&u));
	user_free(&u);
	return 0;
}

int h_user_delete(struct req *r)
{
	struct user u = { 0 };
	int rc;

	if (!user_resolve(r, &u))
		return 0;
	if (!r->admin) {
		user_free(&u);
		return req_error(r, 403, "forbidden", "admin only");
	}
	if (u.id == OWNER_ROOT) {
		user_free(&u);
		return req_error(r, 400, "bad_request", "root cannot be deleted");
	}
	rc = store_user_delete(r->api->st, u.id);
	if (rc == STORE_CONFLICT) {
		user_free(&u);
		return req_error(r, 409, "conflict", "user '%s' still owns resources", r->params[0]);
	}
	if (rc == STORE_OK) {
		int prc = passwd_remove(r->api->auth->pw, u.name);
		if (prc != PASSWD_OK && prc != PASSWD_ERR_NOUSER)
			log_err("auth: removing '%s' from the password file failed", u.name);
		log_info("auth: user '%s' deleted", u.name);
	}
	user_free(&u);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", r->params[0]);
	return req_json(r, 200, json_object());
}

int h_user_password(struct req *r)
{
	static const char *const keys[] = { "password", NULL };
	struct user u = { 0 };
	const char *password;

	if (!only_keys(r, keys) || !get_str(r, "password", true, &password))
		return 0;
	if (!user_resolve(r, &u))
		return 0;
	if (!password_acceptable(r, password)) {
		user_free(&u);
		return 0;
	}
	int prc = passwd_set(r->api->auth->pw, u.name, password);
	if (prc == PASSWD_OK && !list_has(u.auth, "file") && !list_has(u.auth, "ldap")) {
		/* Setting a password enables the file backend for a user who had none. */
		char auth[64];
		snprintf(auth, sizeof(auth), "file%s", list_has(u.auth, "otp") ? ",otp" : "");
		store_user_update(r->api->st, u.id, NULL, auth, -1);
	}
	log_info("auth: password of '%s' changed by %s", u.name, r->source);
	user_free(&u);
	if (prc != PASSWD_OK)
		return req_error(r, 500, "internal", "cannot write the password file");
	return req_json(r, 200, json_object());
}

int h_user_otp_enable(struct req *r)
{
	struct user u = { 0 };
	unsigned char secret[TOTP_SECRET_LEN], key[SEAL_KEY_LEN];
	char *sealed = NULL, *uri = NULL, *err = NULL, auth[64];
	int rc;

	if (!user_resolve(r, &u))
		return 0;
	if (seal_key_load(r->api->auth->key_path, key, &err) < 0) {
		log_err("auth: %s", err);
		free(err);
		user_free(&u);
		return req_error(r, 500, "internal", "the host's secret key is unusable");
	}
	totp_secret_new(secret);
	sealed = seal_encrypt(key, secret, sizeof(secret));
	uri = totp_uri(r->api->cfg->otp_issuer, u.name, secret, sizeof(secret));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(secret, sizeof(secret));
	rc = sealed && uri ? store_user_otp_set(r->api->st, u.id, sealed) : STORE_ERR;
	if (rc == STORE_OK && !list_has(u.auth, "otp")) {
		snprintf(auth, sizeof(auth), "%s%sotp", u.auth, u.auth[0] ? "," : "");
		rc = store_user_update(r->api->st, u.id, NULL, auth, -1);
	}
	if (rc == STORE_OK) {
		log_info("auth: TOTP enrolled for '%s'", u.name);
		req_json(r, 200, json_pack("{s:s, s:s}", "user", u.name, "uri", uri));
	} else {
		req_store_error(r, rc, "user", u.name);
	}
	if (uri)
		sodium_memzero(uri, strlen(uri));
	free(uri);
	free(sealed);
	user_free(&u);
	return 0;
}

int h_user_otp_disable(struct req *r)
{
	struct user u = { 0 };
	char auth[64] = "";
	size_t n = 0;
	int rc;

	if (!user_resolve(r, &u))
		return 0;
	rc = store_user_otp_set(r->api->st, u.id, NULL);
	for (const char *b = "file"; rc == STORE_OK && b; b = strcmp(b, "file") == 0 ? "ldap" : NULL)
		if (list_has(u.auth, b))
			n += (size_t)snprintf(auth + n, sizeof(auth) - n, "%s%s", n ? "," : "", b);
	if (rc == STORE_OK)
		rc = store_user_update(r->api->st, u.id, NULL, auth, -1);
	user_free(&u);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "user", r->params[0]);
	return req_json(r, 200, json_object());
}

struct backoff_dump {
	json_t *arr;
	int64_t now;
};

static void backoff_entry_json(void *arg, const char *key, unsigned failures, double delay_s,
			       int64_t until_ms)
{
	struct backoff_dump *d = arg;
	double wait = until_ms > d->now ? (double)(until_ms - d->now) / 1000.0 : 0.0;

	json_array_append_new(d->arr, json_pack("{s:s, s:i, s:f, s:f}", "key", key,
						"failures", (int)failures, "delay", delay_s,
						"retry_after", wait));
}

int h_auth_backoff(struct req *r)
{
	struct backoff_dump d = { .arr = json_array(), .now = now_ms() };

	backoff_foreach(r->api->auth->backoff, backoff_entry_json, &d);
	return req_json(r, 200, d.arr);
}
