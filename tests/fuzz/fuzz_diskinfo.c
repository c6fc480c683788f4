/*
 * fuzz_diskinfo — the judgement of `qemu-img info --output=json`
 * (image/files.h disk_info_parse): the last word on whether an uploaded
 * or downloaded disk may be booted.  The JSON describes a file a member
 * wrote, so its strings are the member's.
 *
 * Accepted means: raw or qcow2, a positive size, and none of the members
 * by which qemu-img names another file (a backing file at the top level,
 * an external data file in the qcow2 data) — checked on the document as
 * jansson reads it, whatever the order or repetition of its members.
 */
#include "fuzz.h"

#include "image/files.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size), *why = NULL;
	struct disk_info info;

	memset(&info, 0, sizeof(info));
	if (disk_info_parse(text, &info, &why) != 0) {
		FUZZ_ASSERT(why != NULL, "refused without a reason");
		free(why);
		free(text);
		return 0;
	}
	FUZZ_ASSERT(why == NULL, "accepted with a reason");
	FUZZ_ASSERT(strcmp(info.format, "raw") == 0 || strcmp(info.format, "qcow2") == 0,
		    "format '%s'", info.format);
	FUZZ_ASSERT(info.virtual_size > 0, "size %lld", (long long)info.virtual_size);
	json_t *j = json_loads(text, 0, NULL);
	FUZZ_ASSERT(j != NULL, "accepted what does not parse");
	static const char *const backing[] = { "backing-filename", "full-backing-filename",
					       "backing-filename-format", NULL };
	for (const char *const *k = backing; *k; k++)
		FUZZ_ASSERT(json_object_get(j, *k) == NULL, "accepted a disk with '%s'", *k);
	json_t *fmt_data = json_object_get(json_object_get(j, "format-specific"), "data");
	FUZZ_ASSERT(json_object_get(fmt_data, "data-file") == NULL,
		    "accepted a disk with an external data file");
	json_decref(j);
	free(text);
	return 0;
}
