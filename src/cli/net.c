/*
 * net.c — `hc net …`: networks.  list, show and delete are the shared verbs
 * of resource.c; create is here.
 */
#include "cli/cli.h"

static const struct column net_list[] = {
	{ "ID", "id", NULL },
	{ "NAME", "name", NULL },
	{ "BRIDGE", "bridge", NULL },
	{ "IPV6", "ipv6", NULL },
	{ "IPV4", "ipv4", NULL },
	{ 0 },
};

static const struct column net_show[] = {
	{ "id", "id", NULL },
	{ "name", "name", NULL },
	{ "bridge", "bridge", NULL },
	{ "ipv6", "ipv6", NULL },
	{ "ipv4", "ipv4", NULL },
	{ "owner", "owner", NULL },
	{ "created", "created", fmt_time },
	{ "limit", "limit", fmt_limit },
	{ 0 },
};

const struct resource res_net = { "network", "networks", net_list, net_show, NULL, NULL };

int cmd_net_create(struct hc *h, const struct args *a)
{
	const char *ipv6 = arg_opt(a, "--ipv6"), *ipv4 = arg_opt(a, "--ipv4");
	json_t *body, *net;
	int rc;

	/* The daemon checks the prefixes: one place knows the rules.  Without
	 * --ipv6 it takes the next free /64 of the tenant pool. */
	body = json_pack("{s:s}", "name", a->pos[0]);
	if (body && ipv6)
		json_object_set_new(body, "ipv6", json_string(ipv6));
	if (body && ipv4)
		json_object_set_new(body, "ipv4", json_string(ipv4));
	if (body && arg_opt(a, "--rate")) {
		json_t *limit = cli_limit_json(h, arg_opt(a, "--rate"), "--rate");
		if (limit == NULL) {
			json_decref(body);
			return -1;
		}
		json_object_set_new(body, "limit", limit);
	}
	if (body == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "POST", "/v1/networks", body, &net, NULL);
	json_decref(body);
	if (rc < 0)
		return -1;
	print_resource(h, &res_net, net);
	json_decref(net);
	return 0;
}
