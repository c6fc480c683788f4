#!/bin/bash
# Boot the tiny guest built by build-tiny.sh under QEMU/TCG and check its
# contract: the probe mode, the boot and network markers, a DHCP lease from
# QEMU's user-mode network (slirp: nothing leaves the machine), and a clean
# poweroff on an ACPI power button press sent over QMP.
#
#   guest/smoke-test.sh OUTDIR
#
# Needs qemu-system-x86_64 and socat.  Always TCG: nested KVM can hang.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$1
CMDLINE=$(cat "$OUT/cmdline")
TMP=$(mktemp -d)
QEMU_PID=""
cleanup() {
	[ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	[ ! -f "$TMP/console.log" ] || sed 's/^/  | /' "$TMP/console.log" >&2
	exit 1
}

QEMU=(qemu-system-x86_64 -accel tcg -m 256 -display none -no-reboot
	-kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img")

# wait_for PATTERN SECONDS: until the console log has a line matching it.
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q -- "$1" "$TMP/console.log" 2>/dev/null && return 0
		kill -0 "$QEMU_PID" 2>/dev/null || fail "QEMU exited before '$1'"
		sleep 0.1
	done
	fail "no '$1' on the console within $2 s"
}

echo "--- probe mode"
start=$(date +%s%N)
timeout 60 "${QEMU[@]}" -append "$CMDLINE hc.probe=1" -serial "file:$TMP/console.log" ||
	fail "probe guest did not power off by itself"
grep -q HACKCLOUD-PROBE-OK "$TMP/console.log" || fail "no HACKCLOUD-PROBE-OK"
echo "ok: probe guest powered off after $(( ($(date +%s%N) - start) / 1000000 )) ms"

echo "--- full boot"
rm -f "$TMP/console.log"
start=$(date +%s%N)
"${QEMU[@]}" -append "$CMDLINE hc.hostname=smoke-1" -serial "file:$TMP/console.log" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
	-qmp "unix:$TMP/qmp.sock,server=on,wait=off" &
QEMU_PID=$!
wait_for HACKCLOUD-BOOT-OK 60
echo "ok: HACKCLOUD-BOOT-OK after $(( ($(date +%s%N) - start) / 1000000 )) ms"
wait_for HACKCLOUD-NET-UP 60
echo "ok: HACKCLOUD-NET-UP after $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep -q 'eth0 *inet 10\.0\.2\.15/24' "$TMP/console.log" || fail "eth0 has no DHCP lease"
grep -q 'eth0 *inet6 fec0::' "$TMP/console.log" || fail "eth0 has no SLAAC address"
echo "ok: eth0 has its DHCPv4 lease and a SLAAC address"
wait_for 'smoke-1:' 30
echo "ok: console shell is up, hostname from hc.hostname"

echo "--- ACPI power button"
printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"system_powerdown"}' |
	socat -t 2 - "UNIX-CONNECT:$TMP/qmp.sock" >/dev/null
start=$(date +%s%N)
for ((i = 0; i < 150; i++)); do
	kill -0 "$QEMU_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$QEMU_PID" 2>/dev/null && fail "guest ignored system_powerdown for 15 s"
wait "$QEMU_PID" || true
QEMU_PID=""
grep -q HACKCLOUD-POWEROFF "$TMP/console.log" || fail "no HACKCLOUD-POWEROFF"
echo "ok: guest powered off $(( ($(date +%s%N) - start) / 1000000 )) ms after system_powerdown"
echo "PASS"
