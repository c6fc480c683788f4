#!/usr/bin/env bash
# Resize (issue 14 §3) on one host with a real guest:
#  - a running VM's memory goes down and back up by the balloon: the
#    guest's MemTotal moves by exactly the difference; above the memory
#    it booted with is refused (409, a restart is needed);
#  - a running VM gets a vCPU by hotplug (the guest onlines it) up to the
#    maxcpus it started with (vm_max_cpus), and gives it back;
#  - a disk grows online (the guest's /sys/block/vdX/size) and offline (at
#    the next start), and what was written on it before still checks;
#  - a stopped VM's new size is what it boots with next;
#  - refusals are clean 4xx JSON: shrinking a disk, over quota, over the
#    host's room, bad values; the host's load (GET /v1/hosts used_cpus,
#    used_mib) follows every change.
# Needs the tiny guest with virtio_balloon (guest/build-tiny.sh).
. "$(dirname "$0")/lib.sh"

hcd_start --vm-max-cpus=2
import_tiny tiny
host=$(hc --json info | jq -r .host)
load() { hc --json host show "$host" | jq -r "$1"; }
# expect STATUS CODE METHOD PATH [BODY]: the API's answer is that error.
expect() {
	local st=$1 code=$2
	shift 2
	api "$@" >"$T_DIR/resp"
	[ "$API_STATUS" = "$st" ] || fail "$*: $API_STATUS (want $st) $(cat "$T_DIR/resp")"
	jq -e --arg c "$code" '.error.code == $c and (.error.message | length > 0)' "$T_DIR/resp" \
		>/dev/null || fail "$*: $(cat "$T_DIR/resp") (want $code)"
}
# gwait VM TIMEOUT CMD: until CMD succeeds in the guest, asking again
# when a line typed into the console went unanswered (the shell may not
# read it yet right after boot).  guest_run fails by exiting: a subshell.
gwait() {
	local vm=$1 timeout=$2 cmd=$3 end=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$end" ]; do
		(guest_run "$vm" 30 "$cmd") >/dev/null 2>&1 && return 0
		sleep 2
	done
	return 1
}
memtotal() { guest_run r 60 "grep MemTotal /proc/meminfo" | awk '/MemTotal/ { print $2 }'; }

# A blank 64 MiB root disk (vda) and a 64 MiB data disk (vdb).
hc vm create r --image tiny --cpus 1 --memory 256 --disk-size 64M --disk 64M >/dev/null
id=$(vm_field r .id)
wait_state r running 90
wait_log r HACKCLOUD-BOOT-OK 180
gwait r 120 true || fail "the guest's shell does not answer"
mib0=$(load .used_mib)
cpus0=$(load .used_cpus)
[ "$mib0" = 256 ] && [ "$cpus0" = 1 ] || fail "host load $cpus0 vCPUs, $mib0 MiB (want 1, 256)"
tr '\0' ' ' <"/proc/$(our_qemu_pids)/cmdline" | grep -q -- "-smp 1,maxcpus=2 -m 256" ||
	fail "QEMU not started with maxcpus=2"
guest_run r 60 "ls /sys/bus/virtio/drivers" | grep -q virtio_balloon || fail "the guest has no balloon driver"

# Data on both disks, checksummed in the guest.
guest_run r 120 "dd if=/dev/urandom of=/dev/vda bs=1M count=8 2>/dev/null && dd if=/dev/urandom of=/dev/vdb bs=1M count=8 2>/dev/null && sync" \
	>/dev/null || fail "writing the disks"
sum() { guest_run r 120 "head -c 8388608 /dev/$1 | md5sum" | grep -Eo '^[0-9a-f]{32}'; }
sum_a=$(sum vda)
sum_b=$(sum vdb)
[ -n "$sum_a" ] && [ -n "$sum_b" ] || fail "no checksums"
[ "$(guest_run r 60 "cat /sys/block/vdb/size")" = 131072 ] || fail "vdb is not 64 MiB"
ok "running: 1 vCPU of maxcpus 2, 256 MiB, balloon driver; host load 1 vCPU, 256 MiB; 8 MiB written on vda, vdb"

# ---- memory by the balloon ------------------------------------------------------
m0=$(memtotal)
[ -n "$m0" ] || fail "no MemTotal"
hc vm set r --memory 128 >/dev/null || fail "vm set --memory 128"
[ "$(vm_field r .memory_mib)" = 128 ] || fail "memory_mib not 128"
[ "$(load .used_mib)" = $((mib0 - 128)) ] || fail "host used_mib $(load .used_mib) (want $((mib0 - 128)))"
gwait r 90 "[ \$(awk '/MemTotal/ { print \$2 }' /proc/meminfo) -eq $((m0 - 131072)) ]" ||
	fail "guest MemTotal $(memtotal) kB, want $((m0 - 131072)) (ballooned down by 128 MiB)"
