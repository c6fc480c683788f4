#!/usr/bin/env bash
# The NoCloud seed (hc vm create --config-drive): hcd builds a "cidata"
# ISO 9660 volume (genisoimage) with meta-data, user-data and
# network-config and attaches it as an IDE CD-ROM.  The tiny guest mounts
# the CD and reads its instance ID, hostname and user data byte for byte;
# on the host isoinfo and xorriso (tools we did not write) inspect the
# volume.  A VM without --config-drive has no seed.iso and no CD-ROM.
. "$(dirname "$0")/lib.sh"

command -v isoinfo >/dev/null || fail "isoinfo is needed (apt-get install genisoimage)"
command -v xorriso >/dev/null || fail "xorriso is needed (apt-get install xorriso)"
command -v ssh-keygen >/dev/null || fail "ssh-keygen is needed (apt-get install openssh-client)"

hcd_start
import_tiny tiny
hc net create lan --ipv6 fd00:e2e:5::/64 --ipv4 10.79.0.0/24 >/dev/null
ssh-keygen -q -t ed25519 -N '' -C 'seed@e2e' -f "$T_DIR/id_ed25519"
hc key add laptop --file "$T_DIR/id_ed25519.pub" >/dev/null || fail "hc key add failed"

# cloud-config, not a script: the context script leaves it alone.
printf '#cloud-config\n# seed-e2e-%s\nruncmd:\n  - [ echo, "a: b, c" ]\n' "$$" >"$T_DIR/ud.yaml"

hc vm create seeded --image tiny --net lan --key laptop --user-data "$T_DIR/ud.yaml" \
	--config-drive >/dev/null || fail "vm create --config-drive failed"
hc vm create plain --image tiny --net lan --key laptop >/dev/null || fail "vm create (plain) failed"
sid=$(vm_field seeded .id)
pid=$(vm_field plain .id)
[ "$(vm_field seeded .config_drive)" = true ] || fail "seeded: config_drive is not true"
[ "$(vm_field plain .config_drive)" = false ] || fail "plain: config_drive is not false"
hc vm show seeded | grep -q "^config drive: *yes$" || fail "hc vm show lacks 'config drive yes'"
ok "config_drive shown by the API and hc vm show"

