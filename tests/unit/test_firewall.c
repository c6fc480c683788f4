/*
 * test_firewall — the ruleset generator (src/net/firewall.h): golden files
 * for fixed snapshots, determinism (input order does not matter), the
 * version following the content, per-NIC state living in set elements
 * (the rules do not grow with the NICs or networks), the fence of every
 * network's vxlan link between hosts, and the refusal of snapshots
 * whose names, addresses or rules could not be emitted safely.
 *
 * What the kernel gets is a netlink batch (fw_batch.c), not the text: as
 * root, each golden snapshot is also loaded both ways into throwaway
 * network namespaces, and what the kernel lists back must be the same
 * (nft's listing, and the raw expressions and elements of
 * `nft --debug=netlink`), and equal to a golden file of that listing.
 *
 * Golden files live in $GOLDEN_DIR, else in golden/ next to this source;
 * UPDATE_GOLDEN=1 rewrites them (review the diff before committing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/ids.h"
#include "net/firewall.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- building snapshots ------------------------------------------------- */

#define MAX_ITEMS 128

/* A snapshot whose arrays are fixed-size: nothing to free but sources. */
struct fixture {
	struct netstate ns;
	struct ns_net nets[MAX_ITEMS];
	struct ns_nic nics[MAX_ITEMS];
	struct ns_rule rules[MAX_ITEMS];
};

static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->ns.nets = f->nets;
	f->ns.nics = f->nics;
	f->ns.rules = f->rules;
	f->ns.metadata_port = 80;
}

static struct ns_net *fx_net(struct fixture *f, uint64_t id, const char *prefix6, const char *cidr4)
{
	struct ns_net *n = &f->nets[f->ns.n_nets++];

	n->id = id;
	/* Bytes after the name's NUL are not zero in real snapshots either. */
	memset(n->bridge, 0x5a, sizeof(n->bridge));
	snprintf(n->bridge, sizeof(n->bridge), "%s", ifname_bridge(id).s);
	assert_int_equal(inet_pton(AF_INET6, prefix6, &n->prefix6), 1);
	if (cidr4 != NULL) {
		char addr[INET_ADDRSTRLEN];
		const char *slash = strchr(cidr4, '/');
		snprintf(addr, sizeof(addr), "%.*s", (int)(slash - cidr4), cidr4);
		assert_int_equal(inet_pton(AF_INET, addr, &n->net4), 1);
		n->len4 = (unsigned)atoi(slash + 1);
		n->has_ip4 = true;
	}
	return n;
}

static const struct ns_net *fx_find_net(const struct fixture *f, uint64_t id)
{
	for (size_t i = 0; i < f->ns.n_nets; i++)
		if (f->nets[i].id == id)
			return &f->nets[i];
	fail_msg("no network %llu", (unsigned long long)id);
	return NULL;
}

/* A NIC with the addresses DESIGN §2 derives from its ID and network. */
static struct ns_nic *fx_nic(struct fixture *f, uint64_t id, uint64_t vm, uint64_t net, const char *ip4)
{
	struct ns_nic *c = &f->nics[f->ns.n_nics++];
	uint8_t iid[8];

	c->id = id;
	c->vm_id = vm;
	c->net_id = net;
	memset(c->ifname, 0x5a, sizeof(c->ifname));
	snprintf(c->ifname, sizeof(c->ifname), "%s", ifname_tap(id).s);
	nic_mac_bytes(id, c->mac);
	eui64_from_mac(c->mac, iid);
	c->ll6.s6_addr[0] = 0xfe;
	c->ll6.s6_addr[1] = 0x80;
	memcpy(c->ll6.s6_addr + 8, iid, 8);
	c->ip6 = fx_find_net(f, net)->prefix6;
	memcpy(c->ip6.s6_addr + 8, iid, 8);
	if (ip4 != NULL) {
		assert_int_equal(inet_pton(AF_INET, ip4, &c->ip4), 1);
		c->has_ip4 = true;
	}
	c->active = true;
	return c;
}

