#!/usr/bin/env bash
# Three hosts, one PostgreSQL (issue 7).  Slow: boots five tiny guests
# under TCG, and waits out a host's death.
#
# Each host is a network namespace with its own hcd; an underlay bridge in
# a fourth namespace joins them (tests/e2e/cluster.sh).  What it proves:
#  (a) the hosts register and heartbeat: `hc host list` shows them live
#      with their underlay addresses;
#  (b) a network spans hosts: guests pinned on h1 and h2 ping each other
#      over IPv6 and IPv4 through the VXLAN overlay, and only the chosen
#      host runs each guest;
#  (c) every host's FDB of the network's vxlan device holds exactly the
#      peers carrying the network (all-zeros entries) and the remote NICs'
#      MACs, as the store says;
#  (d) placement spreads VMs by free memory, and a drained host gets none;
#  (e) a host that dies (hcd, QEMUs and link gone) is marked dead within
#      the dead timeout; its ephemeral VM comes up on another host, its
#      other VM goes to state error, and the FDBs follow the move — and so
#      does the route of its routed IPv6 prefix (issue 13);
#  (f) with the periodic resync 10 minutes away, a change made through one
#      host's API is acted on by another host's agent within seconds, and
#      that agent's own counters say a notification woke it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster.sh"

HEARTBEAT=1
DEAD_TIMEOUT=6
RESYNC=${CLUSTER_RESYNC:-600}   # lower only to debug the rest without triggers
# shellcheck disable=SC2034 # cluster.sh reads it
CL_HCD_ARGS=("--heartbeat-interval=$HEARTBEAT" "--dead-timeout=$DEAD_TIMEOUT"
	"--resync-interval=$RESYNC" "--prefix_pool=2001:db8:e2f::/48")
cl_setup h1 h2 h3
for h in h1 h2 h3; do cl_hcd_start "$h"; done
ok "PostgreSQL, underlay ($([ "$CL_FAMILY" = 4 ] && echo IPv4 || echo IPv6), MTU 1600) and three hcd up"

# ---- (a) hosts ---------------------------------------------------------------
for i in $(seq 1 50); do
	hosts=$(hc --json host list 2>/dev/null || true)
	[ "$(jq '[.[]? | select(.state == "live")] | length' <<<"${hosts:-[]}")" = 3 ] && break
	sleep 0.2
done
for h in h1 h2 h3; do
	jq -e --arg n "$h" --arg a "${CL_ADDR[$h]}" \
		'.[] | select(.name == $n and .address == $a and .state == "live")' <<<"$hosts" >/dev/null ||
		fail "host $h is not listed live at ${CL_ADDR[$h]}: $hosts"
done
table=$(hc host list)
for h in h1 h2 h3; do
	grep -E "^${h}[[:space:]].*${CL_ADDR[$h]}.*live" <<<"$table" >/dev/null ||
		fail "hc host list shows no live $h at ${CL_ADDR[$h]}: $table"
done
seen=$(jq -r '.[] | select(.name == "h2") | .last_seen' <<<"$hosts")
for i in $(seq 1 $((HEARTBEAT * 5 + 20))); do
	[ "$(hc --json host show h2 | jq -r .last_seen)" -gt "$seen" ] && break
	sleep 0.2
done
[ "$(hc --json host show h2 | jq -r .last_seen)" -gt "$seen" ] || fail "h2 does not heartbeat"
ok "hc host list: h1, h2, h3 live at their underlay addresses, and they heartbeat"

# ---- (b) a network spanning hosts ---------------------------------------------
import_tiny tiny
hc net create span --ipv6 fd00:e2e:c1::/64 --ipv4 10.81.0.0/24 >/dev/null
net=$(hc --json net show span | jq -r .id)
hc vm create a --image tiny --net span --host h1 --memory 128 >/dev/null
hc vm create b --image tiny --net span --host h2 --memory 128 >/dev/null
[ "$(vm_host a)" = h1 ] || fail "a was pinned on h1 but placed on $(vm_host a)"
[ "$(vm_host b)" = h2 ] || fail "b was pinned on h2 but placed on $(vm_host b)"
wait_state a running 90
wait_state b running 90
a_id=$(vm_field a .id)
b_id=$(vm_field b .id)
pgrep -f "qemu-system-x86_64.*$(cl_state h1)/vms/$a_id" >/dev/null || fail "no QEMU of a on h1"
pgrep -f "qemu-system-x86_64.*$(cl_state h2)/vms/$b_id" >/dev/null || fail "no QEMU of b on h2"
for h in h2 h3; do
	pgrep -f "qemu-system-x86_64.*$(cl_state $h)/vms/$a_id" >/dev/null && fail "$h runs a too"
