# shellcheck shell=bash
# A cluster of hosts on one machine, for end-to-end tests (sourced after
# lib.sh).  Each host is a network namespace with its own hcd and state
# dir; the hosts share one PostgreSQL (tests/pg.sh) and one image dir (what
# shared storage would be), and meet on an underlay: lib.sh's namespace
# T_NS is the switch, a bridge with one veth per host.
#
#   cl_setup HOST...           PostgreSQL, namespaces, underlay, image dir;
#                              everything goes away with lib.sh's cleanup
#   cl_hcd_start HOST [ARG...] hcd of HOST (with CL_HCD_ARGS, then ARGs)
#   cl_kill HOST               the host dies: kill -9 of its hcd and QEMUs,
#                              its underlay link down
#   on HOST CMD...             CMD with HC_URL (and T_STATE) of HOST
#   hc_on HOST ARG...          hc against HOST's API
#   api_on HOST METHOD PATH    raw API call to HOST (body on stdout)
#   vm_host VM                 the host a VM is placed on (asked of CL_ASK)
#   hc_vm VM ARG...            hc against the API of the VM's host, for what
#                              only that host has (serial log, console)
#   cl_wait_log VM TEXT [S]    TEXT in the serial log of VM, wherever it runs
#   cl_guest_run VM S CMD      lib.sh's guest_run on the VM's host
#   cl_fdb HOST NET_ID         HOST's FDB of the network's vxlan device, one
#                              "MAC DST" line per entry it programmed

. "$(dirname "${BASH_SOURCE[0]}")/../pg.sh"

CL_HOSTS=()
declare -A CL_PID=() CL_ADDR=()
CL_ASK=                 # the host whose API answers questions about the store
CL_HCD_ARGS=()          # options for every hcd
CL_IMAGES=$T_DIR/images # the shared storage of images
# The underlay's addresses: IPv6 by default, CLUSTER_UNDERLAY=4 for IPv4.
CL_FAMILY=${CLUSTER_UNDERLAY:-6}

cl_state() { echo "$T_STATE-$1"; }   # lib.sh's QEMU and dnsmasq patterns match it
cl_ns() { echo "$T_NS-$1"; }
cl_log() { echo "$T_DIR/hcd-$1.log"; }
cl_underlay_addr() { # index from 1
	if [ "$CL_FAMILY" = 4 ]; then echo "10.250.0.$1"; else echo "fd00:ca5c::$1"; fi
}

on() {
	local h=$1
	shift
	HC_URL="unix:$(cl_state "$h")/api.sock" T_STATE=$(cl_state "$h") "$@"
}
hc_on() { local h=$1; shift; HC_URL="unix:$(cl_state "$h")/api.sock" "$HC_BIN" "$@"; }
api_on() {
	curl -s -X "$2" --unix-socket "$(cl_state "$1")/api.sock" "http://hc$3"
}
cl_nsexec() { local h=$1; shift; ip netns exec "$(cl_ns "$h")" "$@"; }

# Every hcd is stopped before the database server goes.
cl_teardown() {
	local h
	for h in "${!CL_PID[@]}"; do
		[ -n "${CL_PID[$h]}" ] && kill -9 "${CL_PID[$h]}" 2>/dev/null
	done
	pg_stop
}

