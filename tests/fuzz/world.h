/*
 * world — the hackcloud that the request-level harnesses (fuzz_routes,
 * fuzz_http) run against: a real SQLite store, passwd file, host key,
 * agent and cluster membership in the harness's scratch directory.
 *
 * world_init builds a template once: users alice (member), bob (admin),
 * carol (member with OTP), dave (disabled), erin (LDAP, which is not
 * reachable); bearer tokens of alice, bob and carol; images tiny (alice's
 * kernel image, ready), deb (bob's public disk, ready), up and upk (alice's,
 * uploading), imp (alice's, importing); networks office (alice's, IPv6 and
 * IPv4) and lab (bob's); keys laptop (alice) and ops (bob); VMs web
 * (alice's, running here, with a serial log), db (bob's) and far (alice's,
 * on the host "other"); a rule on web.  Members' networks come from the
 * pools 2001:db8:100::/48 and 10.100.0.0/16, routed prefixes from
 * 2001:db8:200::/44, public IPv4 from 198.51.100.0/29 (a member may take
 * one), and members hold at most 4 VMs by default.  The dashboard's root holds
 * index.html and ui/app.js (and secret.html, which no URL reaches).  Every input starts from exactly
 * that state: world_begin restores the files and opens the store;
 * world_end checks the store and closes everything.
 */
#ifndef HC_FUZZ_WORLD_H
#define HC_FUZZ_WORLD_H

#include "api/api.h"

#define WORLD_HOST "fuzzhost"

/* hcd's configuration for the world (state_dir is the scratch directory). */
extern struct config world_cfg;

void world_init(const char *harness);
/* Fill api's store, agent, cluster and auth (api->auth must be NULL). */
void world_begin(struct api_ctx *api);
/* The store passes SQLite's integrity and foreign key checks; then
 * everything world_begin made is freed and api's fields are NULL again. */
void world_end(struct api_ctx *api);
/* The bearer token of a template user, or NULL. */
const char *world_token(const char *user);

#endif
