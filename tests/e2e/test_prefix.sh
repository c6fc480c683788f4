#!/usr/bin/env bash
# Routed IPv6 prefixes (issue 13 §3), with real guests and an "upstream"
# namespace that routes the operator's pool to the host, as a provider's
# router would:
#  - `hc vm prefix add` hands out a /64 of prefix_pool; the host routes it
#    to the NIC's EUI-64 address (a route of protocol 72);
#  - the guest learns it from the metadata service (EC2 ipv6-prefix key)
#    and configures an address from it; the host, another VM and upstream
#    reach that address; the VM's inbound rules apply to it as to its own;
#  - the guest may send from its prefix, but a source outside it never
#    leaves its tap (captured upstream and on the bridge);
#  - removing the prefix removes its route and its anti-spoofing element;
#  - the NoCloud seed (network-config) carries the prefix's address too.
. "$(dirname "$0")/lib.sh"

POOL=2001:db8:e2e::/48
upstream_ns
nsexec ip -6 addr add 2001:db8:ff::1/64 dev hcup0 nodad
ip -n "$UP_NS" -6 addr add 2001:db8:ff::2/64 dev eth0 nodad
# Upstream routes the network and the whole pool to the host.
ip -n "$UP_NS" -6 route add fd00:e2e:50::/64 via 2001:db8:ff::1
ip -n "$UP_NS" -6 route add "$POOL" via 2001:db8:ff::1

hcd_start --uplink=hcup0 --prefix_pool="$POOL"
import_tiny tiny
hc net create pub --ipv6 fd00:e2e:50::/64 --ipv4 10.86.0.0/24 >/dev/null
hc vm create a --image tiny --net pub --config-drive >/dev/null
hc vm create b --image tiny --net pub >/dev/null
for vm in a b; do wait_log "$vm" HACKCLOUD-NET-UP 180; done
a6=$(vm_field a '.nics[0].ipv6'); a_mac=$(vm_field a '.nics[0].mac'); a_tap=$(vm_field a '.nics[0].ifname')
br=$(hc --json net show pub | jq -r .bridge)

# ---- handed out, routed, announced --------------------------------------------
prefix=$(hc vm prefix add a) || fail "hc vm prefix add failed"
[ "$prefix" = "2001:db8:e2e::/64" ] || fail "the first /64 of the pool was expected, got '$prefix'"
hc vm prefix list a | grep "$prefix" >/dev/null || fail "hc vm prefix list does not show $prefix"
[ "$(vm_field a '.nics[0].prefixes[0]')" = "$prefix" ] || fail "the VM's NIC does not carry its prefix"
route=
for i in $(seq 1 40); do
	route=$(nsexec ip -6 route show proto 72)
	[ -n "$route" ] && break
	sleep 0.25
done
echo "$route" | grep "^$prefix via $a6 dev $br" >/dev/null || fail "no route $prefix via $a6 dev $br: '$route'"
ok "$prefix routed to $a6 on $br (protocol 72)"

# (EC2's values end without a newline: echo one for the console.)
md=$(guest_run a 30 "wget -q -O - http://169.254.169.254/latest/meta-data/network/interfaces/macs/$a_mac/ipv6-prefix; echo") ||
	fail "the guest cannot read its ipv6-prefix from the metadata service"
echo "$md" | grep -x "$prefix" >/dev/null || fail "metadata says '$md', not $prefix"
# The guest configures the prefix's first address, as the data sources suggest.
guest_run a 20 'p=$(wget -q -O - http://169.254.169.254/latest/meta-data/network/interfaces/macs/'"$a_mac"'/ipv6-prefix; echo); p=${p%%[!0-9a-f:/]*}; ip -6 addr add ${p%/*}1/128 dev eth0 && echo configured ${p%/*}1' |
	grep -q "configured 2001:db8:e2e::1" || fail "the guest did not configure 2001:db8:e2e::1"
ok "the guest read its prefix from the metadata service and took 2001:db8:e2e::1"

# ---- reachable: host, another VM, upstream --------------------------------------
ping_ok() { # ping6 from wherever "$@" runs, a few tries (the guest's DAD/ND)
	local i
	for i in $(seq 1 10); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
	return 1
}
ping_ok nsexec ping -6 -c 1 -W 2 2001:db8:e2e::1 || fail "the host cannot reach 2001:db8:e2e::1"
ok "the host reaches the prefix"
ping_ok guest_run b 20 'ping -6 -c 1 -W 2 2001:db8:e2e::1' || fail "VM b cannot reach 2001:db8:e2e::1"
ok "another VM reaches the prefix"
ping_ok upx ping -6 -c 1 -W 2 2001:db8:e2e::1 || fail "upstream cannot reach 2001:db8:e2e::1"
ok "upstream reaches the prefix"

# Inbound rules treat the prefix like the VM's own address.
guest_run a 20 'mkdir -p /tmp/w && echo prefix-hello >/tmp/w/index.html && httpd -p 8080 -h /tmp/w' >/dev/null
reach() { upx curl -s --max-time 3 "http://[2001:db8:e2e::1]:8080/" | grep prefix-hello >/dev/null; }
reach && fail "upstream reached port 8080 of the prefix without a rule"
hc vm rule add a --proto tcp --port 8080 >/dev/null
for i in $(seq 1 20); do reach && break; sleep 0.5; done
reach || fail "upstream cannot reach port 8080 of the prefix after the rule"
ok "the VM's inbound rules apply to its prefix"

