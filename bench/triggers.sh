#!/usr/bin/env bash
# Trigger latency of the store (issue 7; not a test: it prints figures, it
# does not pass or fail).  Run from anywhere:
#
#   bench/triggers.sh BUILD_DIR
#
# A throwaway PostgreSQL (tests/pg.sh, reached over TCP on loopback as a
# remote host would) and bench/trigbench.c: one process commits changes of
# intent (a VM's desired state, one transaction each) through one store
# handle; a second process, with its own handle, waits in poll() on
# store_notify_fd and drains.  Per write, p50 and p95 over $BENCH_WRITES
# (200) of:
#   write     the write itself, BEGIN … NOTIFY … COMMIT, as the writer sees it
#   trigger   write started → the other handle has drained the announcement
#   after     write returned → announcement drained (negative: the listener
#             heard of the commit before the writer had the server's answer)
#   quiet     the same write without the announcement (the baseline)
# and the ratios trigger/write and write/quiet of the p50s, from this run.
#
# Then, as root, the same path through two hcd (hosts a and b, each in a
# network namespace of its own, resync ten minutes away): $BENCH_CHANGES
# (40) start/stop requests to a's API for a VM placed on b, each timed
# from the request to the line of b's log that says its agent acts on a
# store notification — store write → remote agent acting.  The VM's image
# is a dummy, so b's action is "starting" then an error, or "stopped": no
# guest runs, the figure is the trigger path and not QEMU.  The API
# request alone (a's answer) is the baseline of that ratio.
# As root, the server runs as `postgres`.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?build dir}" && pwd)
WRITES=${BENCH_WRITES:-200}
CHANGES=${BENCH_CHANGES:-40}

ninja -C "$BUILD" trigbench hcd hc >/dev/null
dir=$(mktemp -d /tmp/hc-trigbench.XXXXXX)
chmod 711 "$dir"
. "$SRC/tests/pg.sh"
pids=() namespaces=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill -9 "$p"; done 2>/dev/null
	for p in "${pids[@]}"; do wait "$p"; done 2>/dev/null
	for p in $(pgrep -f "qemu-system-x86_64.*$dir/"); do kill -9 "$p"; done
	for n in "${namespaces[@]}"; do ip netns del "$n"; done 2>/dev/null
	pg_stop
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
pg_start >/dev/null

"$BUILD/trigbench" -n "$WRITES" "$PG_URI" "$dir" >"$dir/out" 2>"$dir/log" || {
	cat "$dir/log" >&2
	exit 1
}

# pct FIELD P: the P-th percentile (nearest rank) of a field, in ms.
pct() {
	awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }' "$dir/out" | sort -n |
		awk -v p="$2" '{ a[NR] = $1 } END { r = int((p * NR + 99) / 100); if (r < 1) r = 1;
			printf "%.2f", a[r] / 1000 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b != 0 ? a / b : 0) }'; }

echo "== trigger latency over PostgreSQL (TCP loopback), $WRITES writes, ms"
printf '%-8s %8s %8s\n' "" p50 p95
for f in write trigger after quiet; do
	printf '%-8s %8s %8s\n' "$f" "$(pct "$f" 50)" "$(pct "$f" 95)"
done
echo "ratios of the p50s: trigger/write $(ratio "$(pct trigger 50)" "$(pct write 50)")," \
	"write/quiet $(ratio "$(pct write 50)" "$(pct quiet 50)")"

[ "$(id -u)" = 0 ] || { echo "(not root: hcd → hcd part skipped)"; exit 0; }

# hcd_host NAME: host NAME's hcd in namespace hctrig-NAME-$$, state $dir/NAME.
hcd_host() {
	local ns=hctrig-$1-$$ i
	ip netns add "$ns"
	namespaces+=("$ns")
	ip -n "$ns" link set lo up
	mkdir -p "$dir/$1"
	# A simple command, so that $! is hcd itself.
	ip netns exec "$ns" "$BUILD/hcd" --state-dir "$dir/$1" --accel tcg --stop-timeout=2 \
		--store="$PG_SOCKET_URI" --host-name="$1" --resync-interval=600 \
		>>"$dir/hcd-$1.log" 2>&1 &
	pids+=($!)
	for i in $(seq 1 150); do
		curl -sf --unix-socket "$dir/$1/api.sock" http://hc/v1/info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "hcd of $1 did not come up" >&2
	exit 1
}
hcd_host a
hcd_host b
hc() { HC_URL="unix:$dir/a/api.sock" "$BUILD/hc" "$@"; }
head -c 4096 /dev/zero >"$dir/kernel"
hc image import dummy --kernel "$dir/kernel" >/dev/null
hc vm create x --image dummy --host b --no-start >/dev/null
sleep 1

# The requests come from python, so that the clock starts at the request
# and not at a curl process starting up; b's log stamps are wall-clock ms.
python3 - "$dir" "$CHANGES" >"$dir/hcd.ms" <<'PY'
import datetime, http.client, socket, sys, time
d, n = sys.argv[1], int(sys.argv[2])
log = d + "/hcd-b.log"
class Unix(http.client.HTTPConnection):
	def connect(self):
		self.sock = socket.socket(socket.AF_UNIX)
		self.sock.connect(d + "/a/api.sock")
def acts():
	with open(log) as f:
		return [l for l in f if "acting on a store notification" in l]
for i in range(n):
	verb = "start" if i % 2 == 0 else "stop"
	before = len(acts())
	c = Unix("hc")
	t0 = time.time()
	c.request("POST", "/v1/vms/x/" + verb, body="{}", headers={"Content-Type": "application/json"})
	c.getresponse().read()
	t1 = time.time()
	c.close()
	deadline = t0 + 5
	while len(acts()) <= before and time.time() < deadline:
		time.sleep(0.002)
	lines = acts()
	if len(lines) <= before:
		sys.exit("b did not act on %s %d" % (verb, i))
	stamp = datetime.datetime.strptime(lines[before].split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
	acted = stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
	print("acted %d api %d" % ((acted - t0) * 1e6, (t1 - t0) * 1e6))
	time.sleep(0.3)  # b's failed launch or its stop settles before the next change
PY
wake=$(curl -sf --unix-socket "$dir/b/api.sock" http://hc/v1/info | jq -c .wakeups)
cp "$dir/hcd.ms" "$dir/out"
echo "== hcd a's API → hcd b's agent acting, $CHANGES changes, ms (b's log stamps: 1 ms)"
printf '%-8s %8s %8s\n' "" p50 p95
for f in acted api; do
	printf '%-8s %8s %8s\n' "$f" "$(pct "$f" 50)" "$(pct "$f" 95)"
done
echo "ratio of the p50s: acted/api $(ratio "$(pct acted 50)" "$(pct api 50)"); b's wake-ups: $wake"
