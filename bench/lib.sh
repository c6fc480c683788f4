# shellcheck shell=bash
# Shared setup of bench/api.sh, bench/loop.sh and bench/scale.sh: a namespace in which
# ::1 is called "hcd-bench" (wrk sends the URL's host as TLS SNI even when
# it is an address literal, which GnuTLS refuses), a certificate for that
# name, hcd on a fresh state dir, and an admin with a token.
#   bench_setup PREFIX    sets dir, ns, state; the EXIT trap removes them
#   bench_hcd ARGS…       (re)starts hcd in the namespace (hcd_pid)
#   bench_tiny            image "tiny" (the tiny guest of $GUEST)
#   bench_fixture         image "tiny", a stopped VM ($vm), admin "bench" ($tok)
#   median                the median of numbers on stdin, one a line
#   med "N N N"           the median of a space-separated list
#   bench_table_head      the header of a table of probe phases
#   bench_row WHAT "RPS…" "P50_US…" "P99_US…" BASE_P99_US
#                         one row of it: medians of the rounds, ms, p99 × base
# BENCH_ON_EXIT: commands (strings) run first at exit.
BENCH_ON_EXIT=()
hcd_pid=

bench_setup() {
	dir=$(mktemp -d "/tmp/hc-bench-$1.XXXXXX")
	chmod 711 "$dir"   # dnsmasq runs as its own user and must reach the state dir
	ns=hcb$1-$$
	state=$dir/state
	trap bench_cleanup EXIT
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	mkdir -p "/etc/netns/$ns" "$state"
	echo "::1 hcd-bench" >"/etc/netns/$ns/hosts"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=hcd-bench -addext 'subjectAltName=DNS:hcd-bench' \
		-keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
	export HC_URL=unix:$state/api.sock
}

bench_cleanup() {
	set +e
	local c
	for c in "${BENCH_ON_EXIT[@]}"; do eval "$c"; done
	[ -n "$hcd_pid" ] && kill "$hcd_pid" && wait "$hcd_pid"
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir" "/etc/netns/$ns"
}

bench_hcd() {
	if [ -n "$hcd_pid" ]; then kill "$hcd_pid"; wait "$hcd_pid" || true; fi
	ip netns exec "$ns" "$BUILD/hcd" --state-dir "$state" --accel tcg --api-rate=0 "$@" \
		>>"$dir/hcd.log" 2>&1 &
	hcd_pid=$!
	for _ in $(seq 1 100); do "$BUILD/hc" info >/dev/null 2>&1 && return; sleep 0.1; done
	echo "hcd did not start: $(tail -3 "$dir/hcd.log")" >&2
	exit 1
}

bench_tiny() {
	"$BUILD/hc" image import tiny --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
		--cmdline "$(cat "$GUEST/cmdline")" >/dev/null
}

bench_fixture() {
	bench_tiny
	vm=$("$BUILD/hc" --json vm create bench --image tiny --no-start | jq -r .id)
	printf 'bench-password\n' | "$BUILD/hc" user create bench --role admin --auth file --password-stdin >/dev/null
	tok=$(curl -s --unix-socket "$state/api.sock" -H 'Content-Type: application/json' \
		--data-binary '{"user": "bench", "password": "bench-password"}' http://hc/v1/login | jq -r .token)
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
med() { tr ' ' '\n' <<<"$1" | grep . | median; }

bench_table_head() { printf '%-44s %8s %9s %9s %6s\n' phase "req/s" "p50 ms" "p99 ms" "p99 ×"; }
bench_row() {
	local q
	q=$(med "$4")
	awk -v w="$1" -v r="$(med "$2")" -v a="$(med "$3")" -v q="$q" -v b="$5" \
		'BEGIN { printf "%-44s %8s %9.2f %9.2f %6.2f\n", w, r, a / 1000, q / 1000, q / b }'
}
