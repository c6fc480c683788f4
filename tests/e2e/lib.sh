# shellcheck shell=bash
# Shared helpers of the end-to-end tests.  Each test sources this file,
# gets its own state dir and network namespace, and the EXIT trap removes
# both — and every QEMU the test's hcd started — whatever happens.
set -euo pipefail

E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_BUILD=${E2E_BUILD:?set by run.sh}
E2E_GUEST=${E2E_GUEST:?set by run.sh}
HCD_BIN=$E2E_BUILD/hcd
HC_BIN=$E2E_BUILD/hc

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "/tmp/hc-e2e-$T_NAME.XXXXXX")
chmod 711 "$T_DIR"   # dnsmasq runs as its own user and must reach the state dir
T_STATE=$T_DIR/state
T_NS=hce2e-$$
HCD_PID=
T_EXTRA_NS=()   # more namespaces a test creates; cleanup removes them too
T_ON_EXIT=()    # commands (strings) a test adds; cleanup runs them first
export HC_URL="unix:$T_STATE/api.sock"
# Every answer hcd gives the test (through hc and api below) is recorded
# and, when the test has passed, checked against docs/openapi.json
# (tests/openapi/check.pl): status, Content-Type and body schema.
# E2E_OPENAPI_CHECK=0 turns it off.
if [ "${E2E_OPENAPI_CHECK:-1}" != 0 ]; then
	export HC_TRACE=$T_DIR/openapi-trace.jsonl
else
	unset HC_TRACE
fi

