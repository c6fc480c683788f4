/* hotplug — see hotplug.h. */
#include "vm/hotplug.h"

#include "common/ids.h"
#include "common/log.h"
#include "net/link.h"
#include "vm/qmp.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NICS 64

/* The NIC IDs of the virtio-net devices QEMU has now ("nic-<8 hex>"). */
static int qemu_nic_ids(const struct vm_paths *p, uint64_t *ids, size_t max, size_t *n)
{
	json_t *list = NULL, *item;
	json_t *args = json_pack("{s:s}", "path", "/machine/peripheral");
	char *err = NULL;
	size_t i;
	int rc = qmp_command(p->qmp, "qom-list", args, &list, &err);

	json_decref(args);
	free(err);
	*n = 0;
	if (rc < 0)
		return -1;
	json_array_foreach(list, i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));
		unsigned long long id;
		if (name && sscanf(name, "nic-%8llx", &id) == 1 && *n < max)
			ids[(*n)++] = id;
	}
	json_decref(list);
	return 0;
}

/* The tap and a netdev on it.  A tap that is busy already belongs to this
 * QEMU: an earlier pass (or an hcd killed mid-way) added the netdev but
 * not the device. */
static int netdev_plug(const struct vm_paths *p, const struct nic *nic, const char *netdev,
		       char **err)
{
	ifname_str tap = ifname_tap(nic->id);
	json_t *fargs = NULL, *nargs = NULL;
	int fd, rc = -1;

	if (tap_ensure(tap.s, ifname_bridge(nic->network).s, -1, err) < 0)
		return -1;
	/* Busy: attached to this QEMU already (above); go on to the device. */
	if ((fd = tap_open(tap.s, err)) < 0) {
		if (*err == NULL || strstr(*err, "busy") == NULL)
			return -1;
		free(*err);
		*err = NULL;
		return 0;
	}
	fargs = json_pack("{s:s}", "fdname", netdev);
	nargs = json_pack("{s:s, s:s, s:s, s:b}", "type", "tap", "id", netdev, "fd", netdev,
			  "vhost", 0);
	if (qmp_command_fd(p->qmp, "getfd", fargs, fd, NULL, err) < 0)
		goto out;
	if (qmp_command(p->qmp, "netdev_add", nargs, NULL, err) < 0) {
		if (strstr(*err, "uplicate") == NULL)
			goto out;
		free(*err);
		*err = NULL;
	}
	rc = 0;
out:
	close(fd);
	json_decref(fargs);
	json_decref(nargs);
	return rc;
}

static int nic_plug(const struct vm_paths *p, const struct nic *nic, bool slots, char **err)
{
	char netdev[16], dev[16], addr[12];
	int rc;

	snprintf(netdev, sizeof(netdev), QEMU_NETDEV_FMT, (unsigned long long)nic->id);
	snprintf(dev, sizeof(dev), QEMU_NICDEV_FMT, (unsigned long long)nic->id);
	if (netdev_plug(p, nic, netdev, err) < 0)
		return -1;
	json_t *dargs = json_pack("{s:s, s:s, s:s, s:s}", "driver", "virtio-net-pci", "id", dev,
				  "netdev", netdev, "mac", nic_mac_format(nic->id).s);
	/* The store's slot, not the first free one: a QEMU launched from the
	 * store (a migration's destination) puts the NIC there too.  A QEMU
	 * started without slots has its NICs where it chose, maybe in one
	 * of these: it chooses again. */
	snprintf(addr, sizeof(addr), "0x%x", nic->pci_slot);
	if (dargs && slots)
		json_object_set_new(dargs, "addr", json_string(addr));
	rc = qmp_command(p->qmp, "device_add", dargs, NULL, err);
	json_decref(dargs);
	return rc;
}

int hotplug_nics(const struct vm *vm, const struct vm_paths *p)
{
	uint64_t have[MAX_NICS];
	size_t n_have;
	char *err = NULL;
	int rc = 0;

	if (qemu_nic_ids(p, have, MAX_NICS, &n_have) < 0)
		return -1;
	for (size_t i = 0; i < vm->n_nics; i++) {
		const struct nic *nic = &vm->nics[i];
		bool present = false;
		for (size_t j = 0; j < n_have && !present; j++)
			present = have[j] == nic->id;
		if (present)
			continue;
		ifname_str tap = ifname_tap(nic->id);
		if (nic_plug(p, nic, vm->run_nic_slots, &err) < 0) {
			log_warn("vm %s: hot-plug of %s: %s", vm->name, tap.s, err ? err : "failed");
			rc = -1;
		} else {
			log_info("vm %s: hot-plugged %s", vm->name, tap.s);
		}
		free(err);
		err = NULL;
	}
	for (size_t j = 0; j < n_have; j++) {
		bool wanted = false;
		for (size_t i = 0; i < vm->n_nics && !wanted; i++)
			wanted = vm->nics[i].id == have[j];
		if (wanted)
			continue;
		/* The guest may take its time: look again on the next pass. */
		rc = -1;
		char dev[16];
		snprintf(dev, sizeof(dev), QEMU_NICDEV_FMT, (unsigned long long)have[j]);
		json_t *args = json_pack("{s:s}", "id", dev);
		if (qmp_command(p->qmp, "device_del", args, NULL, &err) == 0)
			log_info("vm %s: unplugging %s", vm->name, dev);
		free(err);
		err = NULL;
		json_decref(args);
	}
	return rc;
}

void hotplug_netdev_release(const struct vm_paths *p, const char *tap)
{
	enum ifname_kind kind;
	uint64_t id;
	char netdev[16], *err = NULL;

	if (!ifname_parse(tap, &kind, &id))
		return;
	snprintf(netdev, sizeof(netdev), QEMU_NETDEV_FMT, (unsigned long long)id);
	json_t *args = json_pack("{s:s}", "id", netdev);
	qmp_command(p->qmp, "netdev_del", args, NULL, &err);
	json_decref(args);
	free(err);
}
