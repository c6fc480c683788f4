/*
 * usage — the CLI's side of bandwidth limits, traffic counters, quotas and
 * usage (issue 13): `hc vm nic set`, `hc vm stats`, `hc vm set
 * --traffic-quota`, `hc usage`, and the --rate / --rate-cap /
 * --traffic-quota options of other commands.
 *
 * A limit is written as a SPEC (common/rate.h): RATE[:BURST] for both
 * directions, IN/OUT for each ("in" = to the VM), "none" for no limit —
 * `--rate 100mbit`, `--rate 20mbit:64k/10mbit`, `--rate none/5mbit`.
 */
#include "cli/cli.h"

#include "common/fsutil.h"
#include "common/rate.h"
#include "common/validate.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- limits: text ↔ JSON ------------------------------------------------ */

static json_t *side_json(const struct rate_limit *l)
{
	if (l->rate == 0)
		return json_null();
	json_t *o = json_pack("{s:I}", "rate", (json_int_t)l->rate);
	if (o && l->burst)
		json_object_set_new(o, "burst", json_integer((json_int_t)l->burst));
	return o;
}

json_t *cli_limit_json(struct hc *h, const char *spec, const char *what)
{
	struct nic_limit l;
	char err[256];

	if (!rate_spec_parse(spec, &l, err, sizeof(err))) {
		hc_usage(h, "%s: %s", what, err);
		return NULL;
	}
	return json_pack("{s:o, s:o}", "in", side_json(&l.in), "out", side_json(&l.out));
}

static void side_of(json_t *v, struct rate_limit *l)
{
	*l = (struct rate_limit){ 0 };
	if (!json_is_object(v))
		return;
	l->rate = (uint64_t)json_integer_value(json_object_get(v, "rate"));
	l->burst = (uint64_t)json_integer_value(json_object_get(v, "burst"));
}

/* A limit object of the API as a SPEC ("none" when there is none). */
static char *limit_text(json_t *limit)
{
	struct nic_limit l;
	char buf[160];

	side_of(json_object_get(limit, "in"), &l.in);
	side_of(json_object_get(limit, "out"), &l.out);
	rate_spec_format(&l, buf, sizeof(buf));
	return strdup(buf);
}

char *fmt_limit(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_object(v) ? limit_text(v) : strdup("-");
}

json_t *cli_net_element(struct hc *h, const char *arg)
{
	const char *colon = strchr(arg, ':');

	if (colon == NULL)
		return json_string(arg);
	if (strncmp(colon + 1, "rate=", 5) != 0) {
		hc_usage(h, "--net %s: NET or NET:rate=SPEC", arg);
		return NULL;
	}
	char *name = strndup(arg, (size_t)(colon - arg));
	json_t *limit = cli_limit_json(h, colon + 6, "--net");
	json_t *o = name && limit ? json_pack("{s:s, s:o}", "network", name, "limit", limit) : NULL;
	if (o == NULL && limit)
		json_decref(limit);
	free(name);
	return o;
}

int cmd_net_set(struct hc *h, const struct args *a)
{
	const char *spec = arg_opt(a, "--rate");
	json_t *limit;

	if (spec == NULL)
		return hc_usage(h, "net set: nothing to change (--rate SPEC)");
	if ((limit = cli_limit_json(h, spec, "--rate")) == NULL)
		return -1;
	return call_and_print(h, "PATCH", api_path("networks", a->pos[0], NULL),
			      json_pack("{s:o}", "limit", limit),
			      "network '%s': NICs without a limit of their own get %s\n", a->pos[0], spec);
}

/* ---- hc vm nic set VM MAC --rate SPEC ----------------------------------- */

