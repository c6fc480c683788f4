/*
 * vxlan — overlay links and their forwarding database; see vxlan.h.
 *
 * Links go through libnl-route (rtnl_link_vxlan_*).  FDB entries are
 * short raw messages, one function building one: libnl's neighbour object
 * derives the message's family from NDA_DST's, while a vxlan FDB entry is
 * family AF_BRIDGE with an IPv4 or IPv6 NDA_DST.  The dump asks for one
 * port's entries, as `bridge fdb show dev X` does (an ifinfomsg header
 * naming the port), so it does not grow with the taps on the host.
 *
 * Kernel semantics the sync relies on (drivers/net/vxlan): the all-zeros
 * MAC holds a list of destinations, extended with NLM_F_APPEND; a unicast
 * MAC holds one, re-pointed in place with NLM_F_REPLACE; a delete names
 * the destination and removes just that one.
 */
#include "net/vxlan.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "net/link.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- generating: pure ------------------------------------------------------ */

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool mac_zero(const uint8_t mac[6])
{
	static const uint8_t zero[6];
	return memcmp(mac, zero, sizeof(zero)) == 0;
}

int vxlan_fdb_cmp(const void *a, const void *b)
{
	const struct ns_fdb *x = a, *y = b;
	int c = memcmp(x->mac, y->mac, sizeof(x->mac));

	if (c != 0)
		return c;
	if (x->family != y->family)
		return x->family - y->family;
	return memcmp(x->dst, y->dst, sizeof(x->dst));
}

/* The entry as compared: no net_id, nothing past the address. */
static struct ns_fdb normalized(const struct ns_fdb *e)
{
	struct ns_fdb n = { .family = e->family };

	memcpy(n.mac, e->mac, sizeof(n.mac));
	memcpy(n.dst, e->dst, addr_len(e->family));
	return n;
}

/* A sorted, duplicate-free copy of v (n + 1 slots, so never malloc(0)). */
static struct ns_fdb *sorted_unique(const struct ns_fdb *v, size_t n, size_t *out_n)
{
	struct ns_fdb *s = malloc((n + 1) * sizeof(*s));
	size_t k = 0;

	*out_n = 0;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = normalized(&v[i]);
	sort_array(s, n, sizeof(*s), vxlan_fdb_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || vxlan_fdb_cmp(&s[k - 1], &s[i]) != 0)
			s[k++] = s[i];
	*out_n = k;
	return s;
}

int vxlan_fdb_want(const struct netstate *ns, uint64_t net_id, int family, struct ns_fdb **out,
		   size_t *n, size_t *skipped)
{
	struct ns_fdb *v, *s;
	size_t count = 0, k = 0, n_s;

	*out = NULL;
	*n = 0;
	*skipped = 0;
	for (size_t i = 0; i < ns->n_fdb; i++)
		count += ns->fdb[i].net_id == net_id;
	if (count == 0)
		return 0;
	if ((v = malloc(count * sizeof(*v))) == NULL)
		return -1;
	for (size_t i = 0; i < ns->n_fdb; i++) {
		if (ns->fdb[i].net_id != net_id)
			continue;
		if (ns->fdb[i].family != family)
			(*skipped)++;
		else
			v[k++] = ns->fdb[i];
	}
	s = sorted_unique(v, k, &n_s);
	free(v);
	if (s == NULL)
		return -1;
	/* Sorted by MAC, then destination: keep the first destination of a
	 * unicast MAC, every one of the flood entry. */
	k = 0;
	for (size_t i = 0; i < n_s; i++)
		if (k == 0 || mac_zero(s[i].mac) || memcmp(s[k - 1].mac, s[i].mac, 6) != 0)
			s[k++] = s[i];
	if (k == 0) {
		free(s);
		s = NULL;
	}
	*out = s;
	*n = k;
	return 0;
}

void vxlan_fdb_diff_free(struct vxlan_fdb_diff *d)
{
	free(d->add);
	free(d->del);
	memset(d, 0, sizeof(*d));
}

