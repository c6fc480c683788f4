#!/usr/bin/env bash
# Tenant against tenant (issue 11, items 2, 4, 11, 12), tried as an
# attacker with a member account would:
#   - names: a member with a lower user ID owns tiny, office and laptop; a
#     non-root admin with the same names gets its own image, network and
#     key by name, alice's only as alice/NAME — which another member never
#     reaches;
#   - networks: a member's prefix must come from the tenant pool, nobody's
#     may overlap a route or address of the host, a prefix left out is
#     allocated around both; without pools, the installation's ULA /48;
#   - quotas: set by an admin, enforced with a 403 naming the quota, listed
#     by `hc user show`; defaults from hcd.conf bind members, not admins;
#   - dnsmasq's hosts files (every tenant's names and addresses) are not
#     readable by other local users;
#   - durability: hcd killed with SIGKILL right after it answered a revoke,
#     a disable, a delete and a create keeps each of them after a restart.
# No guest boots (--no-start).
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || fail "setpriv is needed (util-linux)"
POOL6=fd00:7e::/48
POOL4=10.66.0.0/16
HCD_ARGS=("--tenant-ipv6-pool=$POOL6" "--tenant-ipv4-pool=$POOL4" --default-quota-vcpus=4)
hcd_start "${HCD_ARGS[@]}"

mkuser() { # mkuser NAME [ROLE]
	printf '%s-password\n' "$1" | hc user create "$1" --role "${2:-member}" --auth file \
		--password-stdin >/dev/null || fail "user create $1"
}
login() {
	api POST /v1/login "{\"user\": \"$1\", \"password\": \"$1-password\"}" >"$T_DIR/login"
	[ "$API_STATUS" = 200 ] || fail "login $1: $API_STATUS $(cat "$T_DIR/login")"
	jq -r .token "$T_DIR/login"
}
as() { local t=$1; shift; HC_TOKEN=$t "$HC_BIN" "$@"; }
# expect_api TOKEN STATUS CODE METHOD PATH [BODY]: the answer, as that user.
expect_api() {
	local t=$1 st=$2 code=$3
	shift 3
	API_TOKEN=$t api "$@" >"$T_DIR/resp"
	[ "$API_STATUS" = "$st" ] || fail "$*: $API_STATUS (want $st) $(cat "$T_DIR/resp")"
	[ "$code" = - ] || jq -e --arg c "$code" '.error.code == $c' "$T_DIR/resp" >/dev/null ||
		fail "$*: $(cat "$T_DIR/resp") (want $code)"
}

mkuser alice
mkuser adm admin
mkuser bob
TA=$(login alice)
TD=$(login adm)
TB=$(login bob)
[[ "$(as "$TA" --json whoami | jq -r .id)" < "$(as "$TD" --json whoami | jq -r .id)" ]] ||
	fail "alice's user ID must be below the admin's for this test to mean anything"

# ---- 1. names are the caller's own, also for admins ---------------------------
ssh-keygen -q -t ed25519 -N '' -C alice -f "$T_DIR/alice" && ssh-keygen -q -t ed25519 -N '' -C adm -f "$T_DIR/adm" ||
	fail "ssh-keygen"
(export HC_TOKEN=$TA; import_tiny tiny) || fail "alice: image import"
as "$TA" net create office >/dev/null || fail "alice: net create (allocated)"
as "$TA" key add laptop --file "$T_DIR/alice.pub" >/dev/null || fail "alice: key add"
(export HC_TOKEN=$TD; import_tiny tiny) || fail "adm: image import"
as "$TD" net create office --ipv6 fd00:ad::/64 >/dev/null || fail "adm: net create"
as "$TD" key add laptop --file "$T_DIR/adm.pub" >/dev/null || fail "adm: key add"
a_img=$(as "$TA" --json image show tiny | jq -r .id)
a_net=$(as "$TA" --json net show office | jq -r .id)
a_fp=$(as "$TA" --json key show laptop | jq -r .fingerprint)
d_img=$(as "$TD" --json image show tiny | jq -r .id)
d_net=$(as "$TD" --json net show office | jq -r .id)
d_fp=$(as "$TD" --json key show laptop | jq -r .fingerprint)
[ "$a_img" != "$d_img" ] && [ "$a_net" != "$d_net" ] && [ "$a_fp" != "$d_fp" ] || fail "setup: same resources"

as "$TD" --json vm create v1 --image tiny --net office --key laptop --no-start >"$T_DIR/v1" ||
	fail "adm: vm create by name"
