/* linkstats — see linkstats.h. */
#include "net/linkstats.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "net/link.h"
#include "common/sort.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdlib.h>
#include <string.h>

struct nl_sock *link_dump_socket(char **err)
{
	struct nl_sock *sk = link_nl_open(err);

	if (sk) {
		nl_socket_set_buffer_size(sk, 4 << 20, 0);
		nl_socket_set_msg_buf_size(sk, 64 << 10);
	}
	return sk;
}

struct dump {
	const char *kinds;
	const char *only;         /* one name (link_stats_get), or NULL */
	struct link_stat *v;
	size_t n, cap;
	bool failed;
};

static int on_link(struct nl_msg *msg, void *arg)
{
	struct dump *d = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct ifinfomsg *ifi = nlmsg_data(h);
	struct nlattr *tb[IFLA_MAX + 1];
	enum ifname_kind kind;
	uint64_t id;

	if (h->nlmsg_type != RTM_NEWLINK || nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0 ||
	    tb[IFLA_IFNAME] == NULL)
		return NL_OK;
	const char *name = nla_get_string(tb[IFLA_IFNAME]);
	if (d->only ? strcmp(name, d->only) != 0
		    : !ifname_parse(name, &kind, &id) || strchr(d->kinds, (char)kind) == NULL)
		return NL_OK;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct link_stat *nv = realloc(d->v, cap * sizeof(*nv));
		if (nv == NULL) {
			d->failed = true;
			return NL_STOP;
		}
		d->v = nv;
		d->cap = cap;
	}
	struct link_stat *s = &d->v[d->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->ifindex = ifi->ifi_index;
	s->up = (ifi->ifi_flags & IFF_UP) != 0;
	if (tb[IFLA_STATS64] && nla_len(tb[IFLA_STATS64]) >= (int)sizeof(struct rtnl_link_stats64)) {
		struct rtnl_link_stats64 st;
		memcpy(&st, nla_data(tb[IFLA_STATS64]), sizeof(st));
		s->rx_bytes = st.rx_bytes;
		s->tx_bytes = st.tx_bytes;
		s->rx_packets = st.rx_packets;
		s->tx_packets = st.tx_packets;
	}
	return NL_OK;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct link_stat *)a)->name, ((const struct link_stat *)b)->name);
}

/* One RTM_GETLINK: a dump of all links, or a get of one by name. */
static int request(struct nl_sock *sk, struct dump *d, char **err)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	struct nl_msg *msg = NULL;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	int nerr = -NLE_NOMEM;

	for (int attempt = 0; cb && attempt < 3; attempt++) {
		d->n = 0;
		msg = nlmsg_alloc_simple(RTM_GETLINK, d->only ? 0 : NLM_F_DUMP);
		if (msg == NULL || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
		    (d->only && nla_put_string(msg, IFLA_IFNAME, d->only) < 0)) {
			nerr = -NLE_NOMEM;
			break;
		}
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_link, d);
		nerr = nl_send_auto(sk, msg);
		nlmsg_free(msg);
		msg = NULL;
		if (nerr >= 0)
			nerr = nl_recvmsgs(sk, cb);
		/* A get is answered by the link, then the ack it asked for (a
		 * dump ends with its DONE, unacked); an error comes alone. */
		if (d->only && nerr >= 0)
			nerr = nl_wait_for_ack(sk);
		/* Links that came or went during the dump: take it again. */
		if (nerr != -NLE_DUMP_INTR)
			break;
	}
	nlmsg_free(msg);
	nl_cb_put(cb);
	if (d->failed)
		nerr = -NLE_NOMEM;
	if (nerr < 0 && !(d->only && nerr == -NLE_NODEV)) {
		*err = str_printf("netlink link %s: %s", d->only ? d->only : "dump", nl_geterror(nerr));
		return -1;
	}
	return 0;
}

int link_stats_dump(struct nl_sock *sk, const char *kinds, struct link_stat **out, size_t *n,
		    char **err)
{
	struct dump d = { .kinds = kinds };

	*out = NULL;
	*n = 0;
	if (request(sk, &d, err) < 0) {
		free(d.v);
		return -1;
	}
	sort_array(d.v, d.n, sizeof(*d.v), cmp_name);
	*out = d.v;
	*n = d.n;
	return 0;
}

const struct link_stat *link_stats_find(const struct link_stat *v, size_t n, const char *name)
{
	struct link_stat key;

	snprintf(key.name, sizeof(key.name), "%s", name);
	return search_array(&key, v, n, sizeof(*v), cmp_name);
}

int link_stats_get(struct nl_sock *sk, const char *name, struct link_stat *out, char **err)
{
	struct dump d = { .kinds = "", .only = name };
	int found;

	if (request(sk, &d, err) < 0) {
		free(d.v);
		return -1;
	}
	found = d.n > 0;
	if (found)
		*out = d.v[0];
	free(d.v);
	return found;
}
