#!/usr/bin/env bash
# An uplink: a second namespace plays the upstream network, joined to the
# host namespace by a veth.  With `uplink` set, a guest reaches upstream
# over IPv4 masqueraded behind the host's uplink address, and over routed
# IPv6 from its own address; networks stay isolated from each other.
. "$(dirname "$0")/lib.sh"

UP_NS=hce2eup-$$
T_EXTRA_NS+=("$UP_NS")
ip netns add "$UP_NS"
ip link add hcup0 netns "$T_NS" type veth peer name eth0 netns "$UP_NS"
nsexec ip link set hcup0 up
nsexec ip addr add 192.0.2.1/24 dev hcup0
nsexec ip -6 addr add 2001:db8:ff::1/64 dev hcup0 nodad
ip -n "$UP_NS" link set lo up
ip -n "$UP_NS" link set eth0 up
ip -n "$UP_NS" addr add 192.0.2.2/24 dev eth0
ip -n "$UP_NS" -6 addr add 2001:db8:ff::2/64 dev eth0 nodad
# Upstream routes the guests' IPv6 prefix back to the host; IPv4 needs no
# route: it comes back to the masquerading address.
ip -n "$UP_NS" -6 route add fd00:e2e:40::/64 via 2001:db8:ff::1

hcd_start --uplink=hcup0
import_tiny tiny
hc net create pub --ipv6 fd00:e2e:40::/64 --ipv4 10.84.0.0/24 >/dev/null
hc vm create out --image tiny --net pub >/dev/null
wait_log out HACKCLOUD-NET-UP 180
# The guest's default routes come from DHCP (IPv4) and the RA (IPv6).
pcap=$T_DIR/up.pcap
ip netns exec "$UP_NS" timeout 30 tcpdump -i eth0 -nn -U -w "$pcap" icmp or icmp6 2>/dev/null &
cap=$!
sleep 2
for i in $(seq 1 20); do
	guest_run out 20 'ping -c 1 -W 2 192.0.2.2' >/dev/null && break
	sleep 1
done
guest_run out 20 'ping -c 2 -W 2 192.0.2.2' >/dev/null || fail "the guest cannot reach upstream over IPv4"
guest_run out 20 'ping -6 -c 2 -W 2 2001:db8:ff::2' >/dev/null || fail "the guest cannot reach upstream over IPv6"
sleep 1
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null || true
v6=$(vm_field out '.nics[0].ipv6')
tcpdump -r "$pcap" -nn 2>/dev/null | grep -q "192.0.2.1 > 192.0.2.2: ICMP echo request" ||
	fail "upstream did not see the IPv4 ping from the masquerading address"
tcpdump -r "$pcap" -nn 2>/dev/null | grep -q "10.84.0" && fail "a private guest IPv4 address leaked upstream"
tcpdump -r "$pcap" -nn 2>/dev/null | grep -q "$v6 > 2001:db8:ff::2" ||
	fail "upstream did not see the IPv6 ping from the guest's own address"
ok "IPv4 masqueraded behind the uplink, IPv6 routed from the guest's address"

# Upstream cannot open connections into the guest without a rule.
guest_run out 20 'mkdir -p /tmp/w && echo up-hello >/tmp/w/index.html && httpd -p 8080 -h /tmp/w' >/dev/null
ip netns exec "$UP_NS" curl -s --max-time 3 "http://[$v6]:8080/" | grep -q up-hello &&
	fail "upstream reached the guest's port 8080 without a rule"
hc vm rule add out --proto tcp --port 8080 >/dev/null
sleep 1
ip netns exec "$UP_NS" curl -s --max-time 3 "http://[$v6]:8080/" | grep -q up-hello ||
	fail "upstream cannot reach port 8080 after the rule"
ok "inbound from upstream over routed IPv6 follows the VM's rules"
