/* bridge — bridges, their gateway addresses, link removal and listing; see link.h. */
#include "net/link.h"

#include "common/fsutil.h"
#include "common/ids.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <stdlib.h>
#include <string.h>

struct nl_sock *link_nl_open(char **err)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (sk == NULL || nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		*err = strdup("netlink: cannot connect");
		return NULL;
	}
	return sk;
}

/* Add "addr/len" to the link; an address that is already there is fine. */
static int addr_ensure(struct nl_sock *sk, int ifindex, const char *text, char **err)
{
	struct nl_addr *local = NULL;
	struct rtnl_addr *a = NULL;
	int nerr, rc = -1;

	if ((nerr = nl_addr_parse(text, AF_UNSPEC, &local)) < 0) {
		*err = str_printf("address %s: %s", text, nl_geterror(nerr));
		return -1;
	}
	a = rtnl_addr_alloc();
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_local(a, local);
	/* The gateway address is ours by construction: skip duplicate address
	 * detection, which would keep it tentative (and dnsmasq deaf on it)
	 * until a port with carrier joins the bridge. */
	if (nl_addr_get_family(local) == AF_INET6)
		rtnl_addr_set_flags(a, IFA_F_NODAD);
	nerr = rtnl_addr_add(sk, a, 0);
	if (nerr < 0 && nerr != -NLE_EXIST)
		*err = str_printf("address %s: %s", text, nl_geterror(nerr));
	else
		rc = 0;
	rtnl_addr_put(a);
	nl_addr_put(local);
	return rc;
}

/* "2001:db8::/64" → "2001:db8::1/64"; "10.0.0.0/24" → "10.0.0.1/24". */
static char *gateway_of(const char *prefix, int family)
{
	unsigned char buf[16];
	char addr[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN];
	const char *slash = strchr(prefix, '/');

	if (slash == NULL || (size_t)(slash - prefix) >= sizeof(addr))
		return NULL;
	memcpy(addr, prefix, (size_t)(slash - prefix));
	addr[slash - prefix] = '\0';
	if (inet_pton(family, addr, buf) != 1)
		return NULL;
	buf[family == AF_INET6 ? 15 : 3] |= 1;
	inet_ntop(family, buf, out, sizeof(out));
	return str_printf("%s%s", out, slash);
}

int bridge_ensure(const char *ifname, const char *ipv6_prefix, const char *ipv4_cidr, char **err)
{
	struct nl_sock *sk = link_nl_open(err);
	struct rtnl_link *br = NULL, *change = NULL;
	int nerr, rc = -1;

	*err = NULL;
	if (sk == NULL)
		return -1;
	if (rtnl_link_get_kernel(sk, 0, ifname, &br) < 0) {
		if ((nerr = rtnl_link_bridge_add(sk, ifname)) < 0 && nerr != -NLE_EXIST) {
			*err = str_printf("bridge %s: %s", ifname, nl_geterror(nerr));
			goto out;
		}
		if ((nerr = rtnl_link_get_kernel(sk, 0, ifname, &br)) < 0) {
			*err = str_printf("bridge %s: %s", ifname, nl_geterror(nerr));
			goto out;
		}
	}
	char mac_text[18];
	struct nl_addr *mac = NULL, *have = rtnl_link_get_addr(br);
	/* b + 6 hex → 02:01:00:xx:xx:xx */
	snprintf(mac_text, sizeof(mac_text), "02:01:00:%.2s:%.2s:%.2s", ifname + 1, ifname + 3,
		 ifname + 5);
	if (strlen(ifname) != 7 || nl_addr_parse(mac_text, AF_LLC, &mac) < 0) {
		*err = str_printf("bridge %s: not a bridge name of ours", ifname);
		goto out;
	}
	bool mac_ok = have && nl_addr_cmp(have, mac) == 0;
	if (!(rtnl_link_get_flags(br) & IFF_UP) || !mac_ok) {
		change = rtnl_link_alloc();
		rtnl_link_set_flags(change, IFF_UP);
		if (!mac_ok)
			rtnl_link_set_addr(change, mac);
		nerr = rtnl_link_change(sk, br, change, 0);
		if (nerr < 0) {
			*err = str_printf("bridge %s up: %s", ifname, nl_geterror(nerr));
			nl_addr_put(mac);
			goto out;
		}
	}
	nl_addr_put(mac);
	/* The metadata service's link-local IPv6 address, on every bridge
	 * (scoped, so one per link is no conflict). */
	if (addr_ensure(sk, rtnl_link_get_ifindex(br), "fe80::a9fe:a9fe/64", err) < 0)
		goto out;
	const char *prefixes[2] = { ipv6_prefix, ipv4_cidr };
	const int families[2] = { AF_INET6, AF_INET };
	for (int i = 0; i < 2; i++) {
		if (prefixes[i] == NULL)
			continue;
		char *gw = gateway_of(prefixes[i], families[i]);
		int r = gw ? addr_ensure(sk, rtnl_link_get_ifindex(br), gw, err) : -1;
		if (gw == NULL)
			*err = str_printf("bad prefix %s", prefixes[i]);
		free(gw);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	rtnl_link_put(change);
	rtnl_link_put(br);
	nl_socket_free(sk);
	return rc;
}

int link_remove(const char *ifname, char **err)
{
	struct nl_sock *sk = link_nl_open(err);
	struct rtnl_link *l = NULL;
	int nerr, rc = 0;

	*err = NULL;
	if (sk == NULL)
		return -1;
	if (rtnl_link_get_kernel(sk, 0, ifname, &l) >= 0) {
		nerr = rtnl_link_delete(sk, l);
		if (nerr < 0 && nerr != -NLE_NODEV && nerr != -NLE_OBJ_NOTFOUND) {
			*err = str_printf("remove %s: %s", ifname, nl_geterror(nerr));
			rc = -1;
		}
	}
	rtnl_link_put(l);
	nl_socket_free(sk);
	return rc;
}

int link_list_ours(char kind, char ***names, size_t *n, char **err)
{
	struct nl_sock *sk = link_nl_open(err);
	struct nl_cache *cache = NULL;
	char **v = NULL;
	size_t count = 0;
	int nerr;

	*names = NULL;
	*n = 0;
	if (sk == NULL)
		return -1;
	if ((nerr = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache)) < 0) {
		*err = str_printf("netlink link list: %s", nl_geterror(nerr));
		nl_socket_free(sk);
		return -1;
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		const char *name = rtnl_link_get_name((struct rtnl_link *)o);
		enum ifname_kind k;
		uint64_t id;
		if (!name || !ifname_parse(name, &k, &id) || (char)k != kind)
			continue;
		char **nv = realloc(v, (count + 1) * sizeof(*v));
		if (nv == NULL)
			break;
		v = nv;
		v[count++] = strdup(name);
	}
	nl_cache_free(cache);
	nl_socket_free(sk);
	*names = v;
	*n = count;
	return 0;
}

void link_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int loopback_addr_ensure(const char *cidr, char **err)
{
	struct nl_sock *sk = link_nl_open(err);
	struct rtnl_link *lo = NULL;
	int nerr, rc = -1;

	*err = NULL;
	if (sk == NULL)
		return -1;
	if ((nerr = rtnl_link_get_kernel(sk, 0, "lo", &lo)) < 0)
		*err = str_printf("lo: %s", nl_geterror(nerr));
	else
		rc = addr_ensure(sk, rtnl_link_get_ifindex(lo), cidr, err);
	rtnl_link_put(lo);
	nl_socket_free(sk);
	return rc;
}
