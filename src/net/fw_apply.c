/*
 * fw_apply — the only part of the firewall that talks to the kernel; see
 * firewall.h for the contract.
 *
 * Apply: the names of the chains and sets in our two tables are dumped
 * over netlink (no set elements: a few ms at any size).  When they are
 * exactly the new version's and the base chains are as declared, nothing
 * is done.  Otherwise one batch (fw_batch.h) flushes every installed chain
 * (dropping the old jumps and every reference into old objects, so
 * deletion order cannot fail), deletes every installed set and map and
 * every chain that is not one of our base chains as declared, then adds
 * the new version whole; the base chains are re-declared (a no-op when
 * they exist) and get their one jump.  A base chain with another hook,
 * priority or policy is deleted and recreated in the same transaction.
 * The kernel commits the batch at once or not at all.
 */
#include "net/fw_batch.h"

#include "common/stats.h"
#include "common/sort.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_SNDBUFFORCE
#define SO_SNDBUFFORCE 32
#endif

/*
 * br_netfilter hands bridged IPv4/IPv6 frames to the inet hooks, where the
 * "established" bit is computed (see fw_gen.c).  Both sysctls default to 1
 * and are per network namespace; make it so.
 */
static int sysctl_ensure_one(const char *path, char **err)
{
	char buf[8] = "";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return fw_fail(err, "%s: %s (br_netfilter is needed for replies to reach VMs)", path,
			       strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0 && buf[0] == '1') {
		close(fd);
		return 0;
	}
	if (pwrite(fd, "1\n", 2, 0) != 2) {
		int saved = errno;
		close(fd);
		return fw_fail(err, "%s: %s", path, strerror(saved));
	}
	close(fd);
	return 0;
}

static int sysctls_ensure(char **err)
{
	if (sysctl_ensure_one("/proc/sys/net/bridge/bridge-nf-call-iptables", err) < 0)
		return -1;
	return sysctl_ensure_one("/proc/sys/net/bridge/bridge-nf-call-ip6tables", err);
}

/* ---- the socket ------------------------------------------------------------------ */

static struct mnl_socket *nl_open(char **err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int one = 1;

	if (nl == NULL || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fw_fail(err, "netlink: %s", strerror(errno));
		if (nl != NULL)
			mnl_socket_close(nl);
		return NULL;
	}
	/* Errors echo only the header of the failed message. */
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	return nl;
}

static uint32_t seq_next(void)
{
	static uint32_t seq;
	if (seq == 0)
		seq = (uint32_t)time(NULL);
	return seq += 1u << 20;     /* room for every message of a batch */
}

/* ---- what is installed ----------------------------------------------------------- */

struct installed_obj {
	enum fw_family fam;
	bool chain;
	char name[NFT_NAME_MAXLEN];
	const struct fw_base *base; /* the base chain it is, when exactly as declared */
};

struct installed {
	struct installed_obj *v;
	size_t n, cap;
	bool odd_name;              /* a name we would not dare to write back */
	enum fw_family fam;         /* of the dump being read */
	bool oom;
};

/* Names we create are [a-z0-9-]; anything else in our tables was put
 * there by hand and is not named in a message (the tables go whole). */
static bool name_plain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static struct installed_obj *installed_add(struct installed *in, const char *name)
{
	if (!name_plain(name)) {
		in->odd_name = true;
		return NULL;
	}
	if (in->n == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 64;
		struct installed_obj *o = realloc(in->v, cap * sizeof(*o));
		if (o == NULL) {
			in->oom = true;
			return NULL;
		}
		in->v = o;
		in->cap = cap;
	}
	struct installed_obj *o = &in->v[in->n++];
	memset(o, 0, sizeof(*o));
	o->fam = in->fam;
	snprintf(o->name, sizeof(o->name), "%s", name);
	return o;
}

