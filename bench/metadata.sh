#!/usr/bin/env bash
# Metadata service throughput and p99 latency, from one guest address and
# from many at once, against a baseline measured in the same run.  The
# "guests" are namespaces on the bridge that present registered NICs (VMs
# created with --no-start): the service sees exactly what a guest would
# send, without TCG guests eating the CPU.
#
# Servers, interleaved round by round on the same address and port:
#   static  build/mdstatic: a fixed answer from the same HTTP library in
#           the same mode, no identification, no limits, no store (the floor)
#   hcd     the metadata service of BUILD (rate limit off)
#   base    the metadata service of $BASE_BUILD, when set (e.g. a build of
#           main before a change)
# Loads, each BENCH_SECONDS (5) per run, wrk -t1 -c4 --latency per guest:
#   1 guest, N guests (8) as fast as they can, and N guests paced to about
#   10,000 requests/s in total (each connection waits 3 ms between
#   requests), where p99 is the service's latency rather than queueing.
# Medians over BENCH_ROUNDS (3) rounds.  Then the per-VM limit at work.
# BENCH_NICE (0) runs the servers, baseline and hcd alike, at that nice
# level: on a machine shared with other jobs, -10 keeps their CPU use out
# of the servers' latency (the clients stay at 0).
# Run as root: bench/metadata.sh BUILD_DIR [N_CLIENTS]
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
N=${2:-8}
DUR=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
NICE=${BENCH_NICE:-0}
BASE=${BASE_BUILD:+$(cd "$BASE_BUILD" && pwd)}
dir=$(mktemp -d /tmp/hc-mdbench.XXXXXX)
chmod 711 "$dir"
ns=hcmdb-$$
state=$dir/state
pid=
nss=("$ns")
cleanup() {
	set +e
	[ -n "$pid" ] && kill -9 "$pid"
	for p in $(pgrep -f "dnsmasq.*$state"); do kill -9 "$p"; done
	for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$state"
export HC_URL=unix:$state/api.sock

# start SERVER [hcd options…]: run it in the namespace, wait until it answers.
start() {
	local what=$1
	shift
	case $what in
	static) ip netns exec "$ns" nice -n "$NICE" "$BUILD/mdstatic" >>"$dir/static.log" 2>&1 & ;;
	hcd|base)
		local bin=$BUILD/hcd
		[ "$what" = base ] && bin=$BASE/hcd
		ip netns exec "$ns" nice -n "$NICE" "$bin" --state-dir "$state" --accel tcg --log-level=info "$@" \
			>>"$dir/$what.log" 2>&1 & ;;
	esac
	pid=$!
	for _ in $(seq 1 100); do
		if [ -e "$dir/guests" ]; then   # any HTTP answer to guest 1
			ip netns exec "hcmdbc1-$$" curl -s -o /dev/null --max-time 1 "$url" && return
		else
			"$BUILD/hc" info >/dev/null 2>&1 && return
		fi
		sleep 0.1
	done
	echo "$what did not start" >&2
	exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# A one-byte kernel is enough: no VM boots here.
echo x >"$dir/k"
url=http://169.254.169.254/latest/meta-data/instance-id
start hcd --metadata-rate=0
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
	# The bridge's ends get MACs above any other port's, so the bridge's
	# own MAC (its ports' lowest) never changes under the guests.
	ip -n "$ns" link add "mdb$i" address "$(printf 'fe:ff:ff:ff:ff:%02x' "$i")" type veth \
		peer name eth0 netns "$c"
	ip -n "$ns" link set "mdb$i" master "$br" up
	ip -n "$c" link set lo up
	ip -n "$c" link set eth0 address "$mac" up
	ip -n "$c" addr add "$ip4/16" dev eth0
	ip -n "$c" route add default via 10.89.0.1
done
ip netns exec "hcmdbc1-$$" curl -sf "$url" >/dev/null || { echo "guest 1 is not answered" >&2; exit 1; }
touch "$dir/guests"
stop
printf 'function delay()\n  return 3\nend\n' >"$dir/paced.lua"

run_wrk() { ip netns exec "hcmdbc$1-$$" wrk -t1 -c4 -d"${DUR}s" --latency "${@:2}" "$url"; }
rps_of() { awk '/Requests\/sec/ {print $2}' "$1"; }
# p99 in ms, whatever unit wrk chose.
p99_of() {
	awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v) }' "$1"
}
# many TAG [wrk options…]: all N guests at once; appends "req/s worst-p99-ms".
many() {
	local tag=$1 wl=() total=0 worst=0 i
	shift
	for i in $(seq 1 "$N"); do run_wrk "$i" "$@" >"$dir/w$i" & wl+=($!); done
	wait "${wl[@]}" || true
	for i in $(seq 1 "$N"); do
		total=$(echo "$total + $(rps_of "$dir/w$i")" | bc)
		worst=$(echo "$(p99_of "$dir/w$i") $worst" | awk '{ print ($1 > $2 ? $1 : $2) }')
	done
	echo "$total $worst" >>"$dir/$tag"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
col() { awk -v c="$2" '{ print $c }' "$dir/$1" | median; }

servers=(static hcd)
[ -n "$BASE" ] && servers+=(base)
echo "== metadata service: ${DUR}s per run, wrk -t1 -c4 per guest, $ROUNDS rounds interleaved, medians" \
	"(servers at nice $NICE; load average before: $(cut -d' ' -f1 /proc/loadavg))"
for r in $(seq 1 "$ROUNDS"); do
	for s in "${servers[@]}"; do
		start "$s" --metadata-rate=0
		run_wrk 1 -d1s >/dev/null                  # warm up: caches, connections
		run_wrk 1 >"$dir/one"
		echo "$(rps_of "$dir/one") $(p99_of "$dir/one")" >>"$dir/$s.one"
		many "$s.many"
		many "$s.paced" -s "$dir/paced.lua"
		stop
	done
done
printf '%-8s %14s %10s %18s %10s %18s %10s\n' server "1 guest req/s" p99-ms "$N guests req/s" \
	worst-p99 "$N paced req/s" worst-p99
for s in "${servers[@]}"; do
	printf '%-8s %14.0f %10.2f %18.0f %10.2f %18.0f %10.2f\n' "$s" \
		"$(col "$s.one" 1)" "$(col "$s.one" 2)" "$(col "$s.many" 1)" "$(col "$s.many" 2)" \
		"$(col "$s.paced" 1)" "$(col "$s.paced" 2)"
done
for s in "${servers[@]}"; do
	[ "$s" = static ] && continue
	printf 'ratio %s/static: 1 guest %.2f, %d guests %.2f\n' "$s" \
		"$(echo "$(col "$s.one" 1) / $(col static.one 1)" | bc -l)" "$N" \
		"$(echo "$(col "$s.many" 1) / $(col static.many 1)" | bc -l)"
done
echo "hcd's own count of its last run:"
grep -h 'metadata: .* requests' "$dir/hcd.log" | tail -1 | sed 's/^[^ ]* [a-z]*: /  /'

echo "== one guest hammering with the default limit (20 req/s per VM)"
start hcd --metadata-rate=20
run_wrk 1 >"$dir/limited" &
wl=$!
sleep 2
ok=$(ip netns exec "hcmdbc2-$$" curl -s -o /dev/null -w '%{http_code}' "$url")
wait "$wl" || true
printf 'limited guest:  %8.0f req/s answered (mostly 429), another guest meanwhile: HTTP %s\n' \
	"$(rps_of "$dir/limited")" "$ok"
stop
