#!/usr/bin/env bash
# Live migration between hosts (issue 14 §1), in the three-host cluster.
# Before (a), refusals: an unknown host, the VM's own, a draining one, bad
# bodies — clean 4xx, no row.
#
#  (a) a guest with a root and a data disk writes random data (checksums)
#      and console output, gets a second NIC hot-plugged (its QEMU's PCI
#      layout must be the one the destination builds from the store:
#      explicit slots), then moves h1 → h2 while a guest on h3 pings
#      it: afterwards the checksums are equal, its MAC and addresses are
#      the same, it answers pings, the store says h2, the serial log goes
#      on where it was, h3's FDB and h2's metadata service follow it, and
#      h1 keeps nothing of it (QEMU, taps, directory, firewall elements);
#  (b) the migration ports are fenced: a listener on a port of the range
#      is reached by no host while no migration runs;
#  (c) failures — the destination's hcd killed and restarted, the
#      source's hcd killed and restarted, the destination's hcd away past
#      the source's wait (the switch-over's fence: the source takes the VM
#      back, the destination drops its complete copy), the network cut,
#      the destination host dying, a guest dirtying memory faster than the
#      link: each time the VM ends up running on exactly one host, the one
#      the store names, its data intact (checksums), nothing of it on the
#      others;
#  (d) `hc host drain --migrate` moves every running VM off a host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster.sh"

# Slow streams (8 MiB/s) so that faults land mid-transfer; short waits so
# that failures are given up on quickly.
# shellcheck disable=SC2034 # cluster.sh reads it
CL_HCD_ARGS=("--heartbeat-interval=1" "--dead-timeout=6" "--resync-interval=600"
	"--migrate_max_bandwidth=8" "--migrate_stall_timeout=6" "--migrate_wait_timeout=12"
	"--migrate_timeout=120" "--meter_interval=2")
cl_setup h1 h2 h3
for h in h1 h2 h3; do cl_hcd_start "$h"; done
for i in $(seq 1 50); do
	[ "$(hc --json host list | jq '[.[] | select(.state == "live")] | length')" = 3 ] && break
	sleep 0.2
done
ok "three hosts up"

import_tiny tiny
hc net create span --ipv6 fd00:e2e:d1::/64 --ipv4 10.82.0.0/24 >/dev/null
net=$(hc --json net show span | jq -r .id)
hc vm create m --image tiny --net span --host h1 --memory 128 --disk-size 64M --disk 32M >/dev/null
hc vm create p --image tiny --net span --host h3 --memory 96 >/dev/null
wait_state m running 120
wait_state p running 120
for vm in m p; do cl_wait_log "$vm" HACKCLOUD-NET-UP 180; done
m_id=$(vm_field m .id)
m_mac=$(vm_field m '.nics[0].mac'); m4=$(vm_field m '.nics[0].ipv4'); m6=$(vm_field m '.nics[0].ipv6')
m_tap=$(vm_field m '.nics[0].ifname')

# Data on both disks, and what the guest says its checksums are.
cl_guest_run m 60 'dd if=/dev/urandom of=/dev/vda bs=1M count=6 2>/dev/null; dd if=/dev/urandom of=/dev/vdb bs=1M count=6 seek=20 2>/dev/null; sync' >/dev/null ||
	fail "m could not write its disks"
sums() { cl_guest_run m 90 'echo 3 > /proc/sys/vm/drop_caches; head -c 6291456 /dev/vda | sha256sum; dd if=/dev/vdb bs=1M skip=20 count=6 2>/dev/null | sha256sum' | grep -Eo '^[0-9a-f]{64}' | tr '\n' ' '; }
SUMS=$(sums)
[ "$(wc -w <<<"$SUMS")" = 2 ] || fail "no checksums from m: $SUMS"
cl_guest_run m 30 'echo MARK-BEFORE-MIGRATION-$((40+2))' >/dev/null

