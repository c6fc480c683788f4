/*
 * prefixes — routed IPv6 prefixes and public IPv4 addresses of NICs in
 * the store (issue 13 §3, §4); see store.h.
 *
 * Both are handed out in the transaction that reads what is taken, so two
 * API calls (on any host: transactions never run at once) never get the
 * same prefix or address.  A prefix never overlaps another one nor a
 * network's /64: the allocator (common/addrpool.h) steps around both.
 * Both rows go with their NIC (ON DELETE CASCADE): unplugging a NIC or
 * purging a VM frees them.
 */
#include "store/store_internal.h"

#include "common/addrpool.h"
#include "common/fsutil.h"
#include "common/netpool.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vm_prefixes_free(struct vm_prefix *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].prefix);
	free(v);
}

void public4s_free(struct public4 *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].address);
		free(v[i].vm_name);
		free(v[i].private_ipv4);
	}
	free(v);
}

struct nic_row {
	bool found;
	char *ipv4;
};

static int nic_row(void *arg, const struct sval *c, int ncols)
{
	struct nic_row *r = arg;
	r->found = true;
	r->ipv4 = sv_strdup(&c[0]);
	return 1;
}

/* The NIC belongs to the VM, which is not deleted; its IPv4 address into
 * *ipv4 (malloc'd, NULL when it has none) when ipv4 is not NULL. */
static int nic_of_vm(struct store *st, uint64_t vm, uint64_t nic, char **ipv4)
{
	struct sval p[] = { SV_I(nic), SV_I(vm) };
	struct nic_row r = { 0 };
	int rc = store_q(st, "SELECT n.ipv4 FROM nics n JOIN vms x ON x.id = n.vm"
			 " WHERE n.id = ? AND n.vm = ? AND x.desired <> 'deleted'", p, 2, nic_row, &r);

	if (rc == STORE_OK && !r.found)
		rc = STORE_NOTFOUND;
	if (rc == STORE_OK && ipv4 != NULL)
		*ipv4 = r.ipv4;
	else
		free(r.ipv4);
	return rc;
}

/* The owner of the VM has fewer than limit rows in table (one of ours)
 * over all its VMs; STORE_CONFLICT when not.  limit 0: no cap. */
static int owner_below(struct store *st, const char *table, uint64_t vm, int limit)
{
	char sql[160];
	int64_t count = 0;
	int rc;

	if (limit <= 0)
		return STORE_OK;
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s t JOIN vms x ON x.id = t.vm"
		 " WHERE x.owner = (SELECT owner FROM vms WHERE id = ?)", table);
	rc = store_q(st, sql, &SV_I(vm), 1, store_row_int, &count);
	return rc == STORE_OK && count >= limit ? STORE_CONFLICT : rc;
}

/* ---- prefixes ------------------------------------------------------------ */

static void fill_prefix(void *e, const struct sval *c)
{
	struct vm_prefix *p = e;
	p->prefix = str_printf("%s/%lld", c[0].s ? c[0].s : "", (long long)c[1].i);
	p->nic = (uint64_t)c[2].i;
	p->vm = (uint64_t)c[3].i;
	p->created = c[4].i;
}

#define PREFIX_COLS "address, len, nic, vm, created FROM prefixes"

/* What a new prefix must not overlap: every prefix, every network. */
struct taken6 {
	struct prefix *v;
	size_t n, cap;
	bool oom;
};

/* A row: a prefix's address and length, or a network's "addr/len". */
static int taken6_row(void *arg, const struct sval *c, int ncols)
{
	struct taken6 *t = arg;
	char text[INET6_ADDRSTRLEN + 8];
	struct prefix p;

	if (c[0].t != SV_TEXT || c[0].s == NULL)
		return 0;
	if (ncols > 1)
		snprintf(text, sizeof(text), "%s/%lld", c[0].s, (long long)c[1].i);
	else
		snprintf(text, sizeof(text), "%s", c[0].s);
	if (!prefix_from_text(text, &p))
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct prefix *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL) {
			t->oom = true;
			return 1;
		}
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = p;
	return 0;
}

