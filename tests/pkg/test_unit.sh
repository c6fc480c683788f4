#!/usr/bin/env bash
# test_unit — hcd.service as built: systemd accepts it (systemd-analyze
# verify) and its exposure stays at most 3.5 of 10 (systemd-analyze
# security; 3.2 when written), so dropping a hardening directive fails here
# before a real host finds out.  The real run under systemd is
# tests/pkg/test_deb.sh (make pkg-check).
#
#   tests/pkg/test_unit.sh UNIT HCD      exit 77 (skipped) without systemd-analyze
set -euo pipefail
unit=${1:?usage: test_unit.sh UNIT HCD}
hcd=$(readlink -f "${2:?usage: test_unit.sh UNIT HCD}")
command -v systemd-analyze >/dev/null || { echo "test_unit: no systemd-analyze, skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The unit names the installed hcd; verify wants an executable there.
sed "s|^ExecStart=.*/hcd\$|ExecStart=$hcd|" "$unit" >"$dir/hcd.service"
grep -q "^ExecStart=$hcd\$" "$dir/hcd.service" || { echo "test_unit: no ExecStart=…/hcd in $unit" >&2; exit 1; }
systemd-analyze verify --man=no "$dir/hcd.service"
systemd-analyze security --offline=yes --threshold=35 --no-pager "$dir/hcd.service" >"$dir/security" || {
	cat "$dir/security" >&2
	echo "test_unit: hcd.service is more exposed than 3.5 (above)" >&2
	exit 1
}
tail -n 1 "$dir/security"
