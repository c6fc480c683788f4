#!/usr/bin/env bash
# The metadata service under attack (issue 11 items 12 and 13, issue 12
# §4).  The "guests" are namespaces on a bridge that present registered
# NICs (VMs created with --no-start): the service sees what a guest would
# send, and a test can change a guest's MAC and address at will, which the
# firewall would forbid a real one.
#   - limits come before identification: a flood from an address that is
#     no guest ends in 429, and a flood costs no netlink dump per request;
#   - IMDSv2: Amazon's ec2-metadata, cloud-init's EC2 reader with and
#     without tokens, tokens bound to one VM, expired or forged ones
#     refused, X-Forwarded-For refused, token replies leave with TTL /
#     hop limit 1, metadata_tokens optional | required per VM;
#   - identification is cached but never stale: after a MAC/IP change,
#     a NIC hot-unplug and a VM deletion nobody gets the old VM's data, and
#     a NIC presented on another network's bridge is refused.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create md --ipv6 fd00:e2e:51::/64 --ipv4 10.86.0.0/24 >/dev/null
hc net create other --ipv6 fd00:e2e:52::/64 --ipv4 10.87.0.0/24 >/dev/null
ssh-keygen -q -t ed25519 -N '' -C carol-key -f "$T_DIR/k1" </dev/null >/dev/null
hc key add k1 --file "$T_DIR/k1.pub" >/dev/null
for v in carol dave gina; do
	printf 'user data of %s\n' "$v" >"$T_DIR/ud-$v"
	hc vm create "$v" --image tiny --net md --key k1 --user-data "$T_DIR/ud-$v" --no-start >/dev/null
done
printf 'user data of erin\n' >"$T_DIR/ud-erin"
hc vm create erin --image tiny --net md --key k1 --user-data "$T_DIR/ud-erin" --no-start \
	--metadata-tokens required >/dev/null
hc vm nic add gina md >/dev/null
[ "$(vm_field erin .metadata_tokens)" = required ] || fail "erin was not created with metadata_tokens required"
[ "$(vm_field carol .metadata_tokens)" = optional ] || fail "the default metadata_tokens is not optional"
id_of() { echo "i-$(vm_field "$1" .id)"; }
bridge_of() { hc --json net show "$1" | jq -r .bridge; }

# present NS MAC IPV4/LEN [NET]: a namespace on NET's bridge (md) whose eth0
# has that MAC and address, as a guest's NIC would.  The bridge's end gets
# a MAC above all earlier ones: a bridge takes its ports' lowest MAC, and a
# change of it would leave the other namespaces' gateway entries stale.
PORTS=0
present() {
	local ns=$1 mac=$2 ip=$3 net=${4:-md} gw
	gw=$(sed 's/\.[0-9]*\/.*/.1/' <<<"$ip")
	T_EXTRA_NS+=("$ns")
	ip netns add "$ns"
	PORTS=$((PORTS + 1))
	ip -n "$T_NS" link add "h$ns" address "$(printf 'fe:ff:ff:ff:ff:%02x' "$PORTS")" type veth \
		peer name eth0 netns "$ns"
	ip -n "$T_NS" link set "h$ns" master "$(bridge_of "$net")" up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 address "$mac" up
	ip -n "$ns" addr add "$ip" dev eth0
	ip -n "$ns" route add default via "$gw"
}
# become NS MAC IPV4/LEN: the namespace's NIC takes another identity.
become() {
	local ns=$1 mac=$2 ip=$3
	ip -n "$ns" link set eth0 down
	ip -n "$ns" addr flush dev eth0
	ip -n "$ns" link set eth0 address "$mac" up
	ip -n "$ns" addr add "$ip" dev eth0
	ip -n "$ns" route add default via "$(sed 's/\.[0-9]*\/.*/.1/' <<<"$ip")"
}
# get NS PATH [curl args…]: "STATUS BODY" of a GET from the namespace.
get() {
	local ns=$1 path=$2
	shift 2
	local status
	status=$(ip netns exec "$ns" curl -s --max-time 10 -o "$T_DIR/body" -w '%{http_code}' "$@" \
		"http://169.254.169.254$path") || true
	printf '%s %s\n' "$status" "$(cat "$T_DIR/body" 2>/dev/null)"
	rm -f "$T_DIR/body"
}
token() { # token NS [TTL] → prints the token, or fails
	ip netns exec "$1" curl -sf --max-time 10 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: ${2:-60}" \
		http://169.254.169.254/latest/api/token
}
status_of() { cut -d' ' -f1 <<<"$1"; }

