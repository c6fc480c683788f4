/*
 * test_image — image files (src/image/files.h, src/common/sha256.h): what
 * `qemu-img info` output makes a disk acceptable (raw and qcow2 only, never
 * a backing or external data file — a qcow2 backed by /etc/shadow), the
 * format told by a file's first bytes, the SHA-256 of a stream hashed in
 * pieces and resumed from a partial file (what an interrupted import
 * does), content-addressed placement that never trusts a directory it did
 * not verify, qemu-img confined (unprivileged, limited, fed one
 * descriptor), and which addresses a member's URL import may reach
 * (src/image/addrguard.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/fsutil.h"
#include "common/proc.h"
#include "common/sha256.h"
#include "image/addrguard.h"
#include "image/files.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>   /* an independent SHA-256 to check ours against */
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

	assert_int_equal(disk_info_parse(QCOW2, "qcow2", &info, &why), 0);
	assert_null(why);
	assert_string_equal(info.format, "qcow2");
	assert_int_equal(info.virtual_size, 1073741824);

	assert_int_equal(disk_info_parse(RAW, "raw", &info, &why), 0);
	assert_string_equal(info.format, "raw");
	assert_int_equal(info.virtual_size, 1048576);
}

static void expect_refused(const char *json, const char *reason_part)
{
	struct disk_info info;
	char *why = NULL;

	assert_int_equal(disk_info_parse(json, NULL, &info, &why), -1);
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

/* We told qemu-img the format: an answer about another one is refused. */
static void refuses_an_answer_about_another_format(void **state)
{
	(void)state;
	struct disk_info info;
	char *why = NULL;

	assert_int_equal(disk_info_parse(QCOW2, "raw", &info, &why), -1);
	assert_non_null(strstr(why, "as qcow2, not raw"));
	free(why);
}

/* ---- the format from the first bytes ------------------------------------ */

static void sniff(const void *head, size_t n, const char *want, const char *why_part)
{
	char *why = NULL;
	const char *got = disk_format_sniff(head, n, &why);

	if (want) {
		assert_non_null(got);
		assert_string_equal(got, want);
		assert_null(why);
	} else {
		assert_null(got);
		assert_non_null(why);
		if (strstr(why, why_part) == NULL)
			fail_msg("reason '%s' does not mention '%s'", why, why_part);
		free(why);
	}
}

static void format_from_the_first_bytes(void **state)
{
	(void)state;
	unsigned char b[512] = { 0 };

	sniff("QFI\xfb\0\0\0\3", 8, "qcow2", NULL);
	sniff(b, sizeof(b), "raw", NULL);               /* zeros: a raw disk */
	sniff("", 0, "raw", NULL);                      /* empty: raw (then "no size") */
	sniff("QFI", 3, "raw", NULL);                   /* too short for the magic */
	/* an MBR boot sector is raw */
	b[510] = 0x55, b[511] = 0xaa;
	sniff(b, sizeof(b), "raw", NULL);
	sniff("KDMV\1\0\0\0", 8, NULL, "VMDK");
	sniff("# Disk DescriptorFile\nversion=1\n", 32, NULL, "VMDK");
	sniff("conectix\0\0", 10, NULL, "VHD");
	sniff("vhdxfile", 8, NULL, "VHDX");
	sniff("QED\0", 4, NULL, "QED");
	sniff("LUKS\xba\xbe\0\1", 8, NULL, "LUKS");
	memset(b, 0, sizeof(b));
	memcpy(b, "<<< Oracle VM VirtualBox Disk Image >>>\n", 40);
	memcpy(b + 0x40, "\x7f\x10\xda\xbe", 4);
	sniff(b, sizeof(b), NULL, "VDI");
	/* the VDI magic beyond what was read is not seen */
	sniff(b, 0x42, "raw", NULL);
}

/* ---- qemu-img check ------------------------------------------------------ */

static void judges_qemu_img_check(void **state)
{
	(void)state;
	char *why = NULL;

	assert_int_equal(disk_check_parse("{\"check-errors\": 0, \"format\": \"qcow2\","
					  " \"total-clusters\": 16}", 0, &why), 0);
	assert_null(why);
	/* leaked clusters waste space, they do not change data */
	assert_int_equal(disk_check_parse("{\"check-errors\": 0, \"leaks\": 3}", 3, &why), 0);
	assert_int_equal(disk_check_parse("{\"check-errors\": 0, \"corruptions\": 2}", 2, &why), -1);
	assert_non_null(why);
	free(why);
	assert_int_equal(disk_check_parse("{\"check-errors\": 0, \"corruptions\": 2}", 0, &why), -1);
	free(why);
	assert_int_equal(disk_check_parse("{\"check-errors\": 1}", 1, &why), -1);
	free(why);
	assert_int_equal(disk_check_parse("{\"format\": \"qcow2\"}", 0, &why), -1);
	free(why);
	assert_int_equal(disk_check_parse("", 0, &why), -1);
	free(why);
	assert_int_equal(disk_check_parse(NULL, 0, &why), -1);
	free(why);
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
	struct sha256_stream st;

	for (size_t i = 0; i < N; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	write_file(path, data, N);
	assert_int_equal(sha256_file(path, whole, &size), 0);
	assert_int_equal(size, N);

	/* pieces of odd sizes, as curl hands them over */
	sha256_begin(&st);
	for (size_t off = 0, step = 1; off < N; off += step, step = step * 3 % 70001 + 1)
		sha256_feed(&st, data + off, off + step > N ? N - off : step);
	sha256_final_hex(&st, pieces);
	assert_string_equal(pieces, whole);

	/* resumed: the first 123457 bytes from the partial file, then the rest */
	const long long cut = 123457;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	sha256_begin(&st);
	assert_int_equal(sha256_update_fd(&st, fd, cut), cut);
	sha256_feed(&st, data + cut, N - cut);
	sha256_final_hex(&st, resumed);
	assert_string_equal(resumed, whole);

	/* asking for more than the file holds stops at its end */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	sha256_begin(&st);
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

static void sha_of(const char *data, char out[65])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, (const unsigned char *)data, strlen(data));
	sodium_bin2hex(out, 65, d, sizeof(d));
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_mode & 07777;
}

static ino_t ino_of(const char *path)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_ino;
}

