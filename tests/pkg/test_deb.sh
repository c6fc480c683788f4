#!/usr/bin/env bash
# test_deb — the Debian package works on a fresh Debian 12:
#
#   1. debootstrap bookworm (minbase) into a scratch root;
#   2. apt-get install ./hackcloud_*.deb there: apt resolves its Depends
#      against the Debian mirror and installs them;
#   3. the package's files are where they belong (binaries, unit, conffile,
#      manuals, completion), and the completion works in the chroot's bash;
#   4. the packaged hcd, with the packaged /etc/hackcloud/hcd.conf, runs in
#      a network namespace made for it; the packaged hc imports the tiny
#      guest, makes a network and a VM, and the guest boots (TCG) to its
#      marker with the chroot's QEMU and dnsmasq and reads its metadata;
#   5. the root boots with systemd (systemd-nspawn, in that namespace): the
#      package enabled hcd.service, which starts hcd under all of its
#      hardening; the VM runs again and reads its metadata, the firewall
#      is loaded, a raw disk imports (qemu-img, confined by hcd);
#      hcd, QEMU and dnsmasq carry the unit's bounding set,
#      no_new_privs and seccomp filter; `systemctl reload` reaches hcd;
#      `systemctl stop hcd` leaves the guest running and `start` adopts it;
#   6. everything goes: processes, namespaces, mounts, the scratch root.
#
#   tests/pkg/test_deb.sh DEB GUEST_DIR       (as root)
#
# Cache ($HC_BUILD_CACHE or /var/cache/hackcloud/build, as the image
# builder): the debootstrap tarball (refreshed after 14 days), the base
# root debootstrap made from it, and apt's downloaded .debs, so a rerun
# downloads only the package indexes and starts from an unpacked base.  The
# whole test runs in a private mount namespace: its mounts cannot leak and
# vanish with it even when it is killed.
if [ "$(id -u)" -eq 0 ] && [ -z "${HC_PKGTEST_NS:-}" ]; then
	exec env HC_PKGTEST_NS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi
set -euo pipefail
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin"

DEB=$(readlink -f "${1:?usage: test_deb.sh DEB GUEST_DIR}")
GUEST=$(readlink -f "${2:?usage: test_deb.sh DEB GUEST_DIR}")
SUITE=bookworm
[ "$(id -u)" -eq 0 ] || { echo "test_deb: needs root (debootstrap, chroot, namespaces)" >&2; exit 1; }
[ -f "$DEB" ] || { echo "test_deb: no package $DEB (make deb)" >&2; exit 1; }
for f in vmlinuz initrd.img cmdline; do
	[ -f "$GUEST/$f" ] || { echo "test_deb: no $GUEST/$f (make guest)" >&2; exit 1; }
done

# The mirror the host's apt uses, else Debian's CDN.
MIRROR=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
	/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MIRROR=${MIRROR%/}

CACHE=${HC_BUILD_CACHE:-/var/cache/hackcloud/build}/pkgtest
mkdir -p "$CACHE/apt/partial"
WORK=$(mktemp -d /var/tmp/hc-pkgtest.XXXXXX)
ROOT=$WORK/root
NS=hcdeb-$$
HCD_PID=
NSPAWN_PID=
CT_PID=   # the container's PID 1: killing it ends every process inside
step=0

say() { step=$((step + 1)); printf '[%d] (%ds) %s\n' "$step" "$SECONDS" "$*"; }
ok() { printf '  ok - %s\n' "$*"; }
fail() {
	echo "FAIL [test_deb]: $*" >&2
	if [ -n "$CT_PID" ]; then
		echo "---- journal of hcd.service (last 30 lines)" >&2
		ct journalctl -u hcd --no-pager -n 30 >&2
	elif [ -f "$WORK/hcd.log" ]; then
		echo "---- hcd.log (last 30 lines)" >&2
		tail -n 30 "$WORK/hcd.log" >&2
	fi
	exit 1
}

# Processes whose root is the scratch root: hcd, QEMU, dnsmasq.
chroot_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
	done
	true
}

