/*
 * policy — what a login (or a proof of identity) checks and what it
 * answers, as pure functions of the facts, so that "one answer and one
 * cost for every failure" (issue 11 §7) is a property of a table the unit
 * tests walk, not of a chain of ifs.
 *
 * Every attempt runs exactly one password check: the user's own (argon2id
 * against their hash, or an LDAP bind), else argon2id against a dummy hash
 * of the same cost — for unknown users, disabled users, users without a
 * password backend (OTP-only, none at all) and empty passwords alike.  A
 * one-time code is looked at only once that check has passed (or, for
 * OTP-only users, instead of it).  Every failure is the same DENIED, and
 * every DENIED counts in the backoff.  The one answer that differs is
 * OTP_REQUIRED, given only after a right password: it tells nothing that
 * the password did not.  LDAP users pay a bind instead of argon2id; the
 * directory's latency is not hidden.
 */
#ifndef HC_AUTH_POLICY_H
#define HC_AUTH_POLICY_H

#include <stdbool.h>

struct login_facts {
	bool found, enabled;            /* the user exists / is enabled */
	bool file, ldap, otp;           /* its backends */
	bool password_given, otp_given;
};

enum login_check {
	CHECK_DUMMY,                    /* argon2id against the dummy hash */
	CHECK_FILE,                     /* argon2id against the user's hash */
	CHECK_LDAP,                     /* the dummy argon2id, then a bind as the user's entry */
};

enum login_result {
	LOGIN_OK,
	LOGIN_DENIED,
	LOGIN_OTP_REQUIRED,
	LOGIN_UNAVAILABLE,              /* the directory cannot be reached */
};

/* Results of the checks, as the caller ran them. */
enum check_result { CHECK_PASSED, CHECK_FAILED, CHECK_ERROR, CHECK_SKIPPED };

/* The one password check an attempt runs. */
enum login_check login_check_for(const struct login_facts *f);
/* Whether the code is to be checked, given the password check's result. */
bool login_wants_otp(const struct login_facts *f, enum check_result password);
/* The answer of a login. */
enum login_result login_result(const struct login_facts *f, enum check_result password,
			       enum check_result otp);

/*
 * A proof of identity for a change of one's own credentials while logged
 * in (issue 11 §10: a token alone cannot disable OTP): the current
 * password or a current code, either suffices.  The password check runs
 * as for a login (one check, dummy when there is no password backend);
 * the code is checked when given and the user has OTP.
 */
bool proof_wants_otp(const struct login_facts *f, enum check_result password);
enum login_result proof_result(const struct login_facts *f, enum check_result password,
			       enum check_result otp);

#endif
