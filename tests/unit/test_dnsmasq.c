/*
 * test_dnsmasq — the generated dnsmasq files of a network (src/net/dnsmasq.h,
 * DESIGN §6): the conf with and without IPv4, the DHCP hosts and DNS hosts
 * files for a snapshot with NICs on two networks (only that network's NICs,
 * sorted by NIC id, MAC/IPv4/EUI-64 IPv6 formats, stopped VMs included by
 * design, names dnsmasq would misread), the stale-lease computation, and
 * the sweep of leftover network directories (no process involved).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/fsutil.h"
#include "common/ids.h"
#include "net/dnsmasq.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_ "/var/lib/hackcloud/net/0000aa"

/* True when text has exactly this line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static bool has_prefix_line(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return true;
	return false;
}

static struct ns_net office(void)
{
	struct ns_net n = { .id = 0xaa, .name = "office", .bridge = "b0000aa", .has_ip4 = true, .len4 = 24 };

	inet_pton(AF_INET6, "2001:db8:10::", &n.prefix6);
	inet_pton(AF_INET, "10.10.0.0", &n.net4);
	return n;
}

static struct ns_net backend(void)
{
	struct ns_net n = { .id = 0xbb, .name = "backend", .bridge = "b0000bb" };

	inet_pton(AF_INET6, "fd00:bb::", &n.prefix6);
	return n;
}

/* A NIC as the agent's loader builds it: MAC from the id, IPv6 = prefix +
 * modified EUI-64 of the MAC. */
static struct ns_nic nic(uint64_t id, uint64_t vm_id, char *vm_name, const struct ns_net *net,
			 const char *ip4, bool active)
{
	struct ns_nic c = { .id = id, .vm_id = vm_id, .vm_name = vm_name, .net_id = net->id,
			    .active = active };
	uint8_t iid[8];

	nic_mac_bytes(id, c.mac);
	snprintf(c.ifname, sizeof(c.ifname), "%s", ifname_tap(id).s);
	eui64_from_mac(c.mac, iid);
	c.ip6 = net->prefix6;
	memcpy(&c.ip6.s6_addr[8], iid, 8);
	if (ip4) {
		c.has_ip4 = true;
		inet_pton(AF_INET, ip4, &c.ip4);
	}
	return c;
}

struct fixture {
	struct ns_net nets[2];
	struct ns_nic nics[6];
	struct netstate ns;
};

/* Two networks; NICs deliberately out of id order; a stopped VM ("old");
 * a VM whose name dnsmasq would read as a lease time ("5d"). */
static void fixture_init(struct fixture *f)
{
	f->nets[0] = office();
	f->nets[1] = backend();
	f->nics[0] = nic(0x110, 2, "db", &f->nets[0], "10.10.0.3", true);
	f->nics[1] = nic(0x10f, 1, "web", &f->nets[0], "10.10.0.2", true);
	f->nics[2] = nic(0x111, 2, "db", &f->nets[1], NULL, true);
	f->nics[3] = nic(0x112, 3, "old", &f->nets[0], "10.10.0.4", false);
	f->nics[4] = nic(0x113, 4, "5d", &f->nets[0], "10.10.0.5", true);
	f->nics[5] = nic(0x114, 5, "nov4", &f->nets[0], NULL, true);
	f->ns = (struct netstate){ .nets = f->nets, .n_nets = 2, .nics = f->nics, .n_nics = 6 };
}

/* ---- dnsmasq.conf ------------------------------------------------------- */