wait_state seeded running 60
wait_state plain running 60
iso=$T_STATE/vms/$sid/seed.iso
[ -f "$iso" ] || fail "no $iso"
[ ! -e "$T_STATE/vms/$pid/seed.iso" ] || fail "plain has a seed.iso"
[ ! -e "$T_STATE/vms/$pid/seed" ] || fail "plain has a seed dir"
spid=$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$sid" | head -1)
ppid_=$(pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$pid" | head -1)
tr '\0' '\n' <"/proc/$spid/cmdline" | grep -q "^ide-cd,drive=seed" || fail "seeded QEMU has no CD-ROM"
tr '\0' '\n' <"/proc/$spid/cmdline" | grep -qF "\"filename\":\"$iso\"" || fail "the CD-ROM is not $iso"
if tr '\0' ' ' <"/proc/$ppid_/cmdline" | grep -q "ide-cd\|seed.iso"; then fail "plain QEMU has a CD-ROM"; fi
ok "seed.iso built and attached as a CD-ROM only for --config-drive"

# ---- host-side inspection with isoinfo and xorriso ------------------------
isoinfo -d -i "$iso" >"$T_DIR/pvd"
grep -q '^Volume id: cidata$' "$T_DIR/pvd" || fail "isoinfo: volume id is not cidata: $(cat "$T_DIR/pvd")"
grep -q 'Rock Ridge' "$T_DIR/pvd" || fail "isoinfo: no Rock Ridge: $(cat "$T_DIR/pvd")"
isoinfo -f -R -i "$iso" | sort >"$T_DIR/files"
printf '/meta-data\n/network-config\n/user-data\n' | cmp -s - "$T_DIR/files" ||
	fail "isoinfo lists $(tr '\n' ' ' <"$T_DIR/files")"
xorriso -indev "$iso" -pvd_info >"$T_DIR/xpvd" 2>&1 || fail "xorriso -pvd_info failed: $(cat "$T_DIR/xpvd")"
grep -q "^Volume Id *: cidata\$" "$T_DIR/xpvd" || fail "xorriso: volume id: $(cat "$T_DIR/xpvd")"
xorriso -osirrox on -indev "$iso" -extract / "$T_DIR/x" >/dev/null 2>&1 || fail "xorriso extract failed"
cmp "$T_DIR/ud.yaml" "$T_DIR/x/user-data" || fail "user-data in the ISO differs from the file"
printf 'instance-id: i-%s\nlocal-hostname: seeded\n' "$sid" | cmp -s - "$T_DIR/x/meta-data" ||
	fail "meta-data: $(cat "$T_DIR/x/meta-data")"
mac=$(vm_field seeded '.nics[0].mac')
python3 - "$T_DIR/x/network-config" "$mac" <<'EOF' || fail "network-config: $(cat "$T_DIR/x/network-config")"
import sys, yaml
nc = yaml.safe_load(open(sys.argv[1]))
assert nc["version"] == 2, nc
eth0 = nc["ethernets"]["eth0"]
assert eth0["match"]["macaddress"] == sys.argv[2], eth0
assert eth0["dhcp4"] is True and eth0["accept-ra"] is True, eth0
EOF
ok "isoinfo and xorriso: volume cidata, the three files, their contents"

# ---- in the guest ------------------------------------------------------------
wait_log seeded HACKCLOUD-BOOT-OK 180
wait_log plain HACKCLOUD-BOOT-OK 180
mnt='mkdir -p /mnt/seed && mount -t iso9660 -o ro /dev/sr0 /mnt/seed'
if ! guest_run seeded 60 "$mnt" >"$T_DIR/mount.out"; then
	guest_run seeded 30 'ls /sys/block /dev; cat /proc/modules /proc/filesystems' >"$T_DIR/diag" || true
	fail "mounting /dev/sr0 failed: $(cat "$T_DIR/mount.out") -- $(tr '\n' ' ' <"$T_DIR/diag")"
fi
guest_run seeded 60 'cat /mnt/seed/meta-data' >"$T_DIR/g.meta" || fail "guest: cat meta-data failed"
grep -qx "instance-id: i-$sid" "$T_DIR/g.meta" || fail "guest meta-data: $(cat "$T_DIR/g.meta")"
grep -qx "local-hostname: seeded" "$T_DIR/g.meta" || fail "guest meta-data: $(cat "$T_DIR/g.meta")"
# sha256 of the bytes, so the console's line handling cannot hide a difference.
guest_run seeded 60 'sha256sum /mnt/seed/user-data' >"$T_DIR/g.sum" || fail "guest: sha256sum failed"
want=$(sha256sum <"$T_DIR/ud.yaml" | cut -d' ' -f1)
grep -q "^$want " "$T_DIR/g.sum" || fail "guest user-data sum $(cat "$T_DIR/g.sum"), want $want"
guest_run seeded 60 'cat /mnt/seed/user-data' >"$T_DIR/g.ud" || fail "guest: cat user-data failed"
cmp -s "$T_DIR/ud.yaml" "$T_DIR/g.ud" || fail "guest user-data: $(cat "$T_DIR/g.ud")"
ok "the guest mounts the CD-ROM and reads its instance ID, hostname and user data"

if guest_run plain 60 'test -e /dev/sr0 || test -e /sys/block/sr0' >/dev/null; then
	fail "plain has a CD-ROM in the guest"
fi
ok "without --config-drive the guest has no /dev/sr0"

# ---- no user data: a cloud-config with the VM's keys ------------------------
hc vm delete plain >/dev/null
hc vm create keyed --image tiny --key laptop --config-drive >/dev/null || fail "vm create keyed failed"
kid=$(vm_field keyed .id)
wait_state keyed running 60
xorriso -osirrox on -indev "$T_STATE/vms/$kid/seed.iso" -extract / "$T_DIR/k" >/dev/null 2>&1 ||
	fail "xorriso extract (keyed) failed"
python3 - "$T_DIR/k/user-data" "$T_DIR/id_ed25519.pub" <<'EOF' || fail "keyed user-data: $(cat "$T_DIR/k/user-data")"
import sys, yaml
text = open(sys.argv[1]).read()
assert text.startswith("#cloud-config\n"), text
ud = yaml.safe_load(text)
assert ud["ssh_authorized_keys"] == [open(sys.argv[2]).read().strip()], ud
EOF
ok "without user data the seed's user-data is a cloud-config with the VM's keys"

hc vm delete keyed >/dev/null
hc vm delete seeded >/dev/null
wait_purged "$sid" 90
wait_purged "$kid" 90
wait_purged "$pid" 90
hcd_stop
ok "hcd stopped cleanly"
