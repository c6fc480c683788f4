#!/usr/bin/env bash
# Two tiny guests on one network: each gets its IPv6 by SLAAC and its IPv4
# by DHCP — exactly the addresses the API shows — pings the other over
# both, resolves the other's name through the network's dnsmasq, and the
# host pings both.  Then a NIC is hot-plugged and unplugged.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create office --ipv6 fd00:e2e:10::/64 --ipv4 10.79.0.0/24 >/dev/null
hc vm create web --image tiny --net office >/dev/null
hc vm create db --image tiny --net office >/dev/null
for vm in web db; do wait_log "$vm" HACKCLOUD-NET-UP 180; done
ok "both guests report their network up"

# The gateway's MAC is the bridge's own (02:01:00 + network ID), not the
# lowest of its ports' MACs, which would change as taps come and go.
net_id=$(hc --json net show office | jq -r .id)
br_mac=$(nsexec cat "/sys/class/net/b$net_id/address")
[ "$br_mac" = "02:01:00:${net_id:0:2}:${net_id:2:2}:${net_id:4:2}" ] ||
	fail "bridge b$net_id has MAC $br_mac, not its fixed 02:01:00:… one"
ok "the bridge keeps its fixed MAC $br_mac with guests attached"

for vm in web db; do
	v4=$(vm_field "$vm" '.nics[0].ipv4')
	v6=$(vm_field "$vm" '.nics[0].ipv6')
	for i in $(seq 1 30); do
		addrs=$(guest_run "$vm" 30 'ip -o addr show dev eth0')
		grep -q "inet $v4/24" <<<"$addrs" && grep -q "inet6 $v6/64" <<<"$addrs" && break
		sleep 1
	done
	grep -q "inet $v4/24" <<<"$addrs" || fail "$vm has not got $v4 by DHCP: $addrs"
	grep -q "inet6 $v6/64" <<<"$addrs" || fail "$vm has not got $v6 by SLAAC: $addrs"
	ok "$vm has $v4 (DHCP) and $v6 (SLAAC), as the API says"
done

db4=$(vm_field db '.nics[0].ipv4'); db6=$(vm_field db '.nics[0].ipv6')
web4=$(vm_field web '.nics[0].ipv4'); web6=$(vm_field web '.nics[0].ipv6')
guest_run web 30 "ping -c 2 -W 3 $db4" >/dev/null || fail "web cannot ping db over IPv4"
guest_run web 30 "ping -6 -c 2 -W 3 $db6" >/dev/null || fail "web cannot ping db over IPv6"
guest_run db 30 "ping -c 2 -W 3 $web4" >/dev/null || fail "db cannot ping web over IPv4"
ok "guests ping each other over IPv4 and IPv6"

out=$(guest_run web 30 "nslookup db.office") || fail "web cannot resolve db.office: $out"
grep -q "$db4" <<<"$out" || fail "db.office did not resolve to $db4: $out"
grep -q "$db6" <<<"$out" || fail "db.office did not resolve to $db6: $out"
ok "db.office resolves to db's A and AAAA through dnsmasq"

nsexec ping -c 2 -W 3 "$web4" >/dev/null || fail "host cannot ping web over IPv4"
nsexec ping -6 -c 2 -W 3 "$db6" >/dev/null || fail "host cannot ping db over IPv6"
ok "the host pings the guests"

# Hot-plug a second NIC on another network into the running web.
hc net create backend --ipv6 fd00:e2e:11::/64 --ipv4 10.80.0.0/24 >/dev/null
hc vm nic add web backend >/dev/null
mac2=$(vm_field web '.nics[1].mac')
tap2=$(vm_field web '.nics[1].ifname')
for i in $(seq 1 60); do tap_exists "$tap2" && break; sleep 0.5; done
tap_exists "$tap2" || fail "no tap for the hot-plugged NIC"
for i in $(seq 1 60); do
	guest_run web 10 'ip -o link' | grep -q "link/ether $mac2" && break
	sleep 1
done
guest_run web 10 'ip -o link' | grep -q "link/ether $mac2" || fail "the guest does not see the hot-plugged NIC"
ok "NIC hot-plugged: tap $tap2, the guest sees $mac2"
hc vm nic remove web "$mac2" >/dev/null
for i in $(seq 1 60); do tap_exists "$tap2" || break; sleep 0.5; done
tap_exists "$tap2" && fail "tap of the removed NIC still there"
for i in $(seq 1 30); do
	guest_run web 10 'ip -o link' | grep -q "link/ether $mac2" || break
	sleep 1
done
guest_run web 10 'ip -o link' | grep -q "link/ether $mac2" && fail "the guest still has the removed NIC"
ok "NIC unplugged: tap gone, the guest lost it"
