/* ldap — see ldap.h. */
#include "auth/ldap.h"

#include "common/fsutil.h"

#include <errno.h>
#include <ldap.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define DEFAULT_FILTER  "(uid=%s)"
#define DEFAULT_TIMEOUT 5
#define MAX_TIMEOUT     600

static int timeout_of(const struct ldap_auth_cfg *cfg)
{
	if (cfg->timeout_s <= 0)
		return DEFAULT_TIMEOUT;
	return cfg->timeout_s < MAX_TIMEOUT ? cfg->timeout_s : MAX_TIMEOUT;
}

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

/* The server's (or libldap's) detail about the last error, e.g. "unable
 * to bind: confidentiality required", or "".  GnuTLS's placeholder
 * "(unknown error code)" for failed certificate checks says nothing. */
static const char *diagnostic(LDAP *ld, char **buf)
{
	*buf = NULL;
	if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, buf) != LDAP_OPT_SUCCESS ||
	    *buf == NULL || (*buf)[0] == '(')
		return "";
	return *buf;
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

/*
 * A socket layer that turns "would block" into waiting, at most the
 * timeout, and then into a hard ETIMEDOUT.  libldap 2.5 makes the socket
 * non-blocking for the TLS handshake when a network timeout is set and then
 * retries the handshake in a loop that never waits and never gives up: a
 * server that accepts and stays silent (ldaps://, or after StartTLS) would
 * spin the CPU forever.  Below TLS, this layer bounds that wait too.
 */
static int deadline_setup(Sockbuf_IO_Desc *sbiod, void *arg)
{
	sbiod->sbiod_pvt = arg;
	return 0;
}

static int deadline_ctrl(Sockbuf_IO_Desc *sbiod, int opt, void *arg)
{
	return LBER_SBIOD_CTRL_NEXT(sbiod, opt, arg);
}

/* Wait until fd is ready for events; false (errno ETIMEDOUT) after the
 * timeout. */
static bool deadline_wait(Sockbuf_IO_Desc *sbiod, short events)
{
	const int *timeout_ms = sbiod->sbiod_pvt;
	struct pollfd pfd = { .events = events };
	int rc;

	if (ber_sockbuf_ctrl(sbiod->sbiod_sb, LBER_SB_OPT_GET_FD, &pfd.fd) != 1)
		return false;
	do
		rc = poll(&pfd, 1, *timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		errno = ETIMEDOUT;
	return rc > 0;
}

static ber_slen_t deadline_read(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	for (;;) {
		ber_slen_t n = LBER_SBIOD_READ_NEXT(sbiod, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		if (!deadline_wait(sbiod, POLLIN))
			return -1;
	}
}

static ber_slen_t deadline_write(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
	for (;;) {
		ber_slen_t n = LBER_SBIOD_WRITE_NEXT(sbiod, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return n;
		if (!deadline_wait(sbiod, POLLOUT))
			return -1;
	}
}

static Sockbuf_IO deadline_io = {
	.sbi_setup = deadline_setup,
	.sbi_ctrl = deadline_ctrl,
	.sbi_read = deadline_read,
	.sbi_write = deadline_write,
};

/* Connection callback: put the layer on each new connection, below the
 * TLS layer that is added after it. */
static int deadline_attach(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr,
			   struct ldap_conncb *ctx)
{
	return ber_sockbuf_add_io(sb, &deadline_io, LBER_SBIOD_LEVEL_TRANSPORT, ctx->lc_arg);
}

static void deadline_detach(LDAP *ld, Sockbuf *sb, struct ldap_conncb *ctx)
{
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

static int set_options(LDAP *ld, const struct ldap_auth_cfg *cfg, struct ldap_conncb *conncb,
		       char **err)
{
	int version = LDAP_VERSION3, off = 0, demand = LDAP_OPT_X_TLS_DEMAND, rc;
	int secs = timeout_of(cfg);
	struct timeval tv = { .tv_sec = secs };

	/* The network timeout bounds connect(); the plain timeout bounds
	 * waiting for each operation's answer (bind, StartTLS, search); the
	 * deadline layer each read or write, the TLS handshake's included. */
	if ((rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_CONNECT_CB, conncb)) != LDAP_OPT_SUCCESS) {
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
	int secs = timeout_of(cfg);
	struct timeval tv = { .tv_sec = secs };
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	char *escaped = NULL, *filter = NULL, *dn = NULL;
	LDAPMessage *res = NULL, *entry;
	enum auth_result result = AUTH_UNAVAILABLE;
	int io_timeout_ms = secs * 1000;
	struct ldap_conncb conncb = { .lc_add = deadline_attach, .lc_del = deadline_detach,
				      .lc_arg = &io_timeout_ms };
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
	if (set_options(ld, cfg, &conncb, err) < 0)
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
	if (result != AUTH_OK && ld != NULL && err != NULL && *err != NULL) {
		char *buf, *longer;
		const char *diag = diagnostic(ld, &buf);
		if (diag[0] && (longer = str_printf("%s (%s)", *err, diag)) != NULL) {
			free(*err);
			*err = longer;
		}
		if (buf)
			ldap_memfree(buf);
	}
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
