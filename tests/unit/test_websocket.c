/*
 * test_websocket — RFC 6455 as src/api/websocket.h implements it: the
 * handshake's accept value (the RFC's own example), the headers it reads,
 * and the client frames it takes or refuses — masking, fragmentation,
 * control frames, lengths, UTF-8 across fragments — and the server frames
 * it writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/websocket.h"

#include <sodium.h>
#include <string.h>

/* A client frame as a browser sends it: masked with key. */
static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t len)
{
	static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t n = 0;

	out[n++] = b0;
	if (len < 126) {
		out[n++] = 0x80 | (uint8_t)len;
	} else if (len <= 0xffff) {
		out[n++] = 0x80 | 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	} else {
		out[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(out + n, key, 4);
	n += 4;
	for (size_t i = 0; i < len; i++)
		out[n + i] = ((const uint8_t *)payload)[i] ^ key[i & 3];
	return n + len;
}

static void accept_matches_rfc_example(void **state)
{
	char out[WS_ACCEPT_LEN + 1];

	(void)state;
	/* RFC 6455 §1.3. */
	assert_true(ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out));
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_false(ws_accept(NULL, out));
	assert_false(ws_accept("", out));
	assert_false(ws_accept("dGhlIHNhbXBsZSBub25jZQ", out));      /* not 24 characters */
	assert_false(ws_accept("dGhlIHNhbXBsZSBub25j!!==", out));    /* not base64 */
	assert_false(ws_accept("dGhlIHNhbXBsZSBub25jZWVl", out));    /* 18 bytes, not 16 */
}

static void headers_are_token_lists(void **state)
{
	char tok[64];

	(void)state;
	assert_true(ws_header_has("keep-alive, Upgrade", "upgrade"));
	assert_true(ws_header_has("Upgrade", "upgrade"));
	assert_false(ws_header_has("upgraded", "upgrade"));
	assert_false(ws_header_has(NULL, "upgrade"));
	assert_true(ws_header_has("bearer.x,hackcloud.console", "hackcloud.console"));

	assert_true(ws_bearer("hackcloud.console, bearer.hct_abc-_9", tok, sizeof(tok)));
	assert_string_equal(tok, "hct_abc-_9");
	assert_false(ws_bearer("hackcloud.console", tok, sizeof(tok)));
	assert_false(ws_bearer("bearer.", tok, sizeof(tok)));
	assert_false(ws_bearer(NULL, tok, sizeof(tok)));
	assert_false(ws_bearer("bearer.0123456789", tok, 8));      /* does not fit */
}

static void parses_masked_frames(void **state)
{
	struct ws_reader rd;
	struct ws_frame f;
	uint8_t buf[70000];
	static uint8_t big[66000];
	size_t n;

	(void)state;
	ws_reader_init(&rd, sizeof(big));
	/* RFC 6455 §5.7: a masked "Hello". */
	const uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	memcpy(buf, hello, sizeof(hello));
	for (size_t cut = 0; cut < sizeof(hello); cut++)
		assert_int_equal(ws_parse(&rd, buf, cut, &f), 0);    /* not complete yet */
	assert_int_equal(ws_parse(&rd, buf, sizeof(hello), &f), sizeof(hello));
	assert_int_equal(f.opcode, WS_TEXT);
	assert_true(f.fin);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.payload, "Hello", 5);

	/* 16- and 64-bit lengths. */
	memset(big, 'x', sizeof(big));
	n = frame(buf, 0x82, big, 300);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	assert_int_equal(f.len, 300);
	n = frame(buf, 0x82, big, 65536);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	assert_int_equal(f.len, 65536);
	assert_int_equal(f.payload[65535], 'x');

	/* Two frames in one buffer: one at a time. */
	n = frame(buf, 0x82, "ab", 2);
	n += frame(buf + n, 0x89, "p", 1);
	long used = ws_parse(&rd, buf, n, &f);
	assert_int_equal(used, 8);
	assert_int_equal(ws_parse(&rd, buf + used, n - (size_t)used, &f), 7);
	assert_int_equal(f.opcode, WS_PING);
}

static void fragments_and_control_frames(void **state)
{
	struct ws_reader rd;
	struct ws_frame f;
	uint8_t buf[256];
	size_t n;

	(void)state;
	ws_reader_init(&rd, 1024);
	/* "é" (C3 A9) split across two fragments, a ping between them. */
	n = frame(buf, 0x01, "caf\xc3", 4);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	assert_false(f.fin);
	n = frame(buf, 0x89, "", 0);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	n = frame(buf, 0x01, "x", 1);                 /* a new message inside one */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);

	ws_reader_init(&rd, 1024);
	n = frame(buf, 0x01, "caf\xc3", 4);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	n = frame(buf, 0x80, "\xa9", 1);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	assert_int_equal(f.opcode, WS_CONT);
	assert_true(f.fin);
	n = frame(buf, 0x80, "x", 1);                 /* a continuation of nothing */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);

	ws_reader_init(&rd, 1024);
	n = frame(buf, 0x09, "", 0);                  /* a control frame in pieces */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);
	uint8_t long_ping[126] = { 0 };
	n = frame(buf, 0x89, long_ping, sizeof(long_ping));
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);
	n = frame(buf, 0x88, "\x03", 1);              /* a close with half a status */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);
	n = frame(buf, 0x88, "\x03\xe8" "bye", 5);
	assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	assert_int_equal(f.opcode, WS_CLOSE);
	assert_int_equal(f.payload[0] << 8 | f.payload[1], 1000);
}

