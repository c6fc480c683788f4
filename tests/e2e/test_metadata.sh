#!/usr/bin/env bash
# Metadata and contextualisation with real guests: the tiny image's
# context script fetches its metadata from 169.254.169.254, sets its
# hostname, installs exactly its selected keys and runs its user data.
# A second VM only ever gets its own data — forged Host/X-Forwarded-For
# headers and a spoofed source address change nothing — and the host
# itself, not being a guest, is refused.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create md --ipv6 fd00:e2e:50::/64 --ipv4 10.85.0.0/24 >/dev/null
ssh-keygen -q -t ed25519 -N '' -C alice-key -f "$T_DIR/k1" </dev/null >/dev/null
ssh-keygen -q -t ed25519 -N '' -C bob-key -f "$T_DIR/k2" </dev/null >/dev/null
ssh-keygen -q -t ed25519 -N '' -C other-key -f "$T_DIR/k3" </dev/null >/dev/null
hc key add k1 --file "$T_DIR/k1.pub" >/dev/null
hc key add k2 --file "$T_DIR/k2.pub" >/dev/null
hc key add k3 --file "$T_DIR/k3.pub" >/dev/null
printf '#!/bin/sh\necho "user-data-of-alice ran as $(id -u)"\n' >"$T_DIR/ud-a"
printf '#!/bin/sh\necho user-data-of-bob\n' >"$T_DIR/ud-b"
hc vm create alice --image tiny --net md --key k1 --key k3 --user-data "$T_DIR/ud-a" >/dev/null
hc vm create bob --image tiny --net md --key k2 --user-data "$T_DIR/ud-b" >/dev/null
for vm in alice bob; do wait_log "$vm" HACKCLOUD-CONTEXT-DONE 240; done

log=$(hc vm log alice)
grep -q "HACKCLOUD-CONTEXT hostname=alice" <<<"$log" || fail "alice's hostname not set: $(grep -a CONTEXT <<<"$log")"
grep -q "HACKCLOUD-CONTEXT keys=2" <<<"$log" || fail "alice did not install 2 keys"
grep -q "user-data-of-alice ran as 0" <<<"$log" || fail "alice's user data did not run"
grep -q "user-data-of-bob" <<<"$log" && fail "bob's user data ran in alice"
grep -q "HACKCLOUD-CONTEXT instance-id=i-$(vm_field alice .id)" <<<"$log" || fail "wrong instance-id in alice"
ok "alice: hostname set, 2 keys, her user data ran"

got=$(guest_run alice 20 'cat /root/.ssh/authorized_keys' | tr -d '\r' | grep ssh- | sort)
want=$(cat "$T_DIR/k1.pub" "$T_DIR/k3.pub" | sort)
[ "$got" = "$want" ] || fail "alice's authorized_keys differ: got [$got] want [$want]"
[ "$(guest_run alice 20 'hostname' | tr -d '\r' | tail -1)" = alice ] || fail "hostname is not alice"
ok "alice's authorized_keys hold exactly k1 and k3"

# The same service over IPv6, on the bridge's link-local address.
out=$(guest_run alice 30 'timeout 10 wget -q -O - "http://[fe80::a9fe:a9fe%eth0]/latest/meta-data/hostname"; echo') || true
grep -q '^alice' <<<"$out" || fail "the IPv6 metadata endpoint did not answer alice: $out"
ok "metadata over [fe80::a9fe:a9fe] answers too"

blog=$(hc vm log bob)
grep -q "HACKCLOUD-CONTEXT hostname=bob" <<<"$blog" || fail "bob's hostname not set"
grep -q "HACKCLOUD-CONTEXT keys=1" <<<"$blog" || fail "bob did not install 1 key"
grep -q "user-data-of-alice" <<<"$blog" && fail "alice's user data reached bob"
ok "bob got his own data"