done
for h in h1 h3; do
	pgrep -f "qemu-system-x86_64.*$(cl_state $h)/vms/$b_id" >/dev/null && fail "$h runs b too"
done
ok "a runs on h1 only, b on h2 only"
# Serial log and console live on the VM's host; another host says where.
if hc_on h1 vm log b 2>"$T_DIR/err"; then fail "h1 served b's serial log"; fi
grep -q "is on host 'h2'" "$T_DIR/err" || fail "h1's refusal does not name h2: $(cat "$T_DIR/err")"

for vm in a b; do cl_wait_log "$vm" HACKCLOUD-NET-UP 180; done
for vm in a b; do
	v4=$(vm_field "$vm" '.nics[0].ipv4')
	v6=$(vm_field "$vm" '.nics[0].ipv6')
	for i in $(seq 1 30); do
		addrs=$(cl_guest_run "$vm" 30 'ip -o addr show dev eth0')
		grep -q "inet $v4/24" <<<"$addrs" && grep -q "inet6 $v6/64" <<<"$addrs" && break
		sleep 1
	done
	grep -q "inet $v4/24" <<<"$addrs" || fail "$vm has not got $v4 by DHCP: $addrs"
	grep -q "inet6 $v6/64" <<<"$addrs" || fail "$vm has not got $v6 by SLAAC: $addrs"
done
a4=$(vm_field a '.nics[0].ipv4'); a6=$(vm_field a '.nics[0].ipv6')
b4=$(vm_field b '.nics[0].ipv4'); b6=$(vm_field b '.nics[0].ipv6')
cl_guest_run a 30 "ping -6 -c 2 -W 3 $b6" >/dev/null || fail "a (h1) cannot ping b (h2) over IPv6"
cl_guest_run a 30 "ping -c 2 -W 3 $b4" >/dev/null || fail "a (h1) cannot ping b (h2) over IPv4"
cl_guest_run b 30 "ping -6 -c 2 -W 3 $a6" >/dev/null || fail "b (h2) cannot ping a (h1) over IPv6"
cl_guest_run b 30 "ping -c 2 -W 3 $a4" >/dev/null || fail "b (h2) cannot ping a (h1) over IPv4"
# A full-size frame crosses the overlay: 1452 bytes of ICMPv6 payload make
# a 1500-byte IPv6 packet, which fits because the underlay's MTU leaves
# room for the VXLAN headers (with an underlay MTU of 1500 it is lost).
cl_guest_run a 30 "ping -6 -c 1 -W 3 -s 1452 $b6" >/dev/null ||
	fail "a 1500-byte packet does not cross the overlay"
ok "a (h1) and b (h2) ping each other over IPv6 and IPv4, 1500-byte packets too"

# ---- (c) the FDB of every host ------------------------------------------------
# What HOST's vxlan device of the network must hold, from the store: for
# every other live host running a VM on the network, an all-zeros entry
# to it, and each of those VMs' NICs' MACs pointing at it.  Nothing at all
# (no device) when HOST itself runs no VM on the network.
fdb_expected() {
	local me=$1 vms hosts
	vms=$(hc --json vm list)
	hosts=$(hc --json host list)
	jq -r --arg me "$me" --arg net span --argjson hosts "$hosts" --argjson addr "$(
		for h in "${!CL_ADDR[@]}"; do printf '{"%s":"%s"}' "$h" "${CL_ADDR[$h]}"; done |
			jq -s add)" '
		def live: . as $h | any($hosts[]; .name == $h and .state == "live");
		[.[] | select(.state == "running" and .host != null and (.host | live))
		     | {host, macs: [.nics[] | select(.network == $net) | .mac]}
		     | select(.macs | length > 0)] as $on
		| if any($on[]; .host == $me) then
			($on[] | select(.host != $me) | .host as $h
			 | (.macs[] | "\(.) \($addr[$h])"), "00:00:00:00:00:00 \($addr[$h])")
		  else empty end' <<<"$vms" | sort -u
}
fdb_check() { # what: compare every host's FDB with the store, for a while
	local what=$1 h i got want bad
	for i in $(seq 1 20); do
		bad=
		for h in "${CL_HOSTS[@]}"; do
			[ -n "${CL_PID[$h]}" ] || continue
			got=$(cl_fdb "$h" "$net")
			want=$(fdb_expected "$h")
			[ "$got" = "$want" ] || bad+="$h: want [${want//$'\n'/, }] got [${got//$'\n'/, }]; "
		done
		[ -z "$bad" ] && return 0
		sleep 0.5
	done
	fail "FDB $what: $bad"
}
fdb_check "with a on h1 and b on h2"
want=$(fdb_expected h1)
grep -q "^$(vm_field b '.nics[0].mac') ${CL_ADDR[h2]}$" <<<"$want" || fail "fdb_expected is wrong: $want"
cl_nsexec h3 ip link show "x$net" >/dev/null 2>&1 && fail "h3 carries no VM of span but has x$net"
ok "FDB: h1 → h2 (all-zeros + b's MAC), h2 → h1 (all-zeros + a's MAC), h3 has no x$net"

