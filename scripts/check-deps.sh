#!/usr/bin/env bash
# Every dependency('NAME') in meson.build must come from a Debian package
# that scripts/deps.sh installs, or a fresh machine fails at `meson setup`
# while a machine where someone installed it by hand hides the gap.
# NAME → its pkg-config file → the package that owns the file (dpkg -S) →
# that package, or one that depends on it, is in deps.sh's list.
set -euo pipefail
cd "$(dirname "$0")/.."

# The package names deps.sh installs: the words of its packages=( … ) block.
listed=$(sed -n '/^packages=(/,/^)/p' scripts/deps.sh | sed 's/#.*//' | tr -s ' \t()' '\n' |
	grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -v '^packages=' | sort -u)

# meson's own pseudo-dependencies, which no package provides.
builtin='^(threads|openmp|dl)$'

names=$(grep -oE "dependency\('[^']+'" meson.build | sed "s/dependency('//; s/'//" | sort -u)
fail=0
for name in $names; do
	[[ $name =~ $builtin ]] && continue
	pc=$(pkg-config --path "$name" 2>/dev/null || true)
	if [ -z "$pc" ]; then
		echo "check-deps: $name: no pkg-config file on this machine (which package provides it?)" >&2
		fail=1
		continue
	fi
	pkg=$(dpkg -S "$(readlink -f "$pc")" 2>/dev/null | head -n1 | cut -d: -f1 || true)
	[ -z "$pkg" ] && pkg=$(dpkg -S "$pc" 2>/dev/null | head -n1 | cut -d: -f1 || true)
	if [ -z "$pkg" ]; then
		echo "check-deps: $name: $pc belongs to no Debian package" >&2
		fail=1
		continue
	fi
	if grep -qxF "$pkg" <<<"$listed"; then
		echo "check-deps: $name ← $pkg"
		continue
	fi
	# A listed package may pull it in (libldap2-dev → libldap-dev).
	via=
	for l in $listed; do
		if apt-cache depends --important "$l" 2>/dev/null | grep -qE "Depends: $pkg(:|\$)"; then
			via=$l
			break
		fi
	done
	if [ -n "$via" ]; then
		echo "check-deps: $name ← $pkg (via $via)"
	else
		echo "check-deps: $name is provided by $pkg, which scripts/deps.sh does not install" >&2
		fail=1
	fi
done
[ "$fail" -eq 0 ] && echo "check-deps: every meson dependency comes from scripts/deps.sh"

# The Debian package builds from the same packages: debian/control's
# Build-Depends are deps.sh's "# build" lines (less build-essential, which
# Debian assumes), plus debhelper-compat and python3 (packaging/gendoc.py).
build=$(sed -n '/^packages=(/,/^)/p' scripts/deps.sh | sed -n '/# build/,/# run/p' | sed 's/#.*//' |
	tr -s ' \t' '\n' | grep -E '^[a-z0-9]' | grep -vx build-essential | sort -u)
bdeps=$(awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, ""); print; next }
	on && /^[ \t]/ { print; next } { on = 0 }' debian/control | tr ',' '\n' |
	sed 's/[(<\[].*//; s/^[ \t]*//; s/[ \t]*$//' | grep -v '^$' | grep -vxE 'debhelper-compat|python3' | sort -u)
if [ "$build" != "$bdeps" ]; then
	echo "check-deps: debian/control Build-Depends and scripts/deps.sh's build packages differ:" >&2
	diff <(echo "$build") <(echo "$bdeps") | grep '^[<>]' | sed 's/^</  only in deps.sh:/; s/^>/  only in debian\/control:/' >&2
	fail=1
else
	echo "check-deps: debian/control Build-Depends = scripts/deps.sh's build packages"
fi
exit "$fail"
