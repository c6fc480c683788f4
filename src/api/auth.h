/*
 * auth — what the authentication handlers share (identity.c, login.c,
 * accounts.c); nothing outside them includes this.
 *
 * Checking credentials (login.c) runs in two halves: on the loop, the
 * user's row, the throttle and the password file are read; on a worker,
 * argon2id (or the LDAP bind) runs; on the loop again, the one-time code
 * is checked against the store and the outcome decided (auth/policy.h).
 * While a check for a user name or from a peer is under way, another one
 * for either waits (429): otherwise parallel attempts would all pass the
 * backoff before the first failure is counted.
 */
#ifndef HC_API_AUTH_H
#define HC_API_AUTH_H

#include "api/req.h"
#include "auth/policy.h"
#include "common/ratelimit.h"

#include <stdint.h>
#include <sys/types.h>

#define RATE_BUCKETS 256
/* Credential checks under way at once (each holds a worker for up to an
 * argon2id run or an LDAP timeout). */
#define AUTH_INFLIGHT_MAX 32

struct user_bucket {
	bool used;
	struct rate_bucket b;
};

struct api_auth {
	struct api_ctx *ctx;
	char *passwd_path;
	struct passwd_file *pw;
	char *key_path;
	struct throttle *throttle;
	struct user_bucket buckets[RATE_BUCKETS];
	/* local accounts that map to hackcloud users: uid range, or none */
	bool local_users;
	uid_t local_min, local_max;
	/* credential checks under way: their user names and peer keys */
	char inflight[AUTH_INFLIGHT_MAX][2][64];
	size_t n_inflight;
	/* metrics_token_file's token, hashed (token_hash); none when unset */
	bool metrics_token;
	char metrics_hash[65];
};

int64_t auth_now_ms(void);
/* Whole seconds to wait, rounded up, at least 1 (Retry-After). */
int auth_wait_secs(double s);

/* ---- login.c: checking credentials ---------------------------------------- */

enum cred_mode {
	CRED_LOGIN,             /* a login: password, then the code (policy.h) */
	CRED_PROOF,             /* a proof of identity: the password or a code */
};

/*
 * Check name's credentials off the loop, then done(r, arg, result, user)
 * on the loop (user: the row when found, else NULL).  Failures are
 * counted and logged here; done decides the answer for LOGIN_OK and may
 * rely on one being set for the others (401 invalid_credentials, 401
 * otp_required, 503, 429 while throttled or busy).  Returns 0; call it
 * last in a handler: `return cred_check(…);`.
 */
int cred_check(struct req *r, enum cred_mode mode, const char *name, const char *password,
	       const char *otp,
	       void (*done)(struct req *r, void *arg, enum login_result res, const struct user *u),
	       void *arg);

/* Validate the password and otp members a login or proof may carry;
 * false with a 400 set. */
bool cred_fields(struct req *r, const char **password, const char **otp);

/* ---- accounts.c ----------------------------------------------------------- */

json_t *user_json(const struct user *u);

#endif
