/*
 * handlers — every endpoint's handler, by the file that holds it.  Only
 * the route table (routes.c) and the handlers' own files include this;
 * docs/API.md describes each row of the table.
 */
#ifndef HC_API_HANDLERS_H
#define HC_API_HANDLERS_H

#include "api/req.h"
#include "common/rate.h"

/* images.c */
int h_image_list(struct req *r);
int h_image_create(struct req *r);
int h_image_get(struct req *r);
int h_image_delete(struct req *r);
int h_image_upload(struct req *r);
int h_image_upload_begin(struct req *r);
int h_image_upload_chunk(struct req *r, const char *data, size_t len);
int h_image_finalize(struct req *r);

/* vmnet.c */
/* The VM named by the path's first parameter, in the caller's scope;
 * false with a 404 (or other error) response set. */
bool api_vm_of_path(struct req *r, struct vm *vm);
/* A NIC named by its MAC or its tap name. */
bool nic_of_param(const char *s, uint64_t *nic);
int h_vm_nic_add(struct req *r);
int h_vm_nic_remove(struct req *r);
int h_vm_rule_list(struct req *r);
int h_vm_rule_add(struct req *r);
int h_vm_rule_delete(struct req *r);

/* usage.c: bandwidth limits, traffic counters, quotas, usage (issue 13) */
int h_vm_stats(struct req *r);
int h_vm_nic_update(struct req *r);
int h_vm_traffic_update(struct req *r);
int h_net_update(struct req *r);
int h_user_traffic_get(struct req *r);
int h_user_traffic_update(struct req *r);
int h_usage(struct req *r);
/* What routes.c's creates take: a "networks" element (a name, or
 * {"network", "limit"}) → its network's name, or NULL when malformed;
 * the NICs' limits ("limit" for all, each element's own) into *out (NULL:
 * none; free it); false with an error set (400, or 403 over the caller's
 * rate cap). */
const char *api_nic_network(json_t *v);
bool api_nic_limits(struct req *r, json_t *networks, size_t n, struct nic_limit **out);
/* The body's "limit" member (a network's default, a new NIC's own) into
 * *out; *given false when absent or null; false with an error set (400,
 * or 403 over the rate cap of owner, who will own what it limits). */
bool api_body_limit(struct req *r, uint64_t owner, struct nic_limit *out, bool *given);
/* A network's "limit" (its NICs' default) added to its JSON (returned) /
 * to a list's. */
json_t *api_net_json_limit(struct store *st, json_t *obj, uint64_t network);
void api_nets_json_limits(struct store *st, json_t *arr);
/* prefixes.c: routed IPv6 prefixes and public IPv4 addresses (issue 13) */
int h_vm_prefix_list(struct req *r);
int h_vm_prefix_add(struct req *r);
int h_vm_prefix_remove(struct req *r);
int h_ip_list(struct req *r);
int h_vm_ip_attach(struct req *r);
int h_vm_ip_detach(struct req *r);

/* snapshots.c: disk snapshots of VMs (issue 14 §2) */
int h_vm_snapshot_list(struct req *r);
int h_vm_snapshot_create(struct req *r);
int h_vm_snapshot_get(struct req *r);
int h_vm_snapshot_restore(struct req *r);
int h_vm_snapshot_delete(struct req *r);

/* capture.c: an image from a stopped VM's root disk (issue 14 §2), for
 * POST /v1/images {"name", "from_vm", "visibility"?} */
int h_image_capture(struct req *r, const char *name, const char *from_vm, const char *visibility);

/* keys.c */
int h_key_list(struct req *r);
int h_key_create(struct req *r);
int h_key_get(struct req *r);
int h_key_delete(struct req *r);
int h_vm_user_data(struct req *r);

/* login.c: logging in and out */
int h_login(struct req *r);
int h_logout(struct req *r);

/* accounts.c: users, their credentials and tokens */
int h_whoami(struct req *r);
int h_token_list(struct req *r);
int h_token_delete(struct req *r);
int h_user_list(struct req *r);
int h_user_create(struct req *r);
int h_user_get(struct req *r);
int h_user_update(struct req *r);
int h_user_delete(struct req *r);
int h_user_password(struct req *r);
int h_user_otp_enable(struct req *r);
int h_user_otp_disable(struct req *r);
int h_auth_backoff(struct req *r);

/* quotas.c: a user's quotas and usage */
/* The user of the path as the caller may see it: members only themselves
 * (anyone else does not exist for them); else false, a 404 set. */
bool user_of_path(struct req *r, struct user *u);
int h_user_quota_get(struct req *r);
int h_user_quota_set(struct req *r);

/* hosts.c */
int h_host_list(struct req *r);
int h_host_get(struct req *r);
int h_host_drain(struct req *r);

/* migrate.c: live migration (issue 14 §1) */
int h_vm_migrate(struct req *r);
int h_vm_migration(struct req *r);
json_t *migration_to_json(const struct migration *m, const char *vm_name);

/* metrics.c, events.c, audit.c (issue 15) */
int h_metrics(struct req *r);
int h_events(struct req *r);
int h_audit_list(struct req *r);

/* console.c */
int h_vm_console(struct req *r);
int h_vm_console_ws(struct req *r);

/* web.c: the dashboard's files */
int h_web_index(struct req *r);
int h_web_file(struct req *r);

/* openapi.c: the API's own description */
int h_openapi(struct req *r);

/* routes.c: helpers of VM handlers elsewhere */
/* The VM runs (or would run) on this host; else a 409 naming its host is
 * set: its serial log, console and QMP socket are that host's. */
bool api_vm_here(struct req *r, const struct vm *vm);

#endif