static struct ns_rule *fx_rule(struct fixture *f, uint64_t id, uint64_t vm, enum ns_proto proto,
			       int lo, int hi, int family, const char *source)
{
	struct ns_rule *r = &f->rules[f->ns.n_rules++];

	*r = (struct ns_rule){ .id = id, .vm_id = vm, .proto = proto, .port_lo = lo, .port_hi = hi,
			       .family = family, .source = (char *)source };
	return r;
}

/* The snapshot of the golden files: "office" (IPv6 + IPv4) and "backend"
 * (IPv6 only); web has one NIC, db one on each network; web opens HTTP to
 * anyone, db PostgreSQL to the office prefix (which crosses networks). */
static void fx_two_nets(struct fixture *f)
{
	fx_init(f);
	fx_net(f, 0x0a, "2001:db8:10::", "10.10.0.0/24");
	fx_net(f, 0x0b, "2001:db8:20::", NULL);
	fx_nic(f, 0x10f, 0x2a, 0x0a, "10.10.0.5");
	fx_nic(f, 0x110, 0x2b, 0x0a, "10.10.0.6");
	fx_nic(f, 0x111, 0x2b, 0x0b, NULL);
	fx_rule(f, 1, 0x2a, NS_PROTO_TCP, 80, 80, 0, NULL);
	fx_rule(f, 2, 0x2b, NS_PROTO_TCP, 5432, 5432, AF_INET6, "2001:db8:10::/64");
}

static char *ruleset(const struct fixture *f, char **version)
{
	char *text = firewall_ruleset(&f->ns, version);
	if (text == NULL) {
		char *err = NULL;
		firewall_check(&f->ns, &err);
		fail_msg("firewall_ruleset: %s", err ? err : strerror(errno));
	}
	return text;
}

/* ---- golden files --------------------------------------------------------- */

static char *golden_path(const char *name)
{
	const char *dir = getenv("GOLDEN_DIR");
	char *path = NULL;

	if (dir != NULL && *dir)
		assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	else {
		const char *file = __FILE__, *slash = strrchr(file, '/');
		assert_true(asprintf(&path, "%.*sgolden/%s", slash ? (int)(slash - file + 1) : 0, file,
				     name) > 0);
	}
	return path;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (fp == NULL)
		return NULL;
	FILE *mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(fp);
	fclose(mem);
	return buf;
}

static void golden_compare(const struct fixture *f, const char *name)
{
	char *path = golden_path(name), *text = ruleset(f, NULL), *want;
	const char *update = getenv("UPDATE_GOLDEN");

	if (update != NULL && strcmp(update, "1") == 0) {
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(text, fp);
		assert_int_equal(fclose(fp), 0);
	}
	want = slurp(path);
	if (want == NULL)
		fail_msg("%s: missing (run with UPDATE_GOLDEN=1 to create it)", path);
	if (strcmp(text, want) != 0) {
		/* Point at the first difference: a whole-file dump is unreadable. */
		size_t i = 0, line = 1;
		while (text[i] && text[i] == want[i])
			line += text[i++] == '\n';
		fail_msg("%s differs from the generated ruleset at line %zu "
			 "(UPDATE_GOLDEN=1 rewrites it)", path, line);
	}
	free(want);
	free(text);
	free(path);
}

/* ---- what the kernel lists back ------------------------------------------- */

/* A command's output (run in this process's network namespace). */
static char *run(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;

	assert_non_null(p);
	assert_non_null(mem);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		fwrite(chunk, 1, n, mem);
	assert_int_equal(pclose(p), 0);
	fclose(mem);
	return buf;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of a listing (freed here), sorted: hash sets list their
 * elements in an order of their own. */
static char *sorted_lines(char *text)
{
	char **lines = NULL, *out = NULL, *save = NULL;
	size_t n = 0, len = 0;
	FILE *mem = open_memstream(&out, &len);

	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		lines = realloc(lines, (n + 1) * sizeof(*lines));
		assert_non_null(lines);
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(*lines), cmp_line);
	for (size_t i = 0; i < n; i++)
		fprintf(mem, "%s\n", lines[i]);
	fclose(mem);
	free(lines);
	free(text);
	return out;
}

/* A fresh, empty network namespace for this process. */
static void fresh_netns(void)
{
	assert_int_equal(unshare(CLONE_NEWNET), 0);
}

