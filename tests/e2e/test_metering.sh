#!/usr/bin/env bash
# Traffic metering, quotas, rate caps and usage (issue 13 §1, §2).
#
# A running VM's NIC is presented by a namespace (tests/e2e/nicns.sh), so
# iperf3 pushes megabytes through what the agent takes for its tap.  The
# meter samples every second.  Exactness is checked against the kernel: once
# traffic holds still, the store's total of a direction minus the link's
# counter is a constant, and it must stay that constant across pushes, a
# kill -9 of hcd with traffic while it is down (nothing lost, nothing
# counted twice) and a tap made anew (a new ifindex counts from zero); a
# tap's last bytes are counted when hcd removes it (hot-unplug; a stop,
# whose taps go on a worker after QEMU, with no sample due for an hour).
# Then a small monthly quota throttles the NIC (per VM, per user) and
# lifting it restores it; a member's rate cap refuses faster limits (403)
# and caps NICs without one; `hc usage` bills traffic, vCPU-, memory- and
# disk-hours per VM and user, members see only their own.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nicns.sh"

hcd_start --meter-interval=1 --quota-throttle-rate=2mbit
import_tiny
hc net create mt --ipv6 fd00:7e::/64 --ipv4 10.78.0.0/24 >/dev/null || fail "net create"
hc vm create m1 --image tiny --net mt --disk 64M >/dev/null || fail "vm create"
wait_state m1 running
tap=$(vm_field m1 '.nics[0].ifname')
mac=$(vm_field m1 '.nics[0].mac')
NS=hcmt-$$
nic_ns m1 "$NS"
srv_ns "hcmts-$$" mt 10.78.0.200 fd00:7e::c8
ip netns exec "hcmts-$$" iperf3 -s -D -p 5201 --logfile "$T_DIR/srv.log"
T_ON_EXIT+=("pkill -f 'iperf3 -s -D -p 5201 --logfile $T_DIR' || true")
ns_reaches "$NS" 10.78.0.200

# iperf3 from the NIC's namespace to the server, its output in push.out.
# The server takes one test at a time and may still be closing the last
# one: try again then.
client() {
	local i
	for i in $(seq 1 20); do
		ip netns exec "$NS" iperf3 -c 10.78.0.200 -p 5201 "$@" >"$T_DIR/push.out" 2>"$T_DIR/push.err" &&
			return 0
		grep -q 'server is busy' "$T_DIR/push.out" "$T_DIR/push.err" || break
		sleep 1
	done
	fail "iperf3 $*: $(cat "$T_DIR/push.out" "$T_DIR/push.err")"
}
# Push BYTES from the VM (or to it with -R).
push() { client -n "$@"; }
# The link's counters "rx tx" (rx: from the VM), and the store's "out in".
kcount() { nsexec ip -s -j link show dev "$tap" | jq -r '.[0].stats64 | "\(.rx.bytes) \(.tx.bytes)"'; }
scount() { hc --json vm stats "${VM:-m1}" | jq -r --arg mac "$mac" \
	'.nics[] | select(.mac == $mac) | "\(.total.bytes_out) \(.total.bytes_in)"'; }
# Store minus kernel per direction, once the link holds still for longer
# than two samples (multicast from the bridge may arrive any time: retry).
offsets() {
	local k1 k2 s i
	for i in $(seq 1 30); do
		k1=$(kcount)
		sleep 2.5
		s=$(scount)
		k2=$(kcount)
		if [ "$k1" = "$k2" ]; then
			echo "$((${s% *} - ${k2% *})) $((${s#* } - ${k2#* }))"
			return
		fi
	done
	fail "the NIC never held still"
}

c0=$(offsets)
push 3M
c1=$(offsets)
[ "$c1" = "$c0" ] || fail "the store counted other than the kernel: offsets $c0, then $c1 after 3 MB"
t=$(scount)
[ "${t% *}" -ge $((3 << 20)) ] || fail "3 MB sent, the store has ${t% *} bytes out"
ok "3 MB from the VM: the store's totals moved exactly as the link's counters (offsets $c0)"

