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
#   pass      a full reconcile pass caused by a SIGHUP (resync), median of
#             BENCH_REPS (5): wall time (GET /v1/info last_pass_ms) and
#             hcd's CPU time per pass (/proc/PID/stat) — on a shared
#             machine the wall time is mostly waiting for a CPU;
#   RSS MiB   hcd's resident set after those passes (VmRSS), and its peak
#             (VmHWM);
#   list      `hc vm list` (the table) and `hc --json vm list`: wall time
#             of the whole command, median of BENCH_REPS, and the CPU both
#             processes spent on it (hc's own + hcd's);
#   info      `hc info` the same way: the baseline (process start, connect,
#             one request without store access), measured in the same run.
# The ratios compare the largest step with the smallest.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
STEPS=${BENCH_STEPS:-100 1000 10000}
RUNNING=${BENCH_RUNNING:-2}
REPS=${BENCH_REPS:-5}
GEN=$SRC/bench/scalegen.py

. "$SRC/bench/lib.sh"
bench_setup scale
# Its guests and dnsmasqs go with it.
BENCH_ON_EXIT+=('for p in $(pgrep -f "qemu-system-x86_64.*$state") $(pgrep -f "dnsmasq.*$state"); do kill -9 "$p"; done')
# No periodic resync: every pass measured is one this script asked for.
bench_hcd --resync-interval=86400 --log-level=warn
hc() { "$BUILD/hc" "$@"; }
bench_tiny
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
hcd_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$hcd_pid/stat"; }
# One pass caused by a SIGHUP; prints its wall time once it has run.
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
# CMD timed by scalegen; prints "wall cpu" with hcd's CPU added to the CPU.
cmd_ms() {
	local c0 c1 out
	c0=$(hcd_cpu_ms)
	out=$(python3 "$GEN" time "$REPS" "$@")
	c1=$(hcd_cpu_ms)
	awk -v o="$out" -v d="$((c1 - c0))" -v n="$REPS" \
		'BEGIN { split(o, a, " "); printf "%.0f %.0f", a[1], a[2] + d / n }'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
kib_mib() { awk '{ printf "%.1f", $1 / 1024 }'; }

have=0
declare -A F=()
printf '%-7s %8s | %7s %7s | %6s %6s | %13s %13s %13s\n' "" "" "pass ms" "" "RSS" "MiB" \
	"vm list ms" "--json ms" "info ms"
printf '%-7s %8s | %7s %7s | %6s %6s | %13s %13s %13s\n' VMs create/s wall cpu now peak \
	"wall / cpu" "wall / cpu" "wall / cpu"
for n in $STEPS; do
	rate=$(python3 "$GEN" create "$state/api.sock" tiny lan "$have" "$n" | sed 's/.*(\(.*\)\/s)/\1/')
	have=$n
	sleep 1
	c0=$(hcd_cpu_ms)
	pass=$(for _ in $(seq 1 "$REPS"); do pass_ms; done | median)
	c1=$(hcd_cpu_ms)
	pcpu=$(( (c1 - c0) / REPS ))
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$hcd_pid/status" | kib_mib)
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$hcd_pid/status" | kib_mib)
	read -r lw lc <<<"$(cmd_ms "$BUILD/hc" vm list)"
	read -r jw jc <<<"$(cmd_ms "$BUILD/hc" --json vm list)"
	read -r bw bc <<<"$(cmd_ms "$BUILD/hc" info)"
	[ "$(hc --json vm list | jq length)" = $((n + RUNNING)) ] || { echo "scale: vm list is short" >&2; exit 1; }
	printf '%-7s %8s | %7.0f %7s | %6s %6s | %6s / %4s %6s / %4s %6s / %4s\n' "$n" "$rate" "$pass" "$pcpu" \
		"$rss" "$hwm" "$lw" "$lc" "$jw" "$jc" "$bw" "$bc"
	F[pass.$n]=$pcpu F[rss.$n]=$rss F[list.$n]=$lc F[base.$n]=$bc
	first=${first:-$n} last=$n
done
echo "-- CPU ratios, $last VMs / $first VMs: pass $(ratio "${F[pass.$last]}" "${F[pass.$first]}")," \
	"vm list $(ratio "${F[list.$last]}" "${F[list.$first]}"); RSS $(ratio "${F[rss.$last]}" "${F[rss.$first]}");" \
	"vm list / hc info at $last: $(ratio "${F[list.$last]}" "${F[base.$last]}")"
echo "-- $RUNNING running guests, the rest stopped; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
