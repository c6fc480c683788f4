/*
 * codec — the JSON shape of every resource the API returns (DESIGN §9).
 * Pure: store models in, jansson values out (new references).
 */
#ifndef HC_CODEC_H
#define HC_CODEC_H

#include "store/store.h"

#include <jansson.h>

json_t *vm_to_json(const struct vm *vm);

/* JSON text built piece by piece (a list of 10,000 VMs is written, not
 * built as half a million jansson values).  failed: out of memory. */
struct jbuf {
	char *s;
	size_t len, cap;
	bool failed;
};
void jbuf_put(struct jbuf *b, const char *p, size_t n);
/* The VM exactly as vm_to_json has it, as compact JSON text appended to
 * b: only the members named in fields (a comma list; NULL: all; a NIC's
 * members as "nics.ipv6": those of each NIC, "nics": all of them). */
bool vm_json_write(const struct vm *vm, const char *fields, struct jbuf *b);
/* Is name (len bytes) a member of a VM object? */
bool vm_json_field_known(const char *name, size_t len);
json_t *image_to_json(const struct image *im);
json_t *network_to_json(const struct network *n);
json_t *host_to_json(const struct host *h);

/* The NIC's IPv6 address: the network's /64 + modified EUI-64 of its MAC.
 * Writes into buf (INET6_ADDRSTRLEN); false when the prefix is malformed. */
bool nic_ipv6(const char *prefix64, uint64_t nic_id, char *buf, size_t len);

/* Render an image ID (8 hex digits). */
/* Images, keys, users and tokens are 32-bit counters shown as 8 hex digits. */
void id8_format(uint64_t id, char buf[9]);

#endif
