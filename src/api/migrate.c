/*
 * migrate — live migration through the API, for admins (issue 14 §1):
 *
 *   POST /v1/vms/{ref}/migrate     {"host": "H"} (optional): move the
 *                                  running VM to H, or to where the
 *                                  scheduler puts it; 202 with the
 *                                  migration, which the hosts then carry
 *                                  out (agent/migrate.h)
 *   GET  /v1/vms/{ref}/migration   the VM's last migration, as it stands
 *
 * The request is one store transaction (store_migration_request): the
 * destination is live, not draining, not the VM's own host and has room;
 * the stream's key is fresh (vm/migrate.h) and never shown.
 */
#include "api/handlers.h"

#include "api/codec.h"
#include "cluster/cluster.h"
#include "common/ids.h"
#include "common/validate.h"
#include "vm/migrate.h"

#include <sodium.h>
#include <string.h>

static void set_figure(json_t *j, const char *key, int64_t v)
{
	json_object_set_new(j, key, v >= 0 ? json_integer((json_int_t)v) : json_null());
}

json_t *migration_to_json(const struct migration *m, const char *vm_name)
{
	json_t *j = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s?, s:b, s:b, s:I, s:I}",
			      "vm", vm_id_format(m->vm).s, "vm_name", vm_name, "source", m->source,
			      "destination", m->dest, "state", m->state, "error", m->error,
			      "source_done", m->source_done, "destination_done", m->dest_done,
			      "created", (json_int_t)m->created, "updated", (json_int_t)m->updated);

	if (j == NULL)
		return NULL;
	set_figure(j, "total_ms", m->total_ms);
	set_figure(j, "downtime_ms", m->downtime_ms);
	set_figure(j, "ram_bytes", m->ram_bytes);
	set_figure(j, "disk_bytes", m->disk_bytes);
	/* Over when both hosts finished their part (or the VM runs again on
	 * the source after a failure): what `hc vm migrate` waits for. */
	json_object_set_new(j, "finished", json_boolean(migration_final(m) && m->source_done &&
						       (m->dest_done || strcmp(m->state, "failed") == 0)));
	return j;
}

int h_vm_migrate(struct req *r)
{
	static const char *const keys[] = { "host", NULL };
	struct vm vm = { 0 };
	struct migration m = { 0 };
	char psk[MIG_PSK_HEX + 1];
	const char *host = NULL;
	int rc;

	if (!only_keys(r, keys) || !get_str(r, "host", false, &host))
		return 0;
	if (host && !host_name_valid(host))
		return req_error(r, 400, "bad_request", "'host' is not a valid host name");
	if (!api_vm_of_path(r, &vm))
		return 0;
	struct placement pl = { .pin = host };
	cluster_policy(r->api->cluster, &pl);
	mig_psk_new(psk);
	rc = store_migration_request(r->api->st, vm.id, &pl, r->api->cfg->migrate_port_base,
				     r->api->cfg->migrate_port_count, psk, &m);
	sodium_memzero(psk, sizeof(psk));
	if (rc == STORE_OK)
		req_json(r, 202, migration_to_json(&m, vm.name));
	else if (rc == STORE_NOTFOUND && host)
		req_error(r, 404, "not_found", "host '%s' not found", host);
	else if (rc == STORE_CONFLICT)
		req_error(r, 409, "conflict", "%s", store_refusal(r->api->st));
	else if (rc == STORE_FULL && strstr(store_refusal(r->api->st), "port"))
		req_error(r, 409, "no_capacity", "%s", store_refusal(r->api->st));
	else if (rc == STORE_FULL)
		req_error(r, 409, "no_capacity", host ? "host '%s' is not live or has no room for vm '%s'"
			  : "no other live host has room for vm '%s'%s", host ? host : vm.name,
			  host ? vm.name : "");
	else
		req_store_error(r, rc, "vm", r->params[0]);
	migration_free(&m);
	vm_free(&vm);
	return 0;
}

int h_vm_migration(struct req *r)
{
	struct vm vm = { 0 };
	struct migration m = { 0 };
	int rc;

	if (!api_vm_of_path(r, &vm))
		return 0;
	rc = store_migration_get(r->api->st, vm.id, false, &m);
	if (rc == STORE_NOTFOUND)
		req_error(r, 404, "not_found", "vm '%s' has never been migrated", vm.name);
	else if (rc != STORE_OK)
		req_store_error(r, rc, "migration", r->params[0]);
	else
		req_json(r, 200, migration_to_json(&m, vm.name));
	migration_free(&m);
	vm_free(&vm);
	return 0;
}
