/* netstate — freeing a snapshot, the gateway addresses; see netstate.h.
 * Loading it from the store belongs to the agent. */
#include "net/netstate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

void netstate_free(struct netstate *ns)
{
	if (ns == NULL)
		return;
	for (size_t i = 0; i < ns->n_nets; i++)
		free(ns->nets[i].name);
	for (size_t i = 0; i < ns->n_nics; i++)
		free(ns->nics[i].vm_name);
	for (size_t i = 0; i < ns->n_rules; i++)
		free(ns->rules[i].source);
	free(ns->nets);
	free(ns->nics);
	free(ns->rules);
	free(ns->uplink);
	free(ns->fdb);
	free(ns->prefixes);
	free(ns->public4);
	free(ns->migports);
	memset(ns, 0, sizeof(*ns));
}

struct in6_addr ns_gateway6(const struct ns_net *net)
{
	struct in6_addr gw = net->prefix6;

	gw.s6_addr[15] = 1;
	return gw;
}

struct in_addr ns_gateway4(const struct ns_net *net)
{
	return (struct in_addr){ .s_addr = htonl(ntohl(net->net4.s_addr) + 1) };
}
