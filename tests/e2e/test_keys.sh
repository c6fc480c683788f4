#!/usr/bin/env bash
# SSH keys and user data through the CLI and the API: a key added from a
# .pub file shows ssh-keygen's own fingerprint, a bad key is a 400 with a
# one-line error, a VM created with --key and --user-data gets exactly
# those (the user data back byte for byte), and a key in use cannot be
# deleted until its VM is.  No guest boots (--no-start).
. "$(dirname "$0")/lib.sh"

command -v ssh-keygen >/dev/null || fail "ssh-keygen is needed (apt-get install openssh-client)"

hcd_start
import_tiny tiny

ssh-keygen -q -t ed25519 -N '' -C 'e2e@test' -f "$T_DIR/id_ed25519"
ssh-keygen -q -t rsa -b 3072 -N '' -C 'e2e-rsa' -f "$T_DIR/id_rsa"
fp_ed=$(ssh-keygen -lf "$T_DIR/id_ed25519.pub" | awk '{print $2}')
fp_rsa=$(ssh-keygen -lf "$T_DIR/id_rsa.pub" | awk '{print $2}')

# ---- keys ----------------------------------------------------------------
hc key add laptop --file "$T_DIR/id_ed25519.pub" >/dev/null || fail "hc key add --file failed"
hc key add desk "$(cat "$T_DIR/id_rsa.pub")" >/dev/null || fail "hc key add KEYTEXT failed"
hc key list >"$T_DIR/list"
grep -q "^00000001 *laptop *ssh-ed25519 *$fp_ed\$" "$T_DIR/list" ||
	fail "key list does not show ssh-keygen's fingerprint $fp_ed: $(cat "$T_DIR/list")"
grep -q "desk *ssh-rsa *$fp_rsa\$" "$T_DIR/list" || fail "key list lacks the RSA key: $(cat "$T_DIR/list")"
[ "$(hc --json key show laptop | jq -r .pubkey)" = "$(cat "$T_DIR/id_ed25519.pub")" ] ||
	fail "the stored key is not the .pub line"
[ "$(hc --json key show 00000002 | jq -r .fingerprint)" = "$fp_rsa" ] || fail "key show by ID"
ok "keys added from a file and from text carry ssh-keygen's fingerprints"

# A bad key: 400 from the API with a precise message, one line from hc.
sed 's/ssh-ed25519/ssh-rsa/' "$T_DIR/id_ed25519.pub" >"$T_DIR/relabelled.pub"
if hc key add bad --file "$T_DIR/relabelled.pub" 2>"$T_DIR/err"; then fail "a relabelled key was accepted"; fi
[ "$(wc -l <"$T_DIR/err")" = 1 ] || fail "hc error is not one line: $(cat "$T_DIR/err")"
grep -q "ssh-ed25519 key but the line says ssh-rsa" "$T_DIR/err" || fail "unclear error: $(cat "$T_DIR/err")"
api POST /v1/keys '{"name": "bad", "pubkey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVv"}' >"$T_DIR/body"
[ "$API_STATUS" = 400 ] || fail "truncated key: status $API_STATUS"
jq -e '.error.code == "bad_key"' "$T_DIR/body" >/dev/null || fail "truncated key: $(cat "$T_DIR/body")"
api POST /v1/keys '{"name": "laptop", "pubkey": "'"$(cat "$T_DIR/id_rsa.pub")"'"}' >/dev/null
[ "$API_STATUS" = 409 ] || fail "duplicate key name: status $API_STATUS"
api POST /v1/keys '{"name": "0000abcd", "pubkey": "'"$(cat "$T_DIR/id_rsa.pub")"'"}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "key name that reads as an ID: status $API_STATUS"
[ "$(hc --json key list | jq length)" = 2 ] || fail "a refused key was stored"
ok "bad keys are 400s with one-line errors, duplicates 409"

# ---- VMs with keys and user data -----------------------------------------
# Binary user data: a script header, a NUL, bytes that are not UTF-8.
{ printf '#!/bin/sh\necho hello\n'; printf '\000\377\376\200\r\n'; head -c 3000 /dev/urandom; } >"$T_DIR/ud.bin"
hc vm create web --image tiny --key laptop --user-data "$T_DIR/ud.bin" --no-start >/dev/null ||
	fail "vm create --key --user-data failed"
