/* token — see token.h. */
#include "auth/token.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(TOKEN_LEN == sizeof(TOKEN_PREFIX) - 1 +
	       sodium_base64_ENCODED_LEN(TOKEN_RANDOM_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1,
	       "token length");

void token_new(char out[TOKEN_LEN + 1])
{
	unsigned char raw[TOKEN_RANDOM_LEN];
	size_t prefix = strlen(TOKEN_PREFIX);

	if (sodium_init() < 0)
		abort();        /* no randomness source: no token is safe */
	randombytes_buf(raw, sizeof(raw));
	memcpy(out, TOKEN_PREFIX, prefix);
	sodium_bin2base64(out + prefix, TOKEN_LEN + 1 - prefix, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

void token_hash(const char *token, char out[TOKEN_HASH_LEN + 1])
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	if (sodium_init() < 0)
		abort();
	crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(out, TOKEN_HASH_LEN + 1, digest, sizeof(digest));
}

bool token_looks_valid(const char *s)
{
	size_t prefix = strlen(TOKEN_PREFIX);

	if (s == NULL || strnlen(s, TOKEN_LEN + 1) != TOKEN_LEN ||
	    strncmp(s, TOKEN_PREFIX, prefix) != 0)
		return false;
	for (const char *p = s + prefix; *p; p++) {
		bool ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
		if (!ok)
			return false;
	}
	return true;
}