static void assert_same_text(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) != 0) {
		size_t i = 0, line = 1;
		while (got[i] && got[i] == want[i])
			line += got[i++] == '\n';
		fail_msg("%s differ from line %zu on", what, line);
	}
}

/* Load the snapshot as text (libnftables) and as a batch (firewall_apply)
 * into two namespaces; the kernel must list the same back, and that
 * listing must be the golden one. */
static void kernel_compare(const struct fixture *f, const char *name)
{
	char *text = ruleset(f, NULL), *err = NULL;
	char *by_text, *by_batch, *raw_text, *raw_batch;
	struct nft_ctx *ctx;

	if (geteuid() != 0) {
		print_message("not root: the kernel comparison of %s is skipped\n", name);
		skip();
	}
	fresh_netns();
	ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	assert_non_null(ctx);
	assert_int_equal(nft_ctx_buffer_error(ctx), 0);
	if (nft_run_cmd_from_buffer(ctx, text) != 0)
		fail_msg("nft refused the text of %s: %s", name, nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
	by_text = run("nft list ruleset");
	raw_text = sorted_lines(run("nft --debug=netlink list ruleset 2>&1"));

	fresh_netns();
	if (firewall_apply(&f->ns, &err) < 0)
		fail_msg("firewall_apply(%s): %s", name, err);
	by_batch = run("nft list ruleset");
	raw_batch = sorted_lines(run("nft --debug=netlink list ruleset 2>&1"));
	assert_same_text("nft's listings of the text and of the batch", by_batch, by_text);
	assert_same_text("the raw expressions and elements of the text and of the batch", raw_batch,
			 raw_text);

	/* Applying the same state again changes nothing; removing leaves nothing. */
	assert_int_equal(firewall_apply(&f->ns, &err), 0);
	char *again = run("nft list ruleset");
	assert_string_equal(again, by_batch);
	assert_int_equal(firewall_remove(&err), 0);
	char *none = run("nft list ruleset");
	assert_string_equal(none, "");

	char *path = golden_path(name);
	const char *update = getenv("UPDATE_GOLDEN");
	if (update != NULL && strcmp(update, "1") == 0) {
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(by_batch, fp);
		assert_int_equal(fclose(fp), 0);
	}
	char *want = slurp(path);
	if (want == NULL)
		fail_msg("%s: missing (run with UPDATE_GOLDEN=1 as root to create it)", path);
	assert_same_text("the kernel's listing and its golden file", by_batch, want);
	free(want);
	free(path);
	free(none);
	free(again);
	free(by_text);
	free(by_batch);
	free(raw_text);
	free(raw_batch);
	free(text);
}

static void golden_empty(void **state)
{
	(void)state;
	struct fixture f;
	fx_init(&f);
	golden_compare(&f, "empty.nft");
	kernel_compare(&f, "empty.kernel");
}

static void golden_two_networks(void **state)
{
	(void)state;
	struct fixture f;
	fx_two_nets(&f);
	golden_compare(&f, "two-networks.nft");
	kernel_compare(&f, "two-networks.kernel");
}

static void golden_uplink(void **state)
{
	(void)state;
	struct fixture f;
	char uplink[] = "eth0";
	fx_two_nets(&f);
	f.ns.uplink = uplink;
	golden_compare(&f, "uplink.nft");
	kernel_compare(&f, "uplink.kernel");
}

/* Every rule shape, through the kernel both ways. */
static void golden_rule_shapes(void **state)
{
	(void)state;
	struct fixture f;
	char uplink[] = "eth0";
	fx_two_nets(&f);
	f.ns.uplink = uplink;
	fx_rule(&f, 3, 0x2a, NS_PROTO_TCP, 0, 0, 0, NULL);
	fx_rule(&f, 4, 0x2a, NS_PROTO_UDP, 1000, 2000, AF_INET, NULL);
	fx_rule(&f, 5, 0x2a, NS_PROTO_ICMP, 0, 0, 0, NULL);
	fx_rule(&f, 6, 0x2a, NS_PROTO_ICMP, 0, 0, AF_INET6, NULL);
	fx_rule(&f, 7, 0x2b, NS_PROTO_ANY, 0, 0, 0, "192.0.2.0/24");
	fx_rule(&f, 8, 0x2b, NS_PROTO_UDP, 53, 53, 0, "2001:db8::/33");
	fx_rule(&f, 9, 0x2b, NS_PROTO_TCP, 1, 65535, 0, "0.0.0.0/0");
	fx_rule(&f, 10, 0x2b, NS_PROTO_TCP, 22, 22, 0, "10.16.0.0/12");
	fx_rule(&f, 11, 0x2b, NS_PROTO_TCP, 22, 22, 0, "2001:db8:1::5/128");
	fx_rule(&f, 12, 0x2a, NS_PROTO_ANY, 0, 0, AF_INET6, NULL);
	golden_compare(&f, "rule-shapes.nft");
	kernel_compare(&f, "rule-shapes.kernel");
}

/* ---- determinism and versions -------------------------------------------- */

static void reverse(void *base, size_t n, size_t size)
{
	char tmp[sizeof(struct ns_nic) > sizeof(struct ns_net) ? sizeof(struct ns_nic) :
		 sizeof(struct ns_net)];
	char *a = base;

	assert_true(size <= sizeof(tmp));
	for (size_t i = 0; i < n / 2; i++) {
		memcpy(tmp, a + i * size, size);
		memcpy(a + i * size, a + (n - 1 - i) * size, size);
		memcpy(a + (n - 1 - i) * size, tmp, size);
	}
}

static void same_snapshot_any_order_same_text(void **state)
{
	(void)state;
	struct fixture a, b;
	char *va, *vb, *ta, *tb;

	fx_two_nets(&a);
	fx_rule(&a, 3, 0x2a, NS_PROTO_UDP, 53, 53, 0, NULL);
	fx_rule(&a, 4, 0x2a, NS_PROTO_ICMP, 0, 0, AF_INET, NULL);
	b = a;
	b.ns.nets = b.nets;
	b.ns.nics = b.nics;
	b.ns.rules = b.rules;
	reverse(b.nets, b.ns.n_nets, sizeof(b.nets[0]));
	reverse(b.nics, b.ns.n_nics, sizeof(b.nics[0]));
	reverse(b.rules, b.ns.n_rules, sizeof(b.rules[0]));
	ta = ruleset(&a, &va);
	tb = ruleset(&b, &vb);
	assert_string_equal(ta, tb);
	assert_string_equal(va, vb);
	free(ta);
	free(tb);
	free(va);
	free(vb);
}

static void version_is_hex_and_names_every_object(void **state)
{
	(void)state;
	struct fixture f;
	char *v, *text;

	fx_two_nets(&f);
	text = ruleset(&f, &v);
	assert_int_equal(strlen(v), FIREWALL_VERSION_LEN);
	assert_int_equal(strspn(v, "0123456789abcdef"), FIREWALL_VERSION_LEN);
	/* No placeholder byte survives, every versioned name carries it. */
	assert_null(strchr(text, '\x01'));
	char jump[32];
	snprintf(jump, sizeof(jump), "jump pre-%s\n", v);
	assert_non_null(strstr(text, jump));
	snprintf(jump, sizeof(jump), "chain vm-000000002a-%s {", v);
	assert_non_null(strstr(text, jump));
	/* Only IDs-derived names: no user-visible names leak (there are none
	 * in the fixture; this guards the format). */
	assert_null(strstr(text, "(null)"));
	free(text);
	free(v);
}

static char *version_of(const struct fixture *f)
{
	char *v, *text = ruleset(f, &v);
	free(text);
	return v;
}

static void version_follows_content(void **state)
{
	(void)state;
	struct fixture f;
	char *base, *v;

	fx_two_nets(&f);
	base = version_of(&f);
	v = version_of(&f);
	assert_string_equal(base, v);   /* same state, same version */
	free(v);

	f.rules[0].port_hi = 81;        /* a rule changes */
	v = version_of(&f);
	assert_string_not_equal(base, v);
	free(v);
	f.rules[0].port_hi = 80;

	f.nics[0].ip4.s_addr = htonl(0x0a0a0009);   /* a NIC's address changes */
	v = version_of(&f);
	assert_string_not_equal(base, v);
	free(v);
	inet_pton(AF_INET, "10.10.0.5", &f.nics[0].ip4);

	f.nics[2].active = false;       /* a VM stops here */
	v = version_of(&f);
	assert_string_not_equal(base, v);
	free(v);
	f.nics[2].active = true;

	/* Names the ruleset never shows do not matter. */
	char name[] = "renamed";
	f.nics[0].vm_name = name;
	f.nets[0].name = name;
	v = version_of(&f);
	assert_string_equal(base, v);
	free(v);
	free(base);
}

static void inactive_nic_left_out(void **state)
{
	(void)state;
	struct fixture f;
	char *text;

	fx_two_nets(&f);
	f.nics[2].active = false;
	text = ruleset(&f, NULL);
	assert_null(strstr(text, ifname_tap(0x111).s));
	assert_non_null(strstr(text, ifname_tap(0x110).s));
	free(text);
}

/* ---- scale: per-NIC state is in elements, not rules ----------------------- */

/* Lines inside chain blocks: rules (and the base chains' type lines). */
static size_t rule_lines(const char *text)
{
	size_t n = 0;
	bool in_chain = false;

	for (const char *p = text; *p; ) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len >= 7 && strncmp(p, "\tchain ", 7) == 0)
			in_chain = true;
		else if (len == 2 && strncmp(p, "\t}", 2) == 0)
			in_chain = false;
		else if (in_chain && len > 0)
			n++;
		p += len + (eol != NULL);
	}
	return n;
}

