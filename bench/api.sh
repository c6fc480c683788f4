#!/usr/bin/env bash
# API throughput (issue 12 §4): GET /v1/vms/{id} against GET /v1/info (the
# baseline: identification and HTTP, no store read), with a bearer token
# of an admin and the per-user rate limit lifted, measured in one run:
#   - over the TLS listener with wrk -t2 -c16 (keep-alive),
#   - over the unix socket with bench/httpload (16 connections).
# Prints req/s, p99 and the ratio of each endpoint to /v1/info.  Not a
# test: figures only.  Run as root: ./bench/api.sh BUILD GUEST [SECONDS]
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
DUR=${3:-${BENCH_WRK_SECONDS:-10}}
CONNS=16
PORT=8443

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
dir=$(mktemp -d /tmp/hc-bench-api.XXXXXX)
chmod 711 "$dir"
ns=hcbapi-$$
state=$dir/state
hcd_pid=
cleanup() {
	set +e
	[ -n "$hcd_pid" ] && kill "$hcd_pid" && wait "$hcd_pid"
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir" "/etc/netns/$ns"
}
trap cleanup EXIT
[ -n "${BENCH_KEEP:-}" ] && trap - EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
# wrk sends the URL's host as TLS SNI even when it is an address literal,
# which GnuTLS refuses: give ::1 a name inside the namespace.
mkdir -p "/etc/netns/$ns"
echo "::1 hcd-bench" >"/etc/netns/$ns/hosts"
mkdir -p "$state"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=hcd-bench -addext 'subjectAltName=DNS:hcd-bench' \
	-keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
# hcd_run ARGS… — (re)start hcd with these listener arguments
hcd_run() {
	if [ -n "$hcd_pid" ]; then kill "$hcd_pid"; wait "$hcd_pid" || true; fi
	ip netns exec "$ns" "$BUILD/hcd" --state-dir "$state" --accel tcg --log-level=warn \
		--api-rate=0 "$@" >>"$dir/hcd.log" 2>&1 &
	hcd_pid=$!
	for _ in $(seq 1 100); do "$BUILD/hc" info >/dev/null 2>&1 && return; sleep 0.1; done
	echo "hcd did not start" >&2
	exit 1
}
export HC_URL=unix:$state/api.sock
hc() { "$BUILD/hc" "$@"; }
hcd_run --listen="[::1]:$PORT" --tls-cert="$dir/tls.crt" --tls-key="$dir/tls.key"
hc image import tiny --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
	--cmdline "$(cat "$GUEST/cmdline")" >/dev/null
vm=$(hc --json vm create bench --image tiny --no-start | jq -r .id)
printf 'bench-password\n' | hc user create bench --role admin --auth file --password-stdin >/dev/null
tok=$(curl -s --unix-socket "$state/api.sock" -H 'Content-Type: application/json' \
	--data-binary '{"user": "bench", "password": "bench-password"}' http://hc/v1/login | jq -r .token)

# wrk_run URL → "req/s p99_ms"
wrk_run() {
	ip netns exec "$ns" wrk -t2 -c$CONNS -d"${DUR}s" --latency -H "Authorization: Bearer $tok" \
		"$1" >"$dir/wrk.out"
	awk '/Requests\/sec/ { rps = $2 }
	     $1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
	                   else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
	                   p99 = v }
	     END { printf "%.0f %.2f\n", rps, p99 }' "$dir/wrk.out"
}
tls_run() { wrk_run "https://hcd-bench:$PORT$1"; }
tcp_run() { wrk_run "http://hcd-bench:$PORT$1"; }
# unix_run PATH → "req/s p99_ms"
unix_run() {
	"$BUILD/httpload" "$state/api.sock" "$1" "$DUR" $CONNS "$tok" |
		sed 's/.*rps=\([0-9]*\) .*p99_us=\([0-9]*\).*/\1 \2/' | awk '{ printf "%s %.2f\n", $1, $2 / 1000 }'
}
row() {   # row LISTENER RUNNER
	local base_rps base_p99 vm_rps vm_p99
	read -r base_rps base_p99 <<<"$($2 /v1/info)"
	read -r vm_rps vm_p99 <<<"$($2 "/v1/vms/$vm")"
	printf '%-22s %-18s %9s %8s %6s\n' "$1" "GET /v1/info" "$base_rps" "$base_p99" 1.00
	printf '%-22s %-18s %9s %8s %6.2f\n' "$1" "GET /v1/vms/{id}" "$vm_rps" "$vm_p99" \
		"$(echo "$vm_rps / $base_rps" | bc -l)"
}

echo "== API throughput: wrk -t2 -c$CONNS -d${DUR}s over TCP, httpload -c$CONNS on the unix socket; admin token"
printf '%-22s %-18s %9s %8s %6s\n' listener endpoint "req/s" "p99 ms" ratio
row "TLS [::1]" tls_run
row "unix socket" unix_run
hcd_run --listen="[::1]:$PORT" --listen-insecure=true
row "plain TCP [::1]" tcp_run
