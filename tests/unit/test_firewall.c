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
#include "net/fw_model.h"

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
	struct ns_prefix prefixes[MAX_ITEMS];
	struct ns_public4 public4[MAX_ITEMS];
};

static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->ns.nets = f->nets;
	f->ns.nics = f->nics;
	f->ns.rules = f->rules;
	f->ns.prefixes = f->prefixes;
	f->ns.public4 = f->public4;
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

static void fx_prefix(struct fixture *f, uint64_t nic, const char *addr, unsigned len)
{
	struct ns_prefix *p = &f->prefixes[f->ns.n_prefixes++];

	p->nic_id = nic;
	assert_int_equal(inet_pton(AF_INET6, addr, &p->addr), 1);
	p->len = len;
}

static void fx_public4(struct fixture *f, uint64_t nic, const char *addr)
{
	struct ns_public4 *p = &f->public4[f->ns.n_public4++];

	p->nic_id = nic;
	assert_int_equal(inet_pton(AF_INET, addr, &p->addr), 1);
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
	b.ns.prefixes = b.prefixes;
	b.ns.public4 = b.public4;
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
	snprintf(jump, sizeof(jump), "set svc-%s {", v);
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

/* A VM's rules are set elements keyed by its taps: no chain per VM, and
 * the rules of the ruleset do not grow with the VMs' rules. */
static void rules_are_elements_not_chains(void **state)
{
	(void)state;
	struct fixture *f = malloc(sizeof(*f));
	char *v, *text, *many, line[256];

	fx_two_nets(f);
	fx_nic(f, 0x112, 0x2c, 0x0a, "10.10.0.7");
	fx_rule(f, 7, 0x2c, NS_PROTO_TCP, 80, 80, 0, NULL);
	fx_rule(f, 8, 0x2c, NS_PROTO_TCP, 8000, 8080, 0, "10.0.0.0/8");
	text = ruleset(f, &v);
	const char *want[] = {
		"\"v02000000010f\" . 6 . 80,\n",                          /* svc: web, tcp 80 */
		"\"v020000000112\" . 6 . 80\n",
		"\"v020000000112\" . 6 . 8000-8080 . 10.0.0.0-10.255.255.255\n", /* src4 */
		"\"v020000000110\" . 6 . 5432 . 2001:db8:10::-2001:db8:10:0:ffff:ffff:ffff:ffff,\n",
		"\"v020000000111\" . 6 . 5432 . 2001:db8:10::-2001:db8:10:0:ffff:ffff:ffff:ffff\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing element: %s", want[i]);
	assert_null(strstr(text, "chain vm-"));
	snprintf(line, sizeof(line), "\t\toifname . meta l4proto . th dport . ip saddr @src4-%s accept\n", v);
	assert_non_null(strstr(text, line));

	/* Many VMs, each with rules of its own: the same rules, more elements. */
	for (int i = 0; i < 60; i++) {
		char ip[INET_ADDRSTRLEN];
		snprintf(ip, sizeof(ip), "10.10.0.%d", 20 + i);
		fx_nic(f, 0x200 + (uint64_t)i, 0x100 + (uint64_t)i, 0x0a, ip);
		fx_rule(f, 100 + (uint64_t)i, 0x100 + (uint64_t)i, NS_PROTO_UDP, 1000 + i, 1000 + 2 * i,
			AF_INET6, "2001:db8::/32");
	}
	many = ruleset(f, NULL);
	assert_int_equal(rule_lines(text), rule_lines(many));
	assert_non_null(strstr(many, "\"v02000000023b\" . 17 . 1059-1118 . 2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	free(many);
	free(text);
	free(v);
	free(f);
}

/* ---- the rules' semantics --------------------------------------------------- */

/* A fixed pseudo-random sequence: the test is the same every run. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static const char *const sources4[] = { "0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24",
					"10.1.2.3/32", "192.0.2.0/24", "255.255.255.255/32", "0.0.0.0/1" };
static const char *const sources6[] = { "::/0", "2001:db8::/32", "2001:db8::/48", "2001:db8::5/128",
					"ffff::/16", "2001:db8:0:1::/64", "::/1" };

/* A random rule for a VM: protocols, ports and prefixes from small sets,
 * so that they overlap, nest and touch. */
static struct ns_rule rnd_rule(uint64_t id)
{
	static const int ports[] = { 1, 2, 3, 10, 11, 20, 21, 22, 65534, 65535 };
	struct ns_rule r = { .id = id, .vm_id = 1, .proto = (enum ns_proto)rnd(4) };
	int lo, hi;

	if (r.proto == NS_PROTO_TCP || r.proto == NS_PROTO_UDP) {
		if (rnd(4) != 0) {
			lo = ports[rnd(10)];
			hi = ports[rnd(10)];
			r.port_lo = lo < hi ? lo : hi;
			r.port_hi = lo < hi ? hi : lo;
		}
	}
	switch (rnd(4)) {
	case 0: break;                                          /* from anywhere */
	case 1: r.family = AF_INET; r.source = (char *)sources4[rnd(8)]; break;
	case 2: r.family = AF_INET6; r.source = (char *)sources6[rnd(7)]; break;
	case 3: r.family = rnd(2) ? AF_INET : AF_INET6; break;  /* a family, no source */
	}
	return r;
}

/* An address as a 16-byte big-endian number (IPv4 in the first 4 bytes,
 * compared over len bytes). */
struct probe_addr {
	uint8_t a[16];
};

static bool in_range(const uint8_t *x, const uint8_t *lo, const uint8_t *hi, size_t len)
{
	return memcmp(x, lo, len) >= 0 && memcmp(x, hi, len) <= 0;
}

/* Does the rule let this packet in, as the chain rules of old said it? */
static bool rule_accepts(const struct ns_rule *r, int af, uint8_t proto, int port, const uint8_t *src)
{
	char canon[INET6_ADDRSTRLEN + 8];
	int raf = r->source ? (strchr(r->source, ':') ? AF_INET6 : AF_INET) : r->family;
	size_t len = af == AF_INET ? 4 : 16;

	if (raf != 0 && raf != af)
		return false;
	if (r->source != NULL) {
		uint8_t net[16] = { 0 }, lo[16] = { 0 }, hi[16] = { 0 };
		snprintf(canon, sizeof(canon), "%s", r->source);
		char *slash = strchr(canon, '/');
		unsigned plen = (unsigned)atoi(slash + 1);
		*slash = '\0';
		assert_int_equal(inet_pton(af, canon, net), 1);
		for (unsigned i = 0; i < len * 8; i++) {
			uint8_t bit = (uint8_t)(0x80 >> (i % 8));
			lo[i / 8] |= i < plen ? net[i / 8] & bit : 0;
			hi[i / 8] |= i < plen ? net[i / 8] & bit : bit;
		}
		if (!in_range(src, lo, hi, len))
			return false;
	}
	switch (r->proto) {
	case NS_PROTO_TCP:
	case NS_PROTO_UDP:
		if (proto != (r->proto == NS_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP))
			return false;
		return r->port_lo == 0 || (port >= r->port_lo && port <= r->port_hi);
	case NS_PROTO_ICMP:
		return (proto == IPPROTO_ICMP && raf != AF_INET6) || (proto == IPPROTO_ICMPV6 && raf != AF_INET);
	case NS_PROTO_ANY:
		return true;
	}
	return false;
}

static bool elems_accept(const struct fw_inbound *in, int af, uint8_t proto, int port, const uint8_t *src)
{
	size_t len = af == AF_INET ? 4 : 16;

	for (size_t i = 0; i < in->n_any; i++)
		if (in_range(src, in->any[i].lo, in->any[i].hi, len))
			return true;
	for (size_t i = 0; i < in->n_ports; i++) {
		const struct fw_port_elem *e = &in->ports[i];
		if (e->proto == proto && port >= e->port_lo && port <= e->port_hi &&
		    in_range(src, e->src_lo, e->src_hi, len))
			return true;
	}
	return false;
}

static bool ranges_overlap(const uint8_t *lo1, const uint8_t *hi1, const uint8_t *lo2, const uint8_t *hi2,
			   size_t len)
{
	return memcmp(lo1, hi2, len) <= 0 && memcmp(lo2, hi1, len) <= 0;
}

/* Addresses to probe: every rule's first and last source address, and
 * their neighbours. */
static size_t probe_addrs(const struct ns_rule *rules, size_t n, int af, struct probe_addr *out)
{
	size_t len = af == AF_INET ? 4 : 16, k = 0;
	const char *const *srcs = af == AF_INET ? sources4 : sources6;
	size_t n_srcs = af == AF_INET ? 8 : 7;

	(void)rules;
	(void)n;
	for (size_t i = 0; i < n_srcs; i++) {
		char canon[64];
		uint8_t net[16] = { 0 };
		snprintf(canon, sizeof(canon), "%s", srcs[i]);
		char *slash = strchr(canon, '/');
		unsigned plen = (unsigned)atoi(slash + 1);
		*slash = '\0';
		assert_int_equal(inet_pton(af, canon, net), 1);
		struct probe_addr lo = { 0 }, hi = { 0 };
		for (unsigned b = 0; b < len * 8; b++) {
			uint8_t bit = (uint8_t)(0x80 >> (b % 8));
			lo.a[b / 8] |= b < plen ? net[b / 8] & bit : 0;
			hi.a[b / 8] |= b < plen ? net[b / 8] & bit : bit;
		}
		/* lo - 1, lo, hi, hi + 1 (wrapping at the ends: still addresses) */
		struct probe_addr p = lo;
		for (int j = (int)len - 1; j >= 0 && p.a[j]-- == 0; j--)
			;
		out[k++] = p;
		out[k++] = lo;
		out[k++] = hi;
		p = hi;
		for (int j = (int)len - 1; j >= 0 && ++p.a[j] == 0; j--)
			;
		out[k++] = p;
	}
	return k;
}

/*
 * fw_rules_inbound(): for random sets of overlapping rules, the elements
 * are pairwise disjoint (the kernel refuses overlapping ones) and accept
 * exactly what the rules accept, probed at every boundary.
 */
static void inbound_elements_accept_exactly_the_rules(void **state)
{
	(void)state;
	static const uint8_t protos[] = { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, 47 };
	static const int ports[] = { 0, 1, 2, 3, 4, 9, 10, 11, 12, 19, 20, 21, 22, 23, 65533, 65534, 65535 };
	struct probe_addr addrs[64];
	size_t checked = 0, accepted = 0;

	for (int round = 0; round < 400; round++) {
		struct ns_rule rules[8];
		const struct ns_rule *ptrs[8];
		size_t n = 1 + rnd(8);
		for (size_t i = 0; i < n; i++) {
			rules[i] = rnd_rule(i + 1);
			ptrs[i] = &rules[i];
		}
		for (int af = AF_INET; af != -1; af = af == AF_INET ? AF_INET6 : -1) {
			struct fw_inbound in;
			size_t len = af == AF_INET ? 4 : 16;
			assert_int_equal(fw_rules_inbound(ptrs, n, af, &in), 0);
			for (size_t i = 0; i < in.n_ports; i++)
				for (size_t j = i + 1; j < in.n_ports; j++) {
					const struct fw_port_elem *a = &in.ports[i], *b = &in.ports[j];
					bool ports_overlap = a->port_lo <= b->port_hi && b->port_lo <= a->port_hi;
					if (a->proto == b->proto && ports_overlap &&
					    ranges_overlap(a->src_lo, a->src_hi, b->src_lo, b->src_hi, len))
						fail_msg("round %d: port elements %zu and %zu overlap", round, i, j);
				}
			for (size_t i = 0; i < in.n_any; i++)
				for (size_t j = i + 1; j < in.n_any; j++)
					if (ranges_overlap(in.any[i].lo, in.any[i].hi, in.any[j].lo, in.any[j].hi, len))
						fail_msg("round %d: any elements %zu and %zu overlap", round, i, j);
			size_t na = probe_addrs(rules, n, af, addrs);
			for (size_t p = 0; p < sizeof(protos); p++)
				for (size_t q = 0; q < sizeof(ports) / sizeof(ports[0]); q++)
					for (size_t a = 0; a < na; a++) {
						bool want = false;
						for (size_t i = 0; i < n && !want; i++)
							want = rule_accepts(&rules[i], af, protos[p], ports[q], addrs[a].a);
						bool got = elems_accept(&in, af, protos[p], ports[q], addrs[a].a);
						if (want != got)
							fail_msg("round %d (%zu rules), family %d: proto %u port %d probe %zu: "
								 "rules say %d, elements %d", round, n, af, protos[p],
								 ports[q], a, want, got);
						checked++;
						accepted += want;
					}
			fw_inbound_free(&in);
		}
	}
	/* The probes saw both answers, plenty of each. */
	assert_true(accepted > checked / 10 && accepted < checked - checked / 10);
}

/* ---- to-vm-V as a whole: which sets it asks ---------------------------------- */

static const struct fw_set *set_named(const struct fw_model *m, enum fw_family fam, const char *name)
{
	for (size_t i = 0; i < m->n_sets; i++)
		if (m->sets[i].fam == fam && strcmp(m->sets[i].name, name) == 0)
			return &m->sets[i];
	fail_msg("no set %s", name);
	return NULL;
}

/* Is the key (fields in order, each padded to 4 bytes) in the set? */
static bool set_has(const struct fw_set *s, const uint8_t *key)
{
	size_t esize = s->interval ? 2u * s->key_len : s->key_len;

	for (size_t j = 0; j < s->n_elems; j++) {
		const uint8_t *e = s->elems + j * esize;
		bool in = true;
		for (unsigned i = 0, off = 0; i < s->n_keys && in; i++) {
			size_t len = fw_fields[s->keys[i]].len;
			if (s->interval)
				in = memcmp(key + off, e + off, len) >= 0 && memcmp(key + off, e + s->key_len + off, len) <= 0;
			else
				in = memcmp(key + off, e + off, len) == 0;
			off += (len + 3u) & ~3u;
		}
		if (in)
			return true;
	}
	return false;
}

/* to-vm-V and to-vm-crossed-V (fw_gen.c) for a new packet of af to the
 * tap, after its ARP/ICMP/DHCP shortcuts: the lookups they make. */
static bool to_vm_accepts(const struct fw_model *m, const char *tap, bool crossed, int af, uint8_t proto,
			  int port, const uint8_t *src)
{
	uint8_t k[48] = { 0 };
	size_t alen = af == AF_INET ? 4 : 16;
	const char *v = af == AF_INET ? "4" : "6";
	char name[16];

	memcpy(k, tap, strlen(tap));
	k[16] = proto;
	k[20] = (uint8_t)(port >> 8);
	k[21] = (uint8_t)port;
	if (!crossed) {
		if (set_has(set_named(m, FW_BRIDGE, "open"), k) || set_has(set_named(m, FW_BRIDGE, "svc"), k))
			return true;
	}
	for (int pass = crossed ? 1 : 0; pass < 2; pass++) {
		uint8_t key_any[48] = { 0 };
		memcpy(k + 24, src, alen);
		memcpy(key_any, tap, strlen(tap));
		memcpy(key_any + 16, src, alen);
		snprintf(name, sizeof(name), "%s%s", pass ? "src" : "in", v);
		if (set_has(set_named(m, FW_BRIDGE, name), k))
			return true;
		snprintf(name, sizeof(name), "%sany%s", pass ? "src" : "", v);
		if (set_has(set_named(m, FW_BRIDGE, name), key_any))
			return true;
	}
	return false;
}

/*
 * The whole generation, for random rules of two VMs: from its own network
 * a packet gets in by any of the VM's rules, from another network
 * (crossed) only by its rules that name a source — as the chains of old
 * had it; the other VM's rules never count.
 */
static void to_vm_accepts_exactly_the_rules(void **state)
{
	(void)state;
	static const uint8_t protos[] = { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, 47 };
	static const int ports[] = { 0, 1, 2, 3, 10, 11, 20, 21, 22, 23, 65534, 65535 };
	struct fixture *f = malloc(sizeof(*f));
	struct probe_addr addrs[64];
	const char *tap = ifname_tap(0x10f).s;
	char tapbuf[16];

	snprintf(tapbuf, sizeof(tapbuf), "%s", tap);
	for (int round = 0; round < 120; round++) {
		struct fw_model m;
		char *err = NULL;
		fx_two_nets(f);
		f->ns.n_rules = 0;
		size_t n = 1 + rnd(6);
		for (size_t i = 0; i < n; i++) {
			struct ns_rule r = rnd_rule(i + 1);
			fx_rule(f, r.id, 0x2a, r.proto, r.port_lo, r.port_hi, r.family, r.source);
		}
		for (size_t i = 0; i < 3; i++) {            /* db's, which must not count for web */
			struct ns_rule r = rnd_rule(50 + i);
			fx_rule(f, r.id, 0x2b, r.proto, r.port_lo, r.port_hi, r.family, r.source);
		}
		if (fw_generate(&f->ns, &m, &err) < 0)
			fail_msg("fw_generate: %s", err);
		for (int af = AF_INET; af != -1; af = af == AF_INET ? AF_INET6 : -1) {
			size_t na = probe_addrs(NULL, 0, af, addrs);
			for (int crossed = 0; crossed < 2; crossed++)
				for (size_t p = 0; p < sizeof(protos); p++)
					for (size_t q = 0; q < sizeof(ports) / sizeof(ports[0]); q++)
						for (size_t a = 0; a < na; a++) {
							bool want = false;
							for (size_t i = 0; i < n && !want; i++)
								want = (!crossed || f->rules[i].source) &&
								       rule_accepts(&f->rules[i], af, protos[p], ports[q],
										    addrs[a].a);
							bool got = to_vm_accepts(&m, tapbuf, crossed, af, protos[p], ports[q],
										 addrs[a].a);
							if (want != got)
								fail_msg("round %d, family %d, crossed %d: proto %u port %d"
									 " probe %zu: rules say %d, sets %d", round, af, crossed,
									 protos[p], ports[q], a, want, got);
						}
		}
		fw_model_free(&m);
	}
	free(f);
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
	fx_rule(&f, 5, 0x2b, NS_PROTO_ANY, 0, 0, 0, "192.0.2.0/24");
	fx_rule(&f, 6, 0x2b, NS_PROTO_ANY, 0, 0, 0, NULL);
	fx_rule(&f, 7, 0x2b, NS_PROTO_UDP, 53, 53, 0, "2001:db8::/32");
	fx_rule(&f, 8, 0x2b, NS_PROTO_UDP, 53, 53, 0, NULL);
	text = ruleset(&f, NULL);
	const char *want[] = {
		"\"v02000000010f\" . 6 . 0-65535 . 0.0.0.0-255.255.255.255",        /* tcp, every port */
		"\"v02000000010f\" . 17 . 1000-2000 . 0.0.0.0-255.255.255.255",     /* IPv4 only */
		"\"v02000000010f\" . 1 . 0-65535 . ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"\"v02000000010f\" . 58 . 0-65535 . ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"\"v020000000110\" . 192.0.2.0-192.0.2.255",                        /* srcany4 */
		"\"v020000000110\",\n",                                              /* open: any from anywhere */
		"\"v020000000111\"\n",
		"\"v020000000110\" . 17 . 53 . 2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing element: %s", want[i]);
	/* db is open from anywhere: its "udp 53 from anywhere" adds nothing. */
	assert_null(strstr(text, "\"v020000000110\" . 17 . 53,"));
	assert_null(strstr(text, "\"v020000000110\" . 17 . 53\n"));
	/* tcp from anywhere on every port is no IPv4-only rule: in6 has it. */
	assert_non_null(strstr(text, "\"v02000000010f\" . 6 . 0-65535 . ::-ffff"));
	free(text);
}

/* Routed prefixes and public IPv4 addresses (issue 13): the golden file
 * and the kernel's listing of both renderings. */
static void fx_routed(struct fixture *f)
{
	static char uplink[] = "eth0";

	fx_two_nets(f);
	f->ns.uplink = uplink;
	fx_prefix(f, 0x10f, "2001:db8:100:1::", 64);
	fx_prefix(f, 0x10f, "2001:db8:100:200::", 56);
	fx_prefix(f, 0x111, "2001:db8:100:2::", 64);
	fx_public4(f, 0x10f, "198.51.100.7");
	fx_rule(f, 3, 0x2b, NS_PROTO_TCP, 22, 22, 0, "10.10.0.0/24");   /* crosses to db */
}

/* Live migrations into this host (issue 14 §1): the port range closed,
 * each migration's ports open to its source host only. */
static void golden_migration(void **state)
{
	(void)state;
	struct fixture f;
	static struct ns_migport mp[3];

	fx_two_nets(&f);
	memset(mp, 0, sizeof(mp));
	mp[0].family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", mp[0].src);
	mp[0].port = 7400;
	mp[1].family = AF_INET6;
	inet_pton(AF_INET6, "fd00:ca5c::1", mp[1].src);
	mp[1].port = 7402;
	mp[2] = mp[1];
	mp[2].port = 7403;
	f.ns.migrate_port_lo = 7400;
	f.ns.migrate_port_hi = 7405;
	f.ns.migports = mp;
	f.ns.n_migports = 3;
	golden_compare(&f, "migration.nft");
	kernel_compare(&f, "migration.kernel");
	/* Without a range, nothing of it. */
	f.ns.migrate_port_lo = f.ns.migrate_port_hi = 0;
	char *text = ruleset(&f, NULL);
	assert_null(strstr(text, "mig"));
	free(text);
}

static void golden_routed(void **state)
{
	(void)state;
	struct fixture f;
	fx_routed(&f);
	golden_compare(&f, "routed.nft");
	kernel_compare(&f, "routed.kernel");
}

/* A NIC's prefixes are sources of its own, after the check of its NDP
 * targets and before that of its addresses; a public address is mapped
 * both ways at the uplink; both only for NICs of VMs running here. */
static void prefixes_and_public_addresses(void **state)
{
	(void)state;
	struct fixture f;
	char *v, *text, line[512];

	fx_routed(&f);
	text = ruleset(&f, &v);
	const char *want[] = {
		"\"v02000000010f\" . 2001:db8:100:1::-2001:db8:100:1:ffff:ffff:ffff:ffff,\n",
		"\"v02000000010f\" . 2001:db8:100:200::-2001:db8:100:2ff:ffff:ffff:ffff:ffff,\n",
		"\"v020000000111\" . 2001:db8:100:2::-2001:db8:100:2:ffff:ffff:ffff:ffff\n",
		"\t\t\t198.51.100.7 : 10.10.0.5\n",
		"\t\t\t10.10.0.5 : 198.51.100.7\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing element: %s", want[i]);
	const char *rules[] = {
		"\t\ticmpv6 type nd-neighbor-advert iifname . @th,64,128 != @ip6-%s drop\n"
		"\t\tiifname . ip6 saddr @pfx6-%s accept\n"
		"\t\tiifname . @nh,64,128 != @ip6-%s drop\n",
		"\tchain dnat-%s {\n\t\tiifname \"eth0\" dnat ip to ip daddr map @pub4-%s\n\t}\n",
		"\tchain nat-%s {\n\t\toifname \"eth0\" snat ip to ip saddr map @priv4-%s\n"
		"\t\toifname \"eth0\" ip saddr 10.10.0.0/24 masquerade\n\t}\n",
		"\t\tiifname @bridges-%s meta mark set meta mark | 0x02000000 accept\n",
	};
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		snprintf(line, sizeof(line), rules[i], v, v, v);
		if (strstr(text, line) == NULL)
			fail_msg("missing: %s", line);
	}
	free(text);
	free(v);

	/* Without an uplink, no translation (the maps stay empty). */
	f.ns.uplink = NULL;
	text = ruleset(&f, NULL);
	assert_null(strstr(text, "198.51.100.7"));
	assert_null(strstr(text, "dnat ip to"));
	free(text);

	/* A VM that does not run here: neither its prefixes nor its address. */
	fx_routed(&f);
	f.nics[0].active = false;
	text = ruleset(&f, NULL);
	assert_null(strstr(text, "2001:db8:100:1::"));
	assert_null(strstr(text, "198.51.100.7"));
	assert_non_null(strstr(text, "2001:db8:100:2::"));
	free(text);
}

static void refuses_bad_prefixes_and_public_addresses(void **state)
{
	(void)state;
	struct fixture f;

	fx_routed(&f);
	f.prefixes[0].addr.s6_addr[15] = 1;                      /* host bits */
	assert_refused(&f, "host bits");
	fx_routed(&f);
	f.prefixes[0].len = 0;                                   /* ::/0 would be anyone */
	memset(&f.prefixes[0].addr, 0, sizeof(f.prefixes[0].addr));
	assert_refused(&f, "length");
	fx_routed(&f);
	fx_prefix(&f, 0x110, "fe80::", 64);
	assert_refused(&f, "global unicast");
	fx_routed(&f);
	fx_prefix(&f, 0x110, "ff00::", 8);
	assert_refused(&f, "global unicast");
	fx_routed(&f);
	fx_public4(&f, 0x110, "198.51.100.7");                   /* one address, two NICs */
	assert_refused(&f, "twice");
	fx_routed(&f);
	fx_public4(&f, 0x110, "224.0.0.1");
	assert_refused(&f, "not unicast");
	/* Rows of NICs that do not run here are not looked at. */
	fx_routed(&f);
	fx_public4(&f, 0x110, "198.51.100.7");
	f.nics[1].active = false;
	free(ruleset(&f, NULL));
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
		cmocka_unit_test(rules_are_elements_not_chains),
		cmocka_unit_test(inbound_elements_accept_exactly_the_rules),
		cmocka_unit_test(to_vm_accepts_exactly_the_rules),
		cmocka_unit_test(golden_routed),
		cmocka_unit_test(golden_migration),
		cmocka_unit_test(prefixes_and_public_addresses),
		cmocka_unit_test(refuses_bad_prefixes_and_public_addresses),
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
