/* shaping — see shaping.h. */
#include "net/shaping.h"

#include "common/fsutil.h"
#include "common/ids.h"
#include "net/link.h"
#include "net/linkstats.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INGRESS_HANDLE 0xffff0000u       /* the ingress qdisc is always ffff: */
#define FILTER_HANDLE  0x80000800u       /* u32 "800::800": the first node of table 800: */

/* A tap whose redirect to its ifb this shaper made or read back. */
struct verified {
	int tap, ifb;                     /* ifindexes */
};

struct shaper {
	struct nl_sock *sk;
	struct verified *v;
	size_t n_v;
};

/* What a qdisc dump says about one qdisc. */
struct qd {
	int ifindex;
	uint32_t handle, parent;
	char kind[16];
	bool has_tbf;
	struct tbf_params tbf;
};

struct qd_list {
	struct qd *v;
	size_t n, cap;
	bool failed;
};

/* ---- the token bucket, as the kernel computes it ------------------------ */

void tbf_params_of(const struct rate_limit *l, struct tbf_params *out)
{
	uint64_t rate = l->rate / 8, factor = UINT64_C(1000000000);
	uint32_t mult = 1;
	unsigned shift = 0;

	memset(out, 0, sizeof(*out));
	out->rate = rate;
	out->burst = (uint32_t)rate_burst(l);
	out->limit = (uint32_t)rate_queue(l);
	/* psched_ratecfg_precompute(): time = len * mult >> shift, with mult
	 * as large as 31 bits allow. */
	for (; rate > 0;) {
		mult = (uint32_t)(factor / rate);
		if ((mult & (UINT32_C(1) << 31)) || (factor & (UINT64_C(1) << 63)))
			break;
		factor <<= 1;
		shift++;
	}
	/* tbf_change() keeps psched_l2t_ns(burst) as the buffer; a dump shows
	 * it in ticks of 64 ns (PSCHED_NS2TICKS). */
	out->buffer = (uint32_t)((((uint64_t)out->burst * mult) >> shift) >> 6);
}

/* ---- netlink plumbing --------------------------------------------------- */

static struct nl_msg *tc_msg(int type, int flags, int ifindex, uint32_t handle, uint32_t parent,
			     uint32_t info)
{
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = handle,
			   .tcm_parent = parent, .tcm_info = info };
	struct nl_msg *msg = nlmsg_alloc_simple(type, flags);

	if (msg && nlmsg_append(msg, &t, sizeof(t), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(msg);
		msg = NULL;
	}
	return msg;
}

/* Send one change and wait for the kernel's answer; frees msg.  A message
 * that could not be built (NULL, or `built` false) is out of memory. */
static int talk(struct nl_sock *sk, struct nl_msg *msg, bool built, const char *what,
		const char *ifname, char **err)
{
	int nerr = msg && built ? nl_send_sync(sk, msg) : (nlmsg_free(msg), -NLE_NOMEM);

	if (nerr < 0) {
		if (*err == NULL)
			*err = str_printf("%s %s: %s", ifname, what, nl_geterror(nerr));
		return -1;
	}
	return 0;
}

/* Run a dump through fn (the kernel ends it with DONE and sends no ack). */
static int dump(struct nl_sock *sk, struct nl_msg *msg, int (*fn)(struct nl_msg *, void *),
		void *arg)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int nerr = -NLE_NOMEM;

	if (cb) {
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fn, arg);
		nerr = nl_send_auto(sk, msg);
		if (nerr >= 0)
			nerr = nl_recvmsgs(sk, cb);
	}
	nl_cb_put(cb);
	nlmsg_free(msg);
	return nerr;
}

/* ---- reading what is there ---------------------------------------------- */