# Where the VM runs, as the hosts' processes say: one "hN" per QEMU.
qemu_hosts() {
	local h
	for h in h1 h2 h3; do
		pgrep -f "qemu-system-x86_64.*$(cl_state "$h")/vms/$1/" >/dev/null && printf '%s ' "$h"
	done
	true
}
# The VM runs on exactly one host, the store's, with its data intact and
# nothing of it on the other hosts.
check_one() {
	local why=$1 host where h
	host=$(vm_host m)
	wait_state m running 60
	where=$(qemu_hosts "$m_id")
	[ "$where" = "$host " ] || fail "$why: the store says m is on $host, QEMU runs on: $where"
	for h in h1 h2 h3; do
		[ "$h" = "$host" ] && continue
		[ -e "$(cl_state "$h")/vms/$m_id" ] && fail "$why: $h keeps m's directory"
		cl_nsexec "$h" ip link show "$m_tap" >/dev/null 2>&1 && fail "$why: $h keeps m's tap"
	done
	[ "$(sums)" = "$SUMS" ] || fail "$why: m's disks changed: $(sums) (was $SUMS)"
	cl_guest_run p 30 "ping -6 -c 2 -W 3 $m6" >/dev/null || fail "$why: p cannot ping m on $host"
}
# Wait until m's last migration is over (either way); print its state.
mig_wait() {
	local i m
	for i in $(seq 1 240); do
		m=$(api_on "$CL_ASK" GET "/v1/vms/m/migration")
		if [ "$(jq -r .finished <<<"$m")" = true ]; then
			jq -r .state <<<"$m"
			return 0
		fi
		sleep 0.5
	done
	fail "m's migration did not end: $m"
}
mig_state() { api_on "$CL_ASK" GET "/v1/vms/m/migration" | jq -r .state; }
wait_mig_state() {
	local i s
	for i in $(seq 1 240); do
		s=$(mig_state)
		[ "$s" = "$1" ] && return 0
		case $s in done|failed) fail "migration ended ($s) before reaching $1";; esac
		sleep 0.1
	done
	fail "migration never reached $1 (last: $s)"
}

