#!/usr/bin/env bash
# Metadata service throughput and p99 latency, from one guest address and
# from many at once.  The "guests" are namespaces on the bridge that
# present registered NICs (VMs created with --no-start): the service sees
# exactly what a guest would send, without TCG guests eating the CPU.
# Run as root: bench/metadata.sh BUILD_DIR [N_CLIENTS]
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
N=${2:-8}
DUR=${BENCH_SECONDS:-5}
dir=$(mktemp -d /tmp/hc-mdbench.XXXXXX)
chmod 711 "$dir"
ns=hcmdb-$$
state=$dir/state
pids=()
nss=("$ns")
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill -9 "$p"; done
	for p in $(pgrep -f "dnsmasq.*$state"); do kill -9 "$p"; done
	for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$state"
# A one-byte kernel is enough: no VM boots here.
echo x >"$dir/k"
start_hcd() {
	ip netns exec "$ns" "$BUILD/hcd" --state-dir "$state" --accel tcg --log-level=warn \
		--metadata-rate="$1" >>"$dir/hcd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do "$BUILD/hc" info >/dev/null 2>&1 && return; sleep 0.1; done
	echo "hcd did not start" >&2; exit 1
}
export HC_URL=unix:$state/api.sock
start_hcd 0
"$BUILD/hc" image import k --kernel "$dir/k" >/dev/null
"$BUILD/hc" net create bench --ipv6 fd00:bd::/64 --ipv4 10.89.0.0/16 >/dev/null
br=$("$BUILD/hc" --json net show bench | jq -r .bridge)
for i in $(seq 1 "$N"); do
	"$BUILD/hc" vm create "g$i" --image k --net bench --no-start >/dev/null
	mac=$("$BUILD/hc" --json vm show "g$i" | jq -r '.nics[0].mac')
	ip4=$("$BUILD/hc" --json vm show "g$i" | jq -r '.nics[0].ipv4')
	c=hcmdbc$i-$$
	nss+=("$c")
	ip netns add "$c"
	ip -n "$ns" link add "mdb$i" type veth peer name eth0 netns "$c"
	ip -n "$ns" link set "mdb$i" master "$br" up
	ip -n "$c" link set lo up
	ip -n "$c" link set eth0 address "$mac" up
	ip -n "$c" addr add "$ip4/16" dev eth0
	ip -n "$c" route add default via 10.89.0.1
done
url=http://169.254.169.254/latest/meta-data/instance-id
run_wrk() { ip netns exec "$1" wrk -t1 -c4 -d"${DUR}s" --latency "$url"; }
rps_of() { awk '/Requests\/sec/ {print $2}'; }
p99_of() { awk '$1 == "99%" {print $2}'; }

echo "== metadata service, ${DUR}s per run, wrk -t1 -c4 per client (rate limit off)"
one=$(run_wrk "hcmdbc1-$$")
printf 'one guest:      %8.0f req/s   p99 %s\n' "$(rps_of <<<"$one")" "$(p99_of <<<"$one")"
wl=()
for i in $(seq 1 "$N"); do run_wrk "hcmdbc$i-$$" >"$dir/w$i" & wl+=($!); done
wait "${wl[@]}" || true
total=0; worst=
for i in $(seq 1 "$N"); do
	total=$(echo "$total + $(rps_of <"$dir/w$i")" | bc)
	worst="$worst $(p99_of <"$dir/w$i")"
done
printf '%d guests:      %8.0f req/s total   p99 per guest:%s\n' "$N" "$total" "$worst"
printf 'ratio many/one: %.2f\n' "$(echo "$total / $(rps_of <<<"$one")" | bc -l)"

echo "== the same from one guest with the default limit (20 req/s per VM)"
{ kill -9 "${pids[0]}"; wait "${pids[0]}"; } 2>/dev/null || true; pids=()
start_hcd 20
run_wrk "hcmdbc1-$$" >"$dir/limited" &
wl=$!
sleep 2
ok=$(ip netns exec "hcmdbc2-$$" curl -s -o /dev/null -w '%{http_code}' "$url")
wait "$wl" || true
limited=$(cat "$dir/limited")
printf 'limited guest:  %8.0f req/s answered (mostly 429), another guest meanwhile: HTTP %s\n' \
	"$(rps_of <<<"$limited")" "$ok"
