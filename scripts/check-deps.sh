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
exit "$fail"