static void tbf_read(struct nlattr *opts, struct qd *q)
{
	struct nlattr *tb[TCA_TBF_MAX + 1];
	struct tc_tbf_qopt p;

	if (nla_parse_nested(tb, TCA_TBF_MAX, opts, NULL) < 0 || tb[TCA_TBF_PARMS] == NULL ||
	    nla_len(tb[TCA_TBF_PARMS]) < (int)sizeof(p))
		return;
	memcpy(&p, nla_data(tb[TCA_TBF_PARMS]), sizeof(p));
	q->has_tbf = true;
	q->tbf.rate = p.rate.rate;
	if (tb[TCA_TBF_RATE64] && nla_len(tb[TCA_TBF_RATE64]) >= 8)
		q->tbf.rate = nla_get_u64(tb[TCA_TBF_RATE64]);
	q->tbf.limit = p.limit;
	q->tbf.buffer = p.buffer;
}

static int on_qdisc(struct nl_msg *msg, void *arg)
{
	struct qd_list *l = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct tcmsg *t = nlmsg_data(h);
	struct nlattr *tb[TCA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWQDISC || nlmsg_parse(h, sizeof(*t), tb, TCA_MAX, NULL) < 0 ||
	    tb[TCA_KIND] == NULL)
		return NL_OK;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct qd *nv = realloc(l->v, cap * sizeof(*nv));
		if (nv == NULL) {
			l->failed = true;
			return NL_STOP;
		}
		l->v = nv;
		l->cap = cap;
	}
	struct qd *q = &l->v[l->n++];
	memset(q, 0, sizeof(*q));
	q->ifindex = t->tcm_ifindex;
	q->handle = t->tcm_handle;
	q->parent = t->tcm_parent;
	snprintf(q->kind, sizeof(q->kind), "%s", nla_get_string(tb[TCA_KIND]));
	if (strcmp(q->kind, "tbf") == 0 && tb[TCA_OPTIONS])
		tbf_read(tb[TCA_OPTIONS], q);
	return NL_OK;
}

static int cmp_qd(const void *a, const void *b)
{
	const struct qd *x = a, *y = b;

	if (x->ifindex != y->ifindex)
		return x->ifindex < y->ifindex ? -1 : 1;
	return x->parent < y->parent ? -1 : x->parent > y->parent;
}

static int qdiscs_dump(struct nl_sock *sk, struct qd_list *l, char **err)
{
	int nerr = -NLE_DUMP_INTR;

	for (int attempt = 0; attempt < 3 && nerr == -NLE_DUMP_INTR; attempt++) {
		struct nl_msg *msg = tc_msg(RTM_GETQDISC, NLM_F_DUMP, 0, 0, 0, 0);
		l->n = 0;
		nerr = msg ? dump(sk, msg, on_qdisc, l) : -NLE_NOMEM;
	}
	if (nerr >= 0 && l->failed)
		nerr = -NLE_NOMEM;
	if (nerr < 0) {
		*err = str_printf("netlink qdisc dump: %s", nl_geterror(nerr));
		return -1;
	}
	sort_array(l->v, l->n, sizeof(*l->v), cmp_qd);
	return 0;
}

/* The qdisc of ifindex attached at parent (TC_H_ROOT, TC_H_INGRESS), or NULL. */
static const struct qd *qd_find(const struct qd_list *l, int ifindex, uint32_t parent)
{
	struct qd key = { .ifindex = ifindex, .parent = parent };

	return search_array(&key, l->v, l->n, sizeof(*l->v), cmp_qd);
}

static bool tbf_is(const struct qd *q, const struct tbf_params *want)
{
	if (q == NULL || q->handle != SHAPE_HANDLE || !q->has_tbf)
		return false;
	/* The buffer went through the kernel's fixed-point arithmetic: allow
	 * a tick of rounding, should a kernel round differently. */
	uint32_t d = q->tbf.buffer > want->buffer ? q->tbf.buffer - want->buffer
						  : want->buffer - q->tbf.buffer;
	return q->tbf.rate == want->rate && q->tbf.limit == want->limit && d <= 1 + want->buffer / 1000;
}

struct filter_probe {
	int ifb;
	bool ok;
};