static void conf_with_ipv4(void **state)
{
	(void)state;
	struct ns_net n = office();
	char *c = dnsmasq_conf(&n, DIR_);

	assert_non_null(c);
	/* Only its own bridge, no loopback, one instance per network. */
	assert_true(has_line(c, "interface=b0000aa"));
	assert_true(has_line(c, "except-interface=lo"));
	assert_true(has_line(c, "bind-dynamic"));
	assert_true(has_line(c, "listen-address=2001:db8:10::1"));
	assert_true(has_line(c, "listen-address=10.10.0.1"));
	assert_true(has_line(c, "user=dnsmasq"));
	assert_true(has_line(c, "pid-file=" DIR_ "/dnsmasq.pid"));
	assert_true(has_line(c, "dhcp-leasefile=" DIR_ "/leases"));
	/* DNS */
	assert_true(has_line(c, "no-resolv"));
	assert_true(has_line(c, "no-hosts"));
	assert_true(has_line(c, "addn-hosts=" DIR_ "/dns-hosts"));
	assert_true(has_line(c, "domain-needed"));
	assert_true(has_line(c, "bogus-priv"));
	assert_true(has_line(c, "domain=office"));
	assert_true(has_line(c, "local=/office/"));
	/* IPv6: RA only, SLAAC, RDNSS = the gateway, fast RAs. */
	assert_true(has_line(c, "enable-ra"));
	assert_true(has_line(c, "dhcp-range=::,constructor:b0000aa,ra-only,64"));
	assert_true(has_line(c, "ra-param=b0000aa,10,600"));
	assert_true(has_line(c, "dhcp-option=option6:dns-server,[2001:db8:10::1]"));
	assert_true(has_line(c, "dhcp-option=option6:domain-search,office"));
	/* IPv4: static leases only, the gateway as router and DNS. */
	assert_true(has_line(c, "dhcp-range=10.10.0.0,static,255.255.255.0,1h"));
	assert_true(has_line(c, "dhcp-authoritative"));
	assert_true(has_line(c, "dhcp-option=option:router,10.10.0.1"));
	assert_true(has_line(c, "dhcp-option=option:dns-server,10.10.0.1"));
	assert_true(has_line(c, "dhcp-hostsfile=" DIR_ "/dhcp-hosts"));
	/* Never a dynamic pool, a script, or the host's resolver. */
	assert_false(has_prefix_line(c, "dhcp-script"));
	assert_false(has_prefix_line(c, "resolv-file"));
	assert_false(has_prefix_line(c, "server="));
	free(c);
}

static void conf_without_ipv4(void **state)
{
	(void)state;
	struct ns_net n = backend();
	char *c = dnsmasq_conf(&n, "/s/net/0000bb");

	assert_non_null(c);
	assert_true(has_line(c, "interface=b0000bb"));
	assert_true(has_line(c, "listen-address=fd00:bb::1"));
	assert_true(has_line(c, "enable-ra"));
	assert_true(has_line(c, "dhcp-range=::,constructor:b0000bb,ra-only,64"));
	assert_true(has_line(c, "dhcp-option=option6:dns-server,[fd00:bb::1]"));
	assert_true(has_line(c, "addn-hosts=/s/net/0000bb/dns-hosts"));
	assert_true(has_line(c, "domain=backend"));
	/* No DHCPv4 at all. */
	assert_false(has_prefix_line(c, "dhcp-range=0"));
	assert_false(has_prefix_line(c, "dhcp-range=1"));
	assert_false(has_prefix_line(c, "dhcp-option=option:"));
	assert_false(has_prefix_line(c, "dhcp-hostsfile="));
	assert_false(has_prefix_line(c, "dhcp-authoritative"));
	int v4_listen = 0;
	for (const char *p = c; (p = strstr(p, "listen-address=")) != NULL; p++)
		v4_listen += strchr(p, '\n') && memchr(p, '.', (size_t)(strchr(p, '\n') - p)) != NULL;
	assert_int_equal(v4_listen, 0);
	free(c);
}

static void conf_other_prefix_lengths(void **state)
{
	(void)state;
	struct ns_net n = office();
	char *c;

	n.len4 = 20;
	inet_pton(AF_INET, "172.16.16.0", &n.net4);
	c = dnsmasq_conf(&n, DIR_);
	assert_non_null(c);
	assert_true(has_line(c, "dhcp-range=172.16.16.0,static,255.255.240.0,1h"));
	assert_true(has_line(c, "dhcp-option=option:router,172.16.16.1"));
	free(c);
}