# ---- (d) placement by free memory, and drain -----------------------------------
# The live, undrained hosts with the most free memory (all of them on a tie).
best_hosts() {
	hc --json host list | jq -r '[.[] | select(.state == "live" and (.drain | not))
		| {name, free: (.memory_mib - .used_mib)}] | (map(.free) | max) as $m
		| .[] | select(.free == $m) | .name'
}
declare -A placed=()
n=0
for mib in 3072 2048 1024 1024 512 4096 256; do
	n=$((n + 1))
	best=$(best_hosts)
	hc vm create "s$n" --image tiny --memory "$mib" --no-start >/dev/null
	got=$(vm_host "s$n")
	grep -qx "$got" <<<"$best" || fail "s$n ($mib MiB) went to $got, not to the freest of [${best//$'\n'/ }]"
	placed[$got]=1
done
[ "${#placed[@]}" = 3 ] || fail "7 VMs went to only ${!placed[*]}"
ok "7 VMs without --host: each went to the host with the most free memory, all three used"

hc host drain h3 >/dev/null
[ "$(hc --json host show h3 | jq -r .drain)" = true ] || fail "h3 not shown drained"
for n in 1 2 3 4; do
	hc vm create "d$n" --image tiny --memory 64 --no-start >/dev/null
	[ "$(vm_host "d$n")" != h3 ] || fail "d$n was placed on the drained h3"
done
hc host drain h3 --undo >/dev/null
[ "$(hc --json host show h3 | jq -r .drain)" = false ] || fail "h3 still drained after --undo"
ok "h3 drained: 4 new VMs avoided it; --undo lifts the drain"
for n in 1 2 3 4 5 6 7; do hc vm delete "s$n" >/dev/null; done
for n in 1 2 3 4; do hc vm delete "d$n" >/dev/null; done

# ---- (e) a host dies -----------------------------------------------------------
hc vm create eph --image tiny --net span --host h3 --memory 128 --ephemeral >/dev/null
hc vm create pet --image tiny --host h3 --memory 128 >/dev/null
wait_state eph running 90
wait_state pet running 90
fdb_check "with eph on h3"
# A routed prefix: the host that runs eph routes it, no other.
ephp=$(hc vm prefix add eph) || fail "no prefix for eph"
routed_on() { # host: the hosts' routes of protocol 72 name ephp
	cl_nsexec "$1" ip -6 route show proto 72 | grep -F "$ephp via" >/dev/null
}
for i in $(seq 1 40); do routed_on h3 && break; sleep 0.25; done
routed_on h3 || fail "h3, which runs eph, does not route $ephp"
routed_on h1 && fail "h1 routes $ephp of a VM it does not run"
routed_on h2 && fail "h2 routes $ephp of a VM it does not run"
cl_wait_log eph HACKCLOUD-BOOT-OK 180
eph_id=$(vm_field eph .id)
t0=$(date +%s%3N)
cl_kill h3
dead_ms=
for i in $(seq 1 $(((DEAD_TIMEOUT + 10) * 10))); do
	if [ "$(hc --json host show h3 | jq -r .state)" = dead ]; then
		dead_ms=$(($(date +%s%3N) - t0))
		break
	fi
	sleep 0.1
