/* image/addrguard — see addrguard.h. */
#include "image/addrguard.h"

#include "common/fsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Prefixes in IPv6 space: the IPv4 ones carry the ::ffff:0:0/96 head. */
#define V4(a, b, c, d, len) { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d }, 96 + (len) }

static const struct addr_prefix loopback[] = {
	{ { [15] = 1 }, 128 },                 /* ::1 */
	V4(127, 0, 0, 0, 8),
};
static const struct addr_prefix link_local[] = {
	{ { 0xfe, 0x80 }, 10 },
	V4(169, 254, 0, 0, 16),                /* 169.254.169.254 among them */
};
static const struct addr_prefix special[] = {
	{ { 0 }, 128 },                        /* :: */
	{ { 0xff }, 8 },                       /* multicast */
	V4(0, 0, 0, 0, 8),                     /* "this network": 0.0.0.0 reaches the host */
	V4(224, 0, 0, 0, 4),                   /* multicast */
	V4(240, 0, 0, 0, 4),                   /* reserved, broadcast */
};
static const struct addr_prefix metadata[] = {
	/* The EC2-style metadata service's IPv6 address. */
	{ { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 }, 128 },  /* fd00:ec2::254 */
};
static const struct addr_prefix private_ranges[] = {
	V4(10, 0, 0, 0, 8),
	V4(172, 16, 0, 0, 12),
	V4(192, 168, 0, 0, 16),
	V4(100, 64, 0, 0, 10),                 /* shared address space (CGNAT) */
	{ { 0xfc }, 7 },                       /* ULA */
	{ { 0xfe, 0xc0 }, 10 },                /* site-local (deprecated, still private) */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool in_prefix(const unsigned char a[16], const struct addr_prefix *p)
{
	unsigned full = p->len / 8, rest = p->len % 8;

	if (memcmp(a, p->a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (p->a[full] & mask);
}

static bool in_any(const unsigned char a[16], const struct addr_prefix *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (in_prefix(a, &v[i]))
			return true;
	return false;
}

/* IPv4 carried inside IPv6 reaches that IPv4 address: judge it as such. */
static void normalise(unsigned char a[16])
{
	static const unsigned char compat[12] = { 0 };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	bool is_compat = memcmp(a, compat, 12) == 0 &&
			 (a[12] | a[13] | a[14]) != 0;    /* not :: or ::1 */

	if (is_compat || memcmp(a, nat64, 12) == 0) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
	}
}

int addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		return -1;
	}
	return 0;
}

int addr_from_text(const char *text, unsigned char out[16])
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	if (text && inet_pton(AF_INET6, text, &s6.sin6_addr) == 1)
		return addr_from_sockaddr((struct sockaddr *)&s6, out);
	if (text && inet_pton(AF_INET, text, &s4.sin_addr) == 1)
		return addr_from_sockaddr((struct sockaddr *)&s4, out);
	return -1;
}

static int list_push(struct addr_list *l, const struct addr_prefix *p)
{
	struct addr_prefix *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));

	if (nv == NULL)
		return -1;
	l->v = nv;
	l->v[l->n++] = *p;
	return 0;
}

int addr_list_add(struct addr_list *l, const char *text)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	struct addr_prefix p;
	unsigned long len;
	char *end;

	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	bool v4 = strchr(addr, ':') == NULL;
	if (addr_from_text(addr, p.a) < 0)
		return -1;
	if (slash) {
		/* Digits only: strtoul would also take " 24", "+24" and "-0"
		 * (a /0 that covers everything; found by fuzz_addrguard). */
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || len > (v4 ? 32u : 128u))
			return -1;
	} else {
		len = v4 ? 32 : 128;
	}
	p.len = (unsigned)len + (v4 ? 96 : 0);
	return list_push(l, &p);
}

int addr_list_parse(struct addr_list *l, const char *csv, char **err)
{
	char *copy = strdup(csv ? csv : ""), *save = NULL;

	*err = NULL;
	if (copy == NULL)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		char *e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*tok && addr_list_add(l, tok) < 0) {
			*err = str_printf("'%s' is not an address or CIDR prefix", tok);
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

int addr_list_copy(struct addr_list *dst, const struct addr_list *src)
{
	dst->v = NULL;
	dst->n = 0;
	if (src->n == 0)
		return 0;
	dst->v = malloc(src->n * sizeof(*dst->v));
	if (dst->v == NULL)
		return -1;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = src->n;
	return 0;
}

void addr_list_free(struct addr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void addr_policy_free(struct addr_policy *p)
{
	addr_list_free(&p->host);
	addr_list_free(&p->networks);
	addr_list_free(&p->allow);
}

static enum addr_class classify_one(const unsigned char a[16], const struct addr_policy *p)
{
	/* The most specific reason first: the message should say it. */
	if (in_any(a, loopback, N(loopback)))
		return ADDR_LOOPBACK;
	if (in_any(a, p->host.v, p->host.n) || in_any(a, metadata, N(metadata)))
		return ADDR_HOST;
	if (in_any(a, link_local, N(link_local)))
		return ADDR_LINK_LOCAL;
	if (in_any(a, special, N(special)))
		return ADDR_SPECIAL;
	if (in_any(a, p->networks.v, p->networks.n))
		return ADDR_NETWORK;
	if (in_any(a, private_ranges, N(private_ranges)))
		return in_any(a, p->allow.v, p->allow.n) ? ADDR_ALLOWED : ADDR_PRIVATE;
	return ADDR_PUBLIC;
}

enum addr_class addr_classify(const unsigned char addr[16], const struct addr_policy *p)
{
	unsigned char v4[16];
	enum addr_class c = classify_one(addr, p);

	/* An IPv6 address that carries IPv4 is judged as both: packets go to
	 * it as written (a hackcloud network or this host may hold it), and a
	 * translator takes them on to the IPv4 address.  The stricter wins.
	 * Lists keep prefixes as written, so their meaning never shifts. */
	memcpy(v4, addr, 16);
	normalise(v4);
	if (!addr_class_ok(c) || memcmp(v4, addr, 16) == 0)
		return c;
	return classify_one(v4, p);
}

bool addr_class_ok(enum addr_class c)
{
	return c == ADDR_PUBLIC || c == ADDR_ALLOWED;
}

const char *addr_class_text(enum addr_class c)
{
	switch (c) {
	case ADDR_PUBLIC:
	case ADDR_ALLOWED:
		return "a server elsewhere";
	case ADDR_PRIVATE:
		return "a private address (the operator may allow it with import_allow)";
	case ADDR_HOST:
		return "an address of this host";
	case ADDR_NETWORK:
		return "an address inside a hackcloud network";
	case ADDR_LOOPBACK:
		return "a loopback address of this host";
	case ADDR_LINK_LOCAL:
		return "a link-local address of this host's links";
	case ADDR_SPECIAL:
		return "not a unicast server address";
	}
	return "?";
}

int addr_host_addresses(struct addr_list *l)
{
	struct ifaddrs *ifs = NULL;

	addr_list_free(l);
	if (getifaddrs(&ifs) < 0)
		return -1;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		struct addr_prefix p = { .len = 128 };
		if (i->ifa_addr == NULL || addr_from_sockaddr(i->ifa_addr, p.a) < 0)
			continue;
		if (list_push(l, &p) < 0) {
			freeifaddrs(ifs);
			errno = ENOMEM;
			return -1;
		}
	}
	freeifaddrs(ifs);
	return 0;
}
