/*
 * ldap — password check against an LDAP directory (DESIGN §8), OpenLDAP's
 * libldap: search the user's entry (as a service account or anonymously),
 * then bind as that entry with the password given.
 *
 * Invariants:
 *   - the user name enters the search filter only escaped (RFC 4515), so
 *     "*" or ")(uid=*" matches nothing but itself;
 *   - exactly one entry must match; none or several is a denial;
 *   - an empty password is refused before any network traffic: LDAP treats
 *     a simple bind with a DN and no password as an unauthenticated bind,
 *     which servers answer with success;
 *   - no step waits longer than about cfg->timeout_s — connecting, each
 *     read or write (the TLS handshake's too), each answer: a dead or hung
 *     server is AUTH_UNAVAILABLE, not a stuck login (name resolution is the
 *     system resolver's and not bounded here);
 *   - passwords never appear in *err or anywhere else we write.
 * One connection per call, always unbound before returning.  Blocking, so
 * a caller with an event loop pays up to a few timeouts per call.  Writing
 * to a server that hung up raises SIGPIPE: the process must ignore or
 * block it (hcd blocks it).
 */
#ifndef HC_AUTH_LDAP_H
#define HC_AUTH_LDAP_H

#include <stdbool.h>
#include <stddef.h>

enum auth_result {
	AUTH_OK = 0,
	AUTH_DENIED,            /* wrong password, no such user, ambiguous user */
	AUTH_UNAVAILABLE,       /* server unreachable, timeout, TLS or config error */
};

struct ldap_auth_cfg {
	const char *uri;        /* "ldap://h" or "ldaps://h"; several space-separated */
	bool starttls;          /* StartTLS on ldap:// (required when set) */
	const char *base;       /* search base, e.g. "ou=people,dc=example,dc=org" */
	const char *filter;     /* exactly one "%s"; NULL = "(uid=%s)" */
	const char *bind_dn;    /* service account; NULL or "" = anonymous search */
	const char *bind_password;
	int timeout_s;          /* per step; <= 0 = 5, at most 600 */
	const char *ca_file;    /* PEM CA bundle for ldaps/StartTLS; NULL = system */
};

/*
 * Check user's password.  On anything but AUTH_OK, *err (when err is not
 * NULL) receives a malloc'd one-line reason for the log — the client
 * should only learn denied/unavailable.
 */
enum auth_result ldap_authenticate(const struct ldap_auth_cfg *cfg, const char *user,
				   const char *password, char **err);

/* The len bytes at s as an RFC 4515 assertion value: '*', '(', ')', '\',
 * NUL, other control bytes and non-ASCII bytes written as "\xx".
 * malloc'd NUL-terminated; NULL when out of memory. */
char *ldap_filter_escape(const char *s, size_t len);

#endif
