#!/usr/bin/env bash
# The firewall, against real guests:
#  - spoofing: frames a guest sends from a MAC, an IPv4 or an IPv6 address
#    that is not its own, or ARP claiming another address, never leave its
#    tap (a capture on the bridge counts them), while its honest traffic
#    does (the same capture sees it: the control);
#  - isolation: a guest on network A cannot reach a guest on network B;
#  - inbound rules: a TCP port opened by `hc vm rule add` is reachable from
#    the host, the port next to it is not, and nothing was before.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create a --ipv6 fd00:e2e:20::/64 --ipv4 10.81.0.0/24 >/dev/null
hc net create b --ipv6 fd00:e2e:21::/64 --ipv4 10.82.0.0/24 >/dev/null
hc vm create eve --image tiny --net a >/dev/null
hc vm create bob --image tiny --net b >/dev/null
for vm in eve bob; do wait_log "$vm" HACKCLOUD-NET-UP 180; done
br_a=$(hc --json net show a | jq -r .bridge)

# Capture on network A's bridge while eve misbehaves.
pcap=$T_DIR/a.pcap
nsexec timeout 40 tcpdump -i "$br_a" -nn -e -U -w "$pcap" 2>/dev/null &
cap=$!
sleep 2
guest_run eve 30 'ping -c 2 -W 2 10.81.0.1' >/dev/null || fail "eve cannot ping its gateway (control)"
guest_run eve 30 'ip addr add 10.81.0.99/24 dev eth0; ping -I 10.81.0.99 -c 3 -W 1 10.81.0.1; true' >/dev/null
guest_run eve 30 'ip -6 addr add fd00:e2e:20::bad/64 dev eth0 nodad; sleep 1; ping -6 -I fd00:e2e:20::bad -c 3 -W 1 fd00:e2e:20::1; true' >/dev/null
guest_run eve 30 'arping -c 3 -s 10.81.0.77 -I eth0 10.81.0.1; true' >/dev/null
guest_run eve 40 'ip link set eth0 down; ip link set eth0 address 02:00:de:ad:be:ef; ip link set eth0 up; sleep 2; ping -c 3 -W 1 10.81.0.1; true' >/dev/null
sleep 2
kill "$cap" 2>/dev/null; wait "$cap" 2>/dev/null || true
count() { tcpdump -r "$pcap" -nn -e "$@" 2>/dev/null | wc -l; }
eve_mac=$(vm_field eve '.nics[0].mac')
eve4=$(vm_field eve '.nics[0].ipv4')
[ "$(count "icmp and src host $eve4")" -ge 2 ] || fail "control: eve's honest pings were not captured"
[ "$(count 'src host 10.81.0.99')" = 0 ] || fail "IPv4 from a foreign address left the tap"
[ "$(count 'src host fd00:e2e:20::bad')" = 0 ] || fail "IPv6 from a foreign address left the tap"
[ "$(count 'arp and host 10.81.0.77')" = 0 ] || fail "ARP claiming a foreign address left the tap"
[ "$(count 'ether src 02:00:de:ad:be:ef')" = 0 ] || fail "frames from a foreign MAC left the tap"
ok "spoofed MAC, IPv4, IPv6 and ARP never left eve's tap; honest traffic did"

# Restore eve's MAC (the rest of the test needs her).
guest_run eve 40 "ip link set eth0 down; ip link set eth0 address $eve_mac; ip link set eth0 up; ip addr del 10.81.0.99/24 dev eth0; sleep 3; true" >/dev/null

bob4=$(vm_field bob '.nics[0].ipv4'); bob6=$(vm_field bob '.nics[0].ipv6')
guest_run eve 20 "ping -c 2 -W 2 $bob4" >/dev/null && fail "eve (net a) reached bob (net b) over IPv4"
guest_run eve 20 "ping -6 -c 2 -W 2 $bob6" >/dev/null && fail "eve (net a) reached bob (net b) over IPv6"
ok "networks are isolated from each other"

# Inbound: two web servers in bob; nothing open, then exactly port 8080.
guest_run bob 20 'mkdir -p /tmp/www && echo hello-from-bob >/tmp/www/index.html && httpd -p 8080 -h /tmp/www && httpd -p 8081 -h /tmp/www' >/dev/null
reach() { nsexec curl -s --max-time 3 "http://$1/" 2>/dev/null | grep -q hello-from-bob; }
reach "$bob4:8080" && fail "port 8080 reachable before any rule"
reach "[$bob6]:8080" && fail "port 8080 reachable over IPv6 before any rule"
hc vm rule add bob --proto tcp --port 8080 >/dev/null
for i in $(seq 1 20); do reach "$bob4:8080" && break; sleep 0.5; done
reach "$bob4:8080" || fail "port 8080 not reachable after the rule"
reach "[$bob6]:8080" || fail "port 8080 not reachable over IPv6 after the rule"
reach "$bob4:8081" && fail "port 8081 reachable though only 8080 was opened"
ok "an inbound rule opens exactly its port, over IPv4 and IPv6"
rule=$(hc --json vm rule list bob | jq -r '.[0].id')
hc vm rule delete bob "$rule" >/dev/null
sleep 1
reach "$bob4:8080" && fail "port 8080 still reachable after the rule was deleted"
ok "deleting the rule closes the port again"
