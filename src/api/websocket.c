/* websocket — see websocket.h. */
#include "api/websocket.h"

#include <nettle/sha1.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 §1.3: what the server appends to the client's key. */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool ws_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char nonce[18], digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx ctx;
	size_t n = 0;

	/* base64 of 16 bytes is 24 characters with its "==". */
	if (key == NULL || strlen(key) != 24 ||
	    sodium_base642bin(nonce, sizeof(nonce), key, 24, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != 16)
		return false;
	sha1_init(&ctx);
	sha1_update(&ctx, 24, (const uint8_t *)key);
	sha1_update(&ctx, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&ctx, sizeof(digest), digest);
	sodium_bin2base64(out, WS_ACCEPT_LEN + 1, digest, sizeof(digest),
			  sodium_base64_VARIANT_ORIGINAL);
	return true;
}

/* The next element of a comma-separated list, white space trimmed:
 * *s moves past it; false at the end. */
static bool list_next(const char **s, const char **elem, size_t *len)
{
	const char *p = *s, *end;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0')
		return false;
	end = p;
	while (*end && *end != ',')
		end++;
	*s = end;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*elem = p;
	*len = (size_t)(end - p);
	return true;
}

bool ws_header_has(const char *header, const char *token)
{
	const char *e;
	size_t n, tn = strlen(token);

	while (header && list_next(&header, &e, &n))
		if (n == tn && strncasecmp(e, token, n) == 0)
			return true;
	return false;
}

bool ws_bearer(const char *protocols, char *out, size_t out_len)
{
	static const char prefix[] = "bearer.";
	const size_t pl = sizeof(prefix) - 1;
	const char *e;
	size_t n;

	while (protocols && list_next(&protocols, &e, &n)) {
		if (n <= pl || strncmp(e, prefix, pl) != 0)
			continue;
		if (n - pl >= out_len)
			return false;
		memcpy(out, e + pl, n - pl);
		out[n - pl] = '\0';
		return true;
	}
	return false;
}

void ws_reader_init(struct ws_reader *rd, size_t max_payload)
{
	*rd = (struct ws_reader){ .max_payload = max_payload };
}

/*
 * UTF-8, a byte at a time, so that a code point may straddle frames:
 * refuses stray continuation bytes, overlong forms, surrogates and code
 * points beyond U+10FFFF (RFC 3629).
 */
static bool utf8_feed(struct ws_reader *rd, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		if (rd->utf8_need == 0) {
			if (b < 0x80)
				continue;
			if (b >= 0xc2 && b <= 0xdf)
				rd->utf8_need = 1, rd->utf8_cp = b & 0x1f, rd->utf8_min = 0x80;
			else if (b >= 0xe0 && b <= 0xef)
				rd->utf8_need = 2, rd->utf8_cp = b & 0x0f, rd->utf8_min = 0x800;
			else if (b >= 0xf0 && b <= 0xf4)
				rd->utf8_need = 3, rd->utf8_cp = b & 0x07, rd->utf8_min = 0x10000;
			else
				return false;
			continue;
		}
		if ((b & 0xc0) != 0x80)
			return false;
		rd->utf8_cp = (rd->utf8_cp << 6) | (b & 0x3f);
		/* Overlong and out-of-range forms show once the second byte is
		 * in; checking only at the end would also do, later. */
		if (--rd->utf8_need == 0 &&
		    (rd->utf8_cp < rd->utf8_min || rd->utf8_cp > 0x10ffff ||
		     (rd->utf8_cp >= 0xd800 && rd->utf8_cp <= 0xdfff)))
			return false;
	}
	return true;
}

long ws_parse(struct ws_reader *rd, uint8_t *buf, size_t len, struct ws_frame *f)
{
	size_t hdr = 2;
	uint64_t plen;

	if (len < 2)
		return 0;
	bool fin = buf[0] & 0x80;
	unsigned op = buf[0] & 0x0f;
	if (buf[0] & 0x70)
		return -WS_CLOSE_PROTOCOL;        /* reserved bits: no extension was agreed */
	if (!(buf[1] & 0x80))
		return -WS_CLOSE_PROTOCOL;        /* clients must mask (§5.1) */
	plen = buf[1] & 0x7f;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		hdr = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		if (buf[2] & 0x80)
			return -WS_CLOSE_PROTOCOL;
		plen = 0;
		for (int i = 2; i < 10; i++)
			plen = plen << 8 | buf[i];
		hdr = 10;
	}
	switch (op) {
	case WS_CLOSE: case WS_PING: case WS_PONG:
		if (!fin || plen > 125)
			return -WS_CLOSE_PROTOCOL;
		break;
	case WS_CONT:
		if (!rd->in_message)
			return -WS_CLOSE_PROTOCOL;
		break;
	case WS_TEXT: case WS_BINARY:
		if (rd->in_message)
			return -WS_CLOSE_PROTOCOL;
		break;
	default:
		return -WS_CLOSE_PROTOCOL;
	}
	if (plen > rd->max_payload)
		return -WS_CLOSE_TOO_BIG;
	if (len - hdr < 4 || len - hdr - 4 < plen)
		return 0;

	const uint8_t *mask = buf + hdr;
	uint8_t *payload = buf + hdr + 4;
	for (uint64_t i = 0; i < plen; i++)
		payload[i] ^= mask[i & 3];
	*f = (struct ws_frame){ .opcode = (enum ws_opcode)op, .fin = fin, .payload = payload,
				.len = (size_t)plen };

	if (op == WS_TEXT || op == WS_BINARY) {
		rd->in_message = !fin;
		rd->message_text = op == WS_TEXT;
		rd->utf8_need = 0;
	} else if (op == WS_CONT && fin) {
		rd->in_message = false;
	}
	if ((op == WS_TEXT || (op == WS_CONT && rd->message_text)) &&
	    (!utf8_feed(rd, payload, f->len) || (fin && rd->utf8_need != 0)))
		return -WS_CLOSE_BAD_DATA;
	if (op == WS_CLOSE && f->len > 0) {
		/* A status alone, or a status and a UTF-8 reason (§5.5.1). */
		struct ws_reader reason = { 0 };
		if (f->len == 1)
			return -WS_CLOSE_PROTOCOL;
		if (!utf8_feed(&reason, payload + 2, f->len - 2) || reason.utf8_need != 0)
			return -WS_CLOSE_BAD_DATA;
	}
	return (long)(hdr + 4 + plen);
}

size_t ws_header(uint8_t hdr[WS_HEADER_MAX], enum ws_opcode op, size_t len)
{
	hdr[0] = 0x80 | (uint8_t)op;
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

size_t ws_close_payload(uint8_t out[125], uint16_t status, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;

	if (n > 123)
		n = 123;
	out[0] = (uint8_t)(status >> 8);
	out[1] = (uint8_t)status;
	if (n)
		memcpy(out + 2, reason, n);
	return n + 2;
}
