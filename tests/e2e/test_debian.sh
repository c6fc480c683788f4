#!/usr/bin/env bash
# SLOW: 5-15 minutes.  A first build downloads ~120 MB from Debian's
# mirror (later builds use the cache in /var/cache/hackcloud/build), and a
# systemd + cloud-init guest boots for minutes under TCG.  E2E_SKIP_SLOW=1
# skips it.
#
# The image builder, and real cloud-init (the client we did not write)
# against hackcloud's metadata service:
#   - `hc image build --recipe tiny` gives the very image of the other e2e
#     tests: the same sha256 as importing `make guest`'s files;
#   - `hc image build --recipe debian` debootstraps Debian with cloud-init
#     and openssh-server into a disk image and registers it;
#   - a VM booted from it gets its hostname and SSH key from the metadata
#     service through cloud-init's OpenStack data source (chosen because
#     hackcloud's SMBIOS product is "OpenStack Nova"); the test logs in over
#     IPv6 from the host side of the namespace with that key and runs
#     `hostname`;
#   - at the same time a second VM, on an IPv6-only network where the
#     metadata service (IPv4) is out of reach, gets the same from the NoCloud seed
#     (--config-drive) and is reached the same way.
. "$(dirname "$0")/lib.sh"

if [ "${E2E_SKIP_SLOW:-0}" = 1 ]; then
	echo "  skip - E2E_SKIP_SLOW=1"
	exit 0
fi
command -v ssh >/dev/null || fail "ssh is needed (apt-get install openssh-client)"

SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10
	-o BatchMode=yes -o LogLevel=ERROR -i "$T_DIR/id_ed25519")

hcd_start

# ---- tiny: the same inputs give the same image ------------------------------
hc image build tinyb --recipe tiny >"$T_DIR/tiny.out" 2>"$T_DIR/tiny.log" ||
	fail "hc image build --recipe tiny failed: $(tail -n 20 "$T_DIR/tiny.log")"
grep -q '^\[1/2\] build-tiny.sh' "$T_DIR/tiny.log" || fail "no progress lines: $(cat "$T_DIR/tiny.log")"
grep -q '^sha256: ' "$T_DIR/tiny.out" || fail "hc image build printed no image: $(cat "$T_DIR/tiny.out")"
import_tiny tinyref
[ "$(hc --json image show tinyb | jq -r .sha256)" = "$(hc --json image show tinyref | jq -r .sha256)" ] ||
	fail "the tiny recipe and make guest's files differ: $(hc image list)"
[ "$(hc --json image show tinyb | jq -r .boot)" = kernel ] || fail "tiny is not a kernel image"
hc image build tinyb --recipe tiny >/dev/null 2>"$T_DIR/again.log" && fail "a taken name was built again"
grep -q "exists already" "$T_DIR/again.log" || fail "taken name: $(cat "$T_DIR/again.log")"
ok "recipe tiny = make guest's image (same sha256); a taken name fails before building"

# ---- debian: build ------------------------------------------------------------
# What a build leaves in the scratch dir (other builds may run too).
scratch() { find "${TMPDIR:-/var/tmp}" -maxdepth 1 -name 'hc-build-*' | sort; }
before=$(scratch)

# A failure inside the chroot (an unknown package, after the mounts are
# made): nothing registered, no work dir and no mount left.
hc image build bad --recipe debian --packages no-such-package-hc >/dev/null 2>"$T_DIR/bad.log" &&
	fail "a build with an unknown package succeeded"
grep -q "recipe debian failed" "$T_DIR/bad.log" || fail "bad build: $(tail -n 5 "$T_DIR/bad.log")"
grep -q "no-such-package-hc" "$T_DIR/bad.log" || fail "the build log's tail was not shown: $(cat "$T_DIR/bad.log")"
hc image show bad >/dev/null 2>&1 && fail "a failed build registered an image"
[ "$(scratch)" = "$before" ] || fail "the failed build left work dirs behind: $(scratch)"
grep -q 'hc-build-' /proc/mounts && fail "the failed build left mounts behind: $(grep hc-build- /proc/mounts)"
ok "a failed build registers nothing and leaves no work dir or mount"

t0=$(date +%s)
hc image build deb --recipe debian --suite bookworm --packages cloud-init,openssh-server \
	>"$T_DIR/deb.out" 2>"$T_DIR/deb.log" ||
	fail "hc image build --recipe debian failed: $(tail -n 40 "$T_DIR/deb.log")"
build_s=$(($(date +%s) - t0))
sed 's/^/    /' "$T_DIR/deb.log" | grep -a '^    \[' || true
for s in "1/7] prepare" "2/7] debootstrap" "3/7] install" "7/7] pack"; do
	grep -q "^\[$s" "$T_DIR/deb.log" || fail "no '[$s' progress line"
