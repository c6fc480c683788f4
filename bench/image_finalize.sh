#!/usr/bin/env bash
# Does an image upload stall hcd's loop?  (issue 12 §3; a benchmark, not a
# test: it prints figures, it does not pass or fail.)
#
#   bench/image_finalize.sh BUILD_DIR [SIZE_MIB]    (as root)
#
# One hcd, one raw disk of SIZE_MIB (2048) uploaded and finalized.  While
# each phase runs, a probe sends GET /v1/info one after the other and
# records each answer's time (curl's time_total); the baseline is the
# same probe with hcd idle, in the same run.  Printed per phase: requests
# answered, p50, p99 and max latency, and p99 / idle p99; and the
# finalize's own duration.  A loop that blocks for the finalize shows as a
# max near that duration; one that only hashes chunks as they arrive shows
# as a small p99 rise during the upload.
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
SIZE=${2:-2048}
IDLE_N=${BENCH_IDLE:-200}
dir=$(mktemp -d /tmp/hc-imgbench.XXXXXX)
chmod 711 "$dir"
ns=hcimb-$$
state=$dir/state
pids=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$state"
ip netns exec "$ns" "$BUILD/hcd" --state-dir "$state" --accel tcg --log-level=warn --api-rate=0 \
	>>"$dir/hcd.log" 2>&1 &
pids+=($!)
export HC_URL=unix:$state/api.sock
for _ in $(seq 1 100); do "$BUILD/hc" info >/dev/null 2>&1 && break; sleep 0.1; done
sock=$state/api.sock

# A sparse file: reading it costs nothing, so the figures are hcd's.
truncate -s "${SIZE}M" "$dir/disk.raw"

probe_once() { curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$sock" http://hc/v1/info; }
# probe OUT STOPFILE: probe until STOPFILE exists.
probe() { while [ ! -e "$2" ]; do probe_once; done >"$1"; }
stats() { # FILE → "n p50 p99 max" in ms
	sort -n "$1" | awk '{a[NR] = $1 * 1000} END {
		if (NR == 0) { print "0 - - -"; exit }
		p50 = a[int((NR + 1) * 0.50)]; i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
		printf "%d %.1f %.1f %.1f\n", NR, p50, a[i99], a[NR] }'
}
row() { # LABEL FILE IDLE_P99
	read -r n p50 p99 max < <(stats "$2")
	printf '%-28s %6s %8s %8s %9s %8s\n' "$1" "$n" "$p50" "$p99" "$max" \
		"$(awk -v a="$p99" -v b="$3" 'BEGIN { if (b > 0 && a != "-") printf "%.2f", a / b; else print "-" }')"
}

for _ in $(seq 1 "$IDLE_N"); do probe_once; done >"$dir/idle"
read -r _ _ idle99 _ < <(stats "$dir/idle")

id=$(curl -s -X POST --unix-socket "$sock" -H 'Content-Type: application/json' \
	-d '{"name": "big", "boot": "disk"}' http://hc/v1/images | jq -r .id)
probe "$dir/upload" "$dir/upload.done" &
pp=$!
t0=$(date +%s.%N)
curl -sf --unix-socket "$sock" -T "$dir/disk.raw" \
	"http://hc/v1/images/$id/files/disk" >/dev/null
t1=$(date +%s.%N)
touch "$dir/upload.done"
wait $pp

probe "$dir/finalize" "$dir/finalize.done" &
pp=$!
t2=$(date +%s.%N)
curl -sf -X POST --unix-socket "$sock" -H 'Content-Type: application/json' -d '{}' \
	"http://hc/v1/images/$id/finalize" >"$dir/fin.json"
t3=$(date +%s.%N)
touch "$dir/finalize.done"
wait $pp
[ "$(jq -r .state "$dir/fin.json")" = ready ] || { echo "finalize failed: $(cat "$dir/fin.json")" >&2; exit 1; }

echo "== $BUILD/hcd: a ${SIZE} MiB raw disk uploaded and finalized; GET /v1/info meanwhile (ms)"
printf '%-28s %6s %8s %8s %9s %8s\n' phase n p50 p99 max p99/idle
row "idle" "$dir/idle" "$idle99"
row "during the upload" "$dir/upload" "$idle99"
row "during the finalize" "$dir/finalize" "$idle99"
printf 'upload %.2f s, finalize %.3f s\n' "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t3 - $t2" | bc -l)"