A=hcam$$a; B=hcam$$b; G=hcam$$g; O=hcam$$o
present "$A" "$(vm_field carol '.nics[0].mac')" "$(vm_field carol '.nics[0].ipv4')/24"
present "$B" "$(vm_field dave '.nics[0].mac')" "$(vm_field dave '.nics[0].ipv4')/24"
present "$G" "$(vm_field gina '.nics[1].mac')" "$(vm_field gina '.nics[1].ipv4')/24"

# ---- IMDSv2 -------------------------------------------------------------
out=$(get "$A" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of carol)" ] || fail "carol's plain GET: $out"
ec2=$(ip netns exec "$A" ec2-metadata -i -h -o -d 2>&1) || fail "ec2-metadata failed: $ec2"
grep -qx "instance-id: $(id_of carol)" <<<"$ec2" || fail "ec2-metadata: wrong instance-id: $ec2"
grep -qx "local-hostname: carol" <<<"$ec2" || fail "ec2-metadata: wrong hostname: $ec2"
grep -qx "local-ipv4: $(vm_field carol '.nics[0].ipv4')" <<<"$ec2" || fail "ec2-metadata: wrong address: $ec2"
grep -qx "user-data: user data of carol" <<<"$ec2" || fail "ec2-metadata: wrong user data: $ec2"
ec2=$(ip netns exec "$A" ec2-metadata -u 2>&1) || fail "ec2-metadata -u failed: $ec2"
grep -qF "$(cut -d' ' -f1-2 "$T_DIR/k1.pub")" <<<"$ec2" || fail "ec2-metadata: carol's key missing: $ec2"
ok "Amazon's ec2-metadata gets a token and reads carol's own data with it"

put() { # put NS [header…] → HTTP status of a token request
	local ns=$1
	shift
	ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT "$@" \
		http://169.254.169.254/latest/api/token
}
for ttl in "" 0 21601 -5 abc 1e3 "60 60"; do
	h=()
	[ -n "$ttl" ] && h=(-H "X-aws-ec2-metadata-token-ttl-seconds: $ttl")
	[ "$(put "$A" "${h[@]}")" = 400 ] || fail "a token request with TTL '$ttl' was not refused with 400"
