/* conntrack — see conntrack.h. */
#include "net/conntrack.h"

#include "common/fsutil.h"
#include "common/sort.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <stdlib.h>
#include <string.h>

static int cmp_map(const void *a, const void *b)
{
	const struct nat_map *x = a, *y = b;
	return (x->pub > y->pub) - (x->pub < y->pub);
}

bool conntrack_stale(const uint32_t addr[4], const struct pool4 *pool, const struct nat_map *map, size_t n)
{
	for (int i = 0; i < 4; i++) {
		if (!pool4_has(pool, addr[i]))
			continue;
		struct nat_map key = { .pub = addr[i] };
		const struct nat_map *m = search_array(&key, map, n, sizeof(*map), cmp_map);
		bool has_priv = false;
		for (int j = 0; m != NULL && j < 4 && !has_priv; j++)
			has_priv = addr[j] == m->priv;
		if (!has_priv)
			return true;
	}
	return false;
}

struct sweep {
	const struct pool4 *pool;
	const struct nat_map *map;
	size_t n;
	struct nf_conntrack **stale;
	size_t n_stale, cap;
	bool oom;
};

static int on_entry(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct sweep *s = data;
	const enum nf_conntrack_attr attrs[4] = { ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST, ATTR_REPL_IPV4_SRC,
						  ATTR_REPL_IPV4_DST };
	uint32_t addr[4];

	if (nfct_get_attr_u8(ct, ATTR_L3PROTO) != AF_INET)
		return NFCT_CB_CONTINUE;
	for (int i = 0; i < 4; i++)
		addr[i] = ntohl(nfct_get_attr_u32(ct, attrs[i]));
	if (!conntrack_stale(addr, s->pool, s->map, s->n))
		return NFCT_CB_CONTINUE;
	if (s->n_stale == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct nf_conntrack **v = realloc(s->stale, cap * sizeof(*v));
		if (v == NULL) {
			s->oom = true;
			return NFCT_CB_STOP;
		}
		s->stale = v;
		s->cap = cap;
	}
	if ((s->stale[s->n_stale] = nfct_clone(ct)) == NULL) {
		s->oom = true;
		return NFCT_CB_STOP;
	}
	s->n_stale++;
	return NFCT_CB_CONTINUE;
}

int conntrack_forget(const struct pool4 *pool, const struct nat_map *map, size_t n, size_t *removed,
		     char **err)
{
	struct sweep s = { .pool = pool, .map = map, .n = n };
	struct nfct_handle *h = NULL;
	uint32_t family = AF_INET;
	int rc = -1;

	*removed = 0;
	*err = NULL;
	if (pool->n == 0)
		return 0;               /* no pool, nothing of ours */
	if ((h = nfct_open(CONNTRACK, 0)) == NULL) {
		*err = str_printf("conntrack: %s", strerror(errno));
		return -1;
	}
	/* Collect first, delete after: no query while a dump is read. */
	nfct_callback_register(h, NFCT_T_ALL, on_entry, &s);
	if (nfct_query(h, NFCT_Q_DUMP, &family) < 0) {
		*err = str_printf("conntrack: listing: %s", strerror(errno));
		goto out;
	}
	if (s.oom) {
		*err = strdup("conntrack: out of memory");
		goto out;
	}
	for (size_t i = 0; i < s.n_stale; i++) {
		/* Gone already (it expired meanwhile) is as good. */
		if (nfct_query(h, NFCT_Q_DESTROY, s.stale[i]) == 0)
			(*removed)++;
		else if (errno != ENOENT && *err == NULL)
			*err = str_printf("conntrack: deleting: %s", strerror(errno));
	}
	rc = *err == NULL ? 0 : -1;
out:
	for (size_t i = 0; i < s.n_stale; i++)
		nfct_destroy(s.stale[i]);
	free(s.stale);
	nfct_close(h);
	return rc;
}
