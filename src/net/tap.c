/* tap — persistent taps for QEMU; see link.h. */
#include "net/link.h"

#include "common/fsutil.h"
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netlink/route/link.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int tap_open(const char *ifname, char **err)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		*err = str_printf("/dev/net/tun: %s", strerror(errno));
		return -1;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		*err = str_printf("tap %s: %s", ifname, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Create the tap if needed.  QEMU re-attaches to it by name later.  No
 * fork may copy the descriptor it is created with: launches run on
 * several workers, and a copy in another VM's QEMU being spawned would
 * keep the tap attached a moment after we close ours, so the launch that
 * opens it next would get EBUSY (common/proc.h). */
static int tun_create_persistent(const char *ifname, long owner, char **err)
{
	int fd, rc = -1;

	proc_forks_pause();
	if ((fd = tap_open(ifname, err)) < 0)
		goto out;
	if (ioctl(fd, TUNSETPERSIST, 1) < 0 ||
	    (owner >= 0 && ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0))
		*err = str_printf("tap %s: %s", ifname, strerror(errno));
	else
		rc = 0;
	close(fd);
out:
	proc_forks_resume();
	return rc;
}

int tap_ensure(const char *ifname, const char *bridge, long owner, char **err)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *tap = NULL, *br = NULL, *change = NULL;
	int rc = -1, nerr;

	*err = NULL;
	if (sk == NULL || nl_connect(sk, NETLINK_ROUTE) < 0) {
		*err = strdup("netlink: cannot connect");
		goto out;
	}
	if (rtnl_link_get_kernel(sk, 0, ifname, &tap) < 0) {
		if (tun_create_persistent(ifname, owner, err) < 0)
			goto out;
		if ((nerr = rtnl_link_get_kernel(sk, 0, ifname, &tap)) < 0) {
			*err = str_printf("tap %s: %s", ifname, nl_geterror(nerr));
			goto out;
		}
	}
	if ((nerr = rtnl_link_get_kernel(sk, 0, bridge, &br)) < 0) {
		*err = str_printf("bridge %s: %s", bridge, nl_geterror(nerr));
		goto out;
	}
	if (rtnl_link_get_master(tap) == rtnl_link_get_ifindex(br) &&
	    (rtnl_link_get_flags(tap) & IFF_UP)) {
		rc = 0;
		goto out;
	}
	change = rtnl_link_alloc();
	rtnl_link_set_master(change, rtnl_link_get_ifindex(br));
	rtnl_link_set_flags(change, IFF_UP);
	if ((nerr = rtnl_link_change(sk, tap, change, 0)) < 0) {
		*err = str_printf("tap %s → %s: %s", ifname, bridge, nl_geterror(nerr));
		goto out;
	}
	rc = 0;
out:
	rtnl_link_put(change);
	rtnl_link_put(tap);
	rtnl_link_put(br);
	nl_socket_free(sk);
	return rc;
}