# Bob tries to read alice's data: forged headers give bob's own data.
alice4=$(vm_field alice '.nics[0].ipv4')
out=$(guest_run bob 20 "wget -q -O - --header 'Host: $alice4' --header 'X-Forwarded-For: $alice4' --header 'X-Real-IP: $alice4' http://169.254.169.254/latest/meta-data/hostname; echo") || true
grep -q '^bob' <<<"$out" || fail "bob with forged headers did not get his own hostname: $out"
grep -q alice <<<"$out" && fail "forged headers returned alice's data"
out=$(guest_run bob 20 "wget -q -O - http://169.254.169.254/latest/user-data") || true
grep -q user-data-of-alice <<<"$out" && fail "bob read alice's user data"
# A spoofed source address: the firewall drops it before it reaches the
# service, so the request fails instead of answering as alice.
out=$(guest_run bob 40 "ip addr add $alice4/32 dev eth0; ip route add 169.254.169.254/32 dev eth0 src $alice4; wget -q -T 5 -O - http://169.254.169.254/latest/meta-data/hostname; echo rc=\$?; ip route del 169.254.169.254/32; ip addr del $alice4/32 dev eth0") || true
grep -q alice <<<"$out" && fail "a spoofed source address returned alice's data"
grep -q "rc=0" <<<"$out" && fail "the spoofed request was answered"
ok "forged headers and a spoofed source never return alice's data"

code=$(nsexec curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://169.254.169.254/latest/meta-data/hostname)
[ "$code" = 403 ] || fail "the host (not a guest) got status $code from the metadata service"
ok "a caller that is not a hackcloud NIC is refused (403)"

# Real client code we did not write: cloud-init's own EC2 and OpenStack
# readers (Debian's cloud-init package, unpacked, not installed), run from
# a namespace on the bridge that presents a registered NIC's MAC and
# address — carol's, a VM that exists but does not run.
printf 'hello from carol\n' >"$T_DIR/ud-c"
hc vm create carol --image tiny --net md --key k2 --user-data "$T_DIR/ud-c" --no-start >/dev/null
carol_mac=$(vm_field carol '.nics[0].mac'); carol4=$(vm_field carol '.nics[0].ipv4')
CI_NS=hce2eci-$$
T_EXTRA_NS+=("$CI_NS")
ip netns add "$CI_NS"
ip -n "$T_NS" link add hcci0 type veth peer name eth0 netns "$CI_NS"
ip -n "$T_NS" link set hcci0 master "$(hc --json net show md | jq -r .bridge)" up
ip -n "$CI_NS" link set lo up
ip -n "$CI_NS" link set eth0 address "$carol_mac" up
ip -n "$CI_NS" addr add "$carol4/24" dev eth0
ip -n "$CI_NS" route add default via 10.85.0.1
( cd "$T_DIR" && apt-get download cloud-init >/dev/null 2>&1 ) || fail "cannot download Debian's cloud-init package"
dpkg-deb -x "$T_DIR"/cloud-init_*.deb "$T_DIR/cloud-init"
ci_out=$(ip netns exec "$CI_NS" env PYTHONPATH="$T_DIR/cloud-init/usr/lib/python3/dist-packages" \
	/usr/bin/python3 "$(dirname "$0")/cloudinit_read.py" 2>"$T_DIR/ci.err") ||
	fail "cloud-init's readers failed: $(tail -5 "$T_DIR/ci.err")"
jq -e --arg id "i-$(vm_field carol .id)" --arg mac "$carol_mac" --arg ip "$carol4" \
	--arg key "$(cat "$T_DIR/k2.pub")" '
	.ec2["instance-id"] == $id and .ec2.hostname == "carol" and .ec2["local-ipv4"] == $ip
	and .ec2.mac == $mac and .ec2_user_data == "hello from carol\n"
	and .os_name == "carol" and .os_hostname == "carol" and .os_keys.k2 == $key
	and .os_user_data == "hello from carol\n"
	and ((.ec2_keys | tostring) | contains("bob-key"))' <<<"$ci_out" >/dev/null ||
	fail "cloud-init read something else than the API says: $ci_out"
ok "cloud-init's EC2 and OpenStack readers see exactly carol's data"