# ---- refusals: clean 4xx, nothing requested -----------------------------------
refused() { # STATUS CODE BODY
	local out
	out=$(curl -s -w '\n%{http_code}' -X POST --unix-socket "$(cl_state h1)/api.sock" \
		-H 'Content-Type: application/json' -d "$3" http://hc/v1/vms/m/migrate)
	[ "$(tail -n1 <<<"$out")" = "$1" ] && [ "$(head -n1 <<<"$out" | jq -r .error.code)" = "$2" ] ||
		fail "migrate with $3: wanted $1 $2, got $(tr '\n' ' ' <<<"$out")"
}
refused 404 not_found '{"host": "nowhere"}'
refused 409 conflict '{"host": "h1"}'
refused 400 bad_request '{"host": "h2", "speed": 1}'
refused 400 bad_request '{"host": "../h2"}'
hc host drain h2 >/dev/null
refused 409 conflict '{"host": "h2"}'
hc host drain h2 --undo >/dev/null
if api_on h1 GET /v1/vms/m/migration | jq -e .state >/dev/null; then
	fail "a refused request left a migration behind"
fi
ok "refused cleanly: an unknown host, its own host, unknown fields, a bad name, a draining host"

# ---- a NIC hot-plugged before the move ------------------------------------------
# It takes the PCI slot the store gave it (after the cold NIC's), as the
# destination's QEMU, built from the store, will: without explicit slots
# QEMU gave it the first free one (after virtio-rng and the balloon) and
# the destination, all NICs on its command line, a different layout —
# the RAM stream failed.
hc net create side --ipv6 fd00:e2e:d2::/64 >/dev/null
hc vm nic add m side >/dev/null || fail "hc vm nic add m side"
m_mac2=$(vm_field m '.nics[1].mac')
# Each of the guest's NICs: its MAC and its PCI address (the parent of
# its virtio device).
guest_nics() {
	cl_guest_run m 30 'for n in /sys/class/net/eth*; do echo "$(cat $n/address) $(basename "$(readlink -f $n/device/..)")"; done' | tr -d '\r'
}
for i in $(seq 1 60); do guest_nics | grep -q "^$m_mac2 " && break; sleep 1; done
nics=$(guest_nics)
grep -q "^$m_mac 0000:00:10.0\$" <<<"$nics" && grep -q "^$m_mac2 0000:00:11.0\$" <<<"$nics" ||
	fail "m's NICs are not in their slots (0x10, 0x11) after the hot-plug: $nics"
ok "a NIC hot-plugged into m: the guest sees $m_mac2 in slot 0x11, next to $m_mac in 0x10"

# ---- (a) h1 → h2 while p pings it ------------------------------------------------
cl_guest_run p 10 "(ping -6 -i 0.2 $m6 > /tmp/ping.log 2>&1 &)" >/dev/null
sleep 2
# m's traffic counters (issue 13 §2: they survive a VM moving host).
traffic() { hc --json vm stats m | jq -r '[.nics[].total | .bytes_in + .bytes_out] | add'; }
for i in $(seq 1 20); do t_before=$(traffic); [ "${t_before:-0}" -gt 0 ] && break; sleep 0.5; done
[ "${t_before:-0}" -gt 0 ] || fail "m's traffic was never counted on h1: $(hc --json vm stats m)"
out=$(hc vm migrate m --host h2) || fail "hc vm migrate m --host h2 failed: $out"
grep -q "migrated from h1 to h2" <<<"$out" || fail "hc vm migrate says: $out"
grep -q "transferring" <<<"$out" || fail "hc vm migrate showed no progress: $out"
t_after=$(traffic)
[ "$t_after" -ge "$t_before" ] || fail "m's traffic went back from $t_before to $t_after bytes after the move"
[ "$(vm_host m)" = h2 ] || fail "the store says m is on $(vm_host m), not h2"
[ "$(vm_field m '.nics[0].mac')" = "$m_mac" ] && [ "$(vm_field m '.nics[0].ipv4')" = "$m4" ] &&
	[ "$(vm_field m '.nics[0].ipv6')" = "$m6" ] || fail "m's MAC or addresses changed"
sleep 3
pinged=$(cl_guest_run p 10 'killall -INT ping; sleep 1; tail -n 3 /tmp/ping.log')
echo "  pings during the migration: $(grep -Eo '[0-9]+ packets transmitted, [0-9]+ packets received' <<<"$pinged")"
[ "$(grep -Eo '[0-9]+ packets received' <<<"$pinged" | grep -Eo '^[0-9]+')" -gt 0 ] ||
	fail "p's pings got no answer at all: $pinged"
check_one "after h1 → h2"
guest_mac=$(cl_guest_run m 30 'cat /sys/class/net/eth0/address' | tr -d '\r' | head -1)
[ "$guest_mac" = "$m_mac" ] || fail "the guest's MAC is $guest_mac, not $m_mac"
[ "$(guest_nics)" = "$nics" ] || fail "m's NICs after the move: $(guest_nics) (were $nics)"
addrs=$(cl_guest_run m 30 'ip -o addr show dev eth0')
grep -q "inet $m4/24" <<<"$addrs" && grep -q "inet6 $m6/64" <<<"$addrs" ||
	fail "m lost its addresses: $addrs"
hc_on h2 vm log m | grep -q "MARK-BEFORE-MIGRATION-42" ||
	fail "m's serial log on h2 does not go on from h1's"
[ -z "$(qemu_hosts "$m_id" | grep h1)" ] || fail "h1 still runs m"
# The overlay follows: h3's FDB sends m's MAC to h2.
for i in $(seq 1 20); do
	cl_fdb h3 "$net" | grep -q "^$m_mac ${CL_ADDR[h2]}\$" && break
	sleep 0.5
done
cl_fdb h3 "$net" | grep -q "^$m_mac ${CL_ADDR[h2]}\$" || fail "h3's FDB does not send m to h2: $(cl_fdb h3 "$net")"
# h2's dnsmasq holds its reservation (every host of the network has them
# all: the guest's DHCP renewals go to its new host).
grep -q "$m_mac" "$(cl_state h2)/net/$net/dhcp-hosts" || fail "h2's dnsmasq has no reservation for m"
# The metadata service of h2 knows it.
iid=$(cl_guest_run m 30 'wget -qO- http://169.254.169.254/latest/meta-data/instance-id; echo' | tr -d '\r' | head -1)
[ "$iid" = "i-$m_id" ] || fail "h2's metadata service answers m with '$iid'"
# h1's firewall lets h1's address no more; h2's none: the migration is over.
for h in h1 h2; do
	cl_nsexec "$h" nft list table inet hackcloud | grep -A3 'set mig6' | grep -q elements &&
		fail "$h's firewall still opens migration ports: $(cl_nsexec "$h" nft list table inet hackcloud | grep -A4 'set mig6')"
done
mig=$(api_on "$CL_ASK" GET /v1/vms/m/migration)
jq -e '.state == "done" and .downtime_ms >= 0 and .total_ms > 0' <<<"$mig" >/dev/null ||
	fail "the migration's record: $mig"
# The counters went on: nothing of h1's lost, h2 counts on top (the pings
# and the metadata request above went through h2's tap).
for i in $(seq 1 40); do t_later=$(traffic); [ "$t_later" -gt "$t_after" ] && break; sleep 0.5; done
[ "$t_later" -gt "$t_after" ] || fail "h2 does not count m's traffic: $t_after bytes, still $t_later"
ok "m moved h1 → h2 while running: same data, MACs (both NICs, the hot-plugged one too), addresses, log; FDB, metadata and traffic counters ($t_before → $t_after → $t_later bytes) follow; h1 clean ($(jq -r '"\(.total_ms) ms, downtime \(.downtime_ms) ms"' <<<"$mig"))"

# ---- (b) the ports are fenced ------------------------------------------------------
cl_nsexec h2 python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 7463)); s.listen(4); time.sleep(8)' &
lpid=$!
sleep 1
for h in h1 h3; do
	if cl_nsexec "$h" timeout 3 bash -c "exec 3<>/dev/tcp/${CL_ADDR[h2]}/7463" 2>/dev/null; then
		fail "$h reached h2's migration port 7463 while no migration runs"
	fi
