/*
 * user.c — `hc user …`, `hc login`, `hc logout`, `hc whoami`, `hc token …`.
 *
 * Passwords come from --password-stdin (the first line of standard input)
 * or, on a terminal, from a prompt with echo off; never from the command
 * line, where other local users could read them.  A login's token is kept
 * per daemon URL in the credentials file (auth/token.h: 0600 in a 0700
 * directory) and sent by client.c with every later request.
 */
#include "cli/cli.h"

#include "auth/credfile.h"
#include "auth/totp.h"
#include "common/fsutil.h"
#include "common/validate.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define SECRET_LINE_MAX 1024

static const struct column user_list[] = {
	{ "ID", "id", NULL },
	{ "NAME", "name", NULL },
	{ "ROLE", "role", NULL },
	{ "AUTH", "auth", NULL },
	{ "ENABLED", "enabled", NULL },
	{ 0 },
};

static const struct column user_show[] = {
	{ "id", "id", NULL },
	{ "name", "name", NULL },
	{ "role", "role", NULL },
	{ "auth", "auth", NULL },
	{ "enabled", "enabled", NULL },
	{ "otp", "otp", NULL },
	{ "created", "created", fmt_time },
	{ 0 },
};

const struct resource res_user = { "user", "users", user_list, user_show, NULL, NULL };

static const struct column token_list[] = {
	{ "ID", "id", NULL },
	{ "OWNER", "owner", NULL },
	{ "SOURCE", "source", NULL },
	{ "CREATED", "created", fmt_time },
	{ "EXPIRES", "expires", fmt_time },
	{ "CURRENT", "current", NULL },
	{ 0 },
};

static const struct column token_show[] = {
	{ "id", "id", NULL },
	{ "owner", "owner", NULL },
	{ "source", "source", NULL },
	{ "created", "created", fmt_time },
	{ "expires", "expires", fmt_time },
	{ 0 },
};

const struct resource res_token = { "token", "tokens", token_list, token_show, NULL, NULL };

