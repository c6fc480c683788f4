/*
 * netpool — IP prefixes as values: overlap, containment, lists of them
 * and the first free subnet of a pool (issue 11, item 4: tenant pools and
 * the host's own routes).  Pure: no kernel, no store; unit tested.
 *
 * A prefix is a family, the address bytes (the first 4 for IPv4) and a
 * length; its host bits are always zero.
 */
#ifndef HC_NETPOOL_H
#define HC_NETPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prefix {
	int family;            /* AF_INET or AF_INET6 */
	uint8_t a[16];
	unsigned len;
};

/* "addr/len" (host bits zero) or a bare address (/32, /128). */
bool prefix_from_text(const char *s, struct prefix *p);
/* Address bytes and a length; the host bits are cleared. */
struct prefix prefix_make(int family, const void *addr, unsigned len);
/* Canonical "addr/len"; buf of at least 64 bytes. */
void prefix_text(const struct prefix *p, char *buf, size_t len);
/* Same family and one holds the other. */
bool prefix_overlap(const struct prefix *x, const struct prefix *y);
/* Same family and every address of inner is in outer. */
bool prefix_contains(const struct prefix *outer, const struct prefix *inner);
/* The first of set that overlaps p, or NULL. */
const struct prefix *prefix_find_overlap(const struct prefix *p, const struct prefix *set, size_t n);
/* The first of pools that contains p, or NULL. */
const struct prefix *prefix_find_container(const struct prefix *p, const struct prefix *pools,
					    size_t n);

/*
 * A comma-separated list of prefixes of one family ("fd00:1::/48,
 * 2001:db8::/56"; spaces allowed, empty text: none), each at most max_len
 * long (a pool must hold one subnet of the size handed out).  Appends to
 * *v (realloc'd) and *n; false, with the offending item in *bad (static
 * text or a pointer into s, at most 63 characters shown), on an error.
 */
bool prefix_list_parse(const char *s, int family, unsigned max_len, struct prefix **v, size_t *n,
		       char bad[64]);

/*
 * The first subnet of length len (or of the pool's own length when that
 * is longer) inside pools, in their order, that overlaps nothing in used.
 * False when every one is taken.
 */
bool prefix_allocate(const struct prefix *pools, size_t n_pools, unsigned len,
		     const struct prefix *used, size_t n_used, struct prefix *out);

#endif