int cli_vm_nic_set(struct hc *h, const struct args *a)
{
	const char *spec = arg_opt(a, "--rate");
	json_t *limit;
	char *suffix;

	if (spec == NULL)
		return hc_usage(h, "vm nic set: --rate SPEC is required (none: the network's default)");
	/* MACs and tap names hold nothing that needs escaping; a bad one is
	 * refused by the API. */
	if (strpbrk(a->pos[2], "/?#%"))
		return hc_usage(h, "'%s' is not a MAC or tap name", a->pos[2]);
	if ((limit = cli_limit_json(h, spec, "--rate")) == NULL)
		return -1;
	/* "none" for both: the NIC has no limit of its own any more. */
	if (json_is_null(json_object_get(limit, "in")) && json_is_null(json_object_get(limit, "out"))) {
		json_decref(limit);
		limit = json_null();
	}
	suffix = str_printf("nics/%s", a->pos[2]);
	int rc = call_and_print(h, "PATCH", suffix ? api_path("vms", a->pos[1], suffix) : NULL,
				json_pack("{s:o}", "limit", limit), "NIC %s: own limit %s\n",
				a->pos[2], spec);
	free(suffix);
	return rc;
}

/* ---- hc vm stats VM ----------------------------------------------------- */

static char *bits_human(uint64_t bps)
{
	static const char *const units[] = { "bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s" };
	double v = (double)bps;
	size_t u = 0;

	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	return u ? str_printf("%.1f %s", v, units[u]) : str_printf("%llu %s", (unsigned long long)bps,
								     units[0]);
}

static char *bytes_of(json_t *obj, const char *key)
{
	char buf[32];

	human_bytes((long long)json_integer_value(json_object_get(obj, key)), buf, sizeof(buf));
	return strdup(buf);
}

/* The effective limit with why: "20mbit/10mbit (nic)". */
static char *effective_text(json_t *nic)
{
	json_t *eff = json_object_get(nic, "effective");
	const char *src_in, *src_out;
	char *spec, *out;

	if (!json_is_object(eff))
		return strdup("-");
	spec = limit_text(eff);
	src_in = json_string_value(json_object_get(json_object_get(eff, "in"), "source"));
	src_out = json_string_value(json_object_get(json_object_get(eff, "out"), "source"));
	if (src_in == NULL && src_out == NULL)
		return spec;
	if (src_in && src_out && strcmp(src_in, src_out) != 0)
		out = str_printf("%s (%s/%s)", spec, src_in, src_out);
	else
		out = str_printf("%s (%s)", spec, src_in ? src_in : src_out);
	free(spec);
	return out;
}

static const struct column stats_cols[] = {
	{ "MAC", "mac", NULL },
	{ "NETWORK", "network", NULL },
	{ "LIMIT IN/OUT", "limit", NULL },
	{ "NOW IN", "now_in", NULL },
	{ "NOW OUT", "now_out", NULL },
	{ "MONTH IN", "month_in", NULL },
	{ "MONTH OUT", "month_out", NULL },
	{ "TOTAL IN", "total_in", NULL },
	{ "TOTAL OUT", "total_out", NULL },
	{ NULL, NULL, NULL },
};

/* A NIC of the stats as a row of printable cells. */
static json_t *stats_row(json_t *nic)
{
	json_t *rates = json_object_get(nic, "rates"), *row = json_object();
	json_t *month = json_object_get(nic, "month"), *total = json_object_get(nic, "total");
	const char *net = json_string_value(json_object_get(nic, "network"));
	char *cells[] = {
		effective_text(nic),
		json_is_object(rates) ? bits_human((uint64_t)json_integer_value(json_object_get(rates, "in_bps"))) : strdup("-"),
		json_is_object(rates) ? bits_human((uint64_t)json_integer_value(json_object_get(rates, "out_bps"))) : strdup("-"),
		bytes_of(month, "bytes_in"), bytes_of(month, "bytes_out"),
		bytes_of(total, "bytes_in"), bytes_of(total, "bytes_out"),
	};
	static const char *const keys[] = { "limit", "now_in", "now_out", "month_in", "month_out",
					    "total_in", "total_out" };

	json_object_set_new(row, "mac", json_string(json_str(nic, "mac")));
	json_object_set_new(row, "network", json_string(json_is_true(json_object_get(nic, "removed"))
							? "(removed)" : net ? net : "-"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_object_set_new(row, keys[i], json_string(cells[i] ? cells[i] : "-"));
		free(cells[i]);
	}
	return row;
}

/* GET path (freed): -1 failed, 0 printed as --json asked, 1 *out is for
 * a table. */
static int fetch(struct hc *h, char *path, json_t **out)
{
	int rc;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "GET", path, NULL, out, NULL);
	free(path);
	if (rc < 0)
		return -1;
	if (!h->json)
		return 1;
	print_json(*out);
	json_decref(*out);
	return 0;
}

