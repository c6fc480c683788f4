/* routes — see routes.h. */
#include "net/routes.h"

#include "common/fsutil.h"
#include "net/link.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <stdlib.h>
#include <string.h>

/* ---- what is wanted (pure) -------------------------------------------------- */

static int cmp_nic_ptr(const void *a, const void *b)
{
	const struct ns_nic *x = *(const struct ns_nic *const *)a, *y = *(const struct ns_nic *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

/* The active NICs, sorted by ID (NULL when out of memory). */
static const struct ns_nic **active_nics(const struct netstate *ns, size_t *n)
{
	const struct ns_nic **v = calloc(ns->n_nics + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v != NULL && i < ns->n_nics; i++)
		if (ns->nics[i].active)
			v[(*n)++] = &ns->nics[i];
	if (v != NULL)
		sort_array(v, *n, sizeof(*v), cmp_nic_ptr);
	return v;
}

static const struct ns_nic *nic_find(const struct ns_nic **v, size_t n, uint64_t id)
{
	struct ns_nic key = { .id = id };
	const struct ns_nic *k = &key, **p = search_array(&k, v, n, sizeof(*v), cmp_nic_ptr);
	return p ? *p : NULL;
}

static const struct ns_net *net_of(const struct netstate *ns, uint64_t id)
{
	for (size_t i = 0; i < ns->n_nets; i++)
		if (ns->nets[i].id == id)
			return &ns->nets[i];
	return NULL;
}

static int cmp_route6(const void *a, const void *b)
{
	const struct route6 *x = a, *y = b;
	int c = memcmp(&x->dst, &y->dst, sizeof(x->dst));
	return c != 0 ? c : (int)x->len - (int)y->len;
}

int routes_wanted(const struct netstate *ns, struct route6 **out, size_t *n)
{
	struct route6 *v = calloc(ns->n_prefixes + 1, sizeof(*v));
	size_t k = 0, n_act = 0;
	const struct ns_nic **act = active_nics(ns, &n_act);

	*out = NULL;
	*n = 0;
	if (v == NULL || act == NULL) {
		free(v);
		free(act);
		return -1;
	}
	for (size_t i = 0; i < ns->n_prefixes; i++) {
		const struct ns_prefix *p = &ns->prefixes[i];
		const struct ns_nic *c = nic_find(act, n_act, p->nic_id);
		const struct ns_net *net = c ? net_of(ns, c->net_id) : NULL;
		if (net == NULL || p->len < 1 || p->len > 128)
			continue;
		v[k] = (struct route6){ .dst = p->addr, .len = p->len, .via = c->ip6 };
		memcpy(v[k].dev, net->bridge, sizeof(v[k].dev));
		k++;
	}
	free(act);
	sort_array(v, k, sizeof(*v), cmp_route6);
	/* One route per destination (the store never hands one out twice). */
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || cmp_route6(&v[u - 1], &v[i]) != 0)
			v[u++] = v[i];
	*out = v;
	*n = u;
	return 0;
}

static int cmp_nat_map(const void *a, const void *b)
{
	const struct nat_map *x = a, *y = b;
	return (x->pub > y->pub) - (x->pub < y->pub);
}

struct pub_nic {
	const struct ns_nic *nic;
	uint32_t pub;
};

static int cmp_pub_nic(const void *a, const void *b)
{
	const struct pub_nic *x = a, *y = b;
	if (x->nic->id != y->nic->id)
		return (x->nic->id > y->nic->id) - (x->nic->id < y->nic->id);
	return (x->pub > y->pub) - (x->pub < y->pub);
}

int public4_wanted(const struct netstate *ns, struct nat_map **out, size_t *n)
{
	struct nat_map *v = calloc(ns->n_public4 + 1, sizeof(*v));
	struct pub_nic *pn = calloc(ns->n_public4 + 1, sizeof(*pn));
	size_t k = 0, m = 0, n_act = 0;
	const struct ns_nic **act = active_nics(ns, &n_act);
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (v == NULL || pn == NULL || act == NULL)
		goto out;
	for (size_t i = 0; ns->uplink != NULL && i < ns->n_public4; i++) {
		const struct ns_nic *c = nic_find(act, n_act, ns->public4[i].nic_id);
		if (c != NULL && c->has_ip4)
			pn[m++] = (struct pub_nic){ c, ntohl(ns->public4[i].addr.s_addr) };
	}
	/* In NIC order, so that the lower NIC ID keeps a shared private
	 * address (as in the firewall); addresses are few. */
	sort_array(pn, m, sizeof(*pn), cmp_pub_nic);
	for (size_t i = 0; i < m; i++) {
		uint32_t priv = ntohl(pn[i].nic->ip4.s_addr);
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = v[j].priv == priv || v[j].pub == pn[i].pub;
		if (!dup)
			v[k++] = (struct nat_map){ pn[i].pub, priv };
	}
	sort_array(v, k, sizeof(*v), cmp_nat_map);
	*out = v;
	*n = k;
	v = NULL;
	rc = 0;
out:
	free(v);
	free(pn);
	free(act);
	return rc;
}

/* ---- the kernel ------------------------------------------------------------- */

/* An nl_addr of af from bytes, with a prefix length. */
static struct nl_addr *addr_of(int af, const void *bytes, unsigned len)
{
	struct nl_addr *a = nl_addr_build(af, bytes, af == AF_INET ? 4 : 16);
	if (a != NULL)
		nl_addr_set_prefixlen(a, (int)len);
	return a;
}

static bool same_bytes(struct nl_addr *a, const void *bytes, size_t len)
{
	return a != NULL && nl_addr_get_len(a) == len && memcmp(nl_addr_get_binary_addr(a), bytes, len) == 0;
}

/* An IPv4 nl_addr against a host-order address. */
static bool same_addr4(struct nl_addr *a, uint32_t host)
{
	uint32_t be = htonl(host);
	return same_bytes(a, &be, 4);
}

/* Is the installed route one of the wanted, as wanted (next hop, link)? */
static bool route_is_wanted(struct rtnl_route *r, const struct route6 *want, const int *ifindex, size_t n)
{
	struct nl_addr *dst = rtnl_route_get_dst(r);
	struct rtnl_nexthop *nh = rtnl_route_get_nnexthops(r) == 1 ? rtnl_route_nexthop_n(r, 0) : NULL;

	if (dst == NULL || nh == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (same_bytes(dst, &want[i].dst, 16) && (unsigned)nl_addr_get_prefixlen(dst) == want[i].len)
			return ifindex[i] > 0 && rtnl_route_nh_get_ifindex(nh) == ifindex[i] &&
			       same_bytes(rtnl_route_nh_get_gateway(nh), &want[i].via, 16);
	return false;
}

static int route_add(struct nl_sock *sk, const struct route6 *w, int ifindex, char **err)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *dst = addr_of(AF_INET6, &w->dst, w->len), *via = addr_of(AF_INET6, &w->via, 128);
	char text[INET6_ADDRSTRLEN];
	int nerr = -NLE_NOMEM;

	if (r && nh && dst && via) {
		rtnl_route_set_family(r, AF_INET6);
		rtnl_route_set_table(r, RT_TABLE_MAIN);
		rtnl_route_set_protocol(r, ROUTES_PROTO);
		rtnl_route_set_scope(r, RT_SCOPE_UNIVERSE);
		rtnl_route_set_type(r, RTN_UNICAST);
		rtnl_route_set_dst(r, dst);
		rtnl_route_nh_set_gateway(nh, via);
		rtnl_route_nh_set_ifindex(nh, ifindex);
		rtnl_route_add_nexthop(r, nh);
		nh = NULL;          /* the route owns it now */
		/* Replace: a prefix whose NIC (or network) changed moves. */
		nerr = rtnl_route_add(sk, r, NLM_F_CREATE | NLM_F_REPLACE);
	}
	if (nerr < 0)
		*err = str_printf("route %s/%u: %s", inet_ntop(AF_INET6, &w->dst, text, sizeof(text)), w->len,
				  nl_geterror(nerr));
	if (nh != NULL)
		rtnl_route_nh_free(nh);
	rtnl_route_put(r);
	nl_addr_put(dst);
	nl_addr_put(via);
	return nerr < 0 ? -1 : 0;
}

/* Keep the first error, drop the others (each is logged once by the caller). */
static void keep_err(char **err, char *e)
{
	if (*err == NULL)
		*err = e;
	else
		free(e);
}

int routes_converge(const struct netstate *ns, struct routes_report *rep, char **err)
{
	struct route6 *want = NULL;
	size_t n = 0;
	int *ifindex = NULL;
	bool *have = NULL;
	struct nl_sock *sk = NULL;
	struct nl_cache *routes = NULL, *links = NULL;
	int nerr, rc = -1;

	*err = NULL;
	memset(rep, 0, sizeof(*rep));
	if (routes_wanted(ns, &want, &n) < 0 || (ifindex = calloc(n + 1, sizeof(*ifindex))) == NULL ||
	    (have = calloc(n + 1, sizeof(*have))) == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	rep->wanted = n;
	if ((sk = link_nl_open(err)) == NULL)
		goto out;
	if ((nerr = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0 ||
	    (nerr = rtnl_route_alloc_cache(sk, AF_INET6, 0, &routes)) < 0) {
		*err = str_printf("netlink: %s", nl_geterror(nerr));
		goto out;
	}
	/* A bridge that is not there yet: its routes wait for a later pass. */
	for (size_t i = 0; i < n; i++)
		ifindex[i] = rtnl_link_name2i(links, want[i].dev);
	for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		if (rtnl_route_get_protocol(r) != ROUTES_PROTO || rtnl_route_get_table(r) != RT_TABLE_MAIN)
			continue;
		if (route_is_wanted(r, want, ifindex, n)) {
			struct nl_addr *dst = rtnl_route_get_dst(r);
			for (size_t i = 0; i < n; i++)
				if (same_bytes(dst, &want[i].dst, 16))
					have[i] = true;
			continue;
		}
		/* A stray: its VM stopped, moved or went; or a changed next hop
		 * (replaced below anyway). */
		if ((nerr = rtnl_route_delete(sk, r, 0)) < 0 && nerr != -NLE_OBJ_NOTFOUND)
			keep_err(err, str_printf("removing a route: %s", nl_geterror(nerr)));
		else
			rep->removed++;
	}
	for (size_t i = 0; i < n; i++) {
		char *e = NULL;
		if (have[i] || ifindex[i] <= 0)
			continue;
		if (route_add(sk, &want[i], ifindex[i], &e) < 0)
			keep_err(err, e);
		else
			rep->added++;
	}
	rc = *err == NULL ? 0 : -1;
out:
	nl_cache_free(routes);
	nl_cache_free(links);
	nl_socket_free(sk);
	free(have);
	free(ifindex);
	free(want);
	return rc;
}

/* An address of ours: a /32 of scope host inside the pool. */
static bool addr_is_ours(struct rtnl_addr *a, const struct pool4 *pool)
{
	struct nl_addr *local = rtnl_addr_get_local(a);
	uint32_t v;

	if (rtnl_addr_get_family(a) != AF_INET || local == NULL || nl_addr_get_len(local) != 4 ||
	    rtnl_addr_get_prefixlen(a) != 32 || rtnl_addr_get_scope(a) != RT_SCOPE_HOST)
		return false;
	memcpy(&v, nl_addr_get_binary_addr(local), 4);
	return pool4_has(pool, ntohl(v));
}

/* FNV-1a over the mapping: what the last conntrack sweep was for. */
static uint64_t digest_of(const struct nat_map *v, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const unsigned char *p = (const unsigned char *)v;

	for (size_t i = 0; i < n * sizeof(*v); i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ n;
}

int public4_converge(const struct netstate *ns, const struct pool4 *pool, struct public4_memory *mem,
		     struct routes_report *rep, char **err)
{
	struct nat_map *want = NULL;
	size_t n = 0;
	bool *have = NULL;
	struct nl_sock *sk = NULL;
	struct nl_cache *addrs = NULL, *links = NULL;
	int nerr, uplink = 0, rc = -1;

	*err = NULL;
	memset(rep, 0, sizeof(*rep));
	if (public4_wanted(ns, &want, &n) < 0 || (have = calloc(n + 1, sizeof(*have))) == NULL) {
		*err = strdup("out of memory");
		goto out;
	}
	rep->wanted = n;
	if ((sk = link_nl_open(err)) == NULL)
		goto out;
	if ((nerr = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0 ||
	    (nerr = rtnl_addr_alloc_cache(sk, &addrs)) < 0) {
		*err = str_printf("netlink: %s", nl_geterror(nerr));
		goto out;
	}
	if (ns->uplink != NULL)
		uplink = rtnl_link_name2i(links, ns->uplink);
	/* Ours on any link: an uplink renamed or changed leaves none behind. */
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		bool wanted = false;
		if (!addr_is_ours(a, pool))
			continue;
		for (size_t i = 0; uplink > 0 && i < n && !wanted; i++)
			if (rtnl_addr_get_ifindex(a) == uplink && same_addr4(rtnl_addr_get_local(a), want[i].pub))
				wanted = have[i] = true;
		if (wanted)
			continue;
		if ((nerr = rtnl_addr_delete(sk, a, 0)) < 0 && nerr != -NLE_NOADDR)
			keep_err(err, str_printf("removing an address: %s", nl_geterror(nerr)));
		else
			rep->removed++;
	}
	if (n > 0 && uplink <= 0)
		keep_err(err, str_printf("uplink %s: no such link", ns->uplink));
	for (size_t i = 0; uplink > 0 && i < n; i++) {
		char text[INET_ADDRSTRLEN];
		if (have[i])
			continue;
		struct rtnl_addr *a = rtnl_addr_alloc();
		struct in_addr pub = { htonl(want[i].pub) };
		struct nl_addr *local = addr_of(AF_INET, &pub, 32);
		nerr = -NLE_NOMEM;
		if (a != NULL && local != NULL) {
			rtnl_addr_set_ifindex(a, uplink);
			rtnl_addr_set_local(a, local);
			/* Host scope: the host answers ARP for it (a local address)
			 * but never picks it as the source of its own traffic. */
			rtnl_addr_set_scope(a, RT_SCOPE_HOST);
			nerr = rtnl_addr_add(sk, a, 0);
		}
		if (nerr < 0 && nerr != -NLE_EXIST)
			keep_err(err, str_printf("address %s on %s: %s",
						 inet_ntop(AF_INET, &pub, text, sizeof(text)), ns->uplink,
						 nl_geterror(nerr)));
		else
			rep->added++;
		rtnl_addr_put(a);
		nl_addr_put(local);
	}
	/* Flows of a mapping that is gone (or of hcd before a crash): their
	 * conntrack entries would go on translating. */
	uint64_t digest = digest_of(want, n);
	if (!mem->swept || mem->digest != digest) {
		char *e = NULL;
		if (conntrack_forget(pool, want, n, &rep->forgotten, &e) < 0) {
			keep_err(err, e);
		} else {
			mem->swept = true;
			mem->digest = digest;
		}
	}
	rc = *err == NULL ? 0 : -1;
out:
	nl_cache_free(addrs);
	nl_cache_free(links);
	nl_socket_free(sk);
	free(have);
	free(want);
	return rc;
}
