#!/usr/bin/env bash
# The cost of per-NIC limits and traffic counters (issue 13 §1, §2).
#  1. scale: time to apply limits (both directions) to 1,000 and 10,000
#     taps, an agent pass that finds them right, a resync that reads every
#     redirect back, the meter's link dump, removing limits (bench/shapebench
#     in a namespace of its own per size);
#  2. the store's side at the same sizes: what one meter pass writes when
#     every NIC is busy, the agent's list of limits, the usage report;
#  3. per packet: iperf3 through a NIC with limits far above what the
#     machine can push (so only their cost shows: TBF on the tap, ingress
#     redirect through the ifb and its TBF) against an unlimited NIC on the
#     same bridge, interleaved rounds in the same run, as single-stream TCP
#     throughput (CPU-bound on this machine, so the ratio is the per-packet
#     overhead; small UDP packets measured only iperf3's receiver here).  The kernel counts every link
#     whatever we do: counters cost nothing per packet, only the sampling.
# Run as root: bench/shaping.sh BUILD_DIR [SIZES] (default "1000 10000");
# BENCH_PARTS="1 2 3" picks sections, BENCH_ROUNDS (9) and BENCH_SECONDS (3)
# size section 3: each round measures both NICs back to back, and the
# ratio reported is the median of the rounds' ratios, so that the load of
# a shared machine, which drifts, cancels out as far as it can.
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
SIZES=${2:-1000 10000}
PARTS=${BENCH_PARTS:-1 2 3}
DUR=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-9}
dir=$(mktemp -d /tmp/hc-shbench.XXXXXX)
ns=hcshb-$$
nss=()
cleanup() {
	set +e
	pkill -f "iperf3 -s -D -p 52.. --logfile $dir" 2>/dev/null
	for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
mkns() { ip netns add "$1"; nss+=("$1"); ip -n "$1" link set lo up; }
val() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

part() { [[ " $PARTS " == *" $1 "* ]]; }

if part 1; then
echo "== 1. kernel: limits on N taps (in and out 100mbit), seconds"
printf '%8s %8s %8s %8s %8s %10s %10s %14s\n' NICS TAPS APPLY PASS RESYNC STATS_DUMP UNSHAPE100 APPLY/NIC_MS
for n in $SIZES; do
	mkns "$ns-$n"
	ip netns exec "$ns-$n" "$BUILD/shapebench" scale "$n" 100mbit 100mbit >"$dir/scale-$n"
	ip netns del "$ns-$n"
	f=$dir/scale-$n
	printf '%8s %8s %8s %8s %8s %10s %10s %14.2f\n' "$n" "$(val taps_s "$f")" "$(val apply_s "$f")" \
		"$(val again_s "$f")" "$(val thorough_s "$f")" "$(val stats_dump_s "$f")" \
		"$(val unshape_s "$f")" "$(echo "$(val apply_s "$f") * 1000 / $n" | bc -l)"
	[ "$(val again_changed "$f")" = 0 ] || echo "   (the pass after applying changed $(val again_changed "$f") things)"
done

fi

if part 2; then
echo "== 2. store (SQLite): one meter pass with every NIC busy, seconds"
printf '%8s %12s %12s %14s %12s\n' NICS METER_LOAD METER_WRITE SHAPING_LIST USAGE_LIST
for n in $SIZES; do
	mkdir -p "$dir/db-$n"
	"$BUILD/shapebench" store "$n" "$dir/db-$n" 2>/dev/null >"$dir/store-$n"
	f=$dir/store-$n
	printf '%8s %12s %12s %14s %12s\n' "$n" "$(val meter_load_s "$f")" "$(val meter_commit_s "$f")" \
		"$(val shaping_list_s "$f")" "$(val usage_list_s "$f")"
done

fi

part 3 || exit 0
echo "== 3. per packet: a NIC with limits it never reaches vs an unlimited one, ${DUR}s runs"
host=$ns-h
mkns "$host"
ip -n "$host" link add bfff100 type bridge
ip -n "$host" link set bfff100 up
# Two "guests" (their links named like taps: the agent's code shapes by
# name) and a server, all on one bridge.
for i in 1 2; do
	c=$ns-c$i
	mkns "$c"
	ip -n "$host" link add "v02000000000$i" type veth peer name eth0 netns "$c"
	ip -n "$host" link set "v02000000000$i" master bfff100 up
	ip -n "$c" link set eth0 up
	ip -n "$c" addr add "10.98.0.1$i/24" dev eth0
done
mkns "$ns-s"
ip -n "$host" link add hsrv type veth peer name eth0 netns "$ns-s"
ip -n "$host" link set hsrv master bfff100 up
ip -n "$ns-s" link set eth0 up
ip -n "$ns-s" addr add 10.98.0.2/24 dev eth0
ip netns exec "$host" "$BUILD/shapebench" shape 1 100gbit 100gbit >/dev/null
ip netns exec "$host" tc qdisc show dev v020000000001 >"$dir/qd"
grep -q "tbf 4843:" "$dir/qd" || { echo "not shaped: $(cat "$dir/qd")" >&2; exit 1; }
ip netns exec "$ns-s" iperf3 -s -D -p 5201 --logfile "$dir/srv.log"
sleep 0.5
run() { # NIC ARGS… → the receiver's bits/s
	ip netns exec "$ns-c$1" iperf3 -c 10.98.0.2 -p 5201 -t "$DUR" -O 1 -J "${@:2}" >"$dir/r.json" ||
		{ echo 0; return; }
	jq -r '.end.sum_received.bits_per_second | floor' "$dir/r.json"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A res
for r in $(seq 1 "$ROUNDS"); do
	for k in tcp_out tcp_in; do
		args=()
		[ "$k" = tcp_in ] && args=(-R)
		a=$(run 1 "${args[@]}")
		b=$(run 2 "${args[@]}")
		res[1,$k]+=" $a"
		res[2,$k]+=" $b"
		res[ratio,$k]+=" $(echo "$a / $b" | bc -l)"
	done
done
printf '%-28s %16s %16s %10s\n' "medians of $ROUNDS rounds" LIMITED UNLIMITED RATIO
for k in tcp_out tcp_in; do
	what="TCP from the VM (bit/s)"
	[ "$k" = tcp_in ] && what="TCP to the VM (bit/s)"
	printf '%-28s %16s %16s %10.2f\n' "$what" "$(median <<<"${res[1,$k]}")" \
		"$(median <<<"${res[2,$k]}")" "$(median <<<"${res[ratio,$k]}")"
done
for k in tcp_out tcp_in; do
	echo "($k ratios per round:$(for x in ${res[ratio,$k]}; do printf ' %.2f' "$x"; done))"
done
