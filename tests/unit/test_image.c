/*
 * test_image — image files (src/image/files.h, src/common/sha256.h): what
 * `qemu-img info` output makes a disk acceptable (raw and qcow2 only, never
 * a backing or external data file — a qcow2 backed by /etc/shadow), the
 * SHA-256 of a stream hashed in pieces and resumed from a partial file
 * (what an interrupted import does), and content-addressed placement.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/fsutil.h"
#include "common/sha256.h"
#include "image/files.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- disk_info_parse ---------------------------------------------------- */

/* Shaped like qemu-img 7.2's output (trimmed). */
static const char QCOW2[] =
	"{\"virtual-size\": 1073741824, \"filename\": \"disk\", \"cluster-size\": 65536,"
	" \"format\": \"qcow2\", \"actual-size\": 200704, \"format-specific\": {\"type\": \"qcow2\","
	" \"data\": {\"compat\": \"1.1\", \"refcount-bits\": 16, \"corrupt\": false}},"
	" \"dirty-flag\": false}";
static const char RAW[] =
	"{\"virtual-size\": 1048576, \"filename\": \"disk\", \"format\": \"raw\","
	" \"actual-size\": 0, \"dirty-flag\": false}";
static const char BACKED_BY_SHADOW[] =
	"{\"backing-filename-format\": \"raw\", \"virtual-size\": 1048576, \"filename\": \"disk\","
	" \"format\": \"qcow2\", \"format-specific\": {\"type\": \"qcow2\", \"data\": {\"compat\": \"1.1\"}},"
	" \"full-backing-filename\": \"/etc/shadow\", \"backing-filename\": \"/etc/shadow\"}";
static const char BACKED_NAME_ONLY[] =
	"{\"virtual-size\": 1048576, \"format\": \"qcow2\", \"backing-filename\": \"../../x\"}";
static const char DATA_FILE[] =
	"{\"virtual-size\": 1048576, \"format\": \"qcow2\", \"format-specific\": {\"type\": \"qcow2\","
	" \"data\": {\"compat\": \"1.1\", \"data-file\": \"/etc/shadow\", \"data-file-raw\": false}}}";
static const char CORRUPT[] =
	"{\"virtual-size\": 1048576, \"format\": \"qcow2\", \"format-specific\": {\"type\": \"qcow2\","
	" \"data\": {\"corrupt\": true}}}";
static const char VMDK[] = "{\"virtual-size\": 1048576, \"format\": \"vmdk\"}";

static void accepts_qcow2_and_raw(void **state)
{
	(void)state;
	struct disk_info info;
	char *why = NULL;

	assert_int_equal(disk_info_parse(QCOW2, &info, &why), 0);
	assert_null(why);
	assert_string_equal(info.format, "qcow2");
	assert_int_equal(info.virtual_size, 1073741824);

	assert_int_equal(disk_info_parse(RAW, &info, &why), 0);
	assert_string_equal(info.format, "raw");
	assert_int_equal(info.virtual_size, 1048576);
}

static void expect_refused(const char *json, const char *reason_part)
{
	struct disk_info info;
	char *why = NULL;

	assert_int_equal(disk_info_parse(json, &info, &why), -1);
	assert_non_null(why);
	if (strstr(why, reason_part) == NULL)
		fail_msg("reason '%s' does not mention '%s'", why, reason_part);
	free(why);
}

static void refuses_backing_and_data_files(void **state)
{
	(void)state;
	expect_refused(BACKED_BY_SHADOW, "backing");
	expect_refused(BACKED_NAME_ONLY, "backing");
	expect_refused(DATA_FILE, "data file");
	expect_refused(CORRUPT, "corrupt");
}

static void refuses_other_formats_and_garbage(void **state)
{
	(void)state;
	expect_refused(VMDK, "'vmdk' is not raw or qcow2");
	expect_refused("{\"virtual-size\": 1048576}", "'?'");
	expect_refused("", "cannot read");
	expect_refused(NULL, "cannot read");
	expect_refused("not json", "cannot read");
	expect_refused("[1, 2]", "cannot read");
	expect_refused("{\"format\": \"raw\"}", "no size");
	expect_refused("{\"format\": \"raw\", \"virtual-size\": 0}", "no size");
	expect_refused("{\"format\": \"raw\", \"virtual-size\": \"big\"}", "no size");
}

