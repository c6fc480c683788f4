/*
 * server — the metadata service (DESIGN §7).
 *
 * It listens on 169.254.169.254:80 (one socket: the address is on every
 * bridge) and on [fe80::a9fe:a9fe]:80 of each bridge.
 * The caller is identified only by the packet (metadata/ident.h): the
 * neighbour entry of its source address on the hackcloud bridge the host
 * routes it through names a MAC 02:00:<NIC id>; that NIC must belong to
 * a VM that is not deleted and sit on that bridge's network.  Nothing the
 * guest sends (Host, X-Forwarded-For, paths) can change whose data it
 * gets.  Addresses that do not resolve to such a NIC get 403.
 *
 * Order of a request, cheapest first, so that a flood costs little:
 *   1. a token bucket per source address (no lookup of any kind yet);
 *   2. identification (cached; metadata/ident.h);
 *   3. a token bucket per VM, so one guest cannot starve the others;
 *   4. IMDSv2 (metadata/imds_token.h): `PUT /latest/api/token` hands out
 *      a token bound to the VM, in a reply that leaves with IP TTL / hop
 *      limit 1 so that a guest cannot relay it; PUTs with X-Forwarded-For
 *      are refused (403) as AWS does; a GET with a token header must carry
 *      a valid token of this VM (401 otherwise); a VM whose
 *      metadata_tokens is "required" gets 401 for every GET without one,
 *      on the EC2 and the OpenStack trees alike (the OpenStack tree holds
 *      the same keys and user data; exempting it would void the setting);
 *   5. the answer (metadata/tree.h).
 *
 * VMs are cached by NIC until metadata_invalidate, which hcd calls after
 * every committed change of intent (the store's change hook) and every
 * announcement from other hosts.  NIC IDs are never reused, so a cached
 * VM can at worst be a moment stale, never another guest's.
 */
#ifndef HC_METADATA_SERVER_H
#define HC_METADATA_SERVER_H

#include "store/store.h"

#define METADATA_IPV4 "169.254.169.254"
#define METADATA_IPV6 "fe80::a9fe:a9fe"

struct metadata_server;

/* port: 80 normally; rate: requests per second per VM and per source
 * address (bursts of 3 s worth), 0 = unlimited.  NULL and *err when it
 * cannot listen. */
struct metadata_server *metadata_start(struct store *st, int port, int rate, char **err);
void metadata_stop(struct metadata_server *s);
/* Listen on [fe80::a9fe:a9fe%bridge] of every bridge the store has (and
 * stop for bridges that went); call after each reconcile pass. */
void metadata_sync(struct metadata_server *s);
/* The store changed: forget every cached VM. */
void metadata_invalidate(struct metadata_server *s);
/* Descriptors to poll (up to max) for all listeners. */
size_t metadata_fds(struct metadata_server *s, int *fds, size_t max);
long long metadata_timeout_ms(struct metadata_server *s);
void metadata_run(struct metadata_server *s);

#endif