int cmd_vm_stats(struct hc *h, const struct args *a)
{
	json_t *out = NULL, *nic;
	size_t i;
	int rc = fetch(h, api_path("vms", a->pos[0], "stats"), &out);

	if (rc <= 0)
		return rc;
	json_t *rows = json_array();
	json_array_foreach(json_object_get(out, "nics"), i, nic)
		json_array_append_new(rows, stats_row(nic));
	print_table(rows, stats_cols);
	json_decref(rows);
	char used[32], quota[32] = "none";
	human_bytes((long long)json_integer_value(json_object_get(out, "used")), used, sizeof(used));
	if (json_is_integer(json_object_get(out, "quota")))
		human_bytes((long long)json_integer_value(json_object_get(out, "quota")), quota,
			    sizeof(quota));
	printf("\ntraffic in %s: %s of quota %s%s\n", json_str(out, "month"), used, quota,
	       json_is_true(json_object_get(out, "throttled")) ? " (throttled: a quota is used up)" : "");
	json_decref(out);
	return 0;
}

/* ---- quotas and caps ---------------------------------------------------- */

/* SIZE or "none" → a JSON integer or null; NULL with a usage error. */
static json_t *quota_json(struct hc *h, const char *opt, const char *v)
{
	uint64_t bytes;

	if (strcmp(v, "none") == 0)
		return json_null();
	if (!size_parse(v, &bytes) || bytes == 0) {
		hc_usage(h, "%s '%s' is not a size (e.g. 10G, 500M) or none", opt, v);
		return NULL;
	}
	return json_integer((json_int_t)bytes);
}

int cli_vm_traffic(struct hc *h, const struct args *a)
{
	const char *q = arg_opt(a, "--traffic-quota");
	json_t *quota;

	if (q == NULL)
		return 0;
	if ((quota = quota_json(h, "--traffic-quota", q)) == NULL)
		return -1;
	return call_and_print(h, "PATCH", api_path("vms", a->pos[0], "traffic"),
			      json_pack("{s:o}", "quota", quota),
			      "vm '%s': monthly traffic quota %s\n", a->pos[0], q) < 0 ? -1 : 1;
}

int cli_user_traffic(struct hc *h, const struct args *a)
{
	const char *cap = arg_opt(a, "--rate-cap"), *q = arg_opt(a, "--traffic-quota");
	json_t *body, *out = NULL, *v;
	uint64_t bps;
	char *path;
	int rc;

	if (cap == NULL && q == NULL)
		return 0;
	body = json_object();
	if (cap && strcmp(cap, "none") == 0) {
		json_object_set_new(body, "rate_cap", json_null());
	} else if (cap) {
		if (!rate_parse(cap, &bps)) {
			json_decref(body);
			return hc_usage(h, "--rate-cap '%s' is not a rate (e.g. 100mbit) or none", cap);
		}
		json_object_set_new(body, "rate_cap", json_integer((json_int_t)bps));
	}
	if (q) {
		if ((v = quota_json(h, "--traffic-quota", q)) == NULL) {
			json_decref(body);
			return -1;
		}
		json_object_set_new(body, "quota", v);
	}
	path = api_path("users", a->pos[0], "traffic");
	rc = path ? api_call(h, "PATCH", path, body, &out, NULL) : hc_fail(h, "out of memory");
	json_decref(body);
	free(path);
	if (rc < 0)
		return -1;
	if (h->json)
		print_json(out);
	json_decref(out);
	return 1;
}

/* ---- hc usage [--user U] [--month YYYY-MM] ------------------------------ */

