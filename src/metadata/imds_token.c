/* imds_token — see imds_token.h. */
#include "metadata/imds_token.h"

#include <sodium.h>
#include <string.h>

#define BODY_BYTES 16
#define TOKEN_BYTES (BODY_BYTES + crypto_auth_hmacsha256_BYTES)

/* Domain separation: this key signs nothing else today, but a label
 * keeps it that way if it ever does. */
static const char label[] = "hackcloud imds token v1";

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void mac_of(const uint8_t key[IMDS_KEY_BYTES], const uint8_t body[BODY_BYTES],
		   uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, IMDS_KEY_BYTES);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_auth_hmacsha256_update(&st, body, BODY_BYTES);
	crypto_auth_hmacsha256_final(&st, mac);
}

int imds_ttl_parse(const char *s)
{
	int v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= IMDS_TTL_MAX ? v : -1;
}

void imds_token_mint(const uint8_t key[IMDS_KEY_BYTES], uint64_t vm, int64_t now_ms, int ttl_s,
		     char out[IMDS_TOKEN_CHARS + 1])
{
	uint8_t raw[TOKEN_BYTES];

	put_be64(raw, vm);
	put_be64(raw + 8, (uint64_t)(now_ms + (int64_t)ttl_s * 1000));
	mac_of(key, raw, raw + BODY_BYTES);
	sodium_bin2base64(out, IMDS_TOKEN_CHARS + 1, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

enum imds_check imds_token_check(const uint8_t key[IMDS_KEY_BYTES], const char *token,
				 uint64_t vm, int64_t now_ms)
{
	uint8_t raw[TOKEN_BYTES], mac[crypto_auth_hmacsha256_BYTES];
	size_t len = 0;

	if (token == NULL || strlen(token) != IMDS_TOKEN_CHARS ||
	    sodium_base642bin(raw, sizeof(raw), token, IMDS_TOKEN_CHARS, NULL, &len, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || len != sizeof(raw))
		return IMDS_TOKEN_FORGED;
	mac_of(key, raw, mac);
	if (crypto_verify_32(mac, raw + BODY_BYTES) != 0)
		return IMDS_TOKEN_FORGED;
	if ((int64_t)get_be64(raw + 8) <= now_ms)
		return IMDS_TOKEN_EXPIRED;
	return get_be64(raw) == vm ? IMDS_TOKEN_OK : IMDS_TOKEN_OTHER_VM;
}