/* The u32 node 800::800 at our priority redirects everything to ifb. */
static int on_filter(struct nl_msg *msg, void *arg)
{
	struct filter_probe *p = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct tcmsg *t = nlmsg_data(h);
	struct nlattr *tb[TCA_MAX + 1], *u[TCA_U32_MAX + 1], *acts[TCA_ACT_MAX_PRIO + 1];

	if (h->nlmsg_type != RTM_NEWTFILTER || t->tcm_handle != FILTER_HANDLE ||
	    TC_H_MAJ(t->tcm_info) >> 16 != SHAPE_PRIO ||
	    nlmsg_parse(h, sizeof(*t), tb, TCA_MAX, NULL) < 0 || tb[TCA_KIND] == NULL ||
	    strcmp(nla_get_string(tb[TCA_KIND]), "u32") != 0 || tb[TCA_OPTIONS] == NULL ||
	    nla_parse_nested(u, TCA_U32_MAX, tb[TCA_OPTIONS], NULL) < 0 ||
	    u[TCA_U32_SEL] == NULL || u[TCA_U32_ACT] == NULL ||
	    nla_parse_nested(acts, TCA_ACT_MAX_PRIO, u[TCA_U32_ACT], NULL) < 0)
		return NL_OK;
	const struct tc_u32_sel *sel = nla_data(u[TCA_U32_SEL]);
	if (nla_len(u[TCA_U32_SEL]) < (int)(sizeof(*sel) + sizeof(sel->keys[0])) ||
	    sel->nkeys != 1 || sel->keys[0].mask != 0 || !(sel->flags & TC_U32_TERMINAL))
		return NL_OK;
	for (int i = 1; i <= TCA_ACT_MAX_PRIO; i++) {
		struct nlattr *a[TCA_ACT_MAX + 1], *m[TCA_MIRRED_MAX + 1];
		struct tc_mirred mp;
		if (acts[i] == NULL || nla_parse_nested(a, TCA_ACT_MAX, acts[i], NULL) < 0 ||
		    a[TCA_ACT_KIND] == NULL || strcmp(nla_get_string(a[TCA_ACT_KIND]), "mirred") != 0 ||
		    a[TCA_ACT_OPTIONS] == NULL ||
		    nla_parse_nested(m, TCA_MIRRED_MAX, a[TCA_ACT_OPTIONS], NULL) < 0 ||
		    m[TCA_MIRRED_PARMS] == NULL || nla_len(m[TCA_MIRRED_PARMS]) < (int)sizeof(mp))
			continue;
		memcpy(&mp, nla_data(m[TCA_MIRRED_PARMS]), sizeof(mp));
		if (mp.eaction == TCA_EGRESS_REDIR && (int)mp.ifindex == p->ifb &&
		    mp.action == TC_ACT_STOLEN)
			p->ok = true;
	}
	return NL_OK;
}

static bool filter_is(struct nl_sock *sk, int tap, int ifb)
{
	struct filter_probe p = { .ifb = ifb };
	struct nl_msg *msg = tc_msg(RTM_GETTFILTER, NLM_F_DUMP, tap, 0, INGRESS_HANDLE, 0);

	return msg && dump(sk, msg, on_filter, &p) >= 0 && p.ok;
}

/* ---- changing it -------------------------------------------------------- */

static int tbf_set(struct nl_sock *sk, int ifindex, const char *ifname,
		   const struct tbf_params *p, char **err)
{
	struct nl_msg *msg = tc_msg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, ifindex,
				    SHAPE_HANDLE, TC_H_ROOT, 0);
	struct tc_tbf_qopt q = { 0 };
	struct nlattr *opts;
	bool ok = msg != NULL;

	q.rate.rate = p->rate > UINT32_MAX ? UINT32_MAX : (uint32_t)p->rate;
	/* Ethernet: no rate table needed, the kernel computes time from bytes. */
	q.rate.linklayer = TC_LINKLAYER_ETHERNET;
	q.limit = p->limit;
	q.buffer = p->buffer;
	ok = ok && nla_put_string(msg, TCA_KIND, "tbf") >= 0 &&
	     (opts = nla_nest_start(msg, TCA_OPTIONS)) != NULL &&
	     nla_put(msg, TCA_TBF_PARMS, sizeof(q), &q) >= 0 &&
	     (p->rate <= UINT32_MAX || nla_put_u64(msg, TCA_TBF_RATE64, p->rate) >= 0) &&
	     nla_put_u32(msg, TCA_TBF_BURST, p->burst) >= 0 && nla_nest_end(msg, opts) >= 0;
	return talk(sk, msg, ok, "tbf", ifname, err);
}