static void placement_is_content_addressed(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char *images = str_printf("%s/images", dir);
	char *st1 = image_staging_dir(dir, 1), *st2 = image_staging_dir(dir, 0x2a);
	const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char *final = str_printf("%s/%s", images, sha), *disk = str_printf("%s/disk", final);
	char *f1 = str_printf("%s/disk", st1), *f2 = str_printf("%s/disk", st2);
	char *leftover = str_printf("%s/checkpoint", st1);
	struct image_parts parts;
	struct stat sb;

	image_parts_of(false, false, &parts);
	assert_string_equal(st2 + strlen(dir), "/images/staging/0000002a");
	assert_int_equal(mkdir_p(st1, 0700), 0);
	assert_int_equal(mkdir_p(st2, 0700), 0);
	write_file(f1, "abc", 3);
	write_file(leftover, "12\n", 3);
	write_file(f2, "abc", 3);
	assert_int_equal(image_files_place(dir, st1, sha, &parts), 0);
	image_files_release(sha);
	assert_int_equal(stat(disk, &sb), 0);
	assert_int_equal(stat(st1, &sb), -1);
	/* placed read-only, readable by VM users; only the image's file */
	assert_int_equal(mode_of(disk), 0444);
	assert_int_equal(mode_of(final), 0755);
	char *cp = str_printf("%s/checkpoint", final);
	assert_int_equal(stat(cp, &sb), -1);
	free(cp);
	/* The same content again: the stored copy (checked) stays, the new one goes. */
	ino_t before = ino_of(disk);
	assert_int_equal(image_files_place(dir, st2, sha, &parts), 0);
	image_files_release(sha);
	assert_int_equal(stat(st2, &sb), -1);
	assert_int_equal(ino_of(disk), before);
	assert_int_equal(dir_remove_tree(dir), 0);
	free(images);
	free(st1);
	free(st2);
	free(final);
	free(disk);
	free(f1);
	free(f2);
	free(leftover);
	free(dir);
}