cleanup() {
	local rc=$? p m
	set +e
	trap - EXIT INT TERM
	[ -n "$HCD_PID" ] && kill -9 "$HCD_PID" 2>/dev/null
	[ -n "$CT_PID" ] && kill -9 "$CT_PID" 2>/dev/null
	[ -n "$NSPAWN_PID" ] && { kill "$NSPAWN_PID"; wait "$NSPAWN_PID"; } 2>/dev/null
	for p in $(chroot_pids); do kill -9 "$p" 2>/dev/null; done
	for p in $(chroot_pids); do
		while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
	done
	ip netns del "$NS" 2>/dev/null
	awk -v d="$WORK" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
		while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	if awk -v d="$WORK" 'index($2, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
		echo "test_deb: still mounted under $WORK, left in place" >&2
	else
		rm -rf --one-file-system "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_root() {
	chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME=/root \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# A command inside the booted container (step 5).
ct() {
	nsenter -t "$CT_PID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME=/root "$@"
}

# wait_log RUN VM NEEDLE SECONDS: until `hc vm log VM` (through RUN: in_root
# or ct) holds NEEDLE.
wait_log() {
	local run=$1 vm=$2 needle=$3 i
	for i in $(seq 1 $(($4 * 2))); do
		$run hc vm log "$vm" 2>/dev/null | grep -qF "$needle" && return 0
		sleep 0.5
	done
	$run hc vm log "$vm" 2>/dev/null | tail -n 15 >&2
	fail "'$needle' did not appear in the serial log of $vm within $4 s"
}

# The firewall is loaded in the namespace.  (A fresh minbase has no
# /etc/protocols: a ruleset that names protocols would fail here.)
firewall_loaded() {
	ip netns exec "$NS" nft list tables 2>/dev/null | grep -qx "table inet hackcloud"
}

# One test at a time per cache: apt locks its archive, and the tarball is
# written once.
exec 9>"$CACHE/.lock"
flock 9

# ---- 1. a fresh Debian ---------------------------------------------------------

key=$(printf '%s\n' "$SUITE" minbase amd64 "$MIRROR" | sha256sum | cut -c1-12)
TARBALL=$CACHE/debootstrap-$SUITE-$key.tgz
if [ ! -s "$TARBALL" ] || [ -n "$(find "$TARBALL" -mtime +14)" ]; then
	say "debootstrap $SUITE (minbase) from $MIRROR into the cache"
	debootstrap --arch=amd64 --variant=minbase --make-tarball="$TARBALL.tmp" \
		"$SUITE" "$WORK/dl" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$WORK/debootstrap.log" >&2; rm -f "$TARBALL.tmp"; fail "debootstrap --make-tarball"; }
	mv -f "$TARBALL.tmp" "$TARBALL"
	rm -rf "$WORK/dl"
fi
# debootstrap's second stage (dpkg installing the base, a minute or more)
# runs once per tarball; its result is kept as a plain tar of the root.
BASE=${TARBALL%.tgz}.root.tar
if [ ! -s "$BASE" ] || [ "$TARBALL" -nt "$BASE" ]; then
	say "debootstrap $SUITE (minbase) second stage into the cache"
	mkdir -p "$WORK/base"
	debootstrap --arch=amd64 --variant=minbase --unpack-tarball="$TARBALL" \
		"$SUITE" "$WORK/base" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$WORK/debootstrap.log" >&2; fail "debootstrap --unpack-tarball"; }
	tar -C "$WORK/base" --numeric-owner --xattrs -cf "$BASE.tmp" .
	mv -f "$BASE.tmp" "$BASE"
	rm -rf --one-file-system "$WORK/base"
fi
say "fresh $SUITE root from $(basename "$BASE")"
mkdir -p "$ROOT"
tar -C "$ROOT" --numeric-owner --xattrs -xpf "$BASE"

# What the chroot needs from the kernel (in this private mount namespace):
# /proc, a /dev with the pseudo devices and /dev/net/tun (taps), apt's
# download cache.  No /dev/kvm: hcd's `auto` settles on TCG at once.
mount -t proc proc "$ROOT/proc"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$ROOT/dev"
mkdir -p "$ROOT/dev/net" "$ROOT/dev/pts"
for d in null zero full random urandom tty net/tun; do
	touch "$ROOT/dev/$d"
	mount --bind "/dev/$d" "$ROOT/dev/$d"
done
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
ln -s pts/ptmx "$ROOT/dev/ptmx"
ln -s /proc/self/fd "$ROOT/dev/fd"   # bash's <(…), used by the completion
mount --bind "$CACHE/apt" "$ROOT/var/cache/apt/archives"
# No service may start from a maintainer script (there is no init anyway).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# ---- 2. the package, its Depends from the mirror ---------------------------------

say "apt-get install ./$(basename "$DEB") (Depends from $MIRROR)"
cp "$DEB" "$ROOT/tmp/"
APT=(apt-get -y -o Dpkg::Options::=--force-unsafe-io -o APT::Keep-Downloaded-Packages=true)
in_root apt-get update >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; fail "apt-get update"; }
# The init a real system has, first: the package's scripts then enable the
# unit as they would there (step 5 boots it).
in_root "${APT[@]}" install --no-install-recommends systemd systemd-sysv dbus >>"$WORK/apt.log" 2>&1 ||
	{ tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install systemd"; }
in_root "${APT[@]}" install --no-install-recommends "/tmp/$(basename "$DEB")" >>"$WORK/apt.log" 2>&1 ||
	{ tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install of the package"; }
in_root apt-get autoclean >/dev/null 2>&1 || true
[ "$(in_root dpkg-query -W -f '${Status}' hackcloud)" = "install ok installed" ] ||
	fail "hackcloud is not installed"
ok "installed with $(in_root dpkg-query -W -f '${binary:Package}\n' | wc -l) packages in the root"

# ---- 3. the files ---------------------------------------------------------------------

say "the package's files"
for f in /usr/bin/hcd /usr/bin/hc /lib/systemd/system/hcd.service /etc/hackcloud/hcd.conf \
	/usr/share/man/man1/hc.1.gz /usr/share/man/man8/hcd.8.gz /usr/share/man/man5/hcd.conf.5.gz \
	/usr/share/bash-completion/completions/hc /usr/share/hackcloud/guest/build-tiny.sh \
	/usr/share/hackcloud/builder/recipes/debian.sh /usr/share/hackcloud/openapi.json; do
	[ -e "$ROOT$f" ] || fail "$f is missing"
done
grep -qx /etc/hackcloud/hcd.conf "$ROOT/var/lib/dpkg/info/hackcloud.conffiles" ||
	fail "/etc/hackcloud/hcd.conf is not a conffile"
grep -q '^ExecStart=/usr/bin/hcd$' "$ROOT/lib/systemd/system/hcd.service" ||
	fail "the unit does not start /usr/bin/hcd"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/hcd.service" ] ||
	fail "the package did not enable hcd.service"
in_root systemd-analyze verify --man=no /lib/systemd/system/hcd.service >"$WORK/verify.log" 2>&1 ||
	{ cat "$WORK/verify.log" >&2; fail "systemd-analyze verify hcd.service"; }
[ "$(in_root hc --version)" = "hc $(dpkg-deb -f "$DEB" Version)" ] || fail "hc --version is not the package's"
got=$(in_root bash -c 'source /usr/share/bash-completion/completions/hc
	COMP_WORDS=(hc vm cr); COMP_CWORD=2; _hc; echo "${COMPREPLY[*]}"')
[ "$got" = create ] || fail "the completion of 'hc vm cr' is '$got'"
ok "binaries, unit (enabled, verified), conffile, manuals, completion ('hc vm cr' → create)"

# ---- 4. hcd from the package boots the tiny guest -------------------------------------

say "hcd with the packaged hcd.conf in network namespace $NS"
ip netns add "$NS"
ip -n "$NS" link set lo up
# `ip netns exec` gives hcd a mount namespace of its own: sysfs there shows
# the new network namespace's links.
ip netns exec "$NS" sh -c 'mount -t sysfs sysfs "$1/sys" && exec chroot "$1" \
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/bin/hcd --config /etc/hackcloud/hcd.conf' \
	sh "$ROOT" >"$WORK/hcd.log" 2>&1 &
HCD_PID=$!
for i in $(seq 1 150); do
	in_root hc info >/dev/null 2>&1 && break
	kill -0 "$HCD_PID" 2>/dev/null || fail "hcd exited during start"
	sleep 0.2
done
in_root hc info >/dev/null 2>&1 || fail "hcd did not answer on /var/lib/hackcloud/api.sock"
accel=$(in_root hc --json info | jq -r .accel)
[ "$accel" = tcg ] || fail "accelerator '$accel', expected tcg (no /dev/kvm in the root)"
ok "hcd answers (accel $accel)"

mkdir -p "$ROOT/tmp/guest"
cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/cmdline" "$ROOT/tmp/guest/"
in_root hc image import tiny --kernel /tmp/guest/vmlinuz --initrd /tmp/guest/initrd.img \
	--cmdline "$(cat "$GUEST/cmdline")" >/dev/null || fail "hc image import"
in_root hc net create lan --ipv6 fd00:deb:1::/64 --ipv4 10.98.0.0/24 >/dev/null || fail "hc net create"
in_root hc vm create t --image tiny --net lan >/dev/null || fail "hc vm create"
VMID=$(in_root hc --json vm show t | jq -r .id)
NETID=$(in_root hc --json net show lan | jq -r .id)
wait_log in_root t HACKCLOUD-BOOT-OK 180
wait_log in_root t "HACKCLOUD-CONTEXT instance-id=" 120
firewall_loaded || fail "no hackcloud table in the namespace's nftables"
exes=$(for p in $(chroot_pids); do readlink "/proc/$p/exe"; done | sort -u)
grep -qx "$ROOT/usr/bin/qemu-system-x86_64" <<<"$exes" || fail "no QEMU of the root runs: $exes"
grep -qx "$ROOT/usr/sbin/dnsmasq" <<<"$exes" || fail "no dnsmasq of the root runs: $exes"
ok "the tiny guest booted under the root's QEMU, got its address from the root's dnsmasq and read its metadata; firewall loaded"

kill -TERM "$HCD_PID"
rc=0
wait "$HCD_PID" || rc=$?
HCD_PID=
[ "$rc" -eq 0 ] || fail "hcd exited with $rc on SIGTERM"
# The guest outlived hcd; step 5 starts from the store alone, with a fresh
# serial log to look for the guest's second boot in.
for p in $(chroot_pids); do kill -9 "$p"; done
for p in $(chroot_pids); do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
rm -f "$ROOT/var/lib/hackcloud/vms/$VMID/serial.log"
ok "hcd stopped on SIGTERM"

# ---- 5. hcd.service under systemd ---------------------------------------------------------

say "boot the root with systemd (systemd-nspawn) in $NS: hcd.service and its hardening"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn missing (systemd-container)"
awk -v d="$ROOT" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r umount
rm -f "$ROOT/usr/sbin/policy-rc.d"
# An uplink, set the way an operator would (in the packaged hcd.conf): hcd
# then turns on forwarding, a write to /proc/sys/net, which the unit keeps
# writable under ProtectKernelTunables.
ip -n "$NS" link add up0 type veth peer name up0p   # (no dummy module everywhere)
ip -n "$NS" link set up0 up
sed -i 's/^#uplink =$/uplink = up0/' "$ROOT/etc/hackcloud/hcd.conf"
grep -qx 'uplink = up0' "$ROOT/etc/hackcloud/hcd.conf" || fail "no '#uplink =' line in the packaged hcd.conf"
[ "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || fail "forwarding already on in $NS"
# CAP_NET_ADMIN: nspawn withholds it unless asked, even in a namespace of
# the container's own.  No machine registration and no scope: there may be
# no systemd on this host.
systemd-nspawn --quiet -D "$ROOT" -b --register=no --keep-unit --console=passive \
	--network-namespace-path="/run/netns/$NS" --capability=CAP_NET_ADMIN >"$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!
# The container's init: a "systemd" below nspawn that is PID 1 of its own
# PID namespace (the last NSpid) — not one of its children, which carry the
# same name between their fork and their exec.
for i in $(seq 1 100); do
	for p in $(pgrep -x systemd); do
		[ "$(awk '/^NSpid:/ { print $NF }' "/proc/$p/status" 2>/dev/null)" = 1 ] || continue
		q=$p
		while [ "$q" -gt 1 ] && [ "$q" != "$NSPAWN_PID" ]; do q=$(awk '{ print $4 }' "/proc/$q/stat" 2>/dev/null || echo 1); done
		[ "$q" = "$NSPAWN_PID" ] && CT_PID=$p
	done
	[ -n "$CT_PID" ] && break
	kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$WORK/nspawn.log" >&2; fail "systemd-nspawn exited"; }
	sleep 0.1
done
[ -n "$CT_PID" ] || fail "no systemd came up in the container"
# Until its manager answers on the bus, then until boot has finished.
for i in $(seq 1 100); do
	[ -n "$(ct systemctl is-system-running 2>/dev/null)" ] && break
	sleep 0.2
done
state=$(ct timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
case $state in
running | degraded) ;;
*) fail "the container's systemd (pid $CT_PID) is '$state'; nspawn: $(tail -n 5 "$WORK/nspawn.log" | tr '\n' ' ')" ;;
esac
[ "$(ct systemctl is-active hcd)" = active ] || fail "hcd.service is not active after boot"
main=$(ct systemctl show -P MainPID hcd)
ok "systemd $state; hcd.service active (Type=notify: READY=1 seen), main PID $main in the container"

wait_log ct t "HACKCLOUD-CONTEXT instance-id=" 240
firewall_loaded || fail "no hackcloud table in the namespace's nftables under the unit"
[ "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)" = 1 ] ||
	fail "hcd.service did not turn on forwarding for its uplink (/proc/sys/net not writable?)"
ok "the VM runs again under hcd.service and reads its metadata; firewall loaded; forwarding on for the uplink"

# What the unit gives hcd, its children inherit: the bounding set,
# no_new_privs, the seccomp filter.
status() { ct cat "/proc/$1/status" | awk -v k="$2:" '$1 == k { print $2 }'; }
qemu=$(ct cat "/var/lib/hackcloud/vms/$VMID/qemu.pid")
dnsmasq=$(ct cat "/var/lib/hackcloud/net/$NETID/dnsmasq.pid")
bound=$(status "$main" CapBnd)
[ "$bound" != "$(status 1 CapBnd)" ] ||
	fail "hcd has the container's whole bounding set: CapabilityBoundingSet= not applied"
for p in "$main" "$qemu" "$dnsmasq"; do
	[ "$(status "$p" CapBnd)" = "$bound" ] || fail "process $p has bounding set $(status "$p" CapBnd), hcd $bound"
	[ "$(status "$p" NoNewPrivs)" = 1 ] || fail "process $p runs without no_new_privs"
	[ "$(status "$p" Seccomp)" = 2 ] || fail "process $p runs without a seccomp filter"
done
ok "hcd, QEMU ($qemu) and dnsmasq ($dnsmasq): bounding set $bound, no_new_privs, seccomp"

# A disk image: hcd checks it with qemu-img run as image_user, with
# resource limits and no_new_privs, all under the unit's filters.
ct truncate -s 4M /root/blank.raw
ct hc image import blank --disk /root/blank.raw >/dev/null || fail "hc image import --disk under the unit"
[ "$(ct hc --json image show blank | jq -r .state)" = ready ] || fail "the disk image is not ready"
ok "a raw disk imported (qemu-img confined under the unit)"

ct systemctl reload hcd || fail "systemctl reload hcd"
for i in $(seq 1 50); do
	ct journalctl -u hcd --no-pager | grep -q "configuration reloaded" && break
	sleep 0.1
done
ct journalctl -u hcd --no-pager | grep -q "configuration reloaded" || fail "hcd did not reload on systemctl reload"
ok "systemctl reload hcd: hcd reloaded its configuration"

ct systemctl stop hcd
[ "$(ct systemctl is-active hcd)" != active ] || fail "hcd.service still active after stop"
ct test -d "/proc/$qemu" || fail "systemctl stop hcd took the guest's QEMU with it"
ct systemctl start hcd || fail "systemctl start hcd"
for i in $(seq 1 60); do
	[ "$(ct hc --json vm show t 2>/dev/null | jq -r .state)" = running ] && break
	sleep 0.5
done
[ "$(ct hc --json vm show t | jq -r .state)" = running ] || fail "the VM is not running after the restart"
[ "$(ct cat "/var/lib/hackcloud/vms/$VMID/qemu.pid")" = "$qemu" ] && ct test -d "/proc/$qemu" ||
	fail "the restarted hcd started a new QEMU instead of adopting $qemu"
ok "systemctl stop hcd leaves QEMU $qemu running; start adopts it"

if ct journalctl -u hcd --no-pager | grep -E "not permitted|denied|Permission|warn:|error:" |
	grep -v "no upstream servers" >"$WORK/complaints"; then
	cat "$WORK/complaints" >&2
	fail "hcd.service logged refusals or warnings (above)"
fi
ok "no refusal or warning in hcd.service's journal"

say "teardown"
kill "$NSPAWN_PID"
wait "$NSPAWN_PID" 2>/dev/null || true
NSPAWN_PID= CT_PID=
ok "the container powered off"
echo "test_deb: PASS"
