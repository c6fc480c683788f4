/*
 * info.c — `hc info`: what the daemon says about itself.  Every member
 * becomes a "key: value" line, so a new member shows up without a change
 * here.
 */
#include "cli/cli.h"

#include <stdlib.h>

int cmd_info(struct hc *h, const struct args *a)
{
	struct column *cols;
	json_t *info, *v;
	const char *key;
	size_t n = 0;

	if (api_call(h, "GET", "/v1/info", NULL, &info, NULL) < 0)
		return -1;
	if (h->json) {
		print_json(info);
		json_decref(info);
		return 0;
	}
	cols = calloc(json_object_size(info) + 1, sizeof(*cols));
	if (cols == NULL) {
		json_decref(info);
		return hc_fail(h, "out of memory");
	}
	json_object_foreach(info, key, v)
		cols[n++] = (struct column){ .title = key, .key = key };
	print_fields(info, cols);
	free(cols);
	json_decref(info);
	return 0;
}