ok "ballooned down to 128 MiB: guest MemTotal $m0 -> $((m0 - 131072)) kB; host used_mib -128"
hc vm set r --memory 256 >/dev/null || fail "vm set --memory 256"
gwait r 90 "[ \$(awk '/MemTotal/ { print \$2 }' /proc/meminfo) -eq $m0 ]" ||
	fail "guest MemTotal $(memtotal) kB, want $m0 (back up)"
[ "$(load .used_mib)" = "$mib0" ] || fail "host used_mib not back"
ok "back up to 256 MiB: guest MemTotal $m0 kB again"
expect 409 conflict PATCH "/v1/vms/r" '{"memory_mib": 512}'
jq -r .error.message "$T_DIR/resp" | grep -q "started with 256 MiB" || fail "message: $(cat "$T_DIR/resp")"
jq -r .error.message "$T_DIR/resp" | grep -q "stop it" || fail "message: $(cat "$T_DIR/resp")"
[ "$(vm_field r .memory_mib)" = 256 ] || fail "a refused resize changed the VM"
ok "above the boot memory while running: 409 conflict saying to restart; nothing changed"

# ---- vCPUs by hotplug ------------------------------------------------------------
hc vm set r --cpus 2 >/dev/null || fail "vm set --cpus 2"
[ "$(load .used_cpus)" = $((cpus0 + 1)) ] || fail "host used_cpus $(load .used_cpus)"
gwait r 90 "[ -e /sys/devices/system/cpu/cpu1/online ]" || fail "the guest did not see a second vCPU"
guest_run r 60 "echo 1 >/sys/devices/system/cpu/cpu1/online" >/dev/null || fail "onlining cpu1"
[ "$(guest_run r 60 "cat /sys/devices/system/cpu/online")" = 0-1 ] || fail "cpu1 not online"
ok "vCPU hot-plugged: the guest onlined cpu1 (online 0-1); host used_cpus +1"
expect 409 conflict PATCH "/v1/vms/r" '{"cpus": 3}'
jq -r .error.message "$T_DIR/resp" | grep -q "maxcpus" || fail "message: $(cat "$T_DIR/resp")"
hc vm set r --cpus 1 >/dev/null || fail "vm set --cpus 1"
gwait r 120 "[ \$(cat /sys/devices/system/cpu/online) = 0 ]" || fail "the guest kept cpu1: $(guest_run r 60 'cat /sys/devices/system/cpu/online')"
[ "$(load .used_cpus)" = "$cpus0" ] || fail "host used_cpus not back"
ok "vCPU unplugged (the guest ejected cpu1); above maxcpus: 409 conflict"

# ---- disks: online growth --------------------------------------------------------
hc vm disk grow r data0 128M >/dev/null || fail "vm disk grow data0 128M"
[ "$(vm_field r '.disks[0].size')" = 134217728 ] || fail "disks[0].size not 128 MiB"
gwait r 90 "[ \$(cat /sys/block/vdb/size) = 262144 ]" || fail "the guest's vdb did not grow"
[ "$(sum vdb)" = "$sum_b" ] || fail "vdb's data changed with its growth"
ok "data0 grown online to 128 MiB: guest /sys/block/vdb/size 262144; the data still checks"

# ---- refusals ----------------------------------------------------------------------
expect 409 conflict POST "/v1/vms/r/disks/data0/grow" '{"size": 67108864}'
jq -r .error.message "$T_DIR/resp" | grep -q "only grows" || fail "message: $(cat "$T_DIR/resp")"
expect 404 not_found POST "/v1/vms/r/disks/data5/grow" '{"size": 134217728}'
expect 400 bad_request POST "/v1/vms/r/disks/vdb/grow" '{"size": 134217728}'
expect 400 bad_request POST "/v1/vms/r/disks/data0/grow" '{"size": 134217729}'
expect 400 bad_request POST "/v1/vms/r/disks/data0/grow" '{"size": "1G"}'
expect 400 bad_request POST "/v1/vms/r/disks/data0/grow" '{}'
expect 400 bad_request PATCH "/v1/vms/r" '{"cpus": 0}'
expect 400 bad_request PATCH "/v1/vms/r" '{"cpus": "2"}'
expect 400 bad_request PATCH "/v1/vms/r" '{"memory_mib": 16}'
expect 400 bad_request PATCH "/v1/vms/r" '{"cpu": 2}'
if hc vm disk grow r data0 64M 2>"$T_DIR/err"; then fail "hc vm disk grow shrank a disk"; fi
grep -q "only grows" "$T_DIR/err" || fail "hc: $(cat "$T_DIR/err")"
hc user set root --quota-vcpus 1 --quota-disk 300M >/dev/null || fail "root's own quota"
expect 403 quota_exceeded PATCH "/v1/vms/r" '{"cpus": 2}'
jq -r .error.message "$T_DIR/resp" | grep -q "quota 'vcpus'" || fail "message: $(cat "$T_DIR/resp")"
expect 403 quota_exceeded POST "/v1/vms/r/disks/root/grow" '{"size": 268435456}'
jq -r .error.message "$T_DIR/resp" | grep -q "quota 'disk_bytes'" || fail "message: $(cat "$T_DIR/resp")"
hc user set root --quota-vcpus unlimited --quota-disk unlimited >/dev/null || fail "quota back"
[ "$(vm_field r .cpus)" = 1 ] && [ "$(vm_field r .disk_size)" = 67108864 ] || fail "refusals changed the VM"
[ "$(load .used_cpus)" = "$cpus0" ] && [ "$(load .used_mib)" = "$mib0" ] || fail "refusals changed the host's load"
ok "refused cleanly: shrink (409), no such disk (404), bad names and values (400), over quota (403)"

