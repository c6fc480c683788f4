/*
 * netstate_load — fill a net/netstate.h snapshot from the store: every
 * network, every NIC (with its computed addresses; "active" when its VM
 * runs or should run on this host), every VM rule, and the overlay's
 * forwarding entries towards the other live hosts (struct ns_fdb; none
 * when host is NULL).
 */
#ifndef HC_NETSTATE_LOAD_H
#define HC_NETSTATE_LOAD_H

#include "net/netstate.h"
#include "store/store.h"

int netstate_load(struct store *st, const char *host, const char *uplink, struct netstate *ns);
/* The same from networks and VMs the caller has already listed (the
 * agent's pass: one list of 10,000 VMs per pass, not two); rules and the
 * overlay's hosts are read here. */
int netstate_build(struct store *st, const char *host, const char *uplink,
		   const struct network *nets, size_t n_nets, const struct vm *vms, size_t n_vms,
		   struct netstate *ns);

#endif
