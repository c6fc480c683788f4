/* config — see config.h. */
#include "common/config.h"

#include "common/fsutil.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_LL };

struct key {
	const char *section;
	const char *name;
	enum kind kind;
	size_t off;
};

#define S(sec, n, f) { sec, n, K_STR, offsetof(struct config, f) }
#define I(sec, n, f) { sec, n, K_INT, offsetof(struct config, f) }

/* Every configuration key, in one table. */
static const struct key keys[] = {
	S("hcd", "state_dir", state_dir),
	S("hcd", "accel", accel),
	S("hcd", "store", store),
	S("hcd", "roles", roles),
	S("hcd", "host_name", host_name),
	S("hcd", "listen", listen),
	S("hcd", "tls_cert", tls_cert),
	S("hcd", "tls_key", tls_key),
	S("hcd", "uplink", uplink),
	S("hcd", "underlay", underlay),
	I("hcd", "vxlan_port", vxlan_port),
	S("hcd", "qemu_user", qemu_user),
	S("hcd", "log_level", log_level),
	I("hcd", "stop_timeout", stop_timeout),
	I("hcd", "metadata_port", metadata_port),
	I("hcd", "metadata_rate", metadata_rate),
	I("hcd", "resync_interval", resync_interval),
	{ "hcd", "max_body", K_LL, offsetof(struct config, max_body) },
	I("hcd", "heartbeat_interval", heartbeat_interval),
	I("hcd", "dead_timeout", dead_timeout),
	I("hcd", "cpu_overcommit", cpu_overcommit),
	I("hcd", "reserved_memory_mib", reserved_memory_mib),
	I("hcd", "api_rate", api_rate),
	I("hcd", "api_burst", api_burst),
	I("hcd", "workers", workers),
	S("auth", "passwd_file", passwd_file),
	S("auth", "secret_key_file", secret_key_file),
	S("auth", "otp_issuer", otp_issuer),
	I("auth", "ldap_starttls", ldap_starttls),
	I("auth", "ldap_timeout", ldap_timeout),
	S("auth", "ldap_ca_file", ldap_ca_file),
	S("auth", "ldap_uri", ldap_uri),
	S("auth", "ldap_base", ldap_base),
	S("auth", "ldap_filter", ldap_filter),
	S("auth", "ldap_bind_dn", ldap_bind_dn),
	S("auth", "ldap_bind_password_file", ldap_bind_password_file),
	I("auth", "token_ttl", token_ttl),
	/* images */
	S("hcd", "image_user", image_user),
	S("hcd", "import_allow", import_allow),
	S("hcd", "import_proxy", import_proxy),
	I("hcd", "import_max_per_user", import_max_per_user),
	I("hcd", "import_max_total", import_max_total),
	/* bandwidth limits and traffic metering */
	I("hcd", "meter_interval", meter_interval),
	S("hcd", "quota_throttle_rate", quota_throttle_rate),
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
	set_str(&c->qemu_user, "nobody");
	set_str(&c->passwd_file, "");
	set_str(&c->secret_key_file, "");
	set_str(&c->otp_issuer, "hackcloud");
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
	c->resync_interval = 60;
	c->max_body = 1 << 20;
	c->token_ttl = 86400;
	/* images */
	set_str(&c->image_user, "nobody");
	set_str(&c->import_allow, "");
	set_str(&c->import_proxy, "");
	c->import_max_per_user = 2;
	c->import_max_total = 8;
	/* bandwidth limits and traffic metering */
	c->meter_interval = 10;
	set_str(&c->quota_throttle_rate, "1mbit");
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
