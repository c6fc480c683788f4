/*
 * config — hcd.conf (INI, DESIGN §9) plus --key=value overrides.
 * Keys are "section.key"; keys of the [hcd] section may be given bare.
 * A command-line override always wins over the file.
 */
#ifndef HC_CONFIG_H
#define HC_CONFIG_H

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
	char *qemu_user;      /* QEMU drops to this user (-runas); empty = stay root */
	char *log_level;      /* debug | info | warn | error */
	int metadata_port;    /* the metadata service's port on 169.254.169.254 */
	int metadata_rate;    /* requests per second per VM; 0 = unlimited */
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
	/* bandwidth limits and traffic metering (issue 13) */
	int meter_interval;   /* seconds between samples of the NICs' counters */
	char *quota_throttle_rate; /* what a NIC over its monthly traffic quota gets, e.g. "1mbit" */
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

#endif