int vxlan_fdb_diff(const struct ns_fdb *want, size_t n_want, const struct ns_fdb *cur,
		   size_t n_cur, struct vxlan_fdb_diff *d)
{
	size_t na, nc, i = 0, j = 0;
	struct ns_fdb *a = sorted_unique(want, n_want, &na);
	struct ns_fdb *c = sorted_unique(cur, n_cur, &nc);

	memset(d, 0, sizeof(*d));
	d->add = malloc((na + 1) * sizeof(*d->add));
	d->del = malloc((nc + 1) * sizeof(*d->del));
	if (a == NULL || c == NULL || d->add == NULL || d->del == NULL) {
		free(a);
		free(c);
		vxlan_fdb_diff_free(d);
		return -1;
	}
	/* One merge walk over both sorted lists. */
	while (i < na || j < nc) {
		int order = i == na ? 1 : j == nc ? -1 : vxlan_fdb_cmp(&a[i], &c[j]);
		if (order < 0)
			d->add[d->n_add++] = a[i++];
		else if (order > 0)
			d->del[d->n_del++] = c[j++];
		else
			i++, j++;
	}
	free(a);
	free(c);
	return 0;
}

/* ---- applying: the kernel ---------------------------------------------------- */

static const char *entry_text(const struct ns_fdb *e, char buf[80])
{
	char dst[INET6_ADDRSTRLEN] = "?";

	inet_ntop(e->family, e->dst, dst, sizeof(dst));
	snprintf(buf, 80, "%02x:%02x:%02x:%02x:%02x:%02x dst %s", e->mac[0], e->mac[1], e->mac[2],
		 e->mac[3], e->mac[4], e->mac[5], dst);
	return buf;
}

/* One FDB request for entry e on the vxlan link ifindex (RTM_NEWNEIGH or
 * RTM_DELNEIGH), waiting for the kernel's answer: 0 or a libnl error. */
static int fdb_request(struct nl_sock *sk, int cmd, int flags, int ifindex, const struct ns_fdb *e)
{
	struct ndmsg nd = { .ndm_family = AF_BRIDGE, .ndm_ifindex = ifindex,
			    .ndm_state = NUD_PERMANENT, .ndm_flags = NTF_SELF };
	struct nl_msg *m = nlmsg_alloc_simple(cmd, flags);

	if (m == NULL)
		return -NLE_NOMEM;
	if (nlmsg_append(m, &nd, sizeof(nd), NLMSG_ALIGNTO) < 0 ||
	    nla_put(m, NDA_LLADDR, sizeof(e->mac), e->mac) < 0 ||
	    nla_put(m, NDA_DST, (int)addr_len(e->family), e->dst) < 0) {
		nlmsg_free(m);
		return -NLE_NOMEM;
	}
	return nl_send_sync(sk, m);             /* frees m */
}

/* The entries of one vxlan link, as dumped. */
struct dump {
	int ifindex;
	struct ns_fdb *v;
	size_t n, cap;
	bool oom;
};

static int on_fdb(struct nl_msg *msg, void *arg)
{
	struct dump *d = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[NDA_MAX + 1];
	const struct ndmsg *nd = nlmsg_data(h);
	struct ns_fdb e = { 0 };

	if (h->nlmsg_type != RTM_NEWNEIGH || nlmsg_parse(h, sizeof(*nd), tb, NDA_MAX, NULL) < 0)
		return NL_SKIP;
	/* The bridge's entries for this port (NTF_MASTER: the link's own
	 * MAC, what the bridge learnt behind it) are not the vxlan's. */
	if (nd->ndm_family != AF_BRIDGE || nd->ndm_ifindex != d->ifindex ||
	    (nd->ndm_flags & NTF_MASTER) || tb[NDA_LLADDR] == NULL || tb[NDA_DST] == NULL ||
	    nla_len(tb[NDA_LLADDR]) != (int)sizeof(e.mac))
		return NL_SKIP;
	if (nla_len(tb[NDA_DST]) == 4)
		e.family = AF_INET;
	else if (nla_len(tb[NDA_DST]) == 16)
		e.family = AF_INET6;
	else
		return NL_SKIP;
	memcpy(e.mac, nla_data(tb[NDA_LLADDR]), sizeof(e.mac));
	memcpy(e.dst, nla_data(tb[NDA_DST]), addr_len(e.family));
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		struct ns_fdb *v = realloc(d->v, cap * sizeof(*v));
		if (v == NULL) {
			d->oom = true;
			return NL_SKIP;
		}
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = e;
	return NL_OK;
}

