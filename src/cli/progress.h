/*
 * progress — how hc shows a long transfer (an upload to hcd, or hcd's own
 * download of an image) on stderr, apart from the results on stdout.
 *
 * On a terminal: one line redrawn in place — label, a bar, the percentage
 * and the bytes — that progress_end finishes with a newline.  Anywhere
 * else (a log, a pipe): plain "LABEL: N%" lines, at most one every
 * PROGRESS_STEP percent, so the log of a long import stays short.  With no
 * known total a terminal shows the bytes so far and a log shows nothing
 * until the total is known.
 *
 * progress_render is pure (state in, text out) and unit tested;
 * progress_update only writes what it returns.
 */
#ifndef HC_CLI_PROGRESS_H
#define HC_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#define PROGRESS_STEP 5     /* percent between two lines off a terminal */
#define PROGRESS_BAR 30     /* columns of the bar on a terminal */

struct progress {
	const char *label;
	bool tty;
	int last_pct;           /* percent last shown, -1: none */
	long long last_done;    /* bytes last shown (no known total), -1: none */
	bool on_screen;         /* a terminal line awaits its newline */
};

void progress_init(struct progress *p, const char *label, bool tty);
/* What to write for `done` of `total` bytes (total < 0: not known) —
 * malloc'd — or NULL when nothing changed enough to show. */
char *progress_render(struct progress *p, long long done, long long total);
void progress_update(struct progress *p, FILE *out, long long done, long long total);
/* After the last update: finish a terminal's line. */
void progress_end(struct progress *p, FILE *out);

#endif
