/* server — see server.h. */
#include "metadata/server.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "metadata/tree.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUCKET_RATE 20.0      /* requests per second, per VM */
#define BUCKET_BURST 60.0
#define BUCKETS_MAX 4096

struct bucket {
	uint64_t vm;
	double tokens;
	long long at;
};

struct metadata_server {
	struct store *st;
	struct MHD_Daemon *d;
	struct bucket buckets[BUCKETS_MAX];
	size_t n_buckets;
};

/* Token bucket per VM: false when this VM is over its rate. */
static bool bucket_take(struct metadata_server *s, uint64_t vm)
{
	long long now = now_ms();
	struct bucket *b = NULL;

	for (size_t i = 0; i < s->n_buckets && !b; i++)
		if (s->buckets[i].vm == vm)
			b = &s->buckets[i];
	if (b == NULL) {
		b = &s->buckets[s->n_buckets < BUCKETS_MAX ? s->n_buckets++ : (size_t)(vm % BUCKETS_MAX)];
		*b = (struct bucket){ .vm = vm, .tokens = BUCKET_BURST, .at = now };
	}
	b->tokens += (double)(now - b->at) / 1000.0 * BUCKET_RATE;
	if (b->tokens > BUCKET_BURST)
		b->tokens = BUCKET_BURST;
	b->at = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
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

struct metadata_server *metadata_start(struct store *st, int port, char **err)
{
	struct metadata_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = -1, one = 1;

	*err = NULL;
	if (s == NULL)
		return NULL;
	s->st = st;
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
	s->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0, NULL, NULL,
				on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
				MHD_OPTION_END);
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
	free(s);
}

int metadata_fd(struct metadata_server *s)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
	return di ? di->epoll_fd : -1;
}

long long metadata_timeout_ms(struct metadata_server *s)
{
	MHD_UNSIGNED_LONG_LONG t;
	return MHD_get_timeout(s->d, &t) == MHD_YES ? (long long)t : -1;
}

void metadata_run(struct metadata_server *s)
{
	MHD_run(s->d);
}