static void rules_do_not_grow_with_nics(void **state)
{
	(void)state;
	struct fixture *f = malloc(sizeof(*f));
	char *one, *many;

	/* One VM with a rule and many VMs without: one per-VM chain either way. */
	fx_init(f);
	fx_net(f, 1, "2001:db8:1::", "10.1.0.0/16");
	fx_nic(f, 0x100, 1, 1, "10.1.0.2");
	fx_rule(f, 1, 1, NS_PROTO_TCP, 22, 22, 0, "10.0.0.0/8");
	one = ruleset(f, NULL);
	for (int i = 1; i < 100; i++) {
		char ip[INET_ADDRSTRLEN + 8];
		snprintf(ip, sizeof(ip), "10.1.0.%d", 2 + i);
		fx_nic(f, 0x100 + (uint64_t)i, 1 + (uint64_t)i, 1, ip);
	}
	many = ruleset(f, NULL);
	assert_int_equal(rule_lines(one), rule_lines(many));
	assert_true(strlen(many) > strlen(one));    /* the NICs are there, as elements */
	assert_non_null(strstr(many, ifname_tap(0x100 + 99).s));
	free(one);
	free(many);
	free(f);
}

/* VMs with the same rules share one chain (named after the lowest VM);
 * a VM whose rules differ keeps its own; the map leads each tap there. */
