/* config — see config.h. */
#include "common/config.h"

#include "common/fsutil.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_LL, K_BOOL };

struct key {
	const char *section;
	const char *name;
	enum kind kind;
	size_t off;
	const char *help;     /* one line for hcd.conf(5) and the sample hcd.conf */
};

/* The help text is the last argument.  A row without one still builds
 * (help ""), and the docs test (tests/docs) names the key that lacks it. */
#define S(sec, n, f, ...) { sec, n, K_STR, offsetof(struct config, f), "" __VA_ARGS__ }
#define I(sec, n, f, ...) { sec, n, K_INT, offsetof(struct config, f), "" __VA_ARGS__ }
/* One of the members' default quotas (store.h's enum quota order). */
#define Q(n, i, help) { "hcd", n, K_LL, offsetof(struct config, default_quota) + (i) * sizeof(long long), \
			help }

/* Every configuration key, in one table: the parser, `hcd --print-config`,
 * hcd.conf(5) and the sample hcd.conf all read it. */
static const struct key keys[] = {
	S("hcd", "state_dir", state_dir,
	  "where hcd keeps its database, images and VM files; the API socket is STATE_DIR/api.sock"),
	S("hcd", "accel", accel,
	  "QEMU accelerator: kvm, tcg or auto (auto proves KVM with a probe guest, else tcg)"),
	S("hcd", "store", store,
	  "sqlite (STATE_DIR/hackcloud.db), sqlite:PATH, or postgresql://USER@HOST/DB for several hosts"),
	S("hcd", "roles", roles,
	  "the roles this hcd runs, comma-separated: api, scheduler, agent"),
	S("hcd", "host_name", host_name,
	  "this host's name in a cluster (default: the machine's hostname)"),
	S("hcd", "listen", listen,
	  "an optional TCP listener for the API, e.g. [::1]:8443; TLS when tls_cert is set"),
	S("hcd", "tls_cert", tls_cert,
	  "PEM certificate of the TCP listener"),
	S("hcd", "tls_key", tls_key,
	  "PEM private key of the TCP listener"),
	S("hcd", "uplink", uplink,
	  "interface towards the outside: IPv6 is routed and IPv4 masqueraded to it"),
	S("hcd", "underlay", underlay,
	  "this host's address for VXLAN between hosts"),
	I("hcd", "vxlan_port", vxlan_port,
	  "UDP port of the VXLAN overlay between hosts"),
	S("hcd", "log_level", log_level,
	  "debug, info, warn or error (reloaded on SIGHUP)"),
	I("hcd", "stop_timeout", stop_timeout,
	  "seconds between an ACPI powerdown and QEMU's quit (reloaded on SIGHUP)"),
	I("hcd", "metadata_port", metadata_port,
	  "port of the metadata service on 169.254.169.254 and fe80::a9fe:a9fe"),
	I("hcd", "metadata_rate", metadata_rate,
	  "metadata requests per second per VM and per source address; 0: unlimited"),
	S("hcd", "metadata_tokens", metadata_tokens,
	  "IMDSv2 for VMs created without a choice: optional (plain GETs too) or required"),
	I("hcd", "resync_interval", resync_interval,
	  "seconds between safety-net reconcile passes (reloaded on SIGHUP)"),
	{ "hcd", "max_body", K_LL, offsetof(struct config, max_body),
	  "largest JSON request body in bytes (reloaded on SIGHUP)" },
	I("hcd", "heartbeat_interval", heartbeat_interval,
	  "seconds between this host's heartbeats in the store"),
	I("hcd", "dead_timeout", dead_timeout,
	  "seconds of silence after which a host is marked dead"),
	I("hcd", "cpu_overcommit", cpu_overcommit,
	  "virtual CPUs placed per host CPU"),
	I("hcd", "reserved_memory_mib", reserved_memory_mib,
	  "host memory in MiB kept from VMs"),
	I("hcd", "api_rate", api_rate,
	  "API requests per second per user; 0: unlimited"),
	I("hcd", "api_burst", api_burst,
	  "bucket size of the api_rate limit"),
	I("hcd", "workers", workers,
	  "threads for slow steps off the event loop (hashing, qemu-img, ISO building)"),
	S("auth", "passwd_file", passwd_file,
	  "password hashes of the file backend (default STATE_DIR/passwd)"),
	S("auth", "secret_key_file", secret_key_file,
	  "key that seals OTP secrets (default STATE_DIR/secret.key)"),
	S("auth", "otp_issuer", otp_issuer,
	  "issuer name that authenticator apps show"),
	I("auth", "ldap_starttls", ldap_starttls,
	  "1: StartTLS on ldap:// URIs"),
	I("auth", "ldap_timeout", ldap_timeout,
	  "seconds of network and operation timeout towards LDAP"),
	S("auth", "ldap_ca_file", ldap_ca_file,
	  "CA certificates for ldaps:// and StartTLS"),
	S("auth", "ldap_uri", ldap_uri,
	  "LDAP server, ldap://HOST or ldaps://HOST"),
	S("auth", "ldap_base", ldap_base,
	  "search base of the users, e.g. ou=people,dc=example,dc=org"),
	S("auth", "ldap_filter", ldap_filter,
	  "search filter; %s is the login name"),
	S("auth", "ldap_bind_dn", ldap_bind_dn,
	  "service account that searches; empty: anonymous search"),
	S("auth", "ldap_bind_password_file", ldap_bind_password_file,
	  "file with the service account's password"),
	I("auth", "token_ttl", token_ttl,
	  "seconds a login token lives"),
	/* images */
	S("hcd", "image_user", image_user,
	  "unprivileged user qemu-img runs as, to inspect uploaded and imported disks"),
	S("hcd", "import_allow", import_allow,
	  "CIDR[,CIDR...] that members may import from although private or ULA"),
	S("hcd", "import_proxy", import_proxy,
	  "the only proxy URL imports use; empty: none (never the environment's)"),
	I("hcd", "import_max_per_user", import_max_per_user,
	  "concurrent URL imports of one user; 0: no cap"),
	I("hcd", "import_max_total", import_max_total,
	  "concurrent URL imports on this host; 0: no cap"),
	{ "hcd", "listen_insecure", K_BOOL, offsetof(struct config, listen_insecure),
	  "true: a TCP listener without tls_cert may serve plain HTTP, on a loopback address only" },
	I("hcd", "api_max_connections", api_max_connections,
	  "connections each API listener holds at most"),
	I("hcd", "api_max_per_peer", api_max_per_peer,
	  "connections per IPv4 address, IPv6 /64 or local uid on each listener"),
	I("hcd", "api_header_timeout", api_header_timeout,
	  "seconds a connection has to send a request's headers"),
	S("auth", "local_users", local_users,
	  "uids (FROM-TO[,...] or none) whose local accounts map to hackcloud users on the unix socket"),
	I("auth", "token_cache_ttl", token_cache_ttl,
	  "seconds a token check is cached; a revoke on another host takes effect within it"),
	/* tenancy */
	S("hcd", "tenant_ipv6_pool", tenant_ipv6_pool,
	  "PREFIX/len[,...] (each at most /64) members' networks come from; empty: a random ULA /48 of this installation"),
	S("hcd", "tenant_ipv4_pool", tenant_ipv4_pool,
	  "CIDR[,...] members' IPv4 subnets come from; empty: members get no IPv4"),
	Q("default_quota_vms", 0, "VMs a member may have without a quota of its own; 0: unlimited"),
	Q("default_quota_vcpus", 1, "vCPUs over a member's VMs; 0: unlimited"),
	Q("default_quota_memory_mib", 2, "MiB of memory over a member's VMs; 0: unlimited"),
	Q("default_quota_disk_bytes", 3, "bytes of VM disks (as sized) of a member; 0: unlimited"),
	Q("default_quota_networks", 4, "networks a member may have; 0: unlimited"),
	Q("default_quota_images", 5, "images a member may have; 0: unlimited"),
	Q("default_quota_image_bytes", 6, "bytes of images of a member; 0: unlimited"),
	/* the dashboard */
	S("hcd", "web_root", web_root,
	  "the dashboard's files served at / (default: share/hackcloud/web); none: no dashboard"),
	/* routed prefixes and public IPv4 (issue 13 §3, §4; common/addrpool.h) */
	S("hcd", "prefix_pool", prefix_pool,
	  "IPv6 prefixes (PREFIX[,PREFIX...], /16../64) that VMs' routed prefixes come from; empty: none"),
	I("hcd", "prefix_length", prefix_length,
	  "length of a routed prefix when none is asked for (16..64)"),
	I("hcd", "prefix_min_length", prefix_min_length,
	  "the shortest (largest) routed prefix a member may ask for"),
	I("hcd", "prefix_max_per_vm", prefix_max_per_vm,
	  "routed prefixes one VM may have; 0: no cap"),
	I("hcd", "prefix_max_per_user", prefix_max_per_user,
	  "routed prefixes a member may have over all VMs; 0: no cap"),
	S("hcd", "public_ipv4_pool", public_ipv4_pool,
	  "public IPv4 addresses (CIDR, A-B or address, comma-separated) mapped 1:1 to VMs on the uplink"),
	I("hcd", "public_ipv4_max_per_user", public_ipv4_max_per_user,
	  "public IPv4 addresses a member may attach; 0: only admins attach them"),
	/* metrics, events, audit (issue 15) */
	S("auth", "metrics_token_file", metrics_token_file,
	  "file with a bearer token that may read /metrics and nothing else; empty: admins only"),
	I("hcd", "metrics_disk_interval", metrics_disk_interval,
	  "seconds between QMP query-blockstats of each running VM for /metrics"),
	I("hcd", "events_max_per_user", events_max_per_user,
	  "open /v1/events streams per user; 0: no cap"),
	I("hcd", "events_buffer", events_buffer,
	  "bytes an event stream may fall behind before it is cut"),
	I("hcd", "events_retention", events_retention,
	  "seconds the event log keeps events (how far back Last-Event-ID resumes)"),
	I("hcd", "audit_retention_days", audit_retention_days,
	  "days the audit trail keeps its entries"),
	/* bandwidth limits and traffic metering */
	I("hcd", "meter_interval", meter_interval,
	  "seconds between samples of the NICs' traffic counters"),
	S("hcd", "quota_throttle_rate", quota_throttle_rate,
	  "what the NICs of a user or VM over its monthly traffic quota get, e.g. 1mbit"),
	/* vmrt: QEMU confinement (vm/identity.h) */
	I("hcd", "qemu_uid_base", qemu_uid_base,
	  "first uid/gid of VMs: a VM's QEMU runs as qemu_uid_base + (VM ID mod qemu_uid_count);"
	  " no account, group or subordinate id may lie in the range"),
	I("hcd", "qemu_uid_count", qemu_uid_count,
	  "how many uids VMs take from qemu_uid_base (two VMs of a host never share one)"),
	/* migrate: live migration (issue 14 §1) */
	I("hcd", "migrate_port_base", migrate_port_base,
	  "first TCP port of incoming live migrations on the underlay (NBD and RAM: two per migration)"),
	I("hcd", "migrate_port_count", migrate_port_count,
	  "how many ports from migrate_port_base; the firewall opens each only to its peer host"),
	I("hcd", "migrate_timeout", migrate_timeout,
	  "seconds a live migration's transfer may take before it is given up"),
	I("hcd", "migrate_stall_timeout", migrate_stall_timeout,
	  "seconds a live migration may go without progress (a cut network) before it is given up"),
	I("hcd", "migrate_wait_timeout", migrate_wait_timeout,
	  "seconds the source host waits for the destination's steps (prepare, switch-over)"),
	I("hcd", "migrate_max_downtime_ms", migrate_max_downtime_ms,
	  "the longest pause of a migrating guest QEMU aims at (its downtime-limit)"),
	I("hcd", "migrate_max_bandwidth", migrate_max_bandwidth,
	  "MiB/s a migration stream may use; 0: unlimited"),
	/* snapshot (issue 14 §2) */
	I("hcd", "snapshot_copy_timeout", snapshot_copy_timeout,
	  "seconds (wall and CPU) qemu-img may take to merge a deleted snapshot's layer or to"
	  " flatten a VM's disk into an image"),
	/* resize (issue 14 §3): vm/resize.h */
	I("hcd", "vm_max_cpus", vm_max_cpus,
	  "the most vCPUs CPU hotplug can give a running VM (QEMU's maxcpus; a VM with more"
	  " keeps its own); 0 = this host's CPU count"),
};

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
}