static char *hours(json_t *obj, const char *key)
{
	return str_printf("%.2f", json_real_value(json_object_get(obj, key)));
}

static const struct column usage_user_cols[] = {
	{ "USER", "user", NULL }, { "VMS", "vms", NULL }, { "IN", "in", NULL },
	{ "OUT", "out", NULL }, { "VCPU-H", "vcpu", NULL }, { "MEM-GIB-H", "mem", NULL },
	{ "DISK-GIB-H", "disk", NULL }, { "QUOTA", "quota", NULL }, { NULL, NULL, NULL },
};

static const struct column usage_vm_cols[] = {
	{ "ID", "id", NULL }, { "NAME", "name", NULL }, { "OWNER", "owner", NULL },
	{ "IN", "in", NULL }, { "OUT", "out", NULL }, { "VCPU-H", "vcpu", NULL },
	{ "MEM-GIB-H", "mem", NULL }, { "DISK-GIB-H", "disk", NULL }, { NULL, NULL, NULL },
};

/* The usage figures of a row of the API as printable cells. */
static json_t *usage_cells(json_t *src, const char *const *copy)
{
	json_t *row = json_object();
	char *in = bytes_of(src, "bytes_in"), *out = bytes_of(src, "bytes_out");
	char *vcpu = hours(src, "vcpu_hours"), *mem = hours(src, "memory_gib_hours");
	char *disk = hours(src, "disk_gib_hours");

	for (; *copy; copy++) {
		json_t *v = json_object_get(src, *copy);
		json_object_set_new(row, *copy, json_is_integer(v) ?
				    json_sprintf("%lld", (long long)json_integer_value(v)) :
				    json_string(json_str(src, *copy)));
	}
	json_object_set_new(row, "in", json_string(in ? in : "-"));
	json_object_set_new(row, "out", json_string(out ? out : "-"));
	json_object_set_new(row, "vcpu", json_string(vcpu ? vcpu : "-"));
	json_object_set_new(row, "mem", json_string(mem ? mem : "-"));
	json_object_set_new(row, "disk", json_string(disk ? disk : "-"));
	free(in);
	free(out);
	free(vcpu);
	free(mem);
	free(disk);
	return row;
}

int cmd_usage(struct hc *h, const struct args *a)
{
	const char *user = arg_opt(a, "--user"), *month = arg_opt(a, "--month");
	char *u = user ? curl_easy_escape(NULL, user, 0) : NULL;
	char *m = month ? curl_easy_escape(NULL, month, 0) : NULL;
	char *path = str_printf("/v1/usage%s%s%s%s%s%s", u || m ? "?" : "", u ? "user=" : "",
				u ? u : "", u && m ? "&" : "", m ? "month=" : "", m ? m : "");
	json_t *out = NULL, *v;
	size_t i;
	int rc;

	curl_free(u);
	curl_free(m);
	if ((rc = fetch(h, path, &out)) <= 0)
		return rc;
	static const char *const user_keys[] = { "user", "vms", NULL };
	static const char *const vm_keys[] = { "id", "name", "owner", NULL };
	json_t *users = json_array(), *vms = json_array();
	json_array_foreach(json_object_get(out, "users"), i, v) {
		json_t *row = usage_cells(v, user_keys);
		char q[32] = "-";
		if (json_is_integer(json_object_get(v, "quota")))
			human_bytes((long long)json_integer_value(json_object_get(v, "quota")), q, sizeof(q));
		json_object_set_new(row, "quota", json_sprintf("%s%s", q,
				    json_is_true(json_object_get(v, "throttled")) ? " (used up)" : ""));
		json_array_append_new(users, row);
	}
	json_array_foreach(json_object_get(out, "vms"), i, v)
		json_array_append_new(vms, usage_cells(v, vm_keys));
	printf("usage in %s\n\n", json_str(out, "month"));
	print_table(users, usage_user_cols);
	printf("\n");
	print_table(vms, usage_vm_cols);
	json_decref(users);
	json_decref(vms);
	json_decref(out);
	return 0;
}
