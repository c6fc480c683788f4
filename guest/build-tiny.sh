#!/bin/bash
# Build the hackcloud tiny test guest: a Debian cloud kernel plus a
# busybox-static initramfs, booted directly by QEMU (-kernel/-initrd/-append).
#
#   guest/build-tiny.sh OUTDIR
#
# Outputs (each replaced atomically: a reader never sees a half-written file):
#   OUTDIR/vmlinuz      the kernel
#   OUTDIR/initrd.img   gzip'd newc cpio; guest/init becomes /init
#   OUTDIR/cmdline      default kernel command line (one line)
#   OUTDIR/manifest     package versions, module list and sha256 of the above
#
# Everything comes from Debian packages fetched with `apt-get download` and
# unpacked with `dpkg-deb -x`; nothing is installed on the host, so the host's
# own kernel and busybox do not leak into the image.  The same .deb files and
# the same guest/ tree give byte-identical outputs.
#
# Environment:
#   HC_GUEST_CACHE    download/unpack cache      (default OUTDIR/.cache)
#   HC_KERNEL_META    kernel metapackage         (default linux-image-cloud-amd64)
#   HC_KERNEL_DEB     use this kernel .deb instead of asking apt (pinning)
#   HC_BUSYBOX_DEB    use this busybox-static .deb instead of asking apt
#   SOURCE_DATE_EPOCH mtime of every file in the initramfs
#                     (default: mtime of vmlinuz inside the kernel package)
set -euo pipefail

# Modules the guest needs, by name; their dependencies are added
# automatically.  Anything built into the kernel is skipped.
#   virtio_pci/net/blk/console/scsi/rng  the devices hackcloud gives a VM
#   sr_mod, ata_piix, isofs              the NoCloud "cidata" CD-ROM (IDE on
#                                        the pc machine, or scsi-cd on
#                                        virtio-scsi; this kernel has no AHCI)
#   sd_mod                               disks on virtio-scsi
#   button, evdev                        ACPI power button -> /dev/input for acpid
#   virtio_balloon                       memory of a running VM resized (hc vm set)
WANTED_MODULES="virtio_pci virtio_net virtio_blk virtio_console virtio_scsi
virtio_rng sr_mod sd_mod ata_piix isofs button evdev virtio_balloon"

# quiet: keep kernel chatter off the console so the markers stand out (the
# kernel still prints warnings and worse).  panic=-1: reboot at once on a
# panic, which with QEMU's -no-reboot ends the VM instead of hanging it.
DEFAULT_CMDLINE="console=ttyS0 quiet panic=-1"

