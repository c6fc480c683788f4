#!/usr/bin/env bash
# Nothing slow on the loop (issue 12 §3): while logins against a silent
# LDAP server and image uploads and finalizes run, do the API's
# GET /v1/vms/{id} and the metadata service keep their idle latency?
#
# Two probes run together through every phase (bench/httpload, 2
# connections each, paced: a pause of PAUSE_US between a connection's
# requests, so that p99 is the latency of a request rather than the
# probes' own queue):
#   api       GET /v1/vms/{id} on the unix socket, an admin's token;
#   metadata  GET /latest/meta-data/instance-id from a namespace on the
#             VM's bridge presenting its NIC (MAC and IPv4), as a guest
#             asks (bench/metadata.sh fakes its guests the same way);
#   control   the same metadata request to build/mdstatic (a fixed answer
#             from the same HTTP library, no hcd) in hcd's namespace over
#             loopback: what the phase's CPU use alone does to a p99 on the
#             shared 2 vCPUs, as against hcd's loop being held up.
# Phases (BENCH_PHASES picks some; idle is always there), BENCH_ROUNDS (3)
# interleaved rounds of DUR (5) seconds each:
#   idle       nothing else (the baseline of the same run);
#   ldap       3 peers logging in without pause against an LDAP server that
#              accepts and never answers (each login waits the bind
#              timeout, 3 s);
#   argon2     the same + 3 peers logging in file users (argon2id);
#   upload     image uploads back to back (create, PUT UPLOAD_MIB, finalize,
#              delete): the body is hashed as it arrives;
#   finalize   finalizes back to back (create, PUT 1 MiB, finalize, delete):
#              disk check, move into place and sync;
#   all        ldap + upload at once.
# Prints per probe and phase: req/s, p50, p99 (medians of the rounds) and
# p99 against idle; then how many logins and finalizes ran.  Not a test:
# figures only.  Run as root: ./bench/loop.sh BUILD GUEST [SECONDS]
# (BUILD may be another tree's build dir, to compare before and after.)
set -euo pipefail
BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
DUR=${3:-5}
ROUNDS=${BENCH_ROUNDS:-3}
PAUSE_US=${BENCH_PAUSE_US:-1000}
UPLOAD_MIB=${BENCH_UPLOAD_MIB:-256}
read -ra PHASES <<<"${BENCH_PHASES:-ldap argon2 upload finalize all}"
PHASES=(idle "${PHASES[@]/idle/}")   # the baseline is always measured
PORT=8443
LDAP_PORT=3890
HERE=$(cd "$(dirname "$0")" && pwd)
LOAD=${HTTPLOAD:-$HERE/../build/httpload}
MD_URL=/latest/meta-data/instance-id

loops=()
silent_pid=
static_pid=
. "$HERE/lib.sh"
bench_setup loop
guest=hcbg-$$
# socat forks a child per connection, the loops curl: end whole groups.
BENCH_ON_EXIT+=('stop_loops' '[ -n "$silent_pid" ] && kill -- "-$silent_pid"'
	'ip netns del "$guest" 2>/dev/null'
	'for p in $(pgrep -f "dnsmasq.*$state"); do kill -9 "$p"; done')
bench_hcd --log-level=info --listen="[::1]:$PORT" --tls-cert="$dir/tls.crt" --tls-key="$dir/tls.key" \
	--auth.ldap-uri="ldap://127.0.0.1:$LDAP_PORT" --auth.ldap-base=dc=example --auth.ldap-timeout=3 \
	--metadata-rate=0
