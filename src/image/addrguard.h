/*
 * image/addrguard — which servers a member's URL import may connect to
 * (issue 11, SSRF): the classification of one address, pure, and the
 * host's own addresses, read from the kernel.
 *
 * An import turns whatever a server answers into a disk its owner can
 * read, so a member must not make hcd fetch from anything only hcd can
 * reach.  Refused, whatever import_allow says:
 *   - every address of this host (every interface of hcd's network
 *     namespace: bridge gateways, the uplink, loopback) and the metadata
 *     service's addresses (169.254.169.254, fd00:ec2::254);
 *   - the prefixes of hackcloud networks (other tenants' guests);
 *   - loopback, link-local, multicast, unspecified and reserved addresses;
 * and, unless import_allow covers them, private and ULA ranges
 * (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10).
 * IPv4 written inside IPv6 (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d)
 * is judged as that IPv4 address.  Admins are not asked (their imports
 * may use local servers).
 */
#ifndef HC_IMAGE_ADDRGUARD_H
#define HC_IMAGE_ADDRGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* An address or prefix, always in IPv6 space (IPv4 as ::ffff:0:0/96). */
struct addr_prefix {
	unsigned char a[16];
	unsigned len;
};

struct addr_list {
	struct addr_prefix *v;
	size_t n;
};

enum addr_class {
	ADDR_PUBLIC,          /* fine */
	ADDR_ALLOWED,         /* private, but import_allow covers it: fine */
	ADDR_PRIVATE,
	ADDR_HOST,            /* an address of this host or its metadata service */
	ADDR_NETWORK,         /* inside a hackcloud network */
	ADDR_LOOPBACK,
	ADDR_LINK_LOCAL,
	ADDR_SPECIAL,         /* unspecified, multicast, broadcast, reserved */
};

struct addr_policy {
	struct addr_list host;      /* this host's addresses (/128 each) */
	struct addr_list networks;  /* hackcloud network prefixes */
	struct addr_list allow;     /* import_allow */
};

/* "a/len" or a bare address (/32, /128) appended; -1 when not one. */
int addr_list_add(struct addr_list *l, const char *text);
/* A comma-separated list (spaces allowed); -1 and a malloc'd message naming
 * the bad entry. */
int addr_list_parse(struct addr_list *l, const char *csv, char **err);
int addr_list_copy(struct addr_list *dst, const struct addr_list *src);
void addr_list_free(struct addr_list *l);

/* A socket address (AF_INET/AF_INET6) in IPv6 space: IPv4 as ::ffff:a.b.c.d,
 * IPv6 as it is (addr_classify judges the IPv4 it may carry).  -1 for
 * other families. */
int addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16]);
/* The same from text. */
int addr_from_text(const char *text, unsigned char out[16]);

/* Pure: the class of a (normalised) address under a policy. */
enum addr_class addr_classify(const unsigned char a[16], const struct addr_policy *p);
/* Whether a member may connect there. */
bool addr_class_ok(enum addr_class c);
/* "an address of this host", … — for the message the owner reads. */
const char *addr_class_text(enum addr_class c);

/* Every address on every interface of this network namespace, replacing
 * l's content.  -1 with errno set. */
int addr_host_addresses(struct addr_list *l);

void addr_policy_free(struct addr_policy *p);

#endif
