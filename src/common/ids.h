/*
 * ids — identifiers and the names derived from them (DESIGN §2).
 *
 * Invariants:
 *   - a VM ID is a 40-bit counter rendered as exactly 10 lowercase hex digits;
 *   - a NIC ID is a 32-bit counter; its MAC is 02:00: followed by the 8 hex
 *     digits of the ID (locally administered, unicast);
 *   - a network ID is a 24-bit counter (the VXLAN VNI), rendered as 6 hex;
 *   - interface names are a type letter that is not a hex digit followed by
 *     hex: tap "v" + 12 hex of the MAC, its ifb "i" + the same 12 hex, bridge
 *     "b" + 6 hex, vxlan "x" + 6 hex.
 *     All fit IFNAMSIZ (15 characters + NUL) and parse back unambiguously.
 * Everything here is pure and unit tested.
 */
#ifndef HC_IDS_H
#define HC_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_ID_MAX   ((UINT64_C(1) << 40) - 1)
#define NIC_ID_MAX  UINT64_C(0xffffffff)
#define NET_ID_MAX  UINT64_C(0xffffff)

#define VM_ID_STRLEN   10
#define NET_ID_STRLEN  6
#define MAC_STRLEN     17
#define IFNAME_MAXLEN  15

/* Buffers large enough for each rendering, NUL included. */
typedef struct { char s[VM_ID_STRLEN + 1]; } vm_id_str;
typedef struct { char s[NET_ID_STRLEN + 1]; } net_id_str;
typedef struct { char s[MAC_STRLEN + 1]; } mac_str;
typedef struct { char s[IFNAME_MAXLEN + 1]; } ifname_str;

enum ifname_kind { IFNAME_TAP = 'v', IFNAME_BRIDGE = 'b', IFNAME_VXLAN = 'x', IFNAME_IFB = 'i' };

vm_id_str  vm_id_format(uint64_t id);
net_id_str net_id_format(uint64_t id);
/* Parse exactly 10 (VM) / 6 (network) lowercase hex digits. */
bool vm_id_parse(const char *s, uint64_t *id);
bool net_id_parse(const char *s, uint64_t *id);

mac_str nic_mac_format(uint64_t nic_id);
void    nic_mac_bytes(uint64_t nic_id, uint8_t mac[6]);
/* Accepts a hackcloud MAC (02:00:xx:xx:xx:xx, any case); yields the NIC ID. */
bool    nic_mac_parse(const char *s, uint64_t *nic_id);

ifname_str ifname_tap(uint64_t nic_id);
/* The ifb that shapes what a NIC sends: "i" + the 12 hex of its MAC. */
ifname_str ifname_ifb(uint64_t nic_id);
ifname_str ifname_bridge(uint64_t net_id);
ifname_str ifname_vxlan(uint64_t net_id);
/* Parse an interface name we generated back into its kind and ID. */
bool ifname_parse(const char *name, enum ifname_kind *kind, uint64_t *id);

/* Modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A). */
void eui64_from_mac(const uint8_t mac[6], uint8_t iid[8]);

#endif
