#!/usr/bin/env bash
# QEMU as an attacker's tool (issue 11, items 1 and 9).
#
# 1. A poisoned image: a qcow2 whose header names /etc/shadow as its
#    backing file, put in place by hand after the upload's checks (as the
#    finalize race could).  A VM boots from it and neither qemu-img nor
#    QEMU ever opens /etc/shadow: QEMU's block nodes are all explicit, the
#    image node has "backing": null, the overlay names the image node.
#    qemu-img runs as the VM's uid, with limits, and never opens the base.
# 2. Confinement: each VM's QEMU runs as its own uid/gid from the
#    configured range, under seccomp, detached from hcd; one VM's uid can
#    neither read the other's disk or log nor signal its QEMU; two VMs of
#    a host never share a uid; a range holding an account is refused.
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || fail "setpriv is needed (util-linux)"

# A qemu-img in front of the real one records who runs it, with which
# limits and arguments (it runs as a VM's uid: the log is world-writable).
mkdir -p "$T_DIR/bin"
: >"$T_DIR/qemu-img.log"
chmod 666 "$T_DIR/qemu-img.log"
real_qemu_img=$(command -v qemu-img)
cat >"$T_DIR/bin/qemu-img" <<EOF
#!/bin/sh
echo "uid=\$(id -u) gid=\$(id -g) groups=\$(id -G) as=\$(ulimit -v) cpu=\$(ulimit -t) args=\$*" >>"$T_DIR/qemu-img.log"
exec "$real_qemu_img" "\$@"
EOF
chmod 755 "$T_DIR/bin/qemu-img"
chmod 711 "$T_DIR/bin"

PATH="$T_DIR/bin:$PATH" hcd_start --qemu-uid-base=300000 --qemu-uid-count=1000
import_tiny tiny
hc net create lan --ipv6 fd00:e2e:70::/64 --ipv4 10.90.0.0/24 >/dev/null

# ---- 1. the poisoned image ------------------------------------------------
# A boot sector that prints a marker, as a harmless qcow2: it passes import.
disk=$T_DIR/boot.raw
{
	printf '\x31\xc0\x8e\xd8\xbe\x18\x7c\xba\xf8\x03\xac\x84\xc0\x74\x03\xee\xeb\xf8\xf4\xeb\xfd\x90\x90\x90'
	printf 'HACKCLOUD-POISON-BOOT-OK\n\0'
} >"$disk"
truncate -s 510 "$disk"
printf '\x55\xaa' >>"$disk"
truncate -s 1M "$disk"
qemu-img convert -q -f raw -O qcow2 "$disk" "$T_DIR/boot.qcow2"
hc image import boot --disk "$T_DIR/boot.qcow2" >/dev/null
[ "$(hc --json image show boot | jq -r .format)" = qcow2 ] || fail "the image is not qcow2"
sha=$(hc --json image show boot | jq -r .sha256)
placed=$T_STATE/images/$sha/disk
[ -f "$placed" ] || fail "no image file at $placed"

# The same bytes, but the header now names /etc/shadow (raw) as backing.
cp "$T_DIR/boot.qcow2" "$T_DIR/evil.qcow2"
qemu-img rebase -q -u -f qcow2 -F raw -b /etc/shadow "$T_DIR/evil.qcow2"
qemu-img info "$T_DIR/evil.qcow2" | grep -q "backing file: /etc/shadow" || fail "could not poison the image"
cat "$T_DIR/evil.qcow2" >"$placed"
ok "image $sha poisoned in place: its header names /etc/shadow as backing file"

