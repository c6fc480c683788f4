#!/usr/bin/env bash
# Run the libFuzzer harnesses one after the other, each for SECONDS, and
# print a table of what they did (tests/fuzz/README.md).
#
#   run.sh BUILD_DIR SECONDS [HARNESS...]     default: every harness
#
# Each harness starts from its seed corpus (tests/fuzz/corpus/NAME, never
# written to) plus what earlier runs found (WORK/NAME/corpus), with its
# dictionary when there is one.  A crash, a leak, a sanitizer report, a
# broken FUZZ_ASSERT or an input slower than FUZZ_TIMEOUT seconds stops that
# harness; its input is kept in WORK/NAME/crashes/ and the script exits 1
# after running the others.  Inputs slower than 10 s are kept there too
# (slow-unit-*) without failing the run.
#   FUZZ_WORK     where corpora, logs and crashes go (BUILD_DIR/fuzz-work)
#   FUZZ_TIMEOUT  seconds one input may take (30)
#   FUZZ_ARGS     more libFuzzer flags
#   FUZZ_RUNS     NAME=N,...: stop NAME after N executions instead (SECONDS
#                 still bounds it), for a campaign of fixed size
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [HARNESS...]}
secs=${2:?usage: run.sh BUILD_DIR SECONDS [HARNESS...]}
shift 2
work=${FUZZ_WORK:-$build/fuzz-work}
# Every fuzz_NAME.c is a harness; a missing binary (a harness left out of
# meson.build) is an error below, not a silent skip.
mapfile -t all < <(cd "$here" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
harnesses=("${@:-${all[@]}}")

# Inputs longer than libFuzzer's 4096-byte default matter to some: a key
# line may be 16 KiB, a QMP reply overflows hcd's 64 KiB buffer.
max_len() {
	case $1 in
	sshkey) echo 17000 ;;
	qmp) echo 70000 ;;
	routes | range | http) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

printf '%-10s %12s %9s %7s %7s %7s %8s  %s\n' harness execs exec/s cov ft corpus crashes result
failed=0
total=0
for h in "${harnesses[@]}"; do
	bin=$build/tests/fuzz/fuzz_$h
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is not built" >&2
		failed=1
		continue
	fi
	mkdir -p "$work/$h/corpus" "$work/$h/crashes"
	log=$work/$h/log
	: >"$work/$h/started"
	dict=()
	[ -f "$here/dict/$h.dict" ] && dict=(-dict="$here/dict/$h.dict")
	runs=$(tr ',' '\n' <<<"${FUZZ_RUNS:-}" | sed -n "s/^$h=//p" | tail -n1)
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" ${runs:+-runs="$runs"} -timeout="${FUZZ_TIMEOUT:-30}" -rss_limit_mb=2048 \
		-max_len="$(max_len "$h")" -print_final_stats=1 "${dict[@]}" \
		-artifact_prefix="$work/$h/crashes/" ${FUZZ_ARGS:-} \
		"$work/$h/corpus" "$here/corpus/$h" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
	# slow-unit-*: an input over 10 s (libFuzzer's -report_slow_units),
	# kept for a look but no failure: on a loaded machine qemu-img alone
	# can take that long.
	crashes=$(find "$work/$h/crashes" -type f -newer "$work/$h/started" ! -name 'slow-unit-*' | wc -l)
	result=ok
	if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
		result="FAILED (exit $rc): see $log"
		failed=1
	fi
	total=$((total + ${execs:-0}))
	printf '%-10s %12s %9s %7s %7s %7s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
		"${ft:-?}" "${corp:-?}" "$crashes" "$result"
	if [ "$result" != ok ]; then
		grep -E 'ERROR: |FUZZ_ASSERT|SUMMARY|runtime error|Test unit written' "$log" | head -n 8 | sed 's/^/    /'
	fi
done
echo "total executions: $total"
exit $failed