/*
 * What the image poisoning left behind: images/<sha of X>/disk holding
 * other bytes (a qcow2 backed by /etc/shadow).  A verified import of X
 * must not be deduplicated onto it: the directory is replaced.
 */
static void dedup_never_trusts_a_poisoned_dir(void **state)
{
	(void)state;
	char *dir = tmpdir(), sha[65];
	char *st = image_staging_dir(dir, 7), *f = str_printf("%s/disk", st);
	struct image_parts parts;

	sha_of("official image", sha);
	char *final = str_printf("%s/images/%s", dir, sha), *disk = str_printf("%s/disk", final);
	char *bad = str_printf("%s/other", final);
	image_parts_of(false, false, &parts);
	assert_int_equal(mkdir_p(final, 0755), 0);
	static const char poison[] = "QFI\xfb backed by /etc/shadow";
	write_file(disk, poison, sizeof(poison) - 1);
	write_file(bad, "x", 1);
	assert_int_equal(mkdir_p(st, 0700), 0);
	write_file(f, "official image", 14);
	assert_int_equal(image_files_place(dir, st, sha, &parts), 0);
	image_files_release(sha);
	char *got = NULL;
	size_t len = 0;
	assert_int_equal(file_read(disk, 1024, &got, &len), 0);
	assert_int_equal(len, 14);
	assert_memory_equal(got, "official image", 14);
	free(got);
	assert_int_equal(mode_of(disk), 0444);
	struct stat sb;
	assert_int_equal(stat(bad, &sb), -1);   /* the whole poisoned dir went */
	/* nothing of it is left beside the store */
	char *images = str_printf("%s/images", dir);
	DIR *d = opendir(images);
	struct dirent *de;
	int entries = 0;
	while ((de = readdir(d)) != NULL)
		entries += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(entries, 2);   /* <sha> and staging */

	/* a symlink in place of the file is not followed, and replaced too */
	char *st2 = image_staging_dir(dir, 8), *f2 = str_printf("%s/disk", st2);
	assert_int_equal(chmod(disk, 0644), 0);
	assert_int_equal(unlink(disk), 0);
	char *target = str_printf("%s/target", dir);
	write_file(target, "official image", 14);
	assert_int_equal(symlink(target, disk), 0);
	assert_int_equal(mkdir_p(st2, 0700), 0);
	write_file(f2, "official image", 14);
	assert_int_equal(image_files_place(dir, st2, sha, &parts), 0);
	image_files_release(sha);
	assert_true(S_ISREG(mode_of(disk) | S_IFREG) && (lstat(disk, &sb) == 0 && S_ISREG(sb.st_mode)));

	assert_int_equal(dir_remove_tree(dir), 0);
	free(st);
	free(f);
	free(st2);
	free(f2);
	free(target);
	free(final);
	free(disk);
	free(bad);
	free(images);
	free(dir);
}

/* The file that lands in place must be the one that was checked: one
 * swapped in meanwhile (another host's upload) is taken out again. */
static void placement_refuses_a_swapped_file(void **state)
{
	(void)state;
	char *dir = tmpdir(), sha[65];
	char *st = image_staging_dir(dir, 9), *f = str_printf("%s/disk", st);
	struct image_parts parts;
	struct stat sb;

	sha_of("checked", sha);
	char *final = str_printf("%s/images/%s", dir, sha);
	image_parts_of(false, false, &parts);
	assert_int_equal(mkdir_p(st, 0700), 0);
	write_file(f, "checked", 7);
	assert_int_equal(lstat(f, &sb), 0);
	parts.pinned = true;
	parts.dev[0] = sb.st_dev;
	parts.ino[0] = sb.st_ino;
	/* replaced by another file after the check */
	char *other = str_printf("%s/other", st);
	write_file(other, "poison!", 7);
	assert_int_equal(rename(other, f), 0);
	errno = 0;
	assert_int_equal(image_files_place(dir, st, sha, &parts), -1);
	assert_int_equal(errno, ESTALE);
	assert_int_equal(stat(final, &sb), -1);
	assert_int_equal(dir_remove_tree(dir), 0);
	free(st);
	free(f);
	free(other);
	free(final);
	free(dir);
}

/* A kernel image is named by its parts' hashes; a directory is judged by
 * reading it. */
