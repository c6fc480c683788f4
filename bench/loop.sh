#!/usr/bin/env bash
# Nothing slow on the loop (issue 12 §3), the login part: GET /v1/vms/{id}
# latency on the unix socket (bench/httpload, 4 connections) measured
#   1. idle (the baseline of this run),
#   2. while logins run without pause against an LDAP server that accepts
#      and never answers (each costs the bind timeout, 3 s here) and
#      logins of file users (argon2id), from 6 peers at once.
# Prints p50/p99 of both phases and their ratio.  Not a test: figures
# only.  Run as root: ./bench/loop.sh BUILD GUEST [SECONDS]
# (BUILD may be another tree's build dir, to compare before and after.)
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
DUR=${3:-10}
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
BENCH_ON_EXIT+=('for p in "${loops[@]}"; do kill -- "-$p"; done'
		'[ -n "$silent_pid" ] && kill -- "-$silent_pid"')
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
	ip netns exec "$ns" ip addr add "$1/128" dev lo nodad
	while :; do
		ip netns exec "$ns" curl -s -o /dev/null --max-time 30 --cacert "$dir/tls.crt" --interface "$1" \
			-H 'Content-Type: application/json' --data-binary "{\"user\": \"$2\", \"password\": \"$3\"}" \
			"https://hcd-bench:$PORT/v1/login" || true
	done
}

read -r idle_rps idle_p50 idle_p99 <<<"$(measure)"
for i in 1 2 3; do
	setsid bash -c "$(declare -f login_loop); ns=$ns dir=$dir PORT=$PORT login_loop 2001:db8:b$i::1 dir$i some-password" &
	loops+=($!)
done
for i in 4 5 6; do
	setsid bash -c "$(declare -f login_loop); ns=$ns dir=$dir PORT=$PORT login_loop 2001:db8:b$i::1 file$i file-password" &
	loops+=($!)
done
sleep 2
read -r busy_rps busy_p50 busy_p99 <<<"$(measure)"
ldap=$(grep -c "auth: LDAP" "$dir/hcd.log" || true)
files=$(grep -c "auth: 'file[0-9]' logged in" "$dir/hcd.log" || true)

echo "== GET /v1/vms/{id}, unix socket, $CONNS connections, ${DUR}s each ($BUILD)"
printf '%-44s %8s %9s %9s\n' phase "req/s" "p50 ms" "p99 ms"
printf '%-44s %8s %9.2f %9.2f\n' "idle" "$idle_rps" "$(echo "$idle_p50 / 1000" | bc -l)" \
	"$(echo "$idle_p99 / 1000" | bc -l)"
printf '%-44s %8s %9.2f %9.2f\n' "3 silent-LDAP + 3 argon2id login loops" "$busy_rps" \
	"$(echo "$busy_p50 / 1000" | bc -l)" "$(echo "$busy_p99 / 1000" | bc -l)"
printf 'logins meanwhile: %s LDAP timeouts, %s argon2id logins\n' "$ldap" "$files"
printf 'p99 ratio (busy / idle): %.2f\n' "$(echo "$busy_p99 / $idle_p99" | bc -l)"
