/* addrpool — see addrpool.h. */
#include "common/addrpool.h"

#include "common/config.h"
#include "common/fsutil.h"
#include "common/netpool.h"
#include "common/validate.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static int cmp_span4(const void *a, const void *b)
{
	const struct span4 *x = a, *y = b;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

void pool4_free(struct pool4 *p)
{
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* The comma-separated items of text, each without surrounding blanks,
 * one after the other: *pos is where the next begins. */
static bool next_item(const char **pos, char *item, size_t len)
{
	const char *s = *pos + strspn(*pos, " \t");
	size_t n = strcspn(s, ",");

	if (*s == '\0')
		return false;
	*pos = s + n + (s[n] == ',');
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= len)
		n = len - 1;        /* too long for any address: refused by the parser */
	memcpy(item, s, n);
	item[n] = '\0';
	return true;
}

/* The most items a list can hold: one more than its commas. */
static size_t items_max(const char *text)
{
	size_t n = 1;

	for (; *text; text++)
		n += *text == ',';
	return n;
}

int prefix_pool_parse(const char *text, struct prefix **out, size_t *n, char **err)
{
	char bad[64];

	*out = NULL;
	*n = 0;
	*err = NULL;
	if (!prefix_list_parse(text ? text : "", AF_INET6, 64, out, n, bad)) {
		*err = str_printf("prefix_pool: '%s' is not an IPv6 prefix of at most /64 with its host bits"
				  " zero", bad);
		goto fail;
	}
	for (size_t i = 0; i < *n; i++) {
		const struct prefix *p = &(*out)[i];
		char t[64];
		prefix_text(p, t, sizeof(t));
		if (p->len < 16) {
			*err = str_printf("prefix_pool: '%s' must be /16 to /64", t);
			goto fail;
		}
		if (p->a[0] == 0xff || (p->a[0] == 0xfe && (p->a[1] & 0xc0) == 0x80) ||
		    (p->a[0] == 0 && p->a[1] == 0)) {
			*err = str_printf("prefix_pool: '%s' is not a global unicast prefix", t);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (prefix_overlap(p, &(*out)[j])) {
				*err = strdup("prefix_pool: its prefixes overlap");
				goto fail;
			}
	}
	return 0;
fail:
	free(*out);
	*out = NULL;
	*n = 0;
	return -1;
}

/* "a.b.c.d" into host order. */
static bool ipv4_parse(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

/* One item of the IPv4 pool: a CIDR, a range "A-B" or an address. */
static bool span4_parse(char *item, struct span4 *out)
{
	char *dash = strchr(item, '-'), *slash = strchr(item, '/');

	if (dash != NULL) {
		*dash = '\0';
		return ipv4_parse(item, &out->lo) && ipv4_parse(dash + 1, &out->hi) && out->lo <= out->hi;
	}
	if (slash != NULL) {
		char canon[INET6_ADDRSTRLEN + 8];
		int af;
		if (!prefix_parse(item, &af, canon, sizeof(canon)) || af != AF_INET)
			return false;
		unsigned len = (unsigned)atoi(slash + 1);
		*slash = '\0';
		if (len < 8 || !ipv4_parse(item, &out->lo))
			return false;
		out->hi = len == 32 ? out->lo : out->lo | (UINT32_MAX >> len);
		/* An on-link subnet's network and broadcast addresses are no
		 * host's (see addrpool.h). */
		if (len <= 30) {
			out->lo++;
			out->hi--;
		}
		return true;
	}
	return ipv4_parse(item, &out->lo) && (out->hi = out->lo, true);
}

/* Unicast, not loopback, link-local, "this network" or multicast. */
static bool span4_usable(const struct span4 *s)
{
	static const struct span4 bad[] = {
		{ 0x00000000u, 0x00ffffffu }, { 0x7f000000u, 0x7fffffffu },
		{ 0xa9fe0000u, 0xa9feffffu }, { 0xe0000000u, 0xffffffffu },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (s->lo <= bad[i].hi && bad[i].lo <= s->hi)
			return false;
	return true;
}

int pool4_parse(const char *text, struct pool4 *out, char **err)
{
	const char *pos = text ? text : "";
	char item[96];
	size_t n = items_max(pos);

	memset(out, 0, sizeof(*out));
	*err = NULL;
	if ((out->v = calloc(n + 1, sizeof(*out->v))) == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	while (next_item(&pos, item, sizeof(item))) {
		char orig[96];
		if (item[0] == '\0')
			continue;
		memcpy(orig, item, sizeof(orig));
		if (!span4_parse(item, &out->v[out->n]) || !span4_usable(&out->v[out->n])) {
			*err = str_printf("public_ipv4_pool: '%s' is not a usable CIDR, range or address", orig);
			pool4_free(out);
			return -1;
		}
		out->n++;
	}
	sort_array(out->v, out->n, sizeof(*out->v), cmp_span4);
	for (size_t i = 1; i < out->n; i++)
		if (out->v[i].lo <= out->v[i - 1].hi) {
			*err = strdup("public_ipv4_pool: its items overlap");
			pool4_free(out);
			return -1;
		}
	return 0;
}


bool prefix_suggested_address(const char *prefix, char *buf, size_t len)
{
	char canon[INET6_ADDRSTRLEN + 8];
	struct in6_addr a;
	int af;

	if (!prefix_parse(prefix, &af, canon, sizeof(canon)) || af != AF_INET6)
		return false;
	*strchr(canon, '/') = '\0';
	inet_pton(AF_INET6, canon, &a);
	a.s6_addr[15] |= 1;
	return inet_ntop(AF_INET6, &a, buf, (socklen_t)len) != NULL;
}

int addrpool_config_check(const struct config *c, char **err)
{
	struct prefix *p6 = NULL, *tenant = NULL;
	struct pool4 p4;
	size_t n6 = 0, nt = 0;
	char bad[64];

	if (prefix_pool_parse(c->prefix_pool, &p6, &n6, err) < 0)
		return -1;
	/* A network of a member must never come out of the routed prefixes
	 * (they would overlap): the two pools are apart. */
	if (prefix_list_parse(c->tenant_ipv6_pool, AF_INET6, 64, &tenant, &nt, bad))
		for (size_t i = 0; i < n6 && *err == NULL; i++)
			if (prefix_find_overlap(&p6[i], tenant, nt) != NULL)
				*err = strdup("prefix_pool overlaps tenant_ipv6_pool");
	free(p6);
	free(tenant);
	if (*err != NULL)
		return -1;
	if (pool4_parse(c->public_ipv4_pool, &p4, err) < 0)
		return -1;
	pool4_free(&p4);
	if (c->prefix_length < 16 || c->prefix_length > 64 || c->prefix_min_length < 16 ||
	    c->prefix_min_length > c->prefix_length) {
		*err = strdup("prefix_length must be 16..64 and prefix_min_length 16..prefix_length");
		return -1;
	}
	if (c->prefix_max_per_vm < 0 || c->prefix_max_per_user < 0 || c->public_ipv4_max_per_user < 0) {
		*err = strdup("prefix_max_per_vm, prefix_max_per_user and public_ipv4_max_per_user must not be negative");
		return -1;
	}
	return 0;
}

bool pool4_has(const struct pool4 *p, uint32_t addr)
{
	for (size_t i = 0; i < p->n; i++)
		if (addr >= p->v[i].lo && addr <= p->v[i].hi)
			return true;
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

bool pool4_alloc(const struct pool4 *p, const uint32_t *taken, size_t n, uint32_t *out)
{
	uint32_t *t = malloc((n + 1) * sizeof(*t));
	bool found = false;

	if (t == NULL)
		return false;
	/* Nothing taken may come as NULL, which memcpy must not get even
	 * for 0 bytes (found by fuzz_routes: the first public IPv4). */
	if (n > 0)
		memcpy(t, taken, n * sizeof(*t));
	sort_array(t, n, sizeof(*t), cmp_u32);
	for (size_t i = 0; i < p->n && !found; i++) {
		uint64_t c = p->v[i].lo;        /* 64 bits: one past 255.255.255.255 */
		for (size_t j = 0; j < n && c <= p->v[i].hi; j++)
			if (t[j] == c)
				c++;
			else if (t[j] > c)
				break;
		if (c <= p->v[i].hi) {
			*out = (uint32_t)c;
			found = true;
		}
	}
	free(t);
	return found;
}
