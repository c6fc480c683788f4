#!/usr/bin/env bash
# The whole life of a VM on a real QEMU (TCG) guest: import the tiny image,
# create, boot marker in the serial log, stop through ACPI, start again,
# a forced stop (no ACPI), delete — at once, also of a guest that is still
# booting — and afterwards no process, tap or file of it remains.
# Also: a disk image boots by firmware from a qcow2 overlay that leaves the
# image untouched.
. "$(dirname "$0")/lib.sh"

# --accel auto must pick an accelerator that really runs guests: where
# KVM opens but hangs (nested hosts) its probe falls back to TCG.
# A long stop_timeout: a delete or a forced stop that waited for the
# guest's ACPI shutdown would be caught by the waits below.
hcd_start --accel auto --stop-timeout=600
accel=$(hc --json info | jq -r .accel)
[ "$accel" = kvm ] || [ "$accel" = tcg ] || fail "auto resolved to '$accel'"
ok "--accel auto resolved to $accel"
import_tiny tiny
[ "$(hc --json image show tiny | jq -r .boot)" = kernel ] || fail "tiny is not a kernel image"
[ "$(hc --json image show tiny | jq -r .state)" = ready ] || fail "tiny is not ready"
ok "kernel image imported"

hc net create lan --ipv6 fd00:e2e:1::/64 --ipv4 10.77.0.0/24 >/dev/null
hc vm create web --image tiny --net lan --memory 256 >/dev/null
id=$(vm_field web .id)
[[ "$id" =~ ^[0-9a-f]{10}$ ]] || fail "VM id '$id' is not 10 hex digits"
mac=$(vm_field web '.nics[0].mac')
tap=$(vm_field web '.nics[0].ifname')
[[ "$mac" =~ ^02:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$ ]] || fail "bad MAC $mac"
[ "$tap" = "v${mac//:/}" ] || fail "tap $tap does not embed MAC $mac"
[ "$(vm_field web '.nics[0].ipv4')" = 10.77.0.2 ] || fail "first NIC did not get 10.77.0.2"
ok "VM created: id $id, MAC $mac, tap $tap"

wait_state web running 60
wait_log web HACKCLOUD-BOOT-OK 120
ok "guest booted (marker in hc vm log)"
tap_exists "$tap" || fail "tap $tap missing while running"
nsexec ip -o link show "$tap" | grep -q "master b000001" || fail "tap not enslaved to b000001"
[ -n "$(our_qemu_pids)" ] || fail "no QEMU process"
pid1=$(our_qemu_pids)
grep -q -- "-sandbox" "/proc/$pid1/cmdline" || fail "QEMU runs without -sandbox"
ok "tap enslaved, QEMU running sandboxed"

# The interactive console, driven through a pipe: the guest's shell
# evaluates the arithmetic, so the answer can only come from the guest.
# The shell may still be starting right after the boot marker: retry.
for attempt in $(seq 1 10); do
	out=$(printf 'echo console-$((6*7))\n' | timeout 30 "$HC_BIN" vm console web) || true
	grep -q console-42 <<<"$out" && break
	sleep 2
done
grep -q console-42 <<<"$out" || fail "console did not answer: ${out:0:300}"
grep -q console-42 < <(hc vm log web) || fail "console output missing from the serial log"
ok "hc vm console reaches the guest's shell; the log keeps what it printed"

# A guest that prints without end must not fill the disk: past 16 MiB the
# agent cuts the log down (the resync runs every 5 s in these tests).
head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' x >>"$T_STATE/vms/$id/serial.log"
for i in $(seq 1 40); do
	[ "$(stat -c %s "$T_STATE/vms/$id/serial.log")" -le $((16 * 1024 * 1024)) ] && break
	sleep 0.5
done
[ "$(stat -c %s "$T_STATE/vms/$id/serial.log")" -le $((16 * 1024 * 1024)) ] || fail "serial.log was not capped"
printf 'echo after-cap-$((6*7))\n' | timeout 30 "$HC_BIN" vm console web >/dev/null || true
for i in $(seq 1 20); do hc vm log web | grep -q after-cap-42 && break; sleep 0.5; done
hc vm log web | grep -q after-cap-42 || fail "the log stopped growing after the cap"
ok "serial.log capped at 16 MiB and still appended to"

hc vm stop web >/dev/null
wait_state web stopped 60
wait_log web HACKCLOUD-POWEROFF 5
[ -z "$(our_qemu_pids)" ] || fail "QEMU still running after stop"
tap_exists "$tap" && fail "tap $tap left after stop"
ok "stopped by ACPI powerdown; tap removed"

boots() { hc vm log web --tail 16777216 | grep -c HACKCLOUD-BOOT-OK || true; }
# wait_boots_past N WHY: until the log holds more than N boot markers.
wait_boots_past() {
	local i
	for i in $(seq 1 240); do
		[ "$(boots)" -gt "$1" ] && return 0
		sleep 0.5
	done
	fail "$2"
}
n0=$(boots)
hc vm start web >/dev/null
wait_state web running 60
wait_boots_past "$n0" "no second boot after start"
ok "started again (second boot in the log)"

