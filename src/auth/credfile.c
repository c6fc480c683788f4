/* credfile — see credfile.h. */
#include "auth/credfile.h"

#include "common/fsutil.h"

#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Far more than any number of tokens one person keeps. */
#define CREDFILE_MAX (1024 * 1024)

char *credfile_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	/* The XDG spec says relative values are to be ignored. */
	if (xdg && xdg[0] == '/')
		return str_printf("%s/hackcloud/credentials", xdg);
	if (home == NULL || home[0] != '/') {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (home == NULL)
		return NULL;
	return str_printf("%s/.config/hackcloud/credentials", home);
}

/* The file's object: a new reference, an empty object when the file does
 * not exist, NULL (errno set) when unreadable or not an object of strings. */
static json_t *creds_read(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *obj, *v;
	const char *k;

	if (file_read(path, CREDFILE_MAX + 1, &buf, &len) < 0)
		return errno == ENOENT ? json_object() : NULL;
	obj = len > CREDFILE_MAX ? NULL : json_loadb(buf, len, 0, NULL);
	sodium_memzero(buf, len);
	free(buf);
	if (!json_is_object(obj))
		goto invalid;
	json_object_foreach(obj, k, v) {
		if (!json_is_string(v))
			goto invalid;
	}
	return obj;
invalid:
	json_decref(obj);
	errno = EINVAL;
	return NULL;
}

/* Write obj to path: directory 0700, file 0600, replaced whole. */
static int creds_write(const char *path, json_t *obj)
{
	char *dir = strdup(path), *slash, *text;
	int rc = -1, saved;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0700) < 0) {
			free(dir);
			return -1;
		}
	}
	free(dir);
	text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = file_write_atomic(path, text, strlen(text), 0600);
	saved = errno;
	sodium_memzero(text, strlen(text));
	free(text);
	errno = saved;
	return rc;
}

int credfile_load(const char *path, const char *url, char **token)
{
	json_t *obj = creds_read(path);
	const char *t;

	*token = NULL;
	if (obj == NULL)
		return -1;
	t = json_string_value(json_object_get(obj, url));
	if (t != NULL && (*token = strdup(t)) == NULL) {
		json_decref(obj);
		return -1;
	}
	json_decref(obj);
	return *token ? 0 : 1;
}

int credfile_store(const char *path, const char *url, const char *token)
{
	json_t *obj = creds_read(path);
	int rc;

	if (obj == NULL)
		return -1;
	if (json_object_set_new(obj, url, json_string(token)) < 0) {
		json_decref(obj);
		errno = EINVAL;         /* url or token not UTF-8, or no memory */
		return -1;
	}
	rc = creds_write(path, obj);
	json_decref(obj);
	return rc;
}

int credfile_remove(const char *path, const char *url)
{
	json_t *obj = creds_read(path);
	int rc = 0;

	if (obj == NULL)
		return -1;
	if (json_object_get(obj, url) != NULL) {
		json_object_del(obj, url);
		rc = creds_write(path, obj);
	}
	json_decref(obj);
	return rc;
}
