/*
 * test_metadata — the pure parts of the metadata service: the tree
 * (src/metadata/tree.c: EC2 and OpenStack paths, versions, keys, binary
 * user data, 404s), IMDSv2 tokens (imds_token.c), the token-bucket table
 * (limit.c) and the netlink parsing of caller identification (ident.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "metadata/ident.h"
#include "metadata/imds_token.h"
#include "metadata/limit.h"
#include "metadata/tree.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static struct nic nic = { .id = 0x10f, .network = 1, .network_name = "office",
			  .network_ipv6 = "2001:db8:10::/64", .ipv4 = "10.0.0.2" };
static struct vm_key keys[] = {
	{ .id = 1, .name = "laptop", .pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA laptop" },
	{ .id = 2, .name = "ci", .pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ci" },
};
static unsigned char ud[] = { '#', '!', '/', 'b', 'i', 'n', '/', 's', 'h', '\n', 0, 0xff, 'x' };

static struct vm make_vm(void)
{
	struct vm vm = { .id = 0x2a, .name = "web", .desired = "running", .state = "running",
			 .nics = &nic, .n_nics = 1, .keys = keys, .n_keys = 2,
			 .user_data = ud, .user_data_len = sizeof(ud) };
	return vm;
}

static char *get(const char *path, int *status)
{
	struct vm vm = make_vm();
	struct md_reply r;
	*status = metadata_render(&vm, path, &r);
	if (r.body == NULL)
		return NULL;
	char *s = malloc(r.len + 1);
	memcpy(s, r.body, r.len);
	s[r.len] = '\0';
	free(r.body);
	return s;
}

static void expect(const char *path, int status, const char *body)
{
	int st;
	char *s = get(path, &st);
	assert_int_equal(st, status);
	if (body)
		assert_string_equal(s, body);
	free(s);
}

static void ec2_leaves(void **state)
{
	(void)state;
	expect("/latest/meta-data/instance-id", 200, "i-000000002a");
	expect("/latest/meta-data/hostname", 200, "web");
	expect("/latest/meta-data/local-hostname", 200, "web");
	expect("/latest/meta-data/local-ipv4", 200, "10.0.0.2");
	expect("/latest/meta-data/mac", 200, "02:00:00:00:01:0f");
	expect("/2009-04-04/meta-data/instance-id", 200, "i-000000002a");
	expect("/latest/meta-data/", 200,
	       "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\npublic-keys/\n");
	expect("/latest/meta-data/public-ipv4", 404, NULL);     /* none attached */
}

static void ec2_keys(void **state)
{
	(void)state;
	expect("/latest/meta-data/public-keys/", 200, "0=laptop\n1=ci\n");
	expect("/latest/meta-data/public-keys/1/", 200, "openssh-key\n");
	expect("/latest/meta-data/public-keys/0/openssh-key", 200,
	       "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA laptop\n");
	expect("/latest/meta-data/public-keys/2/openssh-key", 404, NULL);
	expect("/latest/meta-data/public-keys/x/openssh-key", 404, NULL);
}

static void user_data_is_binary_safe(void **state)
{
	struct vm vm = make_vm();
	struct md_reply r;
	(void)state;
	assert_int_equal(metadata_render(&vm, "/latest/user-data", &r), 200);
	assert_int_equal(r.len, sizeof(ud));
	assert_memory_equal(r.body, ud, sizeof(ud));
	free(r.body);
	assert_int_equal(metadata_render(&vm, "/openstack/2012-08-10/user_data", &r), 200);
	assert_memory_equal(r.body, ud, sizeof(ud));
	free(r.body);
	vm.user_data = NULL;
	vm.user_data_len = 0;
	assert_int_equal(metadata_render(&vm, "/latest/user-data", &r), 404);
	free(r.body);
}

static void openstack_json(void **state)
{
	int st;
	(void)state;
	char *s = get("/openstack/latest/meta_data.json", &st);
	assert_int_equal(st, 200);
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "web");
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "web");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "public_keys"), "ci")),
			    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ci");
	assert_non_null(strstr(json_string_value(json_object_get(j, "uuid")), "000000002a"));
	json_decref(j);
	free(s);
	s = get("/openstack/2013-10-17/network_data.json", &st);
	assert_int_equal(st, 200);
	j = json_loads(s, 0, NULL);
	json_t *link = json_array_get(json_object_get(j, "links"), 0);
	assert_string_equal(json_string_value(json_object_get(link, "ethernet_mac_address")),
			    "02:00:00:00:01:0f");
	json_decref(j);
	free(s);
}