[ "$(jq -r .image_id "$T_DIR/v1")" = "$d_img" ] || fail "adm's VM boots image $(jq -r .image_id "$T_DIR/v1"), not its own $d_img"
[ "$(jq -r '.nics[0].network_id' "$T_DIR/v1")" = "$d_net" ] || fail "adm's VM joined network $(jq -r '.nics[0].network_id' "$T_DIR/v1"), not its own $d_net"
[ "$(jq -r '.keys | map(.fingerprint) | join(",")' "$T_DIR/v1")" = "$d_fp" ] || fail "adm's VM trusts $(jq -c .keys "$T_DIR/v1"), not its own key"
ok "an admin's --image tiny --net office --key laptop are its own, not those of alice (lower user ID)"

[ "$(as "$TD" --json net show alice/office | jq -r .id)" = "$a_net" ] || fail "adm: alice/office"
as "$TD" --json vm create v2 --image alice/tiny --net alice/office --key alice/laptop --no-start >"$T_DIR/v2" ||
	fail "adm: vm create with alice/NAME references"
[ "$(jq -r '[.image_id, .nics[0].network_id, .keys[0].fingerprint] | join(" ")' "$T_DIR/v2")" = "$a_img $a_net $a_fp" ] ||
	fail "adm's alice/NAME references: $(cat "$T_DIR/v2")"
if as "$TB" net show alice/office 2>"$T_DIR/err"; then fail "bob reached alice/office"; fi
grep -q "not found" "$T_DIR/err" || fail "bob's alice/office: $(cat "$T_DIR/err")"
expect_api "$TB" 404 not_found GET "/v1/networks/office?owner=alice"
expect_api "$TB" 404 not_found GET "/v1/networks/$a_net"
expect_api "$TB" 404 not_found POST /v1/vms '{"name": "x", "image": "alice/tiny", "start": false}'
expect_api "$TB" 404 not_found POST /v1/vms '{"name": "x", "image": "tiny", "start": false}'
# Root (the socket's admin) has no office of its own: no fallback to anybody's.
expect_api "" 404 not_found GET /v1/networks/office
expect_api "" 200 - GET "/v1/networks/office?owner=adm"
[ "$(jq -r .id "$T_DIR/resp")" = "$d_net" ] || fail "root: office?owner=adm"
ok "alice/office reaches alice's for an admin, 404 for bob (name, ?owner=, ID); root has no fallback"

# ---- 4. network prefixes: pools and the host's routes -------------------------
expect_api "$TA" 403 forbidden POST /v1/networks '{"name": "mine", "ipv6": "fd00:99::/64"}'
expect_api "$TA" 403 forbidden POST /v1/networks '{"name": "mine", "ipv4": "10.88.1.0/24"}'
jq -r .error.message "$T_DIR/resp" | grep -q "tenant pool" || fail "403 message: $(cat "$T_DIR/resp")"
# The host's LAN, its addresses, a route of it: inside the pool, still not for anyone.
nsexec ip link add hcdummy0 type veth peer name hcdummy1
nsexec ip link set hcdummy0 up; nsexec ip link set hcdummy1 up
nsexec ip addr add 10.66.1.1/24 dev hcdummy0
nsexec ip -6 addr add fd00:7e:0:5::1/64 dev hcdummy0 nodad
nsexec ip route add 10.66.8.0/22 dev hcdummy0
nsexec ip route add 10.55.0.0/16 dev hcdummy0
expect_api "$TA" 409 conflict POST /v1/networks '{"name": "lan", "ipv4": "10.66.1.0/24"}'
jq -r .error.message "$T_DIR/resp" | grep -q "host" || fail "409 message: $(cat "$T_DIR/resp")"
expect_api "$TA" 409 conflict POST /v1/networks '{"name": "lan", "ipv6": "fd00:7e:0:5::/64"}'
expect_api "$TA" 409 conflict POST /v1/networks '{"name": "lan", "ipv4": "10.66.9.0/24"}'
expect_api "$TD" 409 conflict POST /v1/networks '{"name": "lan", "ipv6": "fd00:ad:1::/64", "ipv4": "10.55.3.0/24"}'
expect_api "$TD" 201 - POST /v1/networks '{"name": "lan", "ipv6": "fd00:ad:1::/64", "ipv4": "10.44.0.0/24"}'
# Left out: allocated inside the pools, around networks and the host.
expect_api "$TA" 201 - POST /v1/networks '{"name": "lan", "ipv4": "auto"}'
v6=$(jq -r .ipv6 "$T_DIR/resp") v4=$(jq -r .ipv4 "$T_DIR/resp")
[ "$v4" = 10.66.0.0/24 ] || fail "first free /24: $v4"
a_office6=$(as "$TA" --json net show office | jq -r .ipv6)
[ "$a_office6" = fd00:7e::/64 ] && [ "$v6" = fd00:7e:0:1::/64 ] || fail "allocated /64s: $a_office6, $v6"
expect_api "$TA" 201 - POST /v1/networks '{"name": "lan2", "ipv4": "auto"}'
[ "$(jq -r .ipv4 "$T_DIR/resp")" = 10.66.2.0/24 ] || fail "next /24 skips the host's 10.66.1.0/24: $(cat "$T_DIR/resp")"
expect_api "$TA" 201 - POST /v1/networks '{"name": "lan3", "ipv6": "fd00:7e:0:6::/64"}'
ok "members' prefixes come from the pools; nobody's overlaps the host's routes or addresses; allocation skips both"

