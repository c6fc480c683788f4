/*
 * fuzz_routes — every route of the API (api/api.h, the table in routes.c)
 * with fuzzed path arguments and bodies, run by the real handlers against
 * a real SQLite store, passwd file and host key in a scratch directory.
 *
 * Input: one or more requests separated by a line "===".  A request is a
 * line "WHO METHOD PATTERN [ARG...]" and its body (the rest, verbatim):
 *
 *   alice@ POST /v1/vms/{}/rules web
 *   {"proto":"tcp","ports":"22","source":"2001:db8::/32"}
 *
 * WHO is root (the unix socket's root), a user of the store (its peer
 * credentials) or that user with "@" (its bearer token), or anon.  PATTERN
 * names a row of the route table exactly; each ARG fills one "{}" and is
 * percent-decoded, as libmicrohttpd decodes a URL.  Requests run in order
 * on a store reset to the same template for every input (users alice,
 * bob (admin), carol (OTP), dave (disabled), erin (LDAP); their images,
 * networks, keys, VMs and rules; two hosts), so an input can create a
 * thing and then use it.
 *
 * The request goes through what http.c does between libmicrohttpd and the
 * handler — who may call the route, the body limit, JSON decoding with
 * duplicate keys refused, "the body must be an object", the upload stream —
 * without a socket (headers and query strings are absent).
 *
 * Promises checked after every request:
 *   - exactly one response: JSON that dumps, plain text, or a prebuilt
 *     libmicrohttpd response;
 *   - no 5xx other than 503 (a 5xx is a bug here: the store, the disk and
 *     the passwd file all work);
 *   - an error is {"error":{"code":STRING,"message":STRING}};
 * and after every input: the store passes SQLite's integrity and foreign
 * key checks.  Leaks are LeakSanitizer's.  FUZZ_VERBOSE=1 prints every
 * answer (handy when writing seeds).
 */
#include "fuzz.h"

#include "agent/reconcile.h"
#include "api/api.h"
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
#include <sys/stat.h>

#define REQUESTS_MAX 8
#define HOST "fuzzhost"

static struct config cfg;
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
/* FUZZ_VERBOSE=1: print each request's answer (for writing seeds). */
static bool verbose;

/* ---- the template ------------------------------------------------------- */

static void ok(int rc, const char *what)
{
	if (rc != STORE_OK && rc != 0) {
		fprintf(stderr, "fuzz_routes: setting up %s failed (%d)\n", what, rc);
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
			    .import_host = source ? HOST : NULL };
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
	struct store *st = store_open(store_uri, cfg.state_dir, &err);

	if (st == NULL) {
		fprintf(stderr, "fuzz_routes: %s\n", err);
		abort();
	}
	struct cluster *cl = cluster_new(st, &cfg, accel, &err);
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
	ok(seal_key_load(cfg.secret_key_file, seal, &err), "the host key");
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
	vm_web = vm(st, cl, "web", alice, tiny, office, laptop, HOST, "running");
	vm(st, cl, "db", bob, deb, lab, ops, HOST, NULL);
	vm(st, cl, "far", alice, tiny, 0, 0, "other", "running");
	struct rule ru = { .vm = vm_web, .proto = "tcp", .port_lo = 22, .port_hi = 22,
			   .source = "2001:db8::/32" };
	ok(store_rule_add(st, &ru), "a rule");

	cluster_free(cl);
	store_close(st);
	ok(file_read(db_path, 64 << 20, &tmpl_db, &tmpl_db_len), "reading the template");
	ok(file_read(passwd_path, 1 << 20, &tmpl_passwd, &tmpl_passwd_len), "reading the passwd file");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_dir("routes");

	verbose = getenv("FUZZ_VERBOSE") != NULL;
	log_set_level(LOG_LVL_ERR);
	password_set_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
	config_defaults(&cfg);
	free(cfg.state_dir);
	cfg.state_dir = strdup(dir);
	free(cfg.host_name);
	cfg.host_name = strdup(HOST);
	free(cfg.passwd_file);
	cfg.passwd_file = str_printf("%s/passwd", dir);
	free(cfg.secret_key_file);
	cfg.secret_key_file = str_printf("%s/secret.key", dir);
	snprintf(db_path, sizeof(db_path), "%s/hackcloud.db", dir);
	snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", dir);
	snprintf(store_uri, sizeof(store_uri), "sqlite:%s", db_path);
	make_template("tcg");
	return 0;
}

