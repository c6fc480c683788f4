/*
 * token — bearer tokens for the API (DESIGN §8: login yields a token,
 * stored hashed, expiring, revocable).
 *
 * A token is "hct_" followed by 32 random bytes in unpadded base64url
 * (43 characters): 256 bits, so guessing one is hopeless and storing only
 * a fast hash is enough — no salt or slow hash is needed for a secret with
 * that much entropy.  The prefix makes tokens recognisable to secret
 * scanners and in logs that must not print them.
 *
 * Invariants: token_new output always passes token_looks_valid; the store
 * only ever sees token_hash output (64 lowercase hex digits).
 */
#ifndef HC_AUTH_TOKEN_H
#define HC_AUTH_TOKEN_H

#include <stdbool.h>

#define TOKEN_PREFIX     "hct_"
#define TOKEN_RANDOM_LEN 32
#define TOKEN_LEN        (4 + 43)       /* without the NUL */
#define TOKEN_HASH_LEN   64             /* hex digits, without the NUL */

/* A fresh token. */
void token_new(char out[TOKEN_LEN + 1]);

/* SHA-256 of the whole token text (prefix included) as lowercase hex: the
 * key under which the store keeps and finds it. */
void token_hash(const char *token, char out[TOKEN_HASH_LEN + 1]);

/* True when s has the shape of a token (prefix, length, alphabet): junk is
 * refused before the store is asked. */
bool token_looks_valid(const char *s);

#endif