static void conf_is_deterministic(void **state)
{
	(void)state;
	struct ns_net n = office();
	char *a = dnsmasq_conf(&n, DIR_), *b = dnsmasq_conf(&n, DIR_);

	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* A name or path that could carry a newline into the conf is refused. */
static void conf_refuses_injection(void **state)
{
	(void)state;
	struct ns_net n = office();

	n.name = "office\ndhcp-script=/tmp/x";
	assert_null(dnsmasq_conf(&n, DIR_));
	n = office();
	assert_null(dnsmasq_conf(&n, "/x\ndhcp-script=/tmp/x"));
	assert_null(dnsmasq_conf(&n, "relative/dir"));
	snprintf(n.bridge, sizeof(n.bridge), "eth0");
	assert_null(dnsmasq_conf(&n, DIR_));
}

/* ---- dhcp-hosts --------------------------------------------------------- */

static void dhcp_hosts_of_office(void **state)
{
	(void)state;
	struct fixture f;
	char *h;

	fixture_init(&f);
	h = dnsmasq_dhcp_hosts(&f.ns, 0xaa);
	assert_non_null(h);
	/* Sorted by NIC id; NICs without IPv4 and other networks' NICs are
	 * absent; the stopped VM keeps its reservation; "5d" would be read as
	 * a lease time, so that line carries no name. */
	assert_string_equal(h,
		"02:00:00:00:01:0f,10.10.0.2,web\n"
		"02:00:00:00:01:10,10.10.0.3,db\n"
		"02:00:00:00:01:12,10.10.0.4,old\n"
		"02:00:00:00:01:13,10.10.0.5\n");
	free(h);
}

static void dhcp_hosts_without_ipv4_is_empty(void **state)
{
	(void)state;
	struct fixture f;
	char *h;

	fixture_init(&f);
	h = dnsmasq_dhcp_hosts(&f.ns, 0xbb);
	assert_non_null(h);
	assert_string_equal(h, "");
	free(h);
	h = dnsmasq_dhcp_hosts(&f.ns, 0xcc);    /* unknown network */
	assert_non_null(h);
	assert_string_equal(h, "");
	free(h);
}

static void dhcp_names_dnsmasq_would_misread(void **state)
{
	(void)state;
	struct ns_net n = office();
	char *names[] = { "ignore", "infinite", "45", "10m", "2h", "7w", "12s" };
	char *fine[] = { "m", "5", "d5", "web-1", "a1h" };
	struct ns_nic c;
	struct netstate ns = { .nets = &n, .n_nets = 1, .nics = &c, .n_nics = 1 };
	char *h;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		c = nic(0x10f, 1, names[i], &n, "10.10.0.2", true);
		h = dnsmasq_dhcp_hosts(&ns, 0xaa);
		assert_string_equal(h, "02:00:00:00:01:0f,10.10.0.2\n");
		free(h);
	}
	/* "5" alone is one character: dnsmasq reads it as a lease time too. */
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char want[64];
		c = nic(0x10f, 1, fine[i], &n, "10.10.0.2", true);
		h = dnsmasq_dhcp_hosts(&ns, 0xaa);
		snprintf(want, sizeof(want), "02:00:00:00:01:0f,10.10.0.2,%s\n", fine[i]);
		if (strcmp(fine[i], "5") == 0)
			snprintf(want, sizeof(want), "02:00:00:00:01:0f,10.10.0.2\n");
		assert_string_equal(h, want);
		free(h);
	}
}

/* ---- dns-hosts ---------------------------------------------------------- */

static void dns_hosts_of_office(void **state)
{
	(void)state;
	struct fixture f;
	char *h;

	fixture_init(&f);
	h = dnsmasq_dns_hosts(&f.ns, 0xaa);
	assert_non_null(h);
	/* IPv6 = prefix + modified EUI-64 (02:00:… → 0000:00ff:fe00:…); the
	 * qualified name first (PTR answers), then the bare name. */
	assert_string_equal(h,
		"2001:db8:10::ff:fe00:10f web.office web\n"
		"10.10.0.2 web.office web\n"
		"2001:db8:10::ff:fe00:110 db.office db\n"
		"10.10.0.3 db.office db\n"
		"2001:db8:10::ff:fe00:112 old.office old\n"
		"10.10.0.4 old.office old\n"
		"2001:db8:10::ff:fe00:113 5d.office 5d\n"
		"10.10.0.5 5d.office 5d\n"
		"2001:db8:10::ff:fe00:114 nov4.office nov4\n");
	free(h);
}

static void dns_hosts_of_backend(void **state)
{
	(void)state;
	struct fixture f;
	char *h;

	fixture_init(&f);
	h = dnsmasq_dns_hosts(&f.ns, 0xbb);
	assert_non_null(h);
	assert_string_equal(h, "fd00:bb::ff:fe00:111 db.backend db\n");
	free(h);
	h = dnsmasq_dns_hosts(&f.ns, 0xcc);
	assert_non_null(h);
	assert_string_equal(h, "");
	free(h);
}

/* Stopped VMs resolve (by design, see dnsmasq.h); a change of `active`
 * therefore changes no file and costs no SIGHUP. */
