/* server — see server.h. */
#include "metadata/server.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/ratelimit.h"
#include "common/stats.h"
#include "metadata/tree.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <net/if.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUCKETS_MAX 4096

struct bucket {
	uint64_t vm;
	struct rate_bucket rb;
};

#define BRIDGES_MAX 256

/* One listener per bridge for the link-local address: a link-local
 * bind needs its interface. */
struct md_link {
	unsigned ifindex;
	struct MHD_Daemon *d;
};

struct metadata_server {
	struct store *st;
	int port;
	double rate, burst;             /* per-VM token bucket; rate 0 = off */
	struct MHD_Daemon *d;           /* 169.254.169.254, all bridges */
	struct md_link links[BRIDGES_MAX];
	size_t n_links;
	struct bucket buckets[BUCKETS_MAX];
	size_t n_buckets;
};

/* Token bucket per VM: false when this VM is over its rate. */
static bool bucket_take(struct metadata_server *s, uint64_t vm)
{
	long long now = now_ms();
	struct bucket *b = NULL;

	if (s->rate <= 0)
		return true;
	for (size_t i = 0; i < s->n_buckets && !b; i++)
		if (s->buckets[i].vm == vm)
			b = &s->buckets[i];
	if (b == NULL) {
		b = &s->buckets[s->n_buckets < BUCKETS_MAX ? s->n_buckets++ : (size_t)(vm % BUCKETS_MAX)];
		b->vm = vm;
		ratelimit_fill(&b->rb, s->burst, now);
	}
	return ratelimit_take(&b->rb, s->rate, s->burst, now, NULL);
}

/* The NIC behind a source address: the neighbour entry on one of our
 * bridges ("b" + 6 hex) whose MAC is a hackcloud MAC. */
static bool nic_of_address(const struct sockaddr *sa, uint64_t *nic_id)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *neighs = NULL, *links = NULL;
	struct nl_addr *want = NULL;
	bool found = false;

	if (sk == NULL || nl_connect(sk, NETLINK_ROUTE) < 0)
		goto out;
	if (sa->sa_family == AF_INET)
		want = nl_addr_build(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		want = nl_addr_build(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	if (want == NULL || rtnl_neigh_alloc_cache(sk, &neighs) < 0 ||
	    rtnl_link_alloc_cache(sk, AF_UNSPEC, &links) < 0)
		goto out;
	for (struct nl_object *o = nl_cache_get_first(neighs); o && !found; o = nl_cache_get_next(o)) {
		struct rtnl_neigh *n = (struct rtnl_neigh *)o;
		struct nl_addr *dst = rtnl_neigh_get_dst(n), *ll = rtnl_neigh_get_lladdr(n);
		char ifname[IFNAME_MAXLEN + 1], mac[32];
		enum ifname_kind kind;
		uint64_t id;
		if (dst == NULL || ll == NULL || nl_addr_cmp(dst, want) != 0)
			continue;
		if (rtnl_neigh_get_state(n) & (NUD_FAILED | NUD_INCOMPLETE))
			continue;
		if (!rtnl_link_i2name(links, rtnl_neigh_get_ifindex(n), ifname, sizeof(ifname)) ||
		    !ifname_parse(ifname, &kind, &id) || kind != IFNAME_BRIDGE)
			continue;
		nl_addr2str(ll, mac, sizeof(mac));
		found = nic_mac_parse(mac, nic_id);
	}
out:
	nl_addr_put(want);
	if (neighs)
		nl_cache_free(neighs);
	if (links)
		nl_cache_free(links);
	nl_socket_free(sk);
	return found;
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *type,
			     void *body, size_t len, bool must_free)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
		must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

#define STATIC(s) (void *)(s), sizeof(s) - 1, false

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct metadata_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	uint64_t nic_id;
	struct vm vm = { 0 };
	struct md_reply r;

	if (*con_cls == NULL) {
		*con_cls = s; /* first call: headers only */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* the service takes no bodies */
		return MHD_YES;
	}
	stat_inc(STAT_METADATA_REQUESTS);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, 405, "text/plain", STATIC("method not allowed\n"));
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || !nic_of_address(ci->client_addr, &nic_id))
		return reply(conn, 403, "text/plain", STATIC("not a hackcloud guest\n"));
	if (store_vm_by_nic(s->st, nic_id, &vm) != STORE_OK || strcmp(vm.desired, "deleted") == 0) {
		vm_free(&vm);
		return reply(conn, 403, "text/plain", STATIC("not a hackcloud guest\n"));
	}
	if (!bucket_take(s, vm.id)) {
		vm_free(&vm);
		stat_inc(STAT_METADATA_THROTTLED);
		return reply(conn, 429, "text/plain", STATIC("slow down\n"));
	}
	metadata_render(&vm, url, &r);
	vm_free(&vm);
	if (r.status != 200) {
		free(r.body);
		return reply(conn, 404, "text/plain", STATIC("not found\n"));
	}
	return reply(conn, 200, r.type, r.body, r.len, true);
}

