/* tree — see tree.h. */
#include "metadata/tree.h"

#include "api/codec.h"
#include "common/addrpool.h"
#include "common/fsutil.h"
#include "common/ids.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT "text/plain; charset=utf-8"
#define JSON "application/json"

static int text(struct md_reply *r, char *body)
{
	r->status = body ? 200 : 404;
	r->body = body;
	r->len = body ? strlen(body) : 0;
	r->type = TEXT;
	return r->status;
}

static int json(struct md_reply *r, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(v);
	r->status = s ? 200 : 404;
	r->body = s;
	r->len = s ? strlen(s) : 0;
	r->type = JSON;
	return r->status;
}

static int user_data(const struct vm *vm, struct md_reply *r)
{
	if (vm->user_data == NULL || vm->user_data_len == 0)
		return text(r, NULL);
	r->body = malloc(vm->user_data_len + 1);
	if (r->body == NULL)
		return text(r, NULL);
	memcpy(r->body, vm->user_data, vm->user_data_len);
	r->body[vm->user_data_len] = '\0';
	r->len = vm->user_data_len;
	r->status = 200;
	r->type = "application/octet-stream";
	return 200;
}

/* "latest" or a date like 2009-04-04: the versions cloud-init probes. */
static bool version_ok(const char *v, size_t n)
{
	if (n == 6 && strncmp(v, "latest", 6) == 0)
		return true;
	if (n != 10 || v[4] != '-' || v[7] != '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (i != 4 && i != 7 && !(v[i] >= '0' && v[i] <= '9'))
			return false;
	return true;
}

static char *instance_id(const struct vm *vm)
{
	return str_printf("i-%s", vm_id_format(vm->id).s);
}

/*
 * network/interfaces/macs/<mac>/…: per NIC its MAC, routed IPv6 prefixes
 * ("ipv6-prefix", one per line, as EC2 writes delegated prefixes) and
 * public IPv4 address ("public-ipv4s") — issue 13.  p follows "network/".
 */
static int ec2_network(const struct vm *vm, const char *p, struct md_reply *r)
{
	static const char macs[] = "interfaces/macs/";

	if (*p == '\0')
		return text(r, strdup("interfaces/\n"));
	if (strcmp(p, "interfaces/") == 0 || strcmp(p, "interfaces") == 0)
		return text(r, strdup("macs/\n"));
	if (strncmp(p, macs, sizeof(macs) - 2) != 0 || (p[sizeof(macs) - 2] != '\0' && p[sizeof(macs) - 2] != '/'))
		return text(r, NULL);
	p += sizeof(macs) - 2;
	p += *p == '/';
	if (*p == '\0') {
		char *out = strdup("");
		for (size_t i = 0; out && i < vm->n_nics; i++) {
			char *n = str_printf("%s%s/\n", out, nic_mac_format(vm->nics[i].id).s);
			free(out);
			out = n;
		}
		return text(r, out);
	}
	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *nic = &vm->nics[i];
		mac_str mac = nic_mac_format(nic->id);
		size_t ml = strlen(mac.s);
		if (strncmp(p, mac.s, ml) != 0 || (p[ml] != '\0' && p[ml] != '/'))
			continue;
		const char *leaf = p[ml] ? p + ml + 1 : "";
		if (*leaf == '\0')
			return text(r, str_printf("mac\n%s%s", nic->n_prefixes ? "ipv6-prefix\n" : "",
						  nic->public_ipv4 ? "public-ipv4s\n" : ""));
		if (strcmp(leaf, "mac") == 0)
			return text(r, strdup(mac.s));
		if (strcmp(leaf, "public-ipv4s") == 0)
			return text(r, nic->public_ipv4 ? strdup(nic->public_ipv4) : NULL);
		if (strcmp(leaf, "ipv6-prefix") == 0 && nic->n_prefixes > 0) {
			char *out = strdup("");
			for (size_t j = 0; out && j < nic->n_prefixes; j++) {
				char *n = str_printf("%s%s%s", out, j ? "\n" : "", nic->prefixes[j]);
				free(out);
				out = n;
			}
			return text(r, out);
		}
		return text(r, NULL);
	}
	return text(r, NULL);
}

static int ec2_meta(const struct vm *vm, const char *p, struct md_reply *r)
{
	const struct nic *nic0 = vm->n_nics ? &vm->nics[0] : NULL;

	if (*p == '\0')
		return text(r, str_printf("hostname\ninstance-id\nlocal-hostname\n%s%s%s%spublic-keys/\n",
					  nic0 && nic0->ipv4 ? "local-ipv4\n" : "", nic0 ? "mac\n" : "",
					  nic0 ? "network/\n" : "", nic0 && nic0->public_ipv4 ? "public-ipv4\n" : ""));
	if (strcmp(p, "network") == 0 || strncmp(p, "network/", 8) == 0)
		return ec2_network(vm, p[7] ? p + 8 : "", r);
	if (strcmp(p, "public-ipv4") == 0)
		return text(r, nic0 && nic0->public_ipv4 ? strdup(nic0->public_ipv4) : NULL);
	if (strcmp(p, "instance-id") == 0)
		return text(r, instance_id(vm));
	if (strcmp(p, "hostname") == 0 || strcmp(p, "local-hostname") == 0)
		return text(r, strdup(vm->name));
	if (strcmp(p, "local-ipv4") == 0)
		return text(r, nic0 && nic0->ipv4 ? strdup(nic0->ipv4) : NULL);
	if (strcmp(p, "mac") == 0)
		return text(r, nic0 ? strdup(nic_mac_format(nic0->id).s) : NULL);
	if (strcmp(p, "public-keys") == 0 || strcmp(p, "public-keys/") == 0) {
		if (vm->n_keys == 0)
			return text(r, strdup(""));
		char *out = strdup("");
		for (size_t i = 0; out && i < vm->n_keys; i++) {
			char *n = str_printf("%s%zu=%s\n", out, i, vm->keys[i].name ? vm->keys[i].name : "key");
			free(out);
			out = n;
		}
		return text(r, out);
	}
	if (strncmp(p, "public-keys/", 12) == 0) {
		char *end;
		unsigned long idx = strtoul(p + 12, &end, 10);
		if (end == p + 12 || idx >= vm->n_keys || vm->keys[idx].pubkey == NULL)
			return text(r, NULL);
		if (*end == '\0' || strcmp(end, "/") == 0)
			return text(r, strdup("openssh-key\n"));
		if (strcmp(end, "/openssh-key") == 0)
			return text(r, str_printf("%s\n", vm->keys[idx].pubkey));
	}
	return text(r, NULL);
}