# ---- 12. dnsmasq's files are not for other local users --------------------------
hosts_file=$T_STATE/net/$d_net/dns-hosts
for _ in $(seq 1 100); do [ -s "$hosts_file" ] && break; sleep 0.1; done
grep -q v1 "$hosts_file" || fail "dns-hosts of adm's office lacks v1: $(cat "$hosts_file" 2>&1)"
for f in dns-hosts dhcp-hosts; do
	[ "$(stat -c '%a %U' "$T_STATE/net/$d_net/$f")" = "600 dnsmasq" ] ||
		fail "$f: $(stat -c '%a %U:%G' "$T_STATE/net/$d_net/$f")"
done
[ "$(stat -c '%a %U' "$T_STATE/net/$d_net/dnsmasq.conf")" = "600 root" ] ||
	fail "dnsmasq.conf: $(stat -c '%a %U' "$T_STATE/net/$d_net/dnsmasq.conf")"
for f in dns-hosts dhcp-hosts dnsmasq.conf; do
	if setpriv --reuid=65534 --regid=65534 --clear-groups cat "$T_STATE/net/$d_net/$f" >/dev/null 2>&1; then
		fail "user nobody can read $f"
	fi
done
# dnsmasq's own lease file (MACs, addresses, guests' host names) too.
lan_id=$(as "$TA" --json net show lan | jq -r .id)
for _ in $(seq 1 100); do [ -e "$T_STATE/net/$lan_id/leases" ] && break; sleep 0.1; done
[ -e "$T_STATE/net/$lan_id/leases" ] || fail "no lease file for $lan_id"
if setpriv --reuid=65534 --regid=65534 --clear-groups cat "$T_STATE/net/$lan_id/leases" >/dev/null 2>&1; then
	fail "user nobody can read the lease file ($(stat -c '%a %U' "$T_STATE/net/$lan_id/leases"))"
fi
ok "dns-hosts and dhcp-hosts are 0600 dnsmasq, dnsmasq.conf 0600 root; nobody reads them or the leases"

# ---- 12. quotas ------------------------------------------------------------------
hc user set bob --quota-vms 1 --quota-networks 1 --quota-disk 100M >/dev/null || fail "hc user set --quota-*"
(export HC_TOKEN=$TB; import_tiny bimg) || fail "bob: image import"
as "$TB" vm create b1 --image bimg --no-start >/dev/null || fail "bob: first VM"
if as "$TB" vm create b2 --image bimg --no-start 2>"$T_DIR/err"; then fail "bob's second VM passed quota vms 1"; fi
grep -q "quota 'vms'" "$T_DIR/err" || fail "refusal: $(cat "$T_DIR/err")"
expect_api "$TB" 403 quota_exceeded POST /v1/vms '{"name": "b2", "image": "bimg", "start": false}'
as "$TB" net create n1 >/dev/null || fail "bob: first network"
expect_api "$TB" 403 quota_exceeded POST /v1/networks '{"name": "n2"}'
jq -r .error.message "$T_DIR/resp" | grep -q "quota 'networks' of user bob" || fail "message: $(cat "$T_DIR/resp")"
hc user set bob --quota-vms unlimited >/dev/null || fail "quota-vms unlimited"
expect_api "$TB" 403 quota_exceeded POST /v1/vms '{"name": "b2", "image": "bimg", "start": false, "disks": [{"size": 209715200}]}'
jq -r .error.message "$T_DIR/resp" | grep -q "'disk_bytes'" || fail "message: $(cat "$T_DIR/resp")"
# hcd.conf's default (vcpus 4) binds members, not admins.
expect_api "$TB" 403 quota_exceeded POST /v1/vms '{"name": "b3", "image": "bimg", "start": false, "cpus": 5}'
jq -r .error.message "$T_DIR/resp" | grep -q "'vcpus'" || fail "message: $(cat "$T_DIR/resp")"
expect_api "$TD" 201 - POST /v1/vms '{"name": "d3", "image": "tiny", "start": false, "cpus": 5}'
as "$TB" user show bob >"$T_DIR/show" || fail "bob: hc user show bob"
grep -Eq '^vms +1 +unlimited' "$T_DIR/show" || fail "user show: $(cat "$T_DIR/show")"
grep -Eq '^networks +1 +1$' "$T_DIR/show" || fail "user show: $(cat "$T_DIR/show")"
grep -Eq '^vcpus +1 +4 \(default\)$' "$T_DIR/show" || fail "user show: $(cat "$T_DIR/show")"
[ "$(as "$TB" --json user show bob | jq -r '.quota.disk_bytes.limit')" = 104857600 ] || fail "--json quota"
if as "$TB" user show alice >/dev/null 2>&1; then fail "bob sees alice's quotas"; fi
expect_api "$TB" 403 forbidden PATCH /v1/users/bob/quota '{"vms": 100}'
expect_api "" 400 bad_request PATCH /v1/users/bob/quota '{"vms": -5}'
expect_api "" 400 bad_request PATCH /v1/users/bob/quota '{"cpus": 5}'
ok "quotas: 403 quota_exceeded naming vms, networks, disk_bytes, vcpus (the default); hc user show lists usage"

