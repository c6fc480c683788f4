/* server — see server.h. */
#include "metadata/server.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/stats.h"
#include "metadata/ident.h"
#include "metadata/imds_token.h"
#include "metadata/limit.h"
#include "metadata/tree.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BRIDGES_MAX 256
#define VM_SLOTS 4096

/* One listener per bridge for the link-local address: a link-local
 * bind needs its interface. */
struct md_link {
	unsigned ifindex;
	struct MHD_Daemon *d;
};

/* A VM as the store had it, by the ID of one of its NICs. */
struct vm_slot {
	uint64_t nic_id;
	uint64_t gen;           /* valid while equal to metadata_server.gen */
	int rc;                 /* of store_vm_by_nic: STORE_OK or STORE_NOTFOUND */
	struct vm vm;
};

struct metadata_server {
	struct store *st;
	int port;
	struct MHD_Daemon *d;           /* 169.254.169.254, all bridges */
	struct md_link links[BRIDGES_MAX];
	size_t n_links;
	/* Every daemon's own epoll descriptor in one: hcd polls one
	 * descriptor however many bridges there are, and a turn runs only
	 * the daemons that have something to do. */
	int epfd;
	struct ident *ident;
	struct limit_table *by_source, *by_vm;
	uint8_t token_key[IMDS_KEY_BYTES];
	uint64_t gen;                   /* of the store, as far as we know */
	struct vm_slot vms[VM_SLOTS];
	uint64_t requests, vm_loads;
};

void metadata_invalidate(struct metadata_server *s)
{
	if (s)
		s->gen++;
}

/* The VM owning nic_id, from the cache or the store; NULL when there is
 * none (or the store fails: then nothing is cached). */
static const struct vm *vm_of_nic(struct metadata_server *s, uint64_t nic_id)
{
	struct vm_slot *v = &s->vms[nic_id % VM_SLOTS];

	if (v->gen != s->gen || v->nic_id != nic_id) {
		vm_free(&v->vm);
		v->gen = 0;
		v->nic_id = nic_id;
		v->rc = store_vm_by_nic(s->st, nic_id, &v->vm);
		s->vm_loads++;
		if (v->rc != STORE_OK && v->rc != STORE_NOTFOUND)
			return NULL;
		v->gen = s->gen;
	}
	return v->rc == STORE_OK ? &v->vm : NULL;
}

/* The VM is live and the NIC is its own, on the network whose bridge the
 * neighbour entry was found on. */
static bool vm_owns(const struct vm *vm, uint64_t nic_id, uint64_t net_id)
{
	if (vm == NULL || strcmp(vm->desired, "deleted") == 0)
		return false;
	for (size_t i = 0; i < vm->n_nics; i++)
		if (vm->nics[i].id == nic_id)
			return vm->nics[i].network == net_id;
	return false;
}

static enum MHD_Result reply_with(struct MHD_Connection *c, int status, const char *type,
				  void *body, size_t len, bool must_free,
				  const char *h_name, const char *h_value)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
		must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	if (h_name)
		MHD_add_response_header(r, h_name, h_value);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

#define TEXT "text/plain"
#define STATIC(s) (void *)(s), sizeof(s) - 1, false
#define reply(c, status, text) reply_with(c, status, TEXT, STATIC(text), NULL, NULL)

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Replies on this connection leave with IP TTL / hop limit 1: a guest
 * that forwards packets (a container host, a NAT) cannot pass them on. */
static bool hop_limit_one(struct MHD_Connection *c, int family)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int one = 1;

	if (ci == NULL)
		return false;
	if (family == AF_INET)
		return setsockopt(ci->connect_fd, IPPROTO_IP, IP_TTL, &one, sizeof(one)) == 0;
	return setsockopt(ci->connect_fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &one, sizeof(one)) == 0;
}

/* PUT /latest/api/token for vm. */
static enum MHD_Result token_request(struct metadata_server *s, struct MHD_Connection *c,
				     const char *url, const struct vm *vm, int family)
{
	char token[IMDS_TOKEN_CHARS + 1], ttl_text[16];
	int ttl;

	while (*url == '/')
		url++;
	if (strcmp(url, "latest/api/token") != 0)
		return reply(c, 405, "method not allowed\n");
	/* A proxy in the guest relaying a request (an SSRF through it)
	 * announces itself this way; AWS refuses such requests too. */
	if (header(c, "X-Forwarded-For") != NULL)
		return reply(c, 403, "forwarded token requests are refused\n");
	if ((ttl = imds_ttl_parse(header(c, IMDS_TTL_HEADER))) < 0)
		return reply(c, 400, "X-aws-ec2-metadata-token-ttl-seconds must be 1..21600\n");
	if (!hop_limit_one(c, family)) {
		log_warn("metadata: cannot set the hop limit of a token reply: %s", strerror(errno));
		return reply(c, 500, "internal error\n");
	}
	imds_token_mint(s->token_key, vm->id, now_ms(), ttl, token);
	snprintf(ttl_text, sizeof(ttl_text), "%d", ttl);
	return reply_with(c, 200, TEXT, strdup(token), IMDS_TOKEN_CHARS, true, IMDS_TTL_HEADER, ttl_text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct metadata_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct ident_key key;
	uint64_t nic_id, net_id;
	const struct vm *vm;
	const char *token;
	bool put;
	struct md_reply r;

	if (*con_cls == NULL) {
		*con_cls = s; /* first call: headers only */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* the service takes no bodies */
		return MHD_YES;
	}
	s->requests++;
	stat_inc(STAT_METADATA_REQUESTS);
	put = strcmp(method, "PUT") == 0;
	if (!put && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, 405, "method not allowed\n");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || !ident_key_of(ci->client_addr, &key))
		return reply(conn, 403, "not a hackcloud guest\n");
	/* Before anything that costs: a flood from one address, guest or
	 * not, is turned away here. */
	if (!limit_take(s->by_source, &key, sizeof(key), now_ms())) {
		stat_inc(STAT_METADATA_THROTTLED);
		return reply(conn, 429, "slow down\n");
	}
	if (!ident_lookup(s->ident, &key, &nic_id, &net_id))
		return reply(conn, 403, "not a hackcloud guest\n");
	vm = vm_of_nic(s, nic_id);
	if (!vm_owns(vm, nic_id, net_id))
		return reply(conn, 403, "not a hackcloud guest\n");
	if (!limit_take(s->by_vm, &vm->id, sizeof(vm->id), now_ms())) {
		stat_inc(STAT_METADATA_THROTTLED);
		return reply(conn, 429, "slow down\n");
	}
	if (put)
		return token_request(s, conn, url, vm, ci->client_addr->sa_family);
	token = header(conn, IMDS_TOKEN_HEADER);
	if (token != NULL ? imds_token_check(s->token_key, token, vm->id, now_ms()) != IMDS_TOKEN_OK
			  : vm->metadata_tokens_required)
		return reply(conn, 401, "unauthorized\n");
	metadata_render(vm, url, &r);
	if (r.status != 200) {
		free(r.body);
		return reply(conn, 404, "not found\n");
	}
	return reply_with(conn, 200, r.type, r.body, r.len, true, NULL, NULL);
}

