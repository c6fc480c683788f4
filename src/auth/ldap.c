/* ldap — see ldap.h. */
#include "auth/ldap.h"

#include "common/fsutil.h"

#include <ldap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define DEFAULT_FILTER  "(uid=%s)"
#define DEFAULT_TIMEOUT 5

char *ldap_filter_escape(const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out = malloc(len * 3 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c >= 0x7f) {
			*o++ = '\\';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		} else {
			*o++ = (char)c;
		}
	}
	*o = '\0';
	return out;
}

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char **err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	free(*err);
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
}

/* The template with its one "%s" replaced by the escaped name — built by
 * hand, because the template is configuration and must never be a printf
 * format.  NULL when the template does not have exactly one "%s" and no
 * other '%'. */
static char *filter_build(const char *tmpl, const char *escaped)
{
	const char *at = strstr(tmpl, "%s");
	size_t pre;

	if (at == NULL || strchr(tmpl, '%') != at || strchr(at + 2, '%') != NULL)
		return NULL;
	pre = (size_t)(at - tmpl);
	return str_printf("%.*s%s%s", (int)pre, tmpl, escaped, at + 2);
}

/* Errors that mean "these credentials are not good", as opposed to "we
 * could not find out". */
static bool bind_denied(int rc)
{
	switch (rc) {
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_UNWILLING_TO_PERFORM:     /* e.g. a locked or expired account */
	case LDAP_CONSTRAINT_VIOLATION:     /* password policy lockout */
	case LDAP_INVALID_DN_SYNTAX:
	case LDAP_NO_SUCH_OBJECT:
		return true;
	}
	return false;
}

static int set_options(LDAP *ld, const struct ldap_auth_cfg *cfg, char **err)
{
	int version = LDAP_VERSION3, off = 0, demand = LDAP_OPT_X_TLS_DEMAND, rc;
	int secs = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT;
	struct timeval tv = { .tv_sec = secs };

	/* Network timeout bounds connect(); the plain timeout bounds waiting
	 * for each synchronous operation's answer (bind, StartTLS, search). */
	if ((rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv)) != LDAP_OPT_SUCCESS) {
		set_err(err, "ldap: cannot set options: %s", ldap_err2string(rc));
		return -1;
	}
	if (cfg->ca_file && cfg->ca_file[0]) {
		/* Options on the handle only take effect in a new TLS context,
		 * which NEWCTX makes from them (and must come last). */
		if ((rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file)) != LDAP_OPT_SUCCESS ||
		    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand)) != LDAP_OPT_SUCCESS ||
		    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &off)) != LDAP_OPT_SUCCESS) {
			set_err(err, "ldap: cannot use CA file %s: %s", cfg->ca_file, ldap_err2string(rc));
			return -1;
		}
	}
	return 0;
}

enum auth_result ldap_authenticate(const struct ldap_auth_cfg *cfg, const char *user,
				   const char *password, char **err)
{
	const char *tmpl = cfg->filter && cfg->filter[0] ? cfg->filter : DEFAULT_FILTER;
	int secs = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT;
	struct timeval tv = { .tv_sec = secs };
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	char *escaped = NULL, *filter = NULL, *dn = NULL;
	LDAPMessage *res = NULL, *entry;
	enum auth_result result = AUTH_UNAVAILABLE;
	struct berval cred;
	LDAP *ld = NULL;
	int rc, n;

	if (err)
		*err = NULL;
	if (user == NULL || user[0] == '\0') {
		set_err(err, "ldap: empty user name");
		return AUTH_DENIED;
	}
	/* An empty password would make the bind below unauthenticated, and
	 * servers answer those with success. */
	if (password == NULL || password[0] == '\0') {
		set_err(err, "ldap: empty password refused");
		return AUTH_DENIED;
	}
	if (cfg->uri == NULL || cfg->uri[0] == '\0' || cfg->base == NULL) {
		set_err(err, "ldap: no server URI or search base configured");
		return AUTH_UNAVAILABLE;
	}
	escaped = ldap_filter_escape(user, strlen(user));
	filter = escaped ? filter_build(tmpl, escaped) : NULL;
	if (filter == NULL) {
		set_err(err, "ldap: filter %s must contain exactly one %%s and no other %%", tmpl);
		goto out;
	}
	rc = ldap_initialize(&ld, cfg->uri);
	if (rc != LDAP_SUCCESS) {
		set_err(err, "ldap: bad URI %s: %s", cfg->uri, ldap_err2string(rc));
		goto out;
	}
	if (set_options(ld, cfg, err) < 0)
		goto out;
	if (cfg->starttls && strncmp(cfg->uri, "ldaps://", 8) != 0) {
		rc = ldap_start_tls_s(ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			set_err(err, "ldap: StartTLS with %s failed: %s", cfg->uri, ldap_err2string(rc));
			goto out;
		}
	}
	if (cfg->bind_dn && cfg->bind_dn[0]) {
		cred.bv_val = (char *)(cfg->bind_password ? cfg->bind_password : "");
		cred.bv_len = strlen(cred.bv_val);
		rc = ldap_sasl_bind_s(ld, cfg->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			/* The service account is configuration: its failure is
			 * ours to fix, not the user's. */
			set_err(err, "ldap: bind as %s failed: %s", cfg->bind_dn, ldap_err2string(rc));
			goto out;
		}
	}
	/* A size limit of 2 is enough to tell one match from several. */
	rc = ldap_search_ext_s(ld, cfg->base, LDAP_SCOPE_SUBTREE, filter, attrs, 1, NULL, NULL,
			       &tv, 2, &res);
	if (rc == LDAP_SIZELIMIT_EXCEEDED) {
		set_err(err, "ldap: several entries match %s", filter);
		result = AUTH_DENIED;
		goto out;
	}
	if (rc != LDAP_SUCCESS) {
		set_err(err, "ldap: search %s under %s failed: %s", filter, cfg->base,
			ldap_err2string(rc));
		goto out;
	}
	n = ldap_count_entries(ld, res);
	if (n != 1) {
		set_err(err, n == 0 ? "ldap: no entry matches %s" : "ldap: several entries match %s",
			filter);
		result = AUTH_DENIED;
		goto out;
	}
	entry = ldap_first_entry(ld, res);
	dn = entry ? ldap_get_dn(ld, entry) : NULL;
	if (dn == NULL || dn[0] == '\0') {
		set_err(err, "ldap: the entry matching %s has no DN", filter);
		goto out;
	}
	cred.bv_val = (char *)password;
	cred.bv_len = strlen(password);
	rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc == LDAP_SUCCESS) {
		result = AUTH_OK;
	} else {
		result = bind_denied(rc) ? AUTH_DENIED : AUTH_UNAVAILABLE;
		set_err(err, "ldap: bind as %s failed: %s", dn, ldap_err2string(rc));
	}
out:
	if (res)
		ldap_msgfree(res);
	if (dn)
		ldap_memfree(dn);
	if (ld)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(filter);
	free(escaped);
	return result;
}
