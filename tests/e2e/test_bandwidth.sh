#!/usr/bin/env bash
# Bandwidth limits per NIC (issue 13 §1), measured with iperf3.
#
# A real TCG guest first: its tap gets a TBF (to the VM) and an ingress
# redirect to its ifb i<MAC> with a TBF (from the VM), as created.  Then,
# since TCG guests cannot push enough traffic, two running VMs' NICs are
# presented by network namespaces (tests/e2e/nicns.sh: a veth takes the
# tap's name; the agent shapes it with the same code) and iperf3 measures:
# the limited NIC meets its limits within ±15 % in both directions, an
# unlimited neighbour on the same bridge keeps its rate while the limited
# one is saturated, and a changed limit applies to the running NIC at once.
# Then: kill -9 of hcd leaves the qdiscs, and the next hcd finds them right
# (changes nothing); a stray ifb goes; no limit, or the NIC's delete, leaves
# nothing behind; a hot-plugged NIC, and a tap a restarted hcd makes anew,
# get their limits too (a NIC's own, given as it is added, or its network's
# default).  No timing thresholds: rates are the kernel's shaping.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nicns.sh"

hcd_start
import_tiny
hc net create bw --ipv6 fd00:b7::/64 --ipv4 10.77.0.0/24 >/dev/null || fail "net create"

