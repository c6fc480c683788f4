#!/usr/bin/env bash
# Every benchmark of bench/, one after another (`make bench`), or the ones
# named: each script with the arguments it takes, its own defaults
# otherwise (environment variables are passed through: BENCH_ROUNDS, …).
# A script that fails does not stop the others; the list of those that
# failed is printed at the end, and the exit status says whether any did.
# Run as root:
#   bench/all.sh BUILD GUEST [NAME…]
# NAME is a script's name without .sh; the default order below runs the
# ones that boot no guest first.  Each takes minutes; scale (10,000 VMs
# through the API) takes the longest.
set -uo pipefail
BUILD=${1:?build dir}
GUEST=${2:?guest dir}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
ALL=(firewall loop api metadata metrics image_finalize triggers cluster run vmlife scale)
[ $# -gt 0 ] && ALL=("$@")

failed=()
for name in "${ALL[@]}"; do
	echo "######## bench/$name.sh ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1 /proc/loadavg))"
	case $name in
	firewall) "$HERE/firewall.sh" ;;
	cluster|triggers|metadata|image_finalize) "$HERE/$name.sh" "$BUILD" ;;
	vmlife) "$HERE/deps.sh" && "$HERE/vmlife.sh" "$BUILD" "$GUEST" ;;
	run|loop|api|metrics|scale) "$HERE/$name.sh" "$BUILD" "$GUEST" ;;
	*) echo "bench: no benchmark '$name'" >&2; false ;;
	esac || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}" >&2
	exit 1
fi
