/*
 * test_config — hcd.conf and --key=value overrides (src/common/config.h,
 * DESIGN §9): defaults, an INI file with [hcd] and [auth] keys, overrides
 * winning over the file (dash → underscore, "section.key"), errors with a
 * line number for unknown keys and bad numbers, missing files, and
 * config_free (leaks show under ASan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
	char dir[64];
	char path[128];
	struct config cfg;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/hc-test-config-XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	snprintf(c->path, sizeof(c->path), "%s/hcd.conf", c->dir);
	config_defaults(&c->cfg);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	config_free(&c->cfg);
	if (dir_remove_tree(c->dir) < 0)
		return -1;
	free(c);
	return 0;
}

static void write_conf(struct ctx *c, const char *text)
{
	FILE *f = fopen(c->path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static const char sample[] =
	"# hackcloud test configuration\n"
	"[hcd]\n"
	"state_dir = /srv/hackcloud\n"
	"accel     = kvm\n"
	"store     = sqlite:/srv/hackcloud/db\n"
	"roles     = api,agent\n"
	"host_name = node1\n"
	"listen    = [::1]:8443\n"
	"uplink    = eth0\n"
	"vxlan_port = 8472\n"
	"stop_timeout = 10\n"
	"max_body  = 8589934592\n"
	"\n"
	"[auth]\n"
	"; a comment\n"
	"passwd_file = /srv/hackcloud/passwd\n"
	"ldap_uri    = ldap://ldap.example.org\n"
	"ldap_base   = ou=people,dc=example,dc=org\n"
	"token_ttl   = 3600\n";

/* ---- defaults ----------------------------------------------------------- */

static void defaults(void **state)
{
	struct ctx *c = *state;
	struct config *g = &c->cfg;

	assert_string_equal(g->state_dir, "/var/lib/hackcloud");
	assert_string_equal(g->accel, "auto");
	assert_string_equal(g->store, "sqlite");
	assert_string_equal(g->roles, "api,scheduler,agent");
	assert_string_equal(g->log_level, "info");
	assert_string_equal(g->passwd_file, ""); /* empty: STATE_DIR/passwd */
	assert_int_equal(g->api_rate, 50);
	assert_string_equal(g->ldap_filter, "(uid=%s)");
	assert_non_null(g->host_name);
	assert_true(strlen(g->host_name) > 0);
	assert_int_equal(g->stop_timeout, 30);
	assert_int_equal(g->resync_interval, 60);
	assert_int_equal(g->token_ttl, 86400);
	assert_int_equal(g->vxlan_port, 4789);
	assert_int_equal(g->metadata_rate, 20);
	assert_string_equal(g->metadata_tokens, "optional");
	assert_true(g->max_body > 0);
	assert_null(g->listen);
	assert_null(g->tls_cert);
	assert_null(g->ldap_uri);
}

static void no_file_no_overrides_keeps_defaults(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;

	assert_int_equal(config_load(&c->cfg, NULL, 0, NULL, 0, &err), 0);
	assert_null(err);
	assert_string_equal(c->cfg.state_dir, "/var/lib/hackcloud");
	assert_int_equal(c->cfg.stop_timeout, 30);
}

/* ---- the file ----------------------------------------------------------- */

static void load_file(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;

	write_conf(c, sample);
	assert_int_equal(config_load(&c->cfg, c->path, 0, NULL, 0, &err), 0);
	assert_null(err);
	assert_string_equal(c->cfg.state_dir, "/srv/hackcloud");
	assert_string_equal(c->cfg.accel, "kvm");
	assert_string_equal(c->cfg.store, "sqlite:/srv/hackcloud/db");
	assert_string_equal(c->cfg.roles, "api,agent");
	assert_string_equal(c->cfg.host_name, "node1");
	assert_string_equal(c->cfg.listen, "[::1]:8443");
	assert_string_equal(c->cfg.uplink, "eth0");
	assert_int_equal(c->cfg.vxlan_port, 8472);
	assert_int_equal(c->cfg.stop_timeout, 10);
	assert_true(c->cfg.max_body == 8589934592LL); /* a long long beyond 32 bits */
	assert_string_equal(c->cfg.passwd_file, "/srv/hackcloud/passwd");
	assert_string_equal(c->cfg.ldap_uri, "ldap://ldap.example.org");
	assert_string_equal(c->cfg.ldap_base, "ou=people,dc=example,dc=org");
	assert_int_equal(c->cfg.token_ttl, 3600);
	/* Keys the file does not name keep their defaults. */
	assert_int_equal(c->cfg.resync_interval, 60);
	assert_string_equal(c->cfg.log_level, "info");
	assert_string_equal(c->cfg.ldap_filter, "(uid=%s)");
}