static void kernel_dir_sha(void **state)
{
	(void)state;
	char *dir = tmpdir(), k[65], i[65], want[65], got[65];
	char *kp = str_printf("%s/kernel", dir), *ip = str_printf("%s/initrd", dir);
	struct image_parts parts;

	write_file(kp, "kernel bytes", 12);
	write_file(ip, "initrd bytes", 12);
	sha_of("kernel bytes", k);
	sha_of("initrd bytes", i);
	image_kernel_sha(k, i, want);
	image_parts_of(true, true, &parts);
	assert_int_equal(image_dir_sha(dir, &parts, got), 0);
	assert_string_equal(got, want);
	/* the formula images have been named by since the first release */
	char combo[200];
	snprintf(combo, sizeof(combo), "kernel:%s\ninitrd:%s\n", k, i);
	sha_of(combo, want);
	assert_string_equal(got, want);
	/* without an initrd: "-" in its place */
	image_parts_of(true, false, &parts);
	assert_int_equal(image_dir_sha(dir, &parts, got), 0);
	snprintf(combo, sizeof(combo), "kernel:%s\ninitrd:-\n", k);
	sha_of(combo, want);
	assert_string_equal(got, want);
	/* a missing part: no name */
	unlink(ip);
	image_parts_of(true, true, &parts);
	assert_int_equal(image_dir_sha(dir, &parts, got), -1);
	assert_int_equal(dir_remove_tree(dir), 0);
	free(kp);
	free(ip);
	free(dir);
}

/* A delete of one image must not remove files a finalize has just placed
 * for another image of the same content (its row is not committed yet). */
static void held_files_outlive_a_delete(void **state)
{
	(void)state;
	char *dir = tmpdir(), sha[65];
	char *st = image_staging_dir(dir, 3), *f = str_printf("%s/disk", st);
	struct image_parts parts;
	struct stat sb;

	sha_of("shared", sha);
	char *final = str_printf("%s/images/%s", dir, sha);
	image_parts_of(false, false, &parts);
	assert_int_equal(mkdir_p(st, 0700), 0);
	write_file(f, "shared", 6);
	assert_int_equal(image_files_place(dir, st, sha, &parts), 0);
	assert_int_equal(image_files_remove(dir, sha), 0);
	assert_int_equal(stat(final, &sb), 0);       /* held: kept */
	image_files_release(sha);
	assert_int_equal(image_files_remove(dir, sha), 0);
	assert_int_equal(stat(final, &sb), -1);      /* released: gone */
	assert_int_equal(dir_remove_tree(dir), 0);
	free(st);
	free(f);
	free(final);
	free(dir);
}

/* ---- qemu-img, confined ---------------------------------------------------- */

static bool running_as_root(void)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "skipped: needs root (to drop to another user)\n");
	return false;
}

/* What proc_run_opts gives the child: another user, no groups, the limits,
 * and our descriptor as fd 3 although the user may not open the file. */
static void child_runs_unprivileged_with_limits(void **state)
{
	(void)state;
	if (!running_as_root())
		return;
	char *dir = tmpdir(), *path = str_printf("%s/secret", dir), *out = NULL;
	uid_t uid;
	gid_t gid;

	assert_int_equal(proc_user_lookup("nobody", &uid, &gid), 0);
	assert_int_equal(proc_user_lookup("no-such-user-here", &uid, &gid), -1);
	assert_int_equal(proc_user_lookup("nobody", &uid, &gid), 0);
	/* as a staged image file: readable by all, in a directory only root enters */
	write_file(path, "only via fd 3\n", 14);
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chmod(path, 0444), 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct proc_opts o = { .timeout_ms = 10000, .drop = true, .uid = uid, .gid = gid,
			       .limit_as = 1ULL << 30, .limit_cpu = 30, .pass_fd = fd };
	char *script = str_printf("id -u; id -G; ulimit -v; ulimit -t; cat /dev/fd/3;"
				  " cat %s 2>/dev/null || echo denied", path);
	char *argv[] = { "sh", "-c", script, NULL };
	assert_int_equal(proc_run_opts(argv, &o, &out, 4096, false), 0);
	char *want = str_printf("%u\n%u\n1048576\n30\nonly via fd 3\ndenied\n", (unsigned)uid,
				(unsigned)gid);
	assert_string_equal(out, want);
	free(out);
	free(want);
	close(fd);
	free(script);
	assert_int_equal(dir_remove_tree(dir), 0);
	free(path);
	free(dir);
}