void config_defaults(struct config *c)
{
	char host[256] = "localhost";

	memset(c, 0, sizeof(*c));
	gethostname(host, sizeof(host) - 1);
	set_str(&c->state_dir, "/var/lib/hackcloud");
	set_str(&c->accel, "auto");
	set_str(&c->store, "sqlite");
	set_str(&c->roles, "api,scheduler,agent");
	set_str(&c->host_name, host);
	set_str(&c->log_level, "info");
	set_str(&c->passwd_file, "");
	set_str(&c->secret_key_file, "");
	set_str(&c->otp_issuer, "hackcloud");
	set_str(&c->tenant_ipv6_pool, "");
	set_str(&c->tenant_ipv4_pool, "");
	c->heartbeat_interval = 2;
	c->dead_timeout = 10;
	c->cpu_overcommit = 4;
	c->reserved_memory_mib = 512;
	c->api_rate = 50;
	c->api_burst = 100;
	c->workers = 4;
	c->ldap_timeout = 5;
	set_str(&c->ldap_filter, "(uid=%s)");
	c->vxlan_port = 4789;         /* IANA's VXLAN port */
	c->stop_timeout = 30;
	c->metadata_port = 80;
	c->metadata_rate = 20;
	set_str(&c->metadata_tokens, "optional");
	c->resync_interval = 60;
	c->max_body = 1 << 20;
	c->token_ttl = 86400;
	/* images */
	set_str(&c->image_user, "nobody");
	set_str(&c->import_allow, "");
	set_str(&c->import_proxy, "");
	c->import_max_per_user = 2;
	c->import_max_total = 8;
	c->api_max_connections = 1000;
	c->api_max_per_peer = 32;
	c->api_header_timeout = 10;
	set_str(&c->local_users, "1000-59999");   /* Debian's uids for people */
	c->token_cache_ttl = 5;
	set_str(&c->web_root, "");
	/* routed prefixes and public IPv4 */
	set_str(&c->prefix_pool, "");
	c->prefix_length = 64;
	c->prefix_min_length = 56;
	c->prefix_max_per_vm = 4;
	c->prefix_max_per_user = 16;
	set_str(&c->public_ipv4_pool, "");
	c->public_ipv4_max_per_user = 0;
	set_str(&c->metrics_token_file, "");
	c->metrics_disk_interval = 10;
	c->events_max_per_user = 8;
	c->events_buffer = 1 << 20;
	c->events_retention = 3600;
	c->audit_retention_days = 90;
	/* bandwidth limits and traffic metering */
	c->meter_interval = 10;
	set_str(&c->quota_throttle_rate, "1mbit");
	/* vmrt: clear of the first user's subordinate ids (useradd:
	 * 100000..165535) and below systemd-nspawn's (524288..); hcd refuses
	 * a range that overlaps anyone's ids (vm/identity.h). */
	c->qemu_uid_base = 200000;
	c->qemu_uid_count = 65536;
	/* migrate: below Linux's ephemeral ports (32768..) */
	c->migrate_port_base = 7400;
	c->migrate_port_count = 64;
	c->migrate_timeout = 600;
	c->migrate_stall_timeout = 30;
	c->migrate_wait_timeout = 60;
	c->migrate_max_downtime_ms = 300;
	c->migrate_max_bandwidth = 0;
	c->snapshot_copy_timeout = 600;
	c->vm_max_cpus = 0;
}

