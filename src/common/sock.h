/*
 * sock — connecting to the unix sockets of the processes we run (QEMU's
 * QMP monitor and serial console).  QEMU listens with a backlog of one and
 * serves one client at a time, so a blocking connect() to a busy socket
 * can sleep forever; these connects never block beyond their deadline.
 */
#ifndef HC_SOCK_H
#define HC_SOCK_H

/*
 * A non-blocking, close-on-exec stream socket connected to path.  While
 * the listener's queue is full, retries until deadline_ms (CLOCK_MONOTONIC
 * milliseconds, see now_ms(); 0 = try once).  -1 with errno set on
 * failure (EAGAIN: still busy at the deadline).
 */
int unix_connect(const char *path, long long deadline_ms);

/*
 * A close-on-exec stream socket bound to path (a stale socket file there
 * is replaced) and listening with the given backlog, the file mode 0600.
 * hcd binds the sockets of the processes it runs unprivileged and passes
 * them in.  -1 with errno set on failure.
 */
int unix_listen(const char *path, int backlog);

#endif