# ---- anti-spoofing: the prefix yes, anything else no ------------------------------
pcap_up=$T_DIR/up.pcap pcap_br=$T_DIR/br.pcap
upx timeout 40 tcpdump -i eth0 -nn -U -w "$pcap_up" icmp6 2>/dev/null &
cap_up=$!
nsexec timeout 40 tcpdump -i "$br" -nn -U -w "$pcap_br" icmp6 2>/dev/null &
cap_br=$!
sleep 2
guest_run a 30 'ping -6 -I 2001:db8:e2e::1 -c 2 -W 2 2001:db8:ff::2' >/dev/null ||
	fail "the guest cannot ping upstream from its prefix"
guest_run a 40 'ip -6 addr add 2001:db8:e2f::1/128 dev eth0; ip -6 addr add 2001:db8:e2e:1::1/128 dev eth0; sleep 1;
	ping -6 -I 2001:db8:e2f::1 -c 3 -W 1 2001:db8:ff::2; ping -6 -I 2001:db8:e2e:1::1 -c 3 -W 1 2001:db8:ff::2; true' >/dev/null
sleep 2
kill "$cap_up" "$cap_br" 2>/dev/null; wait "$cap_up" "$cap_br" 2>/dev/null || true
count() { tcpdump -r "$1" -nn "${@:2}" 2>/dev/null | wc -l; }
[ "$(count "$pcap_up" 'src host 2001:db8:e2e::1')" -ge 2 ] || fail "control: upstream did not see the pings from the prefix"
[ "$(count "$pcap_up" 'src host 2001:db8:e2f::1')" = 0 ] || fail "a source outside the pool reached upstream"
[ "$(count "$pcap_br" 'src host 2001:db8:e2f::1')" = 0 ] || fail "a source outside the prefix left the tap"
[ "$(count "$pcap_br" 'src host 2001:db8:e2e:1::1')" = 0 ] ||
	fail "a source of the pool but outside the VM's prefix left the tap"
ok "the guest sends from its prefix; other sources (outside it, or another /64 of the pool) never leave its tap"

# ---- removal: no route, no set element, no metadata key -----------------------------
set_has_tap() { nsexec nft list ruleset | awk '/set pfx6-/,/}/' | grep -F "\"$a_tap\"" >/dev/null; }
set_has_tap || fail "control: the anti-spoofing set holds no element for $a_tap"
hc vm prefix remove a "$prefix" >/dev/null || fail "hc vm prefix remove failed"
for i in $(seq 1 40); do
	[ -z "$(nsexec ip -6 route show proto 72)" ] && ! set_has_tap && break
	sleep 0.25
done
[ -z "$(nsexec ip -6 route show proto 72)" ] || fail "the route outlived the prefix"
set_has_tap && fail "the anti-spoofing element outlived the prefix"
guest_run a 20 "wget -q -O - http://169.254.169.254/latest/meta-data/network/interfaces/macs/$a_mac/ipv6-prefix; rc=\$?; echo; (exit \$rc)" >/dev/null &&
	fail "the metadata service still announces a removed prefix"
ping_ok upx ping -6 -c 1 -W 1 2001:db8:e2e::1 && fail "upstream still reaches the removed prefix"
ok "removal took the route, the anti-spoofing element and the announcement"

# ---- a stray route of ours is swept; a VM that stops takes its route along --------
nsexec ip -6 route add 2001:db8:e2e:99::/64 via "$a6" dev "$br" proto 72
prefix=$(hc vm prefix add a --length 56) || fail "a /56 was refused"
[ "$prefix" = "2001:db8:e2e::/56" ] || fail "the first free /56 (the /64 is free again) was expected, got $prefix"
for i in $(seq 1 40); do
	r=$(nsexec ip -6 route show proto 72)
	echo "$r" | grep "^$prefix via" >/dev/null && ! echo "$r" | grep e2e:99 >/dev/null && break
	sleep 0.25
done
echo "$r" | grep "^$prefix via $a6" >/dev/null || fail "no route for the /56"
echo "$r" | grep "e2e:99" >/dev/null && fail "a stray route of protocol 72 survived a pass"
hc vm stop a >/dev/null
wait_state a stopped 120
for i in $(seq 1 20); do [ -z "$(nsexec ip -6 route show proto 72)" ] && break; sleep 0.25; done
[ -z "$(nsexec ip -6 route show proto 72)" ] || fail "a stopped VM's prefix is still routed here"
ok "stray routes are swept; a stopped VM's prefix is not routed"

# ---- the NoCloud seed, rebuilt at the next start, announces the /56 ----------------
hc vm start a >/dev/null
wait_state a running 120
xorriso -osirrox on -indev "$T_STATE/vms/$(vm_field a .id)/seed.iso" -extract /network-config "$T_DIR/nc" \
	>/dev/null 2>&1 || fail "no network-config in a's seed"
python3 - "$T_DIR/nc" "$a_mac" <<'EOF' || fail "network-config lacks the prefix's address: $(cat "$T_DIR/nc")"
import sys, yaml
eth = [e for e in yaml.safe_load(open(sys.argv[1]))["ethernets"].values()
       if e["match"]["macaddress"] == sys.argv[2]][0]
assert eth["addresses"] == ["2001:db8:e2e::1/128"], eth
EOF
ok "the NoCloud seed's network-config gives the guest 2001:db8:e2e::1/128 of its /56"
