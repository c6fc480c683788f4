#!/usr/bin/env bash
# Bad input gets a clean 4xx JSON error, hcd keeps serving, and the store
# is byte-for-byte unchanged: malformed JSON, a 10 MiB body, invalid
# names, unknown references, duplicates, deleting twice, wrong methods.
. "$(dirname "$0")/lib.sh"

hcd_start
import_tiny tiny
hc net create lan --ipv6 fd00:e2e:3::/64 --ipv4 10.78.0.0/24 >/dev/null
hc vm create keep --image tiny --net lan --no-start >/dev/null

# Heartbeats move hosts.last_seen; everything else must stay.
# The audit trail records refused requests too, by design (issue 15), and
# events follow heartbeats: neither is a change the refusals made.
dump() { sqlite3 "$T_STATE/hackcloud.db" .dump | grep -vE "^INSERT INTO (hosts|audit|events) "; }
before=$(dump)

# expect STATUS METHOD PATH [BODY]: the answer is that status with a JSON error.
expect() {
	local want=$1; shift
	local body
	api "$@" >"$T_DIR/body"
	body=$(cat "$T_DIR/body")
	[ "$API_STATUS" = "$want" ] || fail "$1 $2: status $API_STATUS, wanted $want (body: ${body:0:200})"
	echo "$body" | jq -e '.error.code and .error.message' >/dev/null ||
		fail "$1 $2: not a JSON error: ${body:0:200}"
	curl -sf --unix-socket "$T_STATE/api.sock" http://hc/v1/info >/dev/null || fail "hcd stopped serving after $1 $2"
}

expect 400 POST /v1/vms '{"name": "x", "image": '
expect 400 POST /v1/vms '[1, 2, 3]'
expect 400 POST /v1/vms 'not json at all'
expect 400 POST /v1/vms '{"name": "dup", "name": "dup2", "image": "tiny"}'
big=$T_DIR/big.json
{ printf '{"name": "big", "image": "tiny", "pad": "'; head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } >"$big"
code=$(curl -s -o "$T_DIR/big.out" -w '%{http_code}' --unix-socket "$T_STATE/api.sock" \
	-H 'Content-Type: application/json' --data-binary @"$big" http://hc/v1/vms)
[ "$code" = 413 ] || fail "10 MiB body: status $code, wanted 413"
jq -e .error.code "$T_DIR/big.out" >/dev/null || fail "10 MiB body: not a JSON error"
# The same body without a Content-Length (chunked) must be cut off too.
code=$(curl -s -o "$T_DIR/big.out" -w '%{http_code}' --unix-socket "$T_STATE/api.sock" \
	-H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @"$big" http://hc/v1/vms)
[ "$code" = 413 ] || fail "10 MiB chunked body: status $code, wanted 413"
ok "malformed and oversized bodies refused"

expect 400 POST /v1/vms '{"name": "Bad_Name", "image": "tiny"}'
expect 400 POST /v1/vms '{"name": "-lead", "image": "tiny"}'
expect 400 POST /v1/vms '{"name": "'"$(printf 'a%.0s' $(seq 1 64))"'", "image": "tiny"}'
expect 400 POST /v1/vms '{"name": "000000abcd", "image": "tiny"}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "cpus": 0}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "cpus": "two"}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "memory_mib": 99999999}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "colour": "blue"}'
expect 400 POST /v1/networks '{"name": "n2", "ipv6": "fd00::/48"}'
expect 400 POST /v1/networks '{"name": "n2", "ipv6": "fd00:1::/64", "ipv4": "10.0.0.1/24"}'
expect 400 POST /v1/images '{"name": "img", "boot": "floppy"}'
# Verbs that take no fields refuse one, as every route refuses unknown members.
expect 400 POST /v1/vms/keep/start '{"force": true}'
expect 400 POST /v1/vms/keep/stop '{"now": 1}'
expect 400 POST /v1/logout '{"all": true}'
# Bandwidth limits, quotas and usage (issue 13).
mac=$(vm_field keep '.nics[0].mac')
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "limit": {"in": {"rate": 0}}}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "limit": {"up": null}}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "networks": [{"network": "lan", "speed": 1}]}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "networks": ["lan"], "limit": {"in": {"rate": 1000000, "burst": 1}}}'
expect 400 POST /v1/networks '{"name": "n3", "ipv6": "fd00:3::/64", "limit": {"out": {"rate": "fast"}}}'
expect 400 PATCH "/v1/vms/keep/nics/$mac" '{"limit": {"in": {"rate": 999999999999999}}}'
expect 400 PATCH "/v1/vms/keep/nics/$mac" '{"limit": [1]}'
expect 400 PATCH "/v1/vms/keep/nics/$mac" '{}'
expect 400 PATCH /v1/vms/keep/nics/eth0 '{"limit": null}'
expect 400 POST /v1/vms/keep/nics '{"network": "lan", "limit": {"in": {"rate": 0}}}'
expect 400 POST /v1/vms/keep/nics '{"network": "lan", "limit": {"up": null}}'
expect 400 POST /v1/vms/keep/nics '{"network": "lan", "limit": [1]}'
expect 400 POST /v1/vms/keep/nics '{"network": "lan", "limit": {"out": {"rate": 1000000, "burst": 1}}}'
expect 400 POST /v1/vms/keep/nics '{"network": "lan", "speed": 1}'
expect 400 POST /v1/vms/keep/nics '{"limit": null}'
expect 404 POST /v1/vms/keep/nics '{"network": "no-such-net", "limit": {"in": {"rate": 1000000}}}'
expect 404 PATCH /v1/vms/keep/nics/02:00:00:00:ff:ff '{"limit": null}'
expect 400 PATCH /v1/vms/keep/traffic '{"quota": -5}'
expect 400 PATCH /v1/users/root/traffic '{"rate_cap": 5}'
expect 400 PATCH /v1/networks/lan '{"limit": {"in": {"rate": 1e9}}}'
expect 400 GET '/v1/usage?month=2026-1'
expect 404 GET '/v1/usage?user=nobody-here'
ok "invalid names and values refused"

