/* sockkill — see sockkill.h. */
#include "net/sockkill.h"

#include "common/fsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct diag_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
};

static int nl_send(int fd, uint16_t type, uint16_t flags, const struct inet_diag_req_v2 *r)
{
	struct diag_req q = {
		.nlh = { .nlmsg_len = sizeof(q), .nlmsg_type = type,
			 .nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags) },
		.r = *r,
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	return sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -1 : 0;
}

/* The sockets of one family to the peer: the dump, then a destroy for
 * each match (on a second socket: the dump's replies keep coming). */
static int kill_family(int family, const void *peer, uint16_t port_be, char **err)
{
	int dump = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int ctl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	struct inet_diag_req_v2 all = { .sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
					.idiag_states = ~0u };
	size_t alen = family == AF_INET ? 4 : 16;
	char buf[16384];
	int killed = 0;
	bool over = false;

	if (dump < 0 || ctl < 0 || nl_send(dump, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &all) < 0) {
		*err = str_printf("sock_diag: %s", strerror(errno));
		killed = -1;
		goto out;
	}
	while (!over) {
		ssize_t n = recv(dump, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = str_printf("sock_diag: %s", n < 0 ? strerror(errno) : "no answer");
			killed = -1;
			break;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				over = true;
				break;
			}
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			if (m->id.idiag_dport != port_be || memcmp(m->id.idiag_dst, peer, alen) != 0)
				continue;
			struct inet_diag_req_v2 one = all;
			one.idiag_states = 1u << m->idiag_state;
			one.id = m->id;
			if (nl_send(ctl, SOCK_DESTROY, NLM_F_ACK, &one) == 0)
				killed++;
		}
	}
out:
	if (dump >= 0)
		close(dump);
	if (ctl >= 0)
		close(ctl);
	return killed;
}

int tcp_kill_peer(const char *addr, int port, char **err)
{
	unsigned char a[16] = { 0 };
	int family = inet_pton(AF_INET, addr, a) == 1 ? AF_INET :
		     inet_pton(AF_INET6, addr, a) == 1 ? AF_INET6 : 0;

	*err = NULL;
	if (family == 0 || port <= 0 || port > 65535) {
		*err = str_printf("not an address and port: %s %d", addr, port);
		return -1;
	}
	return kill_family(family, a, htons((uint16_t)port), err);
}
