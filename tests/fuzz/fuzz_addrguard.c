/*
 * fuzz_addrguard — the SSRF guard of members' URL imports
 * (image/addrguard.h): import_allow and prefix lists as an operator
 * writes them, and the addresses DNS or a redirect may lead to.
 *
 * Input lines: import_allow; the hackcloud networks; this host's
 * addresses (all comma-separated lists, parsed by addr_list_parse); then up
 * to 16 addresses to judge.  Promises, checked with this file's own
 * reading of the address (inet_pton and bit masks, not the guard's code):
 *   - an IPv4 address that is refused is refused in its ::ffff:,
 *     64:ff9b:: and ::a.b.c.d forms too (which may be refused for more:
 *     an IPv6 prefix in a list may hold them as written);
 *   - loopback, link-local (the metadata service), "this network",
 *     multicast, reserved and unspecified addresses are never allowed,
 *     whatever import_allow says;
 *   - neither is an address of the host, nor one inside a hackcloud
 *     network;
 *   - a private or ULA address is allowed only when an import_allow
 *     entry covers it;
 *   - a list that parses holds as many entries as it has non-blank items.
 */
#include "fuzz.h"

#include "image/addrguard.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDRESSES_MAX 16

/* An address as written: its family and bytes. */
struct written {
	int family;
	unsigned char b[16];
};

static bool read_written(const char *s, struct written *w)
{
	if (inet_pton(AF_INET, s, w->b) == 1) {
		w->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, w->b) == 1) {
		w->family = AF_INET6;
		return true;
	}
	return false;
}

static bool bits_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	for (unsigned i = 0; i < bits; i++)
		if (((a[i / 8] ^ b[i / 8]) >> (7 - i % 8)) & 1)
			return false;
	return true;
}

/* The IPv4 address an IPv6 form carries (::ffff:a.b.c.d, 64:ff9b::a.b.c.d,
 * ::a.b.c.d — the last unless a.b.c are zero: ::1 and :: are IPv6's own),
 * or false. */
static bool carried_v4(const struct written *w, unsigned char v4[4])
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const unsigned char compat[12];

	if (w->family == AF_INET) {
		memcpy(v4, w->b, 4);
		return true;
	}
	if (memcmp(w->b, mapped, 12) == 0 || memcmp(w->b, nat64, 12) == 0 ||
	    (memcmp(w->b, compat, 12) == 0 && (w->b[12] | w->b[13] | w->b[14]) != 0)) {
		memcpy(v4, w->b + 12, 4);
		return true;
	}
	return false;
}

static bool never_ok(const struct written *w)
{
	unsigned char v4[4];
	static const unsigned char any[16], one[16] = { [15] = 1 };

	if (carried_v4(w, v4))
		return v4[0] == 127 || v4[0] == 0 || v4[0] >= 224 || (v4[0] == 169 && v4[1] == 254);
	return memcmp(w->b, any, 16) == 0 || memcmp(w->b, one, 16) == 0 || w->b[0] == 0xff ||
	       (w->b[0] == 0xfe && (w->b[1] & 0xc0) == 0x80);
}

static bool is_private(const struct written *w)
{
	unsigned char v4[4];

	if (carried_v4(w, v4))
		return v4[0] == 10 || (v4[0] == 172 && (v4[1] & 0xf0) == 16) ||
		       (v4[0] == 192 && v4[1] == 168) || (v4[0] == 100 && (v4[1] & 0xc0) == 64);
	return (w->b[0] & 0xfe) == 0xfc;
}

/* Does one entry of a comma list ("a/len" or "a") cover w, both read as
 * written (same family)? */
static bool list_covers(const char *csv, const struct written *w)
{
	char *copy = strdup(csv), *save = NULL;
	bool hit = false;

	for (char *t = strtok_r(copy, ", \t", &save); t && !hit; t = strtok_r(NULL, ", \t", &save)) {
		char *slash = strchr(t, '/');
		struct written e;
		unsigned len;
		if (slash)
			*slash = '\0';
		if (!read_written(t, &e) || e.family != w->family)
			continue;
		len = slash ? (unsigned)strtoul(slash + 1, NULL, 10) : (e.family == AF_INET ? 32 : 128);
		if (len <= (e.family == AF_INET ? 32u : 128u))
			hit = bits_equal(e.b, w->b, len);
	}
	free(copy);
	return hit;
}

static size_t items(const char *csv)
{
	size_t n = 0;
	char *copy = strdup(csv), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		n += strspn(t, " \t") != strlen(t);
	free(copy);
	return n;
}

static bool parse(struct addr_list *l, const char *csv)
{
	char *err = NULL;

	if (addr_list_parse(l, csv, &err) < 0) {
		FUZZ_ASSERT(err != NULL, "refused '%s' without a message", csv);
		free(err);
		return false;
	}
	FUZZ_ASSERT(err == NULL && l->n == items(csv), "'%s': %zu entries", csv, l->n);
	return true;
}

static enum addr_class judge(const char *text, const struct addr_policy *p)
{
	unsigned char a[16];

	FUZZ_ASSERT(addr_from_text(text, a) == 0, "'%s' not read", text);
	return addr_classify(a, p);
}

static void check(const char *text, const struct addr_policy *p, const char *allow,
		  const char *nets, const char *host)
{
	struct written w;

	if (!read_written(text, &w))
		return;
	enum addr_class c = judge(text, p);
	bool ok = addr_class_ok(c);
	FUZZ_ASSERT(addr_class_text(c) != NULL, "class %d has no text", (int)c);
	if (w.family == AF_INET) {
		char form[64];
		static const char *const forms[] = { "::ffff:%s", "64:ff9b::%s", "::%s" };
		for (size_t i = 0; i < 3; i++) {
			/* ::a.b.c.d with a.b.c all zero is ::1-like, not IPv4. */
			if (i == 2 && w.b[0] == 0 && w.b[1] == 0 && w.b[2] == 0)
				continue;
			snprintf(form, sizeof(form), forms[i], text);
			enum addr_class cf = judge(form, p);
			FUZZ_ASSERT(ok || !addr_class_ok(cf), "'%s' is refused (%d), '%s' allowed (%d)",
				    text, (int)c, form, (int)cf);
		}
	}
	FUZZ_ASSERT(!(ok && never_ok(&w)), "'%s' allowed (import_allow '%s')", text, allow);
	FUZZ_ASSERT(!(ok && list_covers(host, &w)), "'%s', an address of the host, allowed", text);
	FUZZ_ASSERT(!(ok && list_covers(nets, &w)), "'%s' in a hackcloud network allowed", text);
	if (ok && is_private(&w))
		FUZZ_ASSERT(c == ADDR_ALLOWED, "private '%s' allowed as %d", text, (int)c);
	if (c == ADDR_ALLOWED && w.family == AF_INET6 && !carried_v4(&w, (unsigned char[4]){ 0 }))
		FUZZ_ASSERT(list_covers(allow, &w), "'%s' allowed but not in '%s'", text, allow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { (const char *)data, (const char *)data + size };
	char *allow = fuzz_line(&in), *nets = fuzz_line(&in), *host = fuzz_line(&in);
	struct addr_policy p = { 0 };

	if (allow && nets && host && parse(&p.allow, allow) && parse(&p.networks, nets) &&
	    parse(&p.host, host)) {
		char *text;
		for (int i = 0; i < ADDRESSES_MAX && (text = fuzz_line(&in)) != NULL; i++) {
			check(text, &p, allow, nets, host);
			free(text);
		}
	}
	addr_policy_free(&p);
	free(allow);
	free(nets);
	free(host);
	return 0;
}