bench_tiny
hc() { "$BUILD/hc" "$@"; }
hc net create bench --ipv6 fd00:bd::/64 --ipv4 10.89.0.0/16 >/dev/null
# The probed VM: stopped, but its NIC is registered, which is all the
# metadata service asks of a caller.
vm=$(hc --json vm create bench --image tiny --net bench --no-start | jq -r .id)
printf 'bench-password\n' | hc user create bench --role admin --auth file --password-stdin >/dev/null
tok=$(curl -s --unix-socket "$state/api.sock" -H 'Content-Type: application/json' \
	--data-binary '{"user": "bench", "password": "bench-password"}' http://hc/v1/login | jq -r .token)
for i in 1 2 3; do hc user create "dir$i" --auth ldap >/dev/null; done
for i in 4 5 6; do printf 'file-password\n' | hc user create "file$i" --auth file --password-stdin >/dev/null; done

# The guest: a namespace on the bridge with the NIC's MAC and address.
br=$(hc --json net show bench | jq -r .bridge)
mac=$(hc --json vm show "$vm" | jq -r '.nics[0].mac')
ip4=$(hc --json vm show "$vm" | jq -r '.nics[0].ipv4')
ip netns add "$guest"
# Above any other port's MAC, so the bridge's own MAC never changes.
ip -n "$ns" link add hcbg0 address fe:ff:ff:ff:ff:01 type veth peer name eth0 netns "$guest"
ip -n "$ns" link set hcbg0 master "$br" up
ip -n "$guest" link set lo up
ip -n "$guest" link set eth0 address "$mac" up
ip -n "$guest" addr add "$ip4/16" dev eth0
ip -n "$guest" route add default via 10.89.0.1
for _ in $(seq 1 100); do
	ip netns exec "$guest" curl -sf -o /dev/null --max-time 1 "http://169.254.169.254$MD_URL" && break
	sleep 0.1
done
ip netns exec "$guest" curl -sf -o /dev/null --max-time 1 "http://169.254.169.254$MD_URL" ||
	{ echo "the guest is not answered by the metadata service" >&2; exit 1; }

ip netns exec "$ns" "$HERE/../build/mdstatic" 8099 >>"$dir/mdstatic.log" 2>&1 &
static_pid=$!
BENCH_ON_EXIT+=('kill "$static_pid"')

setsid ip netns exec "$ns" socat TCP-LISTEN:"$LDAP_PORT",bind=127.0.0.1,reuseaddr,fork SYSTEM:'sleep 3600' &
silent_pid=$!

# Image files: sparse, so reading them costs curl nothing; hcd receives,
# hashes and writes every byte.
truncate -s "${UPLOAD_MIB}M" "$dir/big.raw"
truncate -s 1M "$dir/small.raw"
: >"$dir/finalized"

# measure: the probes at once; prints "REQ/S P50 P99" for api, md, control.
measure() {
	HTTPLOAD_PAUSE_US=$PAUSE_US "$LOAD" "$state/api.sock" "/v1/vms/$vm" "$DUR" 2 "$tok" >"$dir/p.api" &
	local a=$!
	HTTPLOAD_PAUSE_US=$PAUSE_US ip netns exec "$ns" "$LOAD" tcp:169.254.169.254:8099 "$MD_URL" "$DUR" 2 \
		>"$dir/p.control" &
	local c=$!
	HTTPLOAD_PAUSE_US=$PAUSE_US ip netns exec "$guest" "$LOAD" tcp:169.254.169.254:80 "$MD_URL" "$DUR" 2 \
		>"$dir/p.md"
	wait "$a" "$c"
	local f
	for f in api md control; do
		grep -q 'errors=0$' "$dir/p.$f" || echo "probe $f: $(cat "$dir/p.$f")" >&2
		sed 's/.*rps=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\).*/\1 \2 \3/' "$dir/p.$f"
	done
}

# login_loop SRC USER PASSWORD: one login after another from its own /64
login_loop() {
	while :; do
		ip netns exec "$ns" curl -s -o /dev/null --max-time 30 --cacert "$dir/tls.crt" --interface "$1" \
			-H 'Content-Type: application/json' --data-binary "{\"user\": \"$2\", \"password\": \"$3\"}" \
			"https://hcd-bench:$PORT/v1/login" || true
	done
}

# image_loop FILE: create an image, upload FILE, finalize, delete; again.
image_loop() {
	local n=0 id
	while :; do
		n=$((n + 1))
		id=$(curl -s -X POST --unix-socket "$state/api.sock" -H 'Content-Type: application/json' \
			-d "{\"name\": \"up$BASHPID-$n\", \"boot\": \"disk\"}" http://hc/v1/images | jq -r .id)
		curl -sf --unix-socket "$state/api.sock" -T "$1" "http://hc/v1/images/$id/files/disk" >/dev/null &&
			curl -sf -X POST --unix-socket "$state/api.sock" -H 'Content-Type: application/json' -d '{}' \
				"http://hc/v1/images/$id/finalize" | jq -r .state | grep -qx ready &&
			echo ok >>"$dir/finalized"
		curl -s -o /dev/null -X DELETE --unix-socket "$state/api.sock" "http://hc/v1/images/$id"
	done
}

start_logins() {   # start_logins FIRST LAST USER-PREFIX PASSWORD
	for i in $(seq "$1" "$2"); do
		setsid bash -c "$(declare -f login_loop); ns=$ns dir=$dir PORT=$PORT login_loop 2001:db8:b$i::1 $3$i $4" &
		loops+=($!)
	done
}
start_images() {   # start_images FILE
	setsid bash -c "$(declare -f image_loop); state=$state dir=$dir image_loop $1" &
	loops+=($!)
}
stop_loops() {
	for p in "${loops[@]}"; do kill -- "-$p" 2>/dev/null || true; done
	loops=()
}
for i in $(seq 1 6); do ip netns exec "$ns" ip addr add "2001:db8:b$i::1/128" dev lo nodad; done

# Interleaved rounds (the machine is shared: its load drifts), medians.
declare -A p99 p50 rps fins
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
	for phase in "${PHASES[@]}"; do
		[ -n "$phase" ] || continue
		case $phase in
		ldap) start_logins 1 3 dir some-password ;;
		argon2) start_logins 1 3 dir some-password; start_logins 4 6 file file-password ;;
		upload) start_images "$dir/big.raw" ;;
		finalize) start_images "$dir/small.raw" ;;
		all) start_logins 1 3 dir some-password; start_images "$dir/big.raw" ;;
		esac
		[ "$phase" = idle ] || sleep 1
		f0=$(wc -l <"$dir/finalized")
		{ read -r ra a1 a2; read -r rm m1 m2; read -r rc c1 c2; } < <(measure)
		fins[$phase]+="$(($(wc -l <"$dir/finalized") - f0)) "
		stop_loops
		rps[api.$phase]+="$ra "; p50[api.$phase]+="$a1 "; p99[api.$phase]+="$a2 "
		rps[md.$phase]+="$rm "; p50[md.$phase]+="$m1 "; p99[md.$phase]+="$m2 "
		rps[control.$phase]+="$rc "; p50[control.$phase]+="$c1 "; p99[control.$phase]+="$c2 "
	done