# ---- stopped: effective at the next start ----------------------------------------
hc vm stop r >/dev/null
wait_state r stopped 90
free=$(( $(load .memory_mib) - $(load .used_mib) ))
expect 409 no_capacity PATCH "/v1/vms/r" "{\"memory_mib\": $((256 + free + 1))}"
jq -r .error.message "$T_DIR/resp" | grep -q "MiB of memory free" || fail "message: $(cat "$T_DIR/resp")"
ok "more memory than the host has free: 409 no_capacity"
hc vm set r --cpus 2 --memory 384 >/dev/null || fail "vm set while stopped"
hc vm disk grow r root 128M >/dev/null || fail "vm disk grow root while stopped"
[ "$(load .used_cpus)" = $((cpus0 + 1)) ] && [ "$(load .used_mib)" = $((mib0 + 128)) ] ||
	fail "host load $(load .used_cpus) vCPUs, $(load .used_mib) MiB after the stopped resize"
[ "$(qemu-img info -U --output=json "$T_STATE/vms/$id/disk.qcow2" | jq '."virtual-size"')" = 67108864 ] ||
	fail "a stopped VM's disk was touched before its start"
hc vm start r >/dev/null
wait_state r running 90
wait_log r HACKCLOUD-BOOT-OK 180
gwait r 120 true || fail "the guest's shell does not answer"
tr '\0' ' ' <"/proc/$(our_qemu_pids)/cmdline" | grep -q -- "-smp 2,maxcpus=2 -m 384" || fail "QEMU not started with the new size"
# The shell may still be starting right after the boot marker: retry.
gwait r 120 "[ \$(cat /sys/devices/system/cpu/online) = 0-1 ]" || fail "guest has not 2 vCPUs"
m1=$(memtotal)
[ "$m1" -ge $((m0 + 131072 - 4096)) ] || fail "guest MemTotal $m1 kB after booting with 384 MiB (256 MiB gave $m0)"
[ "$(guest_run r 60 "cat /sys/block/vda/size")" = 262144 ] || fail "vda did not grow offline"
[ "$(sum vda)" = "$sum_a" ] || fail "vda's data changed with its offline growth"
[ "$(sum vdb)" = "$sum_b" ] || fail "vdb's data changed over the restart"
ok "stopped resize took effect at the start: 2 vCPUs online, MemTotal $m1 kB, vda 128 MiB; data still checks"

# The new boot size is the new ceiling.  hcd killed right after the
# change (applied or not yet): the restarted one adopts the QEMU and
# converges it to the row, and still knows the ceilings.
qpid=$(our_qemu_pids)
hc vm set r --memory 200 >/dev/null || fail "balloon below 384"
hcd_kill9
hcd_start --vm-max-cpus=2
gwait r 90 "[ \$(awk '/MemTotal/ { print \$2 }' /proc/meminfo) -eq $((m1 - 184 * 1024)) ]" ||
	fail "guest MemTotal $(memtotal) kB, want $((m1 - 184 * 1024))"
[ "$(our_qemu_pids)" = "$qpid" ] || fail "QEMU was restarted"
expect 409 conflict PATCH "/v1/vms/r" '{"memory_mib": 385}'
jq -r .error.message "$T_DIR/resp" | grep -q "started with 384 MiB" || fail "message: $(cat "$T_DIR/resp")"
ok "ballooned from the new boot size across a kill -9 of hcd; the ceiling (384 MiB) kept"
# A vCPU it booted with goes too (never the boot processor).
hc vm set r --cpus 1 >/dev/null || fail "vm set --cpus 1 (a boot vCPU)"
gwait r 120 "[ \$(cat /sys/devices/system/cpu/online) = 0 ]" ||
	fail "the guest kept its second boot vCPU: $(guest_run r 60 'cat /sys/devices/system/cpu/online')"
ok "a vCPU it booted with unplugged: online 0"

hc vm delete r >/dev/null
wait_purged "$id"
[ "$(load .used_cpus)" = 0 ] && [ "$(load .used_mib)" = 0 ] || fail "host load not back to 0"
ok "deleted: host load back to 0"
