/*
 * audit — the audit trail (issue 15 §2, DESIGN §8): every mutating API
 * request (any method but GET and HEAD, that matched a route) is
 * recorded with who (the identified user, or none), from where (the
 * peer's address, or unix:UID), what (method, route pattern, the
 * resource named) and the outcome (status, "ok" or the error code).
 * Never a secret: no bodies (logins, passwords and codes travel only in
 * bodies), no headers, no tokens.
 *
 * Durability without a transaction per request: an entry is appended to
 * STATE_DIR/audit.journal (one write(2), no fsync) before the answer is
 * queued, so once a client can read an answer its entry has reached the
 * kernel and survives a kill -9 of hcd (not a power cut: the page cache
 * is not synced; the store's own commits are no more durable than
 * synchronous=NORMAL either).  The journal is moved into the store in
 * one transaction per batch — at AUDIT_BATCH entries, or a second after
 * the oldest — then emptied; at start, whatever it still holds is moved
 * first.  A batch that reached the store before a crash emptied the
 * journal is moved again harmlessly: rows are keyed by (host, seq).
 */
#ifndef HC_API_AUDIT_H
#define HC_API_AUDIT_H

#include "api/req.h"
#include "store/store.h"

struct audit *audit_new(struct api_ctx *ctx, char **err);
/* Moves what is pending into the store, then frees. */
void audit_free(struct audit *a);

/* An answer to a mutating request is about to be queued (http.c).
 * made: the ID a 201 answer names (the resource it created), or NULL. */
void audit_request(struct audit *a, const struct req *r, const char *route, int status,
		   const char *result, const char *made);
long long audit_timeout_ms(struct audit *a, long long now_ms);
void audit_run(struct audit *a, long long now_ms);

/* For GET /metrics (loop only). */
struct audit_stats {
	size_t pending;         /* in the journal, not yet in the store */
	uint64_t recorded;      /* moved into the store since start */
	uint64_t failures;      /* journal writes or store batches that failed */
};
void audit_stats(const struct audit *a, struct audit_stats *out);

/* The journal's line of an entry (JSON, newline-terminated; malloc'd)
 * and back (the host is the journal's owner; 0, or -1 for a line that
 * is not an entry).  Pure. */
char *audit_line(const struct audit_entry *e);
int audit_line_parse(const char *line, const char *host, struct audit_entry *out);

#endif
