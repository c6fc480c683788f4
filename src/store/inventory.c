/*
 * inventory — the VMs a host runs, lean: what GET /metrics labels and
 * counts (name, owner, state, size, NICs), in two statements whatever
 * their number, instead of the four per VM a full load costs.  VMs
 * without a host (rows from before placement existed) count for every
 * host, as the agents treat them.
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#define HERE " (x.host = ? OR x.host IS NULL) AND x.desired <> 'deleted'"

void inventory_free(struct inv_vm *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].owner_name);
		free(v[i].state);
		free(v[i].desired);
		free(v[i].nics);
	}
	free(v);
}

static void fill_inv(void *e, const struct sval *c)
{
	struct inv_vm *v = e;

	v->id = (uint64_t)c[0].i;
	v->name = sv_strdup(&c[1]);
	v->owner_name = sv_strdup(&c[2]);
	v->state = sv_strdup(&c[3]);
	v->desired = sv_strdup(&c[4]);
	v->cpus = (int)c[5].i;
	v->memory_mib = (int)c[6].i;
}

struct nic_pass {
	struct inv_vm *v;
	size_t n, at;           /* VMs and NICs come sorted by VM: walk both once */
	int rc;
};

static int add_nic(void *arg, const struct sval *c, int ncols)
{
	struct nic_pass *p = arg;
	uint64_t vm = (uint64_t)c[0].i;

	while (p->at < p->n && p->v[p->at].id < vm)
		p->at++;
	if (p->at == p->n || p->v[p->at].id != vm)
		return 0;   /* a VM created between the two statements */
	struct inv_vm *v = &p->v[p->at];
	uint64_t *nn = realloc(v->nics, (v->n_nics + 1) * sizeof(*nn));
	if (nn == NULL) {
		p->rc = STORE_ERR;
		return 1;
	}
	v->nics = nn;
	v->nics[v->n_nics++] = (uint64_t)c[1].i;
	return 0;
}

int store_inventory(struct store *st, const char *host, struct inv_vm **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct inv_vm), .fill = fill_inv };
	int rc;

	*out = NULL;
	*n = 0;
	store_read_begin(st);
	rc = store_q(st, "SELECT x.id, x.name, u.name, x.state, x.desired, x.cpus, x.memory_mib"
		     " FROM vms x JOIN users u ON u.id = x.owner WHERE" HERE " ORDER BY x.id",
		     &SV_S(host), 1, rows_add, &r);
	struct nic_pass p = { .v = r.v, .n = r.n, .rc = STORE_OK };
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT n.vm, n.id FROM nics n JOIN vms x ON x.id = n.vm WHERE" HERE
			     " ORDER BY n.vm, n.idx", &SV_S(host), 1, add_nic, &p);
	store_read_end(st);
	if (rc == STORE_OK)
		rc = p.rc;
	if (rc != STORE_OK) {
		inventory_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}