done
[ "$(hc --json image show deb | jq -r '.boot + " " + .format + " " + .state')" = "disk qcow2 ready" ] ||
	fail "deb is not a ready qcow2 disk image: $(hc --json image show deb)"
[ "$(scratch)" = "$before" ] || fail "the build left work dirs behind: $(scratch)"
grep -q 'hc-build-' /proc/mounts && fail "the build left mounts behind: $(grep hc-build- /proc/mounts)"
ok "recipe debian built and registered a qcow2 disk image in ${build_s}s"

# ---- boot it, let cloud-init configure it, log in ------------------------------
hc net create lan --ipv6 fd00:e2e:60::/64 --ipv4 10.86.0.0/24 >/dev/null
hc net create v6only --ipv6 fd00:e2e:61::/64 >/dev/null
ssh-keygen -q -t ed25519 -N '' -C "debian-e2e-$$" -f "$T_DIR/id_ed25519" </dev/null >/dev/null
hc key add laptop --file "$T_DIR/id_ed25519.pub" >/dev/null
t0=$(date +%s)
hc vm create web --image deb --net lan --key laptop --memory 1024 >/dev/null
hc vm create seeded --image deb --net v6only --key laptop --memory 1024 --config-drive >/dev/null
for vm in web seeded; do hc vm rule add "$vm" --proto tcp --port 22 >/dev/null; done
ip6=$(vm_field web '.nics[0].ipv6')
id=$(vm_field web .id)

# Poll: the console shows cloud-init's last stage; then sshd takes keys.
wait_log web "Cloud-init v. " 900
wait_log web "finished at" 900
boot_s=$(($(date +%s) - t0))
out=
for _ in $(seq 1 60); do
	if out=$(nsexec ssh "${SSH_OPTS[@]}" "root@$ip6" hostname 2>"$T_DIR/ssh.err"); then
		break
	fi
	sleep 5
done
[ "$out" = web ] || fail "ssh root@$ip6 hostname: '$out' ($(cat "$T_DIR/ssh.err"))"
login_s=$(($(date +%s) - t0))
ok "logged in over IPv6 with the VM's key; hostname is web (console done ${boot_s}s, ssh ${login_s}s after create)"

guest() { nsexec ssh "${SSH_OPTS[@]}" "root@$ip6" "$@"; }
key=$(cut -d' ' -f1,2 "$T_DIR/id_ed25519.pub")
guest cat /root/.ssh/authorized_keys | grep -qF "$key" || fail "the key is not in root's authorized_keys"
guest cat /home/debian/.ssh/authorized_keys | grep -qF "$key" ||
	fail "the key is not in the default user's authorized_keys"
# The OpenStack data source takes meta_data.json's uuid as the instance
# ID: hackcloud's is the VM ID in the last 12 hex digits.
uuid="00000000-0000-4000-8000-00$id"
[ "$(guest cat /var/lib/cloud/data/instance-id)" = "$uuid" ] ||
	fail "cloud-init's instance-id is not $uuid: $(guest cat /var/lib/cloud/data/instance-id)"
guest cloud-init status --long >"$T_DIR/ci-status" 2>&1 || true
grep -q 'status: done' "$T_DIR/ci-status" || fail "cloud-init status: $(cat "$T_DIR/ci-status")"
ok "cloud-init installed the key for root and debian and took instance-id $uuid from hackcloud"

log=$(hc vm log web | tr -d '\r')
grep -aq "Datasource DataSourceOpenStack" <<<"$log" ||
	fail "the console does not show the OpenStack data source: $(grep -a 'Cloud-init' <<<"$log")"
guest ip -6 addr show dev eth0 | grep -q "${ip6}/64" || fail "eth0 lacks $ip6: $(guest ip -6 addr)"
[ "$(guest passwd -S root | cut -d' ' -f2)" = L ] || fail "root's password is not locked"
ok "console: cloud-init finished with the OpenStack data source (SMBIOS says OpenStack Nova); SLAAC address on eth0; root password locked"
# ---- the NoCloud seed on an IPv6-only network ---------------------------------
wait_log seeded "finished at" 900
slog=$(hc vm log seeded | tr -d '\r')
grep -aq "Datasource DataSourceNoCloud" <<<"$slog" ||
	fail "seeded: the console does not show the NoCloud data source: $(grep -a 'Cloud-init' <<<"$slog")"
sip6=$(vm_field seeded '.nics[0].ipv6')
out=
for _ in $(seq 1 60); do
	if out=$(nsexec ssh "${SSH_OPTS[@]}" "root@$sip6" hostname 2>"$T_DIR/ssh.err"); then
		break
	fi
	sleep 5
done
[ "$out" = seeded ] || fail "ssh root@$sip6 hostname: '$out' ($(cat "$T_DIR/ssh.err"))"
ok "IPv6-only network: NoCloud seed gave hostname and key; ssh over SLAAC works"
echo "  timings: build ${build_s}s, create → cloud-init done ${boot_s}s, → ssh ${login_s}s"