expect 404 POST /v1/vms '{"name": "ok", "image": "no-such-image"}'
expect 404 POST /v1/vms '{"name": "ok", "image": "tiny", "networks": ["no-such-net"]}'
expect 404 GET /v1/vms/no-such-vm
expect 404 GET /v1/vms/ffffffffff
expect 404 POST /v1/vms/no-such-vm/start '{}'
expect 404 GET /v1/nothing-here
# Users, logins and hosts.
expect 400 POST /v1/login '{"user": 7}'
expect 400 POST /v1/login '{"user": "Root!", "password": "x"}'
expect 400 POST /v1/login '{"user": "root", "password": "'"$(head -c 2000 /dev/zero | tr '\0' a)"'"}'
expect 400 POST /v1/login '{"user": "root", "otp": "12ab56"}'
expect 401 POST /v1/login '{"user": "nobody-here", "password": "whatever-pw"}'
expect 400 POST /v1/users '{"name": "u1", "role": "king"}'
expect 400 POST /v1/users '{"name": "u1", "auth": "file,ldap", "password": "long-enough"}'
expect 400 POST /v1/users '{"name": "u1", "auth": ["file"], "password": "short"}'
expect 400 POST /v1/users '{"name": "u1", "auth": ["kerberos"]}'
expect 404 GET /v1/users/no-such-user
expect 404 DELETE /v1/tokens/zz
expect 404 GET /v1/hosts/no-such-host
expect 400 POST /v1/hosts/no-such-host/drain '{"drain": "yes"}'
expect 400 POST /v1/vms '{"name": "ok", "image": "tiny", "host": "bad host!"}'
expect 404 POST /v1/vms '{"name": "ok", "image": "tiny", "host": "no-such-host"}'
API_TOKEN=hct_forged expect 401 GET /v1/whoami
expect 405 PATCH /v1/vms
ok "unknown references and endpoints refused"

expect 409 POST /v1/vms '{"name": "keep", "image": "tiny"}'
expect 409 POST /v1/networks '{"name": "lan", "ipv6": "fd00:e2e:9::/64"}'
expect 409 POST /v1/networks '{"name": "other", "ipv6": "fd00:e2e:3::/64"}'
expect 409 DELETE /v1/images/tiny
expect 409 DELETE /v1/networks/lan
ok "duplicates and deletes of used resources refused"

after=$(dump)
[ "$before" = "$after" ] || fail "the store changed: $(diff <(echo "$before") <(echo "$after") | head -20)"
ok "store unchanged by all of the above"

# Deleting twice: the first is accepted, the second is a 404.
kid=$(vm_field keep .id)
api DELETE /v1/vms/keep >/dev/null
[ "$API_STATUS" = 202 ] || fail "first delete: status $API_STATUS"
expect 404 DELETE /v1/vms/keep
expect 404 DELETE "/v1/vms/$kid"
wait_purged "$kid" 30
ok "second delete of a VM is a 404"

# Concurrent deletes of one VM: exactly one is accepted, the others are
# 404s, and hcd keeps serving.
hc vm create racer --image tiny --no-start >/dev/null
rid=$(vm_field racer .id)
racers=()
for i in $(seq 1 10); do
	curl -s -o /dev/null -w '%{http_code}\n' -X DELETE --unix-socket "$T_STATE/api.sock" \
		"http://hc/v1/vms/racer" >"$T_DIR/race.$i" &
	racers+=($!)
done
wait "${racers[@]}"   # not a bare wait: hcd is a background job too
[ "$(cat "$T_DIR"/race.* | grep -c '^202$')" = 1 ] || fail "concurrent deletes: $(cat "$T_DIR"/race.* | tr '\n' ' ')"
[ "$(cat "$T_DIR"/race.* | grep -c '^404$')" = 9 ] || fail "concurrent deletes: $(cat "$T_DIR"/race.* | tr '\n' ' ')"
wait_purged "$rid" 30
hc info >/dev/null || fail "hcd stopped serving after concurrent deletes"
ok "ten concurrent deletes: one 202, nine 404"

# The CLI: non-zero exit and one line on stderr.
if hc vm show nope 2>"$T_DIR/err"; then fail "hc vm show nope succeeded"; fi
[ "$(wc -l <"$T_DIR/err")" = 1 ] || fail "hc error is not one line: $(cat "$T_DIR/err")"
ok "hc reports errors on one line with a non-zero exit"
