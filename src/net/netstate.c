/* netstate — freeing a snapshot; see netstate.h.  Loading it from the
 * store belongs to the agent. */
#include "net/netstate.h"

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
	memset(ns, 0, sizeof(*ns));
}