# lib.sh's fail() knows one hcd: show every host's log and every VM's console.
fail() {
	echo "FAIL [$T_NAME]: $*" >&2
	local h vm
	for h in "${CL_HOSTS[@]}"; do
		if [ -f "$(cl_log "$h")" ]; then
			echo "---- hcd of $h (last 25 lines)" >&2
			tail -n 25 "$(cl_log "$h")" >&2
		fi
	done
	[ -n "$CL_ASK" ] || exit 1
	for vm in $(hc_on "$CL_ASK" --json vm list 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
		h=$(vm_host "$vm" 2>/dev/null) || continue
		if [ -z "$h" ] || [ "$h" = null ]; then continue; fi
		echo "---- serial log of $vm on $h (last 12 lines)" >&2
		hc_on "$h" vm log "$vm" 2>/dev/null | tail -n 12 >&2
	done
	exit 1
}

cl_setup() {
	local i=0 h ns
	T_ON_EXIT+=(cl_teardown)
	pg_start
	ip -n "$T_NS" link add ul0 type bridge
	ip -n "$T_NS" link set ul0 mtu 1600 up
	mkdir -p "$CL_IMAGES"
	for h in "$@"; do
		i=$((i + 1))
		ns=$(cl_ns "$h")
		ip netns add "$ns"
		T_EXTRA_NS+=("$ns")
		ip -n "$ns" link set lo up
		# The host's end is "ul0" in its namespace, the switch's end is named
		# for the host.  1600 bytes: a 1500-byte guest frame plus VXLAN's 50
		# (IPv4) or 70 (IPv6) bytes of headers.
		ip -n "$T_NS" link add "ul-$h" mtu 1600 type veth peer name ul0 mtu 1600 netns "$ns"
		ip -n "$T_NS" link set "ul-$h" master ul0 up
		CL_ADDR[$h]=$(cl_underlay_addr "$i")
		if [ "$CL_FAMILY" = 4 ]; then
			ip -n "$ns" addr add "${CL_ADDR[$h]}/24" dev ul0
		else
			ip -n "$ns" addr add "${CL_ADDR[$h]}/64" dev ul0 nodad
		fi
		ip -n "$ns" link set ul0 up
		mkdir -p "$(cl_state "$h")"
		ln -s "$CL_IMAGES" "$(cl_state "$h")/images"
		CL_HOSTS+=("$h")
	done
	CL_ASK=${CL_HOSTS[0]}
	HC_URL="unix:$(cl_state "$CL_ASK")/api.sock"
	export HC_URL
	# The underlay works before any hcd relies on it.
	local a b
	for a in "${CL_HOSTS[@]}"; do
		for b in "${CL_HOSTS[@]}"; do
			[ "$a" = "$b" ] && continue
			cl_nsexec "$a" ping -c 1 -W 2 "${CL_ADDR[$b]}" >/dev/null ||
				fail "underlay: $a cannot reach $b at ${CL_ADDR[$b]}"
		done
	done
}

cl_hcd_start() {
	local h=$1
	shift
	# A simple command (not a function) so that $! is hcd itself.
	ip netns exec "$(cl_ns "$h")" "$HCD_BIN" --state-dir "$(cl_state "$h")" \
		--accel "${E2E_ACCEL:-tcg}" --stop-timeout=20 --store="$PG_SOCKET_URI" \
		--host-name="$h" --underlay="${CL_ADDR[$h]}" "${CL_HCD_ARGS[@]}" "$@" \
		>>"$(cl_log "$h")" 2>&1 &
	CL_PID[$h]=$!
	hcd_wait_api "$(cl_state "$h")" "${CL_PID[$h]}" || fail "hcd of $h did not start"
}

cl_kill() {
	local h=$1 p
	kill -9 "${CL_PID[$h]}"
	wait "${CL_PID[$h]}" 2>/dev/null || true
	CL_PID[$h]=
	for p in $(pgrep -f "qemu-system-x86_64.*$(cl_state "$h")/" || true); do
		kill -9 "$p" 2>/dev/null || true
	done
	ip -n "$(cl_ns "$h")" link set ul0 down
}

vm_host() { hc_on "$CL_ASK" --json vm show "$1" | jq -r .host; }

hc_vm() {
	local vm=$1 h
	shift
	h=$(vm_host "$vm") || return 1
	hc_on "$h" "$@"
}

cl_wait_log() {
	local vm=$1 needle=$2 timeout=${3:-120} i
	for i in $(seq 1 $((timeout * 2))); do
		if hc_vm "$vm" vm log "$vm" 2>/dev/null | grep -qF "$needle"; then
			return 0
		fi
		sleep 0.5
	done
	fail "'$needle' did not appear in the serial log of $vm within ${timeout}s"
}

cl_guest_run() {
	local h
	h=$(vm_host "$1") || fail "no host for $1"
	on "$h" guest_run "$@"
}

cl_fdb() { # (nothing when the device does not exist)
	{ cl_nsexec "$1" bridge fdb show dev "x$2" 2>/dev/null || true; } |
		awk '{ for (i = 2; i < NF; i++) if ($i == "dst") print $1, $(i + 1) }' | sort
}