static json_t *os_meta(const struct vm *vm)
{
	json_t *keys = json_object(), *klist = json_array();
	char uuid[40];
	vm_id_str id = vm_id_format(vm->id);

	/* A stable UUID-shaped ID derived from the instance ID. */
	snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-00%s", id.s);
	for (size_t i = 0; i < vm->n_keys; i++) {
		const char *name = vm->keys[i].name ? vm->keys[i].name : "key";
		json_object_set_new(keys, name, json_string(vm->keys[i].pubkey ? vm->keys[i].pubkey : ""));
		json_array_append_new(klist, json_pack("{s:s, s:s, s:s}", "name", name, "type", "ssh",
						       "data", vm->keys[i].pubkey ? vm->keys[i].pubkey : ""));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:i, s:s, s:{}}",
			 "uuid", uuid, "name", vm->name, "hostname", vm->name,
			 "public_keys", keys, "keys", klist, "launch_index", 0,
			 "availability_zone", "nova", "meta");
}

static json_t *os_network(const struct vm *vm)
{
	json_t *links = json_array(), *nets = json_array();

	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *n = &vm->nics[i];
		char lid[32];
		snprintf(lid, sizeof(lid), "tap%zu", i);
		json_array_append_new(links, json_pack("{s:s, s:s, s:s, s:i}", "id", lid, "type", "phy",
						       "ethernet_mac_address", nic_mac_format(n->id).s,
						       "mtu", 1500));
		json_array_append_new(nets, json_pack("{s:s, s:s, s:s}", "id", lid, "link", lid,
						      "type", "ipv6_slaac"));
		if (n->ipv4)
			json_array_append_new(nets, json_pack("{s:s, s:s, s:s}", "id", lid, "link", lid,
							      "type", "ipv4_dhcp"));
		/* Routed prefixes (issue 13): the first address of each, as a
		 * static address of the link (routed to it, so /128). */
		for (size_t j = 0; j < n->n_prefixes; j++) {
			char addr[INET6_ADDRSTRLEN], nid[80];
			if (!prefix_suggested_address(n->prefixes[j], addr, sizeof(addr)))
				continue;
			snprintf(nid, sizeof(nid), "%s-prefix%zu", lid, j);
			json_array_append_new(nets, json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "id", nid,
							      "link", lid, "type", "ipv6", "ip_address", addr,
							      "netmask", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
							      "routes"));
		}
	}
	return json_pack("{s:o, s:o, s:[]}", "links", links, "networks", nets, "services");
}

int metadata_render(const struct vm *vm, const char *path, struct md_reply *r)
{
	memset(r, 0, sizeof(*r));
	while (*path == '/')
		path++;
	if (*path == '\0')
		return text(r, strdup("latest\n2009-04-04\nopenstack\n"));

	if (strncmp(path, "openstack", 9) == 0 && (path[9] == '\0' || path[9] == '/')) {
		const char *p = path + 9;
		while (*p == '/')
			p++;
		if (*p == '\0')
			return text(r, strdup("latest\n2012-08-10\n"));
		const char *slash = strchr(p, '/');
		size_t vlen = slash ? (size_t)(slash - p) : strlen(p);
		if (!version_ok(p, vlen))
			return text(r, NULL);
		const char *leaf = slash ? slash + 1 : "";
		if (*leaf == '\0')
			return text(r, strdup("meta_data.json\nnetwork_data.json\nuser_data\n"));
		if (strcmp(leaf, "meta_data.json") == 0)
			return json(r, os_meta(vm));
		if (strcmp(leaf, "network_data.json") == 0)
			return json(r, os_network(vm));
		if (strcmp(leaf, "user_data") == 0)
			return user_data(vm, r);
		if (strcmp(leaf, "vendor_data.json") == 0)
			return json(r, json_object());
		return text(r, NULL);
	}

	const char *slash = strchr(path, '/');
	size_t vlen = slash ? (size_t)(slash - path) : strlen(path);
	if (!version_ok(path, vlen))
		return text(r, NULL);
	const char *rest = slash ? slash + 1 : "";
	if (*rest == '\0')
		return text(r, strdup("meta-data/\nuser-data\n"));
	if (strcmp(rest, "user-data") == 0)
		return user_data(vm, r);
	if (strcmp(rest, "meta-data") == 0 || strcmp(rest, "meta-data/") == 0)
		return ec2_meta(vm, "", r);
	if (strncmp(rest, "meta-data/", 10) == 0)
		return ec2_meta(vm, rest + 10, r);
	return text(r, NULL);
}