static int qemu_img_create(const char *dir, const char *name, char *const extra[], char **path)
{
	char *argv[16] = { "qemu-img", "create", "-q" };
	int n = 3;

	*path = str_printf("%s/%s", dir, name);
	for (; *extra; extra++)
		argv[n++] = *extra;
	argv[n++] = *path;
	argv[n++] = "1M";
	argv[n] = NULL;
	return proc_run(argv, 30000, NULL, 0, false);
}

static void inspect(const char *path, int want_rc, const char *want, const char *user)
{
	struct disk_info info = { 0 };
	char *why = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	int rc = disk_inspect(fd, user, &info, &why);
	close(fd);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s)", path, rc, why ? why : "");
	if (rc == 0)
		assert_string_equal(info.format, want);
	else if (strstr(why, want) == NULL)
		fail_msg("%s: reason '%s' lacks '%s'", path, why, want);
	free(why);
}

/* disk_inspect against real qemu-img, files in a directory only root may
 * enter: what a staging directory is. */
static void inspects_real_disks(void **state)
{
	(void)state;
	if (!running_as_root())
		return;
	char *dir = tmpdir(), *qcow2 = NULL, *shadow = NULL, *raw = NULL, *vmdk = NULL;
	char *fq[] = { "-f", "qcow2", NULL }, *fs[] = { "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", NULL };
	char *fr[] = { "-f", "raw", NULL }, *fv[] = { "-f", "vmdk", NULL };

	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(qemu_img_create(dir, "a.qcow2", fq, &qcow2), 0);
	assert_int_equal(qemu_img_create(dir, "shadow.qcow2", fs, &shadow), 0);
	assert_int_equal(qemu_img_create(dir, "a.raw", fr, &raw), 0);
	assert_int_equal(qemu_img_create(dir, "a.vmdk", fv, &vmdk), 0);
	inspect(qcow2, 0, "qcow2", "nobody");
	inspect(raw, 0, "raw", "nobody");
	inspect(shadow, -1, "backing", "nobody");
	inspect(vmdk, -1, "VMDK", "nobody");
	/* never as root, never as nobody-knows-who */
	inspect(qcow2, -1, "image_user", "root");
	inspect(qcow2, -1, "image_user", "no-such-user-here");
	assert_int_equal(dir_remove_tree(dir), 0);
	free(qcow2);
	free(shadow);
	free(raw);
	free(vmdk);
	free(dir);
}

/* ---- addresses a member's import may reach ------------------------------------ */

static enum addr_class cls(const char *text, const struct addr_policy *p)
{
	unsigned char a[16];

	if (addr_from_text(text, a) < 0)
		fail_msg("'%s' is no address", text);
	return addr_classify(a, p);
}

