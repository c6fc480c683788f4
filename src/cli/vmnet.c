/*
 * vmnet — `hc vm nic …` and `hc vm rule …`: a VM's NICs (hot-plugged when
 * it runs) and its inbound firewall rules.  The sub-verb is the first
 * positional argument, so the command table keeps two levels.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct column rule_cols[] = {
	{ "ID", "id", NULL },
	{ "PROTO", "proto", NULL },
	{ "PORTS", "ports", NULL },
	{ "SOURCE", "source", NULL },
	{ NULL, NULL, NULL },
};

int call_and_print(struct hc *h, const char *method, char *path, json_t *body,
		   const char *done_fmt, const char *a1, const char *a2)
{
	json_t *out;
	int rc = api_call_printed(h, method, path, body, &out);

	if (rc == 0)
		printf(done_fmt, a1, a2);
	json_decref(out);
	return rc < 0 ? -1 : 0;
}

/* vm nic add VM NET [--rate SPEC]: the limit goes in the same request, so
 * the NIC never runs without it. */
static int nic_add(struct hc *h, const struct args *a)
{
	const char *spec = arg_opt(a, "--rate");
	json_t *limit = NULL;

	if (spec && (limit = cli_limit_json(h, spec, "--rate")) == NULL)
		return -1;
	json_t *body = json_pack("{s:s}", "network", a->pos[2]);
	if (body && limit)
		json_object_set_new(body, "limit", limit);
	else
		json_decref(limit);
	return call_and_print(h, "POST", api_path("vms", a->pos[1], "nics"), body,
			      "vm '%s': NIC on '%s' added\n", a->pos[1], a->pos[2]);
}

int cmd_vm_nic(struct hc *h, const struct args *a)
{
	const char *sub = a->pos[0];

	if (a->n_pos != 3)
		return hc_usage(h, "usage: hc vm nic add VM NET [--rate SPEC] | hc vm nic remove VM MAC |"
				" hc vm nic set VM MAC --rate SPEC");
	if (strcmp(sub, "set") == 0)
		return cli_vm_nic_set(h, a);
	if (strcmp(sub, "add") == 0)
		return nic_add(h, a);
	if (arg_opt(a, "--rate"))
		return hc_usage(h, "--rate goes with 'hc vm nic add' or 'hc vm nic set'");
	if (strcmp(sub, "remove") == 0) {
		char *suffix = malloc(strlen(a->pos[2]) + 6);
		if (suffix == NULL)
			return hc_fail(h, "out of memory");
		/* MACs and tap names hold no character that needs escaping; a
		 * bad one is refused by the API. */
		if (strchr(a->pos[2], '/') || strchr(a->pos[2], '?')) {
			free(suffix);
			return hc_usage(h, "'%s' is not a MAC or tap name", a->pos[2]);
		}
		sprintf(suffix, "nics/%s", a->pos[2]);
		int rc = call_and_print(h, "DELETE", api_path("vms", a->pos[1], suffix), NULL,
					"vm '%s': NIC %s removed\n", a->pos[1], a->pos[2]);
		free(suffix);
		return rc;
	}
	return hc_usage(h, "unknown 'hc vm nic %s': use add, remove or set", sub);
}

static int rule_list(struct hc *h, const char *vm)
{
	char *path = api_path("vms", vm, "rules");
	json_t *out = NULL;
	int rc;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "GET", path, NULL, &out, NULL);
	free(path);
	if (rc < 0)
		return -1;
	if (h->json)
		print_json(out);
	else
		print_table(out, rule_cols);
	json_decref(out);
	return 0;
}

int cmd_vm_rule(struct hc *h, const struct args *a)
{
	const char *sub = a->pos[0];

	if (strcmp(sub, "list") == 0 && a->n_pos == 2)
		return rule_list(h, a->pos[1]);
	if (strcmp(sub, "add") == 0 && a->n_pos == 2) {
		const char *proto = arg_opt(a, "--proto");
		const char *port = arg_opt(a, "--port");
		const char *source = arg_opt(a, "--source");
		json_t *body = json_pack("{s:s}", "proto", proto ? proto : (port ? "tcp" : "any"));
		if (port)
			json_object_set_new(body, "ports", json_string(port));
		if (source)
			json_object_set_new(body, "source", json_string(source));
		return call_and_print(h, "POST", api_path("vms", a->pos[1], "rules"), body,
				      "vm '%s': rule added%s\n", a->pos[1], "");
	}
	if (strcmp(sub, "delete") == 0 && a->n_pos == 3) {
		char suffix[40];
		char *end;
		strtoull(a->pos[2], &end, 10);
		if (*end != '\0' || end == a->pos[2])
			return hc_usage(h, "a rule is named by its numeric ID");
		snprintf(suffix, sizeof(suffix), "rules/%s", a->pos[2]);
		return call_and_print(h, "DELETE", api_path("vms", a->pos[1], suffix), NULL,
				      "vm '%s': rule %s deleted\n", a->pos[1], a->pos[2]);
	}
	return hc_usage(h, "usage: hc vm rule add VM [--proto P] [--port N[-M]] [--source PREFIX]"
			" | list VM | delete VM ID");
}
