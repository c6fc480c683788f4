/*
 * host.c — `hc host …`: the hosts of a cluster (admins).  list and show
 * are the shared verbs of resource.c; drain is here.
 */
#include "cli/cli.h"

#include <stdlib.h>

static const struct column host_list[] = {
	{ "NAME", "name", NULL },
	{ "ADDRESS", "address", NULL },
	{ "STATE", "state", NULL },
	{ "DRAIN", "drain", NULL },
	{ "CPUS", "cpus", NULL },
	{ "MEMORY", "memory_mib", fmt_mib },
	{ "VMS", "vms", NULL },
	{ "USED CPUS", "used_cpus", NULL },
	{ "USED MEMORY", "used_mib", fmt_mib },
	{ "LAST SEEN", "last_seen", fmt_time },
	{ 0 },
};

static const struct column host_show[] = {
	{ "name", "name", NULL },
	{ "address", "address", NULL },
	{ "state", "state", NULL },
	{ "drain", "drain", NULL },
	{ "accel", "accel", NULL },
	{ "cpus", "cpus", NULL },
	{ "memory", "memory_mib", fmt_mib },
	{ "vms", "vms", NULL },
	{ "used cpus", "used_cpus", NULL },
	{ "used memory", "used_mib", fmt_mib },
	{ "last seen", "last_seen", fmt_time },
	{ "created", "created", fmt_time },
	{ 0 },
};

const struct resource res_host = { "host", "hosts", host_list, host_show, NULL, NULL };

int cmd_host_drain(struct hc *h, const struct args *a)
{
	long parallel = 1;

	if (arg_int(h, a, "--parallel", 1, 16, &parallel) < 0)
		return -1;
	if (arg_flag(a, "--migrate") && arg_flag(a, "--undo"))
		return hc_usage(h, "host drain: --migrate and --undo exclude each other");
	if (arg_flag(a, "--migrate"))
		return cmd_host_drain_migrate(h, a, parallel);
	char *path = api_path("hosts", a->pos[0], "drain");
	json_t *body = json_pack("{s:b}", "drain", !arg_flag(a, "--undo"));
	json_t *host = NULL;
	int rc = api_call(h, "POST", path, body, &host, NULL);

	json_decref(body);
	free(path);
	if (rc < 0)
		return -1;
	print_resource(h, &res_host, host);
	json_decref(host);
	return 0;
}
