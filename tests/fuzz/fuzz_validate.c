/*
 * fuzz_validate — the checks every API input passes through
 * (common/validate.h, common/ids.h, the token shape of auth/token.h, the
 * dashboard's paths of api/web.h): names, host names, /64 and IPv4
 * subnets, prefixes of firewall rules, sizes, checksums, IDs, MACs,
 * interface names, bearer tokens and /ui/ paths.
 *
 * The input is one string, given to every check.  Beyond "no crash",
 * whatever a check accepts must come back the same through its canonical
 * form: the form the store keeps is the form that is checked again later.
 */
#include "fuzz.h"

#include "api/web.h"
#include "auth/token.h"
#include "common/ids.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void check_prefixes(const char *s)
{
	struct in6_addr p6, again6;
	struct in_addr p4, again4;
	unsigned len, len2;
	char text[INET6_ADDRSTRLEN + 8], canon[INET6_ADDRSTRLEN + 8], canon2[INET6_ADDRSTRLEN + 8];
	int fam, fam2;

	if (ipv6_prefix64_parse(s, &p6)) {
		char a[INET6_ADDRSTRLEN];
		FUZZ_ASSERT(inet_ntop(AF_INET6, &p6, a, sizeof(a)) != NULL, "ntop");
		snprintf(text, sizeof(text), "%s/64", a);
		FUZZ_ASSERT(ipv6_prefix64_parse(text, &again6) && memcmp(&p6, &again6, 16) == 0,
			    "'%s' → '%s' does not parse back", s, text);
	}
	if (ipv4_cidr_parse(s, &p4, &len)) {
		char a[INET_ADDRSTRLEN];
		FUZZ_ASSERT(len >= 8 && len <= 30, "'%s': /%u", s, len);
		FUZZ_ASSERT(inet_ntop(AF_INET, &p4, a, sizeof(a)) != NULL, "ntop");
		snprintf(text, sizeof(text), "%s/%u", a, len);
		FUZZ_ASSERT(ipv4_cidr_parse(text, &again4, &len2) && again4.s_addr == p4.s_addr &&
			    len2 == len, "'%s' → '%s' does not parse back", s, text);
		/* A subnet overlaps itself, and overlap is symmetric. */
		FUZZ_ASSERT(ipv4_cidr_overlap(p4, len, p4, len), "'%s' does not overlap itself", s);
		struct in_addr ten = { .s_addr = htonl(0x0a000000) };
		FUZZ_ASSERT(ipv4_cidr_overlap(p4, len, ten, 8) == ipv4_cidr_overlap(ten, 8, p4, len),
			    "overlap of '%s' and 10/8 is not symmetric", s);
	}
	if (prefix_parse(s, &fam, canon, sizeof(canon))) {
		FUZZ_ASSERT(fam == AF_INET || fam == AF_INET6, "'%s': family %d", s, fam);
		FUZZ_ASSERT(prefix_parse(canon, &fam2, canon2, sizeof(canon2)) && fam2 == fam &&
			    strcmp(canon, canon2) == 0, "'%s' → '%s' is not canonical", s, canon);
		FUZZ_ASSERT(strchr(canon, '/') != NULL, "'%s' → '%s' has no length", s, canon);
	}
}

static void check_ids(const char *s)
{
	uint64_t id;
	enum ifname_kind kind;

	if (vm_id_parse(s, &id))
		FUZZ_ASSERT(strcmp(vm_id_format(id).s, s) == 0, "VM ID '%s'", s);
	if (net_id_parse(s, &id))
		FUZZ_ASSERT(strcmp(net_id_format(id).s, s) == 0, "network ID '%s'", s);
	if (nic_mac_parse(s, &id))
		FUZZ_ASSERT(strcasecmp(nic_mac_format(id).s, s) == 0, "MAC '%s'", s);
	if (ifname_parse(s, &kind, &id)) {
		const char *back = kind == IFNAME_TAP ? ifname_tap(id).s
				   : kind == IFNAME_BRIDGE ? ifname_bridge(id).s
				   : kind == IFNAME_VXLAN ? ifname_vxlan(id).s
				   : kind == IFNAME_IFB ? ifname_ifb(id).s : NULL;
		FUZZ_ASSERT(back && strcmp(back, s) == 0, "interface name '%s' → '%s'", s,
			    back ? back : "?");
	}
}

static void check_words(const char *s)
{
	uint64_t bytes, again;
	char sha[65], sha2[65], num[32];

	if (name_valid(s)) {
		/* A name is also a fine host name and list item. */
		FUZZ_ASSERT(strlen(s) <= NAME_MAXLEN && host_name_valid(s), "name '%s'", s);
		FUZZ_ASSERT(list_has(s, s), "'%s' is not in the list of itself", s);
	}
	host_name_valid(s);
	cmdline_valid(s);
	if (size_parse(s, &bytes)) {
		FUZZ_ASSERT(bytes < (UINT64_C(1) << 63), "size '%s' = %" PRIu64, s, bytes);
		snprintf(num, sizeof(num), "%" PRIu64, bytes);
		FUZZ_ASSERT(size_parse(num, &again) && again == bytes, "size '%s' → %s", s, num);
	}
	if (sha256_hex_parse(s, sha)) {
		FUZZ_ASSERT(strlen(sha) == 64 && strcasecmp(sha, s) == 0, "sha256 '%s'", s);
		FUZZ_ASSERT(sha256_hex_parse(sha, sha2) && strcmp(sha, sha2) == 0, "sha256 '%s'", s);
	}
	/* The IPv4-mapped form of an address is just as local as the address. */
	struct in_addr a4;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		char mapped[64];
		snprintf(mapped, sizeof(mapped), "::ffff:%s", s);
		FUZZ_ASSERT(ip_is_host_local(s) == ip_is_host_local(mapped), "'%s' vs '%s'", s, mapped);
	} else {
		ip_is_host_local(s);
	}
	/* A dashboard path (GET /ui/…): relative, no empty, "." or ".."
	 * segment, no segment that starts with a dot, nothing but
	 * [A-Za-z0-9_.-] and '/'. */
	if (web_path_ok(s)) {
		FUZZ_ASSERT(s[0] != '/' && strstr(s, "//") == NULL && strstr(s, "/.") == NULL &&
			    s[0] != '.' && s[strlen(s) - 1] != '/' &&
			    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") ==
			    strlen(s), "dashboard path '%s'", s);
	}
	web_content_type(s);
	if (token_looks_valid(s)) {
		char hash[TOKEN_HASH_LEN + 1];
		FUZZ_ASSERT(strlen(s) == TOKEN_LEN && strncmp(s, TOKEN_PREFIX, 4) == 0, "token '%s'", s);
		token_hash(s, hash);
		FUZZ_ASSERT(strlen(hash) == TOKEN_HASH_LEN, "token hash");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	check_prefixes(s);
	check_ids(s);
	check_words(s);
	/* A comma list: each of its items is in it. */
	if (strlen(s) < 256) {
		char *copy = strdup(s), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			FUZZ_ASSERT(list_has(s, t), "'%s' not found in '%s'", t, s);
		free(copy);
	}
	free(s);
	return 0;
}
