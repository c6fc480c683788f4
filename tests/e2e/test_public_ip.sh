#!/usr/bin/env bash
# Public IPv4 addresses for IPv6-first networks (issue 13 §4), with a real
# guest and an "upstream" namespace on the uplink's subnet, as in
# test_uplink.sh:
#  - `hc ip attach` maps the next free address of public_ipv4_pool to the
#    guest; the host answers ARP for it on the uplink (a /32 of scope host);
#  - from upstream, ping and TCP to the public address reach the guest —
#    TCP only once the VM's rules open the port;
#  - the guest's own connections upstream leave from the public address
#    (not masqueraded behind the host's);
#  - detaching removes every trace: the address, the nft map elements and
#    the conntrack entries of its flows; then nothing reaches the guest.
. "$(dirname "$0")/lib.sh"
# (Greps below read all their input: `cmd | grep -q` can fail under
# pipefail when grep exits early and cmd gets SIGPIPE.)

upstream_ns
nsexec ip addr add 192.0.2.1/24 dev hcup0
ip -n "$UP_NS" addr add 192.0.2.2/24 dev eth0

# The pool is on the uplink's own subnet: upstream finds it by ARP.
hcd_start --uplink=hcup0 --public_ipv4_pool=192.0.2.100-192.0.2.103
import_tiny tiny
hc net create pub --ipv6 fd00:e2e:60::/64 --ipv4 10.87.0.0/24 >/dev/null
hc net create v6only --ipv6 fd00:e2e:61::/64 >/dev/null
hc vm create a --image tiny --net pub >/dev/null
hc vm create c --image tiny --net v6only --no-start >/dev/null
wait_log a HACKCLOUD-NET-UP 180
a4=$(vm_field a '.nics[0].ipv4')

# ---- attach ---------------------------------------------------------------------
api POST /v1/vms/c/ips '{}' >/dev/null
[ "$API_STATUS" = 409 ] || fail "a VM without IPv4 got a public IPv4 address ($API_STATUS)"
api POST /v1/vms/a/ips '{"address": "192.0.2.200"}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "an address outside the pool was accepted ($API_STATUS)"
pub=$(hc ip attach a) || fail "hc ip attach failed"
[ "$pub" = 192.0.2.100 ] || fail "the pool's first address was expected, got '$pub'"
hc ip list | grep "^$pub  *a " >/dev/null || fail "hc ip list does not show $pub on a"
[ "$(vm_field a '.nics[0].public_ipv4')" = "$pub" ] || fail "the VM's NIC does not show $pub"
for i in $(seq 1 120); do nsexec ip -4 addr show dev hcup0 | grep "inet $pub/32 scope host" >/dev/null && break; sleep 0.25; done
nsexec ip -4 addr show dev hcup0 | grep "inet $pub/32 scope host" >/dev/null || fail "$pub is not a /32 of scope host on the uplink: $(nsexec ip -4 addr show dev hcup0)"
ok "$pub attached to a ($a4): a /32 of scope host on the uplink"

# ---- in: ping, ARP, TCP subject to the VM's rules ----------------------------------
for i in $(seq 1 20); do upx ping -c 1 -W 2 "$pub" >/dev/null 2>&1 && break; sleep 1; done
upx ping -c 2 -W 2 "$pub" >/dev/null || fail "upstream cannot ping $pub"
up_mac=$(nsexec cat /sys/class/net/hcup0/address)
upx ip neigh show "$pub" | grep "lladdr $up_mac" >/dev/null || fail "upstream did not learn $pub at the host's uplink ($up_mac)"
ok "upstream pings the guest at $pub (the host answered ARP for it)"
guest_run a 20 'mkdir -p /tmp/w && echo public-hello >/tmp/w/index.html && httpd -p 8080 -h /tmp/w' >/dev/null
reach() { upx curl -s --max-time 3 "http://$pub:8080/" | grep public-hello >/dev/null; }
reach && fail "upstream reached port 8080 without a rule"
hc vm rule add a --proto tcp --port 8080 >/dev/null
for i in $(seq 1 20); do reach && break; sleep 0.5; done
reach || fail "upstream cannot reach port 8080 at $pub after the rule"
ok "TCP from upstream reaches the guest only through its rules"

# ---- out: the guest's connections leave from the public address ---------------------
pcap=$T_DIR/up.pcap
upx timeout 30 tcpdump -i eth0 -nn -U -w "$pcap" icmp 2>/dev/null &
cap=$!
sleep 2
guest_run a 30 'ping -c 2 -W 2 192.0.2.2' >/dev/null || fail "the guest cannot ping upstream"
sleep 1
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null || true
tcpdump -r "$pcap" -nn 2>/dev/null | grep "$pub > 192.0.2.2: ICMP echo request" >/dev/null ||
	fail "upstream did not see the guest's ping from $pub"
tcpdump -r "$pcap" -nn 2>/dev/null | grep -E "(192.0.2.1|$a4) > 192.0.2.2: ICMP echo request" >/dev/null &&
	fail "the guest's ping left masqueraded or with its private address"
ok "the guest's traffic upstream leaves from $pub"

# ---- detach: no trace ---------------------------------------------------------------
# A long-lived flow through the mapping, to see its conntrack entry go.
upx bash -c "exec 3<>/dev/tcp/$pub/8080; sleep 60" &
flow=$!
T_ON_EXIT+=("kill $flow 2>/dev/null")
for i in $(seq 1 20); do nsexec conntrack -L -d "$pub" 2>/dev/null | grep "dport=8080" >/dev/null && break; sleep 0.25; done
nsexec conntrack -L -d "$pub" 2>/dev/null | grep "dport=8080" >/dev/null || fail "control: no conntrack entry for a flow to $pub"
hc ip detach a "$pub" >/dev/null || fail "hc ip detach failed"
gone() {
	! nsexec ip -4 addr show | grep "$pub" >/dev/null &&
	! nsexec nft list ruleset | grep "$pub" >/dev/null &&
	[ -z "$(nsexec conntrack -L 2>/dev/null | grep -F "$pub")" ]
}
for i in $(seq 1 40); do gone && break; sleep 0.25; done
nsexec ip -4 addr show | grep "$pub" >/dev/null && fail "$pub is still an address of the host"
nsexec nft list ruleset | grep "$pub" >/dev/null && fail "$pub is still in the ruleset"
[ -z "$(nsexec conntrack -L 2>/dev/null | grep -F "$pub")" ] || fail "conntrack still holds entries of $pub"
[ -z "$(hc ip list | tail -n +2)" ] || fail "hc ip list still shows an address"
[ "$(vm_field a '.nics[0].public_ipv4')" = null ] || fail "the VM's NIC still shows a public address"
upx ip neigh flush dev eth0
upx ping -c 2 -W 1 "$pub" >/dev/null 2>&1 && fail "upstream still reaches $pub"
guest_run a 30 'ping -c 2 -W 2 192.0.2.2' >/dev/null || fail "the guest lost its way upstream after the detach"
ok "detached: no address, no map element, no conntrack entry; the guest is masqueraded again"