static void unknown_paths(void **state)
{
	(void)state;
	expect("/latest/meta-data/nope", 404, NULL);
	expect("/1.0/meta-data/hostname", 404, NULL);
	expect("/latest/../etc/passwd", 404, NULL);
	expect("/openstack/latest/secret", 404, NULL);
	expect("/openstack/20xx-01-01/meta_data.json", 404, NULL);
	expect("/", 200, "latest\n2009-04-04\nopenstack\n");
}

/* Routed prefixes and a public IPv4 address (issue 13): EC2's
 * network/interfaces/macs/<mac>/ipv6-prefix and public-ipv4(s), and an
 * address of each prefix in OpenStack's network_data.json. */
static void routed_prefixes_and_public_ipv4(void **state)
{
	(void)state;
	char *prefixes[] = { "2001:db8:100:1::/64", "2001:db8:100:200::/56" };
	struct nic nics[2] = {
		{ .id = 0x10f, .network = 1, .network_name = "office", .network_ipv6 = "2001:db8:10::/64",
		  .ipv4 = "10.0.0.2", .prefixes = prefixes, .n_prefixes = 2, .public_ipv4 = "198.51.100.7" },
		{ .id = 0x110, .network = 2, .network_name = "backend", .network_ipv6 = "2001:db8:20::/64" },
	};
	struct vm vm = make_vm();
	struct md_reply r;
	vm.nics = nics;
	vm.n_nics = 2;
	const struct { const char *path; int status; const char *body; } want[] = {
		{ "/latest/meta-data/", 200,
		  "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\npublic-ipv4\npublic-keys/\n" },
		{ "/latest/meta-data/public-ipv4", 200, "198.51.100.7" },
		{ "/latest/meta-data/network/", 200, "interfaces/\n" },
		{ "/latest/meta-data/network/interfaces/", 200, "macs/\n" },
		{ "/latest/meta-data/network/interfaces/macs/", 200, "02:00:00:00:01:0f/\n02:00:00:00:01:10/\n" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0f/", 200,
		  "mac\nipv6-prefix\npublic-ipv4s\n" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0f/ipv6-prefix", 200,
		  "2001:db8:100:1::/64\n2001:db8:100:200::/56" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0f/public-ipv4s", 200, "198.51.100.7" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:10/", 200, "mac\n" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:10/mac", 200, "02:00:00:00:01:10" },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:10/ipv6-prefix", 404, NULL },
		{ "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:11/", 404, NULL },
		{ "/latest/meta-data/network/interfaces/macsx/", 404, NULL },
		{ "/latest/meta-data/networkx", 404, NULL },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int st = metadata_render(&vm, want[i].path, &r);
		if (st != want[i].status)
			fail_msg("%s: status %d, want %d", want[i].path, st, want[i].status);
		if (want[i].body != NULL && (r.body == NULL || r.len != strlen(want[i].body) ||
					     memcmp(r.body, want[i].body, r.len) != 0))
			fail_msg("%s: body '%.*s', want '%s'", want[i].path, (int)r.len, r.body ? r.body : "",
				 want[i].body);
		free(r.body);
	}

	assert_int_equal(metadata_render(&vm, "/openstack/latest/network_data.json", &r), 200);
	json_t *j = json_loadb(r.body, r.len, 0, NULL), *net;
	size_t i, statics = 0;
	assert_non_null(j);
	json_array_foreach(json_object_get(j, "networks"), i, net) {
		if (strcmp(json_string_value(json_object_get(net, "type")), "ipv6") != 0)
			continue;
		assert_string_equal(json_string_value(json_object_get(net, "link")), "tap0");
		const char *addr = json_string_value(json_object_get(net, "ip_address"));
		assert_true(strcmp(addr, statics ? "2001:db8:100:200::1" : "2001:db8:100:1::1") == 0);
		statics++;
	}
	assert_int_equal(statics, 2);
	json_decref(j);
	free(r.body);
}

/* ---- IMDSv2 tokens ------------------------------------------------------ */

static const uint8_t key[IMDS_KEY_BYTES] = { 1, 2, 3, 4, 5 };