fail() {
	echo "FAIL [$T_NAME]: $*" >&2
	if [ -f "$T_DIR/hcd.log" ]; then
		echo "---- hcd.log (last 40 lines)" >&2
		tail -n 40 "$T_DIR/hcd.log" >&2
	fi
	local vm
	for vm in $("$HC_BIN" --json vm list 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
		echo "---- serial log of $vm (last 15 lines)" >&2
		"$HC_BIN" vm log "$vm" 2>/dev/null | tail -n 15 >&2
	done
	exit 1
}

ok() { echo "  ok - $*"; }

# The answers recorded in $HC_TRACE against the API description; false
# (with the problems on stderr) when one is not as described.
openapi_check() {
	[ -n "${HC_TRACE:-}" ] && [ -s "$HC_TRACE" ] || return 0
	# E2E_OPENAPI_KEEP=DIR keeps each test's trace (for coverage across tests).
	[ -z "${E2E_OPENAPI_KEEP:-}" ] || cp "$HC_TRACE" "$E2E_OPENAPI_KEEP/$T_NAME.jsonl"
	if ! perl "$E2E_SRC/tests/openapi/check.pl" responses "$E2E_SRC/docs/openapi.json" "$HC_TRACE" \
		>"$T_DIR/openapi.out" 2>&1; then
		echo "FAIL [$T_NAME]: answers not as docs/openapi.json describes them:" >&2
		head -n 60 "$T_DIR/openapi.out" >&2
		return 1
	fi
	echo "  ok - $(tail -n 1 "$T_DIR/openapi.out")"
}

# Every QEMU whose command line names our state dir is ours.
our_qemu_pids() { pgrep -f "qemu-system-x86_64.*$T_STATE" || true; }

cleanup() {
	local rc=$?
	set +e
	local c
	for c in "${T_ON_EXIT[@]}"; do eval "$c"; done
	if [ -n "$HCD_PID" ]; then kill -9 "$HCD_PID"; wait "$HCD_PID"; fi 2>/dev/null
	for p in $(our_qemu_pids) $(pgrep -f "dnsmasq.*$T_STATE"); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$T_NS" 2>/dev/null
	for n in "${T_EXTRA_NS[@]}"; do ip netns del "$n" 2>/dev/null; done
	if [ "$rc" = 0 ]; then openapi_check || rc=1; fi
	rm -rf "$T_DIR"
	exit $rc
}
# A test stopped by a signal fails: the EXIT trap sees its status (with
# 'trap cleanup INT TERM' it would see the last command's, often 0).
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$T_NS"
ip -n "$T_NS" link set lo up
mkdir -p "$T_STATE"

nsexec() { ip netns exec "$T_NS" "$@"; }

# An "upstream" network: a namespace joined to the host's by a veth, hcup0
# on the host's side and eth0 on upstream's, both up; removed at exit.
# Sets UP_NS; upx runs a command there.  Addresses and routes are the
# test's.
upstream_ns() {
	UP_NS=hce2eup-$$
	T_EXTRA_NS+=("$UP_NS")
	ip netns add "$UP_NS"
	ip link add hcup0 netns "$T_NS" type veth peer name eth0 netns "$UP_NS"
	nsexec ip link set hcup0 up
	ip -n "$UP_NS" link set lo up
	ip -n "$UP_NS" link set eth0 up
}
upx() { ip netns exec "$UP_NS" "$@"; }

# hcd_wait_api STATE_DIR PID: 0 once that hcd answers on its socket (15 s
# at most); 1 with the reason on stderr when it exits or never answers.
hcd_wait_api() {
	local state=$1 pid=$2 i
	for i in $(seq 1 150); do
		if curl -sf --unix-socket "$state/api.sock" http://hc/v1/info >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "hcd of $state exited during start" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "hcd of $state did not come up" >&2
	return 1
}

hcd_start() {
	# A simple command (not the nsexec function) so that $! is hcd itself.
	ip netns exec "$T_NS" "$HCD_BIN" --state-dir "$T_STATE" --accel "${E2E_ACCEL:-tcg}" \
		--stop-timeout=20 --resync-interval=5 "$@" >>"$T_DIR/hcd.log" 2>&1 &
	HCD_PID=$!
	hcd_wait_api "$T_STATE" "$HCD_PID" || fail "hcd did not start"
}

hcd_kill9() {
	kill -9 "$HCD_PID"
	wait "$HCD_PID" 2>/dev/null || true
	HCD_PID=
}

hcd_stop() {
	kill -TERM "$HCD_PID"
	local rc=0
	wait "$HCD_PID" || rc=$?
	[ "$rc" = 0 ] || fail "hcd exited with status $rc on SIGTERM"
	HCD_PID=
}

hc() { "$HC_BIN" "$@"; }

# Raw API call: api METHOD PATH [BODY] → prints body, sets API_STATUS
# (call it without $(…), or the status is lost with the subshell).
# With API_TOKEN set, the call carries that bearer token (else the unix
# socket's peer credentials make it root's).
api() {
	local method=$1 path=$2 body=${3-}
	local meta auth=() data=() resp=$T_DIR/api-resp.$BASHPID
	[ -n "${API_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $API_TOKEN")
	[ -n "$body" ] && data=(-H 'Content-Type: application/json' --data-binary "$body")
	meta=$(curl -s -X "$method" --unix-socket "$T_STATE/api.sock" "${auth[@]}" "${data[@]}" \
		-o "$resp" -w '%{http_code} %{content_type}' "http://hc$path")
	API_STATUS=${meta%% *}
	api_trace "$method" "$path" "$API_STATUS" "${meta#* }" "$resp" "$body"
	printf '%s\n' "$(cat "$resp" 2>/dev/null)"
	rm -f "$resp"
}

# api_trace METHOD PATH STATUS TYPE BODYFILE [REQUEST]: one exchange into
# $HC_TRACE, as hc writes them (src/cli/client.c); a request that is no
# JSON (the bad-input tests send such) is left out.
api_trace() {
	[ -n "${HC_TRACE:-}" ] && [ "$3" != 000 ] || return 0
	local text=null req=null
	case $4 in application/json*) text=$(jq -Rs . <"$5") ;; esac
	[ -z "${6-}" ] || req=$(jq -c . <<<"$6" 2>/dev/null) || req=null
	[ -n "$req" ] || req=null
	jq -nc --arg m "$1" --arg p "$2" --argjson r "$req" --argjson s "$((10#$3))" --arg t "$4" \
		--argjson b "$text" '{method: $m, path: $p, request: $r, status: $s,
		type: (if $t == "" then null else $t end), body: $b}' >>"$HC_TRACE" || true
}

vm_field() { hc --json vm show "$1" | jq -r "$2"; }

