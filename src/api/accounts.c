/*
 * accounts — users, their credentials and their tokens (DESIGN §8):
 *
 *   GET    /v1/whoami
 *   GET    /v1/tokens             live tokens (the caller's; all for admins)
 *   DELETE /v1/tokens/{id}
 *   GET    /v1/users              (members see themselves only)
 *   POST   /v1/users              admin: {name, role?, auth?, password?}
 *   GET    /v1/users/{name}       self or admin
 *   PATCH  /v1/users/{name}       admin: {role?, auth?, enabled?} (members: 404/403)
 *   DELETE /v1/users/{name}       admin; refused while the user owns anything
 *   POST   /v1/users/{name}/password   self or admin: {password, current_password?, otp?}
 *   POST   /v1/users/{name}/otp   self or admin: enrol TOTP → otpauth:// URI
 *   DELETE /v1/users/{name}/otp   self or admin
 *   GET    /v1/auth/backoff       admin: the failed-login backoff state
 *
 * A member who names somebody else's user or token gets 404, as for every
 * other resource.
 *
 * Credentials (issue 11 §10):
 *   - a member changing their own password or OTP with a bearer token
 *     proves who they are first: "current_password" or "otp" (a current
 *     code), checked and throttled like a login (login.c) — a stolen token
 *     alone cannot take the account over or strip its second factor.
 *     Admins, and local users on the unix socket (the system vouched for
 *     them), need no proof;
 *   - a new password, an OTP enrolment or its removal revokes the user's
 *     tokens — all but the one the request carries when users change
 *     their own (that session stays; every other ends); disabling a user
 *     revokes all of them (store.h);
 *   - new passwords are hashed on a worker (argon2id is slow on purpose).
 */
#include "api/auth.h"
#include "api/codec.h"
#include "api/handlers.h"

#include "auth/password.h"
#include "auth/seal.h"
#include "auth/throttle.h"
#include "auth/totp.h"
#include "common/log.h"
#include "common/validate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *user_json(const struct user *u)
{
	char id[9];

	id8_format(u->id, id);
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I}", "id", id, "name", u->name,
			 "role", u->role, "auth", u->auth ? u->auth : "", "enabled", u->enabled,
			 "otp", u->otp, "created", (json_int_t)u->created);
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

/* End the user's other sessions after a change of credentials: all of
 * them, except the caller's own when users change their own. */
