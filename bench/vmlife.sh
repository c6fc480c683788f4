#!/usr/bin/env bash
# Create → running and delete → gone, side by side (issue 12 §1, §2): raw
# QEMU (the floor), libvirt's virsh and hackcloud, in interleaved rounds on
# the same tiny TCG guest; medians and ratios are printed (bench/vmlife.py
# says what each figure measures).  Run as root:
#   bench/deps.sh && bench/vmlife.sh BUILD_DIR GUEST_DIR [ROUNDS]
# VMLIFE_SETTLE_S (default 0.5): the pause before each measured step.
# VMLIFE_JSON=FILE keeps every sample (the run's directory goes at exit).
# Everything runs in a network namespace of its own; a libvirtd (and its
# virtlogd) is started there for the run when none is running.
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
ROUNDS=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)

command -v virsh >/dev/null || { echo "vmlife: virsh missing: run bench/deps.sh" >&2; exit 1; }
dir=$(mktemp -d /tmp/hc-vmlife.XXXXXX)
chmod 711 "$dir"   # dnsmasq, QEMU and libvirt's QEMU run as their own users
ns=hcvmlife-$$
state=$dir/state
hcd_pid= started_libvirt=
cleanup() {
	set +e
	[ -n "$hcd_pid" ] && kill -9 "$hcd_pid"
	for p in $(pgrep -f "qemu-system-x86_64.*$dir"); do kill -9 "$p"; done
	if [ -n "$started_libvirt" ]; then
		for d in $(virsh -q list --name 2>/dev/null | grep '^hcbench-'); do virsh -q destroy "$d"; done
		ip netns exec "$ns" virsh -q net-destroy default >/dev/null 2>&1
		for f in /run/libvirtd.pid /run/virtlogd.pid; do [ -f "$f" ] && kill "$(cat "$f")"; done
	fi
	for p in $(pgrep -f "dnsmasq.*$state"); do kill -9 "$p"; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$state"

if ! virsh -q -c qemu:///system version >/dev/null 2>&1; then
	ip netns exec "$ns" virtlogd -d
	# /dev/kvm hidden behind /dev/null (a mount namespace of its own): where
	# KVM is root's alone, libvirt probes QEMU with privileges (KVM found)
	# but checks the device as its QEMU user (KVM unusable), so it throws
	# its capability cache away and probes QEMU anew (tens of seconds) on
	# every domain start.  Domains here are type 'qemu' (TCG) anyway.
	ip netns exec "$ns" unshare -m sh -c '[ ! -e /dev/kvm ] || mount --bind /dev/null /dev/kvm; exec libvirtd -d'
	started_libvirt=1
	for _ in $(seq 1 100); do virsh -q -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
	# Its default network is no part of the comparison.
	virsh -q net-destroy default >/dev/null 2>&1 || true
fi

ip netns exec "$ns" "$BUILD/hcd" --state-dir "$state" --accel tcg --log-level=warn \
	>"$dir/hcd.log" 2>&1 &
hcd_pid=$!
export HC_URL=unix:$state/api.sock
for _ in $(seq 1 100); do "$BUILD/hc" info >/dev/null 2>&1 && break; sleep 0.1; done
"$BUILD/hc" image import tiny --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
	--cmdline "$(cat "$GUEST/cmdline")" >/dev/null
"$BUILD/hc" net create bench --ipv6 fd00:be:2::/64 --ipv4 10.89.0.0/16 >/dev/null

echo "== vmlife: $ROUNDS interleaved rounds (raw QEMU, virsh, hackcloud), tiny guest, TCG"
echo "   $(nproc) CPUs, $(awk '/MemTotal/ {printf "%d MiB", $2/1024}' /proc/meminfo), $(uname -r)," \
	"$(qemu-system-x86_64 --version | head -1), libvirt $(virsh -q -c qemu:///system version --daemon 2>/dev/null | awk '/daemon/ {print $NF}')"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec "$ns" python3 "$here/vmlife.py" "$state" "$GUEST" "$dir" "$ROUNDS"
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "${VMLIFE_JSON:-}" ] || cp "$dir/vmlife.json" "$VMLIFE_JSON"
