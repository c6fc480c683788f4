/*
 * login — checking credentials, logging in and out:
 *
 *   POST /v1/login     {user, password?, otp?} → a bearer token
 *   POST /v1/logout    revoke the token this request carries
 *
 * A check (cred_check, auth.h) follows auth/policy.h: one password check
 * per attempt (the user's, or argon2id against a dummy hash), run on a
 * worker through req_defer so that argon2id's quarter second and an LDAP
 * server's timeouts never hold the loop; then the one-time code on the
 * loop (it needs the store).  Every failure is the same answer and is
 * counted against the user name and the peer (auth/throttle.h); while
 * either must wait, attempts are answered 429 without being checked, and
 * while a check for either is under way another one waits too.  No
 * secret is ever logged.
 */
#include "api/auth.h"
#include "api/codec.h"
#include "api/handlers.h"

#include "auth/ldap.h"
#include "auth/password.h"
#include "auth/seal.h"
#include "auth/throttle.h"
#include "auth/token.h"
#include "auth/totp.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/validate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- checks under way ------------------------------------------------------ */

static bool inflight_busy(const struct api_auth *a, const char *name, const char *peer)
{
	for (size_t i = 0; i < a->n_inflight; i++)
		if (strcmp(a->inflight[i][0], name) == 0 || strcmp(a->inflight[i][1], peer) == 0)
			return true;
	return a->n_inflight == AUTH_INFLIGHT_MAX;
}

static void inflight_add(struct api_auth *a, const char *name, const char *peer)
{
	snprintf(a->inflight[a->n_inflight][0], sizeof(a->inflight[0][0]), "%s", name);
	snprintf(a->inflight[a->n_inflight][1], sizeof(a->inflight[0][1]), "%s", peer);
	a->n_inflight++;
}

static void inflight_remove(struct api_auth *a, const char *name, const char *peer)
{
	for (size_t i = 0; i < a->n_inflight; i++) {
		if (strcmp(a->inflight[i][0], name) == 0 && strcmp(a->inflight[i][1], peer) == 0) {
			memcpy(a->inflight[i], a->inflight[--a->n_inflight], sizeof(a->inflight[i]));
			return;
		}
	}
}

/* ---- the one-time code --------------------------------------------------- */

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

/* Passed: the code is right and now used (a replay fails). */
static enum check_result otp_check(struct req *r, uint64_t user, const char *code)
{
	size_t len = 0;
	int64_t step = 0, accepted = 0;
	unsigned char *secret = otp_secret(r, user, &len, &step);
	enum check_result rc = CHECK_FAILED;

	if (secret == NULL)
		return CHECK_FAILED;
	if (totp_verify(secret, len, (int64_t)time(NULL), code, step, &accepted) == 0 &&
	    store_user_otp_use(r->api->st, user, accepted) == STORE_OK)
		rc = CHECK_PASSED;
	sodium_memzero(secret, len);
	free(secret);
	return rc;
}

/* ---- a check ------------------------------------------------------------- */

struct cred_job {
	struct api_auth *a;
	enum cred_mode mode;
	char name[NAME_MAXLEN + 1];
	char peer[sizeof(((struct req *)0)->peer_key)];
	char *password;                   /* a copy, wiped when freed */
	char otp[9];
	struct user u;
	struct login_facts facts;
	enum login_check check;
	bool real_hash;
	char hash[PASSWORD_HASH_LEN];
	/* LDAP: the settings (hcd's config outlives every job) */
	const struct config *cfg;
	/* the worker's result */
	enum check_result password_result;
	void (*done)(struct req *r, void *arg, enum login_result res, const struct user *u);
	void *arg;
};

static void job_free(struct cred_job *j)
{
	if (j->password) {
		sodium_memzero(j->password, strlen(j->password));
		free(j->password);
	}
	sodium_memzero(j->hash, sizeof(j->hash));
	user_free(&j->u);
	free(j);
}

static enum check_result ldap_check(const struct config *cfg, const char *user, const char *password)
{
	struct ldap_auth_cfg lc = {
		.uri = cfg->ldap_uri, .starttls = cfg->ldap_starttls != 0, .base = cfg->ldap_base,
		.filter = cfg->ldap_filter, .bind_dn = cfg->ldap_bind_dn,
		.timeout_s = cfg->ldap_timeout, .ca_file = cfg->ldap_ca_file,
	};
	char *bind_pw = NULL, *err = NULL;
	int rc;

