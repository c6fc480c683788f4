#!/usr/bin/env bash
# Benchmarks of the foundation (not tests: they print figures, they do not
# pass or fail).  Run as root: `make bench`.
#  1. control plane: POST create+start → state running, and stop+delete →
#     gone, p50/p95 over N tiny TCG guests, inside a namespace;
#  2. API reads: GET /v1/vms/{id} with wrk, against GET /v1/info (no store
#     access) as the baseline measured in the same run.
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
N=${BENCH_VMS:-20}
DUR=${BENCH_WRK_SECONDS:-10}

dir=$(mktemp -d /tmp/hc-bench.XXXXXX)
chmod 711 "$dir"   # dnsmasq runs as its own user and must reach the state dir
ns=hcbench-$$
state=$dir/state
hcd_pid= relay_pid=
cleanup() {
	set +e
	[ -n "$relay_pid" ] && kill "$relay_pid"
	[ -n "$hcd_pid" ] && kill -9 "$hcd_pid"
	for p in $(pgrep -f "qemu-system-x86_64.*$state"); do kill -9 "$p"; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$state"
ip netns exec "$ns" "$BUILD/hcd" --state-dir "$state" --accel tcg --stop-timeout=20 \
	--log-level=warn >"$dir/hcd.log" 2>&1 &
hcd_pid=$!
export HC_URL=unix:$state/api.sock
hc() { "$BUILD/hc" "$@"; }
for _ in $(seq 1 100); do hc info >/dev/null 2>&1 && break; sleep 0.1; done
hc image import tiny --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
	--cmdline "$(cat "$GUEST/cmdline")" >/dev/null
hc net create bench --ipv6 fd00:be:1::/64 --ipv4 10.88.0.0/16 >/dev/null

ms() { date +%s%3N; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; print a[i]}'; }
api() { curl -s --unix-socket "$state/api.sock" -X "$1" "http://hc$2" ${3:+-d "$3"}; }

echo "== control plane, $N tiny guests (TCG), one at a time"
up=() down=()
for i in $(seq 1 "$N"); do
	t0=$(ms)
	api POST /v1/vms "{\"name\":\"b$i\",\"image\":\"tiny\",\"memory_mib\":128,\"networks\":[\"bench\"]}" >/dev/null
	until [ "$(api GET /v1/vms/b$i | jq -r .state)" = running ]; do sleep 0.01; done
	up+=($(( $(ms) - t0 )))
done
# Stop+delete is measured on booted guests (ACPI needs the guest's acpid).
for i in $(seq 1 "$N"); do
	until curl -s --unix-socket "$state/api.sock" "http://hc/v1/vms/b$i/log" | grep -q HACKCLOUD-BOOT-OK; do
		sleep 0.5
	done
done
for i in $(seq 1 "$N"); do
	vid=$(api GET /v1/vms/b$i | jq -r .id)
	t0=$(ms)
	api DELETE /v1/vms/b$i >/dev/null
	# the API hides it at once; "gone" is when its directory (removed after
	# the process exited and the taps went) disappears
	while [ -e "$state/vms/$vid" ]; do sleep 0.01; done
	down+=($(( $(ms) - t0 )))
done
up50=$(printf '%s\n' "${up[@]}" | pct 50); up95=$(printf '%s\n' "${up[@]}" | pct 95)
dn50=$(printf '%s\n' "${down[@]}" | pct 50); dn95=$(printf '%s\n' "${down[@]}" | pct 95)
printf 'create+start → running   p50 %5d ms   p95 %5d ms\n' "$up50" "$up95"
printf 'stop+delete  → gone      p50 %5d ms   p95 %5d ms   (ACPI powerdown of a booted guest)\n' "$dn50" "$dn95"

echo "== create → guest has its IPv4 (DHCP lease in dnsmasq), ${N_IP:=10} guests one at a time"
ip4=()
for i in $(seq 1 "$N_IP"); do
	t0=$(ms)
	api POST /v1/vms "{\"name\":\"ip$i\",\"image\":\"tiny\",\"memory_mib\":128,\"networks\":[\"bench\"]}" >/dev/null
	mac=$(api GET /v1/vms/ip$i | jq -r '.nics[0].mac')
	until grep -qs " $mac " "$state"/net/*/leases; do sleep 0.05; done
	ip4+=($(( $(ms) - t0 )))
	api DELETE /v1/vms/ip$i >/dev/null
done
ip50=$(printf '%s\n' "${ip4[@]}" | pct 50)
printf 'create → IPv4 leased     p50 %5d ms   (TCG boot + udhcpc)\n' "$ip50"

echo "== API reads with wrk, ${DUR}s each, 2 threads, 16 connections"
api POST /v1/vms '{"name":"reader","image":"tiny","start":false}' >/dev/null
id=$(api GET /v1/vms/reader | jq -r .id)
# wrk speaks TCP only: a socat relay in front of the unix socket, the same
# for both runs, so the ratio compares the handlers.
socat TCP-LISTEN:18443,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$state/api.sock" &
relay_pid=$!
sleep 0.3
rps() { wrk -t2 -c16 -d"${DUR}s" "http://127.0.0.1:18443$1" | awk '/Requests\/sec/ {print $2}'; }
base=$(rps /v1/info)
read=$(rps "/v1/vms/$id")
printf 'GET /v1/info (baseline)  %10.0f req/s\n' "$base"
printf 'GET /v1/vms/{id}         %10.0f req/s   ratio %.2f of baseline\n' "$read" \
	"$(echo "$read / $base" | bc -l)"
