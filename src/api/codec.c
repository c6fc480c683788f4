/* codec — see codec.h. */
#include "api/codec.h"

#include "common/ids.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void id8_format(uint64_t id, char buf[9])
{
	snprintf(buf, 9, "%08llx", (unsigned long long)(id & 0xffffffffu));
}

bool nic_ipv6(const char *prefix64, uint64_t nic_id, char *buf, size_t len)
{
	struct in6_addr a;
	uint8_t mac[6];

	if (!ipv6_prefix64_parse(prefix64, &a))
		return false;
	nic_mac_bytes(nic_id, mac);
	eui64_from_mac(mac, &a.s6_addr[8]);
	return inet_ntop(AF_INET6, &a, buf, (socklen_t)len) != NULL;
}

/* ---- JSON text written directly ------------------------------------------ */

void jbuf_put(struct jbuf *b, const char *p, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (ns == NULL) {
			b->failed = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
}

static void jb_lit(struct jbuf *b, const char *lit)
{
	jbuf_put(b, lit, strlen(lit));
}

static void jb_int(struct jbuf *b, long long v)
{
	char t[24];

	jbuf_put(b, t, (size_t)snprintf(t, sizeof(t), "%lld", v));
}

/* Bytes of a valid UTF-8 sequence at s (1..4), or 0: RFC 3629, as jansson
 * reads it — no overlong forms, no surrogates, nothing past U+10FFFF
 * (found by tests/fuzz/fuzz_codec: a byte jansson refuses makes the whole
 * VM a 500, and its listing invalid JSON). */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
		   s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/*
 * Free text that passed no name check — a host name from another host's
 * hcd.conf, an error from QEMU or an import, a URL — is shown whatever its
 * bytes: jansson refuses what is not UTF-8, which would make the whole row
 * unshowable, so such bytes become U+FFFD, as in the VM text (jb_str).
 */
static json_t *str_or_null(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *copy, *o;
	json_t *j;

	if (s == NULL)
		return json_null();
	if ((copy = malloc(strlen(s) * 3 + 1)) == NULL)      /* a byte: at most U+FFFD's 3 */
		return NULL;
	for (o = copy; *p;) {
		size_t n = utf8_len(p);
		memcpy(o, n ? (const char *)p : "\xef\xbf\xbd", n ? n : 3);
		o += n ? n : 3;
		p += n ? n : 1;
	}
	*o = '\0';
	j = json_string(copy);
	free(copy);
	return j;
}

/* A JSON string as jansson writes one (NULL: null).  A byte that is not
 * valid UTF-8 (jansson would refuse the whole value) becomes U+FFFD. */
static void jb_str(struct jbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run;

	if (s == NULL) {
		jb_lit(b, "null");
		return;
	}
	jbuf_put(b, "\"", 1);
	for (run = p; *p;) {
		size_t n = utf8_len(p);
		const char *esc = NULL;
		char u[8];
		if (n > 1 || (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\')) {
			p += n;
			continue;
		}
		jbuf_put(b, (const char *)run, (size_t)(p - run));
		switch (n == 0 ? 0 : *p) {
		case 0:    esc = "\\ufffd"; break;
		case '"':  esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			snprintf(u, sizeof(u), "\\u%04x", *p);
			esc = u;
		}
		jb_lit(b, esc);
		run = ++p;
	}
	jbuf_put(b, (const char *)run, (size_t)(p - run));
	jbuf_put(b, "\"", 1);
}

/* An object being written: members in order, only those in fields (a
 * comma list; NULL: all). */
struct jobj {
	struct jbuf *b;
	const char *fields;
	bool first;
};

/* key is in fields, whole or as the object of "key.member" entries. */
static bool field_wanted(const char *fields, const char *key)
{
	size_t len = strlen(key);

	for (const char *f = fields; f && *f; f += strcspn(f, ",") + (f[strcspn(f, ",")] == ',')) {
		size_t n = strcspn(f, ",");
		if (n >= len && strncmp(f, key, len) == 0 && (n == len || f[len] == '.'))
			return true;
	}
	return fields == NULL;
}

/* Writes "key": (with its comma) and says whether to write the value. */
static bool jo_key(struct jobj *o, const char *key)
{
	if (!field_wanted(o->fields, key))
		return false;
	if (!o->first)
		jbuf_put(o->b, ",", 1);
	o->first = false;
	jb_str(o->b, key);
	jbuf_put(o->b, ":", 1);
	return true;
}

/* fields of a NIC: those named "nics.X" in the VM's fields (NULL: all). */
static void nic_write(struct jbuf *b, const struct nic *n, const char *fields)
{
	struct jobj o = { b, fields, true };
	char v6[INET6_ADDRSTRLEN];

	jbuf_put(b, "{", 1);
	if (jo_key(&o, "mac"))
		jb_str(b, nic_mac_format(n->id).s);
	if (jo_key(&o, "ifname"))
		jb_str(b, ifname_tap(n->id).s);
	if (jo_key(&o, "network"))
		jb_str(b, n->network_name ? n->network_name : "");
	if (jo_key(&o, "network_id"))
		jb_str(b, net_id_format(n->network).s);
	if (jo_key(&o, "ipv6"))
		jb_str(b, n->network_ipv6 && nic_ipv6(n->network_ipv6, n->id, v6, sizeof(v6)) ? v6 : NULL);
	if (jo_key(&o, "ipv4"))
		jb_str(b, n->ipv4);
	/* routing (issue 13): routed prefixes, the public IPv4 address */
	if (jo_key(&o, "prefixes")) {
		jbuf_put(b, "[", 1);
		for (size_t j = 0; j < n->n_prefixes; j++) {
			if (j)
				jbuf_put(b, ",", 1);
			jb_str(b, n->prefixes[j]);
		}
		jbuf_put(b, "]", 1);
	}
	if (jo_key(&o, "public_ipv4"))
		jb_str(b, n->public_ipv4);
	jbuf_put(b, "}", 1);
}

/* "nics.ipv6,nics.ipv4" out of a VM's fields: the NIC members asked for,
 * into buf; NULL when the fields name "nics" whole (or are NULL). */
static const char *nic_fields(const char *fields, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (const char *f = fields; f && *f; f += strcspn(f, ",") + (f[strcspn(f, ",")] == ',')) {
		size_t n = strcspn(f, ",");
		if (n > 5 && strncmp(f, "nics.", 5) == 0 && at + n < len)
			at += (size_t)snprintf(buf + at, len - at, "%s%.*s", at ? "," : "", (int)(n - 5), f + 5);
	}
	return at ? buf : NULL;
}

bool vm_json_write(const struct vm *vm, const char *fields, struct jbuf *b)
{
	struct jobj o = { b, fields, true };
	char image_id[9];

	id8_format(vm->image, image_id);
	jbuf_put(b, "{", 1);
	if (jo_key(&o, "id"))
		jb_str(b, vm_id_format(vm->id).s);
	if (jo_key(&o, "name"))
		jb_str(b, vm->name);
	if (jo_key(&o, "state"))
		jb_str(b, vm->state);
	if (jo_key(&o, "desired"))
		jb_str(b, vm->desired);
	if (jo_key(&o, "cpus"))
		jb_int(b, vm->cpus);
	if (jo_key(&o, "memory_mib"))
		jb_int(b, vm->memory_mib);
	if (jo_key(&o, "image"))
		jb_str(b, vm->image_name ? vm->image_name : "");
	if (jo_key(&o, "image_id"))
		jb_str(b, image_id);
	if (jo_key(&o, "owner"))
		jb_str(b, vm->owner_name ? vm->owner_name : "");
	if (jo_key(&o, "host"))
		jb_str(b, vm->host);
	if (jo_key(&o, "error"))
		jb_str(b, vm->error);
	if (jo_key(&o, "created"))
		jb_int(b, vm->created);
	if (jo_key(&o, "nics")) {
		char nf[128];
		const char *sub = nic_fields(fields, nf, sizeof(nf));
		jbuf_put(b, "[", 1);
		for (size_t i = 0; i < vm->n_nics; i++) {
			if (i)
				jbuf_put(b, ",", 1);
			nic_write(b, &vm->nics[i], sub);
		}
		jbuf_put(b, "]", 1);
	}
	/* Keys by name and fingerprint only, and the user data by size: the
	 * content is for the guest (and GET …/user-data), not for listings. */
	if (jo_key(&o, "keys")) {
		jbuf_put(b, "[", 1);
		for (size_t i = 0; i < vm->n_keys; i++) {
			jb_lit(b, i ? ",{\"name\":" : "{\"name\":");
			jb_str(b, vm->keys[i].name ? vm->keys[i].name : "");
			jb_lit(b, ",\"fingerprint\":");
			jb_str(b, vm->keys[i].fingerprint ? vm->keys[i].fingerprint : "");
			jbuf_put(b, "}", 1);
		}
		jbuf_put(b, "]", 1);
	}
	if (jo_key(&o, "user_data_size"))
		jb_int(b, (long long)vm->user_data_len);
	if (jo_key(&o, "config_drive"))
		jb_lit(b, vm->config_drive ? "true" : "false");
	/* Data disks by size, in the order the guest sees them after the root
	 * disk; disk_size null = the image's own size. */
	if (jo_key(&o, "disk_size")) {
		if (vm->disk_size > 0)
			jb_int(b, vm->disk_size);
		else
			jb_lit(b, "null");
	}
	if (jo_key(&o, "disks")) {
		jbuf_put(b, "[", 1);
		for (size_t i = 0; i < vm->n_disks; i++) {
			jb_lit(b, i ? ",{\"size\":" : "{\"size\":");
			jb_int(b, vm->disks[i].size);
			jbuf_put(b, "}", 1);
		}
		jbuf_put(b, "]", 1);
	}
	if (jo_key(&o, "ephemeral"))
		jb_lit(b, vm->ephemeral ? "true" : "false");
	if (jo_key(&o, "metadata_tokens"))
		jb_str(b, vm->metadata_tokens_required ? "required" : "optional");
	jbuf_put(b, "}", 1);
	return !b->failed;
}

bool vm_json_field_known(const char *name, size_t len)
{
	static const char *const known[] = { "id", "name", "state", "desired", "cpus", "memory_mib",
		"image", "image_id", "owner", "host", "error", "created", "nics", "keys",
		"user_data_size", "config_drive", "disk_size", "disks", "ephemeral", "metadata_tokens", "nics.mac",
		"nics.ifname", "nics.network", "nics.network_id", "nics.ipv6", "nics.ipv4", "nics.prefixes",
		"nics.public_ipv4", NULL };

	for (const char *const *k = known; *k; k++)
		if (strlen(*k) == len && strncmp(*k, name, len) == 0)
			return true;
	return false;
}

/* The one shape of a VM is the text above; one VM is read back from it. */
json_t *vm_to_json(const struct vm *vm)
{
	struct jbuf b = { 0 };
	json_t *j = vm_json_write(vm, NULL, &b) ? json_loadb(b.s, b.len, 0, NULL) : NULL;

	free(b.s);
	return j;
}

json_t *image_to_json(const struct image *im)
{
	char id[9];

	id8_format(im->id, id);
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:I, s:s, s:o, s:b, s:s, s:I, s:s, s:o, s:o}",
		"id", id,
		"name", im->name,
		"sha256", str_or_null(im->sha256),
		"format", im->format,
		"boot", im->boot,
		"size", (json_int_t)im->size,
		"owner", im->owner_name ? im->owner_name : "",
		"cmdline", str_or_null(im->cmdline),
		"initrd", im->has_initrd,
		"state", im->state,
		"created", (json_int_t)im->created,
		"visibility", im->visibility ? im->visibility : "private",
		"source", str_or_null(im->source),
		"error", str_or_null(im->error));
}

json_t *network_to_json(const struct network *n)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I}",
		"id", net_id_format(n->id).s,
		"name", n->name,
		"bridge", ifname_bridge(n->id).s,
		"ipv6", n->ipv6,
		"ipv4", str_or_null(n->ipv4),
		"owner", n->owner_name ? n->owner_name : "",
		"created", (json_int_t)n->created);
}

json_t *host_to_json(const struct host *h)
{
	json_t *j = json_pack("{s:s, s:s?, s:i, s:I, s:s?, s:s, s:b, s:I, s:I, s:i, s:i, s:I}",
			 "name", h->name, "address", h->address, "cpus", h->cpus,
			 "memory_mib", (json_int_t)h->memory_mib, "accel", h->accel,
			 "state", h->state, "drain", h->drain, "last_seen", (json_int_t)h->last_seen,
			 "created", (json_int_t)h->created, "vms", h->vms, "used_cpus", h->used_cpus,
			 "used_mib", (json_int_t)h->used_mib);

	/* drain --migrate: how many VMs it moves at once (0: none) */
	if (j)
		json_object_set_new(j, "drain_migrate", json_integer(h->drain_migrate));
	return j;
}
