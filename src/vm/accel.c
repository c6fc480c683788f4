/* accel — see accel.h. */
#include "vm/accel.h"

#include "common/fsutil.h"
#include "common/proc.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 10000
/* isa-debug-exit turns the byte written to its port into (v << 1) | 1. */
#define PROBE_EXIT_BYTE 0x21
#define PROBE_EXIT_CODE ((PROBE_EXIT_BYTE << 1) | 1)

void accel_probe_sector(unsigned char s[512])
{
	/* Real-mode code: write "OK\n" to COM1, then the exit byte to 0xf4. */
	static const unsigned char code[] = {
		0xba, 0xf8, 0x03,          /* mov dx, 0x3f8 */
		0xb0, 'O', 0xee,           /* mov al, 'O'; out dx, al */
		0xb0, 'K', 0xee,           /* mov al, 'K'; out dx, al */
		0xb0, '\n', 0xee,          /* mov al, '\n'; out dx, al */
		0xb0, PROBE_EXIT_BYTE,     /* mov al, PROBE_EXIT_BYTE */
		0xe6, 0xf4,                /* out 0xf4, al */
		0xf4,                      /* hlt */
	};
	memset(s, 0, 512);
	memcpy(s, code, sizeof(code));
	s[510] = 0x55;
	s[511] = 0xaa;
}

static int probe_kvm(const char *work_dir)
{
	unsigned char sector[512];
	char *img = str_printf("%s/kvm-probe.img", work_dir);
	char *drive = str_printf("file=%s,format=raw,if=floppy,readonly=on", img);
	char *out = NULL;
	int rc = -1;

	accel_probe_sector(sector);
	if (img && drive && file_write_atomic(img, sector, sizeof(sector), 0644) == 0) {
		/* The same machine and CPU model as real VMs (qemu_argv.c): on
		 * some nested hosts the boot sector runs but `-cpu host` cannot
		 * even set up its MSRs, so only the real model proves anything. */
		char *argv[] = { "qemu-system-x86_64", "-accel", "kvm", "-machine", "pc",
				 "-cpu", "host", "-nodefaults",
				 "-no-user-config", "-display", "none", "-m", "16",
				 "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
				 "-drive", drive, NULL };
		rc = proc_run(argv, PROBE_TIMEOUT_MS, &out, 4096, false);
		rc = (rc == PROBE_EXIT_CODE && out && strstr(out, "OK")) ? 0 : -1;
		file_remove(img);
	}
	free(out);
	free(img);
	free(drive);
	return rc;
}

const char *accel_resolve(const char *wanted, const char *work_dir, char **why)
{
	int fd;

	if (strcmp(wanted, "kvm") == 0) {
		*why = strdup("accelerator kvm as configured");
		return "kvm";
	}
	if (strcmp(wanted, "tcg") == 0) {
		*why = strdup("accelerator tcg as configured");
		return "tcg";
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		*why = strdup("auto: /dev/kvm unusable, using tcg");
		return "tcg";
	}
	close(fd);
	if (probe_kvm(work_dir) == 0) {
		/* VMs' QEMUs open /dev/kvm as their own uid, through its group. */
		struct stat st;
		if (stat("/dev/kvm", &st) == 0 && ((st.st_mode & 0060) != 0060 || st.st_gid == 0)) {
			*why = strdup("auto: KVM works but /dev/kvm is root's alone (VMs run unprivileged;"
				      " make it group read-write, e.g. root:kvm 0660), using tcg");
			return "tcg";
		}
		*why = strdup("auto: KVM probe guest ran, using kvm");
		return "kvm";
	}
	*why = strdup("auto: /dev/kvm opens but the probe guest did not run (nested host?), using tcg");
	return "tcg";
}
