/* identity — see identity.h. */
#include "vm/identity.h"

#include "common/fsutil.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Limits of qemu-img and genisoimage, as OpenStack sets them for
 * qemu-img info since CVE-2015-5162: a crafted image must not make the
 * tool eat the host's memory or CPU. */
#define TOOL_AS_LIMIT (1ULL << 30)
#define TOOL_CPU_LIMIT 30

uid_t identity_uid(long long base, long long count, uint64_t vm_id)
{
	return (uid_t)(base + (long long)(vm_id % (uint64_t)count));
}

static bool in_range(long long v, long long base, long long count)
{
	return v >= base && v < base + count;
}

/* Ranges "name:first:count" of /etc/subuid or /etc/subgid that overlap. */
static int subids_check(const char *path, long long base, long long count, char **err)
{
	FILE *f = fopen(path, "r");
	char line[512];

	if (f == NULL)
		return 0; /* no subordinate ids on this host */
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		long long first = strtoll(c1 + 1, NULL, 10), n = strtoll(c2 + 1, NULL, 10);
		if (n > 0 && first < base + count && base < first + n) {
			*c1 = '\0';
			*err = str_printf("qemu_uid_base/qemu_uid_count [%lld, %lld) overlap the subordinate"
					  " ids %lld..%lld of %s in %s", base, base + count, first,
					  first + n - 1, line, path);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

int identity_range_check(long long base, long long count, char **err)
{
	struct passwd *pw;
	struct group *gr;
	int rc = 0;

	*err = NULL;
	if (count < 1 || base < 1 || base + count > 0x7fffffffLL)
		*err = str_printf("qemu_uid_base/qemu_uid_count: [%lld, %lld) must lie within 1..2^31-1",
				  base, base + count);
	else if (in_range(65534, base, count) || in_range(65535, base, count))
		*err = str_printf("qemu_uid_base/qemu_uid_count: [%lld, %lld) holds nobody (65534) or"
				  " the 16-bit -1 (65535)", base, base + count);
	if (*err)
		return -1;
	setpwent();
	while (rc == 0 && (pw = getpwent()) != NULL)
		if (in_range(pw->pw_uid, base, count) || in_range(pw->pw_gid, base, count)) {
			*err = str_printf("qemu_uid_base/qemu_uid_count [%lld, %lld) hold the account %s"
					  " (uid %ld): VMs need ids nobody else has", base, base + count,
					  pw->pw_name, (long)pw->pw_uid);
			rc = -1;
		}
	endpwent();
	setgrent();
	while (rc == 0 && (gr = getgrent()) != NULL)
		if (in_range(gr->gr_gid, base, count)) {
			*err = str_printf("qemu_uid_base/qemu_uid_count [%lld, %lld) hold the group %s"
					  " (gid %ld): VMs need ids nobody else has", base, base + count,
					  gr->gr_name, (long)gr->gr_gid);
			rc = -1;
		}
	endgrent();
	if (rc == 0)
		rc = subids_check("/etc/subuid", base, count, err);
	if (rc == 0)
		rc = subids_check("/etc/subgid", base, count, err);
	return rc;
}

int identity_qemu(long long base, long long count, uint64_t vm_id, bool kvm,
		  struct proc_opts *out, char **err)
{
	struct stat st;

	*err = NULL;
	*out = (struct proc_opts){ .drop = true, .uid = identity_uid(base, count, vm_id),
				   .gid = (gid_t)identity_uid(base, count, vm_id), .pass_fd = -1 };
	if (!kvm)
		return 0;
	if (stat("/dev/kvm", &st) < 0) {
		*err = str_printf("/dev/kvm: %s", strerror(errno));
		return -1;
	}
	if ((st.st_mode & 0060) != 0060 || st.st_gid == 0) {
		*err = strdup("/dev/kvm is root's alone: QEMU runs as the VM's uid and needs it"
			      " group read-write (e.g. root:kvm 0660)");
		return -1;
	}
	out->with_group = true;
	out->group = st.st_gid;
	return 0;
}

void identity_tool(long long base, long long count, uint64_t vm_id, struct proc_opts *out)
{
	*out = (struct proc_opts){ .drop = true, .uid = identity_uid(base, count, vm_id),
				   .gid = (gid_t)identity_uid(base, count, vm_id),
				   .limit_as = TOOL_AS_LIMIT, .limit_cpu = TOOL_CPU_LIMIT,
				   .pass_fd = -1 };
}
