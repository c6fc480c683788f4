/*
 * fuzz_diskinfo — the pure judgements that decide whether an uploaded or
 * downloaded disk may be booted (image/files.h): the format sniffed from
 * the file's first bytes (a member's bytes), and the JSON of
 * `qemu-img info -f FORMAT` and `qemu-img check` about that file (whose
 * strings are the member's too).
 *
 * The input is given to each: as the head of a disk, as info JSON with
 * each format named, and as check JSON with each exit status.  Promises:
 *   - the sniffed format is "qcow2" exactly for the QFI\xfb magic, else
 *     "raw" or a refusal with a reason;
 *   - accepted info: the format named, a positive size, and none of the
 *     members by which qemu-img names another file (a backing file at the
 *     top level, an external data file in the qcow2 data) — checked on
 *     the document as jansson reads it;
 *   - an accepted check had status 0 or 3 and no errors; every refusal
 *     has a reason and every acceptance none.
 */
#include "fuzz.h"

#include "image/files.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_info(const char *text, const char *format)
{
	struct disk_info info;
	char *why = NULL;

	memset(&info, 0, sizeof(info));
	if (disk_info_parse(text, format, &info, &why) != 0) {
		FUZZ_ASSERT(why != NULL, "refused without a reason");
		free(why);
		return;
	}
	FUZZ_ASSERT(why == NULL, "accepted with a reason");
	FUZZ_ASSERT(strcmp(info.format, format) == 0, "asked for %s, got '%s'", format, info.format);
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
}

static void check_check(const char *text, int status)
{
	char *why = NULL;
	int rc = disk_check_parse(text, status, &why);

	FUZZ_ASSERT((rc == 0) == (why == NULL), "rc %d with reason %s", rc, why ? why : "(none)");
	if (rc == 0)
		FUZZ_ASSERT(status == 0 || status == 3, "accepted a check that exited %d", status);
	free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size), *why = NULL;
	const char *fmt = disk_format_sniff(data, size, &why);

	if (size >= 4 && memcmp(data, "QFI\xfb", 4) == 0)
		FUZZ_ASSERT(fmt && strcmp(fmt, "qcow2") == 0 && why == NULL, "qcow2 magic read as %s",
			    fmt ? fmt : "nothing");
	else if (fmt)
		FUZZ_ASSERT(strcmp(fmt, "raw") == 0 && why == NULL, "sniffed '%s'", fmt);
	else
		FUZZ_ASSERT(why != NULL, "refused without a reason");
	free(why);
	check_info(text, "raw");
	check_info(text, "qcow2");
	for (int status = 0; status <= 3; status++)
		check_check(text, status);
	free(text);
	return 0;
}
