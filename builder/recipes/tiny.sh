#!/usr/bin/env bash
# Recipe "tiny": the e2e tests' guest — the Debian cloud kernel plus a
# busybox-static initramfs with hackcloud's context script, booted directly.
# A wrapper around guest/build-tiny.sh, which does the work and is
# reproducible: the same .deb files and guest/ tree give byte-identical
# files, so the same inputs give the same image sha256.
#
#   builder/recipes/tiny.sh OUTDIR
#
# Leaves OUTDIR/vmlinuz, OUTDIR/initrd.img, OUTDIR/cmdline (a kernel image)
# and OUTDIR/manifest.  Downloads are cached in $HC_GUEST_CACHE, by default
# the "tiny" directory of the build cache (builder/lib.sh: cache_dir).
# shellcheck disable=SC2034 # read by lib.sh
STEPS=2
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
	usage_die "usage: tiny.sh OUTDIR (the tiny recipe takes no options)"
fi
OUT=$(out_dir "$1")
# Installed, the builder sits in share/hackcloud/builder beside
# share/hackcloud/guest; in the source tree beside guest/.
TINY=$BUILDER_DIR/../guest/build-tiny.sh
[ -x "$TINY" ] || die "cannot find guest/build-tiny.sh next to $BUILDER_DIR"

work_dir
export HC_GUEST_CACHE=${HC_GUEST_CACHE:-$(cache_dir tiny)}

step "build-tiny.sh: Debian cloud kernel + busybox initramfs (cache $HC_GUEST_CACHE)"
run "$TINY" "$OUT"
step "done: $(sed -n 's/^kernel_release=//p' "$OUT/manifest"), initrd $(stat -c %s "$OUT/initrd.img") bytes"