int config_set(struct config *c, const char *section, const char *key, const char *value)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->name, key) != 0 || strcmp(k->section, section) != 0)
			continue;
		void *slot = (char *)c + k->off;
		char *end;
		long long v;
		switch (k->kind) {
		case K_STR:
			set_str(slot, value);
			return 0;
		case K_BOOL:
			if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
			    strcmp(value, "1") == 0)
				*(int *)slot = 1;
			else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
				 strcmp(value, "0") == 0)
				*(int *)slot = 0;
			else
				return -1;
			return 0;
		case K_INT:
		case K_LL:
			errno = 0;
			v = strtoll(value, &end, 10);
			if (errno || end == value || *end != '\0' || v < 0 ||
			    (k->kind == K_INT && v > INT_MAX))
				return -1;
			if (k->kind == K_INT)
				*(int *)slot = (int)v;
			else
				*(long long *)slot = v;
			return 0;
		}
	}
	return -1;
}

/*
 * libinih strips inline comments that start with ';' only, but hcd.conf
 * (DESIGN §9) writes them with '#': "accel = auto   # kvm | tcg | auto".
 * Cut the value at a '#' that starts it or follows whitespace; a '#'
 * inside a word ("ou=a#b") is kept.
 */
static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
	const char *h = value;
	char *v;
	size_t n;
	int ok;

	while ((h = strchr(h, '#')) != NULL && h != value && h[-1] != ' ' && h[-1] != '\t')
		h++;
	if (h == NULL)
		return config_set(user, section, name, value) == 0;
	n = (size_t)(h - value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if ((v = strndup(value, n)) == NULL)
		return 0;
	ok = config_set(user, section, name, v) == 0;
	free(v);
	return ok;
}