/* One line of standard input, without its newline; malloc'd, or NULL. */
static char *read_stdin_line(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0 || n > SECRET_LINE_MAX) {
		if (line)
			sodium_memzero(line, cap);
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

/* Prompt on the terminal with echo off. */
static char *prompt_secret(const char *prompt, bool echo)
{
	struct termios saved, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	char *line;

	if (!tty)
		return NULL;
	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	quiet = saved;
	if (!echo) {
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	line = read_stdin_line();
	if (!echo) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	return line;
}

static void secret_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

/* The password of a command: --password-stdin, else a prompt (twice when
 * setting one, so a typo does not lock the user out). */
static char *get_password(struct hc *h, const struct args *a, bool confirm)
{
	char *pw, *again;

	if (arg_flag(a, "--password-stdin")) {
		pw = read_stdin_line();
		if (pw == NULL)
			hc_fail(h, "no password on standard input");
		return pw;
	}
	pw = prompt_secret("Password: ", false);
	if (pw == NULL) {
		hc_usage(h, "no terminal to ask for the password: use --password-stdin");
		return NULL;
	}
	if (!confirm)
		return pw;
	again = prompt_secret("Again: ", false);
	if (again == NULL || strcmp(pw, again) != 0) {
		secret_free(pw);
		secret_free(again);
		hc_fail(h, "the passwords differ");
		return NULL;
	}
	secret_free(again);
	return pw;
}

/* --auth file --auth otp → ["file","otp"] */
static json_t *auth_list(const struct args *a)
{
	json_t *arr = json_array();
	const char *v;

	for (size_t i = 0; (v = arg_opt_nth(a, "--auth", i)) != NULL; i++)
		json_array_append_new(arr, json_string(v));
	return arr;
}

int cmd_user_create(struct hc *h, const struct args *a)
{
	json_t *body, *user = NULL;
	const char *role = arg_opt(a, "--role");
	bool wants_pw = arg_flag(a, "--password-stdin");
	char *pw = NULL;
	int rc;

	for (size_t i = 0; arg_opt_nth(a, "--auth", i); i++)
		if (strcmp(arg_opt_nth(a, "--auth", i), "file") == 0)
			wants_pw = true;
	if (wants_pw && (pw = get_password(h, a, true)) == NULL)
		return -1;
	body = json_pack("{s:s, s:o}", "name", a->pos[0], "auth", auth_list(a));
	if (role)
		json_object_set_new(body, "role", json_string(role));
	if (pw)
		json_object_set_new(body, "password", json_string(pw));
	secret_free(pw);
	rc = api_call(h, "POST", "/v1/users", body, &user, NULL);
	json_decref(body);
	if (rc < 0)
		return -1;
	print_resource(h, &res_user, user);
	json_decref(user);
	return 0;
}

/* The --quota-* options of `hc user set` and the quota members of the API
 * they set (the API names them; sizes take K/M/G/T for the byte ones). */
static const struct { const char *opt, *key; bool bytes; } quota_opts[] = {
	{ "--quota-vms", "vms", false },
	{ "--quota-vcpus", "vcpus", false },
	{ "--quota-memory", "memory_mib", false },
	{ "--quota-disk", "disk_bytes", true },
	{ "--quota-networks", "networks", false },
	{ "--quota-images", "images", false },
	{ "--quota-image-bytes", "image_bytes", true },
};
#define N_QUOTA_OPTS (sizeof(quota_opts) / sizeof(quota_opts[0]))

/* A count: decimal digits only, below 2^63. */
static bool count_parse(const char *v, uint64_t *n)
{
	char *end;

	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	*n = strtoull(v, &end, 10);
	return errno == 0 && *end == '\0' && *n <= INT64_MAX;
}

/* {"vms": 10, "vcpus": "unlimited", …} from the options given; NULL (and
 * nothing recorded) when none, NULL with a usage error when one is bad. */
static json_t *quota_body(struct hc *h, const struct args *a, bool *bad)
{
	json_t *body = NULL;

	*bad = false;
	for (size_t i = 0; i < N_QUOTA_OPTS && !*bad; i++) {
		const char *v = arg_opt(a, quota_opts[i].opt);
		uint64_t n;
		json_t *jv;
		if (v == NULL)
			continue;
		if (strcmp(v, "unlimited") == 0 || strcmp(v, "default") == 0) {
			jv = json_string(v);
		} else if (quota_opts[i].bytes ? size_parse(v, &n) : count_parse(v, &n)) {
			jv = json_integer((json_int_t)n);
		} else {
			hc_usage(h, "user set: %s '%s': give %s, unlimited or default", quota_opts[i].opt, v,
				 quota_opts[i].bytes ? "a size (e.g. 20G)" : "a number");
			*bad = true;
			break;
		}
		if (body == NULL)
			body = json_object();
		json_object_set_new(body, quota_opts[i].key, jv);
	}
	if (*bad) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* "3 / 10", "768 / unlimited", "1.0 GiB / 4.0 GiB (default)". */
static void print_quota(json_t *quota)
{
	const char *key;
	json_t *q;

	printf("%-12s %20s  %s\n", "QUOTA", "USED", "LIMIT");
	json_object_foreach(quota, key, q) {
		bool bytes = strstr(key, "bytes") != NULL;
		json_t *lim = json_object_get(q, "limit");
		const char *set = json_str(q, "set");
		char used[32], limit[32];
		long long u = (long long)json_integer_value(json_object_get(q, "used"));
		if (bytes)
			human_bytes(u, used, sizeof(used));
		else
			snprintf(used, sizeof(used), "%lld", u);
		if (!json_is_integer(lim))
			snprintf(limit, sizeof(limit), "unlimited");
		else if (bytes)
			human_bytes((long long)json_integer_value(lim), limit, sizeof(limit));
		else
			snprintf(limit, sizeof(limit), "%lld", (long long)json_integer_value(lim));
		printf("%-12s %20s  %s%s\n", key, used, limit,
		       strcmp(set, "default") == 0 ? " (default)" : "");
	}
}

/* The user, then its quotas: usage against limits (--json: the user with
 * its "quota" member as GET /v1/users/NAME/quota has it). */
static int show_user_with_quota(struct hc *h, json_t *user, const char *name)
{
	char *path = api_path("users", name, "quota");
	json_t *q = NULL;
	int rc = path ? api_call(h, "GET", path, NULL, &q, NULL) : hc_fail(h, "out of memory");

	free(path);
	if (rc < 0)
		return -1;
	if (h->json) {
		json_object_set(user, "quota", json_object_get(q, "quota"));
		print_json(user);
	} else {
		print_fields(user, user_show);
		print_quota(json_object_get(q, "quota"));
	}
	json_decref(q);
	return 0;
}

int cmd_user_show(struct hc *h, const struct args *a)
{
	char *path = api_path("users", a->pos[0], NULL);
	json_t *user = NULL;
	int rc = path ? api_call(h, "GET", path, NULL, &user, NULL) : hc_fail(h, "out of memory");

	free(path);
	if (rc == 0)
		rc = show_user_with_quota(h, user, a->pos[0]);
	json_decref(user);
	return rc;
}

int cmd_user_set(struct hc *h, const struct args *a)
{
	json_t *body = json_object(), *user = NULL, *quota;
	char *path = api_path("users", a->pos[0], NULL);
	bool bad = false;
	int rc;

	if (arg_opt(a, "--role"))
		json_object_set_new(body, "role", json_string(arg_opt(a, "--role")));
	if (arg_opt(a, "--auth"))
		json_object_set_new(body, "auth", auth_list(a));
	if (arg_flag(a, "--enable") && arg_flag(a, "--disable")) {
		json_decref(body);
		free(path);
		return hc_usage(h, "user set: --enable or --disable, not both");
	}
	if (arg_flag(a, "--enable") || arg_flag(a, "--disable"))
		json_object_set_new(body, "enabled", json_boolean(arg_flag(a, "--enable")));
	/* The rate cap and traffic quota are a resource of their own (usage.c). */
	int traffic = cli_user_traffic(h, a);
	quota = traffic < 0 ? NULL : quota_body(h, a, &bad);
	if (traffic < 0 || bad || (traffic > 0 && json_object_size(body) == 0 && quota == NULL)) {
		json_decref(body);
		json_decref(quota);
		free(path);
		return traffic < 0 || bad ? -1 : 0;
	}
	/* Quotas have their own endpoint; the user's fields only when given. */
	if (json_object_size(body) > 0 || quota == NULL)
		rc = api_call(h, "PATCH", path, body, &user, NULL);
	else
		rc = api_call(h, "GET", path, NULL, &user, NULL);
	json_decref(body);
	free(path);
	if (rc == 0 && quota) {
		char *qpath = api_path("users", a->pos[0], "quota");
		rc = qpath ? api_call(h, "PATCH", qpath, quota, NULL, NULL) : hc_fail(h, "out of memory");
		free(qpath);
	}
	json_decref(quota);
	if (rc == 0)
		rc = quota ? show_user_with_quota(h, user, a->pos[0]) : (print_resource(h, &res_user, user), 0);
	json_decref(user);
	return rc < 0 ? -1 : 0;
}

/*
 * Change credentials of a user.  A member changing their own with a token
 * must prove who they are (the daemon answers 403 "current password"): on
 * a terminal, ask for the current password — or a one-time code for a
 * user without one — and try once more with it in the body.
 */
static int call_with_proof(struct hc *h, const char *method, const char *path, const char *user,
			   json_t *body, json_t **out)
{
	long status = 0;
	int rc = api_call(h, method, path, body, out, &status);
	json_t *who = NULL;
	char *upath, *secret;
	bool has_password;

	if (rc == 0 || status != 403 || h->err == NULL || strstr(h->err, "current password") == NULL)
		return rc;
	upath = api_path("users", user, NULL);
	if (upath == NULL || api_call(h, "GET", upath, NULL, &who, NULL) < 0) {
		free(upath);
		return -1;
	}
	free(upath);
	has_password = strstr(json_str(who, "auth"), "file") || strstr(json_str(who, "auth"), "ldap");
	json_decref(who);
	secret = prompt_secret(has_password ? "Current password: " : "One-time code: ", !has_password);
	if (secret == NULL)
		return rc;   /* no terminal: the daemon's refusal stands */
	hc_clear(h);
	json_object_set_new(body, has_password ? "current_password" : "otp", json_string(secret));
	secret_free(secret);
	return api_call(h, method, path, body, out, NULL);
}

int cmd_user_passwd(struct hc *h, const struct args *a)
{
	char *pw = get_password(h, a, true);
	char *path;
	json_t *body;
	int rc;

	if (pw == NULL)
		return -1;
	path = api_path("users", a->pos[0], "password");
	body = json_pack("{s:s}", "password", pw);
	secret_free(pw);
	rc = call_with_proof(h, "POST", path, a->pos[0], body, NULL);
	json_decref(body);
	free(path);
	return rc;
}

int cmd_user_otp(struct hc *h, const struct args *a)
{
	const char *verb = a->pos[0];
	json_t *out = NULL;
	char *path;
	int rc;

	if (strcmp(verb, "enable") != 0 && strcmp(verb, "disable") != 0)
		return hc_usage(h, "user otp: enable or disable, not '%s'", verb);
	path = api_path("users", a->pos[1], "otp");
	json_t *body = json_object();
	if (strcmp(verb, "disable") == 0) {
		rc = call_with_proof(h, "DELETE", path, a->pos[1], body, NULL);
		json_decref(body);
		free(path);
		return rc;
	}
	rc = call_with_proof(h, "POST", path, a->pos[1], body, &out);
	json_decref(body);
	free(path);
	if (rc < 0)
		return -1;
	if (h->json) {
		print_json(out);
	} else {
		const char *uri = json_str(out, "uri");
		printf("%s\n", uri);
		/* The QR code is for a phone's camera: only worth drawing on a terminal. */
		if (isatty(STDOUT_FILENO)) {
			putchar('\n');
			totp_qr_render(uri, stdout);
		}
		printf("Scan the code or enter the URI in an authenticator app; "
		       "logins now need a code.\n");
	}
	json_decref(out);
	return 0;
}

int cmd_login(struct hc *h, const struct args *a)
{
	const char *otp = arg_opt(a, "--otp");
	char *pw = NULL, *code = NULL;
	json_t *body, *out = NULL;
	long status = 0;
	int rc;

	if (!arg_flag(a, "--otp-only") && (pw = get_password(h, a, false)) == NULL)
		return -1;
	/* Without a password the code goes with the first request: the daemon
	 * answers a missing one as a wrong one (it would otherwise tell
	 * OTP-only users from unknown ones). */
	if (arg_flag(a, "--otp-only") && !otp && (code = prompt_secret("One-time code: ", true)) == NULL)
		return hc_usage(h, "no terminal to ask for the code: use --otp CODE");
	for (int attempt = 0;; attempt++) {
		body = json_pack("{s:s}", "user", a->pos[0]);
		if (pw)
			json_object_set_new(body, "password", json_string(pw));
		if (otp || code)
			json_object_set_new(body, "otp", json_string(otp ? otp : code));
		rc = api_call(h, "POST", "/v1/login", body, &out, &status);
		json_decref(body);
		/* A second factor is asked for only once the password is right. */
		if (rc < 0 && status == 401 && attempt == 0 && !otp && h->err &&
		    strstr(h->err, "one-time code is required") &&
		    (code = prompt_secret("One-time code: ", true)) != NULL) {
			hc_clear(h);
			continue;
		}
		break;
	}
	secret_free(pw);
	secret_free(code);
	if (rc < 0)
		return -1;
	const char *token = json_str(out, "token");
	char *file = credfile_path();
	if (file == NULL || credfile_store(file, client_url(h->cl), token) < 0) {
		rc = hc_fail(h, "logged in, but the token cannot be saved in %s: %s",
			     file ? file : "(no home directory)", file ? strerror(errno) : "");
		free(file);
		json_decref(out);
		return rc;
	}
	free(file);
	if (!h->json)
		printf("logged in as %s (token %s)\n", a->pos[0], json_str(out, "id"));
	json_decref(out);
	return 0;
}

int cmd_logout(struct hc *h, const struct args *a)
{
	json_t *empty = json_object();
	int rc = api_call(h, "POST", "/v1/logout", empty, NULL, NULL);

	json_decref(empty);

	/* Forget the token even when the daemon already had: it is useless. */
	char *file = credfile_path();
	if (file && credfile_remove(file, client_url(h->cl)) < 0) {
		hc_clear(h);
		rc = hc_fail(h, "%s: %s", file, strerror(errno));
	}
	free(file);
	return rc;
}

int cmd_whoami(struct hc *h, const struct args *a)
{
	json_t *me = NULL;

	if (api_call(h, "GET", "/v1/whoami", NULL, &me, NULL) < 0)
		return -1;
	print_resource(h, &res_user, me);
	json_decref(me);
	return 0;
}
