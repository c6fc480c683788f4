/*
 * identity — who is calling (DESIGN §8), for the HTTP layer: a bearer
 * token on any listener; otherwise, on the unix socket, the peer's
 * credentials (root is the admin "root"; a local account inside the
 * `local_users` uid range is the hackcloud user of the same name).  Users
 * with a token or a local account are rate limited per user.
 *
 * api_auth is the state shared by identification and the login and user
 * handlers (auth.h): the password file, the failed-login throttle, the
 * rate-limit buckets.
 */
#ifndef HC_API_IDENTITY_H
#define HC_API_IDENTITY_H

#include "api/req.h"

#include <stdbool.h>
#include <sys/types.h>

/* The far end of a connection, found once when it opens. */
struct peer {
	bool is_unix;
	bool have_cred;         /* unix: SO_PEERCRED answered */
	uid_t uid;
	char source[64];        /* an address, or "unix:UID" (logs, token sources) */
	char key[48];           /* per-peer limits: addrkey, "unix:UID", "" for root */
};

struct api_auth *api_auth_new(struct api_ctx *ctx, char **err);
void api_auth_free(struct api_auth *a);

/* Establish the caller of r.  False with the error answer set (401, 403,
 * 429).  websocket: r opens a WebSocket (route.h), whose token may be
 * the subprotocol "bearer.TOKEN" when there is no Authorization. */
bool api_identify(struct req *r, const struct peer *p, bool websocket);

/* The request carries the metrics token (metrics_token_file) as its
 * bearer: it may read /metrics (ROUTE_METRICS), and nothing else.
 * Compared in constant time. */
bool api_metrics_token(struct req *r);

/* Whether a session opened by user with token_id (0: peer credentials)
 * would still be let in now: the token is live, the user enabled.  For
 * sessions that outlive their request (consoles). */
bool api_session_valid(struct api_ctx *ctx, uint64_t user, uint64_t token_id);

#endif