done
[ "$(put "$A" -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600')" = 200 ] || fail "TTL 21600 refused"
[ "$(put "$A" -H 'X-aws-ec2-metadata-token-ttl-seconds: 1')" = 200 ] || fail "TTL 1 refused"
s=$(put "$A" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' -H 'X-Forwarded-For: 10.1.2.3')
[ "$s" = 403 ] || fail "a token request with X-Forwarded-For got $s, not 403"
s=$(ip netns exec "$A" curl -s -o /dev/null -w '%{http_code}' -X PUT \
	-H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/meta-data/)
[ "$s" = 405 ] || fail "a PUT elsewhere than /latest/api/token got $s"
ok "token requests: TTL outside 1..21600 or missing → 400, X-Forwarded-For → 403"

tok_a=$(token "$A") || fail "carol got no token"
tok_b=$(token "$B") || fail "dave got no token"
[ "$(get "$A" /latest/meta-data/instance-id -H "X-aws-ec2-metadata-token: $tok_a")" = "200 $(id_of carol)" ] ||
	fail "carol's own token was not accepted"
out=$(get "$B" /latest/meta-data/instance-id -H "X-aws-ec2-metadata-token: $tok_a")
[ "$(status_of "$out")" = 401 ] || fail "dave using carol's token got: $out"
out=$(get "$A" /latest/user-data -H "X-aws-ec2-metadata-token: $tok_b")
[ "$(status_of "$out")" = 401 ] || fail "carol using dave's token got: $out"
forged=$(printf '%s' "$tok_a" | sed 's/^./A/; s/^AA/BA/')   # one character changed
[ "$forged" != "$tok_a" ] || fail "the test did not change the token"
for bad in "$forged" "${tok_a}A" "${tok_a:1}" "not-a-token" "$(head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d =)"; do
	out=$(get "$A" /latest/meta-data/instance-id -H "X-aws-ec2-metadata-token: $bad")
	[ "$(status_of "$out")" = 401 ] || fail "a forged token ($bad) got: $out"
done
short=$(token "$A" 1) || fail "no 1-second token"
sleep 2.5
out=$(get "$A" /latest/meta-data/instance-id -H "X-aws-ec2-metadata-token: $short")
[ "$(status_of "$out")" = 401 ] || fail "an expired token got: $out"
out=$(get "$A" /openstack/latest/meta_data.json -H "X-aws-ec2-metadata-token: $forged")
[ "$(status_of "$out")" = 401 ] || fail "a forged token on the OpenStack tree got: $out"
ok "tokens: another VM's, forged, truncated, random and expired ones → 401"

# metadata_tokens required: every path but the token PUT needs a token.
E=hcam$$e
present "$E" "$(vm_field erin '.nics[0].mac')" "$(vm_field erin '.nics[0].ipv4')/24"
for p in /latest/meta-data/instance-id /latest/user-data /openstack/latest/meta_data.json /; do
	out=$(get "$E" "$p")
	[ "$(status_of "$out")" = 401 ] || fail "erin (tokens required) without a token, $p: $out"
done
tok_e=$(token "$E") || fail "erin got no token"
[ "$(get "$E" /latest/meta-data/instance-id -H "X-aws-ec2-metadata-token: $tok_e")" = "200 $(id_of erin)" ] ||
	fail "erin with her token was refused"
out=$(get "$E" /openstack/latest/meta_data.json -H "X-aws-ec2-metadata-token: $tok_e")
[ "$(status_of "$out")" = 200 ] && grep -q '"name":"erin"' <<<"$out" || fail "erin's OpenStack tree with a token: $out"
ec2=$(ip netns exec "$E" ec2-metadata -i 2>&1) || fail "ec2-metadata (required) failed: $ec2"
grep -qx "instance-id: $(id_of erin)" <<<"$ec2" || fail "ec2-metadata (required): $ec2"
hc vm set erin --metadata-tokens optional >/dev/null
[ "$(get "$E" /latest/meta-data/instance-id)" = "200 $(id_of erin)" ] || fail "erin set to optional still needs a token"
hc vm set erin --metadata-tokens required >/dev/null
[ "$(status_of "$(get "$E" /latest/meta-data/instance-id)")" = 401 ] || fail "erin set back to required answers plain GETs"
api PATCH "/v1/vms/erin" '{"metadata_tokens":"sometimes"}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "PATCH with metadata_tokens 'sometimes' got $API_STATUS"
api PATCH "/v1/vms/erin" '{"name":"x"}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "PATCH of another field got $API_STATUS"
api POST /v1/vms '{"name":"z","image":"tiny","metadata_tokens":1,"start":false}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "POST with metadata_tokens 1 got $API_STATUS"
ok "metadata_tokens required: 401 without a token on both trees, 200 with one; hc vm set switches it"

# cloud-init's readers, unpacked from Debian's package (not installed).
( cd "$T_DIR" && apt-get download cloud-init >/dev/null 2>&1 ) || fail "cannot download Debian's cloud-init package"
dpkg-deb -x "$T_DIR"/cloud-init_*.deb "$T_DIR/cloud-init"
ci() { # ci NS MODE
	ip netns exec "$1" env PYTHONPATH="$T_DIR/cloud-init/usr/lib/python3/dist-packages" \
		/usr/bin/python3 "$(dirname "$0")/cloudinit_read.py" "$2" 2>>"$T_DIR/ci.err" ||
		fail "cloud-init's reader ($2) failed: $(tail -5 "$T_DIR/ci.err")"
}
for ns_vm in "$A carol" "$E erin"; do
	read -r ns vm <<<"$ns_vm"
	out=$(ci "$ns" imdsv2)
	jq -e --arg id "$(id_of "$vm")" --arg ud "user data of $vm" \
		'.token and .ec2["instance-id"] == $id and .ec2_user_data == ($ud + "\n")' <<<"$out" >/dev/null ||
		fail "cloud-init's EC2 reader with IMDSv2 read something else for $vm: $out"
done
out=$(ci "$A" plain)
jq -e --arg id "$(id_of carol)" '.ec2["instance-id"] == $id and .os_name == "carol"' <<<"$out" >/dev/null ||
	fail "cloud-init's plain readers on carol (optional): $out"
out=$(ci "$E" plain)
jq -e '.ec2["instance-id"] == null and (.ec2_user_data // "") == "" and .os_error != null and .os_name == null' \
	<<<"$out" >/dev/null || fail "cloud-init's plain readers on erin (required) got data: $out"
ok "cloud-init's EC2 reader: tokens in both modes; without tokens only where optional"

# The hop limit of token replies, as the guest receives them: the data
# segments of a token reply arrive with TTL / hop limit 1, those of a plain
# GET with the usual 64.
capture() { # capture NS FILE: start tcpdump (CAP_PID), wait until it listens
	ip netns exec "$1" tcpdump -n -v -l -i eth0 'tcp and src port 80' >"$2" 2>"$2.err" &
	CAP_PID=$!
	T_ON_EXIT+=("kill $CAP_PID 2>/dev/null")
	for _ in $(seq 1 50); do grep -q listening "$2.err" && return 0; sleep 0.1; done
	fail "tcpdump did not start: $(cat "$2.err")"
}
# Each packet of tcpdump -v is a header line (IP …, ttl/hlim N) and a line
# with its addresses and flags.  ttls FILE: "CLIENT-PORT TTL" of each
# segment that carries data (flag P), in order.
ttls() {
	awk '/^[0-9:.]+ IP6? \(/ { match($0, /(ttl|hlim) [0-9]+/); t = substr($0, RSTART, RLENGTH); sub(/.* /, "", t) }
	     /Flags \[P/ { match($0, /> [^ ]*:/); d = substr($0, RSTART + 2, RLENGTH - 3); sub(/.*\./, "", d); print d, t }' "$1"
}
# two_replies FILE WHAT: the capture holds two connections; the first (a
# token request) arrived with TTL / hop limit 1, the second with 64.
two_replies() {
	local ports
	ttls "$1" >"$1.ttl"
	ports=($(awk '!seen[$1]++ { print $1 }' "$1.ttl"))
	[ ${#ports[@]} = 2 ] || fail "$2: expected two connections in the capture: $(cat "$1")"
	[ "$(awk -v p="${ports[0]}" '$1 == p { print $2 }' "$1.ttl" | sort -u)" = 1 ] ||
		fail "$2: the token reply did not arrive with TTL/hop limit 1: $(cat "$1.ttl")"
	[ "$(awk -v p="${ports[1]}" '$1 == p { print $2 }' "$1.ttl" | sort -u)" = 64 ] ||
		fail "$2: the other reply did not arrive with TTL/hop limit 64: $(cat "$1.ttl")"
}
capture "$A" "$T_DIR/cap4"
token "$A" >/dev/null || fail "no token during the capture"
get "$A" /latest/meta-data/hostname >/dev/null
sleep 1
kill "$CAP_PID"; wait "$CAP_PID" 2>/dev/null || true
two_replies "$T_DIR/cap4" IPv4
# Over IPv6 (the bridge's link-local address), then the token over IPv4.
capture "$A" "$T_DIR/cap6"
tok6=$(ip netns exec "$A" curl -sf --max-time 10 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
	'http://[fe80::a9fe:a9fe%eth0]/latest/api/token') || fail "no token over IPv6"
out=$(ip netns exec "$A" curl -s --max-time 10 -H "X-aws-ec2-metadata-token: $tok6" \
	'http://169.254.169.254/latest/meta-data/instance-id')
[ "$out" = "$(id_of carol)" ] || fail "a token fetched over IPv6 does not work over IPv4: $out"
sleep 1
kill "$CAP_PID"; wait "$CAP_PID" 2>/dev/null || true
grep -q '^[0-9:.]* IP6 (.*hlim 1,' "$T_DIR/cap6" || fail "no IPv6 segment with hop limit 1: $(cat "$T_DIR/cap6")"
two_replies "$T_DIR/cap6" IPv6
ok "token replies arrive with IPv4 TTL 1 and IPv6 hop limit 1; other replies with 64"

# ---- identification: cached, never stale ----------------------------------
out=$(get "$B" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of dave)" ] || fail "dave: $out"
# carol's namespace becomes dave's NIC (MAC and address); dave's goes away.
ip netns del "$B"
sleep 1
become "$A" "$(vm_field dave '.nics[0].mac')" "$(vm_field dave '.nics[0].ipv4')/24"
out=$(get "$A" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of dave)" ] || fail "after taking dave's MAC and address the namespace got: $out"
# Back to carol's MAC and address: carol's data again, never dave's.
become "$A" "$(vm_field carol '.nics[0].mac')" "$(vm_field carol '.nics[0].ipv4')/24"
out=$(get "$A" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of carol)" ] || fail "back with carol's MAC and address: $out"
# The MAC alone changes, the link staying up and the address the same:
# no link or route changes on the host, only its neighbour entry follows
# (here: flushed, then resolved anew) — and the answer with it.
ip -n "$A" link set dev eth0 address "$(vm_field dave '.nics[0].mac')"
ip -n "$T_NS" neigh flush dev "$(bridge_of md)" to "$(vm_field carol '.nics[0].ipv4')"
out=$(get "$A" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of dave)" ] || fail "with dave's MAC on carol's address the namespace got: $out"
# An unregistered MAC on carol's address.
ip -n "$A" link set dev eth0 address 02:00:7f:ff:ff:f0
ip -n "$T_NS" neigh flush dev "$(bridge_of md)" to "$(vm_field carol '.nics[0].ipv4')"
out=$(get "$A" /latest/meta-data/instance-id)
[ "$(status_of "$out")" = 403 ] || fail "an unregistered MAC on carol's address got: $out"
ok "after MAC and address changes the answer follows the kernel's neighbour entry, never the old VM"

out=$(get "$G" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of gina)" ] || fail "gina's second NIC: $out"
hc vm nic remove gina "$(vm_field gina '.nics[1].mac')" >/dev/null
out=$(get "$G" /latest/meta-data/instance-id)
[ "$(status_of "$out")" = 403 ] || fail "after hot-unplug, gina's old NIC got: $out"
ok "after a NIC is unplugged its MAC gets 403 at once"

become "$A" "$(vm_field carol '.nics[0].mac')" "$(vm_field carol '.nics[0].ipv4')/24"
out=$(get "$A" /latest/meta-data/instance-id)
[ "$out" = "200 $(id_of carol)" ] || fail "carol again: $out"
hc vm delete carol >/dev/null
out=$(get "$A" /latest/meta-data/instance-id)
[ "$(status_of "$out")" = 403 ] || fail "a deleted VM's NIC got: $out"
ok "a deleted VM's NIC gets 403 at once"

# dave's MAC on the other network's bridge, with an address of that network.
present "$O" "$(vm_field dave '.nics[0].mac')" 10.87.0.50/24 other
out=$(get "$O" /latest/meta-data/instance-id)
[ "$(status_of "$out")" = 403 ] || fail "dave's MAC on another network's bridge got: $out"
ok "a NIC presented on another network's bridge is refused"

# ---- limits before identification ------------------------------------------
hcd_stop
# No periodic pass during the floods: only the metadata service talks netlink.
hcd_start --metadata-rate=5 --resync-interval=3600
flood() { # flood NS N: the statuses of N quick GETs, counted
	ip netns exec "$1" bash -c 'for i in $(seq 1 '"$2"'); do
		curl -s -o /dev/null -w "%{http_code}\n" --max-time 5 http://169.254.169.254/latest/meta-data/hostname
	done' | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'
}
U=hcam$$u
present "$U" 02:00:7f:ff:ff:f1 10.86.0.201/24
out=$(flood "$U" 60)
[[ "$out" == *"429:"* ]] || fail "a flood from an address that is no guest was never limited: $out"
ok "a flood from a non-guest is limited before it is identified ($out)"

# A guest's flood: no netlink dump per request, at most one lookup.
present "$B" "$(vm_field dave '.nics[0].mac')" "$(vm_field dave '.nics[0].ipv4')/24"
ip netns exec "$T_NS" strace -qq -f -e trace=socket,sendto,sendmsg -o "$T_DIR/strace" -p "$HCD_PID" &
spid=$!
T_ON_EXIT+=("kill $spid 2>/dev/null")
sleep 1
out=$(flood "$B" 60)
kill -INT "$spid"; wait "$spid" 2>/dev/null || true
[[ "$out" == *"200:"* && "$out" == *"429:"* ]] || fail "dave's flood: $out"
dumps=$(grep 'RTM_GETNEIGH' "$T_DIR/strace" | grep -c 'NLM_F_DUMP' || true)
lookups=$(grep -c 'RTM_GETNEIGH' "$T_DIR/strace" || true)
[ "$dumps" = 0 ] || fail "a flood of 60 requests made $dumps dumps of the neighbour table"
# At least the first request asks (which also shows strace decoded the
# messages); neighbour state changes may cause a few more, never one per
# request.
[ "$lookups" -ge 1 ] && [ "$lookups" -le 5 ] ||
	fail "a flood of 60 requests looked up the neighbour $lookups times"
ok "a guest's flood ($out) made no netlink dump and $lookups neighbour lookups"
