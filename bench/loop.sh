#!/usr/bin/env bash
# Nothing slow on the loop (issue 12 §3), the login part: GET /v1/vms/{id}
# latency on the unix socket (bench/httpload, 4 connections) measured
#   1. idle (the baseline of this run),
#   2. while 3 peers log in without pause against an LDAP server that
#      accepts and never answers (each login waits the bind timeout, 3 s),
#   3. with 3 more peers logging in file users (argon2id) without pause.
# Prints p50/p99 of each phase and p99 against idle.  Not a test: figures
# only.  Run as root: ./bench/loop.sh BUILD GUEST [SECONDS]
# (BUILD may be another tree's build dir, to compare before and after.)
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
DUR=${3:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=4
PORT=8443
LDAP_PORT=3890
HERE=$(cd "$(dirname "$0")" && pwd)
LOAD=${HTTPLOAD:-$HERE/../build/httpload}

loops=()
silent_pid=
. "$HERE/lib.sh"
bench_setup loop
# socat forks a child per connection, the loops curl: end whole groups.
BENCH_ON_EXIT+=('stop_loops' '[ -n "$silent_pid" ] && kill -- "-$silent_pid"')
bench_hcd --log-level=info --listen="[::1]:$PORT" --tls-cert="$dir/tls.crt" --tls-key="$dir/tls.key" \
	--auth.ldap-uri="ldap://127.0.0.1:$LDAP_PORT" --auth.ldap-base=dc=example --auth.ldap-timeout=3
bench_fixture
hc() { "$BUILD/hc" "$@"; }
for i in 1 2 3; do hc user create "dir$i" --auth ldap >/dev/null; done
for i in 4 5 6; do printf 'file-password\n' | hc user create "file$i" --auth file --password-stdin >/dev/null; done

setsid ip netns exec "$ns" socat TCP-LISTEN:"$LDAP_PORT",bind=127.0.0.1,reuseaddr,fork SYSTEM:'sleep 3600' &
silent_pid=$!

measure() {
	"$LOAD" "$state/api.sock" "/v1/vms/$vm" "$DUR" $CONNS "$tok" |
		sed 's/.*rps=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\).*/\1 \2 \3/'
}

# login_loop SRC USER PASSWORD: one login after another from its own /64
login_loop() {
	while :; do
		ip netns exec "$ns" curl -s -o /dev/null --max-time 30 --cacert "$dir/tls.crt" --interface "$1" \
			-H 'Content-Type: application/json' --data-binary "{\"user\": \"$2\", \"password\": \"$3\"}" \
			"https://hcd-bench:$PORT/v1/login" || true
	done
}

start_loops() {   # start_loops FIRST LAST USER-PREFIX PASSWORD
	for i in $(seq "$1" "$2"); do
		setsid bash -c "$(declare -f login_loop); ns=$ns dir=$dir PORT=$PORT login_loop 2001:db8:b$i::1 $3$i $4" &
		loops+=($!)
	done
}
stop_loops() {
	for p in "${loops[@]}"; do kill -- "-$p" 2>/dev/null || true; done
	loops=()
}
for i in $(seq 1 6); do ip netns exec "$ns" ip addr add "2001:db8:b$i::1/128" dev lo nodad; done

# Interleaved rounds (the machine is shared: its load drifts), medians.
declare -A p99 p50 rps
for round in $(seq 1 "$ROUNDS"); do
	for phase in idle ldap both; do
		case $phase in
		ldap) start_loops 1 3 dir some-password; sleep 1 ;;
		both) start_loops 1 3 dir some-password; start_loops 4 6 file file-password; sleep 1 ;;
		esac
		read -r r a b <<<"$(measure)"
		stop_loops
		rps[$phase]+="$r "; p50[$phase]+="$a "; p99[$phase]+="$b "
	done
done
ldap=$(grep -c "auth: LDAP" "$dir/hcd.log" || true)
files=$(grep -c "auth: 'file[0-9]' logged in" "$dir/hcd.log" || true)
idle_p99=$(med "${p99[idle]}")

echo "== GET /v1/vms/{id}, unix socket, $CONNS connections, ${DUR}s × $ROUNDS interleaved rounds, medians ($BUILD)"
bench_table_head
for phase in idle ldap both; do
	case $phase in
	idle) what="idle" ;;
	ldap) what="3 logins at a time against a silent LDAP" ;;
	both) what="the same + 3 argon2id login loops" ;;
	esac
	bench_row "$what" "${rps[$phase]}" "${p50[$phase]}" "${p99[$phase]}" "$idle_p99"
done
printf 'logins meanwhile: %s LDAP timeouts, %s argon2id logins\n' "$ldap" "$files"
