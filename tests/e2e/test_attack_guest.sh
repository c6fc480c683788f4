#!/usr/bin/env bash
# A guest attacks its host (issue 11, item 5): the input chain lets a guest
# reach only what it needs of its host.  A real guest on network a tries
#  - a TCP port the host listens on (a listener this test starts on every
#    address of the host, and hcd's own TCP API listener, TLS on [::]),
#    on its own gateway's IPv4 and IPv6 addresses: unreachable;
#  - the DNS port of network b's dnsmasq (b's gateway addresses, which the
#    host routes for a): unreachable;
# while DHCP (a fresh DHCPv4 exchange), DNS through its own network's
# dnsmasq (IPv4 and IPv6), the metadata service (169.254.169.254 and
# [fe80::a9fe:a9fe]) and ping to its gateway still work, the host still
# reaches the guest (replies come back through the input hook), and the
# firewall's named drop counter grew.  The host's own connections to the
# same listeners are the control: they are up.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl is needed (see scripts/deps.sh)"
API_PORT=8443 HOST_PORT=2222
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=hackcloud-e2e -addext 'subjectAltName=IP:::1' \
	-keyout "$T_DIR/tls.key" -out "$T_DIR/tls.crt" 2>/dev/null || fail "openssl could not make a certificate"
hcd_start --listen="[::]:$API_PORT" --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key"

# "sshd": a TCP service of the host on every address, IPv4 and IPv6.
cat >"$T_DIR/listen.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', int(sys.argv[1]))); s.listen(16)
while True:
    c, a = s.accept()
    c.sendall(b'host-secret-banner\n'); c.close()
EOF
# A simple command (not the nsexec function), so that $! is python itself
# and the cleanup ends it (a leftover would hold the caller's stdout open).
ip netns exec "$T_NS" python3 "$T_DIR/listen.py" "$HOST_PORT" &
T_ON_EXIT+=("kill $! 2>/dev/null")

import_tiny tiny
hc net create a --ipv6 fd00:e2e:30::/64 --ipv4 10.83.0.0/24 >/dev/null
hc net create b --ipv6 fd00:e2e:31::/64 --ipv4 10.84.0.0/24 >/dev/null
hc vm create eve --image tiny --net a >/dev/null
hc vm create bob --image tiny --net b >/dev/null
for vm in eve bob; do wait_log "$vm" HACKCLOUD-NET-UP 180; done
eve4=$(vm_field eve '.nics[0].ipv4'); eve6=$(vm_field eve '.nics[0].ipv6')

# The control: the host itself reaches both listeners on a's gateway.
nsexec python3 -c "
import socket; s = socket.create_connection(('10.83.0.1', $HOST_PORT), timeout=3)
assert s.recv(64).startswith(b'host-secret-banner')" || fail "control: the host's own listener is not up"
nsexec curl -s -o /dev/null --max-time 5 --cacert "$T_DIR/tls.crt" "https://[::1]:$API_PORT/v1/info" ||
	fail "control: hcd's TCP listener does not answer the host"
ok "control: the host reaches its listener and hcd's TLS API"

drops() {
	nsexec nft -j list counter inet hackcloud guest-drop 2>/dev/null |
		jq -r '.nftables[] | select(.counter) | .counter.packets' 2>/dev/null || true
}
before=$(drops)

# Wait until eve's ping to its gateway works: her link is ready.
for i in $(seq 1 10); do
	guest_run eve 20 'ping -c 1 -W 2 10.83.0.1' >/dev/null && break
	sleep 1
done
guest_run eve 20 'ping -c 1 -W 2 10.83.0.1' >/dev/null || fail "eve cannot ping her gateway"

# A TCP attempt: busybox nc exits 1 when it cannot connect (refused or
# timed out), 0 when the server closed on it; a server that keeps the
# connection open is ended by timeout (another status): open as well.
tcp_try() { # vm host port → tcp-open or tcp-closed
	guest_run "$1" 40 "timeout 12 sh -c 'echo | nc -w 5 $2 $3' >/dev/null 2>&1; echo tcp-rc=\$?" |
		tr -d '\r' | sed -n 's/^tcp-rc=//p' | tail -1 | awk '{ print ($1 == 1 ? "tcp-closed" : "tcp-open") }'
}
for target in 10.83.0.1 fd00:e2e:30::1 10.84.0.1 fd00:e2e:31::1; do
	for port in "$HOST_PORT" "$API_PORT"; do
		got=$(tcp_try eve "$target" "$port")
		[ "$got" = tcp-closed ] || fail "eve reached the host's TCP port $port on $target ($got)"
	done
done
out=$(guest_run eve 30 "timeout 6 nc -w 4 10.83.0.1 $HOST_PORT; true")
grep -q host-secret-banner <<<"$out" && fail "eve read the host listener's banner"
ok "the host's TCP ports (a listener, hcd's TLS API) are unreachable from eve on every gateway address"

for server in 10.84.0.1 fd00:e2e:31::1; do
	out=$(guest_run eve 30 "timeout 8 nslookup bob.b $server; echo rc=\$?") || true
	grep -q 'rc=0' <<<"$out" && fail "eve queried network b's dnsmasq at $server: $out"
done
ok "network b's dnsmasq (its gateway addresses) is unreachable from eve"

# What eve needs of her host still works.
for server in 10.83.0.1 fd00:e2e:30::1; do
	out=$(guest_run eve 30 "timeout 8 nslookup eve.a $server; echo rc=\$?") || true
	grep -q "$eve4" <<<"$out" || fail "eve cannot resolve her own name through her dnsmasq at $server: $out"
done
ok "DNS of eve's own network answers over IPv4 and IPv6"
out=$(guest_run eve 40 'udhcpc -i eth0 -n -q -f -t 4 -T 2 -s /bin/true; echo rc=$?') || true
grep -q 'rc=0' <<<"$out" || fail "eve got no DHCPv4 lease: $out"
grep -q "$eve4" <<<"$out" || fail "eve's DHCP lease is not $eve4: $out"
ok "DHCPv4 still works"
out=$(guest_run eve 30 'timeout 10 wget -q -O - http://169.254.169.254/latest/meta-data/hostname; echo') || true
grep -q '^eve' <<<"$out" || fail "the metadata service over IPv4 did not answer eve: $out"
out=$(guest_run eve 30 'timeout 10 wget -q -O - "http://[fe80::a9fe:a9fe%eth0]/latest/meta-data/hostname"; echo') || true
grep -q '^eve' <<<"$out" || fail "the metadata service over IPv6 did not answer eve: $out"
guest_run eve 20 'ping -6 -c 1 -W 3 fd00:e2e:30::1' >/dev/null || fail "eve cannot ping6 her gateway"
nsexec ping -c 1 -W 3 "$eve4" >/dev/null || fail "the host cannot ping eve (replies dropped on input?)"
nsexec ping -6 -c 1 -W 3 "$eve6" >/dev/null || fail "the host cannot ping6 eve"
ok "metadata (IPv4, IPv6), ping both ways still work"

after=$(drops)
[ -n "$before" ] && [ -n "$after" ] || fail "no named counter inet hackcloud guest-drop (no input chain)"
[ "$after" -gt "$before" ] || fail "the drop counter did not grow ($before -> $after)"
ok "guest-drop counted $((after - before)) dropped packets"