static int qdisc_del(struct nl_sock *sk, int ifindex, const char *ifname, uint32_t handle,
		     uint32_t parent, char **err)
{
	struct nl_msg *msg = tc_msg(RTM_DELQDISC, 0, ifindex, handle, parent, 0);

	return talk(sk, msg, true, "qdisc removal", ifname, err);
}

static int ingress_add(struct nl_sock *sk, int ifindex, const char *ifname, char **err)
{
	struct nl_msg *msg = tc_msg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex,
				    INGRESS_HANDLE, TC_H_INGRESS, 0);

	return talk(sk, msg, msg && nla_put_string(msg, TCA_KIND, "ingress") >= 0, "ingress",
		    ifname, err);
}

/* u32 "match u32 0 0" (every frame), action mirred egress redirect to ifb.
 * Created or replaced whole: the handle is fixed and NLM_F_EXCL is not set. */
static int filter_set(struct nl_sock *sk, int tap, const char *ifname, int ifb, char **err)
{
	struct nl_msg *msg = tc_msg(RTM_NEWTFILTER, NLM_F_CREATE, tap, FILTER_HANDLE,
				    INGRESS_HANDLE, TC_H_MAKE(SHAPE_PRIO << 16, htons(ETH_P_ALL)));
	struct {
		struct tc_u32_sel sel;
		struct tc_u32_key key;
	} sel = { .sel = { .flags = TC_U32_TERMINAL, .nkeys = 1 } };
	struct tc_mirred mp = { .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR,
				.ifindex = (uint32_t)ifb };
	struct nlattr *opts, *acts, *act, *aopts;
	bool ok = msg && nla_put_string(msg, TCA_KIND, "u32") >= 0 &&
		  (opts = nla_nest_start(msg, TCA_OPTIONS)) != NULL &&
		  nla_put(msg, TCA_U32_SEL, sizeof(sel), &sel) >= 0 &&
		  (acts = nla_nest_start(msg, TCA_U32_ACT)) != NULL &&
		  (act = nla_nest_start(msg, 1)) != NULL &&
		  nla_put_string(msg, TCA_ACT_KIND, "mirred") >= 0 &&
		  (aopts = nla_nest_start(msg, TCA_ACT_OPTIONS)) != NULL &&
		  nla_put(msg, TCA_MIRRED_PARMS, sizeof(mp), &mp) >= 0 &&
		  nla_nest_end(msg, aopts) >= 0 && nla_nest_end(msg, act) >= 0 &&
		  nla_nest_end(msg, acts) >= 0 && nla_nest_end(msg, opts) >= 0;

	return talk(sk, msg, ok, "redirect filter", ifname, err);
}

/*
 * No IPv6 on an ifb: it only carries frames back to their tap.  Left on,
 * bringing each one up adds a link-local address and multicast routes
 * whose FIB node lists every such device, so each costs more than the one
 * before (10,000 NICs: 200 s instead of 20).  Only a sysctl switches it
 * off, and it must be written before the link comes up.
 */