static int fdb_dump(struct nl_sock *sk, const char *ifname, struct dump *d, char **err)
{
	struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = d->ifindex };
	struct nl_cb *base = nl_socket_get_cb(sk);
	struct nl_cb *cb = base ? nl_cb_clone(base) : NULL;
	int nerr = -NLE_NOMEM;

	nl_cb_put(base);
	if (cb != NULL) {
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_fdb, d);
		nerr = nl_send_simple(sk, RTM_GETNEIGH, NLM_F_DUMP, &ifi, sizeof(ifi));
		if (nerr >= 0)
			nerr = nl_recvmsgs(sk, cb);
		nl_cb_put(cb);
	}
	if (nerr >= 0 && d->oom)
		nerr = -NLE_NOMEM;
	if (nerr < 0) {
		*err = str_printf("%s: fdb dump: %s", ifname, nl_geterror(nerr));
		return -1;
	}
	return 0;
}

/* Make the link's FDB exactly want. */
static int fdb_sync(struct nl_sock *sk, const char *ifname, int ifindex, const struct ns_fdb *want,
		    size_t n_want, struct vxlan_report *r, char **err)
{
	struct dump cur = { .ifindex = ifindex };
	struct vxlan_fdb_diff d = { 0 };
	char text[80];
	int nerr, rc = -1;

	if (fdb_dump(sk, ifname, &cur, err) < 0)
		goto out;
	if (vxlan_fdb_diff(want, n_want, cur.v, cur.n, &d) < 0) {
		*err = strdup("out of memory");
		goto out;
	}
	/* Adds first: a NIC whose VM moved is re-pointed in place (its old
	 * destination is then already gone when the delete asks for it), and
	 * a new peer floods before an old one stops. */
	for (size_t i = 0; i < d.n_add; i++) {
		int how = NLM_F_CREATE | (mac_zero(d.add[i].mac) ? NLM_F_APPEND : NLM_F_REPLACE);
		if ((nerr = fdb_request(sk, RTM_NEWNEIGH, how, ifindex, &d.add[i])) < 0) {
			*err = str_printf("%s: fdb add %s: %s", ifname, entry_text(&d.add[i], text),
					  nl_geterror(nerr));
			goto out;
		}
		r->fdb_added++;
	}
	for (size_t i = 0; i < d.n_del; i++) {
		nerr = fdb_request(sk, RTM_DELNEIGH, 0, ifindex, &d.del[i]);
		if (nerr < 0 && nerr != -NLE_OBJ_NOTFOUND) {
			*err = str_printf("%s: fdb delete %s: %s", ifname, entry_text(&d.del[i], text),
					  nl_geterror(nerr));
			goto out;
		}
		r->fdb_removed++;
	}
	rc = 0;
out:
	free(cur.v);
	vxlan_fdb_diff_free(&d);
	return rc;
}

/* Is l the vxlan link we want?  Master, MTU and up are fixed in place;
 * these the kernel does not change on a live link, so they decide
 * whether it is re-created. */
