/*
 * prefix — `hc vm prefix …` (a VM's routed IPv6 prefixes) and `hc ip …`
 * (public IPv4 addresses mapped 1:1 to VMs), issue 13.  The sub-verb of
 * `vm prefix` is its first positional argument, as for `vm rule`.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct column prefix_cols[] = {
	{ "PREFIX", "prefix", NULL },
	{ "NIC", "nic", NULL },
	{ "NETWORK", "network", NULL },
	{ "VIA", "via", NULL },
	{ "CREATED", "created", fmt_time },
	{ NULL, NULL, NULL },
};

static const struct column ip_cols[] = {
	{ "ADDRESS", "address", NULL },
	{ "VM", "vm_name", NULL },
	{ "VM ID", "vm", NULL },
	{ "NIC", "nic", NULL },
	{ "PRIVATE IPV4", "private_ipv4", NULL },
	{ "ATTACHED", "created", fmt_time },
	{ NULL, NULL, NULL },
};

/* One call; its JSON, a table of it (cols) or a line naming member. */
static int call(struct hc *h, const char *method, char *path, json_t *body, const struct column *cols,
		const char *done_fmt, const char *member)
{
	json_t *out;
	int rc = api_call_printed(h, method, path, body, &out);

	if (rc == 0 && cols != NULL)
		print_table(out, cols);
	else if (rc == 0)
		printf(done_fmt, json_str(out, member));
	json_decref(out);
	return rc < 0 ? -1 : 0;
}

/* "vms/<vm>/<what>/<item>" with item checked: addresses hold no character
 * a path must escape ('/', '?', '%', '#'); the API refuses bad ones. */
static char *item_path(struct hc *h, const char *vm, const char *what, const char *item)
{
	char suffix[96];

	if (strpbrk(item, "/?%#") != NULL || strlen(item) > 64) {
		hc_usage(h, "'%s' is not an address", item);
		return NULL;
	}
	snprintf(suffix, sizeof(suffix), "%s/%s", what, item);
	char *p = api_path("vms", vm, suffix);
	if (p == NULL)
		hc_fail(h, "out of memory");
	return p;
}

int cmd_vm_prefix(struct hc *h, const struct args *a)
{
	const char *sub = a->pos[0];

	if (strcmp(sub, "list") == 0 && a->n_pos == 2)
		return call(h, "GET", api_path("vms", a->pos[1], "prefixes"), NULL, prefix_cols, NULL, NULL);
	if (strcmp(sub, "add") == 0 && a->n_pos == 2) {
		long len = 0;
		const char *nic = arg_opt(a, "--nic");
		json_t *body = json_object();
		if (arg_int(h, a, "--length", 16, 64, &len) < 0) {
			json_decref(body);
			return -1;
		}
		if (len > 0)
			json_object_set_new(body, "length", json_integer(len));
		if (nic != NULL)
			json_object_set_new(body, "nic", json_string(nic));
		return call(h, "POST", api_path("vms", a->pos[1], "prefixes"), body, NULL, "%s\n", "prefix");
	}
	if (strcmp(sub, "remove") == 0 && a->n_pos == 3) {
		/* "2001:db8:100:1::/64" or its address alone: the API names a
		 * prefix by its network address. */
		char addr[INET6_ADDRSTRLEN + 8];
		snprintf(addr, sizeof(addr), "%s", a->pos[2]);
		char *slash = strchr(addr, '/');
		if (slash != NULL)
			*slash = '\0';
		char *path = item_path(h, a->pos[1], "prefixes", addr);
		if (path == NULL)
			return -1;
		return call(h, "DELETE", path, NULL, NULL, "prefix %s removed\n", "deleted");
	}
	return hc_usage(h, "usage: hc vm prefix add VM [--length N] [--nic MAC] | list VM | remove VM PREFIX");
}

int cmd_ip_attach(struct hc *h, const struct args *a)
{
	const char *nic = arg_opt(a, "--nic");
	json_t *body = json_object();

	if (a->n_pos == 2)
		json_object_set_new(body, "address", json_string(a->pos[1]));
	if (nic != NULL)
		json_object_set_new(body, "nic", json_string(nic));
	return call(h, "POST", api_path("vms", a->pos[0], "ips"), body, NULL, "%s\n", "address");
}

int cmd_ip_detach(struct hc *h, const struct args *a)
{
	char *path = item_path(h, a->pos[0], "ips", a->pos[1]);

	if (path == NULL)
		return -1;
	return call(h, "DELETE", path, NULL, NULL, "%s detached\n", "detached");
}

int cmd_ip_list(struct hc *h, const struct args *a)
{
	char *path = strdup("/v1/ips");

	return call(h, "GET", path, NULL, ip_cols, NULL, NULL);
}
