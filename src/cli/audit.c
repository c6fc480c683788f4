/*
 * audit.c — `hc audit`: the audit trail (admins), oldest first, the
 * newest --limit entries at or after --since of --user.
 */
#include "cli/cli.h"

#include "common/fsutil.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct column audit_cols[] = {
	{ "TIME", "time", fmt_time },
	{ "USER", "user", NULL },
	{ "SOURCE", "source", NULL },
	{ "METHOD", "method", NULL },
	{ "ROUTE", "route", NULL },
	{ "REF", "ref", NULL },
	{ "STATUS", "status", NULL },
	{ "RESULT", "result", NULL },
	{ "HOST", "host", NULL },
	{ 0 },
};

int cmd_audit(struct hc *h, const struct args *a)
{
	const char *user = arg_opt(a, "--user"), *since = arg_opt(a, "--since");
	long limit = 0;
	long long from = 0;
	char *path, *esc = NULL, lim[32] = "";
	json_t *rows = NULL;
	int rc;

	if (arg_int(h, a, "--limit", 1, 10000, &limit) < 0)
		return -1;
	if (since && (from = since_parse(since, (long long)time(NULL))) < 0)
		return hc_usage(h, "audit: --since '%s': give unix seconds, an age (90m, 2h, 7d)"
				" or a UTC date (2026-12-01, 2026-12-01T08:30)", since);
	if (user && (esc = curl_easy_escape(NULL, user, 0)) == NULL)
		return hc_fail(h, "out of memory");
	/* Without --limit, the daemon's default. */
	if (limit)
		snprintf(lim, sizeof(lim), "&limit=%ld", limit);
	path = str_printf("/v1/audit?since=%lld%s%s%s", from, esc ? "&user=" : "", esc ? esc : "", lim);
	curl_free(esc);
	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "GET", path, NULL, &rows, NULL);
	free(path);
	if (rc < 0)
		return -1;
	if (h->json)
		print_json(rows);
	else
		print_table(rows, audit_cols);
	json_decref(rows);
	return 0;
}
