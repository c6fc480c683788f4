#!/usr/bin/env bash
# build-deb.sh OUTDIR: build the Debian package (dpkg-buildpackage -us -uc
# -b) from a copy of this tree, leaving OUTDIR/hackcloud_<version>_<arch>.deb
# (and the .buildinfo/.changes) and printing the .deb's path.
#
# A copy, because dpkg-buildpackage writes its results into the parent of
# the source directory and debhelper its work files into debian/: neither
# belongs in the worktree.  The copy holds what git tracks plus untracked
# files git does not ignore, so uncommitted work is packaged too.
# DEB_BUILD_OPTIONS passes through (e.g. nocheck, parallel=2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:?usage: build-deb.sh OUTDIR}" && cd "$1" && pwd)
version=$(dpkg-parsechangelog -S Version)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)
[ "${version%%-*}" = "$meson_version" ] ||
	{ echo "build-deb: debian/changelog says $version, meson.build $meson_version" >&2; exit 1; }

src=$out/hackcloud-$version
rm -rf "$src"
mkdir -p "$src"
# Files deleted but not yet committed are still listed: skip them.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
	done | xargs -0 cp --parents -a -t "$src"
# xterm.js is npm's (web/package-lock.json, scripts/deps.sh), not git's:
# the package takes it along for the dashboard's console.
if [ -d web/node_modules/@xterm/xterm ]; then
	mkdir -p "$src/web/node_modules/@xterm"
	cp -a web/node_modules/@xterm/xterm "$src/web/node_modules/@xterm/"
fi
rm -f "$out"/hackcloud_*
(cd "$src" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) || {
	echo "build-deb: dpkg-buildpackage failed; the last lines of $out/build.log:" >&2
	tail -n 40 "$out/build.log" >&2
	exit 1
}
rm -rf "$src"
deb=$(ls "$out"/hackcloud_"$version"_*.deb)
echo "$deb"