	if (cfg->ldap_uri == NULL || cfg->ldap_uri[0] == '\0')
		return CHECK_ERROR;
	if (cfg->ldap_bind_dn && cfg->ldap_bind_dn[0] && cfg->ldap_bind_password_file &&
	    cfg->ldap_bind_password_file[0]) {
		if (file_read(cfg->ldap_bind_password_file, 4096, &bind_pw, NULL) < 0) {
			log_err("auth: cannot read %s", cfg->ldap_bind_password_file);
			return CHECK_ERROR;
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
	return rc == AUTH_OK ? CHECK_PASSED : rc == AUTH_DENIED ? CHECK_FAILED : CHECK_ERROR;
}

/* On a worker: the one password check (policy.h), nothing else. */
static void cred_work(void *arg)
{
	struct cred_job *j = arg;

	/* The dummy check costs what a real one does and never passes.  An
	 * LDAP user pays it too, before the bind: otherwise a failure that
	 * took a bind's few milliseconds instead of argon2id's ~0.2 s would
	 * tell an existing LDAP user from an unknown name. */
	bool match = password_verify(j->hash, j->password && j->password[0] ? j->password : "-");
	stat_inc(STAT_PASSWORD_CHECKS);
	j->password_result = match && j->real_hash ? CHECK_PASSED : CHECK_FAILED;
	if (j->check == CHECK_LDAP)
		j->password_result = ldap_check(j->cfg, j->name, j->password);
}

static const char *why_denied(const struct cred_job *j)
{
	const struct login_facts *f = &j->facts;

	if (!f->found)
		return "unknown user";
	if (!f->enabled)
		return "disabled user";
	if (!f->file && !f->ldap && !f->otp)
		return "no login backend";
	if ((f->file || f->ldap) && j->password_result != CHECK_PASSED &&
	    (j->mode == CRED_LOGIN || f->password_given))
		return f->password_given ? "wrong password" : "no password";
	if (!f->otp_given)
		return "no one-time code";
	return "wrong or reused one-time code";
}

static void cred_finish(struct req *r, void *arg, bool ran)
{
	struct cred_job *j = arg;
	struct api_auth *a = r->api->auth;
	enum check_result otp = CHECK_SKIPPED;
	enum login_result res;
	bool wants_otp;

	inflight_remove(a, j->name, j->peer);
	if (!ran) {
		req_error(r, 503, "unavailable", "hcd is stopping");
		j->done(r, j->arg, LOGIN_UNAVAILABLE, NULL);
		job_free(j);
		return;
	}
	wants_otp = j->mode == CRED_LOGIN ? login_wants_otp(&j->facts, j->password_result)
					  : proof_wants_otp(&j->facts, j->password_result);
	if (wants_otp)
		otp = otp_check(r, j->u.id, j->otp);
	res = j->mode == CRED_LOGIN ? login_result(&j->facts, j->password_result, otp)
				    : proof_result(&j->facts, j->password_result, otp);
	switch (res) {
	case LOGIN_OK:
		throttle_success(a->throttle, j->name, j->peer);
		break;
	case LOGIN_OTP_REQUIRED:
		req_error(r, 401, "otp_required", "a one-time code is required");
		break;
	case LOGIN_UNAVAILABLE:
		req_error(r, 503, "auth_unavailable",
			  "the LDAP server cannot be reached; try again later");
		break;
	case LOGIN_DENIED: {
		unsigned failures;
		double delay;
		stat_inc(STAT_LOGIN_FAILURES);
		throttle_fail(a->throttle, j->name, j->peer, auth_now_ms());
		throttle_user_state(a->throttle, j->name, &failures, &delay);
		log_warn("auth: %s of '%s' from %s failed (%s); %u failures, next attempt in %.0f s",
			 j->mode == CRED_LOGIN ? "login" : "proof of identity", j->name, r->source,
			 why_denied(j), failures, delay);
		if (j->mode == CRED_LOGIN)
			req_error(r, 401, "invalid_credentials", "wrong user name, password or code");
		else
			req_error(r, 403, "wrong_proof", "the current password or code is wrong");
		break;
	}
	}
	j->done(r, j->arg, res, j->facts.found ? &j->u : NULL);
	job_free(j);
}

bool cred_fields(struct req *r, const char **password, const char **otp)
{
	if (*password && strlen(*password) > PASSWORD_MAX) {
		req_error(r, 400, "bad_request", "password too long");
		return false;
	}
	if (*otp && (strlen(*otp) < 6 || strlen(*otp) > 8 || strspn(*otp, "0123456789") != strlen(*otp))) {
		req_error(r, 400, "bad_request", "'otp' must be 6 to 8 digits");
		return false;
	}
	return true;
}

int cred_check(struct req *r, enum cred_mode mode, const char *name, const char *password,
	       const char *otp,
	       void (*done)(struct req *r, void *arg, enum login_result res, const struct user *u),
	       void *arg)
{
	struct api_auth *a = r->api->auth;
	struct cred_job *j;
	double wait = 0;
	int rc;

	if (!throttle_check(a->throttle, name, r->peer_key, auth_now_ms(), &wait)) {
		int secs = auth_wait_secs(wait);
		stat_inc(STAT_LOGIN_THROTTLED);
		req_retry_after(r, secs);
		req_error(r, 429, "too_many_attempts", "too many failed logins; retry in %d s", secs);
		done(r, arg, LOGIN_DENIED, NULL);
		return 0;
	}
	if (inflight_busy(a, name, r->peer_key)) {
		req_retry_after(r, 1);
		req_error(r, 429, "too_many_attempts",
			  "another login for this user or from this address is under way");
		done(r, arg, LOGIN_DENIED, NULL);
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (password && (j->password = strdup(password)) == NULL)) {
		free(j);
		req_error(r, 500, "internal", "out of memory");
		done(r, arg, LOGIN_UNAVAILABLE, NULL);
		return 0;
	}
	j->a = a;
	j->mode = mode;
	j->cfg = r->api->cfg;
	j->done = done;
	j->arg = arg;
	snprintf(j->name, sizeof(j->name), "%s", name);
	snprintf(j->peer, sizeof(j->peer), "%s", r->peer_key);
	snprintf(j->otp, sizeof(j->otp), "%s", otp ? otp : "");
	rc = store_user_get(r->api->st, name, &j->u);
	if (rc != STORE_OK && rc != STORE_NOTFOUND) {
		job_free(j);
		req_store_error(r, rc, "user", name);
		done(r, arg, LOGIN_UNAVAILABLE, NULL);
		return 0;
	}
	j->facts = (struct login_facts){
		.found = rc == STORE_OK, .enabled = rc == STORE_OK && j->u.enabled,
		.file = rc == STORE_OK && list_has(j->u.auth, "file"),
		.ldap = rc == STORE_OK && list_has(j->u.auth, "ldap"),
		.otp = rc == STORE_OK && list_has(j->u.auth, "otp"),
		.password_given = password && password[0], .otp_given = otp != NULL,
	};
	j->check = login_check_for(&j->facts);
	j->real_hash = passwd_hash_for(a->pw, j->check == CHECK_FILE ? name : "", j->hash);
	inflight_add(a, j->name, j->peer);
	return req_defer(r, cred_work, cred_finish, j);
}

/* ---- logging in and out ---------------------------------------------------- */

static void issue_token(struct req *r, const struct user *u)
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
		req_store_error(r, rc, "token", "");
		return;
	}
	id8_format(t.id, id);
	req_json(r, 200, json_pack("{s:s, s:s, s:I, s:o}", "token", tok, "id", id,
				   "expires", (json_int_t)t.expires, "user", user_json(u)));
	sodium_memzero(tok, sizeof(tok));
	log_info("auth: '%s' logged in from %s (token %s)", u->name, r->source, id);
	/* The request now stands for that user (the audit trail says who). */
	r->caller = u->id;
	r->identified = true;
}

