#!/usr/bin/env bash
# Benchmarks of the cluster's store (issue 7; not tests: they print
# figures, they do not pass or fail).  Run from anywhere:
#
#   bench/cluster.sh BUILD_DIR
#
# Placement throughput: VMs scheduled per second with 3 hosts, in an empty
# store and with 1,000 VMs in it, on PostgreSQL (a throwaway server from
# tests/pg.sh, reached over TCP on loopback as a remote host would) and on
# SQLite, the baseline of the ratios.  bench/placegen.c does the work
# through the store's own functions: store_place (the decision alone) and
# store_vm_create_placed (decision + the VM and its NIC, one transaction,
# what POST /v1/vms does after parsing).  Each figure is the median of
# $BENCH_REPS fresh databases (3).  As root, the server runs as `postgres`.
# Trigger latency (store write → a remote agent acting) is measured by
# bench/triggers.sh.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?build dir}" && pwd)
REPS=${BENCH_REPS:-3}
VMS=${BENCH_VMS:-1000}
SAMPLE=${BENCH_SAMPLE:-200}

ninja -C "$BUILD" placegen >/dev/null
PLACEGEN=$BUILD/placegen
dir=$(mktemp -d /tmp/hc-clbench.XXXXXX)
. "$SRC/tests/pg.sh"
cleanup() {
	set +e
	pg_stop
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
pg_start >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# run ENGINE REP: one placegen run on a fresh database, output in $dir.
run() {
	local uri out=$dir/$1.$2
	if [ "$1" = sqlite ]; then
		mkdir -p "$dir/s$2"
		uri=sqlite:$dir/s$2/hackcloud.db
	else
		psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d hctest -c "CREATE DATABASE run$2"
		uri=${PG_URI%/hctest}/run$2
	fi
	"$PLACEGEN" -H 3 -n "$VMS" -m "$SAMPLE" "$uri" "$dir" >"$out" 2>>"$dir/log"
}
# fig ENGINE WHAT VMS_IN_STORE: the median over the runs
fig() {
	local r
	for r in $(seq 1 "$REPS"); do
		awk -v w="$2" -v n="$3" '$1 == w && $2 == n { print $3 }' "$dir/$1.$r"
	done | median
}

for r in $(seq 1 "$REPS"); do
	run sqlite "$r"
	run pg "$r"
done

declare -A F=()
for e in sqlite pg; do
	for w in decide place; do
		for n in 0 "$VMS"; do F[$e.$w.$n]=$(fig "$e" "$w" "$n"); done
	done
done
echo "== placement with 3 hosts, per second (median of $REPS fresh databases, $SAMPLE samples each)"
echo "   decide = store_place alone; place = store_vm_create_placed (decision + VM + NIC)"
echo "   ratios: PostgreSQL / SQLite, and with $VMS VMs in the store / empty store"
printf '%-12s %9s %11s %7s   %9s %11s %7s\n' "" decide/s "" "" place/s "" ""
printf '%-12s %9s %11s %7s   %9s %11s %7s\n' "VMs in store" SQLite PostgreSQL PG/SQL \
	SQLite PostgreSQL PG/SQL
for n in 0 "$VMS"; do
	printf '%-12s %9s %11s %7s   %9s %11s %7s\n' "$n" \
		"${F[sqlite.decide.$n]}" "${F[pg.decide.$n]}" "$(ratio "${F[pg.decide.$n]}" "${F[sqlite.decide.$n]}")" \
		"${F[sqlite.place.$n]}" "${F[pg.place.$n]}" "$(ratio "${F[pg.place.$n]}" "${F[sqlite.place.$n]}")"
done
printf '%-12s %9s %11s %7s   %9s %11s\n' "ratio $VMS/0" \
	"$(ratio "${F[sqlite.decide.$VMS]}" "${F[sqlite.decide.0]}")" \
	"$(ratio "${F[pg.decide.$VMS]}" "${F[pg.decide.0]}")" "" \
	"$(ratio "${F[sqlite.place.$VMS]}" "${F[sqlite.place.0]}")" \
	"$(ratio "${F[pg.place.$VMS]}" "${F[pg.place.0]}")"
echo "-- where the VMs went (last PostgreSQL run; memory sizes cycle 128…1024 MiB):"
grep '^spread' "$dir/pg.$REPS" | sed 's/^spread/  /'
