/* hostnet — the host's routes and addresses; see hostnet.h. */
#include "net/hostnet.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "net/link.h"

#include <linux/rtnetlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <stdlib.h>
#include <string.h>

struct collect {
	struct nl_cache *links;
	struct prefix *v;
	size_t n, cap;
	bool failed;
};

/* A link hackcloud made (its name parses as one of ours). */
static bool ours(struct collect *c, int ifindex)
{
	char name[IFNAMSIZ + 1];
	enum ifname_kind kind;
	uint64_t id;

	return ifindex > 0 && rtnl_link_i2name(c->links, ifindex, name, sizeof(name)) &&
	       ifname_parse(name, &kind, &id);
}

static void add(struct collect *c, struct nl_addr *a, unsigned len)
{
	int family = a ? nl_addr_get_family(a) : AF_UNSPEC;

	if ((family != AF_INET && family != AF_INET6) ||
	    nl_addr_get_len(a) != (family == AF_INET ? 4u : 16u))
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct prefix *nv = realloc(c->v, cap * sizeof(*nv));
		if (nv == NULL) {
			c->failed = true;
			return;
		}
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = prefix_make(family, nl_addr_get_binary_addr(a), len);
}

static void on_route(struct nl_object *o, void *arg)
{
	struct rtnl_route *r = (struct rtnl_route *)o;
	struct collect *c = arg;
	struct nl_addr *dst = rtnl_route_get_dst(r);
	uint8_t type = rtnl_route_get_type(r);
	struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);

	if (dst == NULL || nl_addr_get_prefixlen(dst) == 0 ||
	    (type != RTN_UNICAST && type != RTN_LOCAL))
		return;
	if (nh && ours(c, rtnl_route_nh_get_ifindex(nh)))
		return;
	add(c, dst, nl_addr_get_prefixlen(dst));
}

static void on_addr(struct nl_object *o, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)o;
	struct collect *c = arg;
	struct nl_addr *local = rtnl_addr_get_local(a);

	if (local == NULL || ours(c, rtnl_addr_get_ifindex(a)))
		return;
	add(c, local, nl_addr_get_family(local) == AF_INET ? 32 : 128);
	add(c, local, (unsigned)rtnl_addr_get_prefixlen(a));
}

int hostnet_prefixes(struct prefix **out, size_t *n, char **err)
{
	struct nl_sock *sk = link_nl_open(err);
	struct nl_cache *routes = NULL, *addrs = NULL;
	struct collect c = { 0 };
	int nerr = 0;

	*out = NULL;
	*n = 0;
	if (sk == NULL)
		return -1;
	if ((nerr = rtnl_link_alloc_cache(sk, AF_UNSPEC, &c.links)) >= 0 &&
	    (nerr = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes)) >= 0 &&
	    (nerr = rtnl_addr_alloc_cache(sk, &addrs)) >= 0) {
		nl_cache_foreach(routes, on_route, &c);
		nl_cache_foreach(addrs, on_addr, &c);
	}
	if (nerr < 0)
		*err = str_printf("netlink: cannot read the host's routes and addresses: %s",
				  nl_geterror(nerr));
	else if (c.failed)
		*err = strdup("out of memory");
	nl_cache_free(addrs);
	nl_cache_free(routes);
	nl_cache_free(c.links);
	nl_socket_free(sk);
	if (nerr < 0 || c.failed) {
		free(c.v);
		return -1;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}