# Wait until the VM's serial log contains a string.
wait_log() {
	local vm=$1 needle=$2 timeout=${3:-120} i
	for i in $(seq 1 $((timeout * 2))); do
		if hc vm log "$vm" 2>/dev/null | grep -qF "$needle"; then
			return 0
		fi
		sleep 0.5
	done
	fail "'$needle' did not appear in the serial log of $vm within ${timeout}s"
}

wait_state() {
	local vm=$1 state=$2 timeout=${3:-120} i s=
	for i in $(seq 1 $((timeout * 2))); do
		s=$(vm_field "$vm" .state 2>/dev/null || true)
		[ "$s" = "$state" ] && return 0
		sleep 0.5
	done
	fail "vm $vm did not reach state $state within ${timeout}s (last: $s)"
}

wait_gone() {
	local vm=$1 timeout=${2:-120} i
	for i in $(seq 1 $((timeout * 2))); do
		hc vm show "$vm" >/dev/null 2>&1 || return 0
		sleep 0.5
	done
	fail "vm $vm still exists after ${timeout}s"
}

# A deleted VM disappears from the API at once; the host finishes the job
# (stop, remove taps and files) in the background.  Wait for that.
wait_purged() {
	local id=$1 timeout=${2:-90} i
	for i in $(seq 1 $((timeout * 2))); do
		if [ ! -e "$T_STATE/vms/$id" ] && ! pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$id" >/dev/null; then
			return 0
		fi
		sleep 0.5
	done
	fail "vm $id was not cleaned up within ${timeout}s"
}

import_tiny() {
	hc image import "${1:-tiny}" --kernel "$E2E_GUEST/vmlinuz" --initrd "$E2E_GUEST/initrd.img" \
		--cmdline "$(cat "$E2E_GUEST/cmdline")" >/dev/null
}

tap_exists() { nsexec ip link show "$1" >/dev/null 2>&1; }

# Run a shell command inside a guest through its serial console and print
# what it printed; returns the command's exit status.  The console echoes
# the line we type, and other output (the context script) may land in the
# middle of that echo, so the markers are computed by the guest's shell:
# the typed line holds "$((N+0))", only the output holds N itself.
guest_run() {
	local vm=$1 timeout=$2 cmd=$3 n i log rc
	n=$RANDOM$RANDOM
	printf 'echo "HCSTART-$((%s+0))"; %s; echo "HCDONE-$((%s+0))-rc=$?"\n' "$n" "$cmd" "$n" |
		timeout 20 "$HC_BIN" vm console "$vm" >/dev/null 2>&1 || true
	# The serial log, written by QEMU, now and then holds a character
	# twice when the guest's UART output meets a busy host (seen:
	# "HCDONE-…-rcc=0", and a digit of N doubled), so every character of
	# the markers may repeat: N's digits too (a different N matching is
	# as likely as a collision of the random N itself).
	local nre
	nre=$(sed 's/./&+/g' <<<"$n")
	local start_re="^H+C+S+T+A+R+T+-+$nre\$" done_re="^H+C+D+O+N+E+-+$nre-+r+c+=+[0-9]"
	for i in $(seq 1 $((timeout * 4))); do
		log=$(hc vm log "$vm" --tail 200000 | tr -d '\r')
		if grep -aEq "$done_re" <<<"$log"; then
			rc=$(grep -aEo "$done_re*" <<<"$log" | tail -1 | sed -E 's/.*=+//')
			awk -v s="$start_re" -v d="$done_re" '
				$0 ~ s { on = 1; next }
				$0 ~ d { on = 0 }
				on { print }' <<<"$log"
			return "$rc"
		fi
		sleep 0.25
	done
	fail "guest $vm did not finish '$cmd' within ${timeout}s"
}

# make_tls_cert DIR SAN: a self-signed P-256 certificate for SAN (e.g.
# "IP:::1") in DIR/tls.crt, its key in DIR/tls.key.
make_tls_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=hackcloud-e2e -addext "subjectAltName=$2" \
		-keyout "$1/tls.key" -out "$1/tls.crt" 2>/dev/null || fail "openssl could not make a certificate"
}