int store_prefix_add(struct store *st, const struct prefix *pools, size_t n_pools, uint64_t vm, uint64_t nic,
		     unsigned len, int per_vm, int per_owner, struct vm_prefix *out)
{
	struct taken6 t = { 0 };
	struct prefix *fit = calloc(n_pools + 1, sizeof(*fit)), got;
	size_t n_fit = 0;
	char text[64];
	int64_t count = 0;
	int rc = fit ? store_tx_begin(st) : STORE_ERR;

	memset(out, 0, sizeof(*out));
	/* netpool hands out the pool's own length when it is longer than
	 * asked: a prefix is never larger than its pool, so those are left out. */
	for (size_t i = 0; fit && i < n_pools; i++)
		if (pools[i].family == AF_INET6 && pools[i].len <= len)
			fit[n_fit++] = pools[i];
	if (rc == STORE_OK)
		rc = nic_of_vm(st, vm, nic, NULL);
	if (rc == STORE_OK && per_vm > 0) {
		rc = store_q(st, "SELECT COUNT(*) FROM prefixes WHERE vm = ?", &SV_I(vm), 1, store_row_int, &count);
		if (rc == STORE_OK && count >= per_vm)
			rc = STORE_CONFLICT;
	}
	if (rc == STORE_OK)
		rc = owner_below(st, "prefixes", vm, per_owner);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT address, len FROM prefixes", NULL, 0, taken6_row, &t);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT ipv6 FROM networks", NULL, 0, taken6_row, &t);
	if (rc == STORE_OK && t.oom)
		rc = STORE_ERR;
	if (rc == STORE_OK && !prefix_allocate(fit, n_fit, len, t.v, t.n, &got))
		rc = STORE_FULL;
	if (rc == STORE_OK) {
		prefix_text(&got, text, sizeof(text));
		out->prefix = strdup(text);
		out->vm = vm;
		out->nic = nic;
		out->created = store_now();
		*strchr(text, '/') = '\0';       /* kept by its address */
		const char *addr = text;
		struct sval p[] = { SV_S(addr), SV_I(len), SV_I(nic), SV_I(vm), SV_I(out->created) };
		rc = out->prefix ? store_w(st, "INSERT INTO prefixes (address, len, nic, vm, created)"
					   " VALUES (?, ?, ?, ?, ?)", p, 5) : STORE_ERR;
		store_event_vm(st, vm, "updated");
	}
	free(t.v);
	free(fit);
	rc = store_tx_end(st, rc);
	if (rc != STORE_OK) {
		free(out->prefix);
		out->prefix = NULL;
	}
	return rc;
}

int store_prefix_list(struct store *st, uint64_t vm, struct vm_prefix **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct vm_prefix), .fill = fill_prefix };
	struct sval p[] = { SV_I(vm), SV_I(vm) };
	/* Sorted by address in the caller's sense: the text sorts well enough
	 * for a listing; routes and rules do not depend on this order. */
	int rc = store_q(st, "SELECT " PREFIX_COLS " WHERE (? = 0 OR vm = ?) ORDER BY vm, address", p, 2,
			 rows_add, &r);

	if (rc != STORE_OK) {
		vm_prefixes_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

/* Delete the row of table (one of ours) with this address and VM;
 * STORE_NOTFOUND when there is none. */
static int owned_delete(struct store *st, const char *table, uint64_t vm, const char *address)
{
	struct sval p[] = { SV_S(address), SV_I(vm) };
	char sql[96];
	int64_t count = 0;
	int rc = store_tx_begin(st);

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE address = ? AND vm = ?", table);
	if (rc == STORE_OK)
		rc = store_q(st, sql, p, 2, store_row_int, &count);
	if (rc == STORE_OK && count == 0)
		rc = STORE_NOTFOUND;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE address = ? AND vm = ?", table);
	if (rc == STORE_OK)
		rc = store_w(st, sql, p, 2);
	store_event_vm(st, vm, "updated");
	return store_tx_end(st, rc);
}

int store_prefix_remove(struct store *st, uint64_t vm, const char *address)
{
	return owned_delete(st, "prefixes", vm, address);
}

/* ---- public IPv4 --------------------------------------------------------- */

static void fill_public4(void *e, const struct sval *c)
{
	struct public4 *p = e;
	p->address = sv_strdup(&c[0]);
	p->vm = (uint64_t)c[1].i;
	p->vm_name = sv_strdup(&c[2]);
	p->owner = (uint64_t)c[3].i;
	p->nic = (uint64_t)c[4].i;
	p->private_ipv4 = sv_strdup(&c[5]);
	p->created = c[6].i;
}

#define PUBLIC4_COLS "a.address, a.vm, x.name, x.owner, a.nic, n.ipv4, a.created FROM public_ipv4 a" \
	" JOIN vms x ON x.id = a.vm JOIN nics n ON n.id = a.nic"

struct taken4 {
	uint32_t *v;
	size_t n, cap;
	bool oom;
};

static int taken4_row(void *arg, const struct sval *c, int ncols)
{
	struct taken4 *t = arg;
	struct in_addr a;

	if (c[0].t != SV_TEXT || c[0].s == NULL || inet_pton(AF_INET, c[0].s, &a) != 1)
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		uint32_t *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL) {
			t->oom = true;
			return 1;
		}
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = ntohl(a.s_addr);
	return 0;
}