static void ifb_no_ipv6(const char *name)
{
	char *path = str_printf("/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	FILE *f = path ? fopen(path, "w") : NULL;

	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	free(path);
}

/* The ifb, up; its ifindex into *ifindex. */
static int ifb_ensure(struct nl_sock *sk, const char *name, const struct link_stat *have,
		      int *ifindex, char **err)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_msg *msg;
	struct nlattr *info;
	struct link_stat now;
	bool ok;

	if (have && have->up) {
		*ifindex = have->ifindex;
		return 0;
	}
	if (have == NULL) {
		msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
		ok = msg && nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
		     nla_put_string(msg, IFLA_IFNAME, name) >= 0 &&
		     (info = nla_nest_start(msg, IFLA_LINKINFO)) != NULL &&
		     nla_put_string(msg, IFLA_INFO_KIND, "ifb") >= 0 && nla_nest_end(msg, info) >= 0;
		if (talk(sk, msg, ok, "ifb", name, err) < 0)
			return -1;
		int found = link_stats_get(sk, name, &now, err);
		if (found <= 0) {
			if (found == 0 && *err == NULL)
				*err = str_printf("%s: gone right after it was made", name);
			return -1;
		}
		have = &now;
	}
	ifb_no_ipv6(name);
	*ifindex = have->ifindex;
	ifi = (struct ifinfomsg){ .ifi_family = AF_UNSPEC, .ifi_index = have->ifindex,
				  .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
	ok = msg && nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0;
	return talk(sk, msg, ok, "up", name, err);
}

/* ---- the shaper --------------------------------------------------------- */

struct shaper *shaper_new(char **err)
{
	struct shaper *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	if ((s->sk = link_dump_socket(err)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void shaper_free(struct shaper *s)
{
	if (s == NULL)
		return;
	nl_socket_free(s->sk);
	free(s->v);
	free(s);
}

/* The verified taps are kept sorted by ifindex: a pass over 10,000 NICs
 * looks each up in a few steps. */
static size_t verified_pos(const struct shaper *s, int tap)
{
	size_t lo = 0, hi = s->n_v;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].tap < tap)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct verified *verified_find(const struct shaper *s, int tap)
{
	size_t i = verified_pos(s, tap);

	return i < s->n_v && s->v[i].tap == tap ? &s->v[i] : NULL;
}

static void verified_set(struct shaper *s, int tap, int ifb)
{
	size_t i = verified_pos(s, tap);

	if (i < s->n_v && s->v[i].tap == tap) {
		s->v[i].ifb = ifb;
		return;
	}
	struct verified *nv = realloc(s->v, (s->n_v + 1) * sizeof(*nv));
	if (nv == NULL)
		return;     /* only a cache: checked again next time */
	s->v = nv;
	memmove(&nv[i + 1], &nv[i], (s->n_v - i) * sizeof(*nv));
	nv[i] = (struct verified){ .tap = tap, .ifb = ifb };
	s->n_v++;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Forget taps that are gone: ifindexes are not reused soon, but a cache
 * of the dead would only grow. */
static void verified_prune(struct shaper *s, const struct link_stat *links, size_t n)
{
	int *alive = calloc(n + 1, sizeof(*alive));
	size_t out = 0;

	if (alive == NULL) {
		s->n_v = 0;
		return;
	}
	for (size_t i = 0; i < n; i++)
		alive[i] = links[i].ifindex;
	sort_array(alive, n, sizeof(*alive), cmp_int);
	for (size_t i = 0; i < s->n_v; i++)
		if (search_array(&s->v[i].tap, alive, n, sizeof(*alive), cmp_int))
			s->v[out++] = s->v[i];
	s->n_v = out;
	free(alive);
}

/* The direction "to the VM": the tap's root. */
static int shape_in(struct shaper *s, const struct link_stat *tap, const struct rate_limit *l,
		    const struct qd_list *qds, size_t *changed, char **err)
{
	const struct qd *root = qd_find(qds, tap->ifindex, TC_H_ROOT);
	struct tbf_params p;

	if (l->rate == 0) {
		if (root == NULL || root->handle != SHAPE_HANDLE)
			return 0;
		(*changed)++;
		return qdisc_del(s->sk, tap->ifindex, tap->name, SHAPE_HANDLE, TC_H_ROOT, err);
	}
	tbf_params_of(l, &p);
	if (tbf_is(root, &p))
		return 0;
	(*changed)++;
	return tbf_set(s->sk, tap->ifindex, tap->name, &p, err);
}

/* The direction "from the VM": ifb, its root, the tap's ingress redirect. */
static int shape_out(struct shaper *s, const struct link_stat *tap, const struct link_stat *ifb,
		     uint64_t nic, const struct rate_limit *l, const struct qd_list *qds,
		     bool thorough, size_t *changed, char **err)
{
	const struct qd *ingress = qd_find(qds, tap->ifindex, TC_H_INGRESS);
	ifname_str name = ifname_ifb(nic);
	struct tbf_params p;
	int ifb_index;

	/* Without a limit the redirect goes; the ifb, which no wanted NIC
	 * needs then, goes with the strays. */
	if (l->rate == 0) {
		if (ingress == NULL)
			return 0;
		(*changed)++;
		return qdisc_del(s->sk, tap->ifindex, tap->name, INGRESS_HANDLE, TC_H_INGRESS, err);
	}
	if (ifb == NULL || !ifb->up)
		(*changed)++;
	if (ifb_ensure(s->sk, name.s, ifb, &ifb_index, err) < 0)
		return -1;
	tbf_params_of(l, &p);
	if (!tbf_is(ifb ? qd_find(qds, ifb_index, TC_H_ROOT) : NULL, &p)) {
		(*changed)++;
		if (tbf_set(s->sk, ifb_index, name.s, &p, err) < 0)
			return -1;
	}
	/* The bucket first, the redirect last: no frame is sent to an ifb
	 * that is not ready to shape it. */
	if (ingress == NULL) {
		(*changed)++;
		if (ingress_add(s->sk, tap->ifindex, tap->name, err) < 0)
			return -1;
	} else {
		const struct verified *v = verified_find(s, tap->ifindex);
		if (!thorough && v && v->ifb == ifb_index)
			return 0;
		if (filter_is(s->sk, tap->ifindex, ifb_index)) {
			verified_set(s, tap->ifindex, ifb_index);
			return 0;
		}
	}
	(*changed)++;
	if (filter_set(s->sk, tap->ifindex, tap->name, ifb_index, err) < 0)
		return -1;
	verified_set(s, tap->ifindex, ifb_index);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int shaper_converge(struct shaper *s, const struct shape_want *want, size_t n, bool thorough,
		    struct shape_report *r, char **err)
{
	struct link_stat *links = NULL;
	struct qd_list qds = { 0 };
	uint64_t *ifb_wanted = calloc(n + 1, sizeof(*ifb_wanted));
	size_t n_links = 0, n_ifb = 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	*err = NULL;
	if (ifb_wanted == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	if (link_stats_dump(s->sk, "vi", &links, &n_links, err) < 0 ||
	    qdiscs_dump(s->sk, &qds, err) < 0) {
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct shape_want *w = &want[i];
		const struct link_stat *tap = link_stats_find(links, n_links, ifname_tap(w->nic).s);
		if (tap == NULL)
			continue;      /* not on this host now */
		const struct link_stat *ifb = link_stats_find(links, n_links, ifname_ifb(w->nic).s);
		r->links++;
		if (w->out.rate)
			ifb_wanted[n_ifb++] = w->nic;
		if (shape_in(s, tap, &w->in, &qds, &r->changed, err) < 0 ||
		    shape_out(s, tap, ifb, w->nic, &w->out, &qds, thorough, &r->changed, err) < 0) {
			r->failed++;
			rc = -1;
		}
	}
	/* ifbs no wanted NIC here needs: a NIC removed, moved or unlimited
	 * while hcd was away. */
	sort_array(ifb_wanted, n_ifb, sizeof(*ifb_wanted), cmp_u64);
	for (size_t i = 0; i < n_links; i++) {
		enum ifname_kind kind;
		uint64_t id;
		if (!ifname_parse(links[i].name, &kind, &id) || kind != IFNAME_IFB ||
		    search_array(&id, ifb_wanted, n_ifb, sizeof(id), cmp_u64))
			continue;
		char *e = NULL;
		r->strays++;
		if (link_remove(links[i].name, &e) < 0) {
			if (*err == NULL)
				*err = e, e = NULL;
			rc = -1;
		}
		free(e);
	}
	verified_prune(s, links, n_links);
out:
	free(ifb_wanted);
	free(links);
	free(qds.v);
	return rc;
}

int shaping_ifb_remove(uint64_t nic, char **err)
{
	*err = NULL;
	return link_remove(ifname_ifb(nic).s, err);
}
