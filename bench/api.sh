#!/usr/bin/env bash
# API throughput (issue 12 §4): GET /v1/vms/{id} against GET /v1/info (the
# baseline: identification and HTTP, no store read), with a bearer token
# of an admin and the per-user rate limit lifted, measured in one run:
#   - over the TLS listener with wrk -t2 -c16 (keep-alive),
#   - over the unix socket with bench/httpload (16 connections),
#   - over a plain TCP listener (listen_insecure, loopback) with wrk.
# Prints req/s, p99 and the ratio of each endpoint to /v1/info.  Not a
# test: figures only.  Run as root: ./bench/api.sh BUILD GUEST [SECONDS]
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
DUR=${3:-${BENCH_WRK_SECONDS:-10}}
CONNS=16
PORT=8443
LOAD=${HTTPLOAD:-$(cd "$(dirname "$0")" && pwd)/../build/httpload}

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
. "$(dirname "$0")/lib.sh"
bench_setup api
bench_hcd --log-level=warn --listen="[::1]:$PORT" --tls-cert="$dir/tls.crt" --tls-key="$dir/tls.key"
bench_fixture

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
	"$LOAD" "$state/api.sock" "$1" "$DUR" $CONNS "$tok" |
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
bench_hcd --log-level=warn --listen="[::1]:$PORT" --listen-insecure=true
row "plain TCP [::1]" tcp_run