# ---- 11. what was answered survives SIGKILL -------------------------------------
db() { sqlite3 "$T_STATE/hackcloud.db" "$1"; }
restart() { hcd_kill9; hcd_start "${HCD_ARGS[@]}"; }
tb_id=$(as "$TB" --json token list | jq -r '.[] | select(.current) | .id')
api DELETE "/v1/tokens/$tb_id" >/dev/null; s=$API_STATUS; hcd_kill9
[ "$s" = 200 ] || fail "revoke: $s"
[ "$(db "SELECT COUNT(*) FROM tokens WHERE id = $((16#$tb_id))")" = 0 ] || fail "the revoked token's row is back"
hcd_start "${HCD_ARGS[@]}"
expect_api "$TB" 401 - GET /v1/whoami
api PATCH /v1/users/alice '{"enabled": false}' >/dev/null; s=$API_STATUS; hcd_kill9
[ "$s" = 200 ] || fail "disable: $s"
[ "$(db "SELECT enabled FROM users WHERE name = 'alice'")" = 0 ] || fail "alice is enabled again"
hcd_start "${HCD_ARGS[@]}"
expect_api "$TA" 401 - GET /v1/whoami
v2=$(jq -r .id "$T_DIR/v2")
api DELETE "/v1/vms/$v2" >/dev/null; s=$API_STATUS; hcd_kill9
[ "$s" = 202 ] || fail "vm delete: $s"
[ "$(db "SELECT COUNT(*) FROM vms WHERE id = $((16#$v2)) AND desired <> 'deleted'")" = 0 ] ||
	fail "the deleted VM is back"
hcd_start "${HCD_ARGS[@]}"
expect_api "" 404 not_found GET "/v1/vms/$v2"
api POST /v1/networks '{"name": "durable", "ipv6": "fd00:d0:1::/64"}' >"$T_DIR/resp"; s=$API_STATUS; hcd_kill9
[ "$s" = 201 ] || fail "net create: $s $(cat "$T_DIR/resp")"
[ "$(db "SELECT ipv6 FROM networks WHERE name = 'durable'")" = fd00:d0:1::/64 ] || fail "the network is gone"
hcd_start "${HCD_ARGS[@]}"
expect_api "" 200 - GET /v1/networks/durable
ok "a revoke, a disable, a delete and a create answered just before SIGKILL are all there after a restart"

# ---- 4. without pools: the installation's ULA /48 -------------------------------
hcd_stop
hcd_start
api PATCH /v1/users/alice '{"enabled": true}' >/dev/null
TA=$(login alice)
expect_api "$TA" 201 - POST /v1/networks '{"name": "ula1"}'
u1=$(jq -r .ipv6 "$T_DIR/resp")
ula=$(db "SELECT value FROM settings WHERE name = 'ula_prefix'")
[[ $ula =~ ^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::/48$ ]] || fail "ULA prefix: $ula"
[ "$u1" = "${ula%::/48}::/64" ] || fail "first ULA /64: $u1 (ULA $ula)"
expect_api "$TA" 403 forbidden POST /v1/networks '{"name": "ula2", "ipv6": "fd00:7e:0:9::/64"}'
expect_api "$TA" 403 forbidden POST /v1/networks '{"name": "ula2", "ipv4": "10.66.40.0/24"}'
expect_api "$TA" 409 exhausted POST /v1/networks '{"name": "ula2", "ipv4": "auto"}'
ok "without pools members get /64s of the installation's random ULA /48 ($ula) and no IPv4"
