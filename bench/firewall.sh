#!/usr/bin/env bash
# The nftables ruleset (src/net/fw_*.c) at scale, and a check that it
# loads and does what it says.  Run as root from anywhere:
#
#   bench/firewall.sh [bench]   full regeneration + atomic swap at 1,000 and
#                               10,000 NICs ($FW_SIZES), without and with
#                               rules: the text baseline (libnftables) and
#                               the netlink batch side by side, medians of
#                               $FW_REPS runs, and their ratio
#                               FW_BASE=DIR: also firewall_apply() of the
#                               tree in DIR (e.g. another worktree, before a
#                               change), in the same rounds: the baseline
#   bench/firewall.sh check     load, replace, no-op and cleanup checks, then
#                               traffic between namespaces: anti-spoofing,
#                               inbound rules, isolation, uplink, DHCP and RA
#                               (FW_CONTROL=1: crafted frames without the
#                               ruleset, to check the check itself)
#
# Everything happens in network namespaces this script creates and always
# removes; no traffic leaves them.  bench/fwgen.c (a synthetic snapshot
# with N NICs) is compiled from the sources into a temporary directory, so
# no build directory is needed.  Figures are printed, not recorded.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-bench}
REPS=${FW_REPS:-3}
SIZES=${FW_SIZES:-"1000 10000"}

dir=$(mktemp -d /tmp/hc-fw.XXXXXX)
namespaces=() pids=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
newns() { ip netns add "$1"; namespaces+=("$1"); ip -n "$1" link set lo up; }
# A background server inside a namespace, killed by its PID at exit
# (`ip netns exec` execs the command, so $! is the server itself).
spawn() { ip netns exec "$@" & pids+=($!); }

FWGEN=$dir/fwgen
# shellcheck disable=SC2046
cc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -I"$SRC/src" \
	-o "$FWGEN" "$SRC/bench/fwgen.c" "$SRC"/src/net/fw_*.c "$SRC/src/net/netstate.c" \
	"$SRC/src/common/ids.c" "$SRC/src/common/validate.c" \
	$(pkg-config --cflags --libs libnftables libnftnl libmnl libsodium)

# The baseline: the other tree's firewall sources, driven by this tree's
# fwgen (so that both report the same figures of the same snapshots).
BASEGEN=
if [ -n "${FW_BASE:-}" ]; then
	BASEGEN=$dir/fwgen-base
	# shellcheck disable=SC2046
	cc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -I"$FW_BASE/src" \
		-o "$BASEGEN" "$SRC/bench/fwgen.c" "$FW_BASE"/src/net/fw_*.c "$FW_BASE/src/net/netstate.c" \
		"$FW_BASE/src/common/ids.c" "$FW_BASE/src/common/validate.c" \
		$(pkg-config --cflags --libs libnftables libnftnl libmnl libsodium)
fi

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }

# One case: the median ms of REPS swaps (a changed state: new version in,
# old out, one transaction) through the text baseline and through
# firewall_apply(); and of REPS no-op applies (state unchanged).
# Prints: text-ms netlink-ms noop-ms netlink-cpu-ms [base-ms base-cpu-ms]
bench_case() { # namespace nics args...
	local ns=$1 n=$2 rep t a c
	shift 2
	local texts=() nls=() noops=() cpus=() bases=() bcpus=()
	ip netns exec "$ns" "$FWGEN" remove
	ip netns exec "$ns" "$FWGEN" -n "$n" -N 16 -u eth0 "$@" -x 0 text >/dev/null
	for rep in $(seq 1 "$REPS"); do
		read -r g t _ < <(ip netns exec "$ns" "$FWGEN" -n "$n" -N 16 -u eth0 "$@" -x $((rep % 2 + 1)) text)
		texts+=("$(awk -v g="$g" -v t="$t" 'BEGIN { print g + t }')")
	done
	ip netns exec "$ns" "$FWGEN" remove
	ip netns exec "$ns" "$FWGEN" -n "$n" -N 16 -u eth0 "$@" -x 0 apply >/dev/null
	for rep in $(seq 1 "$REPS"); do
		read -r a _ c < <(ip netns exec "$ns" "$FWGEN" -n "$n" -N 16 -u eth0 "$@" -x $((rep % 2 + 1)) apply)
		nls+=("$a")
		cpus+=("$c")
		read -r a _ < <(ip netns exec "$ns" "$FWGEN" -n "$n" -N 16 -u eth0 "$@" -x $((rep % 2 + 1)) apply)
		noops+=("$a")
		# The baseline swaps versions of its own in the same round.
		if [ -n "$BASEGEN" ]; then
			ip netns exec "$ns" "$BASEGEN" remove
			ip netns exec "$ns" "$BASEGEN" -n "$n" -N 16 -u eth0 "$@" -x $(((rep + 1) % 2 + 1)) apply >/dev/null
			read -r a _ c < <(ip netns exec "$ns" "$BASEGEN" -n "$n" -N 16 -u eth0 "$@" -x $((rep % 2 + 1)) apply)
			bases+=("$a")
			bcpus+=("$c")
			ip netns exec "$ns" "$BASEGEN" remove
			ip netns exec "$ns" "$FWGEN" -n "$n" -N 16 -u eth0 "$@" -x $((rep % 2 + 1)) apply >/dev/null
		fi
	done
	echo "$(printf '%s\n' "${texts[@]}" | median) $(printf '%s\n' "${nls[@]}" | median)" \
		"$(printf '%s\n' "${noops[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" \
		"$([ ${#bases[@]} -gt 0 ] && printf '%s\n' "${bases[@]}" | median)" \
		"$([ ${#bcpus[@]} -gt 0 ] && printf '%s\n' "${bcpus[@]}" | median)"
	ip netns exec "$ns" "$FWGEN" remove
}

bench() {
	local ns=fwbench-$$ n c t l o
	newns "$ns"
	echo "== firewall: full regeneration + atomic swap, ms (median of $REPS), 16 networks,"
	echo "   1 NIC per VM, an uplink.  text = the ruleset as nft text through libnftables"
	echo "   (the path before the netlink batch; generation included); netlink ="
	echo "   firewall_apply() (generate, list installed names, one libnftnl batch);"
	echo "   no-op = firewall_apply() with the state unchanged.  Rule cases: none; every"
	echo "   10th VM has 2 rules; every VM has the same 2 rules; every VM has 2 rules of"
	echo "   its own (-d: ports that depend on the VM; the worst case for rule chains)."
	[ -n "$BASEGEN" ] && echo "   base = firewall_apply() of $FW_BASE, swapping in the same rounds."
	echo "   cpu = CPU time of the netlink swap (user + kernel, in hcd's process): what"
	echo "   it costs without other processes of a busy machine in between."
	printf '%8s  %-22s %10s %10s %7s %8s %8s' NICs rules text netlink ratio no-op cpu
	[ -n "$BASEGEN" ] && printf ' %8s %8s %9s' base 'base cpu' base/new
	echo
	for n in $SIZES; do
		for c in "none:-r 0" "every 10th VM:-r 10" "every VM, same:-r 1" "every VM, own:-r 1 -d"; do
			# shellcheck disable=SC2086
			read -r t l o u b bc < <(bench_case "$ns" "$n" ${c#*:})
			printf '%8s  %-22s %10s %10s %6sx %8s %8s' "$n" "${c%%:*}" "$t" "$l" "$(ratio "$t" "$l")" "$o" "$u"
			[ -n "$BASEGEN" ] && printf ' %8s %8s %8sx' "$b" "$bc" "$(ratio "$b" "$l")"
			echo
		done
	done
}

# ---- check -------------------------------------------------------------------

ok=0 bad=0
pass() { ok=$((ok + 1)); echo "ok   $*"; }
flunk() { bad=$((bad + 1)); echo "FAIL $*"; }
check_that() { # description command...
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then pass "$what"; else flunk "$what"; fi
}
expect() { # yes|no description command...: does the command succeed?
	local want=$1 what=$2 got; shift 2
	if "$@" >/dev/null 2>&1; then got=yes; else got=no; fi
	if [ "$got" = "$want" ]; then pass "$what: $want"; else flunk "$what: want $want, got $got"; fi
}

versions() { # the distinct versions named in a ruleset listing
	grep -o -- '-[0-9a-f]\{8\}\b' | sort -u | tr -d - | tr '\n' ' '
}

check_rules() {
	local ns=fwtest-$$
	newns "$ns"
	x() { ip netns exec "$ns" "$@"; }

	for args in "-n 0 -N 1" "-n 3 -N 2 -r 1" "-n 50 -N 3 -p 2 -r 3 -u eth0"; do
		# shellcheck disable=SC2086
		"$FWGEN" $args print >"$dir/r.nft"
		check_that "generated text loads (nft -c): fwgen $args" x nft -c -f "$dir/r.nft"
	done

	local va vb
	va=$(x "$FWGEN" -n 20 -N 2 apply | cut -d' ' -f2)
	x nft -a list ruleset >"$dir/a1"
	check_that "after apply A only version $va is present" \
		test "$(versions <"$dir/a1")" = "$va "
	x "$FWGEN" -n 20 -N 2 apply >/dev/null
	x nft -a list ruleset >"$dir/a2"
	check_that "apply A again: byte-identical ruleset, same handles (no transaction)" \
		cmp "$dir/a1" "$dir/a2"
	vb=$(x "$FWGEN" -n 20 -N 2 -x 1 apply | cut -d' ' -f2)
	x nft list ruleset >"$dir/b1"
	check_that "apply B ($vb): only version $vb is present, $va is gone" \
		test "$(versions <"$dir/b1")" = "$vb " -a "$va" != "$vb"

	# Stray objects in our tables, a base chain at the wrong priority, and a
	# half-present current version are all repaired by the next apply.
	x nft add chain bridge hackcloud stray
	x nft add set inet hackcloud stray '{ type ipv4_addr; }'
	x "$FWGEN" -n 20 -N 2 -x 1 apply >/dev/null
	x nft list ruleset >"$dir/b2"
	check_that "stray chain and set removed, ruleset as before" cmp "$dir/b1" "$dir/b2"
	x nft flush chain inet hackcloud "into-net-$vb"
	x nft delete set inet hackcloud "same-$vb"
	x "$FWGEN" -n 20 -N 2 -x 1 apply >/dev/null
	x nft list ruleset >"$dir/b3"
	check_that "half-present version completed, ruleset as before" cmp "$dir/b1" "$dir/b3"
	echo '{"nftables": [{"add": {"chain": {"family": "inet", "table": "hackcloud",
		"name": "Odd; name"}}}]}' | x nft -j -f -
	x "$FWGEN" -n 20 -N 2 -x 1 apply >/dev/null
	x nft list ruleset >"$dir/b5"
	check_that "chain with an odd name: tables replaced whole" cmp "$dir/b1" "$dir/b5"
	x "$FWGEN" remove
	x nft add table bridge hackcloud
	x nft add chain bridge hackcloud forward '{ type filter hook forward priority 0; policy drop; }'
	x "$FWGEN" -n 20 -N 2 -x 1 apply >/dev/null
	x nft list ruleset >"$dir/b4"
	check_that "base chain with another priority/policy replaced" cmp "$dir/b1" "$dir/b4"

	x "$FWGEN" remove
	check_that "remove: no hackcloud table left" test -z "$(x nft list ruleset | grep hackcloud)"
	check_that "remove again succeeds" x "$FWGEN" remove
}

# The state of `fwgen -n 3 -N 2 -r 1 [-u up0]`: NIC i is 0x100+i on network
# i%2+1 (bridge b00000N, 10.N.0.0/16, fd00:N::/64) with IPv4 10.N.0.(2+i/2);
# every VM has "tcp 22 from anywhere" and "tcp 8000-8080 from 10.0.0.0/8".
check_traffic() {
	local P=fwt$$ H i
	H=$P-h
	newns "$H"
	h() { ip netns exec "$H" "$@"; }
	g() { local n=$1; shift; ip netns exec "$P-g$n" "$@"; }
	h sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	for net in 1 2; do
		h ip link add b00000$net type bridge
		h ip link set b00000$net up
		h ip addr add 10.$net.0.1/16 dev b00000$net
		h ip addr add fd00:$net::1/64 dev b00000$net nodad
	done
	for i in 0 1 2; do
		local net=$((i % 2 + 1)) hex
		hex=$(printf %02x $i)
		newns "$P-g$i"
		h ip link add "v0200000001$hex" type veth peer name eth0 netns "$P-g$i"
		h ip link set "v0200000001$hex" master b00000$net up
		g $i ip link set eth0 address "02:00:00:00:01:$hex"
		g $i ip link set eth0 up
		g $i ip addr add 10.$net.0.$((2 + i / 2))/16 dev eth0
		g $i ip addr add "fd00:$net::ff:fe00:1$hex/64" dev eth0 nodad
		g $i ip route add default via 10.$net.0.1
		g $i ip -6 route add default via fd00:$net::1
	done
	# "The internet": the uplink up0, routed IPv6, masqueraded IPv4.
	newns "$P-up"
	h ip link add up0 type veth peer name eth0 netns "$P-up"
	h ip link set up0 up
	h ip addr add 192.0.2.1/24 dev up0
	h ip addr add 2001:db8:99::1/64 dev up0 nodad
	ip -n "$P-up" link set eth0 up
	ip -n "$P-up" addr add 192.0.2.2/24 dev eth0
	ip -n "$P-up" addr add 2001:db8:99::2/64 dev eth0 nodad
	ip -n "$P-up" -6 route add fd00::/16 via 2001:db8:99::1

	h "$FWGEN" -n 3 -N 2 -r 1 -u up0 apply >/dev/null
	sleep 2 # link-local addresses leave DAD

	cat >"$dir/serve.py" <<-'EOF'
	import socket, sys
	s = socket.socket(socket.AF_INET6)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(('::', int(sys.argv[1]))); s.listen(8)
	while True:
	    c, a = s.accept(); c.sendall(b'hi'); c.close()
	EOF
	cat >"$dir/conn.py" <<-'EOF'
	import socket, sys
	s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
	assert s.recv(2) == b'hi'
	EOF
	for port in 22 23 8000; do spawn "$P-g0" python3 "$dir/serve.py" $port; done
	spawn "$P-up" python3 "$dir/serve.py" 80
	sleep 0.5
	conn() { python3 "$dir/conn.py" "$@"; }
	export -f conn; export dir

	expect yes "same network: ping"                     g 2 busybox ping -c1 -W2 10.1.0.2
	expect yes "same network: ping6"                    g 2 busybox ping6 -c1 -W2 fd00:1::ff:fe00:100
	expect yes "same network: tcp/22 (rule; replies via the mark)" g 2 bash -c 'conn 10.1.0.2 22'
	expect yes "same network: tcp/22 over IPv6"        g 2 bash -c 'conn fd00:1::ff:fe00:100 22'
	expect no  "same network: tcp/23 (no rule)"        g 2 bash -c 'conn 10.1.0.2 23'
	expect yes "host: tcp/22"                           h bash -c 'conn 10.1.0.2 22'
	expect no  "host: tcp/23"                           h bash -c 'conn 10.1.0.2 23'
	expect yes "guest pings its gateway"                g 0 busybox ping -c1 -W2 10.1.0.1
	expect no  "other network: ping"                    g 1 busybox ping -c1 -W2 10.1.0.2
	expect no  "other network: tcp/22 (rule without source)" g 1 bash -c 'conn 10.1.0.2 22'
	expect yes "other network: tcp/8000 (rule from 10.0.0.0/8)" g 1 bash -c 'conn 10.1.0.2 8000'
	expect no  "other network: tcp/8000 over IPv6 (rule is IPv4)" \
		g 1 bash -c 'conn fd00:1::ff:fe00:100 8000'
	expect yes "uplink: guest reaches the internet over IPv4 (NAT)" g 0 bash -c 'conn 192.0.2.2 80'
	expect yes "uplink: guest reaches the internet over IPv6" g 0 bash -c 'conn 2001:db8:99::2 80'
	expect yes "uplink: internet -> guest tcp/22 over IPv6 (rule)" \
		ip netns exec "$P-up" bash -c 'conn fd00:1::ff:fe00:100 22'
	expect no  "uplink: internet -> guest tcp/23 over IPv6" \
		ip netns exec "$P-up" bash -c 'conn fd00:1::ff:fe00:100 23'
	h "$FWGEN" -n 3 -N 2 -r 1 apply >/dev/null
	expect no  "no uplink in the state: guest cannot reach the internet" \
		g 0 bash -c 'conn 2001:db8:99::2 80'
	h "$FWGEN" -n 3 -N 2 -r 1 -u up0 apply >/dev/null

	g 2 ip addr add 10.1.0.99/16 dev eth0
	expect no  "spoofed IPv4 source"                    g 2 busybox ping -c1 -W2 -I 10.1.0.99 10.1.0.2
	g 2 ip addr add fd00:1::99/64 dev eth0 nodad
	expect no  "spoofed IPv6 source"                    g 2 busybox ping6 -c1 -W2 -I fd00:1::99 fd00:1::ff:fe00:100
	g 2 ip link set eth0 address 02:00:00:00:01:77
	expect no  "changed MAC"                            g 2 busybox ping -c1 -W2 10.1.0.2
	g 2 ip link set eth0 address 02:00:00:00:01:02
	expect yes "own MAC again"                          g 2 busybox ping -c1 -W2 10.1.0.2

	# Crafted frames from guest 2 (NIC 0x102, 10.1.0.3), counted on the bridge.
	cat >"$dir/frame.py" <<-'EOF'
	import socket, struct, sys
	MY = bytes.fromhex('020000000102'); BC = b'\xff' * 6; MC6 = bytes.fromhex('333300000001')
	LL = 'fe80::ff:fe00:102'
	a6 = lambda s: socket.inet_pton(socket.AF_INET6, s)
	a4 = socket.inet_aton
	def eth(dst, typ, payload): return dst + MY + struct.pack('!H', typ) + payload
	def ip6(src, dst, nh, p): return struct.pack('!IHBB', 0x60000000, len(p), nh, 255) + a6(src) + a6(dst) + p
	def ip4(src, dst, proto, p):
	    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(p), 0, 0, 64, proto, 0, a4(src), a4(dst))
	    c = sum(struct.unpack('!10H', h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
	    return h[:10] + struct.pack('!H', ~c & 0xffff) + h[12:] + p
	def udp(sp, dp): return struct.pack('!HHHH', sp, dp, 28, 0) + b'x' * 20
	def arp(op, spa, tpa): return struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) + MY + a4(spa) + b'\0' * 6 + a4(tpa)
	def nd(t, src, target): return ip6(src, 'ff02::1', 58, bytes([t, 0, 0, 0, 0x20 if t == 136 else 0, 0, 0, 0]) + a6(target))
	frames = {
	    'ra': eth(MC6, 0x86dd, ip6(LL, 'ff02::1', 58, bytes([134, 0, 0, 0, 64, 0, 0, 0]) + b'\0' * 8)),
	    'dhcp-reply': eth(BC, 0x0800, ip4('10.1.0.3', '255.255.255.255', 17, udp(67, 68))),
	    'dhcp6-reply': eth(MC6, 0x86dd, ip6(LL, 'ff02::1', 17, udp(547, 546))),
	    'na-foreign': eth(MC6, 0x86dd, nd(136, LL, 'fd00:1::ff:fe00:100')),
	    'dad-foreign': eth(MC6, 0x86dd, nd(135, '::', 'fd00:1::ff:fe00:100')),
	    'arp-foreign': eth(BC, 0x0806, arp(2, '10.1.0.2', '10.1.0.2')),
	    'vlan': eth(BC, 0x8100, b'\0\x05\x08\x00' + ip4('10.1.0.3', '255.255.255.255', 17, udp(1, 2))),
	    'spoof4': eth(BC, 0x0800, ip4('10.1.0.2', '255.255.255.255', 17, udp(5000, 5001))),
	    'na-own': eth(MC6, 0x86dd, nd(136, LL, 'fd00:1::ff:fe00:102')),
	    'dad-own': eth(MC6, 0x86dd, nd(135, '::', 'fd00:1::ff:fe00:102')),
	    'arp-probe': eth(BC, 0x0806, arp(1, '0.0.0.0', '10.1.0.3')),
	    'arp-own': eth(BC, 0x0806, arp(1, '10.1.0.3', '10.1.0.250')),
	    'udp4-own': eth(BC, 0x0800, ip4('10.1.0.3', '255.255.255.255', 17, udp(5000, 5001))),
	    'dhcp-discover': eth(BC, 0x0800, ip4('0.0.0.0', '255.255.255.255', 17, udp(68, 67))),
	}
	s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0)); s.send(frames[sys.argv[1]])
	EOF
	# What to count for each frame: only that frame, not the guest's own
	# NDP/MLD/ARP chatter.  ICMPv6 type at ip6[40], NDP target's last 4
	# bytes at ip6[60:4]; ARP op at arp[7], sender IP arp[14:4], target arp[24:4].
	declare -A match=(
		[ra]='icmp6 and ip6[40] == 134'
		[dhcp-reply]='udp src port 67'
		[dhcp6-reply]='udp src port 547'
		[na-foreign]='icmp6 and ip6[40] == 136 and ip6[60:4] == 0xfe000100'
		[dad-foreign]='icmp6 and ip6[40] == 135 and ip6[60:4] == 0xfe000100'
		[arp-foreign]='arp and arp[7] == 2 and arp[14:4] == 0x0a010002'
		[vlan]='vlan'
		[spoof4]='udp src port 5000 and src host 10.1.0.2'
		[na-own]='icmp6 and ip6[40] == 136 and ip6[60:4] == 0xfe000102'
		[dad-own]='icmp6 and ip6[40] == 135 and ip6[60:4] == 0xfe000102'
		[arp-probe]='arp and arp[14:4] == 0 and arp[24:4] == 0x0a010003'
		[arp-own]='arp and arp[14:4] == 0x0a010003 and arp[24:4] == 0x0a0100fa'
		[udp4-own]='udp src port 5000 and src host 10.1.0.3'
		[dhcp-discover]='udp src port 68 and dst port 67'
	)
	frame() { # yes|no kind: does the frame reach the bridge?
		local want=$1 kind=$2 tp n got
		h timeout 3 tcpdump -i b000001 -nn -c 1 -w "$dir/$kind.pcap" \
			"ether src 02:00:00:00:01:02 and (${match[$kind]})" 2>"$dir/$kind.err" &
		tp=$!
		for _ in $(seq 50); do grep -q listening "$dir/$kind.err" 2>/dev/null && break; sleep 0.05; done
		g 2 python3 "$dir/frame.py" "$kind"
		wait $tp || true
		n=$(tcpdump -nn -r "$dir/$kind.pcap" 2>/dev/null | wc -l)
		if [ "$n" -gt 0 ]; then got=yes; else got=no; fi
		if [ $got = "$want" ]; then pass "frame $kind reaches the bridge: $want"
		else flunk "frame $kind reaches the bridge: want $want, got $got"; fi
	}
	# FW_CONTROL=1: the same frames without the ruleset must all arrive
	# (checks the frames and the filters, not the firewall).
	local no=no
	if [ "${FW_CONTROL:-}" = 1 ]; then h "$FWGEN" remove; no=yes; fi
	for k in ra dhcp-reply dhcp6-reply na-foreign dad-foreign arp-foreign vlan spoof4; do
		frame $no $k
	done
	for k in na-own dad-own arp-probe arp-own udp4-own dhcp-discover; do frame yes $k; done

	# The host's dnsmasq keeps working through the inbound filter.
	if command -v dnsmasq >/dev/null; then
		spawn "$H" dnsmasq -k --conf-file=/dev/null --interface=b000001 --bind-interfaces \
			--port=0 --dhcp-range=10.1.0.0,static --dhcp-host=02:00:00:00:01:00,10.1.0.2 \
			--dhcp-range=fd00:1::,ra-only --enable-ra --leasefile-ro --pid-file="$dir/dnsmasq.pid" \
			--log-facility=/dev/null
		sleep 1
		expect yes "DHCPv4 lease from the host's dnsmasq" \
			g 0 busybox udhcpc -i eth0 -n -q -f -t 3 -T 1 -s /bin/true
		expect yes "router advertisement from the host's dnsmasq" g 0 rdisc6 -1 -w 2000 eth0
	fi
}

case $MODE in
bench) bench ;;
check)
	check_rules
	check_traffic
	echo "passed $ok, failed $bad"
	[ "$bad" -eq 0 ]
	;;
*) echo "usage: $0 [bench|check]" >&2; exit 2 ;;
esac