int config_load(struct config *c, const char *path, int optional,
		char *const *overrides, int n_overrides, char **err)
{
	if (path != NULL) {
		int rc = ini_parse(path, on_ini_line, c);
		if (rc == -1 && !optional) {
			*err = str_printf("%s: cannot open", path);
			return -1;
		}
		if (rc > 0) {
			*err = str_printf("%s:%d: unknown key or bad value", path, rc);
			return -1;
		}
	}
	for (int i = 0; i < n_overrides; i++) {
		const char *kv = overrides[i];
		const char *eq = strchr(kv, '=');
		char section[32] = "hcd", key[64];
		const char *dot;
		size_t klen;

		if (eq == NULL) {
			*err = str_printf("--%s: expected --key=value", kv);
			return -1;
		}
		klen = (size_t)(eq - kv);
		dot = memchr(kv, '.', klen);
		if (dot) {
			size_t slen = (size_t)(dot - kv);
			if (slen >= sizeof(section))
				slen = sizeof(section) - 1;
			memcpy(section, kv, slen);
			section[slen] = '\0';
			kv = dot + 1;
			klen = (size_t)(eq - kv);
		}
		if (klen >= sizeof(key))
			klen = sizeof(key) - 1;
		memcpy(key, kv, klen);
		key[klen] = '\0';
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		if (config_set(c, section, key, eq + 1) < 0) {
			*err = str_printf("--%s: unknown key or bad value", overrides[i]);
			return -1;
		}
	}
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].kind == K_STR) {
			char **slot = (char **)((char *)c + keys[i].off);
			free(*slot);
			*slot = NULL;
		}
}

bool config_key_at(size_t i, struct config_key_doc *out)
{
	if (i >= sizeof(keys) / sizeof(keys[0]))
		return false;
	*out = (struct config_key_doc){
		.section = keys[i].section,
		.name = keys[i].name,
		.type = keys[i].kind == K_STR ? "string" : "integer",
		.help = keys[i].help,
	};
	return true;
}

char *config_value_text(const struct config *c, size_t i)
{
	const void *slot;

	if (i >= sizeof(keys) / sizeof(keys[0]))
		return NULL;
	slot = (const char *)c + keys[i].off;
	switch (keys[i].kind) {
	case K_STR:
		return *(char *const *)slot ? strdup(*(char *const *)slot) : NULL;
	case K_INT:
		return str_printf("%d", *(const int *)slot);
	case K_LL:
		return str_printf("%lld", *(const long long *)slot);
	case K_BOOL:
		return strdup(*(const int *)slot ? "true" : "false");
	}
	return NULL;
}