static void revoke_sessions(struct req *r, const struct user *u, const char *why)
{
	uint64_t keep = u->id == r->caller ? r->token_id : 0;

	if (store_token_revoke_user(r->api->st, u->id, keep) == STORE_OK)
		log_info("auth: %s of '%s': its %stokens revoked", why, u->name,
			 keep ? "other " : "");
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

/* ---- new passwords, hashed on a worker -------------------------------------- */

struct new_password {
	char *password;                   /* wiped when freed */
	char hash[PASSWORD_HASH_LEN];
	int rc;
	struct user u;                    /* create: the row to make; set: the user */
	char auth[64];
};

static struct new_password *new_password(const char *password)
{
	struct new_password *np = calloc(1, sizeof(*np));

	if (np && (np->password = strdup(password)) == NULL) {
		free(np);
		np = NULL;
	}
	return np;
}

static void new_password_free(struct new_password *np)
{
	sodium_memzero(np->password, strlen(np->password));
	free(np->password);
	sodium_memzero(np->hash, sizeof(np->hash));
	user_free(&np->u);
	free(np);
}

static void hash_work(void *arg)
{
	struct new_password *np = arg;

	np->rc = password_hash(np->password, np->hash);
}

/* Create the row, then its password file line; without the line the user
 * would be half made, so the row goes again. */
static void user_create_finish(struct req *r, void *arg, bool ran)
{
	struct new_password *np = arg;
	struct user *u = &np->u;
	struct user out = { 0 };
	int rc;

	if (!ran || np->rc != 0) {
		if (ran)
			req_error(r, 500, "internal", "cannot hash the password");
		new_password_free(np);
		return;
	}
	rc = store_user_create(r->api->st, u);
	if (rc != STORE_OK) {
		req_store_error(r, rc, "user", u->name);
	} else if (passwd_set_hash(r->api->auth->pw, u->name, np->hash) != PASSWD_OK) {
		store_user_delete(r->api->st, u->id);
		req_error(r, 500, "internal", "cannot write the password file");
	} else if ((rc = store_user_get_id(r->api->st, u->id, &out)) != STORE_OK) {
		req_store_error(r, rc, "user", u->name);
	} else {
		log_info("auth: user '%s' created (%s, backends '%s')", u->name, u->role, u->auth);
		req_json(r, 201, user_json(&out));
		user_free(&out);
	}
	new_password_free(np);
}

int h_user_create(struct req *r)
{
	static const char *const keys[] = { "name", "role", "auth", "password", NULL };
	const char *name, *role, *password;
	char auth[64] = "";
	json_t *jauth;
	struct user u = { 0 }, exists = { 0 };
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
	/* Cheap refusals before the expensive hash (the create checks again). */
	rc = store_user_get(r->api->st, name, &exists);
	user_free(&exists);
	if (rc == STORE_OK)
		return req_store_error(r, STORE_CONFLICT, "user", name);

	u = (struct user){ .name = strdup(name), .role = strdup(role ? role : "member"),
			   .auth = strdup(auth), .enabled = true };
	if (password == NULL) {
		rc = store_user_create(r->api->st, &u);
		if (rc == STORE_OK) {
			struct user out = { 0 };
			log_info("auth: user '%s' created (%s, backends '%s')", name, u.role, auth);
			rc = store_user_get_id(r->api->st, u.id, &out);
			if (rc == STORE_OK)
				req_json(r, 201, user_json(&out));
			user_free(&out);
		}
		user_free(&u);
		return rc == STORE_OK ? 0 : req_store_error(r, rc, "user", name);
	}
	struct new_password *np = new_password(password);
	if (np == NULL || u.name == NULL || u.role == NULL || u.auth == NULL) {
		user_free(&u);
		if (np)
			new_password_free(np);
		return req_error(r, 500, "internal", "out of memory");
	}
	np->u = u;
	return req_defer(r, hash_work, user_create_finish, np);
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
		log_info("auth: user '%s' disabled; its tokens revoked", u.name);
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

/* ---- changes of one's own credentials: proof first ------------------------ */

/* A change of credentials, waiting for its proof. */
struct change {
	int (*apply)(struct req *r, struct change *c);
	struct user u;
	struct new_password *np;          /* a new password, or NULL */
};

static void change_free(struct change *c)
{
	user_free(&c->u);
	if (c->np)
		new_password_free(c->np);
	free(c);
}

/* A change of the path's user by apply; NULL with the answer set. */
static struct change *change_new(struct req *r, int (*apply)(struct req *r, struct change *c))
{
	struct change *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		req_error(r, 500, "internal", "out of memory");
		return NULL;
	}
	c->apply = apply;
	if (!user_resolve(r, &c->u)) {
		change_free(c);
		return NULL;
	}
	return c;
}

static void proven(struct req *r, void *arg, enum login_result res, const struct user *who)
{
	struct change *c = arg;

	/* Any other result has its answer set (login.c). */
	if (res == LOGIN_OK)
		c->apply(r, c);
	else
		change_free(c);
}

/*
 * Run c->apply now, or once the caller has proven who they are: a member
 * acting on themselves with a bearer token must give "current_password"
 * or "otp" (a current code).  The request's body may carry them besides
 * the change's own members.  Takes c.
 */
static int with_proof(struct req *r, struct change *c)
{
	const char *password = NULL, *otp = NULL;

	if (r->admin || r->token_id == 0 || c->u.id != r->caller)
		return c->apply(r, c);
	if (r->json && (!get_str(r, "current_password", false, &password) ||
			!get_str(r, "otp", false, &otp) || !cred_fields(r, &password, &otp))) {
		change_free(c);
		return 0;
	}
	if ((password == NULL || password[0] == '\0') && otp == NULL) {
		change_free(c);
		return req_error(r, 403, "proof_required",
				 "give your current password ('current_password') or a one-time "
				 "code ('otp') to change your credentials");
	}
	return cred_check(r, CRED_PROOF, c->u.name, password, otp, proven, c);
}

static void password_set_finish(struct req *r, void *arg, bool ran)
{
	struct change *c = arg;
	struct user *u = &c->u;

	if (!ran || c->np->rc != 0) {
		if (ran)
			req_error(r, 500, "internal", "cannot hash the password");
		change_free(c);
		return;
	}
	if (passwd_set_hash(r->api->auth->pw, u->name, c->np->hash) != PASSWD_OK) {
		req_error(r, 500, "internal", "cannot write the password file");
		change_free(c);
		return;
	}
	if (!list_has(u->auth, "file") && !list_has(u->auth, "ldap")) {
		/* Setting a password enables the file backend for a user who had none. */
		char auth[64];
		snprintf(auth, sizeof(auth), "file%s", list_has(u->auth, "otp") ? ",otp" : "");
		store_user_update(r->api->st, u->id, NULL, auth, -1);
	}
	log_info("auth: password of '%s' changed by %s", u->name, r->source);
	revoke_sessions(r, u, "a new password");
	req_json(r, 200, json_object());
	change_free(c);
}

static void change_hash_work(void *arg)
{
	hash_work(((struct change *)arg)->np);
}

static int password_apply(struct req *r, struct change *c)
{
	return req_defer(r, change_hash_work, password_set_finish, c);
}

int h_user_password(struct req *r)
{
	static const char *const keys[] = { "password", "current_password", "otp", NULL };
	struct change *c;
	const char *password;

	if (!only_keys(r, keys) || !get_str(r, "password", true, &password) ||
	    (c = change_new(r, password_apply)) == NULL)
		return 0;
	if (!password_acceptable(r, password)) {
		change_free(c);
		return 0;
	}
	/* The hash job's own copy of the new password. */
	if ((c->np = new_password(password)) == NULL) {
		change_free(c);
		return req_error(r, 500, "internal", "out of memory");
	}
	return with_proof(r, c);
}

static int otp_enable_apply(struct req *r, struct change *c)
{
	struct user *u = &c->u;
	unsigned char secret[TOTP_SECRET_LEN], key[SEAL_KEY_LEN];
	char *sealed = NULL, *uri = NULL, *err = NULL, auth[64];
	int rc;

	if (seal_key_load(r->api->auth->key_path, key, &err) < 0) {
		log_err("auth: %s", err);
		free(err);
		change_free(c);
		return req_error(r, 500, "internal", "the host's secret key is unusable");
	}
	totp_secret_new(secret);
	sealed = seal_encrypt(key, secret, sizeof(secret));
	uri = totp_uri(r->api->cfg->otp_issuer, u->name, secret, sizeof(secret));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(secret, sizeof(secret));
	rc = sealed && uri ? store_user_otp_set(r->api->st, u->id, sealed) : STORE_ERR;
	if (rc == STORE_OK && !list_has(u->auth, "otp")) {
		snprintf(auth, sizeof(auth), "%s%sotp", u->auth, u->auth[0] ? "," : "");
		rc = store_user_update(r->api->st, u->id, NULL, auth, -1);
	}
	if (rc == STORE_OK) {
		log_info("auth: TOTP enrolled for '%s'", u->name);
		revoke_sessions(r, u, "an OTP enrolment");
		req_json(r, 200, json_pack("{s:s, s:s}", "user", u->name, "uri", uri));
	} else {
		req_store_error(r, rc, "user", u->name);
	}
	if (uri)
		sodium_memzero(uri, strlen(uri));
	free(uri);
	free(sealed);
	change_free(c);
	return 0;
}

int h_user_otp_enable(struct req *r)
{
	static const char *const keys[] = { "current_password", "otp", NULL };
	struct change *c;

	if (!only_keys(r, keys) || (c = change_new(r, otp_enable_apply)) == NULL)
		return 0;
	return with_proof(r, c);
}

static int otp_disable_apply(struct req *r, struct change *c)
{
	struct user *u = &c->u;
	char auth[64] = "";
	size_t n = 0;
	int rc = store_user_otp_set(r->api->st, u->id, NULL);

	for (const char *b = "file"; rc == STORE_OK && b; b = strcmp(b, "file") == 0 ? "ldap" : NULL)
		if (list_has(u->auth, b))
			n += (size_t)snprintf(auth + n, sizeof(auth) - n, "%s%s", n ? "," : "", b);
	if (rc == STORE_OK)
		rc = store_user_update(r->api->st, u->id, NULL, auth, -1);
	if (rc == STORE_OK) {
		log_info("auth: TOTP removed for '%s' by %s", u->name, r->source);
		revoke_sessions(r, u, "the removal of OTP");
		req_json(r, 200, json_object());
	} else {
		req_store_error(r, rc, "user", u->name);
	}
	change_free(c);
	return 0;
}

int h_user_otp_disable(struct req *r)
{
	static const char *const keys[] = { "current_password", "otp", NULL };
	struct change *c;

	if (!only_keys(r, keys) || (c = change_new(r, otp_disable_apply)) == NULL)
		return 0;
	return with_proof(r, c);
}

/* ---- the backoff state ------------------------------------------------------- */

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
	struct backoff_dump d = { .arr = json_array(), .now = auth_now_ms() };

	throttle_foreach(r->api->auth->throttle, backoff_entry_json, &d);
	return req_json(r, 200, d.arr);
}