static const struct fw_base *base_of(enum fw_family fam, const struct nftnl_chain *c)
{
	const char *name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);

	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM))
		return NULL;
	for (size_t i = 0; i < fw_n_bases; i++) {
		const struct fw_base *b = &fw_bases[i];
		const char *type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
		if (b->fam != fam || strcmp(b->name, name) != 0)
			continue;
		if (type != NULL && strcmp(type, b->type) == 0 &&
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == (uint32_t)b->hooknum &&
		    nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) == b->prio &&
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_ACCEPT)
			return b;
		return NULL;
	}
	return NULL;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct installed *in = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c == NULL || nftnl_chain_nlmsg_parse(nlh, c) < 0) {
		nftnl_chain_free(c);
		return MNL_CB_ERROR;
	}
	const char *table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
	if (table != NULL && strcmp(table, FIREWALL_TABLE) == 0) {
		struct installed_obj *o = installed_add(in, nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
		if (o != NULL) {
			o->chain = true;
			o->base = base_of(in->fam, c);
		}
	}
	nftnl_chain_free(c);
	return in->oom ? MNL_CB_ERROR : MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct installed *in = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (s == NULL || nftnl_set_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	const char *table = nftnl_set_get_str(s, NFTNL_SET_TABLE);
	/* Anonymous sets go with the rules that hold them. */
	if (table != NULL && strcmp(table, FIREWALL_TABLE) == 0 &&
	    !(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_ANONYMOUS))
		installed_add(in, nftnl_set_get_str(s, NFTNL_SET_NAME));
	nftnl_set_free(s);
	return in->oom ? MNL_CB_ERROR : MNL_CB_OK;
}

/* One dump (chains or sets of one family's table) into in. */
static int dump(struct mnl_socket *nl, struct installed *in, enum fw_family fam, bool chains, char **err)
{
	static const uint16_t nfproto[FW_N_FAMILIES] = { NFPROTO_BRIDGE, NFPROTO_INET };
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	uint32_t seq = seq_next(), portid = mnl_socket_get_portid(nl);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, chains ? NFT_MSG_GETCHAIN : NFT_MSG_GETSET,
						     nfproto[fam], NLM_F_DUMP, seq);
	int n;

	/* Filtered by table name in the kernel. */
	mnl_attr_put_strz(nlh, chains ? NFTA_CHAIN_TABLE : NFTA_SET_TABLE, FIREWALL_TABLE);
	in->fam = fam;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return fw_fail(err, "netlink: %s", strerror(errno));
	while ((n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		n = mnl_cb_run(buf, (size_t)n, seq, portid, chains ? chain_cb : set_cb, in);
		if (n <= MNL_CB_STOP)
			break;
	}
	if (n < 0 && errno != ENOENT)
		return fw_fail(err, "netlink: listing %s %s: %s", fw_family_name[fam],
			       chains ? "chains" : "sets", in->oom ? "out of memory" : strerror(errno));
	return 0;
}

static int installed_list(struct mnl_socket *nl, struct installed *in, char **err)
{
	memset(in, 0, sizeof(*in));
	for (int fam = 0; fam < FW_N_FAMILIES; fam++)
		for (int chains = 0; chains < 2; chains++)
			if (dump(nl, in, fam, chains, err) < 0)
				return -1;
	return 0;
}

static int cmp_installed(const void *a, const void *b)
{
	const struct installed_obj *x = a, *y = b;

	if (x->fam != y->fam)
		return (int)x->fam - (int)y->fam;
	if (x->chain != y->chain)
		return (int)x->chain - (int)y->chain;
	return strcmp(x->name, y->name);
}

/* Is this chain or set installed (and a base chain as declared)? */
static bool installed_has(const struct installed *in, enum fw_family fam, bool chain, const char *name,
			  const struct fw_base *base)
{
	struct installed_obj key = { .fam = fam, .chain = chain };
	const struct installed_obj *o;

	if (in->n == 0)
		return false;
	snprintf(key.name, sizeof(key.name), "%s", name);
	o = search_array(&key, in->v, in->n, sizeof(*in->v), cmp_installed);
	return o != NULL && o->base == base;
}

/* Exactly the new version's chains and sets, base chains as declared?
 * (in->v is sorted here: at 20,000 chains a linear search per name is
 * seconds.) */
static bool installed_is(struct installed *in, const struct fw_model *m)
{
	size_t want = 0;
	char name[NFT_NAME_MAXLEN];

	if (in->odd_name)
		return false;
	if (in->n > 0)
		sort_array(in->v, in->n, sizeof(*in->v), cmp_installed);
	for (size_t i = 0; i < m->n_chains; i++) {
		const struct fw_chain *c = &m->chains[i];
		if (c->base)
			snprintf(name, sizeof(name), "%s", c->name);
		else
			snprintf(name, sizeof(name), "%s-%s", c->name, m->version);
		if (!installed_has(in, c->fam, true, name, c->base))
			return false;
		want++;
	}
	for (size_t i = 0; i < m->n_sets; i++) {
		const struct fw_set *s = &m->sets[i];
		if (s->kind == FW_ANON)
			continue;
		snprintf(name, sizeof(name), "%s-%s", s->name, m->version);
		if (!installed_has(in, s->fam, false, name, NULL))
			return false;
		want++;
	}
	return in->n == want;
}

/* The one transaction (see the top of this file). */
static int transaction_build(const struct installed *in, const struct fw_model *m, struct fw_batch *b)
{
	fw_batch_begin(b, seq_next());
	if (in->odd_name) {
		/* Not ours to name: replace both tables whole (still atomic). */
		for (int fam = 0; fam < FW_N_FAMILIES; fam++)
			fw_batch_del_table(b, fam);
	} else {
		for (size_t i = 0; i < in->n; i++)
			if (in->v[i].chain)
				fw_batch_flush_chain(b, in->v[i].fam, in->v[i].name);
		for (size_t i = 0; i < in->n; i++)
			if (!in->v[i].chain)
				fw_batch_del_set(b, in->v[i].fam, in->v[i].name);
		for (size_t i = 0; i < in->n; i++)
			if (in->v[i].chain && in->v[i].base == NULL)
				fw_batch_del_chain(b, in->v[i].fam, in->v[i].name);
	}
	if (m != NULL)
		fw_batch_model(b, m);
	return fw_batch_end(b);
}

/* Send a sealed batch and read the kernel's answer: an error for any
 * failed message, else the acknowledgement of the last one. */
static int batch_send(struct mnl_socket *nl, const struct fw_batch *b, const char *what, char **err)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int size = (int)(b->len + 65536), n;
	uint32_t portid = mnl_socket_get_portid(nl);

	/* The whole batch is one datagram: the kernel reads it at once. */
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (mnl_socket_sendto(nl, b->buf, b->len) < 0)
		return fw_fail(err, "nft %s: sending %zu bytes: %s", what, b->len, strerror(errno));
	for (;;) {
		if ((n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0)
			return fw_fail(err, "nft %s: %s", what, strerror(errno));
		const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
		uint32_t seq = h->nlmsg_seq;
		n = mnl_cb_run(buf, (size_t)n, 0, portid, NULL, NULL);
		if (n < 0)
			return fw_fail(err, "nft %s: message %u of %u: %s", what, seq - b->first_seq,
				       b->seq - b->first_seq, strerror(errno));
		if (n == MNL_CB_STOP)
			return 0;
	}
}

int firewall_apply(const struct netstate *ns, char **err)
{
	struct fw_model m;
	struct fw_batch b = { 0 };
	struct installed in = { 0 };
	struct mnl_socket *nl = NULL;
	int rc = -1;
	double t0 = stat_now();
	enum stat_counter outcome = STAT_FIREWALL_FAILED;

	*err = NULL;
	if (fw_generate(ns, &m, err) < 0)
		return -1;
	if (sysctls_ensure(err) < 0 || (nl = nl_open(err)) == NULL)
		goto out;
	if (installed_list(nl, &in, err) < 0)
		goto out;
	if (installed_is(&in, &m)) {
		rc = 0;                 /* this version is in place: touch nothing */
		outcome = STAT_FIREWALL_UNCHANGED;
		goto out;
	}
	if (transaction_build(&in, &m, &b) < 0) {
		fw_fail(err, "out of memory");
		goto out;
	}
	rc = batch_send(nl, &b, "apply", err);
	if (rc == 0)
		outcome = STAT_FIREWALL_CHANGED;
out:
	stat_inc(outcome);
	stat_observe(HIST_FIREWALL, stat_now() - t0);
	fw_batch_free(&b);
	free(in.v);
	if (nl != NULL)
		mnl_socket_close(nl);
	fw_model_free(&m);
	return rc;
}

int firewall_remove(char **err)
{
	struct fw_batch b;
	struct installed none = { .odd_name = true };
	struct mnl_socket *nl;
	int rc;

	*err = NULL;
	if ((nl = nl_open(err)) == NULL)
		return -1;
	if (transaction_build(&none, NULL, &b) < 0)
		rc = fw_fail(err, "out of memory");
	else
		rc = batch_send(nl, &b, "remove", err);
	fw_batch_free(&b);
	mnl_socket_close(nl);
	return rc;
}
