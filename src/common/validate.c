/* validate — see validate.h. */
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, item, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

bool host_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  ((c == '-' || c == '.') && i > 0);
		if (!ok)
			return false;
	}
	return true;
}

bool name_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > NAME_MAXLEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (c == '-' && i > 0);
		if (!ok)
			return false;
	}
	return true;
}

/* Split "addr/len" into its parts; false when malformed. */
static bool split_prefix(const char *s, char *addr, size_t addrsz, unsigned *len)
{
	const char *slash;
	char *end;
	unsigned long l;

	if (s == NULL || (slash = strchr(s, '/')) == NULL)
		return false;
	if ((size_t)(slash - s) >= addrsz || slash[1] == '\0')
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	l = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || l > 128 || !(slash[1] >= '0' && slash[1] <= '9'))
		return false;
	*len = (unsigned)l;
	return true;
}

bool ipv6_prefix64_parse(const char *s, struct in6_addr *prefix)
{
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned len;

	if (!split_prefix(s, addr, sizeof(addr), &len) || len != 64)
		return false;
	if (inet_pton(AF_INET6, addr, prefix) != 1)
		return false;
	for (int i = 8; i < 16; i++)
		if (prefix->s6_addr[i] != 0)
			return false;
	/* Multicast and link-local prefixes cannot be a network's prefix, nor
	 * ::/64 (the unspecified and loopback addresses live there). */
	if (prefix->s6_addr[0] == 0xff ||
	    (prefix->s6_addr[0] == 0xfe && (prefix->s6_addr[1] & 0xc0) == 0x80))
		return false;
	bool zero = true;
	for (int i = 0; i < 8; i++)
		zero = zero && prefix->s6_addr[i] == 0;
	return !zero;
}

bool ipv4_cidr_parse(const char *s, struct in_addr *net, unsigned *len)
{
	char addr[INET_ADDRSTRLEN + 1];
	uint32_t host, mask;

	if (!split_prefix(s, addr, sizeof(addr), len) || *len < 8 || *len > 30)
		return false;
	if (inet_pton(AF_INET, addr, net) != 1)
		return false;
	host = ntohl(net->s_addr);
	mask = *len == 0 ? 0 : ~UINT32_C(0) << (32 - *len);
	if ((host & ~mask) != 0)
		return false;
	/* "This network", loopback, link-local (the metadata address lives
	 * there), multicast and reserved space cannot be a guest subnet. */
	unsigned first = host >> 24;
	if (first == 0 || first == 127 || first >= 224 || (host >> 16) == 0xa9fe)
		return false;
	return true;
}

bool cmdline_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n > 2048)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

bool prefix_parse(const char *s, int *family, char *canon, size_t canon_len)
{
	char addr[INET6_ADDRSTRLEN + 1], text[INET6_ADDRSTRLEN];
	unsigned char bytes[16];
	unsigned len;
	int fam;

	if (s == NULL)
		return false;
	if (strchr(s, '/')) {
		if (!split_prefix(s, addr, sizeof(addr), &len))
			return false;
	} else {
		if (strlen(s) >= sizeof(addr))
			return false;
		strcpy(addr, s);
		len = strchr(s, ':') ? 128 : 32;
	}
	fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, addr, bytes) != 1)
		return false;
	unsigned bits = fam == AF_INET6 ? 128 : 32;
	if (len > bits)
		return false;
	for (unsigned b = len; b < bits; b++)
		if (bytes[b / 8] & (0x80 >> (b % 8)))
			return false;
	inet_ntop(fam, bytes, text, sizeof(text));
	if ((size_t)snprintf(canon, canon_len, "%s/%u", text, len) >= canon_len)
		return false;
	*family = fam;
	return true;
}

bool ipv4_cidr_overlap(struct in_addr a, unsigned alen, struct in_addr b, unsigned blen)
{
	unsigned len = alen < blen ? alen : blen;
	uint32_t mask = len == 0 ? 0 : ~UINT32_C(0) << (32 - len);
	return (ntohl(a.s_addr) & mask) == (ntohl(b.s_addr) & mask);
}

bool size_parse(const char *s, uint64_t *bytes)
{
	uint64_t v = 0, unit = 1;
	size_t i = 0;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_C(1) << 63) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[i] != '\0') {
		const char *units = "kmgt";
		const char *u = strchr(units, s[i] | 0x20);
		if (u == NULL || s[i + 1] != '\0')
			return false;
		unit = UINT64_C(1) << (10 * (u - units + 1));
	}
	/* The product must stay below 2^63: sizes travel as signed 64-bit. */
	if (v > (UINT64_C(1) << 63) / unit || v * unit >= (UINT64_C(1) << 63))
		return false;
	*bytes = v * unit;
	return true;
}

bool ip_is_host_local(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;
	uint32_t v4;

	if (s && inet_pton(AF_INET6, s, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6) ||
		    IN6_IS_ADDR_UNSPECIFIED(&a6))
			return true;
		if (!IN6_IS_ADDR_V4MAPPED(&a6))
			return false;
		memcpy(&v4, &a6.s6_addr[12], 4);
	} else if (s && inet_pton(AF_INET, s, &a4) == 1) {
		v4 = a4.s_addr;
	} else {
		return false;
	}
	v4 = ntohl(v4);
	return (v4 >> 24) == 127 || (v4 >> 24) == 0 || (v4 >> 16) == 0xa9fe; /* 169.254/16 */
}

bool sha256_hex_parse(const char *s, char out[65])
{
	if (s == NULL || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[64] = '\0';
	return true;
}
