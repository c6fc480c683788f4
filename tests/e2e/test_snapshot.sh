#!/usr/bin/env bash
# Disk snapshots and images from VMs (issue 14 §2), on real guests that
# write data and check it afterwards by checksums computed in the guest:
#   - a live snapshot (all disks cut in one QMP transaction) and snapshots
#     of a stopped VM, of the root disk and a data disk together;
#   - restore brings every disk back (older data back, newer data gone);
#     a middle snapshot deleted (its layer merged into the one above), the
#     others still restore, the older data kept;
#   - restoring an older snapshot discards the newer ones, only when asked;
#   - every launch names each layer in QEMU's argv;
#   - an image made from the VM boots as a new VM and shows the data;
#   - snapshot bytes count in the disk quota, a snapshot over it is refused;
#   - bad input: unknown VM or snapshot, bad names, restore or delete while
#     running, duplicate names, unknown members;
#   - kill -9 of hcd in an operation: the next start finishes it.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create lan --ipv6 fd00:e2e:14::/64 >/dev/null

# The guest writes 1 MiB of random bytes at MiB N of a disk and prints
# their SHA-256 as it reads them back; `sync` pushes them to QEMU.
fill() { # fill VM DEV N → sha256
	guest_run "$1" 90 "dd if=/dev/urandom of=/dev/$2 bs=1048576 seek=$3 count=1 2>/dev/null; sync; dd if=/dev/$2 bs=1048576 skip=$3 count=1 2>/dev/null | sha256sum" |
		grep -Eo '^[0-9a-f]{64}' | tail -1
}
sum_at() { # sum_at VM DEV N → sha256 of MiB N as the guest reads it
	guest_run "$1" 90 "dd if=/dev/$2 bs=1048576 skip=$3 count=1 2>/dev/null | sha256sum" |
		grep -Eo '^[0-9a-f]{64}' | tail -1
}
boots() { hc vm log "$1" --tail 16777216 | grep -c HACKCLOUD-BOOT-OK || true; }
boot() { # boot VM: start it and wait for this boot's marker (the log keeps the earlier ones)
	local n i
	n=$(boots "$1")
	hc vm start "$1" >/dev/null
	wait_state "$1" running 120
	for i in $(seq 1 360); do
		[ "$(boots "$1")" -gt "$n" ] && return 0
		sleep 0.5
	done
	fail "$1 did not boot again"
}
halt() { hc vm stop "$1" >/dev/null; wait_state "$1" stopped 120; }
snap_field() { hc --json vm snapshot list "$1" | jq -r "$2"; }
# expect STATUS CODE METHOD PATH [BODY]
expect() {
	local st=$1 code=$2
	shift 2
	api "$@" >"$T_DIR/resp"
	[ "$API_STATUS" = "$st" ] || fail "$*: $API_STATUS (want $st) $(cat "$T_DIR/resp")"
	jq -e --arg c "$code" '.error.code == $c' "$T_DIR/resp" >/dev/null ||
		fail "$*: $(cat "$T_DIR/resp") (want $code)"
}
ZERO=$(head -c 1048576 /dev/zero | sha256sum | cut -d' ' -f1)

