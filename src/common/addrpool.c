/* addrpool — see addrpool.h. */
#include "common/addrpool.h"

#include "common/config.h"
#include "common/fsutil.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct span6 span6_of(const struct in6_addr *addr, unsigned len)
{
	uint64_t hi = 0;

	for (int i = 0; i < 8; i++)
		hi = hi << 8 | addr->s6_addr[i];
	return (struct span6){ hi, len >= 64 ? hi : hi | (UINT64_MAX >> len) };
}

void span6_addr(uint64_t lo, struct in6_addr *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 7; i >= 0; i--, lo >>= 8)
		out->s6_addr[i] = (uint8_t)lo;
}

static int cmp_span6(const void *a, const void *b)
{
	const struct span6 *x = a, *y = b;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

static int cmp_span4(const void *a, const void *b)
{
	const struct span4 *x = a, *y = b;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

void pool6_free(struct pool6 *p)
{
	free(p->v);
	free(p->len);
	memset(p, 0, sizeof(*p));
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

int pool6_parse(const char *text, struct pool6 *out, char **err)
{
	const char *pos = text ? text : "";
	char item[96];
	size_t n = items_max(pos);

	memset(out, 0, sizeof(*out));
	*err = NULL;
	out->v = calloc(n + 1, sizeof(*out->v));
	out->len = calloc(n + 1, sizeof(*out->len));
	if (out->v == NULL || out->len == NULL)
		goto oom;
	while (next_item(&pos, item, sizeof(item))) {
		char canon[INET6_ADDRSTRLEN + 8];
		struct in6_addr a;
		int af;
		if (item[0] == '\0')
			continue;
		char *slash = strchr(item, '/');
		if (slash == NULL || !prefix_parse(item, &af, canon, sizeof(canon)) || af != AF_INET6) {
			*err = str_printf("prefix_pool: '%s' is not an IPv6 prefix with its host bits zero", item);
			goto fail;
		}
		unsigned len = (unsigned)atoi(strchr(canon, '/') + 1);
		*strchr(canon, '/') = '\0';
		inet_pton(AF_INET6, canon, &a);
		if (len < 16 || len > 64) {
			*err = str_printf("prefix_pool: '%s' must be /16 to /64", item);
			goto fail;
		}
		if (a.s6_addr[0] == 0xff || (a.s6_addr[0] == 0xfe && (a.s6_addr[1] & 0xc0) == 0x80) ||
		    (a.s6_addr[0] == 0 && a.s6_addr[1] == 0)) {
			*err = str_printf("prefix_pool: '%s' is not a global unicast prefix", item);
			goto fail;
		}
		out->len[out->n] = len;
		out->v[out->n++] = span6_of(&a, len);
	}
	/* Sorted with their lengths: a pair sort by hand (few items). */
	for (size_t i = 0; i < out->n; i++)
		for (size_t j = i + 1; j < out->n; j++)
			if (cmp_span6(&out->v[j], &out->v[i]) < 0) {
				struct span6 t = out->v[i];
				unsigned l = out->len[i];
				out->v[i] = out->v[j];
				out->len[i] = out->len[j];
				out->v[j] = t;
				out->len[j] = l;
			}
	for (size_t i = 1; i < out->n; i++)
		if (out->v[i].lo <= out->v[i - 1].hi) {
			*err = strdup("prefix_pool: its prefixes overlap");
			goto fail;
		}
	return 0;
oom:
	*err = strdup("out of memory");
fail:
	pool6_free(out);
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
	qsort(out->v, out->n, sizeof(*out->v), cmp_span4);
	for (size_t i = 1; i < out->n; i++)
		if (out->v[i].lo <= out->v[i - 1].hi) {
			*err = strdup("public_ipv4_pool: its items overlap");
			pool4_free(out);
			return -1;
		}
	return 0;
}

bool pool6_alloc(const struct pool6 *p, unsigned len, const struct span6 *taken, size_t n,
		 struct in6_addr *out)
{
	struct span6 *t;
	bool found = false;

	if (len < 16 || len > 64 || (t = malloc((n + 1) * sizeof(*t))) == NULL)
		return false;
	memcpy(t, taken, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_span6);
	/* 128-bit arithmetic: a candidate one past the last /64 must not wrap. */
	unsigned __int128 size = (unsigned __int128)1 << (64 - len);
	for (size_t i = 0; i < p->n && !found; i++) {
		if (len < p->len[i])
			continue;       /* longer than the pool item itself */
		unsigned __int128 c = p->v[i].lo, end = p->v[i].hi;
		for (size_t j = 0; j < n && c + size - 1 <= end; j++) {
			if (t[j].hi < c)
				continue;
			if (t[j].lo > c + size - 1)
				break;      /* the gap before it fits */
			/* Overlaps: the next aligned candidate after it. */
			c = ((unsigned __int128)t[j].hi + 1 + size - 1) / size * size;
		}
		if (c + size - 1 <= end) {
			span6_addr((uint64_t)c, out);
			found = true;
		}
	}
	free(t);
	return found;
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
	struct pool6 p6;
	struct pool4 p4;

	if (pool6_parse(c->prefix_pool, &p6, err) < 0)
		return -1;
	pool6_free(&p6);
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
	memcpy(t, taken, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_u32);
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
