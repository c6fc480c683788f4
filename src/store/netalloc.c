/*
 * netalloc — where a network's prefixes come from: checked against every
 * other network and the host's own routes, or allocated from a pool, in
 * the transaction that creates the network (store.h, net_policy).  Two
 * racing creates are serialised by the engine, so they never both take
 * one prefix.
 */
#include "store/store_internal.h"

#include "common/netpool.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Every prefix the store's networks use, IPv6 and IPv4. */
static int networks_used(struct store *st, struct prefix **v, size_t *n)
{
	struct network *nets = NULL;
	size_t count = 0;
	int rc = store_network_list(st, OWNER_ANY, &nets, &count);

	*v = rc == STORE_OK ? calloc(2 * count + 1, sizeof(**v)) : NULL;
	*n = 0;
	if (rc == STORE_OK && *v == NULL)
		rc = STORE_ERR;
	for (size_t i = 0; rc == STORE_OK && i < count; i++) {
		if (prefix_from_text(nets[i].ipv6, &(*v)[*n]))
			(*n)++;
		if (nets[i].ipv4 && prefix_from_text(nets[i].ipv4, &(*v)[*n]))
			(*n)++;
	}
	networks_free(nets, count);
	return rc;
}

/* routing (issue 13): the routed prefixes of VMs, appended to a list of
 * used prefixes — a network must not take one (its route would go). */
struct used_list {
	struct prefix **v;
	size_t *n;
	bool oom;
};

static int routed_row(void *arg, const struct sval *c, int ncols)
{
	struct used_list *u = arg;
	char text[INET6_ADDRSTRLEN + 8];
	struct prefix p, *nv;

	snprintf(text, sizeof(text), "%s/%lld", c[0].s ? c[0].s : "", (long long)c[1].i);
	if (!prefix_from_text(text, &p))
		return 0;
	if ((nv = realloc(*u->v, (*u->n + 1) * sizeof(*nv))) == NULL) {
		u->oom = true;
		return 1;
	}
	*u->v = nv;
	nv[(*u->n)++] = p;
	return 0;
}

static int routed_used(struct store *st, struct prefix **v, size_t *n)
{
	struct used_list u = { v, n, false };
	int rc = store_q(st, "SELECT address, len FROM prefixes", NULL, 0, routed_row, &u);
	return rc == STORE_OK && u.oom ? STORE_ERR : rc;
}

/* One prefix of the new network: the one asked for, if it overlaps
 * nothing, else the first free one of the pools.  out: canonical text. */
static int prefix_choose(const char *asked, const struct prefix *pools, size_t n_pools,
			 unsigned len, const struct prefix *used, size_t n_used,
			 struct net_policy *pol, const char *family, char out[64])
{
	struct prefix p, *taken;
	const struct prefix *hit;

	if (asked == NULL) {
		/* Networks and host alike are in the way of an allocation. */
		if ((taken = calloc(n_used + pol->n_host + 1, sizeof(*taken))) == NULL)
			return STORE_ERR;
		memcpy(taken, used, n_used * sizeof(*taken));
		memcpy(taken + n_used, pol->host, pol->n_host * sizeof(*taken));
		bool found = prefix_allocate(pools, n_pools, len, taken, n_used + pol->n_host, &p);
		free(taken);
		if (!found) {
			snprintf(pol->why, sizeof(pol->why), "no free %s subnet is left in %s", family,
				 n_pools ? "the tenant pool" : "any pool (none is configured)");
			return STORE_FULL;
		}
		prefix_text(&p, out, 64);
		return STORE_OK;
	}
	if (!prefix_from_text(asked, &p))
		return STORE_ERR;
	if ((hit = prefix_find_overlap(&p, used, n_used)) != NULL ||
	    (hit = prefix_find_overlap(&p, pol->host, pol->n_host)) != NULL) {
		char t[64];
		prefix_text(hit, t, sizeof(t));
		snprintf(pol->why, sizeof(pol->why), "%s overlaps %s %s", asked,
			 hit >= used && hit < used + n_used ? "the network of" : "the host's route or address",
			 t);
		return STORE_CONFLICT;
	}
	prefix_text(&p, out, 64);
	return STORE_OK;
}

int store_network_allocate(struct store *st, struct network *n, struct net_policy *pol)
{
	struct prefix *used = NULL;
	size_t n_used = 0;
	char v6[64], v4[64];
	int rc = store_tx_begin(st);

	pol->why[0] = '\0';
	if (rc == STORE_OK)
		rc = networks_used(st, &used, &n_used);
	if (rc == STORE_OK)
		rc = routed_used(st, &used, &n_used);
	if (rc == STORE_OK)
		rc = prefix_choose(n->ipv6, pol->pool6, pol->n_pool6, 64, used, n_used, pol,
				   "IPv6 /64", v6);
	if (rc == STORE_OK && (n->ipv4 || pol->want_ipv4))
		rc = prefix_choose(n->ipv4, pol->pool4, pol->n_pool4, 24, used, n_used, pol,
				   "IPv4 /24", v4);
	if (rc == STORE_OK) {
		struct network made = *n;
		made.ipv6 = v6;
		made.ipv4 = n->ipv4 || pol->want_ipv4 ? v4 : NULL;
		rc = store_network_create(st, &made);
		n->id = made.id;
		n->created = made.created;
	}
	free(used);
	return store_tx_end(st, rc);
}

int store_ula_prefix(struct store *st, char *out, size_t len)
{
	uint8_t a[16] = { 0xfd };
	char made[64];
	char *kept = NULL;
	int rc = store_tx_begin(st);

	/* RFC 4193 §3.2: fd00::/8 and a 40-bit pseudo-random Global ID. */
	randombytes_buf(a + 1, 5);
	struct prefix ula = prefix_make(AF_INET6, a, 48);
	prefix_text(&ula, made, sizeof(made));
	const char *m = made;
	struct sval p[] = { SV_S(m) };
	/* The first host to ask makes it; every later ask (any host) reads it. */
	if (rc == STORE_OK)
		rc = store_q(st, "INSERT INTO settings (name, value) VALUES ('ula_prefix', ?)"
			     " ON CONFLICT (name) DO NOTHING", p, 1, NULL, NULL);
	if (rc == STORE_OK)
		rc = store_q(st, "SELECT value FROM settings WHERE name = 'ula_prefix'", NULL, 0,
			     store_row_str, &kept);
	if (rc == STORE_OK && kept == NULL)
		rc = STORE_ERR;
	if (rc == STORE_OK)
		snprintf(out, len, "%s", kept);
	free(kept);
	return store_tx_end(st, rc);
}