static void login_done(struct req *r, void *arg, enum login_result res, const struct user *u)
{
	if (res == LOGIN_OK)
		issue_token(r, u);
}

int h_login(struct req *r)
{
	static const char *const keys[] = { "user", "password", "otp", NULL };
	const char *name, *password, *otp;

	if (!only_keys(r, keys) || !get_str(r, "user", true, &name) ||
	    !get_str(r, "password", false, &password) || !get_str(r, "otp", false, &otp) ||
	    !cred_fields(r, &password, &otp))
		return 0;
	if (!name_valid(name))
		return req_error(r, 400, "bad_name", "user name must match [a-z0-9][a-z0-9-]{0,62}");
	snprintf(r->audit_ref, sizeof(r->audit_ref), "%s", name);
	return cred_check(r, CRED_LOGIN, name, password, otp, login_done, NULL);
}

int h_logout(struct req *r)
{
	static const char *const no_fields[] = { NULL };
	int rc;

	if (!only_keys(r, no_fields))
		return 0;
	if (r->token_id == 0)
		return req_error(r, 400, "bad_request", "this request carries no token");
	rc = store_token_delete(r->api->st, r->token_id, OWNER_ANY);
	if (rc != STORE_OK)
		return req_store_error(r, rc, "token", "");
	return req_json(r, 200, json_object());
}