static struct MHD_Daemon *daemon_on(struct metadata_server *s, int fd)
{
	return MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0, NULL, NULL,
				on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
				MHD_OPTION_END);
}

/* [fe80::a9fe:a9fe%bridge]:port; -1 on failure. */
static int listen_link_local(unsigned ifindex, int port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				   .sin6_scope_id = ifindex };
	int fd, one = 1;

	inet_pton(AF_INET6, METADATA_IPV6, &sa.sin6_addr);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void metadata_sync(struct metadata_server *s)
{
	struct network *nets = NULL;
	size_t n = 0;
	unsigned want[BRIDGES_MAX];
	size_t n_want = 0;

	if (s == NULL || store_network_list(s->st, OWNER_ANY, &nets, &n) != STORE_OK)
		return;
	for (size_t i = 0; i < n && n_want < BRIDGES_MAX; i++) {
		unsigned idx = if_nametoindex(ifname_bridge(nets[i].id).s);
		if (idx)
			want[n_want++] = idx;
	}
	networks_free(nets, n);
	/* Drop listeners of bridges that went (or were re-created). */
	for (size_t i = 0; i < s->n_links;) {
		bool keep = false;
		for (size_t j = 0; j < n_want && !keep; j++)
			keep = want[j] == s->links[i].ifindex;
		if (keep) {
			i++;
			continue;
		}
		MHD_stop_daemon(s->links[i].d);
		s->links[i] = s->links[--s->n_links];
	}
	for (size_t j = 0; j < n_want; j++) {
		bool have = false;
		for (size_t i = 0; i < s->n_links && !have; i++)
			have = s->links[i].ifindex == want[j];
		if (have || s->n_links == BRIDGES_MAX)
			continue;
		int fd = listen_link_local(want[j], s->port);
		struct MHD_Daemon *d = fd >= 0 ? daemon_on(s, fd) : NULL;
		if (d == NULL) {
			if (fd >= 0)
				close(fd);
			log_warn("metadata: cannot listen on [%s%%%u]:%d", METADATA_IPV6, want[j], s->port);
			continue;
		}
		s->links[s->n_links++] = (struct md_link){ .ifindex = want[j], .d = d };
	}
}

struct metadata_server *metadata_start(struct store *st, int port, int rate, char **err)
{
	struct metadata_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = -1, one = 1;

	*err = NULL;
	if (s == NULL)
		return NULL;
	s->st = st;
	s->port = port;
	s->rate = rate;
	s->burst = rate * 3.0;
	inet_pton(AF_INET, METADATA_IPV4, &sa.sin_addr);
	/* FREEBIND: the address appears on the bridges only as networks are
	 * created; the socket is bound once, before any exists. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		*err = strdup(strerror(errno));
		goto fail;
	}
	s->d = daemon_on(s, fd);
	if (s->d == NULL) {
		*err = strdup("libmicrohttpd cannot start");
		goto fail;
	}
	return s;
fail:
	if (fd >= 0)
		close(fd);
	free(s);
	return NULL;
}

void metadata_stop(struct metadata_server *s)
{
	if (s == NULL)
		return;
	if (s->d)
		MHD_stop_daemon(s->d);
	for (size_t i = 0; i < s->n_links; i++)
		MHD_stop_daemon(s->links[i].d);
	free(s);
}

/* The i-th daemon: 0 is the IPv4 one, then one per bridge. */
static struct MHD_Daemon *daemon_at(struct metadata_server *s, size_t i)
{
	return i == 0 ? s->d : s->links[i - 1].d;
}

size_t metadata_fds(struct metadata_server *s, int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; s && i <= s->n_links && n < max; i++) {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_at(s, i),
								     MHD_DAEMON_INFO_EPOLL_FD);
		if (di)
			fds[n++] = di->epoll_fd;
	}
	return n;
}

long long metadata_timeout_ms(struct metadata_server *s)
{
	long long best = -1;

	for (size_t i = 0; s && i <= s->n_links; i++) {
		MHD_UNSIGNED_LONG_LONG t;
		if (MHD_get_timeout(daemon_at(s, i), &t) == MHD_YES && (best < 0 || (long long)t < best))
			best = (long long)t;
	}
	return best;
}

void metadata_run(struct metadata_server *s)
{
	for (size_t i = 0; s && i <= s->n_links; i++)
		MHD_run(daemon_at(s, i));
}