static void active_does_not_change_the_files(void **state)
{
	(void)state;
	struct fixture f;
	char *d1, *d2, *h1, *h2;

	fixture_init(&f);
	d1 = dnsmasq_dns_hosts(&f.ns, 0xaa);
	h1 = dnsmasq_dhcp_hosts(&f.ns, 0xaa);
	for (size_t i = 0; i < f.ns.n_nics; i++)
		f.nics[i].active = !f.nics[i].active;
	d2 = dnsmasq_dns_hosts(&f.ns, 0xaa);
	h2 = dnsmasq_dhcp_hosts(&f.ns, 0xaa);
	assert_string_equal(d1, d2);
	assert_string_equal(h1, h2);
	free(d1);
	free(d2);
	free(h1);
	free(h2);
}

/* ---- stale leases ------------------------------------------------------- */

static void stale_leases(void **state)
{
	(void)state;
	const char *hosts =
		"02:00:00:00:01:0f,10.10.0.2,web\n"
		"02:00:00:00:01:13,10.10.0.5\n";
	const char *leases =
		"1795989533 02:00:00:00:01:0f 10.10.0.2 web 01:02:00:00:00:01:0f\n"
		"1795989533 02:00:00:00:01:10 10.10.0.3 db *\n"            /* NIC gone */
		"1795989533 02:00:00:00:01:13 10.10.0.9 * *\n"              /* other IP now */
		"1795989533 02:00:00:00:01:13 10.10.0.5 * *\n"
		"duid 00:01:00:01:2c:5f:00:00:02:00:00:00:00:01\n"
		"1795989533 1234 fd00::2 * 00:01:00:01\n"
		"garbage\n";
	struct dnsmasq_lease *v = NULL;
	size_t n = 99;

	assert_int_equal(dnsmasq_stale_leases(leases, hosts, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].mac, "02:00:00:00:01:10");
	assert_string_equal(v[0].ip, "10.10.0.3");
	assert_string_equal(v[1].mac, "02:00:00:00:01:13");
	assert_string_equal(v[1].ip, "10.10.0.9");
	free(v);

	assert_int_equal(dnsmasq_stale_leases("", hosts, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	/* Network without IPv4 hosts any more: every lease is stale. */
	assert_int_equal(dnsmasq_stale_leases(leases, "", &v, &n), 0);
	assert_int_equal(n, 4);
	free(v);
}

/* ---- sweep (files only: no dnsmasq runs for these directories) ---------- */

static void sweep_removes_only_unknown_networks(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/test_dnsmasq.XXXXXX";
	char *base = mkdtemp(tmpl), *p;
	struct fixture f;
	struct stat st;
	char *err = NULL;

	assert_non_null(base);
	fixture_init(&f);
	const char *dirs[] = { "net/0000aa", "net/0000bb", "net/0000cc", "net/notanet" };
	for (size_t i = 0; i < 4; i++) {
		p = str_printf("%s/%s", base, dirs[i]);
		assert_int_equal(mkdir_p(p, 0700), 0);
		free(p);
	}
	p = str_printf("%s/net/0000cc/dnsmasq.conf", base);
	assert_int_equal(file_write_atomic(p, "x\n", 2, 0644), 0);
	free(p);

	assert_int_equal(dnsmasq_sweep(&f.ns, base), 0);
	for (size_t i = 0; i < 4; i++) {
		p = str_printf("%s/%s", base, dirs[i]);
		/* 0000cc is in no snapshot: gone; the others stay (known
		 * networks, or not ours by name). */
		assert_int_equal(stat(p, &st) == 0, i != 2);
		free(p);
	}
	/* Removing what is already gone is success. */
	assert_int_equal(dnsmasq_remove(0xcc, base, &err), 0);
	assert_null(err);
	assert_int_equal(dir_remove_tree(base), 0);
	/* No state dir at all: nothing to sweep. */
	assert_int_equal(dnsmasq_sweep(&f.ns, base), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conf_with_ipv4),
		cmocka_unit_test(conf_without_ipv4),
		cmocka_unit_test(conf_other_prefix_lengths),
		cmocka_unit_test(conf_is_deterministic),
		cmocka_unit_test(conf_refuses_injection),
		cmocka_unit_test(dhcp_hosts_of_office),
		cmocka_unit_test(dhcp_hosts_without_ipv4_is_empty),
		cmocka_unit_test(dhcp_names_dnsmasq_would_misread),
		cmocka_unit_test(dns_hosts_of_office),
		cmocka_unit_test(dns_hosts_of_backend),
		cmocka_unit_test(active_does_not_change_the_files),
		cmocka_unit_test(stale_leases),
		cmocka_unit_test(sweep_removes_only_unknown_networks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