step() { printf '==> %s\n' "$*"; }
die() { printf 'build-tiny: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"

# depmod and friends live in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C
umask 022

for tool in apt-get apt-cache dpkg-deb depmod cpio gzip flock sha256sum; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
CACHE=${HC_GUEST_CACHE:-$OUT/.cache}
KERNEL_META=${HC_KERNEL_META:-linux-image-cloud-amd64}
mkdir -p "$CACHE/debs" "$CACHE/unpacked"

# Parallel test runs may share a cache; serialise them on it.
exec 9>"$CACHE/.lock"
flock 9

WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# apt's download sandbox user (_apt) cannot write into our root-owned
# temporary directory; as root, download directly instead of warning.
APT_OPTS=(-q)
[ "$(id -u)" -ne 0 ] || APT_OPTS+=(-o APT::Sandbox::User=root)

# Every apt-cache call re-reads the package lists (a second or more here),
# so ask for several packages at once.  apt_query PKG... adds the records
# of apt's candidates of PKG... to APT_INFO.
APT_INFO=""
apt_query() {
	APT_INFO+=$(apt-cache show --no-all-versions "$@" 2>/dev/null) || true
	APT_INFO+=$'\n\n'
}

# apt_field PKG FIELD: FIELD of apt's candidate of PKG, from APT_INFO.
apt_field() {
	printf '%s\n' "$APT_INFO" | awk -v pkg="$1" -v field="$2: " '
		BEGIN { RS = ""; FS = "\n" }
		$1 == "Package: " pkg {
			for (i = 2; i <= NF; i++)
				if (index($i, field) == 1) { print substr($i, length(field) + 1); exit }
		}'
}

# fetch PKG: sets DEB to a cached .deb of apt's candidate version of PKG
# (looked up in APT_INFO), downloading it only if that exact version is not
# cached yet.
fetch() {
	local pkg=$1 ver dl
	ver=$(apt_field "$pkg" Version)
	[ -n "$ver" ] || die "apt does not know package $pkg (apt-get update?)"
	DEB="$CACHE/debs/${pkg}_${ver//:/%3a}.deb"
	if [ -s "$DEB" ]; then
		step "using cached $pkg $ver"
		return
	fi
	step "downloading $pkg $ver"
	dl=$(mktemp -d "$WORK/dl.XXXXXX")
	(cd "$dl" && apt-get download "${APT_OPTS[@]}" "$pkg=$ver") ||
		die "apt-get download $pkg=$ver failed"
	mv "$dl"/*.deb "$DEB.tmp"
	mv "$DEB.tmp" "$DEB"
}

# unpack DEB: sets TREE to the unpacked contents of DEB (cached, keyed by the
# .deb's checksum so a replaced file is never confused with the old one).
unpack() {
	local deb=$1 sum
	sum=$(sha256sum "$deb" | cut -c1-16)
	TREE="$CACHE/unpacked/$(basename "$deb" .deb)-$sum"
	if [ -e "$TREE/.done" ]; then
		return
	fi
	step "unpacking $(basename "$deb")"
	rm -rf "$TREE"
	mkdir -p "$TREE"
	dpkg-deb -x "$deb" "$TREE"
	touch "$TREE/.done"
}

# ---- inputs ---------------------------------------------------------------

apt_query "$KERNEL_META" busybox-static
if [ -n "${HC_KERNEL_DEB:-}" ]; then
	KERNEL_DEB=$HC_KERNEL_DEB
	step "using kernel package $KERNEL_DEB"
else
	# The metapackage only depends on the real, ABI-versioned kernel
	# package; download that one.
	KERNEL_PKG=$(apt_field "$KERNEL_META" Depends | tr ',' '\n' |
		sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n 1)
	[ -n "$KERNEL_PKG" ] || die "cannot resolve $KERNEL_META to a kernel package (apt-get update?)"
	step "$KERNEL_META -> $KERNEL_PKG"
	apt_query "$KERNEL_PKG"
	fetch "$KERNEL_PKG"
	KERNEL_DEB=$DEB
fi
if [ -n "${HC_BUSYBOX_DEB:-}" ]; then
	BUSYBOX_DEB=$HC_BUSYBOX_DEB
	step "using busybox package $BUSYBOX_DEB"
else
	fetch busybox-static
	BUSYBOX_DEB=$DEB
fi

unpack "$KERNEL_DEB"
KTREE=$TREE
unpack "$BUSYBOX_DEB"
BTREE=$TREE

# Unpacked trees are big (the kernel's is ~100 MB) and cheap to recreate from
# the cached .debs: keep only the ones this build uses.
for tree in "$CACHE"/unpacked/*; do
	[ "$tree" = "$KTREE" ] || [ "$tree" = "$BTREE" ] || rm -rf "$tree"
done

set -- "$KTREE"/boot/vmlinuz-*
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	die "expected exactly one vmlinuz-* in $KERNEL_DEB"
fi
VMLINUZ=$1
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR="$KTREE/lib/modules/$KVER"
BUSYBOX="$BTREE/bin/busybox"
[ -x "$BUSYBOX" ] || die "no bin/busybox in $BUSYBOX_DEB"
step "kernel $KVER"

# The package ships no modules.dep (its postinst runs depmod on the target);
# generate it inside our unpacked copy.
if [ ! -s "$MODDIR/modules.dep" ]; then
	step "depmod $KVER"
	depmod -b "$KTREE" "$KVER"
fi

# Everything in the image gets this mtime: the kernel package's own build
# date is stable for a given input and still meaningful.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$VMLINUZ")}
export SOURCE_DATE_EPOCH

# ---- modules --------------------------------------------------------------

# Look up a module by name as modules.dep spells paths ("-" and "_" are
# interchangeable in module names, as modprobe treats them).
declare -A DEPS=() PATH_OF=() SEEN=()
while IFS= read -r line; do
	mod=${line%%:*}
	name=${mod##*/}
	name=${name%.ko*}
	name=${name//-/_}
	PATH_OF[$name]=$mod
	DEPS[$mod]=${line#*: }
	[ "${DEPS[$mod]}" != "$line" ] || DEPS[$mod]=""
done <"$MODDIR/modules.dep"

BUILTIN=" "
while IFS= read -r mod; do
	name=${mod##*/}
	name=${name%.ko*}
	BUILTIN+="${name//-/_} "
done <"$MODDIR/modules.builtin"

# Depth-first post-order walk: a module is listed after everything it
# depends on, which is the order insmod needs.
LOAD_ORDER=()
visit() {
	local mod=$1 dep
	[ -z "${SEEN[$mod]:-}" ] || return 0
	SEEN[$mod]=1
	for dep in ${DEPS[$mod]}; do
		visit "$dep"
	done
	LOAD_ORDER+=("$mod")
}
MOD_BUILTIN=()
for name in $WANTED_MODULES; do
	if [[ $BUILTIN == *" $name "* ]]; then
		MOD_BUILTIN+=("$name")
	elif [ -n "${PATH_OF[$name]:-}" ]; then
		visit "${PATH_OF[$name]}"
	else
		die "module $name is neither built in nor shipped by kernel $KVER"
	fi
done
MOD_LOADED=$(printf '%s\n' "${LOAD_ORDER[@]##*/}" | sed 's/\.ko$//' | tr '\n' ' ')
MOD_LOADED=${MOD_LOADED% }
step "modules built in: ${MOD_BUILTIN[*]:-(none)}"
step "modules to load, in order: $MOD_LOADED"

# ---- initramfs tree ---------------------------------------------------------

step "assembling initramfs"
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var,lib/modules}
ln -s ../run "$ROOT/var/run"

cp "$BUSYBOX" "$ROOT/bin/busybox"
# Applet links are generated on the build host from the static binary's own
# list, so the image needs no `busybox --install` at boot.
"$BUSYBOX" --list-full | while IFS= read -r applet; do
	case $applet in
	bin/busybox | linuxrc) continue ;;
	esac
	ln -s /bin/busybox "$ROOT/$applet"
done

cp "$HERE/init" "$ROOT/init"
cp -R "$HERE/rootfs/." "$ROOT/"

: >"$ROOT/lib/modules/load-order"
for mod in "${LOAD_ORDER[@]}"; do
	mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$mod")"
	cp "$MODDIR/$mod" "$ROOT/lib/modules/$KVER/$mod"
	echo "/lib/modules/$KVER/$mod" >>"$ROOT/lib/modules/load-order"
done

# Modes must not depend on the builder's umask or on how git checked the
# files out: executables 0755, other files 0644, directories 0755.
find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -type f -perm /0100 -exec chmod 0755 {} +
find "$ROOT" -type f ! -perm /0100 -exec chmod 0644 {} +
chmod 0700 "$ROOT/root"
chmod 1777 "$ROOT/tmp"
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# Sorted names, owner 0:0, renumbered inodes and no device numbers make the
# archive a function of the tree's content; gzip -n leaves out name and time.
(cd "$ROOT" && find . -mindepth 1 -print0 | sort -z |
	cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
	gzip -9 -n >"$WORK/initrd.img"

cp "$VMLINUZ" "$WORK/vmlinuz"
echo "$DEFAULT_CMDLINE" >"$WORK/cmdline"
chmod 0644 "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/cmdline"

{
	echo "kernel_package=$(dpkg-deb -f "$KERNEL_DEB" Package) $(dpkg-deb -f "$KERNEL_DEB" Version)"
	echo "kernel_release=$KVER"
	echo "busybox_package=$(dpkg-deb -f "$BUSYBOX_DEB" Package) $(dpkg-deb -f "$BUSYBOX_DEB" Version)"
	echo "modules_builtin=${MOD_BUILTIN[*]:-}"
	echo "modules_loaded=$MOD_LOADED"
	echo "source_date_epoch=$SOURCE_DATE_EPOCH"
	(cd "$WORK" && sha256sum vmlinuz initrd.img cmdline) | sed 's/^\([0-9a-f]*\)  \(.*\)$/sha256_\2=\1/'
} >"$WORK/manifest"
chmod 0644 "$WORK/manifest"

for f in vmlinuz initrd.img cmdline manifest; do
	touch -d "@$SOURCE_DATE_EPOCH" "$WORK/$f"
	mv -f "$WORK/$f" "$OUT/$f"
done

step "done: $OUT/vmlinuz $OUT/initrd.img ($(stat -c %s "$OUT/initrd.img") bytes)"
step "cmdline: $DEFAULT_CMDLINE"
