# shellcheck shell=bash
# Traffic generators standing in for guests (sourced after lib.sh).
#
# TCG guests cannot push tens of megabits, so a test that needs real
# traffic presents a running VM's NIC by a network namespace instead: the
# VM runs (its QEMU is up, so its NIC is "active" for the firewall and the
# agent), then, with hcd paused, its tap is renamed away and cut off (the
# guest idles on it, unheard), and a veth takes the tap's name v<MAC> on
# the network's bridge; its other end, eth0 in the namespace, carries the
# NIC's MAC and addresses.  The agent finds the link by name, exactly as
# it finds a tap: it shapes and meters the veth with the same code.

# A namespace on the bridge of network NET that is not a hackcloud NIC (a
# host on the segment, as an upstream server would be): srv_ns NS NET IP4 IP6
srv_ns() {
	local ns=$1 net=$2 ip4=$3 ip6=$4 br
	br=$(hc --json net show "$net" | jq -r .bridge)
	ip netns add "$ns"
	T_EXTRA_NS+=("$ns")
	ip -n "$T_NS" link add "h$ns" type veth peer name eth0 netns "$ns"
	ip -n "$T_NS" link set "h$ns" master "$br" up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" addr add "$ip4/24" dev eth0
	ip -n "$ns" -6 addr add "$ip6/64" dev eth0 nodad
}

# nic_ns VM NS: present the running VM's first NIC by namespace NS.
nic_ns() {
	local vm=$1 ns=$2 mac tap ip4 ip6 br
	mac=$(vm_field "$vm" '.nics[0].mac')
	tap=$(vm_field "$vm" '.nics[0].ifname')
	ip4=$(vm_field "$vm" '.nics[0].ipv4')
	ip6=$(vm_field "$vm" '.nics[0].ipv6')
	br=$(hc --json net show "$(vm_field "$vm" '.nics[0].network')" | jq -r .bridge)
	ip netns add "$ns"
	T_EXTRA_NS+=("$ns")
	# Paused, hcd cannot make the tap anew between the rename and the veth.
	kill -STOP "$HCD_PID"
	ip -n "$T_NS" link set "$tap" down
	ip -n "$T_NS" link set "$tap" nomaster
	ip -n "$T_NS" link set "$tap" name "g${tap#v}"
	ip -n "$T_NS" link add "$tap" type veth peer name eth0 netns "$ns"
	ip -n "$T_NS" link set "$tap" master "$br" up
	kill -CONT "$HCD_PID"
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 address "$mac" up
	ip -n "$ns" addr add "$ip4/24" dev eth0
	ip -n "$ns" -6 addr add "$ip6/64" dev eth0 nodad
}

# ns_reaches NS IP: wait until namespace NS pings IP (neighbours, firewall).
ns_reaches() {
	local i
	for i in $(seq 1 50); do
		ip netns exec "$1" ping -c1 -W1 "$2" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "namespace $1 cannot reach $2"
}

# has_qdisc DEV ERE: `tc qdisc show dev DEV` (in hcd's namespace) matches.
# Captured first: `tc … | grep -q` fails under pipefail whenever grep has
# its answer before tc has written everything (tc dies of SIGPIPE).
has_qdisc() {
	local out
	out=$(nsexec tc qdisc show dev "$1" 2>/dev/null) || return 1
	[[ $out =~ $2 ]]
}

# Wait until the qdiscs of DEV match an ERE.
wait_qdisc() {
	local dev=$1 re=$2 timeout=${3:-30} i
	for i in $(seq 1 $((timeout * 4))); do
		has_qdisc "$dev" "$re" && return 0
		sleep 0.25
	done
	fail "no qdisc matching '$re' on $dev within ${timeout}s: $(nsexec tc qdisc show dev "$dev" 2>&1)"
}

# Bits per second an iperf3 run received (its JSON on stdin).
iperf_bps() { jq -r '.end.sum_received.bits_per_second | floor'; }
