#!/usr/bin/env bash
# Live migration (issue 14 §1; not a test: it prints figures, it does not
# pass or fail).  As root, from anywhere:
#
#   bench/migrate.sh BUILD_DIR GUEST_DIR
#
# The three-host namespace cluster of the e2e tests (tests/e2e/cluster.sh:
# one PostgreSQL, an underlay bridge, shared image storage), no bandwidth
# cap.  Two guests on h1 move h1 → h2 → h1, $BENCH_REPS (3) round trips
# each, while a third guest on h3 pings the moving one every
# $BENCH_PING_MS (20) ms:
#   tiny   the tiny guest (128 MiB, 64 MiB blank root disk), idle;
#   disk   the same with a 1 GiB data disk that the guest keeps writing
#          (random 4 MiB blocks, fsync'd) during the migration.
# Per migration: QEMU's total time and downtime (query-migrate), the wall
# time of `hc vm migrate` (request → both hosts done), and the pings lost
# (transmitted − received over the migration; × the interval = what the
# network saw), and as the baseline of that the pings lost over
# $BENCH_CONTROL_S (15) s of the same load without a migration.  Printed as medians with the ratios of the downtimes to
# QEMU's default downtime-limit (300 ms) and Nova's default
# live_migration_downtime (500 ms).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
export E2E_BUILD=$(cd "${1:?build dir}" && pwd)
export E2E_GUEST=$(cd "${2:?guest dir}" && pwd)
export E2E_OPENAPI_CHECK=0
REPS=${BENCH_REPS:-3}
PING_MS=${BENCH_PING_MS:-20}
CONTROL_S=${BENCH_CONTROL_S:-15}
QEMU_TARGET_MS=300
NOVA_MAX_MS=500

. "$SRC/tests/e2e/lib.sh"
. "$SRC/tests/e2e/cluster.sh"
# shellcheck disable=SC2034 # cluster.sh reads it
CL_HCD_ARGS=("--heartbeat-interval=1" "--dead-timeout=10" "--resync-interval=600")
cl_setup h1 h2 h3
for h in h1 h2 h3; do cl_hcd_start "$h"; done
for i in $(seq 1 50); do
	[ "$(hc --json host list | jq '[.[] | select(.state == "live")] | length')" = 3 ] && break
	sleep 0.2
done
import_tiny tiny
hc net create span --ipv6 fd00:be:c1::/64 --ipv4 10.83.0.0/24 >/dev/null
hc vm create tiny --image tiny --net span --host h1 --memory 128 --disk-size 64M >/dev/null
hc vm create disk --image tiny --net span --host h1 --memory 128 --disk-size 64M --disk 1G >/dev/null
hc vm create pinger --image tiny --net span --host h3 --memory 96 >/dev/null
for vm in tiny disk pinger; do wait_state "$vm" running 180; done
for vm in tiny disk pinger; do cl_wait_log "$vm" HACKCLOUD-NET-UP 240; done
interval=$(awk -v ms="$PING_MS" 'BEGIN { printf "%.3f", ms / 1000 }')

# migrate VM DEST: one migration while pinger pings VM; prints
# "total downtime wall lost sent".
migrate() {
	local vm=$1 dest=$2 addr t0 t1 m stats
	addr=$(vm_field "$vm" '.nics[0].ipv6')
	cl_guest_run pinger 10 "(ping -6 -i $interval $addr > /tmp/ping.log 2>&1 &)" >/dev/null
	sleep 1
	t0=$(date +%s%N)
	hc vm migrate "$vm" --host "$dest" >/dev/null || fail "migration of $vm to $dest failed"
	t1=$(date +%s%N)
	sleep 1
	stats=$(cl_guest_run pinger 10 'killall -INT ping; sleep 1; tail -n 3 /tmp/ping.log' |
		grep -Eo '[0-9]+ packets transmitted, [0-9]+ packets received' | grep -Eo '[0-9]+' | tr '\n' ' ')
	m=$(api_on "$CL_ASK" GET "/v1/vms/$vm/migration")
	read -r sent got <<<"$stats"
	echo "$(jq -r .total_ms <<<"$m") $(jq -r .downtime_ms <<<"$m") $(( (t1 - t0) / 1000000 ))" \
		"$((sent - got)) $sent"
}

# control VM SECONDS: the same pings with no migration ("lost sent"): what
# the load alone costs (TCG guests on a shared machine, the writer).
control() {
	local addr stats sent got
	addr=$(vm_field "$1" '.nics[0].ipv6')
	cl_guest_run pinger 10 "(ping -6 -i $interval $addr > /tmp/ping.log 2>&1 &)" >/dev/null
	sleep "$2"
	stats=$(cl_guest_run pinger 10 'killall -INT ping; sleep 1; tail -n 3 /tmp/ping.log' |
		grep -Eo '[0-9]+ packets transmitted, [0-9]+ packets received' | grep -Eo '[0-9]+' | tr '\n' ' ')
	read -r sent got <<<"$stats"
	echo "$((sent - got)) $sent"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { awk -v c="$1" '{ print $c }' "$2" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

for vm in tiny disk; do
	: >"$T_DIR/$vm.runs"
	if [ "$vm" = disk ]; then
		cl_guest_run disk 60 '(while :; do dd if=/dev/urandom of=/dev/vdb bs=1M count=4 seek=$((RANDOM % 1000)) conv=fsync 2>/dev/null; done) & echo $! > /tmp/writer.pid' >/dev/null
	fi
	control "$vm" "$CONTROL_S" >"$T_DIR/$vm.control"
	for r in $(seq 1 "$REPS"); do
		migrate "$vm" h2 >>"$T_DIR/$vm.runs"
		migrate "$vm" h1 >>"$T_DIR/$vm.runs"
	done
	echo "== $vm: total_ms downtime_ms wall_ms lost_pings sent_pings, per migration"
	cat "$T_DIR/$vm.runs"
	echo "== $vm: lost_pings sent_pings in ${CONTROL_S} s without a migration"
	cat "$T_DIR/$vm.control"
done

echo
echo "Medians over $((2 * REPS)) migrations each; pings every $PING_MS ms from a third host."
printf '%-6s %9s %12s %9s %11s %12s %14s %14s\n' guest "total ms" "downtime ms" "wall ms" "lost pings" \
	"lost ms" "down/300 QEMU" "down/500 Nova"
for vm in tiny disk; do
	total=$(col 1 "$T_DIR/$vm.runs"); down=$(col 2 "$T_DIR/$vm.runs")
	wall=$(col 3 "$T_DIR/$vm.runs"); lost=$(col 4 "$T_DIR/$vm.runs")
	printf '%-6s %9s %12s %9s %11s %12s %14s %14s\n' "$vm" "$total" "$down" "$wall" "$lost" \
		"$((lost * PING_MS))" "$(ratio "$down" $QEMU_TARGET_MS)" "$(ratio "$down" $NOVA_MAX_MS)"
done
for vm in tiny disk; do
	read -r lost sent <"$T_DIR/$vm.control"
	echo "$vm without a migration: $lost of $sent pings lost in $CONTROL_S s"
done
echo "lost ms / 500 (Nova): tiny $(ratio "$(( $(col 4 "$T_DIR/tiny.runs") * PING_MS ))" $NOVA_MAX_MS)," \
	"disk $(ratio "$(( $(col 4 "$T_DIR/disk.runs") * PING_MS ))" $NOVA_MAX_MS)"