static void missing_file(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	char path[160];

	snprintf(path, sizeof(path), "%s/absent.conf", c->dir);
	/* optional: fine, defaults stay */
	assert_int_equal(config_load(&c->cfg, path, 1, NULL, 0, &err), 0);
	assert_null(err);
	assert_string_equal(c->cfg.accel, "auto");
	/* required: an error naming the file */
	assert_int_equal(config_load(&c->cfg, path, 0, NULL, 0, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "absent.conf"));
	free(err);
}

static void unknown_key_in_file_reports_line(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;

	write_conf(c, "[hcd]\n"
		      "accel = tcg\n"
		      "\n"
		      "bogus = 1\n"
		      "stop_timeout = 7\n");
	assert_int_equal(config_load(&c->cfg, c->path, 0, NULL, 0, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, c->path));
	if (strstr(err, ":4:") == NULL)
		fail_msg("error does not name line 4: %s", err);
	free(err);
}

static void key_in_wrong_section_is_unknown(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;

	/* accel belongs to [hcd]; under [auth] it is an unknown key (line 3). */
	write_conf(c, "[auth]\n"
		      "token_ttl = 5\n"
		      "accel = tcg\n");
	assert_int_equal(config_load(&c->cfg, c->path, 0, NULL, 0, &err), -1);
	assert_non_null(err);
	if (strstr(err, ":3:") == NULL)
		fail_msg("error does not name line 3: %s", err);
	free(err);

	/* A key before any section header is not an [hcd] key either. */
	write_conf(c, "accel = tcg\n");
	assert_int_equal(config_load(&c->cfg, c->path, 0, NULL, 0, &err), -1);
	assert_non_null(err);
	free(err);
}