static void same_rules_share_a_chain(void **state)
{
	(void)state;
	struct fixture f;
	char *v, *text, line[256];

	fx_two_nets(&f);
	fx_nic(&f, 0x112, 0x2c, 0x0a, "10.10.0.7");
	fx_rule(&f, 7, 0x2c, NS_PROTO_TCP, 80, 80, 0, NULL);          /* as 2a's */
	fx_nic(&f, 0x113, 0x2d, 0x0a, "10.10.0.8");
	fx_rule(&f, 8, 0x2d, NS_PROTO_TCP, 80, 81, 0, NULL);          /* not as 2a's */
	text = ruleset(&f, &v);
	const char *want[] = {
		"\t\t\t\"v020000000112\" : jump vm-000000002a-%s",
		"\t\t\t\"v020000000113\" : jump vm-000000002d-%s",
		"\tchain vm-000000002a-%s {\n\t\ttcp dport 80 accept\n\t}\n",
		"\tchain vm-000000002d-%s {\n\t\ttcp dport 80-81 accept\n\t}\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(line, sizeof(line), want[i], v);
		if (strstr(text, line) == NULL)
			fail_msg("missing: %s", line);
	}
	assert_null(strstr(text, "chain vm-000000002c"));
	free(text);
	free(v);
}

/* ---- between hosts --------------------------------------------------------- */

/* Every network's vxlan link is fenced, whether it exists or not: DHCP,
 * router messages and ARP/NDP of the host's own addresses stay on their
 * host, both ways; per-network facts are elements, not rules. */
