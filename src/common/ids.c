/* ids — see ids.h. */
#include "common/ids.h"

#include <stdio.h>
#include <string.h>

static bool parse_hex_exact(const char *s, size_t digits, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || strlen(s) != digits)
		return false;
	for (size_t i = 0; i < digits; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = (v << 4) | d;
	}
	*out = v;
	return true;
}

vm_id_str vm_id_format(uint64_t id)
{
	vm_id_str r;
	snprintf(r.s, sizeof(r.s), "%010llx", (unsigned long long)(id & VM_ID_MAX));
	return r;
}

net_id_str net_id_format(uint64_t id)
{
	net_id_str r;
	snprintf(r.s, sizeof(r.s), "%06llx", (unsigned long long)(id & NET_ID_MAX));
	return r;
}

bool vm_id_parse(const char *s, uint64_t *id)
{
	return parse_hex_exact(s, VM_ID_STRLEN, id);
}

bool net_id_parse(const char *s, uint64_t *id)
{
	return parse_hex_exact(s, NET_ID_STRLEN, id);
}

void nic_mac_bytes(uint64_t nic_id, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x00;
	mac[2] = (uint8_t)(nic_id >> 24);
	mac[3] = (uint8_t)(nic_id >> 16);
	mac[4] = (uint8_t)(nic_id >> 8);
	mac[5] = (uint8_t)nic_id;
}

mac_str nic_mac_format(uint64_t nic_id)
{
	uint8_t m[6];
	mac_str r;

	nic_mac_bytes(nic_id, m);
	snprintf(r.s, sizeof(r.s), "%02x:%02x:%02x:%02x:%02x:%02x",
		 m[0], m[1], m[2], m[3], m[4], m[5]);
	return r;
}

bool nic_mac_parse(const char *s, uint64_t *nic_id)
{
	char hex[9];
	size_t n = 0;

	if (s == NULL || strlen(s) != MAC_STRLEN)
		return false;
	if (!(s[0] == '0' && s[1] == '2' && s[2] == ':' && s[3] == '0' &&
	      s[4] == '0' && s[5] == ':'))
		return false;
	for (size_t i = 6; i < MAC_STRLEN; i++) {
		if ((i - 6) % 3 == 2) {
			if (s[i] != ':')
				return false;
			continue;
		}
		char c = s[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		hex[n++] = c;
	}
	hex[n] = '\0';
	return parse_hex_exact(hex, 8, nic_id);
}

/* A NIC's links carry its whole MAC after their kind letter. */
static ifname_str ifname_of_nic(char kind, uint64_t nic_id)
{
	uint8_t m[6];
	ifname_str r;

	nic_mac_bytes(nic_id, m);
	snprintf(r.s, sizeof(r.s), "%c%02x%02x%02x%02x%02x%02x",
		 kind, m[0], m[1], m[2], m[3], m[4], m[5]);
	return r;
}

ifname_str ifname_tap(uint64_t nic_id)
{
	return ifname_of_nic(IFNAME_TAP, nic_id);
}

ifname_str ifname_ifb(uint64_t nic_id)
{
	return ifname_of_nic(IFNAME_IFB, nic_id);
}

ifname_str ifname_bridge(uint64_t net_id)
{
	ifname_str r;
	snprintf(r.s, sizeof(r.s), "b%06llx", (unsigned long long)(net_id & NET_ID_MAX));
	return r;
}

ifname_str ifname_vxlan(uint64_t net_id)
{
	ifname_str r;
	snprintf(r.s, sizeof(r.s), "x%06llx", (unsigned long long)(net_id & NET_ID_MAX));
	return r;
}

bool ifname_parse(const char *name, enum ifname_kind *kind, uint64_t *id)
{
	uint64_t v;

	if (name == NULL || name[0] == '\0')
		return false;
	switch (name[0]) {
	case 'v':
	case 'i':
		/* The tap (and the ifb that shapes what the NIC sends) carries
		 * the whole MAC so that `ip link` shows it; only hackcloud MACs
		 * (02:00 prefix) are ours. */
		if (!parse_hex_exact(name + 1, 12, &v) || (v >> 32) != 0x0200)
			return false;
		*kind = (enum ifname_kind)name[0];
		*id = v & NIC_ID_MAX;
		return true;
	case 'b':
	case 'x':
		if (!parse_hex_exact(name + 1, 6, &v))
			return false;
		*kind = (enum ifname_kind)name[0];
		*id = v;
		return true;
	default:
		return false;
	}
}

void eui64_from_mac(const uint8_t mac[6], uint8_t iid[8])
{
	iid[0] = mac[0] ^ 0x02; /* flip the universal/local bit */
	iid[1] = mac[1];
	iid[2] = mac[2];
	iid[3] = 0xff;
	iid[4] = 0xfe;
	iid[5] = mac[3];
	iid[6] = mac[4];
	iid[7] = mac[5];
}
