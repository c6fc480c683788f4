#!/usr/bin/env bash
# Run every end-to-end test (tests/e2e/test_*.sh) against a build dir and
# a built tiny guest.  Prints one line per test and a closing
# "N passed, N failed" line; exits non-zero when any failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export E2E_BUILD=$(cd "${1:?build dir}" && pwd)
export E2E_GUEST=$(cd "${2:?guest dir}" && pwd)
passed=0 failed=0
for t in "$here"/test_*.sh; do
	[ -n "${E2E_ONLY:-}" ] && [[ "$(basename "$t")" != *"$E2E_ONLY"* ]] && continue
	echo "== $(basename "$t")"
	start=$(date +%s)
	if bash "$t"; then
		passed=$((passed + 1))
		echo "PASS $(basename "$t") ($(( $(date +%s) - start ))s)"
	else
		failed=$((failed + 1))
		echo "FAIL $(basename "$t") ($(( $(date +%s) - start ))s)"
	fi
done
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