static void token_ttl_header(void **state)
{
	(void)state;
	assert_int_equal(imds_ttl_parse("1"), 1);
	assert_int_equal(imds_ttl_parse("21600"), 21600);
	assert_int_equal(imds_ttl_parse("00060"), 60);
	const char *bad[] = { NULL, "", "0", "21601", "99999", "100000", "-1", "+5", " 5", "5 ",
			      "1e3", "abc", "0x10", "6O" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(imds_ttl_parse(bad[i]), -1);
}

static void token_bound_to_vm_and_time(void **state)
{
	char t[IMDS_TOKEN_CHARS + 1];
	(void)state;
	imds_token_mint(key, 0x2a, 1000, 60, t);
	assert_int_equal(strlen(t), IMDS_TOKEN_CHARS);
	assert_int_equal(imds_token_check(key, t, 0x2a, 1000), IMDS_TOKEN_OK);
	assert_int_equal(imds_token_check(key, t, 0x2a, 60999), IMDS_TOKEN_OK);
	assert_int_equal(imds_token_check(key, t, 0x2a, 61000), IMDS_TOKEN_EXPIRED);
	assert_int_equal(imds_token_check(key, t, 0x2b, 2000), IMDS_TOKEN_OTHER_VM);
	/* Another key (another hcd, or one restarted): forged. */
	uint8_t other[IMDS_KEY_BYTES] = { 9 };
	assert_int_equal(imds_token_check(other, t, 0x2a, 2000), IMDS_TOKEN_FORGED);
}

static void token_forgeries(void **state)
{
	char t[IMDS_TOKEN_CHARS + 1], u[IMDS_TOKEN_CHARS + 2];
	(void)state;
	imds_token_mint(key, 7, 0, 21600, t);
	/* Every single-character change is caught. */
	for (size_t i = 0; i < IMDS_TOKEN_CHARS; i++) {
		memcpy(u, t, sizeof(t));
		u[i] = u[i] == 'A' ? 'B' : 'A';
		assert_int_equal(imds_token_check(key, u, 7, 1), IMDS_TOKEN_FORGED);
	}
	snprintf(u, sizeof(u), "%sA", t);
	assert_int_equal(imds_token_check(key, u, 7, 1), IMDS_TOKEN_FORGED);
	assert_int_equal(imds_token_check(key, t + 1, 7, 1), IMDS_TOKEN_FORGED);
	assert_int_equal(imds_token_check(key, "", 7, 1), IMDS_TOKEN_FORGED);
	assert_int_equal(imds_token_check(key, NULL, 7, 1), IMDS_TOKEN_FORGED);
	memset(u, '=', IMDS_TOKEN_CHARS);
	u[IMDS_TOKEN_CHARS] = '\0';
	assert_int_equal(imds_token_check(key, u, 7, 1), IMDS_TOKEN_FORGED);
	/* A token whose VM field was rewritten keeps its old MAC: forged, not
	 * "another VM's". */
	uint8_t raw[48];
	size_t len;
	assert_int_equal(sodium_base642bin(raw, sizeof(raw), t, IMDS_TOKEN_CHARS, NULL, &len, NULL,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	raw[7] ^= 1;
	sodium_bin2base64(u, sizeof(u), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_int_equal(imds_token_check(key, u, 6, 1), IMDS_TOKEN_FORGED);
}

/* ---- the bucket table --------------------------------------------------- */

static void limit_burst_then_rate(void **state)
{
	struct limit_table *t = limit_new(5, 15);
	uint64_t a = 1, b = 2;
	int ok = 0;
	(void)state;
	for (int i = 0; i < 100; i++)
		ok += limit_take(t, &a, sizeof(a), 1000);
	assert_int_equal(ok, 15);
	/* Another key has its own bucket. */
	assert_true(limit_take(t, &b, sizeof(b), 1000));
	/* One second later: 5 more for a. */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += limit_take(t, &a, sizeof(a), 2000);
	assert_int_equal(ok, 5);
	limit_free(t);
	t = limit_new(0, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(limit_take(t, &a, sizeof(a), 0));
	limit_free(t);
}

/* Many more keys in use than slots: a key in the middle of its limit is
 * never handed a fresh bucket, whatever else comes and goes. */
static void limit_never_looser(void **state)
{
	struct limit_table *t = limit_new(1, 3);
	uint64_t victim = 0;
	int ok = 0;
	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(limit_take(t, &victim, sizeof(victim), 0));
	for (uint64_t k = 1; k < 4 * LIMIT_SLOTS; k++)
		limit_take(t, &k, sizeof(k), 0);
	for (int i = 0; i < 10; i++)
		ok += limit_take(t, &victim, sizeof(victim), 0);
	assert_int_equal(ok, 0);
	/* Once its bucket would be full again, forgetting it gave nothing. */
	ok = 0;
	for (int i = 0; i < 10; i++)
		ok += limit_take(t, &victim, sizeof(victim), 3000);
	assert_true(ok <= 3);
	limit_free(t);
}

/* ---- parsing netlink ---------------------------------------------------- */

struct msgbuf {
	char b[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t len;
	struct nlmsghdr *last;
};

static void *msg_start(struct msgbuf *m, int type, const void *hdr, size_t hdr_len)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)(m->b + m->len);
	memset(nh, 0, NLMSG_SPACE(hdr_len));
	nh->nlmsg_type = (unsigned short)type;
	nh->nlmsg_len = (unsigned)NLMSG_LENGTH(hdr_len);
	memcpy(NLMSG_DATA(nh), hdr, hdr_len);
	m->last = nh;
	m->len += NLMSG_ALIGN(nh->nlmsg_len);
	return nh;
}

static void msg_attr(struct msgbuf *m, int type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(m->b + m->len);
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	m->last->nlmsg_len = (unsigned)(NLMSG_ALIGN(m->last->nlmsg_len) + RTA_ALIGN(a->rta_len));
	m->len = (size_t)((char *)m->last - m->b) + NLMSG_ALIGN(m->last->nlmsg_len);
}

struct drops {
	int n, all;
	int ifindex;
	struct ident_key k;
};

static void record(void *arg, const struct ident_key *k, int ifindex)
{
	struct drops *d = arg;
	d->n++;
	if (k)
		d->k = *k;
	else if (ifindex)
		d->ifindex = ifindex;
	else
		d->all++;
}

static void neigh_msg(struct msgbuf *m, int type, int family, int ifindex, const char *addr,
		      const uint8_t *mac, int state)
{
	struct ndmsg nd = { .ndm_family = (unsigned char)family, .ndm_ifindex = ifindex,
			    .ndm_state = (unsigned short)state };
	uint8_t a[16];
	msg_start(m, type, &nd, sizeof(nd));
	if (addr) {
		inet_pton(family, addr, a);
		msg_attr(m, NDA_DST, a, family == AF_INET ? 4 : 16);
	}
	if (mac)
		msg_attr(m, NDA_LLADDR, mac, 6);
}

static void events(void **state)
{
	struct msgbuf m = { 0 };
	struct drops d = { 0 };
	struct ifinfomsg ifi = { .ifi_index = 7 };
	struct rtmsg rt = { .rtm_family = AF_INET };
	static const uint8_t mac[6] = { 2, 0, 0, 0, 1, 0x0f };
	(void)state;

	neigh_msg(&m, RTM_NEWNEIGH, AF_INET, 5, "10.0.0.2", mac, NUD_REACHABLE);
	ident_parse_events(m.b, m.len, record, &d);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.k.family, AF_INET);
	assert_int_equal(d.k.scope, 0);
	assert_memory_equal(d.k.addr, "\x0a\x00\x00\x02", 4);

	/* Link-local IPv6: the key carries the interface, as a client's
	 * address does (sin6_scope_id). */
	memset(&m, 0, sizeof(m));
	memset(&d, 0, sizeof(d));
	neigh_msg(&m, RTM_DELNEIGH, AF_INET6, 5, "fe80::ff:fe00:10f", NULL, 0);
	neigh_msg(&m, RTM_NEWNEIGH, AF_BRIDGE, 5, NULL, mac, 0);   /* an FDB entry: ignored */
	neigh_msg(&m, RTM_NEWNEIGH, AF_INET, 5, NULL, mac, 0);     /* no address: ignored */
	msg_start(&m, RTM_NEWLINK, &ifi, sizeof(ifi));
	msg_start(&m, RTM_NEWROUTE, &rt, sizeof(rt));
	ident_parse_events(m.b, m.len, record, &d);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.k.family, AF_INET6);
	assert_int_equal(d.k.scope, 5);
	assert_int_equal(d.ifindex, 7);
	assert_int_equal(d.all, 1);

	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_scope_id = 5 };
	struct ident_key k;
	inet_pton(AF_INET6, "fe80::ff:fe00:10f", &sa.sin6_addr);
	assert_true(ident_key_of((struct sockaddr *)&sa, &k));
	assert_memory_equal(&k, &d.k, sizeof(k));
	/* A global address has no scope in the key. */
	inet_pton(AF_INET6, "2001:db8::1", &sa.sin6_addr);
	assert_true(ident_key_of((struct sockaddr *)&sa, &k));
	assert_int_equal(k.scope, 0);

	/* A truncated message is skipped, not read past. */
	memset(&m, 0, sizeof(m));
	memset(&d, 0, sizeof(d));
	neigh_msg(&m, RTM_NEWNEIGH, AF_INET, 5, "10.0.0.2", mac, NUD_REACHABLE);
	ident_parse_events(m.b, m.len - 4, record, &d);
	ident_parse_events(m.b, 8, record, &d);
	assert_int_equal(d.n, 0);
}

static void route_replies(void **state)
{
	struct msgbuf m = { 0 };
	struct rtmsg rt = { .rtm_family = AF_INET, .rtm_type = RTN_UNICAST };
	int oif = 9;
	uint8_t gw[4] = { 10, 0, 0, 1 };
	(void)state;

	msg_start(&m, RTM_NEWROUTE, &rt, sizeof(rt));
	msg_attr(&m, RTA_OIF, &oif, sizeof(oif));
	assert_int_equal(ident_parse_route(m.b, m.len), 9);
	/* Through a gateway: not on a link of ours. */
	msg_attr(&m, RTA_GATEWAY, gw, sizeof(gw));
	assert_int_equal(ident_parse_route(m.b, m.len), 0);
	memset(&m, 0, sizeof(m));
	rt.rtm_type = RTN_LOCAL;
	msg_start(&m, RTM_NEWROUTE, &rt, sizeof(rt));
	msg_attr(&m, RTA_OIF, &oif, sizeof(oif));
	assert_int_equal(ident_parse_route(m.b, m.len), 0);
	memset(&m, 0, sizeof(m));
	struct nlmsgerr e = { .error = -ENETUNREACH };
	msg_start(&m, NLMSG_ERROR, &e, sizeof(e));
	assert_int_equal(ident_parse_route(m.b, m.len), 0);
}

static void neigh_replies(void **state)
{
	static const uint8_t ours[6] = { 2, 0, 0, 0, 1, 0x0f }, theirs[6] = { 2, 1, 0, 0, 1, 0x0f };
	static const struct {
		const uint8_t *mac;
		int state;
		bool found;
	} cases[] = {
		{ ours, NUD_STALE, true },
		{ ours, NUD_REACHABLE, true },
		{ theirs, NUD_REACHABLE, false },   /* not a hackcloud MAC */
		{ ours, NUD_FAILED, false },
		{ ours, NUD_INCOMPLETE, false },
		{ NULL, NUD_REACHABLE, false },     /* no link-layer address */
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msgbuf m = { 0 };
		uint64_t nic = 0;
		neigh_msg(&m, RTM_NEWNEIGH, AF_INET, 5, "10.0.0.2", cases[i].mac, cases[i].state);
		assert_int_equal(ident_parse_neigh(m.b, m.len, &nic), cases[i].found);
		if (cases[i].found)
			assert_int_equal(nic, 0x10f);
	}
	struct msgbuf m = { 0 };
	uint64_t nic = 0;
	struct nlmsgerr e = { .error = -ENOENT };
	msg_start(&m, NLMSG_ERROR, &e, sizeof(e));
	assert_false(ident_parse_neigh(m.b, m.len, &nic));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ec2_leaves),
		cmocka_unit_test(ec2_keys),
		cmocka_unit_test(user_data_is_binary_safe),
		cmocka_unit_test(openstack_json),
		cmocka_unit_test(unknown_paths),
		cmocka_unit_test(routed_prefixes_and_public_ipv4),
		cmocka_unit_test(token_ttl_header),
		cmocka_unit_test(token_bound_to_vm_and_time),
		cmocka_unit_test(token_forgeries),
		cmocka_unit_test(limit_burst_then_rate),
		cmocka_unit_test(limit_never_looser),
		cmocka_unit_test(events),
		cmocka_unit_test(route_replies),
		cmocka_unit_test(neigh_replies),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
