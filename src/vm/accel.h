/*
 * accel — choosing the accelerator.  "kvm" and "tcg" are taken as given;
 * "auto" does not trust /dev/kvm alone: on nested hosts KVM opens fine but
 * guests hang, so auto boots a one-sector probe guest under KVM, which must
 * print on the serial port and exit through isa-debug-exit within a few
 * seconds.  If it does not, TCG is used.
 */
#ifndef HC_ACCEL_H
#define HC_ACCEL_H

/* Returns "kvm" or "tcg" (static strings); why explains the choice (malloc'd). */
const char *accel_resolve(const char *wanted, const char *work_dir, char **why);

/* The probe boot sector (512 bytes), exposed for the unit test. */
void accel_probe_sector(unsigned char sector[512]);

#endif
