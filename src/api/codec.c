/* codec — see codec.h. */
#include "api/codec.h"

#include "common/ids.h"
#include "common/validate.h"

#include <arpa/inet.h>
#include <stdio.h>
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

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *vm_to_json(const struct vm *vm)
{
	json_t *nics = json_array();
	char image_id[9];

	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *n = &vm->nics[i];
		char v6[INET6_ADDRSTRLEN];
		bool have_v6 = n->network_ipv6 && nic_ipv6(n->network_ipv6, n->id, v6, sizeof(v6));
		json_array_append_new(nics, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}",
			"mac", nic_mac_format(n->id).s,
			"ifname", ifname_tap(n->id).s,
			"network", n->network_name ? n->network_name : "",
			"network_id", net_id_format(n->network).s,
			"ipv6", have_v6 ? json_string(v6) : json_null(),
			"ipv4", str_or_null(n->ipv4)));
	}
	/* Keys by name and fingerprint only, and the user data by size: the
	 * content is for the guest (and GET …/user-data), not for listings. */
	json_t *keys = json_array();
	for (size_t i = 0; i < vm->n_keys; i++)
		json_array_append_new(keys, json_pack("{s:s, s:s}",
			"name", vm->keys[i].name ? vm->keys[i].name : "",
			"fingerprint", vm->keys[i].fingerprint ? vm->keys[i].fingerprint : ""));
	/* Data disks by size, in the order the guest sees them after the root
	 * disk; disk_size null = the image's own size. */
	json_t *disks = json_array();
	for (size_t i = 0; i < vm->n_disks; i++)
		json_array_append_new(disks, json_pack("{s:I}", "size", (json_int_t)vm->disks[i].size));
	id8_format(vm->image, image_id);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:I, s:b,"
			 " s:o, s:o, s:b, s:s}",
		"id", vm_id_format(vm->id).s,
		"name", vm->name,
		"state", vm->state,
		"desired", vm->desired,
		"cpus", vm->cpus,
		"memory_mib", vm->memory_mib,
		"image", vm->image_name ? vm->image_name : "",
		"image_id", image_id,
		"owner", vm->owner_name ? vm->owner_name : "",
		"host", str_or_null(vm->host),
		"error", str_or_null(vm->error),
		"created", (json_int_t)vm->created,
		"nics", nics,
		"keys", keys,
		"user_data_size", (json_int_t)vm->user_data_len,
		"config_drive", vm->config_drive ? 1 : 0,
		"disk_size", vm->disk_size > 0 ? json_integer(vm->disk_size) : json_null(),
		"disks", disks,
		"ephemeral", vm->ephemeral,
		"metadata_tokens", vm->metadata_tokens_required ? "required" : "optional");
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
