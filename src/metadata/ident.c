/* ident — see ident.h. */
#include "metadata/ident.h"

#include "common/fsutil.h"
#include "common/ids.h"

#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_SLOTS 8192
#define CACHE_PROBE 8

struct entry {
	struct ident_key key;
	uint32_t gen;              /* valid only while equal to ident.gen */
	bool found;
	int oif;                   /* the interface it was resolved on, or 0 */
	uint64_t nic_id, net_id;
};

struct ident {
	int ev_fd;                 /* change notifications */
	int q_fd;                  /* our own requests */
	uint32_t gen;              /* never 0: 0 marks a dropped entry */
	uint32_t seq;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct ident_stats stats;
	struct entry cache[CACHE_SLOTS];
};

bool ident_key_of(const struct sockaddr *sa, struct ident_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->family = AF_INET;
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		k->family = AF_INET;
		memcpy(k->addr, &s6->sin6_addr.s6_addr[12], 4);
		return true;
	}
	k->family = AF_INET6;
	memcpy(k->addr, &s6->sin6_addr, 16);
	if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
		k->scope = s6->sin6_scope_id;
	return true;
}

/* ---- parsing what the kernel sends (pure) ------------------------------- */

/* The attributes of a message as an array indexed by type (NULL when
 * absent); false when the message is shorter than its fixed header. */
static bool attrs_of(const struct nlmsghdr *nh, size_t hdr_len, const struct rtattr **tb, int max)
{
	const struct rtattr *a;
	int rem;

	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	if (nh->nlmsg_len < NLMSG_LENGTH(hdr_len))
		return false;
	a = (const struct rtattr *)((const char *)NLMSG_DATA(nh) + NLMSG_ALIGN(hdr_len));
	rem = (int)nh->nlmsg_len - (int)NLMSG_LENGTH(hdr_len);
	for (; RTA_OK(a, rem); a = RTA_NEXT(a, rem))
		if (a->rta_type <= max)
			tb[a->rta_type] = a;
	return true;
}

static bool neigh_key(const struct nlmsghdr *nh, struct ident_key *k)
{
	const struct ndmsg *nd = NLMSG_DATA(nh);
	const struct rtattr *tb[NDA_MAX + 1];
	size_t alen;

	if (!attrs_of(nh, sizeof(*nd), tb, NDA_MAX) ||
	    (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6) || tb[NDA_DST] == NULL)
		return false;
	alen = nd->ndm_family == AF_INET ? 4 : 16;
	if (RTA_PAYLOAD(tb[NDA_DST]) != alen)
		return false;
	memset(k, 0, sizeof(*k));
	k->family = nd->ndm_family;
	memcpy(k->addr, RTA_DATA(tb[NDA_DST]), alen);
	if (k->family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)k->addr))
		k->scope = (uint32_t)nd->ndm_ifindex;
	return true;
}

void ident_parse_events(const void *buf, size_t len,
			void (*drop)(void *arg, const struct ident_key *k, int ifindex), void *arg)
{
	int rem = (int)len;

	for (const struct nlmsghdr *nh = buf; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem)) {
		struct ident_key k;
		switch (nh->nlmsg_type) {
		case RTM_NEWNEIGH:
		case RTM_DELNEIGH:
			/* Bridge FDB entries (AF_BRIDGE) say nothing of addresses. */
			if (neigh_key(nh, &k))
				drop(arg, &k, 0);
			break;
		case RTM_NEWLINK:
		case RTM_DELLINK:
			if (nh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
				drop(arg, NULL, ((const struct ifinfomsg *)NLMSG_DATA(nh))->ifi_index);
			else
				drop(arg, NULL, 0);
			break;
		case RTM_NEWROUTE:
		case RTM_DELROUTE:
			drop(arg, NULL, 0);
			break;
		default:
			break;
		}
	}
}

int ident_parse_route(const void *buf, size_t len)
{
	int rem = (int)len;

	for (const struct nlmsghdr *nh = buf; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem)) {
		const struct rtmsg *rt = NLMSG_DATA(nh);
		const struct rtattr *tb[RTA_MAX + 1];
		if (nh->nlmsg_type != RTM_NEWROUTE)
			continue;
		if (!attrs_of(nh, sizeof(*rt), tb, RTA_MAX) || rt->rtm_type != RTN_UNICAST ||
		    tb[RTA_GATEWAY] || tb[RTA_VIA] || tb[RTA_MULTIPATH] || tb[RTA_OIF] == NULL ||
		    RTA_PAYLOAD(tb[RTA_OIF]) != sizeof(int))
			return 0;
		int oif;
		memcpy(&oif, RTA_DATA(tb[RTA_OIF]), sizeof(oif));
		return oif > 0 ? oif : 0;
	}
	return 0;
}