int store_public4_attach(struct store *st, const struct pool4 *pool, uint64_t vm, uint64_t nic,
			 const char *address, int per_owner, struct public4 *out)
{
	struct taken4 t = { 0 };
	char text[INET_ADDRSTRLEN], *ipv4 = NULL;
	int64_t count = 0;
	int rc = store_tx_begin(st);

	memset(out, 0, sizeof(*out));
	if (rc == STORE_OK)
		rc = nic_of_vm(st, vm, nic, &ipv4);
	if (rc == STORE_OK && ipv4 == NULL)
		rc = STORE_NOTFOUND;            /* no IPv4 address to map to */
	if (rc == STORE_OK) {
		rc = store_q(st, "SELECT COUNT(*) FROM public_ipv4 WHERE nic = ?", &SV_I(nic), 1, store_row_int,
			     &count);
		if (rc == STORE_OK && count > 0)
			rc = STORE_CONFLICT;
	}
	if (rc == STORE_OK)
		rc = owner_below(st, "public_ipv4", vm, per_owner);
	if (rc == STORE_OK && address == NULL) {
		uint32_t a;
		rc = store_q(st, "SELECT address FROM public_ipv4", NULL, 0, taken4_row, &t);
		if (rc == STORE_OK && t.oom)
			rc = STORE_ERR;
		if (rc == STORE_OK && !pool4_alloc(pool, t.v, t.n, &a))
			rc = STORE_FULL;
		if (rc == STORE_OK) {
			inet_ntop(AF_INET, &(struct in_addr){ htonl(a) }, text, sizeof(text));
			address = text;
		}
	}
	if (rc == STORE_OK) {
		count = 0;
		rc = store_q(st, "SELECT COUNT(*) FROM public_ipv4 WHERE address = ?", &SV_S(address), 1,
			     store_row_int, &count);
		if (rc == STORE_OK && count > 0)
			rc = STORE_CONFLICT;
	}
	if (rc == STORE_OK) {
		out->address = strdup(address);
		out->vm = vm;
		out->nic = nic;
		out->private_ipv4 = ipv4;
		ipv4 = NULL;
		out->created = store_now();
		struct sval p[] = { SV_S(address), SV_I(nic), SV_I(vm), SV_I(out->created) };
		rc = out->address ? store_w(st, "INSERT INTO public_ipv4 (address, nic, vm, created)"
					    " VALUES (?, ?, ?, ?)", p, 4) : STORE_ERR;
		store_event_vm(st, vm, "updated");
	}
	free(ipv4);
	free(t.v);
	rc = store_tx_end(st, rc);
	if (rc != STORE_OK) {
		free(out->address);
		free(out->private_ipv4);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

int store_public4_list(struct store *st, uint64_t scope, struct public4 **out, size_t *n)
{
	struct rows r = { .elem = sizeof(struct public4), .fill = fill_public4 };
	struct sval sp = scope_param(scope);
	struct sval p[] = { sp, sp };
	int rc = store_q(st, "SELECT " PUBLIC4_COLS " WHERE x.desired <> 'deleted'"
			 " AND (? = -1 OR x.owner = ?) ORDER BY a.address", p, 2, rows_add, &r);

	if (rc != STORE_OK) {
		public4s_free(r.v, r.n);
		return rc;
	}
	*out = r.v;
	*n = r.n;
	return STORE_OK;
}

int store_public4_detach(struct store *st, uint64_t vm, const char *address)
{
	return owned_delete(st, "public_ipv4", vm, address);
}

/* ---- on loaded VMs ---------------------------------------------------------- */

struct vm_index {
	uint64_t id;
	size_t at;
};

static int cmp_vm_index(const void *a, const void *b)
{
	const struct vm_index *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

struct routing_load {
	struct vm *vms;
	struct vm_index *idx;
	size_t n;
	bool oom;
};

/* The NIC a row names, among the loaded VMs; NULL when not loaded. */
static struct nic *loaded_nic(struct routing_load *l, uint64_t vm, uint64_t nic)
{
	struct vm_index key = { .id = vm }, *p = search_array(&key, l->idx, l->n, sizeof(*l->idx), cmp_vm_index);

	if (p == NULL)
		return NULL;
	for (size_t i = 0; i < l->vms[p->at].n_nics; i++)
		if (l->vms[p->at].nics[i].id == nic)
			return &l->vms[p->at].nics[i];
	return NULL;
}

/* address, len, nic, vm */
static int prefix_row(void *arg, const struct sval *c, int ncols)
{
	struct routing_load *l = arg;
	struct nic *n = loaded_nic(l, (uint64_t)c[3].i, (uint64_t)c[2].i);
	char **v;

	if (n == NULL)
		return 0;
	if ((v = realloc(n->prefixes, (n->n_prefixes + 1) * sizeof(*v))) == NULL ||
	    (v[n->n_prefixes] = str_printf("%s/%lld", c[0].s ? c[0].s : "", (long long)c[1].i)) == NULL) {
		if (v != NULL)
			n->prefixes = v;
		l->oom = true;
		return 1;
	}
	n->prefixes = v;
	n->n_prefixes++;
	return 0;
}

/* address, nic, vm */
static int public4_row(void *arg, const struct sval *c, int ncols)
{
	struct routing_load *l = arg;
	struct nic *n = loaded_nic(l, (uint64_t)c[2].i, (uint64_t)c[1].i);

	if (n == NULL || n->public_ipv4 != NULL)
		return 0;
	if ((n->public_ipv4 = sv_strdup(&c[0])) == NULL) {
		l->oom = true;
		return 1;
	}
	return 0;
}

int store_vm_routing_load(struct store *st, struct vm *vms, size_t n)
{
	struct routing_load l = { .vms = vms, .n = n };
	int rc;

	if (n == 0)
		return STORE_OK;
	if ((l.idx = calloc(n, sizeof(*l.idx))) == NULL)
		return STORE_ERR;
	for (size_t i = 0; i < n; i++)
		l.idx[i] = (struct vm_index){ vms[i].id, i };
	sort_array(l.idx, n, sizeof(*l.idx), cmp_vm_index);
	/* The rows of the VMs' ID range, matched in memory: two statements
	 * whatever the number of VMs. */
	uint64_t lo = vms[0].id, hi = vms[0].id;
	for (size_t i = 1; i < n; i++) {
		lo = vms[i].id < lo ? vms[i].id : lo;
		hi = vms[i].id > hi ? vms[i].id : hi;
	}
	struct sval p[] = { SV_I(lo), SV_I(hi) };
	rc = store_q(st, "SELECT address, len, nic, vm FROM prefixes WHERE vm BETWEEN ? AND ?"
		     " ORDER BY vm, nic, address", p, 2, prefix_row, &l);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT address, nic, vm FROM public_ipv4 WHERE vm BETWEEN ? AND ?", p, 2,
			     public4_row, &l);
	if (rc == STORE_OK && l.oom)
		rc = STORE_ERR;
	free(l.idx);
	return rc;
}