static void address_classes(void **state)
{
	(void)state;
	struct addr_policy p = { 0 };
	char *err = NULL;

	/* this host: a bridge gateway, the uplink */
	assert_int_equal(addr_list_add(&p.host, "2001:db8:77::1"), 0);
	assert_int_equal(addr_list_add(&p.host, "192.0.2.10"), 0);
	assert_int_equal(addr_list_add(&p.host, "10.77.0.1"), 0);
	/* hackcloud networks */
	assert_int_equal(addr_list_add(&p.networks, "2001:db8:77::/64"), 0);
	assert_int_equal(addr_list_add(&p.networks, "10.77.0.0/24"), 0);
	assert_int_equal(addr_list_add(&p.networks, "203.0.113.0/24"), 0);
	assert_int_equal(addr_list_parse(&p.allow, " 10.66.0.0/16 , fd66::/48,", &err), 0);
	/* A prefix length is digits (strtoul alone read "/-0" as /0). */
	struct addr_list bad = { 0 };
	assert_int_equal(addr_list_add(&bad, "10.0.0.0/-0"), -1);
	assert_int_equal(addr_list_add(&bad, "10.0.0.0/ 24"), -1);
	assert_int_equal(addr_list_add(&bad, "fd00::/+8"), -1);
	assert_int_equal(addr_list_parse(&bad, "10.10.0.0/    24", &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(bad.n, 0);

	assert_int_equal(cls("198.51.100.7", &p), ADDR_PUBLIC);
	assert_int_equal(cls("2001:db8:66::2", &p), ADDR_PUBLIC);
	assert_int_equal(cls("2a00:1450::1", &p), ADDR_PUBLIC);
	assert_int_equal(cls("127.0.0.1", &p), ADDR_LOOPBACK);
	assert_int_equal(cls("127.9.9.9", &p), ADDR_LOOPBACK);
	assert_int_equal(cls("::1", &p), ADDR_LOOPBACK);
	assert_int_equal(cls("::ffff:127.0.0.1", &p), ADDR_LOOPBACK);
	assert_int_equal(cls("::127.0.0.1", &p), ADDR_LOOPBACK);          /* IPv4-compatible */
	assert_int_equal(cls("64:ff9b::7f00:1", &p), ADDR_LOOPBACK);      /* NAT64 */
	assert_int_equal(cls("2001:db8:77::1", &p), ADDR_HOST);
	assert_int_equal(cls("192.0.2.10", &p), ADDR_HOST);
	assert_int_equal(cls("::ffff:192.0.2.10", &p), ADDR_HOST);
	assert_int_equal(cls("10.77.0.1", &p), ADDR_HOST);
	assert_int_equal(cls("fd00:ec2::254", &p), ADDR_HOST);            /* metadata, IPv6 */
	assert_int_equal(cls("169.254.169.254", &p), ADDR_LINK_LOCAL);    /* metadata, IPv4 */
	assert_int_equal(cls("fe80::a9fe:a9fe", &p), ADDR_LINK_LOCAL);
	assert_int_equal(cls("febf::1", &p), ADDR_LINK_LOCAL);
	assert_int_equal(cls("2001:db8:77::42", &p), ADDR_NETWORK);
	assert_int_equal(cls("10.77.0.9", &p), ADDR_NETWORK);
	assert_int_equal(cls("203.0.113.5", &p), ADDR_NETWORK);
	assert_int_equal(cls("0.0.0.0", &p), ADDR_SPECIAL);
	assert_int_equal(cls("0.1.2.3", &p), ADDR_SPECIAL);
	assert_int_equal(cls("::", &p), ADDR_SPECIAL);
	assert_int_equal(cls("ff02::1", &p), ADDR_SPECIAL);
	assert_int_equal(cls("224.0.0.1", &p), ADDR_SPECIAL);
	assert_int_equal(cls("255.255.255.255", &p), ADDR_SPECIAL);
	assert_int_equal(cls("10.1.2.3", &p), ADDR_PRIVATE);
	assert_int_equal(cls("172.16.0.1", &p), ADDR_PRIVATE);
	assert_int_equal(cls("172.31.255.255", &p), ADDR_PRIVATE);
	assert_int_equal(cls("172.32.0.1", &p), ADDR_PUBLIC);
	assert_int_equal(cls("192.168.1.1", &p), ADDR_PRIVATE);
	assert_int_equal(cls("100.64.0.1", &p), ADDR_PRIVATE);
	assert_int_equal(cls("100.128.0.1", &p), ADDR_PUBLIC);
	assert_int_equal(cls("fd12:3456::1", &p), ADDR_PRIVATE);
	assert_int_equal(cls("fc00::1", &p), ADDR_PRIVATE);
	assert_int_equal(cls("fec0::1", &p), ADDR_PRIVATE);
	assert_int_equal(cls("::ffff:192.168.1.1", &p), ADDR_PRIVATE);
	/* import_allow lifts the private rule, and only that one */
	assert_int_equal(cls("10.66.3.4", &p), ADDR_ALLOWED);
	assert_int_equal(cls("::ffff:10.66.3.4", &p), ADDR_ALLOWED);
	assert_int_equal(cls("fd66::2", &p), ADDR_ALLOWED);
	assert_int_equal(cls("fd66:1::2", &p), ADDR_PRIVATE);
	assert_true(addr_class_ok(ADDR_PUBLIC) && addr_class_ok(ADDR_ALLOWED));
	assert_false(addr_class_ok(ADDR_PRIVATE) || addr_class_ok(ADDR_HOST) ||
		     addr_class_ok(ADDR_NETWORK) || addr_class_ok(ADDR_LOOPBACK) ||
		     addr_class_ok(ADDR_LINK_LOCAL) || addr_class_ok(ADDR_SPECIAL));
	addr_policy_free(&p);

	/* allowing loopback or a network by import_allow changes nothing */
	assert_int_equal(addr_list_parse(&p.allow, "127.0.0.0/8,::1,10.77.0.0/16", &err), 0);
	assert_int_equal(addr_list_add(&p.networks, "10.77.0.0/24"), 0);
	assert_int_equal(cls("127.0.0.1", &p), ADDR_LOOPBACK);
	assert_int_equal(cls("10.77.0.9", &p), ADDR_NETWORK);
	assert_int_equal(cls("10.77.1.9", &p), ADDR_ALLOWED);
	addr_policy_free(&p);

	/* A prefix keeps the meaning it was written with, even where IPv6
	 * carries IPv4: a network in 64:ff9b::/64 holds 64:ff9b::1:2:3:4 (it
	 * read as ::ffff:0:0/64 before; found by tests/fuzz/fuzz_addrguard). */
	assert_int_equal(addr_list_add(&p.networks, "64:ff9b::/64"), 0);
	assert_int_equal(addr_list_add(&p.host, "::ffff:0:0:7"), 0);
	assert_int_equal(cls("64:ff9b::1:2:3:4", &p), ADDR_NETWORK);
	assert_int_equal(cls("::ffff:0:0:7", &p), ADDR_HOST);
	assert_int_equal(cls("64:ff9b::a00:1", &p), ADDR_NETWORK);   /* and 10.0.0.1 */
	assert_int_equal(cls("198.51.100.7", &p), ADDR_PUBLIC);
	addr_policy_free(&p);
}

static void address_lists_parse(void **state)
{
	(void)state;
	struct addr_list l = { 0 };
	char *err = NULL;

	assert_int_equal(addr_list_parse(&l, "", &err), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(addr_list_parse(&l, "10.0.0.0/8, 2001:db8::/32, 192.0.2.1", &err), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].len, 96 + 8);
	assert_int_equal(l.v[1].len, 32);
	assert_int_equal(l.v[2].len, 128);
	addr_list_free(&l);
	const char *bad[] = { "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "banana", "/8", "10.0.0.0/",
			      "10.0.0.0/8x", "fd00::/-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(addr_list_parse(&l, bad[i], &err), -1);
		assert_non_null(err);
		free(err);
		err = NULL;
		addr_list_free(&l);
	}
}

/* This host's own addresses come from the kernel: loopback at least. */
static void host_addresses_from_the_kernel(void **state)
{
	(void)state;
	struct addr_policy p = { 0 };

	assert_int_equal(addr_host_addresses(&p.host), 0);
	assert_true(p.host.n >= 1);
	addr_policy_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_qcow2_and_raw),
		cmocka_unit_test(refuses_backing_and_data_files),
		cmocka_unit_test(refuses_other_formats_and_garbage),
		cmocka_unit_test(sha256_known_vectors),
		cmocka_unit_test(sha256_stream_resumed_equals_whole),
		cmocka_unit_test(refuses_an_answer_about_another_format),
		cmocka_unit_test(format_from_the_first_bytes),
		cmocka_unit_test(judges_qemu_img_check),
		cmocka_unit_test(placement_is_content_addressed),
		cmocka_unit_test(dedup_never_trusts_a_poisoned_dir),
		cmocka_unit_test(placement_refuses_a_swapped_file),
		cmocka_unit_test(kernel_dir_sha),
		cmocka_unit_test(held_files_outlive_a_delete),
		cmocka_unit_test(child_runs_unprivileged_with_limits),
		cmocka_unit_test(inspects_real_disks),
		cmocka_unit_test(address_classes),
		cmocka_unit_test(address_lists_parse),
		cmocka_unit_test(host_addresses_from_the_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
