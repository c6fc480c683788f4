/* datadir — see datadir.h.  HC_SOURCE_ROOT, HC_BUILD_ROOT and HC_DATADIR
 * come from meson.build. */
#include "common/datadir.h"

#include "common/fsutil.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

char *datadir_path(const char *rel)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if (strcmp(exe, HC_BUILD_ROOT) == 0)
			return str_printf("%s/%s", HC_SOURCE_ROOT, rel);
	}
	return str_printf("%s/%s", HC_DATADIR, rel);
}