static bool link_matches(struct rtnl_link *l, uint32_t vni, struct nl_addr *local, int port)
{
	struct nl_addr *have = NULL, *group = NULL;
	uint32_t id, p;
	bool ok;

	if (!rtnl_link_is_vxlan(l) || rtnl_link_vxlan_get_id(l, &id) < 0 ||
	    rtnl_link_vxlan_get_port(l, &p) < 0 || rtnl_link_vxlan_get_learning(l) != 0 ||
	    rtnl_link_vxlan_get_local(l, &have) < 0)
		return false;
	/* No multicast group: flooding is the FDB's all-zeros entries. */
	if (rtnl_link_vxlan_get_group(l, &group) == 0) {
		nl_addr_put(group);
		nl_addr_put(have);
		return false;
	}
	ok = id == vni && p == (uint32_t)port && nl_addr_cmp(have, local) == 0;
	nl_addr_put(have);
	return ok;
}

static int link_create(struct nl_sock *sk, const char *ifname, uint32_t vni, struct nl_addr *local,
		       int port, int master, char **err)
{
	struct rtnl_link *l = rtnl_link_vxlan_alloc();
	int nerr = -NLE_NOMEM;

	if (l != NULL) {
		rtnl_link_set_name(l, ifname);
		rtnl_link_set_mtu(l, VXLAN_MTU);
		rtnl_link_set_master(l, master);
		rtnl_link_set_flags(l, IFF_UP);
		if ((nerr = rtnl_link_vxlan_set_id(l, vni)) >= 0 &&
		    (nerr = rtnl_link_vxlan_set_local(l, local)) >= 0 &&
		    (nerr = rtnl_link_vxlan_set_port(l, (uint32_t)port)) >= 0 &&
		    (nerr = rtnl_link_vxlan_disable_learning(l)) >= 0)
			nerr = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_link_put(l);
	}
	if (nerr < 0) {
		*err = str_printf("vxlan %s: %s", ifname, nl_geterror(nerr));
		return -1;
	}
	return 0;
}

/* The network's vxlan link as wanted, enslaved to its bridge and up;
 * its ifindex in *ifindex. */
static int link_ensure(struct nl_sock *sk, uint64_t net_id, struct nl_addr *local, int port,
		       struct vxlan_report *r, int *ifindex, char **err)
{
	ifname_str x = ifname_vxlan(net_id), b = ifname_bridge(net_id);
	struct rtnl_link *l = NULL, *br = NULL, *change = NULL;
	int nerr, rc = -1;

	if ((nerr = rtnl_link_get_kernel(sk, 0, b.s, &br)) < 0) {
		*err = str_printf("vxlan %s: bridge %s: %s", x.s, b.s, nl_geterror(nerr));
		goto out;
	}
	if (rtnl_link_get_kernel(sk, 0, x.s, &l) >= 0 &&
	    !link_matches(l, (uint32_t)net_id, local, port)) {
		/* The underlay address or the port changed (or the name is
		 * taken by something else): start over. */
		nerr = rtnl_link_delete(sk, l);
		rtnl_link_put(l);
		l = NULL;
		if (nerr < 0 && nerr != -NLE_NODEV && nerr != -NLE_OBJ_NOTFOUND) {
			*err = str_printf("vxlan %s: remove: %s", x.s, nl_geterror(nerr));
			goto out;
		}
		r->links_removed++;
	}
	if (l == NULL) {
		if (link_create(sk, x.s, (uint32_t)net_id, local, port, rtnl_link_get_ifindex(br),
				err) < 0)
			goto out;
		r->links_created++;
		if ((nerr = rtnl_link_get_kernel(sk, 0, x.s, &l)) < 0) {
			*err = str_printf("vxlan %s: %s", x.s, nl_geterror(nerr));
			goto out;
		}
	}
	if (rtnl_link_get_master(l) != rtnl_link_get_ifindex(br) ||
	    !(rtnl_link_get_flags(l) & IFF_UP) || rtnl_link_get_mtu(l) != VXLAN_MTU) {
		change = rtnl_link_alloc();
		if (change == NULL) {
			*err = strdup("out of memory");
			goto out;
		}
		rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
		rtnl_link_set_mtu(change, VXLAN_MTU);
		rtnl_link_set_flags(change, IFF_UP);
		if ((nerr = rtnl_link_change(sk, l, change, 0)) < 0) {
			*err = str_printf("vxlan %s → %s: %s", x.s, b.s, nl_geterror(nerr));
			goto out;
		}
	}
	*ifindex = rtnl_link_get_ifindex(l);
	rc = 0;
out:
	rtnl_link_put(change);
	rtnl_link_put(l);
	rtnl_link_put(br);
	return rc;
}

