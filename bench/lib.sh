# shellcheck shell=bash
# What the benchmarks that run one hcd share (sourced; not tests).
#
#   bench_hcd BUILD NAME [HCD_ARG...]
#       a temporary dir ($dir) with a state dir ($state) and a network
#       namespace ($ns) of its own, hcd started there (TCG, log in
#       $dir/hcd.log) and answering; sets hcd_pid and HC_URL, defines hc.
#       On exit everything goes: the commands in BENCH_ON_EXIT first, then
#       hcd, its QEMUs and dnsmasqs, the namespace and the dir.
#   bench_tiny GUEST_DIR     the tiny guest imported as image "tiny"

BENCH_ON_EXIT=()

bench_cleanup() {
	set +e
	local c p
	for c in "${BENCH_ON_EXIT[@]}"; do eval "$c"; done
	[ -n "${hcd_pid:-}" ] && kill -9 "$hcd_pid"
	for p in $(pgrep -f "qemu-system-x86_64.*$state") $(pgrep -f "dnsmasq.*$state"); do
		kill -9 "$p"
	done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}

bench_hcd() {
	local build=$1 name=$2
	shift 2
	dir=$(mktemp -d "/tmp/hc-$name.XXXXXX")
	chmod 711 "$dir"   # dnsmasq runs as its own user and must reach the state dir
	ns=hc$name-$$
	state=$dir/state
	trap bench_cleanup EXIT INT TERM
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	mkdir -p "$state"
	ip netns exec "$ns" "$build/hcd" --state-dir "$state" --accel tcg "$@" \
		>"$dir/hcd.log" 2>&1 &
	hcd_pid=$!
	export HC_URL=unix:$state/api.sock
	BENCH_HC=$build/hc
	hc() { "$BENCH_HC" "$@"; }
	for _ in $(seq 1 100); do hc info >/dev/null 2>&1 && break; sleep 0.1; done
}

bench_tiny() {
	hc image import tiny --kernel "$1/vmlinuz" --initrd "$1/initrd.img" \
		--cmdline "$(cat "$1/cmdline")" >/dev/null
}