hc vm create victim --image boot --memory 64 >/dev/null
vid=$(vm_field victim .id)
wait_state victim running 60
wait_log victim HACKCLOUD-POISON-BOOT-OK 60
vpid=$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$vid/" | head -1)
[ -n "$vpid" ] || fail "no QEMU for the victim"
if ls -l "/proc/$vpid/fd" | grep -q /etc/shadow; then fail "QEMU holds /etc/shadow open"; fi
# QEMU's own view of its block graph.
nodes=$(python3 - "$T_STATE/vms/$vid/qmp.sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps({"execute": c}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
f.readline()
cmd("qmp_capabilities")
for n in cmd("query-named-block-nodes")["return"]:
    print(n["node-name"], n["file"], n.get("backing_file", "-"))
EOF
) || fail "QMP query-named-block-nodes failed"
echo "$nodes" | sed 's/^/    /'
grep -q /etc/shadow <<<"$nodes" && fail "a block node of QEMU is /etc/shadow"
grep -q "^img-file $placed " <<<"$nodes" || fail "the image is not its own node: $nodes"
grep -q "^disk-file $T_STATE/vms/$vid/disk.qcow2 " <<<"$nodes" || fail "the overlay is not a node: $nodes"
ok "the VM booted from the poisoned image; QEMU never opened /etc/shadow (fds, QMP block nodes)"

grep "create" "$T_DIR/qemu-img.log" | grep -F "$vid/disk.qcow2" >"$T_DIR/create.log" ||
	fail "qemu-img create of the overlay was not seen: $(cat "$T_DIR/qemu-img.log")"
grep -q "uid=$((300000 + 16#$vid % 1000)) " "$T_DIR/create.log" || fail "qemu-img create not run as the VM: $(cat "$T_DIR/create.log")"
grep -q "groups=$((300000 + 16#$vid % 1000)) as=" "$T_DIR/create.log" ||
	fail "qemu-img create kept other groups: $(cat "$T_DIR/create.log")"
grep -q "as=1048576 cpu=30 " "$T_DIR/create.log" || fail "qemu-img create without limits: $(cat "$T_DIR/create.log")"
grep -q -- "-u -F qcow2 -b $placed " "$T_DIR/create.log" ||
	fail "the overlay's qemu-img create names no base format or opens the base: $(cat "$T_DIR/create.log")"
[ "$(qemu-img info -U --output=json "$T_STATE/vms/$vid/disk.qcow2" | jq -r '."backing-filename-format"')" = qcow2 ] ||
	fail "the overlay does not record its base's format"
ok "qemu-img create ran as the VM's uid with RLIMIT_AS/CPU, -F qcow2 and -u (base never opened)"
[ "$(stat -c '%U %a' "$placed")" = "root 444" ] || fail "image file is $(stat -c '%U %a' "$placed"), not root 444"
ok "the image file stays root's, read-only"
hc vm delete victim >/dev/null
wait_purged "$vid" 60

