#!/usr/bin/env bash
# Install the Debian packages hackcloud needs to build, run and test, but
# only those that are missing (a no-op on a prepared machine).
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config
	libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
	libnl-3-dev libnl-route-3-dev libsodium-dev libsystemd-dev libinih-dev
	libcmocka-dev liboath-dev libldap2-dev libqrencode-dev libpq-dev libnftables-dev
	nettle-dev libnftnl-dev libmnl-dev libnetfilter-conntrack-dev
	zlib1g-dev   # gzip of /metrics on a worker (Prometheus asks for it)
	libjson-validator-perl   # meson test openapi: the API description's validator (OpenAPI 3.0)
	# run
	qemu-system-x86 qemu-utils iproute2 dnsmasq dnsmasq-utils genisoimage
	# guest image builder (tiny: the first line; debian: the second)
	busybox-static cpio kmod dpkg-dev
	debootstrap fdisk e2fsprogs util-linux
	# tests and benchmarks (clang + its runtimes: the libFuzzer harnesses, make fuzz)
	jq curl sqlite3 socat procps wrk bc tcpdump nftables iputils-ping openssh-client conntrack
	iperf3   # bandwidth limits: test_bandwidth, test_metering, bench/shaping.sh
	xorriso oathtool slapd ldap-utils postgresql clang libclang-rt-14-dev
	# /metrics read by a real Prometheus (server and promtool): tests/e2e/test_metrics.sh
	prometheus
	# the Debian package (make deb: dpkg-buildpackage with debhelper) and its
	# test (make pkg-check: debootstrap, and systemd-nspawn to boot the unit)
	debhelper systemd-container
	# the metadata tests: Amazon's IMDSv2 client; counting hcd's netlink requests
	amazon-ec2-utils strace
	# the dashboard's browser test (tests/e2e/test_dashboard.sh)
	chromium chromium-driver python3-selenium
	# cloud-init's readers (the package itself is unpacked by the test, not installed)
	python3 python3-configobj python3-jinja2 python3-jsonpatch python3-jsonschema
	python3-netifaces python3-oauthlib python3-requests python3-serial python3-yaml
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# The guest builder downloads Debian's kernel and busybox with apt: it
# needs package lists even when nothing else is missing.
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] && apt-get update -qq
fi
# The dashboard's xterm.js comes from the npm registry, pinned with its
# hash in web/package-lock.json (Debian's libjs-xterm 3.8 ships an unbuilt
# CommonJS stub that no browser can load).  npm itself comes with Node.js;
# a machine without it gets Debian's.
xterm=web/node_modules/@xterm/xterm/lib/xterm.mjs
if [ ! -f "$(dirname "$0")/../$xterm" ] && ! command -v npm >/dev/null; then
	missing+=(npm)
fi
install_xterm() {
	[ -f "$(dirname "$0")/../$xterm" ] && return 0
	echo "deps: npm ci in web/ (xterm.js)"
	(cd "$(dirname "$0")/../web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
}
if [ ${#missing[@]} -eq 0 ]; then
	install_xterm
	exit 0
fi
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root (or install the packages above)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_xterm