/* ---- SHA-256 streaming -------------------------------------------------- */

static char *tmpdir(void)
{
	char *t = strdup("/tmp/hc-test-image.XXXXXX");
	assert_non_null(mkdtemp(t));
	return t;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void sha256_known_vectors(void **state)
{
	(void)state;
	char *dir = tmpdir(), *path = str_printf("%s/abc", dir), hex[65];
	long long size = -1;

	write_file(path, "abc", 3);
	assert_int_equal(sha256_file(path, hex, &size), 0);
	assert_int_equal(size, 3);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	write_file(path, "", 0);
	assert_int_equal(sha256_file(path, hex, &size), 0);
	assert_int_equal(size, 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	unlink(path);
	assert_int_equal(sha256_file(path, hex, &size), -1);
	rmdir(dir);
	free(path);
	free(dir);
}

/*
 * What an import does: bytes arrive in pieces of any size and are hashed
 * as they are written; after a restart the file's first part is hashed
 * again from disk and the rest continues from the network.  Every way ends
 * with the digest of the whole.
 */
static void sha256_stream_resumed_equals_whole(void **state)
{
	(void)state;
	enum { N = 300000 };
	unsigned char *data = malloc(N);
	char *dir = tmpdir(), *path = str_printf("%s/partial", dir);
	char whole[65], pieces[65], resumed[65];
	long long size;
	crypto_hash_sha256_state st;

	for (size_t i = 0; i < N; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	write_file(path, data, N);
	assert_int_equal(sha256_file(path, whole, &size), 0);
	assert_int_equal(size, N);

	/* pieces of odd sizes, as curl hands them over */
	crypto_hash_sha256_init(&st);
	for (size_t off = 0, step = 1; off < N; off += step, step = step * 3 % 70001 + 1)
		crypto_hash_sha256_update(&st, data + off, off + step > N ? N - off : step);
	sha256_final_hex(&st, pieces);
	assert_string_equal(pieces, whole);

	/* resumed: the first 123457 bytes from the partial file, then the rest */
	const long long cut = 123457;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	crypto_hash_sha256_init(&st);
	assert_int_equal(sha256_update_fd(&st, fd, cut), cut);
	crypto_hash_sha256_update(&st, data + cut, N - cut);
	sha256_final_hex(&st, resumed);
	assert_string_equal(resumed, whole);

	/* asking for more than the file holds stops at its end */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	crypto_hash_sha256_init(&st);
	assert_int_equal(sha256_update_fd(&st, fd, N + 1000), N);
	sha256_final_hex(&st, resumed);
	assert_string_equal(resumed, whole);
	close(fd);

	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
	free(data);
}

/* ---- placement ---------------------------------------------------------- */

static void placement_is_content_addressed(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char *images = str_printf("%s/images", dir);
	char *st1 = image_staging_dir(dir, 1), *st2 = image_staging_dir(dir, 0x2a);
	const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char *final = str_printf("%s/%s", images, sha), *disk = str_printf("%s/disk", final);
	char *f1 = str_printf("%s/disk", st1), *f2 = str_printf("%s/disk", st2);
	struct stat sb;

	assert_string_equal(st2 + strlen(dir), "/images/staging/0000002a");
	assert_int_equal(mkdir_p(st1, 0700), 0);
	assert_int_equal(mkdir_p(st2, 0700), 0);
	write_file(f1, "abc", 3);
	write_file(f2, "abc", 3);
	assert_int_equal(image_files_place(dir, st1, sha), 0);
	assert_int_equal(stat(disk, &sb), 0);
	assert_int_equal(stat(st1, &sb), -1);
	/* The same content again: the stored copy stays, the new one goes. */
	assert_int_equal(image_files_place(dir, st2, sha), 0);
	assert_int_equal(stat(st2, &sb), -1);
	assert_int_equal(stat(disk, &sb), 0);
	assert_int_equal(dir_remove_tree(dir), 0);
	free(images);
	free(st1);
	free(st2);
	free(final);
	free(disk);
	free(f1);
	free(f2);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_qcow2_and_raw),
		cmocka_unit_test(refuses_backing_and_data_files),
		cmocka_unit_test(refuses_other_formats_and_garbage),
		cmocka_unit_test(sha256_known_vectors),
		cmocka_unit_test(sha256_stream_resumed_equals_whole),
		cmocka_unit_test(placement_is_content_addressed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