done
ldap=$(grep -c "auth: LDAP" "$dir/hcd.log" || true)
files=$(grep -c "auth: 'file[0-9]' logged in" "$dir/hcd.log" || true)

echo "== $BUILD: 3 probes × 2 connections paced ${PAUSE_US} µs, ${DUR}s × $ROUNDS interleaved rounds, medians"
echo "   load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A what=(
	[idle]="idle"
	[ldap]="3 logins at a time, silent LDAP"
	[argon2]="the same + 3 argon2id login loops"
	[upload]="uploads of ${UPLOAD_MIB} MiB + finalize"
	[finalize]="finalizes back to back (1 MiB)"
	[all]="silent-LDAP logins + uploads"
)
for probe in api md control; do
	case $probe in
	api) echo "-- GET /v1/vms/{id}, unix socket" ;;
	md) echo "-- metadata GET $MD_URL, from the VM's address" ;;
	control) echo "-- control: the same GET to mdstatic (no hcd), loopback" ;;
	esac
	bench_table_head
	base=$(med "${p99[$probe.idle]}")
	for phase in "${PHASES[@]}"; do
		[ -n "$phase" ] || continue
		bench_row "${what[$phase]}" "${rps[$probe.$phase]}" "${p50[$probe.$phase]}" \
			"${p99[$probe.$phase]}" "$base"
	done
done
printf 'meanwhile: %s LDAP timeouts, %s argon2id logins; images finalized per phase (median):' "$ldap" "$files"
for phase in upload finalize all; do
	[ -n "${fins[$phase]:-}" ] && printf ' %s %s' "$phase" "$(med "${fins[$phase]}")"
done
echo
