/*
 * config — hcd.conf (INI, DESIGN §9) plus --key=value overrides.
 * Keys are "section.key"; keys of the [hcd] section may be given bare.
 * A command-line override always wins over the file.
 */
#ifndef HC_CONFIG_H
#define HC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct config {
	char *state_dir;
	char *accel;          /* kvm | tcg | auto */
	char *store;          /* sqlite | sqlite:PATH | postgresql://… */
	char *roles;
	char *host_name;
	char *listen;         /* optional TCP listener, "[::1]:8443" */
	char *tls_cert;
	char *tls_key;
	char *uplink;
	char *underlay;
	int vxlan_port;       /* UDP port of the overlay (VXLAN) between hosts */
	char *log_level;      /* debug | info | warn | error */
	int metadata_port;    /* the metadata service's port on 169.254.169.254 */
	int metadata_rate;    /* requests per second per VM; 0 = unlimited */
	char *metadata_tokens;/* IMDSv2 for new VMs without a choice: optional | required */
	int stop_timeout;     /* seconds between ACPI powerdown and quit */
	int resync_interval;  /* seconds between safety-net reconciles */
	long long max_body;   /* bytes of a JSON request body */
	int heartbeat_interval; /* seconds between this host's heartbeats */
	int dead_timeout;     /* seconds of silence after which a host is dead */
	int cpu_overcommit;   /* virtual CPUs placed per host CPU */
	int reserved_memory_mib; /* host memory kept from VMs */
	int api_rate;         /* API requests per second per user (tokens); 0 = unlimited */
	int api_burst;        /* bucket size of that limit */
	int workers;          /* threads for slow steps off the event loop (common/worker.h) */
	char *passwd_file;    /* empty: STATE_DIR/passwd */
	char *secret_key_file;/* seals OTP secrets; empty: STATE_DIR/secret.key */
	char *otp_issuer;     /* shown by authenticator apps */
	int ldap_starttls;    /* 1: StartTLS on ldap:// URIs */
	int ldap_timeout;     /* seconds: network and operation timeout */
	char *ldap_ca_file;
	char *ldap_uri;
	char *ldap_base;
	char *ldap_filter;
	char *ldap_bind_dn;
	char *ldap_bind_password_file;
	int token_ttl;
	/* images: uploads and URL imports (issue 11) */
	char *image_user;     /* qemu-img runs as this unprivileged user */
	char *import_allow;   /* CIDR[,CIDR…] members may import from although private/ULA */
	char *import_proxy;   /* the only proxy imports use ("" = none; never the environment's) */
	int import_max_per_user; /* concurrent URL imports of one user; 0 = no cap */
	int import_max_total; /* concurrent URL imports on this host; 0 = no cap */
	/* The API's listeners and sessions (issue 11 §6, §10; issue 12 §4). */
	int listen_insecure;  /* 1: a TCP listener without tls_cert, loopback only */
	int api_max_connections; /* per listener */
	int api_max_per_peer; /* connections per IPv4 address / IPv6 /64 / local uid */
	int api_header_timeout; /* seconds a connection may take to send a request's headers */
	char *local_users;    /* uids of local accounts that map to users: "FIRST-LAST" or "none" */
	int token_cache_ttl;  /* seconds a token's answer is reused (cross-host revocation delay) */
	/* tenancy (issue 11, items 4 and 12) */
	char *tenant_ipv6_pool;  /* "PREFIX/len[,…]": members' networks come from here */
	char *tenant_ipv4_pool;  /* "CIDR[,…]": members' IPv4 subnets come from here */
	/* Per-user quotas of members without their own setting, in the order
	 * of store.h's enum quota (vms, vcpus, memory_mib, disk_bytes,
	 * networks, images, image_bytes); 0 = unlimited. */
	long long default_quota[7];
	/* The dashboard (issue 15 §3). */
	char *web_root;       /* its files; empty: the data directory's web/; "none": no dashboard */
	/* routed IPv6 prefixes and public IPv4 addresses (issue 13 §3, §4;
	 * common/addrpool.h has the pools' syntax) */
	char *prefix_pool;    /* IPv6 prefixes VMs' routed prefixes come from; "" = none */
	int prefix_length;    /* length of a new prefix when none is asked for */
	int prefix_min_length; /* the shortest (largest) prefix a member may ask for */
	int prefix_max_per_vm; /* 0 = no cap */
	int prefix_max_per_user; /* a member's prefixes over all VMs; 0 = no cap */
	char *public_ipv4_pool; /* public IPv4 addresses mapped 1:1 to VMs; "" = none */
	int public_ipv4_max_per_user; /* a member may attach this many; 0 = admins only */
	/* Metrics, events and audit (issue 15 §1, §2). */
	char *metrics_token_file; /* a bearer token that may read /metrics alone; empty: admins only */
	int metrics_disk_interval; /* seconds between QMP query-blockstats of each VM */
	int events_max_per_user; /* open /v1/events streams per user; 0 = no cap */
	int events_buffer;    /* bytes a stream may fall behind before it is cut */
	int events_retention; /* seconds the event log keeps events (resume window) */
	int audit_retention_days; /* days the audit trail keeps entries */
	/* bandwidth limits and traffic metering (issue 13) */
	int meter_interval;   /* seconds between samples of the NICs' counters */
	char *quota_throttle_rate; /* what a NIC over its monthly traffic quota gets, e.g. "1mbit" */
	/* vmrt: every VM's QEMU runs as uid = gid = qemu_uid_base + (VM ID mod
	 * qemu_uid_count), a range no account uses (vm/identity.h) */
	int qemu_uid_base;
	int qemu_uid_count;
	/* migrate: live migration between hosts (issue 14 §1, agent/migrate.h) */
	int migrate_port_base;   /* TCP ports of incoming migrations on the underlay: */
	int migrate_port_count;  /*   [base, base + count), two per migration */
	int migrate_timeout;     /* seconds a transfer may take in all */
	int migrate_stall_timeout; /* seconds without progress before a transfer is given up */
	int migrate_wait_timeout; /* seconds the source waits for the destination's steps */
	int migrate_max_downtime_ms; /* QEMU's downtime-limit */
	int migrate_max_bandwidth; /* MiB/s of the stream; 0 = unlimited */
	/* snapshot (issue 14 §2): seconds (wall and CPU) a qemu-img that copies
	 * a disk's data may take: merging a snapshot away, flattening a disk
	 * into an image */
	int snapshot_copy_timeout;
	/* resize: QEMU's maxcpus for CPU hotplug; 0 = the host's CPU count */
	int vm_max_cpus;
};

#define CONFIG_DEFAULT_PATH "/etc/hackcloud/hcd.conf"

void config_defaults(struct config *c);
/*
 * Load path (missing is fine when optional) then apply overrides
 * ("key=value" strings).  On error returns -1 and a malloc'd message.
 */
int config_load(struct config *c, const char *path, int optional,
		char *const *overrides, int n_overrides, char **err);
/* Set one key; -1 for an unknown key or a bad value. */
int config_set(struct config *c, const char *section, const char *key, const char *value);
void config_free(struct config *c);

/* The key table as documentation sees it: `hcd --print-config`, and from
 * it hcd.conf(5), hcd(8) and the sample hcd.conf (packaging/gendoc.py). */
struct config_key_doc {
	const char *section;
	const char *name;
	const char *type;     /* "string" | "integer" */
	const char *help;     /* one line; "" when the row has none */
};
/* The i-th key of the table; false past the last. */
bool config_key_at(size_t i, struct config_key_doc *out);
/* The i-th key's value in c as text (malloc'd); NULL for an unset string. */
char *config_value_text(const struct config *c, size_t i);

#endif
