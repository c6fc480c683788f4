/* web — see web.h. */
#include "api/web.h"

#include "api/handlers.h"
#include "common/datadir.h"
#include "common/fsutil.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_SEGMENT_MAX 100
#define WEB_PATH_MAX 512
/* Where npm puts xterm.js below the root (web/package.json). */
#define XTERM_DIR "node_modules/@xterm/xterm/"

struct web {
	int root;       /* the root directory, -1: none */
};

struct web *web_open(const struct config *cfg)
{
	struct web *w = malloc(sizeof(*w));
	char *path;

	if (w == NULL)
		return NULL;
	w->root = -1;
	if (cfg->web_root && strcmp(cfg->web_root, "none") == 0)
		return w;
	path = cfg->web_root && cfg->web_root[0] ? strdup(cfg->web_root) : datadir_path("web");
	if (path == NULL) {
		free(w);
		return NULL;
	}
	w->root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->root < 0)
		log_warn("web: %s: %s; no dashboard", path, strerror(errno));
	else
		log_info("web: the dashboard's files are in %s", path);
	free(path);
	return w;
}

void web_close(struct web *w)
{
	if (w == NULL)
		return;
	if (w->root >= 0)
		close(w->root);
	free(w);
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || (!first && (c == '.' || c == '-'));
}

bool web_path_ok(const char *rel)
{
	size_t seg = 0, total = 0;

	if (rel == NULL || *rel == '\0')
		return false;
	for (const char *p = rel; *p; p++, total++) {
		if (*p == '/') {
			if (seg == 0)
				return false;   /* "//", or a leading "/" */
			seg = 0;
			continue;
		}
		if (!name_char(*p, seg == 0) || ++seg > WEB_SEGMENT_MAX)
			return false;
	}
	return seg > 0 && total <= WEB_PATH_MAX;
}

const char *web_content_type(const char *name)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
	};
	const char *dot = strrchr(name, '.');

	if (dot == NULL || strchr(dot, '/'))
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* Open rel (web_path_ok) below root one segment at a time, following no
 * symlink; -1 with errno for anything but a regular file. */
static int open_beneath(int root, const char *rel, struct stat *st)
{
	char seg[WEB_SEGMENT_MAX + 1];
	int dir = root, fd;

	for (;;) {
		const char *slash = strchr(rel, '/');
		size_t n = slash ? (size_t)(slash - rel) : strlen(rel);
		memcpy(seg, rel, n);
		seg[n] = '\0';
		/* O_NONBLOCK: opening a FIFO someone left there must not hang. */
		fd = openat(dir, seg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
				      (slash ? O_DIRECTORY : 0));
		if (dir != root)
			close(dir);
		if (fd < 0)
			return -1;
		if (slash == NULL)
			break;
		dir = fd;
		rel = slash + 1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

static int serve(struct req *r, const char *rel)
{
	const struct web *w = r->api->web;
	const char *type = web_content_type(rel);
	char etag[80];
	struct stat st;
	int fd;

	if (w == NULL || w->root < 0)
		return req_error(r, 404, "not_found", "this hcd serves no dashboard");
	if (type == NULL || (fd = open_beneath(w->root, rel, &st)) < 0)
		return req_error(r, 404, "not_found", "no such file");
	/* Revalidated at every load (no-cache), answered 304 while unchanged. */
	snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 ".%lx\"",
		 (uint64_t)st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
		 (unsigned long)st.st_mtim.tv_nsec);
	const char *inm = req_header(r, "If-None-Match");
	if (inm && strcmp(inm, etag) == 0) {
		close(fd);
		req_bytes(r, 304, type, NULL, 0);
	} else {
		req_file(r, 200, type, fd, (uint64_t)st.st_size);
	}
	req_header_add(r, "ETag", etag);
	req_header_add(r, "Cache-Control", "no-cache");
	return 0;
}

int h_web_index(struct req *r)
{
	return serve(r, "index.html");
}

int h_web_file(struct req *r)
{
	const char *rel = r->params[0];
	char *path;
	int rc;

	if (!web_path_ok(rel))
		return req_error(r, 404, "not_found", "no such file");
	if (strncmp(rel, "xterm/", 6) == 0)
		path = str_printf(XTERM_DIR "%s", rel + 6);
	else
		path = str_printf("ui/%s", rel);
	if (path == NULL)
		return req_error(r, 500, "internal", "out of memory");
	rc = serve(r, path);
	free(path);
	return rc;
}