static void overlay_fences_each_network(void **state)
{
	(void)state;
	struct fixture *f = malloc(sizeof(*f));
	char *v, *text, *many, line[512];

	fx_two_nets(f);
	text = ruleset(f, &v);
	const char *want[] = {
		"\t\t\t\"x00000a\",\n\t\t\t\"x00000b\"\n",
		"\"x00000a\" . 10.10.0.1\n",
		"\"x00000a\" . 0x20010db8001000000000000000000001,\n",
		"\"x00000b\" . 0xfe8000000000000000000000a9fea9fe\n",   /* the metadata address */
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing element: %s", want[i]);
	assert_null(strstr(text, "\"x00000b\" . 10."));            /* no IPv4 on backend */
	const char *rules[] = { "\t\tiifname @overlay-%s goto from-peer-%s\n",
				"\t\toifname @overlay-%s goto to-peer-%s\n" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(line, sizeof(line), rules[i], v, v);
		assert_non_null(strstr(text, line));
	}
	const char *dirs[] = { "from-peer", "iifname", "to-peer", "oifname" };
	for (size_t i = 0; i < 4; i += 2) {
		snprintf(line, sizeof(line), "\tchain %s-%s {\n"
			 "\t\tudp dport { 67, 68, 546, 547 } drop\n"
			 "\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-redirect } drop\n"
			 "\t\t%s . arp saddr ip @gw4-%s drop\n", dirs[i], v, dirs[i + 1], v);
		if (strstr(text, line) == NULL)
			fail_msg("missing chain start: %s", line);
	}
	snprintf(line, sizeof(line), "\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }"
		 " oifname . @th,64,128 @gw6-%s drop\n", v);
	assert_non_null(strstr(text, line));

	/* Many networks: the same rules, more elements. */
	for (uint64_t id = 0x100; id < 0x140; id++) {
		char p6[32];
		snprintf(p6, sizeof(p6), "2001:db8:%llx::", (unsigned long long)id);
		fx_net(f, id, p6, "10.99.0.0/24");
	}
	many = ruleset(f, NULL);
	assert_int_equal(rule_lines(text), rule_lines(many));
	assert_non_null(strstr(many, "\"x00013f\" . 10.99.0.1"));
	free(many);
	free(text);
	free(v);
	free(f);
}

/* ---- refused snapshots ---------------------------------------------------- */

static void assert_refused(const struct fixture *f, const char *why)
{
	char *err = NULL, *v = (char *)"untouched";

	errno = 0;
	assert_null(firewall_ruleset(&f->ns, &v));
	assert_int_equal(errno, EINVAL);
	assert_null(v);
	assert_int_equal(firewall_check(&f->ns, &err), -1);
	assert_non_null(err);
	if (strstr(err, why) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, why);
	free(err);
}

static void refuses_bad_interface_names(void **state)
{
	(void)state;
	struct fixture f;
	char uplink[32];

	fx_two_nets(&f);
	strcpy(f.nics[0].ifname, "v02000000010F");          /* uppercase */
	assert_refused(&f, "tap name");
	fx_two_nets(&f);
	strcpy(f.nics[0].ifname, "v\" accept; #");          /* injection */
	assert_refused(&f, "tap name");
	fx_two_nets(&f);
	strcpy(f.nics[0].ifname, ifname_tap(0x110).s);       /* not its own ID */
	assert_refused(&f, "tap name");
	fx_two_nets(&f);
	memset(f.nics[0].ifname, 'v', sizeof(f.nics[0].ifname)); /* unterminated */
	assert_refused(&f, "tap name");
	fx_two_nets(&f);
	strcpy(f.nets[1].bridge, "br0");
	assert_refused(&f, "bridge name");

	ifname_str tap = ifname_tap(1);
	const char *bad_uplinks[] = { "", "eth0\"", "a b", "eth0;drop", "0123456789abcdef",
				      "..", "b00000a", tap.s };
	for (size_t i = 0; i < sizeof(bad_uplinks) / sizeof(bad_uplinks[0]); i++) {
		fx_two_nets(&f);
		snprintf(uplink, sizeof(uplink), "%s", bad_uplinks[i]);
		f.ns.uplink = uplink;
		assert_refused(&f, "uplink");
	}
	fx_two_nets(&f);
	snprintf(uplink, sizeof(uplink), "enp0s31f6.100");
	f.ns.uplink = uplink;
	free(ruleset(&f, NULL));
}

static void refuses_foreign_addresses(void **state)
{
	(void)state;
	struct fixture f;

	fx_two_nets(&f);
	f.nics[0].mac[5] ^= 1;
	assert_refused(&f, "MAC");
	fx_two_nets(&f);
	f.nics[0].ll6.s6_addr[15] ^= 1;
	assert_refused(&f, "link-local");
	fx_two_nets(&f);
	memset(&f.nics[0].ip6, 0, sizeof(f.nics[0].ip6));
	assert_refused(&f, "IPv6");
	fx_two_nets(&f);
	f.nics[0].ip4.s_addr = 0;
	assert_refused(&f, "IPv4");
	fx_two_nets(&f);
	fx_nic(&f, 0x10f, 0x2c, 0x0b, NULL);                /* the same NIC twice */
	assert_refused(&f, "twice");
	fx_two_nets(&f);
	fx_net(&f, 0x0a, "2001:db8:30::", NULL);
	assert_refused(&f, "twice");
}

/* A NIC whose VM does not run here is not emitted, so its data cannot
 * spoil the ruleset of the VMs that do. */
static void inactive_nics_are_not_checked(void **state)
{
	(void)state;
	struct fixture f;

	fx_two_nets(&f);
	f.nics[2].active = false;
	memset(&f.nics[2].ip6, 0, sizeof(f.nics[2].ip6));
	strcpy(f.nics[2].ifname, "junk");
	fx_nic(&f, 0x10f, 0x2c, 0x0b, NULL)->active = false;   /* a duplicate, inactive */
	free(ruleset(&f, NULL));
}

static void refuses_bad_rules(void **state)
{
	(void)state;
	struct fixture f;

	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, NS_PROTO_ICMP, 1, 2, 0, NULL);
	assert_refused(&f, "ports");
	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, NS_PROTO_TCP, 0, 22, 0, NULL);
	assert_refused(&f, "port range");
	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, NS_PROTO_UDP, 10, 70000, 0, NULL);
	assert_refused(&f, "port range");
	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, NS_PROTO_TCP, 22, 22, 0, "10.0.0.1/8");     /* host bits */
	assert_refused(&f, "source");
	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, NS_PROTO_TCP, 22, 22, 0, "10.0.0.0/8 accept");
	assert_refused(&f, "source");
	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, NS_PROTO_TCP, 22, 22, AF_INET, "2001:db8::/32");
	assert_refused(&f, "family");
	fx_two_nets(&f);
	fx_rule(&f, 9, 0x2a, (enum ns_proto)42, 0, 0, 0, NULL);
	assert_refused(&f, "protocol");
}

