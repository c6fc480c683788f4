/*
 * imds_token — the session tokens of IMDSv2 (issue 11 item 13).
 *
 * A guest asks `PUT /latest/api/token` with a lifetime of 1..21600 s and
 * sends the token back in `X-aws-ec2-metadata-token` on its GETs.  A token
 * is 48 bytes in base64url without padding (64 characters):
 *
 *   [VM ID, 8 bytes big-endian][expiry, 8 bytes big-endian, ms of the
 *   monotonic clock][HMAC-SHA256 over a label and the 16 bytes before]
 *
 * Invariants: only the holder of the key can mint one (HMAC); the MAC is
 * compared in constant time before anything else in the token is believed;
 * a token names one VM and is good for that VM only, until its expiry.
 * The key is random per hcd process (metadata_start), so a restart of hcd
 * voids every token: clients get 401 and ask for a new one, as they must
 * after an expiry anyway.  Nothing is stored.
 *
 * Pure: the key and the clock are the caller's (unit tested).
 */
#ifndef HC_METADATA_IMDS_TOKEN_H
#define HC_METADATA_IMDS_TOKEN_H

#include <stdint.h>

#define IMDS_KEY_BYTES 32
#define IMDS_TOKEN_CHARS 64
#define IMDS_TTL_MAX 21600

#define IMDS_TOKEN_HEADER "X-aws-ec2-metadata-token"
#define IMDS_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds"

enum imds_check {
	IMDS_TOKEN_OK,
	IMDS_TOKEN_FORGED,     /* malformed, or not made with this key */
	IMDS_TOKEN_EXPIRED,
	IMDS_TOKEN_OTHER_VM,   /* genuine, but another VM's */
};

/* The lifetime a token request asks for: 1..IMDS_TTL_MAX decimal digits,
 * nothing else; -1 when s is NULL or anything else. */
int imds_ttl_parse(const char *s);

/* A token for vm, good for ttl_s seconds from now_ms. */
void imds_token_mint(const uint8_t key[IMDS_KEY_BYTES], uint64_t vm, int64_t now_ms, int ttl_s,
		     char out[IMDS_TOKEN_CHARS + 1]);

/* Whether token lets vm read at now_ms. */
enum imds_check imds_token_check(const uint8_t key[IMDS_KEY_BYTES], const char *token,
				 uint64_t vm, int64_t now_ms);

#endif