bool ident_parse_neigh(const void *buf, size_t len, uint64_t *nic_id)
{
	int rem = (int)len;

	for (const struct nlmsghdr *nh = buf; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem)) {
		const struct ndmsg *nd = NLMSG_DATA(nh);
		const struct rtattr *tb[NDA_MAX + 1];
		if (nh->nlmsg_type != RTM_NEWNEIGH)
			continue;
		if (!attrs_of(nh, sizeof(*nd), tb, NDA_MAX) ||
		    (nd->ndm_state & (NUD_FAILED | NUD_INCOMPLETE)) || tb[NDA_LLADDR] == NULL ||
		    RTA_PAYLOAD(tb[NDA_LLADDR]) != 6)
			return false;
		const uint8_t *m = RTA_DATA(tb[NDA_LLADDR]);
		char mac[MAC_STRLEN + 1];
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 m[0], m[1], m[2], m[3], m[4], m[5]);
		return nic_mac_parse(mac, nic_id);
	}
	return false;
}

/* ---- the cache ---------------------------------------------------------- */

static uint64_t slot_of(const struct ident *id, const struct ident_key *k)
{
	uint64_t h;

	crypto_shorthash((uint8_t *)&h, (const uint8_t *)k, sizeof(*k), id->hash_key);
	return h;
}

static struct entry *cache_find(struct ident *id, const struct ident_key *k)
{
	uint64_t h = slot_of(id, k);

	for (size_t i = 0; i < CACHE_PROBE; i++) {
		struct entry *e = &id->cache[(h + i) % CACHE_SLOTS];
		if (e->gen == id->gen && memcmp(&e->key, k, sizeof(*k)) == 0)
			return e;
	}
	return NULL;
}

/* A slot for k: its own, a dropped one, or (evicting: a cache may forget)
 * the first in reach. */
static struct entry *cache_slot(struct ident *id, const struct ident_key *k)
{
	uint64_t h = slot_of(id, k);
	struct entry *e = cache_find(id, k);

	for (size_t i = 0; i < CACHE_PROBE && e == NULL; i++) {
		struct entry *c = &id->cache[(h + i) % CACHE_SLOTS];
		if (c->gen != id->gen)
			e = c;
	}
	return e ? e : &id->cache[h % CACHE_SLOTS];
}

static void drop_all(struct ident *id)
{
	if (++id->gen == 0)
		id->gen = 1;
	/* Entries from 2^32 generations ago would look valid again. */
	if (id->gen == 1)
		memset(id->cache, 0, sizeof(id->cache));
	id->stats.flushes++;
}

static void on_event(void *arg, const struct ident_key *k, int ifindex)
{
	struct ident *id = arg;
	struct entry *e;

	id->stats.events++;
	if (k != NULL) {
		if ((e = cache_find(id, k)) != NULL)
			e->gen = 0;
	} else if (ifindex > 0) {
		/* A link changed (a rename, a deletion): what was resolved
		 * through it; changes of bridge ports touch nothing cached. */
		for (size_t i = 0; i < CACHE_SLOTS; i++)
			if (id->cache[i].gen == id->gen && id->cache[i].oif == ifindex)
				id->cache[i].gen = 0;
	} else {
		drop_all(id);
	}
}

/* Read every notification that is there, without waiting. */
static void drain(struct ident *id)
{
	char buf[16384];

	for (;;) {
		/* MSG_TRUNC: the datagram's real length, so that one too
		 * big for buf is noticed rather than half read. */
		ssize_t n = recv(id->ev_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n > (ssize_t)sizeof(buf)) {
			drop_all(id);
			continue;
		}
		if (n > 0) {
			ident_parse_events(buf, (size_t)n, on_event, id);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
			return;
		/* ENOBUFS: the kernel dropped notifications; anything may have
		 * changed.  Any other error: the same, to be safe. */
		drop_all(id);
		if (n < 0 && errno != ENOBUFS)
			return;
	}
}

/* ---- asking the kernel -------------------------------------------------- */

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct rtmsg rt;
		struct ndmsg nd;
	};
	char attrs[64];
};