/* ---- guests and their host ------------------------------------------------- */

/* The input chain: only from a hackcloud bridge or tap; DNS only to the
 * gateway addresses of the bridge the packet came in on; the metadata
 * service on its configured port; everything else counted and dropped.
 * Per-network facts are elements: more networks, the same rules. */
static void input_chain_fences_guests(void **state)
{
	(void)state;
	struct fixture *f = malloc(sizeof(*f));
	char *v, *text, *many, line[512];

	fx_two_nets(f);
	f->ns.metadata_port = 8775;
	text = ruleset(f, &v);
	const char *rules[] = {
		"\t\tjump in-%s\n",
		"\tchain in-%s {\n\t\tiifname @bridges-%s goto guest-in-%s\n"
		"\t\tiifname \"v0200*\" goto guest-in-%s\n\t}\n",
		"\tchain guest-in-%s {\n\t\tct state established,related accept\n",
		"\t\tmeta l4proto { tcp, udp } th dport 53 iifname . ip daddr @dns4-%s accept\n",
		"\t\tmeta l4proto { tcp, udp } th dport 53 iifname . ip6 daddr @dns6-%s accept\n",
	};
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		snprintf(line, sizeof(line), rules[i], v, v, v, v);
		if (strstr(text, line) == NULL)
			fail_msg("missing: %s", line);
	}
	const char *want[] = {
		"\t\tip daddr 169.254.169.254 tcp dport 8775 accept\n",
		"\t\tip6 daddr fe80::a9fe:a9fe tcp dport 8775 accept\n",
		"\t\tudp sport 68 udp dport 67 accept\n",
		"\t\tudp sport 546 udp dport 547 accept\n",
		"\t\tcounter name \"guest-drop\" drop\n\t}\n",
		"\tcounter guest-drop {\n",
		"\t\t\t\"b00000a\" . 10.10.0.1\n",           /* a's dnsmasq, keyed by a's bridge */
		"\t\t\t\"b00000b\" . 2001:db8:20::1\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing: %s", want[i]);
	assert_null(strstr(text, "\"b00000b\" . 10."));   /* b has no IPv4 */
	assert_null(strstr(text, "tcp dport 80 accept\n\t\tip6 daddr fe80"));

	for (uint64_t id = 0x100; id < 0x140; id++) {
		char p6[32];
		snprintf(p6, sizeof(p6), "2001:db8:%llx::", (unsigned long long)id);
		fx_net(f, id, p6, "10.99.0.0/24");
	}
	many = ruleset(f, NULL);
	assert_int_equal(rule_lines(text), rule_lines(many));
	free(many);
	free(text);
	free(v);

	f->ns.metadata_port = 0;                       /* no metadata service */
	text = ruleset(f, NULL);
	assert_null(strstr(text, "169.254.169.254"));
	free(text);
	f->ns.metadata_port = 65536;
	assert_refused(f, "metadata port");
	free(f);
}

