#!/usr/bin/env bash
# Recipe "debian": a Debian cloud VM image — debootstrap'ed from Debian's
# mirror, with the cloud kernel, systemd, ifupdown, cloud-init and
# openssh-server — packed as a partitioned qcow2 disk that SeaBIOS boots
# through GRUB, like any downloaded cloud image.
#
#   builder/recipes/debian.sh [--suite S] [--packages P1,P2] [--mirror URL]
#                             [--size SIZE] OUTDIR
#
#   --suite     Debian suite (default bookworm)
#   --packages  packages beyond the base system (default cloud-init,openssh-server)
#   --mirror    Debian mirror (default: the host's apt source, else deb.debian.org)
#   --size      virtual size of the disk (default 2G; a VM's --disk-size grows it,
#               and cloud-init's growpart/resizefs grow the root filesystem)
#
# Leaves OUTDIR/disk.qcow2 (a disk image) and OUTDIR/manifest.
#
# Why a disk and not a kernel image with an ext4 root: hackcloud's kernel
# images carry no root disk, and a firmware-booted disk keeps working after
# the guest upgrades its own kernel (GRUB boots the /vmlinuz symlink).
#
# How the guest finds its data (cloud-init 22.x): ds-identify picks NoCloud
# when the `cidata` CD-ROM of `hc vm create --config-drive` is attached, and
# otherwise the OpenStack data source at 169.254.169.254, since hackcloud's
# SMBIOS product says "OpenStack Nova".  EC2 stays as a fallback: hackcloud
# does not claim to be AWS, so EC2 is only a "maybe" that needs
# strict_id: false and the maybe=all policy.
#
# Runs as root (debootstrap, chroot) inside a private mount namespace: the
# mounts the chroot needs cannot leak into the host and vanish with the
# recipe even when it is killed.  Everything is built in a mktemp -d work
# dir, removed at the end whatever happens; the host's root filesystem is
# only read.  The filesystem, the partition table and the qcow2 are made
# from files (mkfs.ext4 -d, sfdisk, qemu-img), without loop devices.
#
# Cache ($HC_BUILD_CACHE, see builder/lib.sh): the debootstrap tarball per
# suite/mirror (refreshed after 14 days; the build upgrades what it unpacks
# anyway) and apt's downloaded packages, so a rebuild downloads only what
# changed.
if [ "$(id -u)" -eq 0 ] && [ -z "${HC_BUILD_NS:-}" ]; then
	exec env HC_BUILD_NS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi

# shellcheck disable=SC2034 # read by lib.sh
STEPS=7
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# What every image gets, whatever --packages says: booting (kernel, GRUB's
# BIOS files, udev, e2fsprogs for fsck and resize2fs), systemd with dbus
# (cloud-init sets the hostname through hostnamectl), networking by
# ifupdown + DHCPv4 (IPv6 by the kernel's SLAAC), growpart for grown
# disks, sudo for cloud-init's default user.
BASE_PACKAGES="linux-image-cloud-amd64 systemd-sysv udev dbus ifupdown isc-dhcp-client
iproute2 e2fsprogs grub-pc-bin cloud-guest-utils sudo ca-certificates"

SUITE=bookworm
PACKAGES=cloud-init,openssh-server
MIRROR=
SIZE=2G
OUTARG=

usage() { usage_die "usage: debian.sh [--suite S] [--packages P1,P2] [--mirror URL] [--size SIZE] OUTDIR"; }

while [ $# -gt 0 ]; do
	case $1 in
	--suite | --packages | --mirror | --size)
		[ $# -ge 2 ] || usage
		opt=${1#--}
		val=$2
		shift 2
		;;
	--suite=* | --packages=* | --mirror=* | --size=*)
		opt=${1%%=*}
		opt=${opt#--}
		val=${1#*=}
		shift
		;;
	-*) usage ;;
	*)
		[ -z "$OUTARG" ] || usage
		OUTARG=$1
		shift
		continue
		;;
	esac
	case $opt in
	suite) SUITE=$val ;;
	packages) PACKAGES=$val ;;
	mirror) MIRROR=$val ;;
	size) SIZE=$val ;;
	esac
