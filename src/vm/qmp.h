/*
 * qmp — a small synchronous QMP client: connect to a VM's monitor socket,
 * negotiate capabilities, run one command, return its "return" value.
 * Every call is bounded by a timeout so a wedged QEMU cannot stall hcd.
 */
#ifndef HC_QMP_H
#define HC_QMP_H

#include <jansson.h>

#define QMP_TIMEOUT_MS 2000

/*
 * Run command (with optional arguments, borrowed) on the QMP socket at
 * path.  On success returns 0 and, when reply is not NULL, a new reference
 * to the "return" member.  On failure returns -1 and a malloc'd message.
 */
int qmp_command(const char *path, const char *command, json_t *arguments,
		json_t **reply, char **err);

/* The same, passing a file descriptor along (SCM_RIGHTS), as "getfd" and
 * "add-fd" expect. */
int qmp_command_fd(const char *path, const char *command, json_t *arguments, int fd,
		   json_t **reply, char **err);

/* qmp_command with its own bound: a QEMU that is still starting answers
 * only once its machine is set up. */
int qmp_command_within(const char *path, int timeout_ms, const char *command,
		       json_t *arguments, json_t **reply, char **err);

/* query-status → "running", "paused", … (malloc'd) or NULL. */
char *qmp_query_status(const char *path);

#endif
