/*
 * limit — token buckets per key for the metadata service: one table keyed
 * by the packet's source address (checked before anything costs), one
 * keyed by VM (checked once the caller is known).
 *
 * Keys live in a fixed table (no allocation per request) under a keyed
 * hash with a random key, so a guest cannot aim its keys at another's
 * slot.  Invariant: never looser than one bucket per key.
 *   - A key finds its own bucket within LIMIT_PROBE slots of its hash.
 *   - A slot is taken over only when its bucket has refilled to the brim:
 *     a full bucket is the same as none, so forgetting it gives nobody
 *     anything.
 *   - When every slot in reach holds a bucket still in use, the key shares
 *     the first of them: stricter, never looser.
 * Pure apart from the random hash key (the clock is the caller's).
 */
#ifndef HC_METADATA_LIMIT_H
#define HC_METADATA_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIMIT_KEY_BYTES 24
#define LIMIT_SLOTS 8192
#define LIMIT_PROBE 8

struct limit_table;

/* rate per second, burst tokens; rate <= 0: every take succeeds. */
struct limit_table *limit_new(double rate, double burst);
void limit_free(struct limit_table *t);
/* Take one token from key's bucket (len <= LIMIT_KEY_BYTES bytes). */
bool limit_take(struct limit_table *t, const void *key, size_t len, int64_t now_ms);

#endif