done
[ -n "$OUTARG" ] || usage

[[ $SUITE =~ ^[a-z][a-z0-9-]*$ ]] || usage_die "bad suite '$SUITE'"
[[ $PACKAGES =~ ^([a-z0-9][a-z0-9.+-]*(,[a-z0-9][a-z0-9.+-]*)*)?$ ]] ||
	usage_die "bad package list '$PACKAGES' (names separated by commas)"
SIZE_BYTES=$(numfmt --from=iec "${SIZE%B}" 2>/dev/null) || usage_die "bad size '$SIZE' (e.g. 2G, 1536M)"
[ "$SIZE_BYTES" -ge $((512 << 20)) ] || usage_die "--size must be at least 512M"

# The mirror the host's apt uses (deb822 or one-line format), so a build
# needs no more network than apt itself.
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f"
	done
	[ -f /etc/apt/sources.list ] &&
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' \
			/etc/apt/sources.list
	true
}
if [ -z "$MIRROR" ]; then
	MIRROR=$(host_mirror | head -n 1)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
MIRROR=${MIRROR%/}
[[ $MIRROR =~ ^https?://[^[:space:]]+$ ]] || usage_die "bad mirror '$MIRROR' (http:// or https://)"

[ "$(id -u)" -eq 0 ] || die "needs root: debootstrap and chroot (it still never writes outside its work dir)"
[ "$(uname -m)" = x86_64 ] || die "builds amd64 images on an amd64 host only"
need_tools debootstrap chroot unshare mount flock sfdisk mkfs.ext4 qemu-img numfmt sha256sum
OUT=$(out_dir "$OUTARG")

# ---- 1. prepare --------------------------------------------------------------

step "prepare: Debian $SUITE from $MIRROR, packages ${PACKAGES:-(none)}, disk $SIZE"
work_dir
ROOT=$WORK/root
mkdir -p "$ROOT"
chmod 0755 "$ROOT"
CACHE=$(cache_dir debian)
note "work dir $WORK, cache $CACHE"
# One build at a time per cache: apt locks its archive directory, and two
# builds must not write the same tarball.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
	note "waiting for another build that uses $CACHE"
	flock 9
fi
# shellcheck disable=SC2206
EXTRA=(${PACKAGES//,/ })
# shellcheck disable=SC2206
BASE=($BASE_PACKAGES)

# Stable suites get their updates and security suites (both from the same
# host as the mirror, as the host's own apt does); testing/unstable have none.
SOURCES="deb $MIRROR $SUITE main"
case $SUITE in
sid | unstable | experimental) ;;
*)
	SOURCES+=$'\n'"deb $MIRROR $SUITE-updates main"
	SOURCES+=$'\n'"deb ${MIRROR%/debian}/debian-security $SUITE-security main"
	;;
esac

# ---- 2. debootstrap ----------------------------------------------------------

# The tarball holds the base system's .debs: keyed by everything that
# decides which .debs those are.
key=$(printf '%s\n' "$SUITE" minbase amd64 "$MIRROR" ca-certificates | sha256sum | cut -c1-12)
TARBALL=$CACHE/debootstrap-$SUITE-$key.tgz
if [ -s "$TARBALL" ] && [ -z "$(find "$TARBALL" -mtime +14)" ]; then
	step "debootstrap $SUITE (minbase) from the cached $(basename "$TARBALL")"
else
	step "debootstrap $SUITE (minbase): downloading the base system into $(basename "$TARBALL")"
	mkdir -p "$WORK/dl"
	on_exit rm -f "$TARBALL.tmp"
	run debootstrap --arch=amd64 --variant=minbase --include=ca-certificates \
		--make-tarball="$TARBALL.tmp" "$SUITE" "$WORK/dl" "$MIRROR"
	mv -f "$TARBALL.tmp" "$TARBALL"
	rm -rf "$WORK/dl"
fi
run debootstrap --arch=amd64 --variant=minbase --include=ca-certificates \
	--unpack-tarball="$TARBALL" "$SUITE" "$ROOT" "$MIRROR"
# debootstrap leaves none of its mounts behind, but be sure before going on.
[ -z "$(mounts_under "$ROOT")" ] || die "debootstrap left mounts under $ROOT"

# ---- 3. packages -------------------------------------------------------------

step "install: ${BASE[*]} ${EXTRA[*]}"
# What the chroot needs from the kernel, mounted in our private namespace:
# /proc, /sys, a few device nodes, and apt's download cache from $CACHE.
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$ROOT/dev"
for d in null zero full random urandom tty; do
	touch "$ROOT/dev/$d"
	mount --bind "/dev/$d" "$ROOT/dev/$d"
done
mkdir -p "$ROOT/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
ln -s pts/ptmx "$ROOT/dev/ptmx"
APT_CACHE=$CACHE/apt-$SUITE
mkdir -p "$APT_CACHE/partial"
mount --bind "$APT_CACHE" "$ROOT/var/cache/apt/archives"

# No daemon may start inside the chroot (invoke-rc.d asks policy-rc.d).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
printf '%s\n' "$SOURCES" >"$ROOT/etc/apt/sources.list"

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
	DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"; }
# --force-unsafe-io: no fsync per file — the tree is copied into the image
# afterwards and thrown away if the build fails, and dpkg's fsyncs were
# most of the install time.
APT=(apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
	-o Dpkg::Options::=--force-unsafe-io)
run in_root apt-get update
run in_root "${APT[@]}" dist-upgrade
run in_root "${APT[@]}" install --no-install-recommends "${BASE[@]}" "${EXTRA[@]}"
# Keep the cache to what the mirror still has.
run in_root apt-get autoclean
KVER=$(for k in "$ROOT"/boot/vmlinuz-*; do echo "${k##*/vmlinuz-}"; done | sort -V | tail -n 1)
if [ ! -f "$ROOT/boot/vmlinuz-$KVER" ] || [ ! -f "$ROOT/boot/initrd.img-$KVER" ]; then
	die "no kernel and initrd in $ROOT/boot"
fi
note "kernel $KVER, $(in_root dpkg-query -W -f '.\n' | wc -l) packages"

# ---- 4. configure ------------------------------------------------------------

step "configure: cloud-init data sources, network, ssh, serial console"
UUID=$(cat /proc/sys/kernel/random/uuid)
CMDLINE="root=UUID=$UUID ro console=tty0 console=ttyS0,115200n8 net.ifnames=0"

cat >"$ROOT/etc/fstab" <<EOF
# The root filesystem made by hackcloud's debian recipe.
UUID=$UUID / ext4 rw,discard,errors=remount-ro 0 1
EOF
echo debian >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
# The host's resolvers mean nothing in a guest; DHCP fills this in.
rm -f "$ROOT/etc/resolv.conf"
: >"$ROOT/etc/resolv.conf"

# cloud-init writes the NICs' stanzas into interfaces.d (its "eni"
# renderer); without cloud-init, eth0 gets DHCPv4 from a stanza there.
# IPv6 by SLAAC on eth0 is ours, whatever a data source says: the eni
# renderer turns a NIC without IPv4 (dhcp4: false, accept-ra: true: the
# NoCloud seed on an IPv6-only network) into "inet manual" without
# "auto", which leaves the NIC down.  ifupdown takes several stanzas for
# one interface, so this one adds to cloud-init's.
mkdir -p "$ROOT/etc/network/interfaces.d"
cat >"$ROOT/etc/network/interfaces" <<'EOF'
# interfaces(5); the NICs' other stanzas are in interfaces.d.
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet6 auto

source /etc/network/interfaces.d/*
EOF
if [ -x "$ROOT/usr/bin/cloud-init" ]; then
	cat >"$ROOT/etc/cloud/cloud.cfg.d/90_hackcloud.cfg" <<'EOF'
# hackcloud's debian recipe.  Data sources: NoCloud is the "cidata" CD-ROM
# of `hc vm create --config-drive`; OpenStack (SMBIOS product "OpenStack
# Nova") and Ec2 the metadata service on 169.254.169.254.
# ds-identify parses this list line by line: keep it on one line.
datasource_list: [ NoCloud, OpenStack, Ec2, None ]
# `ssh root@VM` works with the VM's keys, as hackcloud's docs promise;
# the default user "debian" gets them too.
disable_root: false
manage_etc_hosts: true
# C.UTF-8 is built into glibc: no locale-gen at first boot.
locale: C.UTF-8
EOF
	# Its own file: ds-identify reads strict_id only from files named *ec2*.cfg.
	cat >"$ROOT/etc/cloud/cloud.cfg.d/91_hackcloud_ec2.cfg" <<'EOF'
# hackcloud's metadata service speaks EC2 but is not AWS: accept it
# without a positive platform identification, and ask only the address
# it listens on.
datasource:
  Ec2:
    strict_id: false
    metadata_urls: [ "http://169.254.169.254" ]
    timeout: 5
    max_wait: 120
EOF
	# An unidentified EC2 is a "maybe"; by default ds-identify drops maybes.
	echo 'policy: search,found=all,maybe=all,notfound=disabled' >"$ROOT/etc/cloud/ds-identify.cfg"
else
	printf 'iface eth0 inet dhcp\n' >"$ROOT/etc/network/interfaces.d/eth0"
fi
echo 'LANG=C.UTF-8' >"$ROOT/etc/default/locale"

if [ -d "$ROOT/etc/ssh" ]; then
	# Keys only.  Host keys are made per VM at first boot (cloud-init's ssh
	# module, else ssh's own keygen): an image must not carry them.
	mkdir -p "$ROOT/etc/ssh/sshd_config.d"
	printf '# hackcloud: keys only.\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n' \
		>"$ROOT/etc/ssh/sshd_config.d/50-hackcloud.conf"
	rm -f "$ROOT"/etc/ssh/ssh_host_*
	if [ ! -x "$ROOT/usr/bin/cloud-init" ]; then
		mkdir -p "$ROOT/etc/systemd/system/ssh.service.d"
		printf '[Service]\nExecStartPre=/usr/bin/ssh-keygen -A\n' >"$ROOT/etc/systemd/system/ssh.service.d/hostkeys.conf"
	fi
fi
in_root passwd -l root >/dev/null
# Per-VM identity is made at first boot: machine-id (systemd), random seed.
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT/var/lib/systemd/random-seed"
rm -f "$ROOT/usr/sbin/policy-rc.d"

# ---- 5. bootloader -----------------------------------------------------------

step "bootloader: GRUB for BIOS, serial console, root UUID=$UUID"
GRUBLIB=$ROOT/usr/lib/grub/i386-pc
[ -f "$GRUBLIB/boot.img" ] || die "grub-pc-bin did not install $GRUBLIB/boot.img"
mkdir -p "$ROOT/boot/grub/i386-pc"
cp "$GRUBLIB"/*.mod "$GRUBLIB"/*.lst "$ROOT/boot/grub/i386-pc/"
# The embedded config finds the root filesystem by UUID, whatever other
# disks the VM has; normal mode then reads $prefix/grub.cfg.
# shellcheck disable=SC2016 # $root is GRUB's variable
printf 'search.fs_uuid %s root\nset prefix=($root)/boot/grub\n' "$UUID" >"$ROOT/boot/grub/early.cfg"
run in_root grub-mkimage -O i386-pc -o /boot/grub/core.img -c /boot/grub/early.cfg -p /boot/grub \
	biosdisk part_msdos ext2 search_fs_uuid
mv "$ROOT/boot/grub/core.img" "$WORK/core.img"
# /vmlinuz and /initrd.img follow the newest kernel (linux-base keeps them),
# so a kernel upgraded inside the guest boots without update-grub.
if [ -e "$ROOT/vmlinuz" ] && [ -e "$ROOT/initrd.img" ]; then
	KPATH=/vmlinuz IPATH=/initrd.img
else
	KPATH=/boot/vmlinuz-$KVER IPATH=/boot/initrd.img-$KVER
fi
cat >"$ROOT/boot/grub/grub.cfg" <<EOF
# Written by hackcloud's debian recipe (no update-grub in this image).
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry 'Debian GNU/Linux' {
	search.fs_uuid $UUID root
	linux $KPATH $CMDLINE
	initrd $IPATH
}
EOF

# Everything the chroot needed is unmounted before the tree is copied: a
# mounted /proc must not end up in the filesystem.
umount_under "$ROOT"
[ -z "$(mounts_under "$ROOT")" ] || die "cannot unmount $(mounts_under "$ROOT" | tr '\n' ' ')"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/* "$ROOT"/var/tmp/*
find "$ROOT/var/log" -type f -exec truncate -s 0 {} +

# ---- 6. filesystem and partition table ---------------------------------------

used_kib=$(du -sk --apparent-size "$ROOT" | cut -f1)
step "filesystem: ext4 of $((used_kib / 1024)) MiB of files, one MBR partition, disk $SIZE"
PART_START=2048                          # sectors: 1 MiB, room for GRUB's core image
PART_KIB=$(((SIZE_BYTES - PART_START * 512) / 1024 / 4 * 4))
# ext4's own metadata and a journal need room too.
[ "$used_kib" -lt $((PART_KIB * 85 / 100)) ] ||
	die "$((used_kib / 1024)) MiB of files do not fit a $SIZE disk: give a larger --size"
core_bytes=$(stat -c %s "$WORK/core.img")
[ "$core_bytes" -le $(((PART_START - 1) * 512)) ] || die "GRUB's core image ($core_bytes bytes) is too big"

RAW=$WORK/disk.raw
truncate -s "$SIZE_BYTES" "$RAW"
printf 'label: dos\nstart=%d, type=83, bootable\n' "$PART_START" | run sfdisk -q "$RAW"
# bookworm's GRUB (2.06) cannot read ext4 with orphan_file or
# metadata_csum_seed, which newer mke2fs enable by default: the features
# are spelt out here instead of taken from the host's mke2fs.conf.
cat >"$WORK/mke2fs.conf" <<'EOF'
[defaults]
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
EOF
run env MKE2FS_CONFIG="$WORK/mke2fs.conf" mkfs.ext4 -q -F -t ext4 -L root -U "$UUID" \
	-E "offset=$((PART_START * 512))" -d "$ROOT" "$RAW" "${PART_KIB}k"
# MBR boot code (the first 440 bytes: the partition table stays) and the
# core image right behind it, where boot.img looks by default (sector 1,
# then diskboot's blocklist from sector 2): what grub-bios-setup would
# write, without a block device.
run dd if="$GRUBLIB/boot.img" of="$RAW" bs=440 count=1 conv=notrunc
run dd if="$WORK/core.img" of="$RAW" bs=512 seek=1 conv=notrunc

# ---- 7. pack -----------------------------------------------------------------

step "pack: qcow2"
run qemu-img convert -f raw -O qcow2 "$RAW" "$WORK/disk.qcow2"
rm -f "$RAW"
{
	echo "recipe=debian"
	echo "suite=$SUITE"
	echo "mirror=$MIRROR"
	echo "packages=$PACKAGES"
	echo "kernel_release=$KVER"
	echo "root_uuid=$UUID"
	echo "cmdline=$CMDLINE"
	echo "virtual_size=$SIZE_BYTES"
	echo "sha256_disk.qcow2=$(sha256sum "$WORK/disk.qcow2" | cut -d' ' -f1)"
} >"$WORK/manifest"
chmod 0644 "$WORK/disk.qcow2" "$WORK/manifest"
publish "$WORK/disk.qcow2" "$WORK/manifest" "$OUT"
note "$OUT/disk.qcow2: $(du -h --apparent-size "$OUT/disk.qcow2" | cut -f1) for a $SIZE disk"