done
cl_nsexec h2 ss -tln | grep -q ':7463 ' || fail "the listener on h2 did not work"
kill "$lpid" 2>/dev/null || true
wait "$lpid" 2>/dev/null || true
ok "no host reaches a migration port of h2 while no migration to it runs"

# ---- (c) failures ------------------------------------------------------------------
other() { if [ "$1" = h1 ]; then echo h2; else echo h1; fi; }   # p lives on h3
hcd_kill() { kill -9 "${CL_PID[$1]}"; wait "${CL_PID[$1]}" 2>/dev/null || true; CL_PID[$1]=; }
# Both hosts' parts over: the destination dropped its copy, the source
# resumed its guest (what the next step of the test may rely on).
wait_finished() {
	local i
	for i in $(seq 1 120); do
		[ "$(api_on "$CL_ASK" GET /v1/vms/m/migration | jq -r "(.source_done and .destination_done)")" = true ] && return 0
		sleep 0.5
	done
	fail "the hosts never finished their parts after the failed migration: $(api_on "$CL_ASK" GET /v1/vms/m/migration)"
}

# An hcd dies mid-transfer and comes back: the destination's, then the
# source's.
hcd_dies() {
	local role=$1 src dst victim st
	src=$(vm_host m); dst=$(other "$src")
	victim=$([ "$role" = destination ] && echo "$dst" || echo "$src")
	hc vm migrate m --host "$dst" --no-wait >/dev/null || fail "migrate m to $dst"
	wait_mig_state transferring
	hcd_kill "$victim"
	sleep 2
	cl_hcd_start "$victim"
	st=$(mig_wait)
	if [ "$st" = failed ]; then wait_finished; fi
	check_one "the $role's hcd killed mid-transfer"
	ok "the $role's hcd killed mid-transfer ($src → $dst): $st, m runs on $(vm_host m) alone, data intact"
}
hcd_dies destination
hcd_dies source

# The destination's hcd is away past the source's patience: its QEMU took
# the whole stream, the source then waits migrate_wait_timeout for the
# switch-over, wins "transferred → failed" and resumes its own paused
# guest; the destination's hcd, back, finds the row failed and drops its
# complete copy — never resuming it.
src=$(vm_host m); dst=$(other "$src")
hc vm migrate m --host "$dst" --no-wait >/dev/null || fail "migrate m to $dst"
wait_mig_state transferring
hcd_kill "$dst"
st=$(mig_wait)
[ "$st" = failed ] || fail "with the destination's hcd away the migration ended $st"
api_on "$CL_ASK" GET /v1/vms/m/migration | jq -r .error | grep -q "did not take over" ||
	fail "the failure does not say why: $(api_on "$CL_ASK" GET /v1/vms/m/migration)"
[ "$(vm_host m)" = "$src" ] || fail "m is on $(vm_host m), not $src"
cl_hcd_start "$dst"
wait_finished
check_one "the destination's hcd away past the wait"
ok "the destination's hcd away past the wait ($src → $dst): the source took m back, $dst dropped its copy"