# kill -9 (at whatever the meter was doing), 2 MB while hcd is away.
hcd_kill9
push 2M
push 1M -R
hcd_start --meter-interval=1 --quota-throttle-rate=2mbit
c2=$(offsets)
[ "$c2" = "$c0" ] || fail "after kill -9: offsets $c2, were $c0 (lost or counted twice)"
ok "kill -9 with 3 MB moving while hcd was away: nothing lost, nothing counted twice"

# A tap made anew (as when QEMU restarts): new ifindex, counts from zero.
# While hcd is paused the store holds still: read it there.
nic=$((16#$(tr -d : <<<"${mac#02:00:}")))
br=$(hc --json net show mt | jq -r .bridge)
ip4=$(vm_field m1 '.nics[0].ipv4')
kill -STOP "$HCD_PID"
s_before=$(sqlite3 "$T_STATE/hackcloud.db" \
	"SELECT SUM(bytes_out) || ' ' || SUM(bytes_in) FROM usage_nic WHERE nic = $nic")
nsexec ip link del "$tap"
nsexec ip link add "$tap" type veth peer name eth0 netns "$NS"
nsexec ip link set "$tap" master "$br" up
ip -n "$NS" link set eth0 address "$mac" up
ip -n "$NS" addr add "$ip4/24" dev eth0
# The VM's counters of the old link are in the store already: it held
# still before.  What the new one carries before hcd looks is new.  Only a
# multicast frame that reached the old link late can differ: lost when it
# came after the last sample, counted after s_before when a sample of it
# was under way as hcd paused (a few frames either way; a new link taken
# for the old one would be off by the megabyte pushed through it).
kill -CONT "$HCD_PID"
ns_reaches "$NS" 10.78.0.200
push 1M
c3=$(offsets)
near() { [ "$1" -ge $(($2 - 4 * 1514)) ] && [ "$1" -le $(($2 + 4 * 1514)) ]; }
near "${c3% *}" "${s_before% *}" && near "${c3#* }" "${s_before#* }" ||
	fail "a new link: offsets $c3, expected the totals before it, $s_before"
ok "a link made anew counts from zero: store = totals before + the new link's counters"

# ---- quotas: a small one throttles the NIC, lifting it restores it --------
used=$(hc --json vm stats m1 | jq -r .used)
hc vm set m1 --traffic-quota $((used + (2 << 20))) >/dev/null || fail "vm set --traffic-quota"
[ "$(hc --json vm stats m1 | jq -r .throttled)" = false ] || fail "throttled before the quota is used"
has_qdisc "$tap" tbf && fail "a TBF before the quota is used"
push 3M
wait_qdisc "$tap" 'tbf 4843: root .*rate 2Mbit' 15
wait_qdisc "i${tap#v}" 'tbf 4843: root .*rate 2Mbit' 5
st=$(hc --json vm stats m1)
[ "$(jq -r .throttled <<<"$st")" = true ] || fail "not shown throttled: $st"
[ "$(jq -r '.nics[0].effective.out.source' <<<"$st")" = throttle ] || fail "source: $st"
client -t 5 -O 1 -J
bps=$(iperf_bps <"$T_DIR/push.out")
[ "$bps" -ge 1700000 ] && [ "$bps" -le 2300000 ] || fail "throttled NIC sends $bps bit/s, not ~2 Mbit/s"
hc vm set m1 --traffic-quota none >/dev/null || fail "vm set --traffic-quota none"
for i in $(seq 1 40); do has_qdisc "$tap" tbf || break; sleep 0.25; done
has_qdisc "$tap" tbf && fail "still throttled without a quota"
# The owner's quota (root owns m1) throttles the same way.
hc user set root --traffic-quota 1M >/dev/null || fail "user set --traffic-quota"
wait_qdisc "$tap" 'tbf 4843: root .*rate 2Mbit' 15
[ "$(hc --json usage --user root | jq -r '.users[0].throttled')" = true ] || fail "user not throttled"
hc user set root --traffic-quota none >/dev/null
for i in $(seq 1 40); do has_qdisc "$tap" tbf || break; sleep 0.25; done
has_qdisc "$tap" tbf && fail "still throttled without the user's quota"
ok "quota used up → NIC at quota_throttle_rate ($bps bit/s measured), per VM and per user; lifted → unlimited"

# ---- hot-unplug: the last bytes are counted as the tap goes ---------------
push 1M
c=$(offsets)
# Bytes after the last sample, which only the removal can count.
push 512K
k=$(kcount)
hc vm nic remove m1 "$mac" >/dev/null || fail "nic remove"
for i in $(seq 1 60); do tap_exists "$tap" || break; sleep 0.5; done
tap_exists "$tap" && fail "the unplugged NIC's link stayed"
t=$(hc --json vm stats m1 | jq -r --arg mac "$mac" \
	'.nics[] | select(.mac == $mac) | "\(.removed) \(.total.bytes_out) \(.total.bytes_in)"')
read -r removed tout tin <<<"$t"
# From the VM: exactly what its link counted.  To it: at least that, and at
# most a few frames more — the pass that removes it first reconfigures the
# network's services, whose multicast (to every port) the link may count
# before it goes.
[ "$removed" = true ] && [ "$tout" = $((${k% *} + ${c% *})) ] &&
	[ "$tin" -ge $((${k#* } + ${c#* })) ] && [ "$tin" -le $((${k#* } + ${c#* } + 4 * 1514)) ] ||
	fail "after the unplug the NIC shows '$t', expected removed and the last counters + offsets ($k, $c)"
ok "hot-unplug: the removed NIC's totals include everything its link counted"

# ---- usage: what a provider bills from ------------------------------------
u=$(hc --json usage)
vcpu=$(jq -r '.vms[] | select(.name == "m1") | .vcpu_seconds' <<<"$u")
disk=$(jq -r '.vms[] | select(.name == "m1") | .disk_mib_seconds' <<<"$u")
out=$(jq -r '.vms[] | select(.name == "m1") | .bytes_out' <<<"$u")
[ "$vcpu" -gt 0 ] && [ "$disk" -ge "$vcpu" ] && [ "$out" -ge $((10 << 20)) ] ||
	fail "usage of m1: vcpu $vcpu s, disk $disk MiB·s, out $out bytes: $u"
[ "$(jq -r '.users[] | select(.user == "root") | .bytes_out' <<<"$u")" -ge "$out" ] || fail "user sum: $u"
[[ $(hc usage) == *" m1 "* ]] || fail "hc usage does not list m1: $(hc usage)"
[ "$(hc --json usage --month 2000-01 | jq '.vms | length')" = 0 ] || fail "an old month has usage"
api GET '/v1/usage?month=2026-13' >/dev/null
[ "$API_STATUS" = 400 ] || fail "a bad month answered $API_STATUS"
id=$(vm_field m1 .id)
hc vm delete m1 >/dev/null
wait_purged "$id"
[ "$(hc --json usage | jq -r '.vms[] | select(.name == "m1") | .bytes_out')" = "$out" ] ||
	fail "usage of the deleted VM changed or went"
ok "usage: m1 ran $vcpu vCPU-s, $disk MiB·s of disk, sent $out bytes; kept after its delete"

# ---- a member's rate cap -----------------------------------------------------
printf 'alice-password\n' | hc user create alice --auth file --password-stdin >/dev/null
hc user set alice --rate-cap 50mbit >/dev/null || fail "user set --rate-cap"
api POST /v1/login '{"user": "alice", "password": "alice-password"}' >"$T_DIR/login"
HC_TOKEN=$(jq -r .token "$T_DIR/login")
export HC_TOKEN API_TOKEN=$HC_TOKEN
import_tiny aimg
msg=$(hc net create anet --rate 100mbit 2>&1) && fail "a network default above the cap"
grep -q 'rate cap of 50mbit' <<<"$msg" || fail "over-cap message: $msg"
hc net create anet >/dev/null || fail "alice: net create"
msg=$(hc vm create a1 --image aimg --net anet:rate=60mbit --no-start 2>&1) && fail "a NIC above the cap"
grep -q 'rate cap of 50mbit' <<<"$msg" || fail "over-cap message: $msg"
hc vm create a1 --image aimg --net anet --rate 40mbit/none --no-start >/dev/null || fail "alice: vm create"
amac=$(vm_field a1 '.nics[0].mac')
st=$(hc --json vm stats a1)
[ "$(jq -r '.nics[0].effective.in.rate, .nics[0].effective.out.rate, .nics[0].effective.out.source' <<<"$st")" = \
  "$(printf '40000000\n50000000\ncap')" ] || fail "capped effective limits: $st"
api PATCH "/v1/vms/a1/nics/$amac" '{"limit": {"in": {"rate": 60000000}}}' >"$T_DIR/over"
[ "$API_STATUS" = 403 ] && [ "$(jq -r .error.code "$T_DIR/over")" = over_cap ] ||
	fail "PATCH over the cap: $API_STATUS $(cat "$T_DIR/over")"
api POST /v1/vms/a1/nics '{"network": "anet", "limit": {"in": {"rate": 60000000}}}' >"$T_DIR/over"
[ "$API_STATUS" = 403 ] && [ "$(jq -r .error.code "$T_DIR/over")" = over_cap ] ||
	fail "nic add over the cap: $API_STATUS $(cat "$T_DIR/over")"
[ "$(vm_field a1 '.nics | length')" = 1 ] || fail "a NIC over the cap was added"
# "limit": null on a NIC of a new VM is no limit of its own (as documented):
# the cap applies.
api POST /v1/vms '{"name": "a2", "image": "aimg", "networks": [{"network": "anet", "limit": null}], "start": false}' >"$T_DIR/a2"
[ "$API_STATUS" = 201 ] || fail "a NIC's limit null: $API_STATUS $(cat "$T_DIR/a2")"
[ "$(hc --json vm stats a2 | jq -r '.nics[0].effective.in.source')" = cap ] || fail "a2's NIC is not capped"
hc vm delete a2 >/dev/null
api PATCH /v1/users/alice/traffic '{"rate_cap": null}' >/dev/null
[ "$API_STATUS" = 403 ] || fail "a member lifted her own cap: $API_STATUS"
hc vm set a1 --traffic-quota 1G 2>/dev/null && fail "a member set her VM's quota"
[ "$(hc --json usage | jq '[.vms[] | select(.owner != "alice")] | length')" = 0 ] ||
	fail "alice sees others' usage"
api GET '/v1/usage?user=root' >/dev/null
[ "$API_STATUS" = 404 ] || fail "alice asked for root's usage: $API_STATUS"
unset HC_TOKEN API_TOKEN
ok "rate cap: 403 over_cap naming it (create, nic add, nic set), NICs without a limit get the cap; members see only their own"

# ---- a stop: QEMU's end takes its taps, their last bytes counted -----------
# The end job removes the taps on a worker; what they carried since the
# last sample is read right before.  A meter that samples once an hour
# leaves those bytes to the removal alone.
hc vm create m2 --image tiny --net mt >/dev/null || fail "vm create m2"
wait_state m2 running
VM=m2 NS=hcmt2-$$
tap=$(vm_field m2 '.nics[0].ifname')
mac=$(vm_field m2 '.nics[0].mac')
nic_ns m2 "$NS"
ns_reaches "$NS" 10.78.0.200
push 1M
c=$(offsets)
hcd_kill9
hcd_start --meter-interval=3600 --quota-throttle-rate=2mbit
push 512K
k=$(kcount)
hc vm stop --force m2 >/dev/null || fail "vm stop --force"
for i in $(seq 1 60); do tap_exists "$tap" || break; sleep 0.5; done
tap_exists "$tap" && fail "the stopped VM's link stayed"
wait_state m2 stopped
t=$(scount)
[ "${t% *}" = $((${k% *} + ${c% *})) ] &&
	[ "${t#* }" -ge $((${k#* } + ${c#* })) ] && [ "${t#* }" -le $((${k#* } + ${c#* } + 4 * 1514)) ] ||
	fail "after the stop m2 shows '$t' (out in), expected the last counters + offsets ($k, $c)"
ok "a stop: the NIC's totals include everything its link counted before QEMU's end removed it"
