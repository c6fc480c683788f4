#!/usr/bin/env bash
# Scale of the store and the loop (issue 12 §6; not a test: it prints
# figures, it does not pass or fail).  Run as root:
#
#   bench/scale.sh BUILD_DIR GUEST_DIR
#
# One hcd (TCG, SQLite) in a namespace of its own.  VMs are created through
# the API (bench/scalegen.py: 16 keep-alive connections, not started, one
# NIC each on one network); BENCH_RUNNING tiny guests (2) run as well.  At
# every step of BENCH_STEPS VMs in the store ("100 1000 10000") it prints:
#   create/s  the API's create rate that got there (what a pass per turn
#             of the loop allows);
#   pass ms   a full reconcile pass (GET /v1/info last_pass_ms), median of
#             BENCH_REPS passes (5), each caused by a SIGHUP (resync);
#   RSS MiB   hcd's resident set after those passes (VmRSS), and its peak
#             (VmHWM);
#   list ms   `hc vm list` (table) and `hc --json vm list`, wall time of the
#             whole command, median of BENCH_REPS;
#   info ms   `hc info` the same way: the baseline (process start, connect,
#             one request without store access), measured in the same run.
# The ratios compare each figure at the largest step with the smallest.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
STEPS=${BENCH_STEPS:-100 1000 10000}
RUNNING=${BENCH_RUNNING:-2}
REPS=${BENCH_REPS:-5}
GEN=$SRC/bench/scalegen.py

. "$SRC/bench/lib.sh"
# No periodic resync: every pass measured is one this script asked for.
bench_hcd "$BUILD" scale --resync-interval=86400 --log-level=warn
bench_tiny "$GUEST"
hc net create lan --ipv6 fd00:5ca1:e::/64 --ipv4 10.200.0.0/16 >/dev/null
# Stopped VMs keep their room on their host: make room for all of them, so
# that capacity never decides (as bench/placegen.c does).  Registration
# writes the real figures again only when hcd starts.
sqlite3 "$state/hackcloud.db" "UPDATE hosts SET cpus = 1000000, memory_mib = 1000000000"
for i in $(seq 1 "$RUNNING"); do
	hc vm create "run$i" --image tiny --net lan --memory 128 >/dev/null
done
for i in $(seq 1 "$RUNNING"); do
	for _ in $(seq 1 600); do
		[ "$(hc --json vm show "run$i" | jq -r .state)" = running ] && break
		sleep 0.2
	done
done

info() { curl -s --unix-socket "$state/api.sock" http://hc/v1/info; }
# One pass caused by a SIGHUP; prints its duration once it has run.
pass_ms() {
	local before after
	before=$(info | jq .wakeups.resync)
	kill -HUP "$hcd_pid"
	for _ in $(seq 1 600); do
		after=$(info | jq .wakeups.resync)
		[ "$after" -gt "$before" ] && break
		sleep 0.05
	done
	info | jq .last_pass_ms
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
kib_mib() { awk '{ printf "%.1f", $1 / 1024 }'; }

have=0
declare -A F=()
printf '%-8s %9s %9s %9s %9s %9s %10s %9s\n' VMs create/s "pass ms" "RSS MiB" "peak MiB" \
	"list ms" "--json ms" "info ms"
for n in $STEPS; do
	rate=$(python3 "$GEN" create "$state/api.sock" tiny lan "$have" "$n" | sed 's/.*(\(.*\)\/s)/\1/')
	have=$n
	sleep 1
	pass=$(for _ in $(seq 1 "$REPS"); do pass_ms; done | median)
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$hcd_pid/status" | kib_mib)
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$hcd_pid/status" | kib_mib)
	list=$(python3 "$GEN" time "$REPS" "$BUILD/hc" vm list)
	json=$(python3 "$GEN" time "$REPS" "$BUILD/hc" --json vm list)
	base=$(python3 "$GEN" time "$REPS" "$BUILD/hc" info)
	[ "$(hc --json vm list | jq length)" = $((n + RUNNING)) ] || { echo "scale: vm list is short" >&2; exit 1; }
	printf '%-8s %9s %9s %9s %9s %9s %10s %9s\n' "$n" "$rate" "$pass" "$rss" "$hwm" "$list" "$json" "$base"
	F[pass.$n]=$pass F[rss.$n]=$rss F[list.$n]=$list F[base.$n]=$base
	first=${first:-$n} last=$n
done
echo "-- ratios, $last VMs / $first VMs: pass $(ratio "${F[pass.$last]}" "${F[pass.$first]}")," \
	"RSS $(ratio "${F[rss.$last]}" "${F[rss.$first]}"), vm list $(ratio "${F[list.$last]}" "${F[list.$first]}");" \
	"vm list / hc info at $last: $(ratio "${F[list.$last]}" "${F[base.$last]}")"
echo "-- $RUNNING running guests, the rest stopped; hcd: $(nproc) CPUs, SQLite in $dir"