n1=$(boots)
hc vm reboot web >/dev/null
wait_boots_past "$n1" "no third boot after reboot"
ok "rebooted"

# A forced stop skips ACPI: the guest never sees the power button.
offs() { hc vm log web --tail 16777216 | grep -c HACKCLOUD-POWEROFF || true; }
api POST "/v1/vms/web/stop" '{"force": "yes"}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "stop with force \"yes\" answered $API_STATUS, not 400"
[ "$(vm_field web .desired)" = running ] || fail "a refused stop changed the VM"
off0=$(offs)
hc vm stop --force web >/dev/null
wait_state web stopped 60
[ -z "$(our_qemu_pids)" ] || fail "QEMU still running after a forced stop"
tap_exists "$tap" && fail "tap $tap left after a forced stop"
[ "$(offs)" = "$off0" ] || fail "the guest saw ACPI on a forced stop"
grep -q "vm web: forced stop: quitting QEMU now" "$T_DIR/hcd.log" || fail "no forced stop in hcd.log"
ok "stop --force: QEMU quit at once, no ACPI; tap removed"

n2=$(boots)
hc vm start web >/dev/null
wait_state web running 60
wait_boots_past "$n2" "no boot after the forced stop"
# A later plain stop is not forced again: start took the force back.
[ "$(hc --json vm show web | jq -r .desired)" = running ] || fail "not desired running"

hc vm delete web >/dev/null
wait_gone web 60
wait_purged "$id" 60
[ -z "$(our_qemu_pids)" ] || fail "QEMU still running after delete"
tap_exists "$tap" && fail "tap left after delete"
[ -e "$T_STATE/vms/$id" ] && fail "VM directory left after delete"
grep -q "vm web: deleted: killing QEMU now" "$T_DIR/hcd.log" || fail "the delete did not kill QEMU at once"
ok "deleted at once (no ACPI): no process, tap or files remain"

# A guest that is still booting ignores ACPI: a delete that asked it
# would wait for stop_timeout (600 s).  It must not.
hc vm create early --image tiny --net lan --memory 256 >/dev/null
wait_state early running 60
eid=$(vm_field early .id)
etap=$(vm_field early '.nics[0].ifname')
hc vm delete early >/dev/null
wait_purged "$eid" 60
tap_exists "$etap" && fail "tap of the booting VM left after delete"
ok "a booting guest is deleted at once, not after stop_timeout"

# A disk image: one boot sector that prints a marker on COM1 and halts.
# Only firmware (SeaBIOS) booting it from the VM's overlay can print it.
disk=$T_DIR/boot.img
{
	# xor ax, ax; mov ds, ax; mov si, 0x7c18; mov dx, 0x3f8
	# loop: lodsb; test al, al; jz done; out dx, al; jmp loop
	# done: hlt; jmp done; 3 x nop (the message starts at offset 0x18)
	printf '\x31\xc0\x8e\xd8\xbe\x18\x7c\xba\xf8\x03\xac\x84\xc0\x74\x03\xee\xeb\xf8\xf4\xeb\xfd\x90\x90\x90'
	printf 'HACKCLOUD-DISK-BOOT-OK\n\0'
} >"$disk"
truncate -s 510 "$disk"
printf '\x55\xaa' >>"$disk"
truncate -s 1M "$disk"
sum_before=$(sha256sum "$disk" | cut -d' ' -f1)
hc image import bootsector --disk "$disk" >/dev/null
[ "$(hc --json image show bootsector | jq -r .format)" = raw ] || fail "disk format not detected as raw"
[ "$(hc --json image show bootsector | jq -r .sha256)" = "$sum_before" ] || fail "image sha256 differs from file"
hc vm create diskvm --image bootsector --memory 64 >/dev/null
wait_log diskvm HACKCLOUD-DISK-BOOT-OK 60
did=$(vm_field diskvm .id)
qemu-img info -U "$T_STATE/vms/$did/disk.qcow2" | grep -q "backing file" || fail "VM disk is not an overlay"
stored=$(hc --json image show bootsector | jq -r .sha256)
[ "$(sha256sum "$T_STATE/images/$stored/disk" | cut -d' ' -f1)" = "$sum_before" ] || fail "base image was modified"
ok "disk image booted by firmware from a qcow2 overlay; base unchanged"
hc vm delete diskvm >/dev/null
wait_gone diskvm 60
wait_purged "$did" 60
hc image delete bootsector >/dev/null
[ -e "$T_STATE/images/$stored" ] && fail "image files left after delete"
ok "disk VM and image deleted"

hcd_stop
[ -e "$T_STATE/api.sock" ] && fail "api.sock left after SIGTERM"
ok "hcd stopped cleanly on SIGTERM"
