/* netpool — see netpool.h. */
#include "common/netpool.h"

#include "common/validate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static unsigned family_bits(int family)
{
	return family == AF_INET6 ? 128 : 32;
}

static bool bit(const uint8_t *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

struct prefix prefix_make(int family, const void *addr, unsigned len)
{
	struct prefix p = { .family = family, .len = len };
	unsigned bits = family_bits(family);

	memcpy(p.a, addr, bits / 8);
	if (p.len > bits)
		p.len = bits;
	for (unsigned i = p.len; i < bits; i++)
		p.a[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
	return p;
}

bool prefix_from_text(const char *s, struct prefix *p)
{
	char canon[INET6_ADDRSTRLEN + 8], *slash;
	uint8_t a[16];
	int family;

	if (!prefix_parse(s, &family, canon, sizeof(canon)) || (slash = strchr(canon, '/')) == NULL)
		return false;
	*slash = '\0';
	if (inet_pton(family, canon, a) != 1)
		return false;
	*p = prefix_make(family, a, (unsigned)strtoul(slash + 1, NULL, 10));
	return true;
}

void prefix_text(const struct prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->a, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, p->len);
}

/* The first n bits of x and y agree. */
static bool same_bits(const uint8_t *x, const uint8_t *y, unsigned n)
{
	if (memcmp(x, y, n / 8) != 0)
		return false;
	for (unsigned i = n / 8 * 8; i < n; i++)
		if (bit(x, i) != bit(y, i))
			return false;
	return true;
}

bool prefix_overlap(const struct prefix *x, const struct prefix *y)
{
	return x->family == y->family && same_bits(x->a, y->a, x->len < y->len ? x->len : y->len);
}

bool prefix_contains(const struct prefix *outer, const struct prefix *inner)
{
	return outer->family == inner->family && outer->len <= inner->len &&
	       same_bits(outer->a, inner->a, outer->len);
}

const struct prefix *prefix_find_overlap(const struct prefix *p, const struct prefix *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (prefix_overlap(p, &set[i]))
			return &set[i];
	return NULL;
}

const struct prefix *prefix_find_container(const struct prefix *p, const struct prefix *pools,
					    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (prefix_contains(&pools[i], p))
			return &pools[i];
	return NULL;
}

bool prefix_list_parse(const char *s, int family, unsigned max_len, struct prefix **v, size_t *n,
		       char bad[64])
{
	const char *item = s;

	while (item && *item) {
		char text[INET6_ADDRSTRLEN + 8];
		size_t len = strcspn(item, ",");
		const char *b = item, *e = item + len;
		struct prefix p;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b) {
			snprintf(bad, 64, "%.*s", (int)(e - b), b);
			if ((size_t)(e - b) >= sizeof(text))
				return false;
			memcpy(text, b, (size_t)(e - b));
			text[e - b] = '\0';
			if (!prefix_from_text(text, &p) || p.family != family || p.len > max_len)
				return false;
			struct prefix *nv = realloc(*v, (*n + 1) * sizeof(*nv));
			if (nv == NULL) {
				snprintf(bad, 64, "out of memory");
				return false;
			}
			*v = nv;
			nv[(*n)++] = p;
		}
		item = item[len] ? item + len + 1 : NULL;
	}
	return true;
}

/* p + 1 subnet of its own length; false when that leaves the family. */
static bool prefix_next(struct prefix *p)
{
	for (int i = (int)p->len - 1; i >= 0; i--) {
		uint8_t m = (uint8_t)(0x80 >> (i % 8));
		if (!(p->a[i / 8] & m)) {
			p->a[i / 8] |= m;
			return true;
		}
		p->a[i / 8] &= (uint8_t)~m;
	}
	return false;
}

/* The last subnet of length len that u covers (u as long as len or
 * shorter), or u's own subnet of length len when u is longer. */
static struct prefix last_within(const struct prefix *u, unsigned len)
{
	struct prefix q = *u;

	for (unsigned i = u->len; i < len; i++)
		q.a[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	q.len = len;
	return prefix_make(q.family, q.a, len);
}

bool prefix_allocate(const struct prefix *pools, size_t n_pools, unsigned len,
		     const struct prefix *used, size_t n_used, struct prefix *out)
{
	for (size_t i = 0; i < n_pools; i++) {
		const struct prefix *pool = &pools[i];
		struct prefix c = prefix_make(pool->family, pool->a, len > pool->len ? len : pool->len);
		for (;;) {
			const struct prefix *u = prefix_find_overlap(&c, used, n_used);
			if (u == NULL) {
				*out = c;
				return true;
			}
			/* Skip every candidate u covers at once: the search
			 * visits at most one candidate per used prefix. */
			if (u->len < c.len)
				c = last_within(u, c.len);
			if (!prefix_next(&c) || !prefix_contains(pool, &c))
				break;
		}
	}
	return false;
}