# ---- a real guest: the kernel state of its limits --------------------------
# in 20 Mbit/s (to the VM), out 10 Mbit/s (from it).
hc vm create lim --image tiny --net bw --rate 20mbit/10mbit >/dev/null || fail "vm create --rate"
hc vm create free --image tiny --net bw >/dev/null || fail "vm create free"
wait_state lim running
wait_state free running
tap=$(vm_field lim '.nics[0].ifname')
mac=$(vm_field lim '.nics[0].mac')
ifb=i${tap#v}
ftap=$(vm_field free '.nics[0].ifname')
wait_qdisc "$tap" 'tbf 4843: root .*rate 20Mbit'
wait_qdisc "$tap" 'ingress ffff:'
[[ $(nsexec tc filter show dev "$tap" ingress) == *"Egress Redirect to device $ifb"* ]] ||
	fail "no redirect of $tap to $ifb: $(nsexec tc filter show dev "$tap" ingress)"
wait_qdisc "$ifb" 'tbf 4843: root .*rate 10Mbit'
has_qdisc "$ftap" 'tbf|ingress' && fail "unlimited $ftap has qdiscs of ours"
tap_exists "i${ftap#v}" && fail "unlimited NIC has an ifb"
[ "$(hc --json vm stats lim | jq -r '.nics[0].effective.in.rate, .nics[0].effective.out.source')" = \
  "$(printf '20000000\nnic')" ] || fail "vm stats: $(hc --json vm stats lim)"
ok "a guest's tap: TBF 20 Mbit/s at its root, ingress redirect to $ifb with TBF 10 Mbit/s"

# ---- the same NICs presented by namespaces ---------------------------------
nic_ns lim "hcbwl-$$"
nic_ns free "hcbwf-$$"
srv_ns "hcbws-$$" bw 10.77.0.200 fd00:b7::c8
# The agent shapes the veth that took the tap's name (a resync at most 5 s away).
wait_qdisc "$tap" 'tbf 4843: root .*rate 20Mbit'
wait_qdisc "$tap" 'ingress ffff:'
ip netns exec "hcbws-$$" iperf3 -s -D -p 5201 --logfile "$T_DIR/srv1.log"
ip netns exec "hcbws-$$" iperf3 -s -D -p 5202 --logfile "$T_DIR/srv2.log"
T_ON_EXIT+=("pkill -f 'iperf3 -s -D -p 520[12] --logfile $T_DIR' || true")
ns_reaches "hcbwl-$$" 10.77.0.200
ns_reaches "hcbwf-$$" 10.77.0.200

# iperf NS PORT ARGS…: seconds 6, the first omitted (slow start, the burst).
# An iperf3 server runs one test at a time and takes a moment to listen
# again (or at all, after -D): a client that finds it busy or not yet there
# gets a JSON error instead of figures — try again, up to 5 times.
iperf() {
	local ns=$1 port=$2 out i
	shift 2
	for i in 1 2 3 4 5; do
		out=$(ip netns exec "$ns" iperf3 -c 10.77.0.200 -p "$port" -t 6 -O 1 -J "$@" || true)
		jq -e 'has("error") | not' <<<"$out" >/dev/null && break
		echo "iperf3 (try $i): $(jq -r .error <<<"$out")" >&2
		sleep 1
	done
	printf '%s\n' "$out"
}
# within BPS LIMIT: BPS is LIMIT ± 15 %.
within() { [ "$1" -ge $(($2 * 85 / 100)) ] && [ "$1" -le $(($2 * 115 / 100)) ]; }

out=$(iperf "hcbwl-$$" 5201 | iperf_bps)
in=$(iperf "hcbwl-$$" 5201 -R | iperf_bps)
within "$out" 10000000 || fail "from the limited NIC: $out bit/s, limit 10000000"
within "$in" 20000000 || fail "to the limited NIC: $in bit/s, limit 20000000"
ok "limited NIC: from it $out bit/s (limit 10 Mbit/s), to it $in bit/s (limit 20 Mbit/s)"

# The neighbour, paced at 100 Mbit/s (five to ten times the limits, well
# within what this machine forwards even when busy): alone, then
# while the limited NIC is saturated in both directions.
alone=$(iperf "hcbwf-$$" 5202 -b 100M | iperf_bps)
alone_r=$(iperf "hcbwf-$$" 5202 -b 100M -R | iperf_bps)
iperf "hcbwl-$$" 5201 -t 8 >"$T_DIR/lim-busy.json" &
busy=$!
sleep 1
with=$(iperf "hcbwf-$$" 5202 -b 100M | iperf_bps)
wait "$busy" || fail "iperf3 of the limited NIC failed while the neighbour ran"
iperf "hcbwl-$$" 5201 -t 8 -R >"$T_DIR/lim-busy-r.json" &
busy=$!
sleep 1
with_r=$(iperf "hcbwf-$$" 5202 -b 100M -R | iperf_bps)
wait "$busy" || fail "iperf3 of the limited NIC failed while the neighbour ran"
for pair in "$alone $with from" "$alone_r $with_r to"; do
	set -- $pair
	[ "$1" -ge 80000000 ] || fail "the unlimited neighbour alone got only $1 bit/s $3 it"
	[ "$2" -ge $(($1 * 85 / 100)) ] ||
		fail "the unlimited neighbour was slowed: $2 bit/s $3 it with the limited NIC busy, $1 alone"
done
busy_out=$(iperf_bps <"$T_DIR/lim-busy.json")
busy_in=$(iperf_bps <"$T_DIR/lim-busy-r.json")
within "$busy_out" 10000000 || fail "limited NIC beside a busy neighbour: $busy_out bit/s from it"
within "$busy_in" 20000000 || fail "limited NIC beside a busy neighbour: $busy_in bit/s to it"
ok "unlimited neighbour: $alone / $alone_r bit/s alone, $with / $with_r beside the busy limited NIC"

# ---- a changed limit applies to the running NIC ----------------------------
hc vm nic set lim "$mac" --rate 5mbit/30mbit >/dev/null || fail "vm nic set"
wait_qdisc "$tap" 'tbf 4843: root .*rate 5Mbit'
wait_qdisc "$ifb" 'tbf 4843: root .*rate 30Mbit'
out=$(iperf "hcbwl-$$" 5201 | iperf_bps)
in=$(iperf "hcbwl-$$" 5201 -R | iperf_bps)
within "$out" 30000000 || fail "after the change, from the NIC: $out bit/s, limit 30000000"
within "$in" 5000000 || fail "after the change, to the NIC: $in bit/s, limit 5000000"
ok "changed on the running NIC: from it $out bit/s (30 Mbit/s), to it $in bit/s (5 Mbit/s)"

# ---- kill -9: the kernel keeps the limits, the next hcd finds them right ---
hcd_kill9
has_qdisc "$tap" 'tbf 4843:' || fail "the TBF went with hcd"
nsexec ip link add i0200deadbeef type ifb    # a stray ifb, as a NIC gone meanwhile leaves
lines=$(wc -l <"$T_DIR/hcd.log")
hcd_start
wait_qdisc "$tap" 'tbf 4843: root .*rate 5Mbit'
for i in $(seq 1 40); do tap_exists i0200deadbeef || break; sleep 0.25; done
tap_exists i0200deadbeef && fail "a stray ifb survived the restart"
tail -n +"$((lines + 1))" "$T_DIR/hcd.log" | grep 'shaping: .* changes on' &&
	fail "the restarted hcd changed limits that were right"
ok "after kill -9 the limits were adopted as they were; only the stray ifb went"

# ---- no limit, then delete: nothing of ours left ---------------------------
hc vm nic set lim "$mac" --rate none >/dev/null || fail "vm nic set --rate none"
for i in $(seq 1 40); do tap_exists "$ifb" || break; sleep 0.25; done
tap_exists "$ifb" && fail "the ifb stayed without a limit"
has_qdisc "$tap" 'tbf|ingress' && fail "qdiscs stayed without a limit"
hc net create bw2 --ipv6 fd00:b8::/64 --rate 8mbit >/dev/null || fail "net create --rate"
[ "$(hc --json net show bw2 | jq -r .limit.out.rate)" = 8000000 ] || fail "network default not shown"
hc vm create dflt --image tiny --net bw2 >/dev/null || fail "vm create on a limited network"
wait_state dflt running
dtap=$(vm_field dflt '.nics[0].ifname')
wait_qdisc "$dtap" 'tbf 4843: root .*rate 8Mbit'
[ "$(hc --json vm stats dflt | jq -r .nics[0].effective.in.source)" = network ] || fail "source"
id=$(vm_field dflt .id)
hc vm delete dflt >/dev/null
wait_purged "$id"
tap_exists "$dtap" && fail "tap left after delete"
tap_exists "i${dtap#v}" && fail "ifb left after delete"
ok "no limit: qdiscs and ifb gone; a network's default applies; delete leaves no tap, no ifb"

# ---- taps that come up later: hot-plugged, made anew by a restarted hcd ----
# The network's default reaches a NIC hot-plugged into the running guest,
# and a tap the next hcd has to make again (it went while hcd was away).
hc vm nic add free bw2 >/dev/null || fail "vm nic add"
htap=$(vm_field free '.nics[1].ifname')
wait_qdisc "$htap" 'tbf 4843: root .*rate 8Mbit'
hcd_kill9
nsexec ip link del "$htap"
hcd_start
wait_qdisc "$htap" 'tbf 4843: root .*rate 8Mbit'
ok "a hot-plugged NIC's tap and the same tap made anew after a restart get the network's default"

# A NIC hot-plugged with limits of its own has them, not the network's
# default: stored with the NIC, so the agent shapes its tap from the start.
hc vm nic add free bw2 --rate 3mbit/6mbit >/dev/null || fail "vm nic add --rate"
rmac=$(vm_field free '.nics[2].mac')
rtap=$(vm_field free '.nics[2].ifname')
wait_qdisc "$rtap" 'tbf 4843: root .*rate 3Mbit'
wait_qdisc "i${rtap#v}" 'tbf 4843: root .*rate 6Mbit'
st=$(hc --json vm stats free)
[ "$(jq -r --arg m "$rmac" '.nics[] | select(.mac == $m) | .effective |
	.in.rate, .in.source, .out.rate, .out.source' <<<"$st")" = "$(printf '3000000\nnic\n6000000\nnic')" ] ||
	fail "vm stats of the NIC added with --rate: $st"
ok "a NIC hot-plugged with --rate 3mbit/6mbit: its tap and ifb get them (source nic), not the network's 8 Mbit/s"
