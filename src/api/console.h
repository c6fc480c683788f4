/*
 * console — the sessions `hc vm console` leaves open after its request:
 * what the HTTP layer must end (consoles outlive the request that made
 * them, so revocations and shutdown reach them here).
 */
#ifndef HC_API_CONSOLE_H
#define HC_API_CONSOLE_H

#include "api/api.h"

#include <stddef.h>

/* End consoles whose token was revoked or expired, or whose user was
 * disabled or deleted since they opened; reap finished ones.  On the
 * loop, every second or so. */
void console_check(struct api_ctx *ctx);
/* End every console and wait for their threads. */
void console_stop_all(void);
/* Consoles open (including ones ending). */
size_t console_count(void);

#endif