/* A daemon serving the listening socket fd (which it owns from now on,
 * even when it fails), its events joined to s->epfd. */
static struct MHD_Daemon *daemon_on(struct metadata_server *s, int fd)
{
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0,
						NULL, NULL, on_request, s,
						MHD_OPTION_LISTEN_SOCKET, fd,
						MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
						MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
						MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
						MHD_OPTION_END);
	const union MHD_DaemonInfo *di;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = d };

	if (d == NULL) {
		close(fd);
		return NULL;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL || epoll_ctl(s->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) < 0) {
		MHD_stop_daemon(d);   /* closes fd */
		return NULL;
	}
	return d;
}

static void daemon_off(struct metadata_server *s, struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);

	if (di)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, di->epoll_fd, NULL);
	MHD_stop_daemon(d);
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
		daemon_off(s, s->links[i].d);
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
			log_warn("metadata: cannot listen on [%s%%%u]:%d", METADATA_IPV6, want[j], s->port);
			continue;
		}
		s->links[s->n_links++] = (struct md_link){ .ifindex = want[j], .d = d };
	}
}

struct metadata_server *metadata_start(struct store *st, int port, int rate, char **err)
{
	struct metadata_server *s = NULL;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = -1, one = 1;

	*err = NULL;
	if (sodium_init() < 0 || (s = calloc(1, sizeof(*s))) == NULL) {
		*err = strdup("out of memory");
		return NULL;
	}
	s->st = st;
	s->port = port;
	s->gen = 1;
	s->epfd = -1;
	if ((s->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		*err = strdup(strerror(errno));
		goto fail;
	}
	randombytes_buf(s->token_key, sizeof(s->token_key));
	s->by_source = limit_new(rate, rate * 3.0);
	s->by_vm = limit_new(rate, rate * 3.0);
	if (s->by_source == NULL || s->by_vm == NULL) {
		*err = strdup("out of memory");
		goto fail;
	}
	if ((s->ident = ident_new(err)) == NULL)
		goto fail;
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
	fd = -1;   /* the daemon's now, or closed */
	if (s->d == NULL) {
		*err = strdup("libmicrohttpd cannot start");
		goto fail;
	}
	return s;
fail:
	if (fd >= 0)
		close(fd);
	metadata_stop(s);
	return NULL;
}

void metadata_stop(struct metadata_server *s)
{
	if (s == NULL)
		return;
	if (s->d)
		daemon_off(s, s->d);
	for (size_t i = 0; i < s->n_links; i++)
		daemon_off(s, s->links[i].d);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->ident && s->requests) {
		const struct ident_stats *is = ident_stats(s->ident);
		log_info("metadata: %llu requests; callers asked of the kernel %llu times,"
			 " VMs read from the store %llu times; %llu network changes heard",
			 (unsigned long long)s->requests, (unsigned long long)is->misses,
			 (unsigned long long)s->vm_loads, (unsigned long long)is->events);
	}
	for (size_t i = 0; i < VM_SLOTS; i++)
		vm_free(&s->vms[i].vm);
	ident_free(s->ident);
	limit_free(s->by_source);
	limit_free(s->by_vm);
	sodium_memzero(s->token_key, sizeof(s->token_key));
	free(s);
}

/* The i-th daemon: 0 is the IPv4 one, then one per bridge. */
static struct MHD_Daemon *daemon_at(struct metadata_server *s, size_t i)
{
	return i == 0 ? s->d : s->links[i - 1].d;
}

size_t metadata_fds(struct metadata_server *s, int *fds, size_t max)
{
	if (s == NULL || max == 0)
		return 0;
	fds[0] = s->epfd;
	return 1;
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
	struct epoll_event ev[64];
	int n;

	if (s == NULL)
		return;
	n = epoll_wait(s->epfd, ev, 64, 0);
	for (int i = 0; i < n; i++)
		MHD_run(ev[i].data.ptr);
	/* Work a daemon has in hand without a new event (connections that
	 * can still go on, a connection timeout due) shows as timeout 0. */
	for (size_t i = 0; i <= s->n_links; i++) {
		MHD_UNSIGNED_LONG_LONG t;
		struct MHD_Daemon *d = daemon_at(s, i);
		if (MHD_get_timeout(d, &t) == MHD_YES && t == 0)
			MHD_run(d);
	}
}