/* Keep the first error, drop the others (the caller logs one line). */
static void first_error(char **err, char *e)
{
	if (*err == NULL)
		*err = e;
	else
		free(e);
}

static bool has_id(const uint64_t *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Remove every x-link whose network is not in wanted. */
static int links_sweep(const uint64_t *wanted, size_t n_wanted, struct vxlan_report *r, char **err)
{
	char **names = NULL, *e = NULL;
	size_t n = 0;
	int rc = 0;

	if (link_list_ours(IFNAME_VXLAN, &names, &n, &e) < 0) {
		first_error(err, e);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		enum ifname_kind kind;
		uint64_t id;
		if (ifname_parse(names[i], &kind, &id) && has_id(wanted, n_wanted, id))
			continue;
		if (link_remove(names[i], &e) < 0) {
			first_error(err, e);
			e = NULL;
			rc = -1;
			continue;
		}
		r->links_removed++;
	}
	link_names_free(names, n);
	return rc;
}

int vxlan_converge(const struct netstate *ns, const char *underlay, int port,
		   struct vxlan_report *r, char **err)
{
	struct nl_addr *local = NULL;
	struct nl_sock *sk = NULL;
	uint64_t *wanted = NULL;
	size_t n_wanted = 0;
	uint8_t buf[16];
	int family = 0, rc = 0;

	memset(r, 0, sizeof(*r));
	*err = NULL;
	if (underlay != NULL && underlay[0] != '\0') {
		if (inet_pton(AF_INET, underlay, buf) == 1)
			family = AF_INET;
		else if (inet_pton(AF_INET6, underlay, buf) == 1)
			family = AF_INET6;
		else {
			*err = str_printf("underlay %s: not an IPv4 or IPv6 address", underlay);
			return -1;
		}
		if (port < 1 || port > 65535) {
			*err = str_printf("vxlan_port %d: not a UDP port", port);
			return -1;
		}
		if ((local = nl_addr_build(family, buf, addr_len(family))) == NULL) {
			*err = strdup("out of memory");
			return -1;
		}
	}
	wanted = calloc(ns->n_nets + 1, sizeof(*wanted));
	if (wanted == NULL || (local != NULL && (sk = link_nl_open(err)) == NULL)) {
		if (*err == NULL)
			*err = strdup("out of memory");
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < ns->n_nets; i++) {
		uint64_t id = ns->nets[i].id;
		struct ns_fdb *want = NULL;
		size_t n_want = 0, skipped = 0;
		char *e = NULL;
		int ifindex = 0;

		if (vxlan_fdb_want(ns, id, family, &want, &n_want, &skipped) < 0) {
			first_error(err, strdup("out of memory"));
			rc = -1;
			continue;
		}
		r->skipped += skipped;
		if (n_want > 0 && local != NULL) {
			wanted[n_wanted++] = id;
			r->links++;
			if (link_ensure(sk, id, local, port, r, &ifindex, &e) < 0 ||
			    fdb_sync(sk, ifname_vxlan(id).s, ifindex, want, n_want, r, &e) < 0) {
				first_error(err, e);
				rc = -1;
			}
		}
		free(want);
	}
	/* Networks no longer carried, without peers, or gone from the store. */
	if (links_sweep(wanted, n_wanted, r, err) < 0)
		rc = -1;
out:
	free(wanted);
	nl_socket_free(sk);
	nl_addr_put(local);
	return rc;
}