/* Every rule shape renders, and as expected. */
static void rule_shapes(void **state)
{
	(void)state;
	struct fixture f;
	char *text;

	fx_two_nets(&f);
	f.ns.n_rules = 0;
	fx_rule(&f, 1, 0x2a, NS_PROTO_TCP, 0, 0, 0, NULL);
	fx_rule(&f, 2, 0x2a, NS_PROTO_UDP, 1000, 2000, AF_INET, NULL);
	fx_rule(&f, 3, 0x2a, NS_PROTO_ICMP, 0, 0, 0, NULL);
	fx_rule(&f, 4, 0x2a, NS_PROTO_ICMP, 0, 0, AF_INET6, NULL);
	fx_rule(&f, 5, 0x2a, NS_PROTO_ANY, 0, 0, 0, "192.0.2.0/24");
	fx_rule(&f, 6, 0x2a, NS_PROTO_ANY, 0, 0, 0, NULL);
	fx_rule(&f, 7, 0x2a, NS_PROTO_UDP, 53, 53, 0, "2001:db8::/32");
	text = ruleset(&f, NULL);
	const char *want[] = {
		"\t\tmeta l4proto tcp accept\n",
		"\t\tether type ip udp dport 1000-2000 accept\n",
		"\t\tmeta l4proto { icmp, ipv6-icmp } accept\n",
		"\t\tether type ip6 meta l4proto ipv6-icmp accept\n",
		"\t\tip saddr 192.0.2.0/24 accept\n",
		"\t\taccept\n",
		"\t\tip6 saddr 2001:db8::/32 udp dport 53 accept\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing rule: %s", want[i]);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_empty),
		cmocka_unit_test(golden_two_networks),
		cmocka_unit_test(golden_uplink),
		cmocka_unit_test(golden_rule_shapes),
		cmocka_unit_test(same_snapshot_any_order_same_text),
		cmocka_unit_test(version_is_hex_and_names_every_object),
		cmocka_unit_test(version_follows_content),
		cmocka_unit_test(inactive_nic_left_out),
		cmocka_unit_test(rules_do_not_grow_with_nics),
		cmocka_unit_test(same_rules_share_a_chain),
		cmocka_unit_test(overlay_fences_each_network),
		cmocka_unit_test(refuses_bad_interface_names),
		cmocka_unit_test(refuses_foreign_addresses),
		cmocka_unit_test(inactive_nics_are_not_checked),
		cmocka_unit_test(refuses_bad_rules),
		cmocka_unit_test(rule_shapes),
		cmocka_unit_test(input_chain_fences_guests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