static void add_attr(struct nl_req *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Send one request and read its reply into buf; the reply's length, or
 * -1.  rtnetlink answers in the sender's context, so the reply is there
 * when send returns: nothing here ever waits. */
static ssize_t query(struct ident *id, struct nl_req *r, char *buf, size_t cap)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	r->nh.nlmsg_flags = NLM_F_REQUEST;
	r->nh.nlmsg_seq = ++id->seq;
	if (sendto(id->q_fd, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(id->q_fd, buf, cap, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof(struct nlmsghdr))
			return -1;
		/* A reply left over from an earlier request is skipped. */
		if (((struct nlmsghdr *)buf)->nlmsg_seq == id->seq)
			return n;
	}
}

/* Ask the kernel: route → interface → neighbour entry → NIC. */
static bool resolve(struct ident *id, const struct ident_key *k, int *oif_out,
		    uint64_t *nic_id, uint64_t *net_id)
{
	char buf[4096], name[IF_NAMESIZE];
	size_t alen = k->family == AF_INET ? 4 : 16;
	enum ifname_kind kind;
	int oif = (int)k->scope;
	ssize_t n;

	if (oif == 0) {
		struct nl_req r = { .nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
					    .nlmsg_type = RTM_GETROUTE } };
		r.rt.rtm_family = k->family;
		r.rt.rtm_dst_len = (unsigned char)(alen * 8);
		add_attr(&r, RTA_DST, k->addr, alen);
		if ((n = query(id, &r, buf, sizeof(buf))) < 0 ||
		    (oif = ident_parse_route(buf, (size_t)n)) == 0)
			return false;
	}
	*oif_out = oif;
	if (if_indextoname((unsigned)oif, name) == NULL || !ifname_parse(name, &kind, net_id) ||
	    kind != IFNAME_BRIDGE)
		return false;
	struct nl_req r = { .nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
				    .nlmsg_type = RTM_GETNEIGH } };
	r.nd.ndm_family = k->family;
	r.nd.ndm_ifindex = oif;
	add_attr(&r, NDA_DST, k->addr, alen);
	if ((n = query(id, &r, buf, sizeof(buf))) < 0)
		return false;
	return ident_parse_neigh(buf, (size_t)n, nic_id);
}

bool ident_lookup(struct ident *id, const struct ident_key *k, uint64_t *nic_id, uint64_t *net_id)
{
	struct entry *e;

	id->stats.lookups++;
	drain(id);
	if ((e = cache_find(id, k)) == NULL) {
		uint64_t nic = 0, net = 0;
		int oif = 0;
		bool found = resolve(id, k, &oif, &nic, &net);
		id->stats.misses++;
		/* Not drained again before caching: a change made while we
		 * asked must stay queued, so that the next lookup drops this
		 * answer rather than have it hide the change. */
		e = cache_slot(id, k);
		*e = (struct entry){ .key = *k, .gen = id->gen, .found = found, .oif = oif,
				     .nic_id = nic, .net_id = net };
	}
	*nic_id = e->nic_id;
	*net_id = e->net_id;
	return e->found;
}

/* ---- life --------------------------------------------------------------- */

static int nl_open(unsigned groups)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = groups };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	int size = 4 << 20;

	if (fd < 0)
		return -1;
	/* Room for bursts of changes (many VMs starting at once); beyond
	 * it ENOBUFS, after which everything is asked again. */
	if (groups && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct ident *ident_new(char **err)
{
	struct ident *id;

	*err = NULL;
	if (sodium_init() < 0 || (id = calloc(1, sizeof(*id))) == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	id->gen = 1;
	randombytes_buf(id->hash_key, sizeof(id->hash_key));
	/* Subscribed before the first answer is cached, so no change after
	 * it goes unheard. */
	id->ev_fd = nl_open(RTMGRP_NEIGH | RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	id->q_fd = nl_open(0);
	if (id->ev_fd < 0 || id->q_fd < 0) {
		*err = str_printf("netlink: %s", strerror(errno));
		ident_free(id);
		return NULL;
	}
	return id;
}

void ident_free(struct ident *id)
{
	if (id == NULL)
		return;
	if (id->ev_fd >= 0)
		close(id->ev_fd);
	if (id->q_fd >= 0)
		close(id->q_fd);
	free(id);
}

const struct ident_stats *ident_stats(const struct ident *id)
{
	return &id->stats;
}