# ---- 2. one uid per VM ------------------------------------------------------
hc vm create a --image tiny --net lan --disk-size 64M --disk 16M >/dev/null
hc vm create b --image tiny --net lan --disk-size 64M >/dev/null
wait_state a running 60
wait_state b running 60
wait_log a HACKCLOUD-BOOT-OK 120
aid=$(vm_field a .id)
bid=$(vm_field b .id)
apid=$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$aid/" | head -1)
bpid=$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$bid/" | head -1)
[ -n "$apid" ] && [ -n "$bpid" ] || fail "QEMUs of a and b not found"
status_of() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status"; }
auid=$(status_of "$apid" Uid)
buid=$(status_of "$bpid" Uid)
[ "$auid" = $((300000 + 16#$aid % 1000)) ] || fail "a's QEMU runs as uid $auid, not base + id mod count"
[ "$buid" = $((300000 + 16#$bid % 1000)) ] || fail "b's QEMU runs as uid $buid"
[ "$auid" != "$buid" ] || fail "a and b share uid $auid"
[ "$(status_of "$apid" Gid)" = "$auid" ] || fail "a's gid is not its uid"
[ -z "$(awk '$1 == "Groups:" { $1 = ""; print }' "/proc/$apid/status" | tr -d ' ')" ] ||
	fail "a's QEMU has supplementary groups: $(grep Groups "/proc/$apid/status")"
ok "QEMUs run as uid $auid (a) and $buid (b), gid = uid, no other groups"

for p in "$apid" "$bpid"; do
	[ "$(status_of "$p" Seccomp)" = 2 ] || fail "QEMU $p is not under a seccomp filter"
	[ "$(status_of "$p" NoNewPrivs)" = 1 ] || fail "QEMU $p may gain privileges"
	[ "$(awk '{ print $4 }' "/proc/$p/stat")" != "$HCD_PID" ] || fail "QEMU $p is hcd's child"
	cmd=$(tr '\0' ' ' <"/proc/$p/cmdline")
	grep -q -- "-runas\|-daemonize" <<<"$cmd" && fail "QEMU $p runs with -runas/-daemonize"
	grep -q -- "spawn=deny" <<<"$cmd" || fail "QEMU $p's sandbox allows spawning"
done
ok "both under seccomp (Seccomp: 2, spawn denied), no new privileges, not hcd's children"

as_a() { setpriv --reuid="$auid" --regid="$auid" --clear-groups "$@"; }
adisk=$T_STATE/vms/$aid/disk.qcow2
bdisk=$T_STATE/vms/$bid/disk.qcow2
as_a head -c 1 "$adisk" >/dev/null || fail "a's uid cannot read its own disk (the check below would prove nothing)"
as_a head -c 1 "$T_STATE/vms/$aid/data0.qcow2" >/dev/null || fail "a's uid cannot read its own data disk"
if as_a head -c 1 "$bdisk" >/dev/null 2>&1; then fail "a's uid reads b's disk"; fi
if as_a head -c 1 "$T_STATE/vms/$bid/serial.log" >/dev/null 2>&1; then fail "a's uid reads b's serial log"; fi
if as_a sh -c ": >>'$T_STATE/vms/$aid/qemu.pid'" 2>/dev/null; then fail "a's uid may rewrite its own pidfile"; fi
if as_a touch "$T_STATE/vms/$aid/new" 2>/dev/null; then fail "a's uid may create files in its directory"; fi
if as_a kill -0 "$bpid" 2>/dev/null; then fail "a's uid may signal b's QEMU"; fi
ok "a's uid cannot read b's disk or log, signal b's QEMU, or touch hcd's files"
[ "$(stat -c '%u %a' "$adisk")" = "$auid 600" ] || fail "a's disk is $(stat -c '%u %a' "$adisk")"
[ "$(stat -c '%U %g %a' "$T_STATE/vms/$aid")" = "root $auid 710" ] ||
	fail "a's directory is $(stat -c '%U %g %a' "$T_STATE/vms/$aid")"
ok "a's files are a's (0600), its directory root:$auid 0710"

# QEMU keeps running without hcd and is adopted again (same process).
hcd_kill9
kill -0 "$apid" || fail "a's QEMU died with hcd"
PATH="$T_DIR/bin:$PATH" hcd_start --qemu-uid-base=300000 --qemu-uid-count=1000
[ "$(vm_field a .state)" = running ] || fail "a not running after the restart"
[ "$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$aid/" | head -1)" = "$apid" ] || fail "a's QEMU was not adopted"
ok "QEMU outlived kill -9 of hcd and was adopted"

# Two VMs of a host never share a uid: with room for two uids, a VM whose
# ID is a's plus two is refused (a's files would be its).
hcd_stop
PATH="$T_DIR/bin:$PATH" hcd_start --qemu-uid-base=300000 --qemu-uid-count=2
hc vm create c --image tiny --no-start >/dev/null
cid=$(vm_field c .id)
while [ $(( (16#$cid - 16#$aid) % 2 )) != 0 ]; do
	hc vm delete c >/dev/null
	hc vm create c --image tiny --no-start >/dev/null
	cid=$(vm_field c .id)
done
hc vm start c >/dev/null
wait_state c error 60
vm_field c .error | grep -q "is VM $aid's too" || fail "c's error: $(vm_field c .error)"
[ -z "$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$cid/")" ] || fail "c's QEMU runs"
ok "a VM whose uid another VM of the host has is not started"

# A range that holds real accounts is refused (uid 1 is daemon's on Debian).
hcd_stop
if ip netns exec "$T_NS" "$HCD_BIN" --state-dir "$T_STATE" --accel tcg --qemu-uid-base=1 \
	--qemu-uid-count=10 >"$T_DIR/bad.log" 2>&1; then fail "hcd started with accounts in the VM uid range"; fi
grep -q "hold the account $(getent passwd 1 | cut -d: -f1) (uid 1)" "$T_DIR/bad.log" ||
	fail "refusal does not name the account: $(cat "$T_DIR/bad.log")"
ok "a uid range that holds an account is refused"
