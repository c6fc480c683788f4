/*
 * sockkill — end this network namespace's TCP connections to a peer's
 * port at once (the kernel's SOCK_DESTROY through sock_diag), whoever
 * holds them.
 *
 * Why: a live migration's source QEMU holds connections to the
 * destination (NBD for the disks, the RAM stream).  When the network
 * between them is cut, requests in flight on them wait for TCP to give up
 * (a quarter of an hour), and QEMU's main loop waits for them whenever it
 * drains its disks — at the end of the RAM migration, or when a mirror is
 * cancelled — so the guest and its monitor freeze.  Ending the
 * connections fails those requests at once (ECONNABORTED): the migration
 * is given up and the guest goes on.  Needs CAP_NET_ADMIN and
 * CONFIG_INET_DIAG_DESTROY (Debian's kernels have it).
 */
#ifndef HC_SOCKKILL_H
#define HC_SOCKKILL_H

/* Destroy every TCP socket whose peer is addr (an IPv4 or IPv6 literal)
 * port.  Returns how many, or -1 with a message. */
int tcp_kill_peer(const char *addr, int port, char **err);

#endif