# vda: a blank 64 MiB root disk; vdb: a 32 MiB data disk.
hc vm create s1 --image tiny --net lan --memory 128 --disk-size 64M --disk 32M >/dev/null
id=$(vm_field s1 .id)
wait_state s1 running 120
wait_log s1 HACKCLOUD-BOOT-OK 180
A1=$(fill s1 vda 1)
B1=$(fill s1 vdb 1)
[ ${#A1} = 64 ] && [ ${#B1} = 64 ] || fail "the guest did not report its writes ($A1, $B1)"
[ "$A1" != "$ZERO" ] || fail "the guest wrote zeros"
ok "guest wrote vda and vdb"

# ---- live snapshot ------------------------------------------------------------
hc vm snapshot create s1 live1 >/dev/null || fail "live snapshot"
[ "$(snap_field s1 '.[0].name + " " + .[0].state + " " + (.[0].live|tostring)')" = "live1 ready true" ] ||
	fail "live snapshot row: $(hc --json vm snapshot list s1)"
[ "$(snap_field s1 '.[0].bytes')" -gt 0 ] || fail "live snapshot has no bytes"
for d in disk data0; do
	[ -f "$T_STATE/vms/$id/snap-$(snap_field s1 '.[0].id')-$d.qcow2" ] || fail "no layer of $d"
done
[ "$(vm_field s1 .state)" = running ] || fail "the VM stopped for a live snapshot"
A2=$(fill s1 vda 1)
C2=$(fill s1 vda 2)
B2=$(fill s1 vdb 1)
[ "$A2" != "$A1" ] && [ "$B2" != "$B1" ] || fail "new writes read as old ones"
ok "live snapshot of both disks; the guest went on writing"

# ---- stopped snapshot, refusals while running -------------------------------
halt s1
hc vm snapshot create s1 cold2 >/dev/null || fail "stopped snapshot"
boot s1
expect 409 vm_not_stopped POST "/v1/vms/s1/snapshots/cold2/restore" '{}'
expect 409 vm_not_stopped DELETE "/v1/vms/s1/snapshots/cold2"
if hc vm snapshot restore s1 cold2 2>"$T_DIR/err"; then fail "restore of a running VM passed"; fi
grep -q "stop it first" "$T_DIR/err" || fail "restore refusal: $(cat "$T_DIR/err")"
# The relaunch opened every layer as a node of its own, never from a header.
pid=$(our_qemu_pids | head -1)
for k in 0 1; do
	tr '\0' '\n' <"/proc/$pid/cmdline" | grep -q "\"node-name\":\"disk-l$k\"" || fail "no node disk-l$k"
	tr '\0' '\n' <"/proc/$pid/cmdline" | grep -q "\"node-name\":\"data0-l$k\"" || fail "no node data0-l$k"
done
tr '\0' '\n' <"/proc/$pid/cmdline" | grep -q '"node-name":"disk","file":"disk-file","read-only":false,"backing":"disk-l1"' ||
	fail "the root disk is not backed by its top layer by name"
ok "restore and delete refused while running (409); the launch names every layer"
A3=$(fill s1 vda 1)
halt s1
hc vm snapshot create s1 cold3 >/dev/null || fail "third snapshot"
boot s1
A4=$(fill s1 vda 1)
halt s1

# ---- delete the middle one, restore the others --------------------------------
hc vm snapshot delete s1 cold2 >/dev/null || fail "delete of the middle snapshot"
[ "$(snap_field s1 '[.[].name] | join(",")')" = "live1,cold3" ] || fail "after delete: $(hc --json vm snapshot list s1)"
[ "$(ls "$T_STATE/vms/$id" | grep -c '^snap-')" = 4 ] || fail "layers: $(ls "$T_STATE/vms/$id")"
hc vm snapshot restore s1 cold3 >/dev/null || fail "restore cold3"
boot s1
[ "$(sum_at s1 vda 1)" = "$A3" ] || fail "vda@1 after restore of cold3 is not what was written before it"
[ "$(sum_at s1 vda 2)" = "$C2" ] || fail "vda@2 lost with the merged middle snapshot"
[ "$(sum_at s1 vdb 1)" = "$B2" ] || fail "vdb@1 after restore of cold3"
ok "middle snapshot merged away: the newer one restores with the older data ($A3 ≠ $A4 gone)"
halt s1

# ---- restore the oldest: newer ones go only when asked --------------------------
expect 409 newer_snapshots POST "/v1/vms/s1/snapshots/live1/restore" '{}'
hc vm snapshot restore s1 live1 --discard-newer >/dev/null || fail "restore live1"
[ "$(snap_field s1 '[.[].name] | join(",")')" = "live1" ] || fail "newer snapshots kept: $(hc --json vm snapshot list s1)"
[ "$(ls "$T_STATE/vms/$id" | grep -c '^snap-')" = 2 ] || fail "layers: $(ls "$T_STATE/vms/$id")"
boot s1
[ "$(sum_at s1 vda 1)" = "$A1" ] || fail "vda@1 is not back to the live snapshot"
[ "$(sum_at s1 vdb 1)" = "$B1" ] || fail "vdb@1 is not back to the live snapshot"
[ "$(sum_at s1 vda 2)" = "$ZERO" ] || fail "vda@2 written after the live snapshot survived its restore"
ok "restore of the live snapshot: both disks as they were at that instant, newer data gone"

# ---- an image from the VM -----------------------------------------------------------
# The guest writes a boot sector that prints "HCIMG-" and the first 16 hex
# digits of the checksum of MiB 1 of its disk (test_lifecycle's printer).
code='\061\300\216\330\276\030\174\272\370\003\254\204\300\164\003\356\353\370\364\353\375\220\220\220'
bs_cmd='s=$(dd if=/dev/vda bs=1048576 skip=1 count=1 2>/dev/null | sha256sum | cut -c1-16); { printf '"'$code'"'; printf "HCIMG-$s\n\000"; } | dd of=/dev/vda bs=512 count=1 conv=notrunc 2>/dev/null; printf '"'\\125\\252'"' | dd of=/dev/vda bs=1 seek=510 count=2 conv=notrunc 2>/dev/null; sync'
guest_run s1 90 "$bs_cmd" >/dev/null
halt s1
hc image create fromvm --from-vm s1 >/dev/null || fail "image create --from-vm"
[ "$(hc --json image show fromvm | jq -r '.state + " " + .boot + " " + .format')" = "ready disk qcow2" ] ||
	fail "image: $(hc --json image show fromvm)"
isha=$(hc --json image show fromvm | jq -r .sha256)
[ "$(sha256sum "$T_STATE/images/$isha/disk" | cut -d' ' -f1)" = "$isha" ] || fail "image not content-addressed"
qemu-img info -f qcow2 "$T_STATE/images/$isha/disk" | grep -q "backing file" && fail "the image has a backing file"
qemu-img convert -f qcow2 -O raw "$T_STATE/images/$isha/disk" "$T_DIR/img.raw"
[ "$(dd if="$T_DIR/img.raw" bs=1048576 skip=1 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$A1" ] ||
	fail "MiB 1 of the image is not what the guest wrote"
hc vm create fromvm1 --image fromvm --memory 64 >/dev/null
wait_log fromvm1 "HCIMG-${A1:0:16}" 120
ok "image from the stopped VM: flattened, content-addressed; booted as a new VM, it prints the guest's data"
hc vm delete fromvm1 >/dev/null

# ---- bad input --------------------------------------------------------------------
expect 404 not_found GET /v1/vms/nosuch/snapshots
expect 404 not_found POST /v1/vms/nosuch/snapshots '{"name": "a"}'
expect 404 not_found POST /v1/vms/s1/snapshots/nosuch/restore '{}'
expect 404 not_found DELETE /v1/vms/s1/snapshots/nosuch
expect 400 bad_name POST /v1/vms/s1/snapshots '{"name": "Bad_Name"}'
expect 400 bad_name POST /v1/vms/s1/snapshots '{"name": "0000000a"}'
expect 400 bad_request POST /v1/vms/s1/snapshots '{"name": "a", "extra": 1}'
expect 400 bad_request POST /v1/vms/s1/snapshots '{}'
expect 400 bad_request POST /v1/vms/s1/snapshots/live1/restore '{"discard_newer": "yes"}'
expect 409 exists POST /v1/vms/s1/snapshots '{"name": "live1"}'
expect 404 not_found POST /v1/images '{"name": "y", "from_vm": "nosuch"}'
expect 400 bad_request POST /v1/images '{"name": "y", "from_vm": "s1", "url": "http://x/"}'
boot s1
expect 409 vm_not_stopped POST /v1/images '{"name": "y", "from_vm": "s1"}'
halt s1
[ "$(snap_field s1 'length')" = 1 ] || fail "bad input changed the snapshots"
ok "bad input: 404 for unknown VMs and snapshots, 400 for bad names and members, 409 for duplicates"

# ---- quota ------------------------------------------------------------------------
printf 'bob-password\n' | hc user create bob --auth file --password-stdin >/dev/null || fail "user bob"
api POST /v1/login '{"user": "bob", "password": "bob-password"}' >"$T_DIR/login"
TB=$(jq -r .token "$T_DIR/login")
hc user set bob --quota-disk 8M >/dev/null || fail "quota"
HC_TOKEN=$TB import_tiny btiny
HC_TOKEN=$TB "$HC_BIN" vm create q1 --image btiny --disk-size 8M --no-start >/dev/null || fail "bob's VM"
HC_TOKEN=$TB "$HC_BIN" vm snapshot create q1 first >/dev/null || fail "bob's first snapshot"
used=$(hc --json user show bob | jq -r .quota.disk_bytes.used)
sb=$(HC_TOKEN=$TB "$HC_BIN" --json vm snapshot list q1 | jq -r '.[0].bytes')
[ "$sb" -gt 0 ] && [ "$used" = $((8388608 + sb)) ] || fail "disk_bytes used $used, snapshot bytes $sb"
API_TOKEN=$TB expect 403 quota_exceeded POST /v1/vms/q1/snapshots '{"name": "second"}'
jq -r .error.message "$T_DIR/resp" | grep -q "quota 'disk_bytes' of user bob" || fail "refusal: $(cat "$T_DIR/resp")"
API_TOKEN=$TB expect 404 not_found GET /v1/vms/s1/snapshots
ok "snapshot bytes count in disk_bytes ($used used); over the quota: 403; others' VMs: 404"

# ---- an operation a crash interrupted is finished at start ------------------------------
boot s1
D=$(fill s1 vda 3)
halt s1
hc vm snapshot create s1 r2 >/dev/null || fail "snapshot r2"
hcd_kill9
# As if hcd died right after marking the delete, before qemu-img ran.
sqlite3 "$T_STATE/hackcloud.db" "UPDATE snapshots SET state = 'deleting' WHERE name = 'r2'"
hcd_start
[ "$(snap_field s1 '[.[].name] | join(",")')" = "live1" ] || fail "after restart: $(hc --json vm snapshot list s1)"
[ "$(ls "$T_STATE/vms/$id" | grep -c '^snap-')" = 2 ] || fail "layers: $(ls "$T_STATE/vms/$id")"
grep -q "snapshot 'r2': finished what a restart interrupted" "$T_DIR/hcd.log" || fail "no recovery logged"
boot s1
[ "$(sum_at s1 vda 3)" = "$D" ] || fail "data written before the interrupted delete is lost"
[ "$(sum_at s1 vda 1)" = "$A1" ] || fail "vda@1 changed by the recovery"
halt s1
ok "a delete interrupted by kill -9 is finished at the next start; the data is intact"

# ---- the VM goes, its layers and rows with it ----------------------------------------
hc vm delete s1 >/dev/null
wait_purged "$id" 60
ok "deleted VM: its directory and layers are gone"
