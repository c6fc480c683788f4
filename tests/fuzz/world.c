/* world — see world.h. */
#include "world.h"

#include "fuzz.h"

#include "agent/reconcile.h"
#include "api/identity.h"
#include "auth/password.h"
#include "auth/seal.h"
#include "auth/token.h"
#include "auth/totp.h"
#include "cluster/cluster.h"
#include "common/fsutil.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/sshkey.h"
#include "store/store_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct config world_cfg;
static char db_path[256], passwd_path[256], store_uri[300];
/* The template every input starts from. */
static char *tmpl_db, *tmpl_passwd;
static size_t tmpl_db_len, tmpl_passwd_len;
/* Bearer tokens of the template's users (plaintext, as clients hold them). */
static const struct {
	const char *user;
	const char *token;
} tokens[] = {
	{ "alice", "hct_aliceAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
	{ "bob", "hct_bobBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB" },
	{ "carol", "hct_carolCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC" },
};
static uint64_t vm_web;

/* ---- the template ------------------------------------------------------- */

static void ok(int rc, const char *what)
{
	if (rc != STORE_OK && rc != 0) {
		fprintf(stderr, "world: setting up %s failed (%d)\n", what, rc);
		abort();
	}
}

static uint64_t user(struct store *st, const char *name, const char *role, const char *auth,
		     bool enabled)
{
	struct user u = { .name = (char *)name, .role = (char *)role, .auth = (char *)auth,
			  .enabled = enabled };

	ok(store_user_create(st, &u), name);
	return u.id;
}

static uint64_t image(struct store *st, const char *name, uint64_t owner, const char *boot,
		      const char *state, const char *vis, const char *source)
{
	struct image im = { .name = (char *)name, .owner = owner, .boot = (char *)boot,
			    .format = strcmp(boot, "kernel") == 0 ? "kernel" : "pending",
			    .has_initrd = strcmp(boot, "kernel") == 0, .state = (char *)state,
			    .visibility = (char *)vis, .source = (char *)source,
			    .import_host = source ? WORLD_HOST : NULL };
	char sha[65];

	ok(store_image_create(st, &im), name);
	if (strcmp(state, "ready") == 0) {
		snprintf(sha, sizeof(sha), "%064llx", (unsigned long long)im.id);
		ok(store_image_finalize(st, im.id, sha, strcmp(boot, "kernel") == 0 ? "kernel" : "qcow2",
					1 << 20), name);
	}
	return im.id;
}

static uint64_t network(struct store *st, const char *name, uint64_t owner, const char *v6,
			const char *v4)
{
	struct network n = { .name = (char *)name, .owner = owner, .ipv6 = (char *)v6,
			     .ipv4 = (char *)v4 };

	ok(store_network_create(st, &n), name);
	return n.id;
}

static uint64_t key(struct store *st, const char *name, uint64_t owner, const char *line)
{
	struct sshkey sk;
	char err[SSHKEY_ERR_LEN];

	ok(sshkey_parse(line, &sk, err), name);
	struct key k = { .name = (char *)name, .owner = owner, .type = sk.type, .pubkey = sk.line,
			 .fingerprint = sk.fingerprint };
	ok(store_key_create(st, &k), name);
	sshkey_free(&sk);
	return k.id;
}

static uint64_t vm(struct store *st, struct cluster *cl, const char *name, uint64_t owner,
		   uint64_t image, uint64_t net, uint64_t key, const char *pin, const char *state)
{
	struct vm_key keys[1] = { { .id = key } };
	struct vm v = { .name = (char *)name, .owner = owner, .image = image, .cpus = 1,
			.memory_mib = 64, .desired = "running", .state = "stopped",
			.keys = key ? keys : NULL, .n_keys = key ? 1 : 0,
			.user_data = (unsigned char *)"#!/bin/sh\necho hello\n", .user_data_len = 21 };
	struct placement pl = { .cpus = 1, .memory_mib = 64, .pin = pin };

	cluster_policy(cl, &pl);
	ok(store_vm_create_placed(st, &v, net ? &net : NULL, net ? 1 : 0, &pl), name);
	if (state)
		ok(store_vm_set_state(st, v.id, state, NULL), name);
	return v.id;
}

static void make_template(const char *accel)
{
	char *err = NULL;
	unsigned char seal[SEAL_KEY_LEN], secret[TOTP_SECRET_LEN];
	struct store *st = store_open(store_uri, world_cfg.state_dir, &err);

	if (st == NULL) {
		fprintf(stderr, "fuzz_routes: %s\n", err);
		abort();
	}
	struct cluster *cl = cluster_new(st, &world_cfg, accel, &err);
	if (cl == NULL)
		ok(-1, "the cluster");
	struct host other = { .name = "other", .cpus = 8, .memory_mib = 16384, .accel = "kvm" };
	ok(store_host_register(st, &other), "host other");

	struct passwd_file *pw = passwd_open(passwd_path);
	uint64_t alice = user(st, "alice", "member", "file", true);
	uint64_t bob = user(st, "bob", "admin", "file", true);
	uint64_t carol = user(st, "carol", "member", "file,otp", true);
	user(st, "dave", "member", "file", false);
	user(st, "erin", "member", "ldap", true);
	ok(passwd_set(pw, "alice", "alice-password"), "alice's password");
	ok(passwd_set(pw, "bob", "bob-password"), "bob's password");
	ok(passwd_set(pw, "carol", "carol-password"), "carol's password");
	ok(passwd_set(pw, "dave", "dave-password"), "dave's password");
	passwd_close(pw);
	ok(seal_key_load(world_cfg.secret_key_file, seal, &err), "the host key");
	totp_secret_new(secret);
	char *sealed = seal_encrypt(seal, secret, sizeof(secret));
	ok(store_user_otp_set(st, carol, sealed), "carol's OTP");
	free(sealed);
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		struct user u = { 0 };
		char hash[TOKEN_HASH_LEN + 1];
		ok(store_user_get(st, tokens[i].user, &u), tokens[i].user);
		struct token t = { .owner = u.id, .source = "2001:db8::1",
				   .expires = (int64_t)time(NULL) + 10 * 365 * 86400 };
		token_hash(tokens[i].token, hash);
		ok(store_token_create(st, &t, hash), "a token");
		user_free(&u);
	}

	uint64_t tiny = image(st, "tiny", alice, "kernel", "ready", "private", NULL);
	uint64_t deb = image(st, "deb", bob, "disk", "ready", "public", NULL);
	image(st, "up", alice, "disk", "uploading", "private", NULL);
	image(st, "upk", alice, "kernel", "uploading", "private", NULL);
	image(st, "imp", alice, "disk", "importing", "private", "https://images.example/a.qcow2");
	uint64_t office = network(st, "office", alice, "2001:db8:10::/64", "10.10.0.0/24");
	uint64_t lab = network(st, "lab", bob, "2001:db8:20::/64", NULL);
	uint64_t laptop = key(st, "laptop", alice,
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP7xNi4/JXTSKo8fQUK/4+8oBlce/yhmRKvNYC0VbZh7 alice@laptop");
	uint64_t ops = key(st, "ops", bob,
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7ZRimZDynPnY0qazb7UVEnIswBl5s8VuFB5zrt/P5L ops");
	vm_web = vm(st, cl, "web", alice, tiny, office, laptop, WORLD_HOST, "running");
	vm(st, cl, "db", bob, deb, lab, ops, WORLD_HOST, NULL);
	vm(st, cl, "far", alice, tiny, 0, 0, "other", "running");
	struct rule ru = { .vm = vm_web, .proto = "tcp", .port_lo = 22, .port_hi = 22,
			   .source = "2001:db8::/32" };
	ok(store_rule_add(st, &ru), "a rule");

	cluster_free(cl);
	store_close(st);
	ok(file_read(db_path, 64 << 20, &tmpl_db, &tmpl_db_len), "reading the template");
	ok(file_read(passwd_path, 1 << 20, &tmpl_passwd, &tmpl_passwd_len), "reading the passwd file");
}

void world_init(const char *harness)
{
	const char *dir = fuzz_dir(harness);

	log_set_level(LOG_LVL_ERR);
	password_set_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
	config_defaults(&world_cfg);
	free(world_cfg.state_dir);
	world_cfg.state_dir = strdup(dir);
	free(world_cfg.host_name);
	world_cfg.host_name = strdup(WORLD_HOST);
	free(world_cfg.passwd_file);
	world_cfg.passwd_file = str_printf("%s/passwd", dir);
	/* The dashboard's files, and a file beside them no URL may reach. */
	char *ui = str_printf("%s/web/ui", dir), *f;
	mkdir_p(ui, 0755);
	f = str_printf("%s/web/index.html", dir);
	fuzz_write(f, "<!doctype html><title>hc</title>\n", 33);
	free(f);
	f = str_printf("%s/app.js", ui);
	fuzz_write(f, "export {};\n", 11);
	free(f);
	f = str_printf("%s/web/secret.html", dir);
	fuzz_write(f, "not for the web\n", 16);
	free(f);
	free(ui);
	free(world_cfg.web_root);
	world_cfg.web_root = str_printf("%s/web", dir);
	/* Fixed pools (not the installation's random ULA): an input that
	 * creates a network means the same in every process. */
	free(world_cfg.tenant_ipv6_pool);
	world_cfg.tenant_ipv6_pool = strdup("2001:db8:100::/48");
	free(world_cfg.tenant_ipv4_pool);
	world_cfg.tenant_ipv4_pool = strdup("10.100.0.0/16");
	/* Routed prefixes and public IPv4 (members may take one), so that
	 * their routes do more than refuse. */
	free(world_cfg.prefix_pool);
	world_cfg.prefix_pool = strdup("2001:db8:200::/44");
	free(world_cfg.public_ipv4_pool);
	world_cfg.public_ipv4_pool = strdup("198.51.100.0/29");
	world_cfg.public_ipv4_max_per_user = 1;
	/* Members may hold 4 VMs by default (quotas refuse the fifth). */
	world_cfg.default_quota[0] = 4;
	free(world_cfg.secret_key_file);
	world_cfg.secret_key_file = str_printf("%s/secret.key", dir);
	snprintf(db_path, sizeof(db_path), "%s/hackcloud.db", dir);
	snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", dir);
	snprintf(store_uri, sizeof(store_uri), "sqlite:%s", db_path);
	make_template("tcg");
}


const char *world_token(const char *user)
{
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
		if (strcmp(tokens[i].user, user) == 0)
			return tokens[i].token;
	return NULL;
}

void world_begin(struct api_ctx *api)
{
	char *err = NULL, *images = str_printf("%s/images", world_cfg.state_dir),
	     *vms = str_printf("%s/vms", world_cfg.state_dir);

	fuzz_write(db_path, tmpl_db, tmpl_db_len);
	fuzz_write(passwd_path, tmpl_passwd, tmpl_passwd_len);
	dir_remove_tree(images);
	dir_remove_tree(vms);
	char *logdir = str_printf("%s/%s", vms, vm_id_format(vm_web).s);
	char *log = str_printf("%s/serial.log", logdir);
	mkdir_p(logdir, 0700);
	fuzz_write(log, "Linux version 6.1\nhello from web\n", 33);
	free(log);
	free(logdir);
	free(images);
	free(vms);

	api->cfg = &world_cfg;
	api->st = store_open(store_uri, world_cfg.state_dir, &err);
	FUZZ_ASSERT(api->st != NULL, "store_open: %s", err);
	/* No worker pool: no pass runs here, so none of its jobs does. */
	api->agent = agent_new(api->st, &world_cfg, "tcg", NULL, &err);
	FUZZ_ASSERT(api->agent != NULL, "agent_new: %s", err ? err : "?");
	api->cluster = cluster_new(api->st, &world_cfg, "tcg", &err);
	api->auth = api_auth_new(api, &err);
	FUZZ_ASSERT(api->agent && api->cluster && api->auth, "set-up: %s", err ? err : "?");
}

static void check_store(struct store *st)
{
	int64_t bad = -1;

	FUZZ_ASSERT(store_q(st, "SELECT count(*) FROM pragma_foreign_key_check", NULL, 0,
			    store_row_int, &bad) == STORE_OK && bad == 0,
		    "%lld foreign keys point nowhere", (long long)bad);
	FUZZ_ASSERT(store_q(st, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'",
			    NULL, 0, store_row_int, &bad) == STORE_OK && bad == 0,
		    "integrity check: %lld problems", (long long)bad);
}


void world_end(struct api_ctx *api)
{
	check_store(api->st);
	api_auth_free(api->auth);
	cluster_free(api->cluster);
	agent_free(api->agent);
	store_close(api->st);
	api->auth = NULL;
	api->cluster = NULL;
	api->agent = NULL;
	api->st = NULL;
}