/* ---- one request -------------------------------------------------------- */

/* Percent-decoding as libmicrohttpd does for the URL path. */
static char *url_decode(const char *s)
{
	char *out = fuzz_cstr((const uint8_t *)s, strlen(s)), *o = out;

	for (const char *p = s; *p; p++) {
		unsigned v;
		if (p[0] == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1 &&
		    strchr("0123456789abcdefABCDEF", p[1]) && strchr("0123456789abcdefABCDEF", p[2])) {
			*o++ = (char)v;
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* Who is calling, as api_identify would decide; false when a request by
 * this caller never reaches a handler. */
static bool identify(struct req *r, const char *who)
{
	size_t n = strlen(who);
	bool via_token = n > 0 && who[n - 1] == '@';
	char name[64];
	struct user u = { 0 };

	snprintf(r->source, sizeof(r->source), "unix:0");
	if (strcmp(who, "anon") == 0)
		return r->route->access == ROUTE_ANON;
	if (strcmp(who, "root") == 0) {
		r->caller = OWNER_ROOT;
		r->admin = true;
		return true;
	}
	if (n >= sizeof(name))
		return false;
	snprintf(name, sizeof(name), "%.*s", (int)(via_token ? n - 1 : n), who);
	if (via_token) {
		char hash[TOKEN_HASH_LEN + 1];
		struct token t = { 0 };
		for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
			if (strcmp(tokens[i].user, name) == 0)
				token_hash(tokens[i].token, hash);
		if (store_token_lookup(r->api->st, hash, (int64_t)time(NULL), &t) != STORE_OK)
			return false;
		r->caller = t.owner;
		r->admin = t.owner_admin;
		r->token_id = t.id;
		snprintf(r->source, sizeof(r->source), "2001:db8::7");
		token_free(&t);
		return true;
	}
	if (store_user_get(r->api->st, name, &u) != STORE_OK)
		return false;
	bool enabled = u.enabled;
	r->caller = u.id;
	r->admin = strcmp(u.role, "admin") == 0;
	user_free(&u);
	return enabled;
}

/* What http.c does once the request is complete, by body kind. */
static void dispatch(struct req *r, const char *body, size_t len)
{
	const struct route *rt = r->route;

	if (rt->access == ROUTE_ADMIN && !r->admin) {
		req_error(r, 403, "forbidden", "admin only");
		return;
	}
	if (rt->body == BODY_STREAM) {
		if (rt->stream_begin(r) != 0)
			return;
		/* libmicrohttpd hands the body over in pieces. */
		for (size_t off = 0; off < len;) {
			size_t n = len - off < 1000 ? len - off : 1000;
			if (rt->stream_chunk(r, body + off, n) != 0)
				return;
			off += n;
		}
		rt->handler(r);
		return;
	}
	if (rt->body == BODY_NONE) {
		if (len > 0)
			req_error(r, 400, "bad_request", "this endpoint takes no body");
		else
			rt->handler(r);
		return;
	}
	if ((long long)len > cfg.max_body) {
		req_error(r, 413, "too_large", "request body over %lld bytes", cfg.max_body);
		return;
	}
	if (len == 0) {
		r->json = json_object();
	} else {
		json_error_t jerr;
		r->json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
		if (r->json == NULL) {
			req_error(r, 400, "bad_json", "malformed JSON: %s (line %d)", jerr.text, jerr.line);
			return;
		}
		if (!json_is_object(r->json)) {
			req_error(r, 400, "bad_json", "the body must be a JSON object");
			return;
		}
	}
	rt->handler(r);
}

/* The response is one well-formed answer and not a server failure. */
static void check_response(const struct req *r, const char *line)
{
	FUZZ_ASSERT(r->status >= 100 && r->status <= 599, "%s: status %d", line, r->status);
	FUZZ_ASSERT(r->status < 500 || r->status == 503, "%s: %d %s", line, r->status,
		    r->resp ? json_dumps(r->resp, JSON_COMPACT) : "(no JSON)");
	if (r->raw || r->text)
		return;
	FUZZ_ASSERT(r->resp != NULL, "%s: no response (http.c would answer 500)", line);
	char *text = json_dumps(r->resp, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL, "%s: the response does not dump", line);
	free(text);
	if (r->status >= 400) {
		json_t *e = json_object_get(r->resp, "error");
		FUZZ_ASSERT(json_is_string(json_object_get(e, "code")) &&
			    json_is_string(json_object_get(e, "message")), "%s: error shape", line);
	}
}

static void req_release(struct req *r)
{
	for (size_t i = 0; i < r->n_params; i++)
		free(r->params[i]);
	if (r->stream_free && r->stream)
		r->stream_free(r->stream);
	json_decref(r->json);
	json_decref(r->resp);
	free(r->text);
	if (r->raw)
		MHD_destroy_response(r->raw);
}

static void run_request(struct api_ctx *api, const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);
	size_t hlen = nl ? (size_t)(nl - text) : len;
	char *line = fuzz_cstr((const uint8_t *)text, hlen), *head = strdup(line), *save = NULL;
	const char *body = nl ? nl + 1 : text + len;
	size_t blen = (size_t)(text + len - body);
	char *who = strtok_r(head, " ", &save), *method = strtok_r(NULL, " ", &save),
	     *pattern = strtok_r(NULL, " ", &save), *arg;
	struct req r = { .api = api };

	for (size_t i = 0; who && method && pattern && i < api_n_routes && !r.route; i++)
		if (strcmp(api_routes[i].method, method) == 0 &&
		    strcmp(api_routes[i].pattern, pattern) == 0)
			r.route = &api_routes[i];
	if (r.route == NULL)
		goto out;
	r.method = r.route->method;
	while ((arg = strtok_r(NULL, " ", &save)) != NULL && r.n_params < REQ_MAX_PARAMS) {
		char *v = url_decode(arg);
		/* A path segment: not empty, no '/' (NULs end it, as in C). */
		if (v[0] == '\0' || strchr(v, '/')) {
			free(v);
			goto out;
		}
		r.params[r.n_params++] = v;
	}
	size_t want = 0;
	for (const char *p = r.route->pattern; (p = strstr(p, "{}")) != NULL; p += 2)
		want++;
	if (want != r.n_params || !identify(&r, who))
		goto out;
	dispatch(&r, body, blen);
	if (verbose) {
		char *j = r.resp ? json_dumps(r.resp, JSON_COMPACT) : NULL;
		fprintf(stderr, "%s → %d %s\n", line, r.status, j ? j : r.text ? "(text)" : "(raw)");
		free(j);
	}
	check_response(&r, line);
out:
	req_release(&r);
	free(head);
	free(line);
}

/* ---- one input ---------------------------------------------------------- */

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *err = NULL, *images = str_printf("%s/images", cfg.state_dir),
	     *vms = str_printf("%s/vms", cfg.state_dir);

	/* The same state for every input. */
	fuzz_write(db_path, tmpl_db, tmpl_db_len);
	fuzz_write(passwd_path, tmpl_passwd, tmpl_passwd_len);
	dir_remove_tree(images);
	dir_remove_tree(vms);
	char *logdir = str_printf("%s/%s", vms, vm_id_format(vm_web).s);
	char *log = str_printf("%s/serial.log", logdir);
	mkdir_p(logdir, 0700);
	fuzz_write(log, "Linux version 6.1\nhello from web\n", 33);

	struct store *st = store_open(store_uri, cfg.state_dir, &err);
	FUZZ_ASSERT(st != NULL, "store_open: %s", err);
	struct api_ctx api = { .st = st, .cfg = &cfg };
	api.agent = agent_new(st, &cfg, "tcg");
	api.cluster = cluster_new(st, &cfg, "tcg", &err);
	api.auth = api_auth_new(&cfg, &err);
	FUZZ_ASSERT(api.agent && api.cluster && api.auth, "set-up: %s", err ? err : "?");

	const char *p = (const char *)data, *end = p + size;
	for (int n = 0; p < end && n < REQUESTS_MAX; n++) {
		const char *sep = NULL;
		for (const char *q = p; q + 4 <= end && !sep; q++)
			if (q[0] == '\n' && memcmp(q + 1, "===", 3) == 0 && (q + 4 == end || q[4] == '\n'))
				sep = q;
		const char *stop = sep ? sep : end;
		run_request(&api, p, (size_t)(stop - p));
		p = sep ? (sep + 5 <= end ? sep + 5 : end) : end;
	}
	check_store(st);

	api_auth_free(api.auth);
	cluster_free(api.cluster);
	agent_free(api.agent);
	store_close(st);
	free(log);
	free(logdir);
	free(images);
	free(vms);
	return 0;
}