done
[ -n "$dead_ms" ] || fail "h3 not marked dead $((DEAD_TIMEOUT + 10)) s after it died"
# Its last heartbeat was at most one interval before the kill, and the
# check itself runs once an interval: timeout + 2 intervals, + 1 s of
# whole-second timestamps.
limit=$(((DEAD_TIMEOUT + 2 * HEARTBEAT + 1) * 1000))
[ "$dead_ms" -le "$limit" ] || fail "h3 marked dead after $dead_ms ms (limit $limit ms)"
ok "h3 killed: marked dead after $dead_ms ms (dead timeout ${DEAD_TIMEOUT} s, heartbeat ${HEARTBEAT} s)"

for i in $(seq 1 120); do
	new=$(vm_host eph)
	[ "$new" != h3 ] && [ "$(vm_field eph .state)" = running ] && break
	sleep 0.5
done
[ "$new" = h1 ] || [ "$new" = h2 ] || fail "eph is still placed on $new"
wait_state eph running 60
pgrep -f "qemu-system-x86_64.*$(cl_state "$new")/vms/$eph_id" >/dev/null || fail "no QEMU of eph on $new"
cl_wait_log eph HACKCLOUD-BOOT-OK 180
wait_state pet error 30
ok "eph came up on $new and booted; pet (not ephemeral) is in state error: $(vm_field pet .error)"
fdb_check "after eph moved to $new"
for x in h1 h2; do
	cl_fdb "$x" "$net" | grep -q " ${CL_ADDR[h3]}$" && fail "$x still sends to the dead h3"
done
# The moved guest is reachable across the overlay at its new place, from
# the guest on the other live host.
peer=b
[ "$new" = h2 ] && peer=a
eph6=$(vm_field eph '.nics[0].ipv6')
cl_wait_log eph HACKCLOUD-NET-UP 120
for i in $(seq 1 10); do
	cl_guest_run "$peer" 30 "ping -6 -c 1 -W 3 $eph6" >/dev/null && break
	sleep 1
done
cl_guest_run "$peer" 30 "ping -6 -c 2 -W 3 $eph6" >/dev/null ||
	fail "$peer ($(vm_host $peer)) cannot ping eph at its new host $new"
ok "FDBs follow: eph's MAC now points at $new, nothing points at h3; $peer pings eph there"
other=h1
[ "$new" = h1 ] && other=h2
for i in $(seq 1 40); do routed_on "$new" && break; sleep 0.25; done
routed_on "$new" || fail "$new runs eph now but does not route $ephp"
routed_on "$other" && fail "$other routes $ephp of a VM it does not run"
ok "eph's prefix $ephp followed it: routed by $new, not by $other"

# ---- (f) triggers across hosts -------------------------------------------------
# b runs on h2; the stop goes through h1's API.  h2 has its resync
# ${RESYNC} s away, so only a notification can make it act within seconds.
wakeups() { api_on h2 GET /v1/info | jq -c '.wakeups // empty'; }
before=$(wakeups)
[ -n "$before" ] || fail "GET /v1/info on h2 has no wake counters: $(api_on h2 GET /v1/info)"
t0=$(date +%s%3N)
hc_on h1 vm stop b >/dev/null
acted_ms=
for _ in $(seq 1 100); do
	s=$(vm_field b .state)
	if [ "$s" = stopping ] || [ "$s" = stopped ]; then
		acted_ms=$(($(date +%s%3N) - t0))
		break
	fi
	sleep 0.05
done
[ -n "$acted_ms" ] || fail "h2's agent did not act on the stop of b within 5 s (state $s)"
after=$(wakeups)
nb=$(jq '.notify // 0' <<<"$before"); na=$(jq '.notify // 0' <<<"$after")
rb=$(jq '.resync // 0' <<<"$before"); ra=$(jq '.resync // 0' <<<"$after")
[ "$na" -gt "$nb" ] || fail "h2 acted but its notify counter did not move: $before → $after"
[ "$ra" = "$rb" ] || fail "h2 ran a periodic resync meanwhile: $before → $after"
wait_state b stopped 60
pgrep -f "qemu-system-x86_64.*$(cl_state h2)/vms/$b_id" >/dev/null && fail "b's QEMU still runs on h2"
ok "stop of b (h2) through h1's API: h2 acted after $acted_ms ms, woken by a notification ($before → $after)"
