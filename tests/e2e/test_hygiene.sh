#!/usr/bin/env bash
# Nothing stale survives: the nftables ruleset is regenerated in full, a
# restart after kill -9 leaves it byte-identical (compared stateless,
# `nft -s`: its drop counters count what the booting guests send
# meanwhile), and after the VMs and networks are deleted no rule, link,
# dnsmasq or file of them remains.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create one --ipv6 fd00:e2e:30::/64 --ipv4 10.83.0.0/24 >/dev/null
hc net create two --ipv6 fd00:e2e:31::/64 >/dev/null
hc vm create h1 --image tiny --net one --net two >/dev/null
hc vm create h2 --image tiny --net one >/dev/null
wait_state h1 running 60
wait_state h2 running 60
hc vm rule add h1 --proto tcp --port 22 >/dev/null
sleep 1
rules_before=$(nsexec nft -s list ruleset)
grep -q "$(vm_field h1 '.nics[0].ifname')" <<<"$rules_before" || fail "h1's tap is not in the ruleset"
[ -n "$(pgrep -f "dnsmasq.*$T_STATE")" ] || fail "no dnsmasq runs"
ok "ruleset and dnsmasq in place"

# A rule change swaps the version: only one version exists afterwards.
hc vm rule add h2 --proto udp --port 53 >/dev/null
sleep 1
rules_mid=$(nsexec nft -s list ruleset)
[ "$rules_mid" != "$rules_before" ] || fail "the ruleset did not change with a new rule"
hc vm rule delete h2 "$(hc --json vm rule list h2 | jq -r '.[0].id')" >/dev/null
sleep 1
[ "$(nsexec nft -s list ruleset)" = "$rules_before" ] || fail "the same store state gave a different ruleset"
ok "regenerated in full: the same state gives the same ruleset, nothing stale"

hcd_kill9
hcd_start
sleep 1
[ "$(nsexec nft -s list ruleset)" = "$rules_before" ] || fail "ruleset differs after kill -9 and restart"
ok "ruleset byte-identical after kill -9 and restart"

# Kill a dnsmasq: hcd starts it again.
dpid=$(pgrep -f "dnsmasq.*$T_STATE" | head -1)
kill -9 "$dpid"; echo "killed dnsmasq $dpid" >>"$T_DIR/hcd.log"
for i in $(seq 1 40); do
	[ "$(pgrep -f "dnsmasq.*$T_STATE" | wc -l)" = 2 ] && break
	sleep 0.5
done
[ "$(pgrep -f "dnsmasq.*$T_STATE" | wc -l)" = 2 ] || fail "the killed dnsmasq was not restarted"
ok "a dead dnsmasq is restarted"

ids=$(hc --json vm list | jq -r '.[].id')
taps=$(hc --json vm list | jq -r '.[].nics[].ifname')
macs=$(hc --json vm list | jq -r '.[].nics[].mac')
hc vm delete h1 >/dev/null
hc vm delete h2 >/dev/null
for id in $ids; do wait_purged "$id" 90; done
hc net delete one >/dev/null
hc net delete two >/dev/null
sleep 2
rules=$(nsexec nft -s list ruleset)
for t in $taps $macs b000001 b000002 10.83.0 fd00:e2e:3; do
	grep -q "$t" <<<"$rules" && fail "$t is still in the ruleset: $rules"
done
nsexec ip -o link | grep -Eq ': (v0200|b0000)' && fail "links left: $(nsexec ip -o link)"
[ -n "$(pgrep -f "dnsmasq.*$T_STATE")" ] && fail "dnsmasq still running"
[ -n "$(ls -A "$T_STATE/net" 2>/dev/null)" ] && fail "network files left: $(ls -R "$T_STATE/net")"
[ -n "$(ls -A "$T_STATE/vms" 2>/dev/null)" ] && fail "VM files left"
ok "no rule, link, dnsmasq or file of the deleted VMs and networks remains"
