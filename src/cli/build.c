/*
 * build.c — `hc image build NAME --recipe R [recipe options] [--public]`:
 * run a recipe of the image builder (builder/recipes/R.sh, see
 * builder/README.md) into a fresh directory on this machine, then import
 * what it left there, exactly as `hc image import` would: a kernel image
 * (vmlinuz, initrd.img, cmdline) or a disk image (disk.qcow2).
 *
 * Invariants:
 *   - the recipe runs from an argv, never a shell string; its progress
 *     lines ("[k/N] …") and its tools' output reach our stderr, and stdout
 *     stays for the resulting image, as for every other command;
 *   - the output directory is removed whatever happens, and the import
 *     keeps its own promise (a ready image, or nothing left behind);
 *   - a name that is already taken, or a daemon that cannot be reached,
 *     fails before the build rather than after minutes of it.
 *
 * The recipe is looked up in $HC_BUILDER_DIR, else in the source tree when
 * hc runs from its build directory, else in the installed share/hackcloud.
 */
#include "cli/cli.h"

#include "common/datadir.h"
#include "common/fsutil.h"
#include "common/proc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Options of `image build` handed to the recipe as "--NAME=VALUE". */
static const char *const recipe_opts[] = { "--suite", "--packages", "--mirror", "--size" };
#define N_RECIPE_OPTS (sizeof(recipe_opts) / sizeof(recipe_opts[0]))

/* The options of `image import` that a build's result is imported with. */
static const struct opt_spec import_spec[] = {
	{ "--kernel", "F", false, NULL },
	{ "--initrd", "F", false, NULL },
	{ "--cmdline", "S", false, NULL },
	{ "--disk", "F", false, NULL },
	{ "--public", NULL, false, NULL },
};

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where builder/ is: see the header.  malloc'd. */
static char *builder_dir(void)
{
	const char *env = getenv("HC_BUILDER_DIR");

	if (env && *env)
		return strdup(env);
	return datadir_path("builder");
}

static bool recipe_name_ok(const char *r)
{
	if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9')))
		return false;
	for (; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return false;
	return true;
}

/* "tiny, debian": the recipes in dir, for the error of an unknown one. */
static char *recipe_list(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *list = NULL;

	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len <= 3 || strcmp(e->d_name + len - 3, ".sh") != 0)
			continue;
		char *next = str_printf("%s%s%.*s", list ? list : "", list ? ", " : "",
					(int)(len - 3), e->d_name);
		free(list);
		if ((list = next) == NULL)
			break;
	}
	closedir(d);
	return list;
}

/* The recipe's path, or NULL with a usage error. */
static char *recipe_path(struct hc *h, const char *recipe)
{
	char *dir = builder_dir();
	char *rdir = dir ? str_printf("%s/recipes", dir) : NULL;
	char *path = NULL;

	if (rdir == NULL) {
		hc_fail(h, "out of memory");
	} else if (!is_dir(rdir)) {
		hc_fail(h, "image build: no recipes in %s (set HC_BUILDER_DIR to the builder directory)", rdir);
	} else if (!recipe_name_ok(recipe) || (path = str_printf("%s/%s.sh", rdir, recipe)) == NULL ||
		   !is_file(path)) {
		char *list = recipe_list(rdir);
		hc_usage(h, "image build: unknown recipe '%s' (recipes: %s)", recipe, list ? list : "none");
		free(list);
		free(path);
		path = NULL;
	}
	free(rdir);
	free(dir);
	return path;
}

/* 0 when no image answers to `name`; -1 with an error when one does or
 * the daemon cannot say. */
static int name_free(struct hc *h, const char *name)
{
	char *path = api_path("images", name, NULL);
	long status = 0;
	json_t *found = NULL;
	int rc;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "GET", path, NULL, &found, &status);
	free(path);
	json_decref(found);
	if (rc == 0)
		return hc_fail(h, "image '%s' exists already", name);
	if (status != 404)
		return -1;
	hc_clear(h);
	return 0;
}

