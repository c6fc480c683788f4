/*
 * validate — checks of user input that every entry point shares.
 * Pure functions; each returns true when the input is acceptable.
 */
#ifndef HC_VALIDATE_H
#define HC_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#define NAME_MAXLEN 63

/* Resource names: [a-z0-9][a-z0-9-]{0,62}. */
bool name_valid(const char *s);
/* A host name as hosts call themselves: letters, digits, '-' and '.', at
 * most 253 characters, not starting with '-' or '.'. */
bool host_name_valid(const char *s);
/* Whether a comma-separated list ("api,agent", "file,otp") holds item. */
bool list_has(const char *list, const char *item);

/* An IPv6 prefix written "addr/64" whose host bits are zero. */
bool ipv6_prefix64_parse(const char *s, struct in6_addr *prefix);

/* An IPv4 subnet "a.b.c.d/len", 8 <= len <= 30, host bits zero, not in
 * 0/8, 127/8, 169.254/16 or 224/3. */
bool ipv4_cidr_parse(const char *s, struct in_addr *net, unsigned *len);

/*
 * Any IPv4 or IPv6 prefix "addr/len" with its host bits zero; a bare
 * address counts as /32 or /128.  Writes the canonical text into canon
 * (at least INET6_ADDRSTRLEN + 5 bytes) and the family (AF_INET/AF_INET6).
 */
bool prefix_parse(const char *s, int *family, char *canon, size_t canon_len);

/* True when two IPv4 subnets share any address. */
bool ipv4_cidr_overlap(struct in_addr a, unsigned alen, struct in_addr b, unsigned blen);

/* Kernel command line for kernel images: printable ASCII, bounded. */
bool cmdline_valid(const char *s);

/*
 * A size in bytes: decimal digits, optionally followed by one of K, M, G,
 * T (or k, m, g, t; binary units, 1K = 1024).  No sign, space or fraction;
 * false on anything else or when the value does not fit 63 bits.  Ranges
 * are the caller's to check.
 */
bool size_parse(const char *s, uint64_t *bytes);

/*
 * True for an address (text, IPv4 or IPv6) that names this host or its
 * links rather than a server somewhere: loopback, link-local (where the
 * metadata service lives), unspecified, and their IPv4-mapped forms.
 * False for anything else, including text that is no address.
 */
bool ip_is_host_local(const char *s);

/* A SHA-256 in hex: exactly 64 hex digits of either case; writes the
 * lowercase form (what the store and the API show) into out. */
bool sha256_hex_parse(const char *s, char out[65]);

#endif