static void refuses_what_a_client_may_not_send(void **state)
{
	struct ws_reader rd;
	struct ws_frame f;
	uint8_t buf[64];
	size_t n;

	(void)state;
	ws_reader_init(&rd, 16);
	const uint8_t unmasked[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
	memcpy(buf, unmasked, sizeof(unmasked));
	assert_int_equal(ws_parse(&rd, buf, sizeof(unmasked), &f), -WS_CLOSE_PROTOCOL);
	n = frame(buf, 0xc1, "x", 1);                 /* RSV1: no extension was agreed */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);
	n = frame(buf, 0x83, "x", 1);                 /* opcode 3 is reserved */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);
	n = frame(buf, 0x8b, "x", 1);                 /* and so is 0xb */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_PROTOCOL);
	uint8_t big[17] = { 0 };
	n = frame(buf, 0x82, big, sizeof(big));       /* over max_payload */
	assert_int_equal(ws_parse(&rd, buf, n, &f), -WS_CLOSE_TOO_BIG);
	const uint8_t huge[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0 };   /* top bit of 64 */
	memcpy(buf, huge, sizeof(huge));
	assert_int_equal(ws_parse(&rd, buf, sizeof(huge), &f), -WS_CLOSE_PROTOCOL);
}

static void text_must_be_utf8(void **state)
{
	static const struct { const char *bytes; size_t len; bool ok; } cases[] = {
		{ "plain", 5, true },
		{ "\xc3\xa9", 2, true },                   /* é */
		{ "\xf0\x9f\x98\x80", 4, true },           /* U+1F600 */
		{ "\xff", 1, false },
		{ "\xc0\x80", 2, false },                  /* overlong NUL */
		{ "\xe0\x80\xaf", 3, false },              /* overlong '/' */
		{ "\xed\xa0\x80", 3, false },              /* a surrogate */
		{ "\xf4\x90\x80\x80", 4, false },          /* beyond U+10FFFF */
		{ "\xc3", 1, false },                      /* ends inside a code point */
		{ "\x80", 1, false },                      /* a stray continuation byte */
	};
	struct ws_reader rd;
	struct ws_frame f;
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ws_reader_init(&rd, 64);
		size_t n = frame(buf, 0x81, cases[i].bytes, cases[i].len);
		long rc = ws_parse(&rd, buf, n, &f);
		if (cases[i].ok)
			assert_int_equal(rc, (long)n);
		else
			assert_int_equal(rc, -WS_CLOSE_BAD_DATA);
		/* Binary frames carry any bytes. */
		ws_reader_init(&rd, 64);
		n = frame(buf, 0x82, cases[i].bytes, cases[i].len);
		assert_int_equal(ws_parse(&rd, buf, n, &f), (long)n);
	}
}

static void writes_server_frames(void **state)
{
	uint8_t hdr[WS_HEADER_MAX], payload[125];

	(void)state;
	assert_int_equal(ws_header(hdr, WS_BINARY, 5), 2);
	assert_int_equal(hdr[0], 0x82);
	assert_int_equal(hdr[1], 5);                  /* never masked */
	assert_int_equal(ws_header(hdr, WS_TEXT, 126), 4);
	assert_int_equal(hdr[1], 126);
	assert_int_equal(hdr[2] << 8 | hdr[3], 126);
	assert_int_equal(ws_header(hdr, WS_BINARY, 65536), 10);
	assert_int_equal(hdr[1], 127);
	assert_int_equal(hdr[7], 1);
	assert_int_equal(hdr[8], 0);
	assert_int_equal(ws_header(hdr, WS_CLOSE, 0), 2);
	assert_int_equal(hdr[0], 0x88);

	assert_int_equal(ws_close_payload(payload, 1008, "revoked"), 9);
	assert_int_equal(payload[0] << 8 | payload[1], 1008);
	assert_memory_equal(payload + 2, "revoked", 7);
	char reason[300];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(ws_close_payload(payload, 1000, reason), 125);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accept_matches_rfc_example),
		cmocka_unit_test(headers_are_token_lists),
		cmocka_unit_test(parses_masked_frames),
		cmocka_unit_test(fragments_and_control_frames),
		cmocka_unit_test(refuses_what_a_client_may_not_send),
		cmocka_unit_test(text_must_be_utf8),
		cmocka_unit_test(writes_server_frames),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
