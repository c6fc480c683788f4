/*
 * addrkey — the unit of accountability of a network peer, as a short key
 * for per-peer limits (connections, failed logins).
 *
 *   IPv4 address               "192.0.2.7"
 *   IPv6 address               its /64: "2001:db8:1:2::/64" — one site or
 *                              subscriber gets a whole /64 and can rotate
 *                              through it at will, so single addresses
 *                              would let one peer count as 2^64;
 *   IPv4-mapped IPv6           the IPv4 address (the same peer either way);
 *   anything else              "other".
 *
 * Pure; the key always fits ADDR_KEY_LEN with its NUL.
 */
#ifndef HC_ADDRKEY_H
#define HC_ADDRKEY_H

#include <sys/socket.h>

#define ADDR_KEY_LEN 48

void addr_key(const struct sockaddr *sa, socklen_t len, char out[ADDR_KEY_LEN]);

#endif
