#!/usr/bin/env bash
# Packages only the benchmarks need (not the product, not the tests):
# libvirt, the baseline of bench/vmlife.sh.  Installed when missing,
# without recommends.  The product's own list is scripts/deps.sh.
set -euo pipefail

packages=(libvirt-daemon-system libvirt-clients)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "bench deps: installing ${missing[*]}"
[ "$(id -u)" -eq 0 ] || { echo "bench deps: run as root" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