/* Run the recipe into out; 0 when it succeeded. */
static int run_recipe(struct hc *h, const char *recipe, const char *path, const struct args *a,
		      const char *out)
{
	char *argv[3 + N_RECIPE_OPTS + 1] = { "bash", (char *)path };
	size_t n = 2;
	int rc = -1, status;

	for (size_t i = 0; i < N_RECIPE_OPTS; i++) {
		const char *v = arg_opt(a, recipe_opts[i]);
		if (v && (argv[n++] = str_printf("%s=%s", recipe_opts[i], v)) == NULL) {
			hc_fail(h, "out of memory");
			goto out;
		}
	}
	argv[n] = (char *)out;
	/* Ctrl-C reaches the recipe too (same process group): it cleans up
	 * and exits, and we only have to wait for it. */
	hc_catch_signals(true);
	status = proc_run(argv, 0, NULL, 0, false);
	hc_catch_signals(false);
	if (status < 0)
		hc_fail(h, "image build: cannot run bash: %s", strerror(errno));
	else if (hc_interrupted || status == 130 || status == 143)
		hc_fail(h, "interrupted");
	else if (status == 2)
		hc_usage(h, "image build: recipe %s refused its arguments (see above)", recipe);
	else if (status != 0)
		hc_fail(h, "image build: recipe %s failed (exit %d, see above)", recipe, status);
	else
		rc = 0;
out:
	for (size_t i = 2; i < n; i++)
		free(argv[i]);
	return rc;
}

/* The kernel command line the recipe wrote, without its newline; malloc'd. */
static char *read_cmdline(struct hc *h, const char *path)
{
	char *s = NULL;
	size_t len = 0;

	if (file_read(path, 4096, &s, &len) < 0) {
		hc_fail(h, "image build: cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* Import the recipe's output in dir as `hc image import` does. */
static int import_result(struct hc *h, const struct args *a, const char *dir)
{
	char *disk = str_printf("%s/disk.qcow2", dir), *kernel = str_printf("%s/vmlinuz", dir);
	char *initrd = str_printf("%s/initrd.img", dir), *cmdfile = str_printf("%s/cmdline", dir);
	char *cmdline = NULL;
	struct args ia = { .cmd = a->cmd, .pos = a->pos, .n_pos = 1 };
	int rc = -1;

	ia.opts = calloc(sizeof(import_spec) / sizeof(import_spec[0]), sizeof(*ia.opts));
	if (!disk || !kernel || !initrd || !cmdfile || !ia.opts) {
		hc_fail(h, "out of memory");
		goto out;
	}
#define ADD(i, v) (ia.opts[ia.n_opts].spec = &import_spec[i], ia.opts[ia.n_opts++].value = (v))
	if (is_file(disk)) {
		ADD(3, disk);
	} else if (is_file(kernel)) {
		ADD(0, kernel);
		if (is_file(initrd))
			ADD(1, initrd);
		if (is_file(cmdfile)) {
			if ((cmdline = read_cmdline(h, cmdfile)) == NULL)
				goto out;
			ADD(2, cmdline);
		}
	} else {
		hc_fail(h, "image build: the recipe left neither disk.qcow2 nor vmlinuz");
		goto out;
	}
	if (arg_flag(a, "--public"))
		ADD(4, "");
#undef ADD
	fprintf(stderr, "importing the result as image '%s'\n", a->pos[0]);
	rc = cmd_image_import(h, &ia);
out:
	free(ia.opts);
	free(disk);
	free(kernel);
	free(initrd);
	free(cmdfile);
	free(cmdline);
	return rc;
}

int cmd_image_build(struct hc *h, const struct args *a)
{
	const char *recipe = arg_opt(a, "--recipe");
	const char *tmp = getenv("HC_BUILD_TMPDIR");
	char *path = NULL, *out = NULL;
	int rc = -1;

	if (recipe == NULL)
		return hc_usage(h, "image build: --recipe R is required (e.g. tiny or debian)");
	if ((path = recipe_path(h, recipe)) == NULL)
		return -1;
	if (name_free(h, a->pos[0]) < 0)
		goto out;
	/* Disk images are big: scratch space on disk, not in a tmpfs /tmp. */
	if (tmp == NULL || *tmp == '\0')
		tmp = getenv("TMPDIR");
	out = str_printf("%s/hc-build-out.XXXXXX", tmp && *tmp ? tmp : "/var/tmp");
	if (out == NULL) {
		hc_fail(h, "out of memory");
		goto out;
	}
	if (mkdtemp(out) == NULL) {
		hc_fail(h, "image build: cannot make a directory like %s: %s", out, strerror(errno));
		free(out);
		out = NULL;
		goto out;
	}
	if (run_recipe(h, recipe, path, a, out) == 0)
		rc = import_result(h, a, out);
out:
	if (out)
		dir_remove_tree(out);
	free(out);
	free(path);
	return rc;
}
