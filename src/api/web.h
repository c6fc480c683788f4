/*
 * web — the dashboard's static files (web/ in the source tree, installed
 * as share/hackcloud/web), served by hcd itself on its listeners:
 *
 *   GET /                 index.html
 *   GET /ui/PATH          ui/PATH: the page's scripts (ES modules) and styles
 *   GET /ui/xterm/PATH    node_modules/@xterm/xterm/PATH: xterm.js, from the
 *                         npm registry (web/package.json, scripts/deps.sh)
 *
 * Invariants:
 *   - only regular files beneath the root are ever opened: every segment
 *     of PATH is a plain name ([A-Za-z0-9_] then [A-Za-z0-9._-], so no
 *     "..", no hidden file, no percent sign), and each directory and the
 *     file are opened one at a time with O_NOFOLLOW, so no symlink is
 *     followed anywhere below the root;
 *   - only known file types are served, with their Content-Type; others
 *     are 404 like files that do not exist;
 *   - nothing here needs a caller: the page holds no data, the API does.
 * The headers every page answer carries (the Content-Security-Policy, …)
 * are the HTTP layer's (http.c, ROUTE_PAGE).
 */
#ifndef HC_API_WEB_H
#define HC_API_WEB_H

#include "api/api.h"

#include <stdbool.h>

/* The root: the web_root setting, else the data directory's web/
 * (common/datadir.h); "none" serves no dashboard.  A root that cannot be
 * opened is logged once and answered 404; NULL only without memory. */
struct web *web_open(const struct config *cfg);
void web_close(struct web *w);

/* A relative path made only of plain names (see above). */
bool web_path_ok(const char *rel);
/* The Content-Type of a file name, NULL for a type that is not served. */
const char *web_content_type(const char *name);

#endif