static void bad_number_in_file(void **state)
{
	struct ctx *c = *state;
	const char *bad[] = {
		"[hcd]\nstop_timeout = abc\n",
		"[hcd]\nstop_timeout = 10s\n",
		"[hcd]\nstop_timeout = -1\n",
		"[hcd]\nstop_timeout = 99999999999\n",  /* beyond INT_MAX */
		"[hcd]\nstop_timeout =\n",
		"[auth]\ntoken_ttl = 1e3\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;
		write_conf(c, bad[i]);
		if (config_load(&c->cfg, c->path, 0, NULL, 0, &err) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(err);
		if (strstr(err, ":2:") == NULL)
			fail_msg("error does not name line 2: %s", err);
		free(err);
	}
	assert_int_equal(c->cfg.token_ttl, 86400);
}

static void sample_config_inline_comments(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;

	/* The shape of the sample hcd.conf in DESIGN §9: '#' comments after values. */
	write_conf(c, "[hcd]\n"
		      "state_dir = /srv/hc\n"
		      "accel     = auto                       # kvm | tcg | auto\n"
		      "store     = sqlite                     # or postgresql://user@host/db\n"
		      "roles     = api,scheduler,agent\n"
		      "listen    = [::1]:8443                 ; optional TCP listener\n"
		      "[auth]\n"
		      "ldap_filter = (uid=%s)\n"
		      "token_ttl   = 60   # seconds\n");
	assert_int_equal(config_load(&c->cfg, c->path, 0, NULL, 0, &err), 0);
	assert_null(err);
	assert_string_equal(c->cfg.accel, "auto");
	assert_string_equal(c->cfg.store, "sqlite");
	assert_string_equal(c->cfg.listen, "[::1]:8443");
	assert_string_equal(c->cfg.ldap_filter, "(uid=%s)");
	assert_int_equal(c->cfg.token_ttl, 60);
}

static void hash_inside_value_is_kept(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;

	/* Only a '#' after whitespace starts a comment. */
	write_conf(c, "[auth]\nldap_base = ou=a#b,dc=x\n");
	assert_int_equal(config_load(&c->cfg, c->path, 0, NULL, 0, &err), 0);
	assert_string_equal(c->cfg.ldap_base, "ou=a#b,dc=x");
}

/* ---- overrides ---------------------------------------------------------- */

static void overrides_win_over_file(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	char *const ov[] = { "accel=tcg", "auth.token_ttl=60", "stop-timeout=5",
			     "hcd.state_dir=/override" };

	write_conf(c, sample);
	assert_int_equal(config_load(&c->cfg, c->path, 0, ov, 4, &err), 0);
	assert_null(err);
	assert_string_equal(c->cfg.accel, "tcg");          /* file said kvm */
	assert_int_equal(c->cfg.token_ttl, 60);            /* file said 3600 */
	assert_int_equal(c->cfg.stop_timeout, 5);          /* file said 10 */
	assert_string_equal(c->cfg.state_dir, "/override");
	/* File values without an override stay. */
	assert_string_equal(c->cfg.host_name, "node1");
	assert_string_equal(c->cfg.ldap_uri, "ldap://ldap.example.org");
}

static void override_dashes_and_sections(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	char *const ov[] = { "resync-interval=15", "hcd.log-level=debug", "auth.passwd-file=/p",
			     "max-body=42", "tls_cert=/c.pem", "listen=[::]:1=2" };

	assert_int_equal(config_load(&c->cfg, NULL, 0, ov, 6, &err), 0);
	assert_null(err);
	assert_int_equal(c->cfg.resync_interval, 15);
	assert_string_equal(c->cfg.log_level, "debug");
	assert_string_equal(c->cfg.passwd_file, "/p");
	assert_true(c->cfg.max_body == 42);
	assert_string_equal(c->cfg.tls_cert, "/c.pem");
	/* Only the first '=' separates key and value. */
	assert_string_equal(c->cfg.listen, "[::]:1=2");
}

static void bad_overrides(void **state)
{
	struct ctx *c = *state;
	const char *bad[] = {
		"bogus=1",              /* unknown key */
		"auth.accel=tcg",       /* known key, wrong section */
		"nosuch.accel=tcg",     /* unknown section */
		"token_ttl=5",          /* an [auth] key given bare */
		"stop_timeout=abc",     /* not a number */
		"stop-timeout=",        /* empty number */
		"auth.token_ttl=-5",
		"accel",                /* no '=' */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;
		char *const ov[] = { (char *)bad[i] };
		if (config_load(&c->cfg, NULL, 0, ov, 1, &err) != -1)
			fail_msg("accepted override \"%s\"", bad[i]);
		assert_non_null(err);
		free(err);
	}
	/* Nothing was changed by the rejected overrides. */
	assert_string_equal(c->cfg.accel, "auto");
	assert_int_equal(c->cfg.stop_timeout, 30);
	assert_int_equal(c->cfg.token_ttl, 86400);
}

static void config_set_direct(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(config_set(&c->cfg, "hcd", "uplink", "br0"), 0);
	assert_string_equal(c->cfg.uplink, "br0");
	assert_int_equal(config_set(&c->cfg, "hcd", "uplink", "br1"), 0); /* replaces, no leak */
	assert_string_equal(c->cfg.uplink, "br1");
	assert_int_equal(config_set(&c->cfg, "auth", "token_ttl", "2147483647"), 0);
	assert_int_equal(c->cfg.token_ttl, 2147483647);
	assert_int_equal(config_set(&c->cfg, "auth", "token_ttl", "2147483648"), -1);
	assert_int_equal(c->cfg.token_ttl, 2147483647);
	assert_int_equal(config_set(&c->cfg, "hcd", "nope", "x"), -1);
	assert_int_equal(config_set(&c->cfg, "", "accel", "x"), -1);
}

static void free_clears_and_is_repeatable(void **state)
{
	struct ctx *c = *state;
	char *err = NULL;
	char *const ov[] = { "accel=tcg", "tls_key=/k" };

	write_conf(c, sample);
	assert_int_equal(config_load(&c->cfg, c->path, 0, ov, 2, &err), 0);
	config_free(&c->cfg);
	assert_null(c->cfg.state_dir);
	assert_null(c->cfg.accel);
	assert_null(c->cfg.store);
	assert_null(c->cfg.host_name);
	assert_null(c->cfg.tls_key);
	assert_null(c->cfg.passwd_file);
	assert_null(c->cfg.ldap_uri);
	assert_null(c->cfg.ldap_filter);
	config_free(&c->cfg); /* teardown frees again: must be harmless */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(defaults),
		T(no_file_no_overrides_keeps_defaults),
		T(load_file),
		T(missing_file),
		T(unknown_key_in_file_reports_line),
		T(key_in_wrong_section_is_unknown),
		T(bad_number_in_file),
		T(sample_config_inline_comments),
		T(hash_inside_value_is_kept),
		T(overrides_win_over_file),
		T(override_dashes_and_sections),
		T(bad_overrides),
		T(config_set_direct),
		T(free_clears_and_is_repeatable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
