/*
 * websocket — the protocol of RFC 6455 as pure functions: the opening
 * handshake's checks and answer, reading the client's frames, writing the
 * server's.  No socket and no libmicrohttpd here: console.c moves the
 * bytes, these functions say what they mean (and the unit tests hold
 * them to the RFC's own examples).
 *
 * Invariants:
 *   - a client frame is accepted only as the RFC wants it from a client:
 *     masked, no reserved bits (no extension is ever negotiated), a known
 *     opcode, control frames final and at most 125 bytes, a 64-bit length
 *     with its top bit clear, continuation only inside a fragmented
 *     message and a new message only outside one;
 *   - text messages are valid UTF-8 across their fragments, checked as
 *     they arrive (a code point may straddle two frames);
 *   - server frames are never masked and never fragmented.
 * A violation is a protocol error: the caller sends a close frame with
 * the status ws_parse chose (1002, 1007 or 1009) and ends the connection.
 */
#ifndef HC_API_WEBSOCKET_H
#define HC_API_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sec-WebSocket-Accept is base64 of a SHA-1: 28 characters. */
#define WS_ACCEPT_LEN 28
/* Room for the largest server frame header (2 + 8 bytes, no mask). */
#define WS_HEADER_MAX 10

enum ws_opcode {
	WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2,
	WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xa,
};

/* Close status codes (RFC 6455 §7.4.1). */
enum {
	WS_CLOSE_NORMAL = 1000, WS_CLOSE_GOING_AWAY = 1001, WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_BAD_DATA = 1007, WS_CLOSE_POLICY = 1008, WS_CLOSE_TOO_BIG = 1009,
};

/*
 * The handshake: key is the request's Sec-WebSocket-Key, which must be
 * base64 of 16 bytes; out receives the Sec-WebSocket-Accept value
 * (base64 of SHA-1 of the key and the RFC's GUID).  False for a bad key.
 */
bool ws_accept(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* Whether a comma-separated header (Connection, Sec-WebSocket-Protocol)
 * holds token, compared without regard to case. */
bool ws_header_has(const char *header, const char *token);

/*
 * The bearer token a browser passes as a subprotocol: the element
 * "bearer.TOKEN" of Sec-WebSocket-Protocol, copied to out (NUL-ended).
 * False when there is none, or it does not fit.
 */
bool ws_bearer(const char *protocols, char *out, size_t out_len);

/* The state of the client's stream of frames between calls. */
struct ws_reader {
	bool in_message;        /* a fragmented message awaits continuations */
	bool message_text;      /* ... and it is text (checked as UTF-8) */
	uint32_t utf8_need;     /* continuation bytes the current code point lacks */
	uint32_t utf8_cp;       /* its bits so far (to refuse overlong forms, surrogates) */
	uint32_t utf8_min;      /* the least code point its length may encode */
	size_t max_payload;     /* larger frames are refused (1009) */
};

struct ws_frame {
	enum ws_opcode opcode;  /* of this frame (WS_CONT for a continuation) */
	bool fin;
	uint8_t *payload;       /* inside the caller's buffer, unmasked in place */
	size_t len;
};

void ws_reader_init(struct ws_reader *rd, size_t max_payload);

/*
 * Read one frame from buf[0..len): > 0 is the number of bytes it took
 * (the frame is in *f, its payload unmasked in place in buf), 0 when the
 * frame is not complete yet (call again with more bytes), < 0 a protocol
 * error whose close status is -return.
 */
long ws_parse(struct ws_reader *rd, uint8_t *buf, size_t len, struct ws_frame *f);

/* Write the header of an unmasked, final server frame of len bytes;
 * returns its size. */
size_t ws_header(uint8_t hdr[WS_HEADER_MAX], enum ws_opcode op, size_t len);

/* The payload of a close frame: the status, big-endian, then the reason
 * (at most 123 bytes, cut there).  Returns its size. */
size_t ws_close_payload(uint8_t out[125], uint16_t status, const char *reason);

#endif
