/* image/files — see files.h. */
#include "image/files.h"

#include "common/fsutil.h"
#include "common/proc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QEMU_IMG_TIMEOUT_MS 30000
#define QEMU_IMG_OUT_MAX (1 << 20)

int disk_info_parse(const char *json, struct disk_info *out, char **why)
{
	json_t *info = json_loads(json ? json : "", 0, NULL);
	json_t *vsize = json_object_get(info, "virtual-size");
	const char *fmt = json_string_value(json_object_get(info, "format"));
	int rc = -1;

	*why = NULL;
	if (!json_is_object(info)) {
		*why = strdup("qemu-img cannot read the disk file");
		goto out;
	}
	if (fmt == NULL || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2"))) {
		*why = str_printf("disk format '%s' is not raw or qcow2", fmt ? fmt : "?");
		goto out;
	}
	/* Either key means the image reads another file; an external data
	 * file (qcow2 "data-file") does so just as a backing file would. */
	json_t *data = json_object_get(json_object_get(info, "format-specific"), "data");
	if (json_object_get(info, "backing-filename") || json_object_get(info, "full-backing-filename") ||
	    json_object_get(info, "backing-filename-format") || json_object_get(data, "data-file")) {
		*why = strdup("disk images with a backing or external data file are refused");
		goto out;
	}
	if (json_is_true(json_object_get(data, "corrupt"))) {
		*why = strdup("the qcow2 image is marked corrupt");
		goto out;
	}
	if (!json_is_integer(vsize) || json_integer_value(vsize) <= 0) {
		*why = strdup("the disk has no size");
		goto out;
	}
	snprintf(out->format, sizeof(out->format), "%s", fmt);
	out->virtual_size = json_integer_value(vsize);
	rc = 0;
out:
	json_decref(info);
	return rc;
}

int disk_inspect(const char *path, struct disk_info *out, char **why)
{
	/* qemu-img info opens only the image itself, not its backing chain. */
	char *argv[] = { "qemu-img", "info", "--output=json", (char *)path, NULL };
	char *json = NULL;
	int rc = proc_run(argv, QEMU_IMG_TIMEOUT_MS, &json, QEMU_IMG_OUT_MAX, false);

	if (rc != 0) {
		free(json);
		*why = strdup(rc < 0 ? "cannot run qemu-img" : "qemu-img cannot read the disk file");
		return -1;
	}
	rc = disk_info_parse(json, out, why);
	free(json);
	return rc;
}

char *image_staging_dir(const char *state_dir, uint64_t id)
{
	return str_printf("%s/images/staging/%08llx", state_dir, (unsigned long long)(id & 0xffffffffu));
}

int image_files_place(const char *state_dir, const char *staging, const char *sha256)
{
	char *final = str_printf("%s/images/%s", state_dir, sha256);
	struct stat sb;
	int rc = 0;

	if (final == NULL)
		return -1;
	if (stat(final, &sb) == 0)
		rc = dir_remove_tree(staging); /* same content already stored */
	else if (rename(staging, final) < 0)
		rc = -1;
	int saved = errno;
	free(final);
	errno = saved;
	return rc;
}