[ "$(vm_field web '[.keys[].name] | join(",")')" = laptop ] || fail "web has keys $(vm_field web .keys)"
[ "$(vm_field web '.keys[0].fingerprint')" = "$fp_ed" ] || fail "web's key fingerprint"
[ "$(vm_field web .user_data_size)" = "$(stat -c %s "$T_DIR/ud.bin")" ] || fail "user_data_size"
[ "$(vm_field web 'has("user_data")')" = false ] || fail "the VM object carries the user data itself"
wid=$(vm_field web .id)
curl -sf --unix-socket "$T_STATE/api.sock" -o "$T_DIR/ud.out" -D "$T_DIR/ud.hdr" "http://hc/v1/vms/$wid/user-data" ||
	fail "GET user-data failed"
cmp "$T_DIR/ud.bin" "$T_DIR/ud.out" || fail "user data came back different"
grep -qi '^content-type: application/octet-stream' "$T_DIR/ud.hdr" || fail "user data is not octet-stream"
ok "VM created with --key and --user-data; user data returned byte-identical"

# Default: all of the owner's keys; no user data is an empty body.
hc vm create db --image tiny --no-start >/dev/null
[ "$(vm_field db '[.keys[].name] | sort | join(",")')" = desk,laptop ] || fail "db has keys $(vm_field db .keys)"
[ "$(vm_field db .user_data_size)" = 0 ] || fail "db has user data"
[ "$(curl -sf --unix-socket "$T_STATE/api.sock" http://hc/v1/vms/db/user-data | wc -c)" = 0 ] ||
	fail "db's user data is not empty"
ok "without --key a VM gets all of its owner's keys"

# Bad VM inputs change nothing.
head -c $((64 * 1024 + 1)) /dev/zero >"$T_DIR/big.bin"
if hc vm create big --image tiny --user-data "$T_DIR/big.bin" --no-start 2>"$T_DIR/err"; then
	fail "64 KiB + 1 of user data accepted"
fi
api POST /v1/vms '{"name": "x", "image": "tiny", "user_data": "not base64!", "start": false}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "invalid base64 user data: status $API_STATUS"
big64=$(head -c $((64 * 1024 + 1)) /dev/zero | base64 -w0)
api POST /v1/vms '{"name": "x", "image": "tiny", "user_data": "'"$big64"'", "start": false}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "oversized user data via the API: status $API_STATUS"
api POST /v1/vms '{"name": "x", "image": "tiny", "keys": ["nope"], "start": false}' >/dev/null
[ "$API_STATUS" = 404 ] || fail "unknown key: status $API_STATUS"
[ "$(hc --json vm list | jq length)" = 2 ] || fail "a refused VM was created"
ok "oversized or invalid user data and unknown keys refused"

# ---- delete --------------------------------------------------------------
api DELETE /v1/keys/laptop >"$T_DIR/body"
[ "$API_STATUS" = 409 ] || fail "deleting a key in use: status $API_STATUS"
if hc key delete laptop 2>"$T_DIR/err"; then fail "hc key delete of a used key succeeded"; fi
[ "$(wc -l <"$T_DIR/err")" = 1 ] || fail "hc error is not one line: $(cat "$T_DIR/err")"
hc vm delete web >/dev/null
hc key delete laptop 2>"$T_DIR/err" && fail "laptop deleted while db still uses it"
hc vm delete db >/dev/null
hc key delete laptop >/dev/null || fail "key delete after its VMs are deleted: $(cat "$T_DIR/err")"
hc key delete desk >/dev/null || fail "key delete desk"
[ "$(hc --json key list | jq length)" = 0 ] || fail "keys remain"
api GET /v1/keys/laptop >/dev/null
[ "$API_STATUS" = 404 ] || fail "deleted key: status $API_STATUS"
wait_purged "$wid" 30
ok "a key in use is a 409; once its VMs are deleted it goes"

# A clean exit (under the ASan build: no leaks in the handlers above).
hcd_stop
ok "hcd stopped cleanly"
