/*
 * server — the metadata service (DESIGN §7).
 *
 * It listens on 169.254.169.254:80 (one socket: the address is on every
 * bridge) and on [fe80::a9fe:a9fe]:80 of each bridge.
 * The caller is identified only by the packet: its source address is
 * looked up in the kernel's neighbour table on one of our bridges, the
 * MAC found there names the NIC (02:00:<NIC id>), the NIC its VM.  Nothing
 * the guest sends (Host, X-Forwarded-For, paths) can change whose data it
 * gets; the firewall's anti-spoofing pins each tap to its own MAC and
 * addresses, so the neighbour entry is the guest's own.  Addresses that
 * do not resolve to a NIC hackcloud assigned get 403.  Each VM has a
 * token bucket so one guest cannot starve the others.
 */
#ifndef HC_METADATA_SERVER_H
#define HC_METADATA_SERVER_H

#include "store/store.h"

#define METADATA_IPV4 "169.254.169.254"
#define METADATA_IPV6 "fe80::a9fe:a9fe"

struct metadata_server;

/* port: 80 normally; rate: requests per second per VM (bursts of 3 s
 * worth), 0 = unlimited.  NULL and *err when it cannot listen. */
struct metadata_server *metadata_start(struct store *st, int port, int rate, char **err);
void metadata_stop(struct metadata_server *s);
/* Listen on [fe80::a9fe:a9fe%bridge] of every bridge the store has (and
 * stop for bridges that went); call after each reconcile pass. */
void metadata_sync(struct metadata_server *s);
/* Descriptors to poll (up to max) for all listeners. */
size_t metadata_fds(struct metadata_server *s, int *fds, size_t max);
long long metadata_timeout_ms(struct metadata_server *s);
void metadata_run(struct metadata_server *s);

#endif