# The network between them is cut mid-transfer: given up after the stall
# timeout, the VM goes on at the source.
src=$(vm_host m); dst=$(other "$src")
hc vm migrate m --host "$dst" --no-wait >/dev/null || fail "migrate m to $dst"
wait_mig_state transferring
sleep 3    # into the RAM phase (the disks' mirrors are quick)
ip -n "$T_NS" link set "ul-$dst" down
st=$(mig_wait)
[ "$st" = failed ] || fail "a cut network did not fail the migration: $st"
why=$(api_on "$CL_ASK" GET /v1/vms/m/migration | jq -r .error)
grep -q "no progress" <<<"$why" || fail "the failure does not say why: $why"
ip -n "$T_NS" link set "ul-$dst" up
wait_finished
[ "$(vm_host m)" = "$src" ] || fail "after a cut network m is on $(vm_host m), not $src"
check_one "the network cut mid-transfer"
ok "the network cut mid-transfer ($src → $dst): failed after the stall timeout, m runs on $src alone"

# The destination host dies mid-transfer (hcd, QEMUs, link); it comes
# back later and drops its copy.
src=$(vm_host m); dst=$(other "$src")
hc vm migrate m --host "$dst" --no-wait >/dev/null || fail "migrate m to $dst"
wait_mig_state transferring
cl_kill "$dst"
st=$(mig_wait)
[ "$st" = failed ] || fail "the destination's death did not fail the migration: $st"
[ "$(vm_host m)" = "$src" ] || fail "after the destination died m is on $(vm_host m), not $src"
[ "$(qemu_hosts "$m_id")" = "$src " ] || fail "m runs on $(qemu_hosts "$m_id") after $dst died"
ip -n "$(cl_ns "$dst")" link set ul0 up
if [ "$CL_FAMILY" = 6 ]; then   # a link that went down lost its IPv6 addresses
	ip -n "$(cl_ns "$dst")" addr replace "${CL_ADDR[$dst]}/64" dev ul0 nodad
fi
cl_hcd_start "$dst"
wait_finished
check_one "the destination host died mid-transfer"
ok "the destination host died mid-transfer ($src → $dst): failed, m runs on $src alone; $dst cleaned up on its return"

# A guest writing its memory faster than the link carries it: QEMU's
# auto-converge throttles it, and the migration is given up at the time
# limit (the source's hcd restarted with 2 MiB/s and 15 s for this).
src=$(vm_host m); dst=$(other "$src")
hcd_kill "$src"
cl_hcd_start "$src" --migrate_max_bandwidth=2 --migrate_timeout=15
cl_guest_run m 60 'dd if=/dev/urandom of=/tmp/a bs=1M count=16 2>/dev/null; (while :; do cp /tmp/a /tmp/b; done) & echo $! > /tmp/loop.pid' >/dev/null
hc vm migrate m --host "$dst" --no-wait >/dev/null || fail "migrate m to $dst"
st=$(mig_wait)
[ "$st" = failed ] || fail "a guest dirtying memory over a slow link migrated anyway: $st"
api_on "$CL_ASK" GET /v1/vms/m/migration | jq -r .error | grep -q "time limit" ||
	fail "the failure does not say why: $(api_on "$CL_ASK" GET /v1/vms/m/migration)"
wait_finished
cl_guest_run m 30 'kill $(cat /tmp/loop.pid); rm -f /tmp/a /tmp/b' >/dev/null
hcd_kill "$src"
cl_hcd_start "$src"
check_one "a guest dirtying memory faster than the link"
ok "a guest dirtying memory faster than the link: given up at the time limit, m runs on $src alone"

# ---- (d) drain --migrate -------------------------------------------------------------
src=$(vm_host m)
hc vm create q --image tiny --net span --host "$src" --memory 96 >/dev/null
wait_state q running 120
out=$(hc host drain "$src" --migrate --parallel 2) || fail "hc host drain $src --migrate: $out"
grep -q "drained" <<<"$out" || fail "drain --migrate says: $out"
for vm in m q; do
	h=$(vm_host "$vm")
	[ "$h" != "$src" ] || fail "$vm is still on $src after the drain"
	[ "$(vm_field "$vm" .state)" = running ] || fail "$vm is $(vm_field "$vm" .state) after the drain"
done
check_one "after drain --migrate of $src"
hc host drain "$src" --undo >/dev/null
ok "hc host drain $src --migrate moved m and q away live ($(vm_host m), $(vm_host q))"
