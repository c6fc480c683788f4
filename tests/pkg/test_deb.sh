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
#      marker with the chroot's QEMU and dnsmasq;
#   5. everything goes: processes, namespace, mounts, the scratch root.
#
#   tests/pkg/test_deb.sh DEB GUEST_DIR       (as root)
#
# Cache ($HC_BUILD_CACHE or /var/cache/hackcloud/build, as the image
# builder): the debootstrap tarball (refreshed after 14 days) and apt's
# downloaded .debs, so a rerun downloads only the package indexes.  The
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
step=0

say() { step=$((step + 1)); printf '[%d] %s\n' "$step" "$*"; }
ok() { printf '  ok - %s\n' "$*"; }
fail() {
	echo "FAIL [test_deb]: $*" >&2
	if [ -f "$WORK/hcd.log" ]; then
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
say "fresh $SUITE root from $(basename "$TARBALL")"
mkdir -p "$ROOT"
debootstrap --arch=amd64 --variant=minbase --unpack-tarball="$TARBALL" \
	"$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
	{ tail -n 20 "$WORK/debootstrap.log" >&2; fail "debootstrap --unpack-tarball"; }

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
	/usr/share/hackcloud/builder/recipes/debian.sh; do
	[ -e "$ROOT$f" ] || fail "$f is missing"
done
grep -qx /etc/hackcloud/hcd.conf "$ROOT/var/lib/dpkg/info/hackcloud.conffiles" ||
	fail "/etc/hackcloud/hcd.conf is not a conffile"
grep -q '^ExecStart=/usr/bin/hcd$' "$ROOT/lib/systemd/system/hcd.service" ||
	fail "the unit does not start /usr/bin/hcd"
[ "$(in_root hc --version)" = "hc $(dpkg-deb -f "$DEB" Version)" ] || fail "hc --version is not the package's"
got=$(in_root bash -c 'source /usr/share/bash-completion/completions/hc
	COMP_WORDS=(hc vm cr); COMP_CWORD=2; _hc; echo "${COMPREPLY[*]}"')
[ "$got" = create ] || fail "the completion of 'hc vm cr' is '$got'"
ok "binaries, unit, conffile, manuals, completion ('hc vm cr' → create)"

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
for i in $(seq 1 360); do
	in_root hc vm log t 2>/dev/null | grep -q HACKCLOUD-BOOT-OK && break
	sleep 0.5
done
in_root hc vm log t | grep -q HACKCLOUD-BOOT-OK || {
	in_root hc vm log t | tail -n 15 >&2
	fail "the guest did not print HACKCLOUD-BOOT-OK within 180 s"
}
exes=$(for p in $(chroot_pids); do readlink "/proc/$p/exe"; done | sort -u)
grep -qx "$ROOT/usr/bin/qemu-system-x86_64" <<<"$exes" || fail "no QEMU of the root runs: $exes"
grep -qx "$ROOT/usr/sbin/dnsmasq" <<<"$exes" || fail "no dnsmasq of the root runs: $exes"
ok "the tiny guest booted to HACKCLOUD-BOOT-OK under the root's QEMU, with its dnsmasq"

say "teardown"
kill -TERM "$HCD_PID"
rc=0
wait "$HCD_PID" || rc=$?
HCD_PID=
[ "$rc" -eq 0 ] || fail "hcd exited with $rc on SIGTERM"
ok "hcd stopped on SIGTERM (the rest goes in the cleanup)"
echo "test_deb: PASS"
