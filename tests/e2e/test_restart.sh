#!/usr/bin/env bash
# Crash safety: kill -9 of hcd with a VM running, then a restart.  The VM
# keeps running (same QEMU process), is shown running, and can be stopped
# and deleted cleanly.  Strays (a tap, a VM directory and a QEMU that no
# row wants) are removed by the restarted hcd.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create lan --ipv6 fd00:e2e:2::/64 >/dev/null
hc vm create survivor --image tiny --net lan >/dev/null
wait_state survivor running 60
wait_log survivor HACKCLOUD-BOOT-OK 120
pid_before=$(our_qemu_pids)
tap=$(vm_field survivor '.nics[0].ifname')
ok "VM running as pid $pid_before"

# A VM that comes and goes, so that its ID was issued by this store.
hc vm create gone --image tiny --no-start >/dev/null
gone_id=$(vm_field gone .id)
hc vm delete gone >/dev/null
wait_purged "$gone_id" 30

hcd_kill9
kill -0 "$pid_before" || fail "QEMU died with hcd"
ok "QEMU survived kill -9 of hcd"

# Leave strays while hcd is down: a tap named like ours, a VM dir whose ID
# the store issued but has no row for, and one with an ID it never issued
# (as if hcd were pointed at the wrong database: that one must be left).
nsexec ip tuntap add dev v020000fffffe mode tap
mkdir -p "$T_STATE/vms/$gone_id" "$T_STATE/vms/00000000ff"

hcd_start
[ "$(vm_field survivor .state)" = running ] || fail "VM not shown running after restart"
[ "$(our_qemu_pids)" = "$pid_before" ] || fail "QEMU was restarted instead of adopted"
tap_exists "$tap" || fail "the VM's tap vanished"
tap_exists v020000fffffe && fail "stray tap survived the restart"
[ -e "$T_STATE/vms/$gone_id" ] && fail "stray VM directory survived the restart"
[ -e "$T_STATE/vms/00000000ff" ] || fail "a VM directory the store never knew was removed"
grep -q "00000000ff is unknown to this store" "$T_DIR/hcd.log" || fail "the unknown VM directory was not reported"
rm -rf "$T_STATE/vms/00000000ff"
ok "adopted the running VM; strays removed; a VM unknown to the store left alone"

hc vm stop survivor >/dev/null
wait_state survivor stopped 60
[ -z "$(our_qemu_pids)" ] || fail "QEMU still running after stop"
sid=$(vm_field survivor .id)
hc vm delete survivor >/dev/null
wait_gone survivor 60
wait_purged "$sid" 60
tap_exists "$tap" && fail "tap left after delete"
ok "adopted VM stopped and deleted cleanly"

# kill -9 in the middle of a stop: the restarted hcd finishes the job.
hc vm create second --image tiny --net lan >/dev/null
wait_state second running 60
wait_log second HACKCLOUD-BOOT-OK 120
id2=$(vm_field second .id)
hc vm delete second >/dev/null
hcd_kill9
hcd_start
wait_gone second 60
wait_purged "$id2" 90
[ -z "$(our_qemu_pids)" ] || fail "QEMU of a deleted VM survived the restart"
ok "a delete interrupted by kill -9 completes after restart"
