#!/usr/bin/env bash
# Authentication (issue 5) against real servers and clients we did not
# write: the TLS listener with curl --cacert (plain HTTP refused), hc login
# over https keeping its token 0600, logout revoking it; TOTP codes made by
# oathtool accepted once and refused when replayed; failed logins backing
# off 1, 2, 4 s (asserted from the daemon's backoff state, not the clock);
# the per-user API rate limit answering 429 with Retry-After; LDAP logins
# against a slapd started here (right, wrong, unknown, server down → 503),
# and over StartTLS and ldaps:// (the right CA logs in, another one does not);
# hc user passwd, and a hand edit of the password file read without a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

for t in openssl oathtool slapd ldapadd setpriv; do
	command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || fail "$t is needed (see scripts/deps.sh)"
done

PORT=8443
URL="https://[::1]:$PORT"
make_tls_cert "$T_DIR" IP:::1,IP:127.0.0.1

LDAP_DIR=$T_DIR/ldap
LDAP_PORT=3890
hcd_args=(--listen="[::1]:$PORT" --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key"
	--auth.ldap-uri="ldap://127.0.0.1:$LDAP_PORT" --auth.ldap-base="$SLAPD_PEOPLE"
	--auth.ldap-timeout=3)
hcd_start "${hcd_args[@]}"

# A client in the test's namespace, with its own config dir for tokens.
export XDG_CONFIG_HOME=$T_DIR/cfg
tcp_hc() { HC_CACERT=$T_DIR/tls.crt ip netns exec "$T_NS" "$HC_BIN" --url "$URL" "$@"; }
tcp_curl() { ip netns exec "$T_NS" curl -s --cacert "$T_DIR/tls.crt" "$@"; }
# Retry-After of the last response headers in $T_DIR/hdr.
retry_after() { tr -d '\r' <"$T_DIR/hdr" | awk 'tolower($1) == "retry-after:" { print $2 }'; }
login_status() {   # login_status USER PASSWORD [OTP] → HTTP status, headers in $T_DIR/hdr
	local body="{\"user\": \"$1\", \"password\": \"$2\"${3:+, \"otp\": \"$3\"}}"
	curl -s -o "$T_DIR/resp" -D "$T_DIR/hdr" -w '%{http_code}' --unix-socket "$T_STATE/api.sock" \
		-H 'Content-Type: application/json' --data-binary "$body" http://hc/v1/login
}
# Wait out the backoff of every key (the daemon says how long).
backoff_wait() {
	local s
	s=$(api GET /v1/auth/backoff | jq '[.[].retry_after] | max // 0 | ceil')
	sleep "$((s + 0))"; sleep 0.2
}
backoff_of() { api GET /v1/auth/backoff | jq -c --arg k "$1" '.[] | select(.key == $k) | [.failures, .delay]'; }

printf 'carol-password\n' | hc user create carol --auth file --password-stdin >/dev/null || fail "create carol"

# ---- TLS listener ------------------------------------------------------------
code=$(tcp_curl -o "$T_DIR/resp" -w '%{http_code}' "$URL/v1/info")
[ "$code" = 401 ] || fail "TCP without a token: $code"
jq -e '.error.code == "unauthorized"' "$T_DIR/resp" >/dev/null || fail "401 body: $(cat "$T_DIR/resp")"
code=$(ip netns exec "$T_NS" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://[::1]:$PORT/v1/info") || true
[ "$code" != 200 ] && [ "$code" != 401 ] || fail "plain HTTP on the TLS port was served ($code)"
code=$(ip netns exec "$T_NS" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/v1/info") || true
[ "$code" = 000 ] || fail "a certificate nobody vouches for was accepted ($code)"
tok=$(tcp_curl -H 'Content-Type: application/json' --data-binary \
	'{"user": "carol", "password": "carol-password"}' "$URL/v1/login" | jq -r .token)
[[ $tok == hct_* ]] || fail "login over TLS gave no token"
[ "$(tcp_curl -H "Authorization: Bearer $tok" "$URL/v1/whoami" | jq -r .name)" = carol ] ||
	fail "the token does not identify carol over TLS"
code=$(tcp_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${tok%?}x" "$URL/v1/whoami")
[ "$code" = 401 ] || fail "a forged token got $code"
ok "TLS listener: curl --cacert works, no token → 401, plain HTTP and unknown CAs refused"

# The API's description is public: no token needed, even on TCP, and it is
# the document of the source tree, byte for byte, as JSON.
meta=$(tcp_curl -o "$T_DIR/openapi.json" -w '%{http_code} %{content_type}' "$URL/v1/openapi.json")
[ "$meta" = "200 application/json" ] || fail "GET /v1/openapi.json without a token: $meta"
cmp -s "$T_DIR/openapi.json" "$E2E_SRC/docs/openapi.json" || fail "the served description is not docs/openapi.json"
code=$(tcp_curl -o /dev/null -w '%{http_code}' -X DELETE "$URL/v1/openapi.json")
[ "$code" = 401 ] || fail "DELETE /v1/openapi.json without a token: $code (only the GET is public)"
ok "GET /v1/openapi.json is public (TCP, no token) and serves docs/openapi.json"

printf 'carol-password\n' | tcp_hc login carol --password-stdin >/dev/null || fail "hc login over https"
cred=$XDG_CONFIG_HOME/hackcloud/credentials
[ "$(stat -c %a "$cred")" = 600 ] || fail "credentials file mode $(stat -c %a "$cred")"
[ "$(stat -c %a "$(dirname "$cred")")" = 700 ] || fail "credentials dir mode"
[ "$(tcp_hc --json whoami | jq -r '.name + "/" + .via')" = carol/token ] || fail "hc whoami over https"
tcp_hc --json vm list | jq -e 'length == 0' >/dev/null || fail "hc vm list over https"
saved=$(jq -r --arg u "$URL" '.[$u]' "$cred")
[[ $saved == hct_* ]] || fail "the saved token is not the login's"
sqlite3 "$T_STATE/hackcloud.db" 'SELECT hash FROM tokens' | grep -q "$saved" && fail "a token is stored in clear"
if HC_CACERT= ip netns exec "$T_NS" "$HC_BIN" --url "$URL" whoami 2>/dev/null; then
	fail "hc trusted an unknown certificate"
fi
tcp_hc logout || fail "hc logout"
jq -e --arg u "$URL" 'has($u) | not' "$cred" >/dev/null || fail "logout kept the token"
code=$(tcp_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $saved" "$URL/v1/whoami")
[ "$code" = 401 ] || fail "a logged-out token still works ($code)"
ok "hc login over https keeps the token 0600 (hashed in the store); logout revokes it"

# ---- TOTP, codes from oathtool -------------------------------------------------
printf 'erin-password!\n' | hc user create erin --auth file --password-stdin >/dev/null || fail "create erin"
uri=$(hc --json user otp enable erin | jq -r .uri)
[[ $uri == otpauth://totp/* ]] || fail "otp enable printed $uri"
secret=$(sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p' <<<"$uri")
[ -n "$secret" ] || fail "no secret in $uri"
sqlite3 "$T_STATE/hackcloud.db" "SELECT otp_secret FROM users WHERE name = 'erin'" | grep -q "$secret" &&
	fail "the OTP secret is readable from the database"
[ "$(hc --json user show erin | jq -r .auth)" = file,otp ] || fail "erin's backends"
[ "$(login_status erin 'erin-password!')" = 401 ] && jq -e '.error.code == "otp_required"' "$T_DIR/resp" >/dev/null ||
	fail "a password without a code: $(cat "$T_DIR/resp")"
code=$(oathtool --totp -b "$secret")
[ "$(login_status erin 'erin-password!' "$code")" = 200 ] || fail "oathtool's code refused: $(cat "$T_DIR/resp")"
[ "$(login_status erin 'erin-password!' "$code")" = 401 ] || fail "a replayed code was accepted"
jq -e '.error.code == "invalid_credentials"' "$T_DIR/resp" >/dev/null || fail "replay: $(cat "$T_DIR/resp")"
backoff_wait
[ "$(login_status erin 'wrong-password' "$(oathtool --totp -b "$secret")")" = 401 ] ||
	fail "a wrong password with a right code was accepted"
backoff_wait
ok "oathtool's TOTP code is accepted once; replay and a wrong password are refused"

# ---- failed logins back off ------------------------------------------------------
printf 'gina-password\n' | hc user create gina --auth file --password-stdin >/dev/null || fail "create gina"
[ "$(login_status gina 'gina-password')" = 200 ] || fail "gina's login"   # clears this source's failures
expected=("1,1" "2,2" "3,4")
for i in 0 1 2; do
	[ "$(login_status gina nope)" = 401 ] || fail "wrong password #$((i + 1)) not 401"
	got=$(backoff_of user:gina)
	[ "$got" = "[${expected[$i]}]" ] || fail "after $((i + 1)) failures the backoff is $got, not [${expected[$i]}]"
	# While waiting, even the right password is not looked at.
	[ "$(login_status gina gina-password)" = 429 ] || fail "no 429 during the backoff ($i)"
	ra=$(retry_after)
	[ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le "${expected[$i]#*,}" ] || fail "Retry-After '$ra' during backoff $i"
	backoff_wait
done
[ "$(backoff_of addr:unix:0)" = "[3,4]" ] || fail "the source address did not back off: $(backoff_of addr:unix:0)"
grep -q "login of 'gina' from unix:0 failed (wrong password); 3 failures" "$T_DIR/hcd.log" ||
	fail "failed logins are not logged"
grep -q 'gina-password\|carol-password\|erin-password' "$T_DIR/hcd.log" && fail "a password reached the log"
[ "$(login_status gina gina-password)" = 200 ] || fail "gina's login after the backoff"
[ -z "$(backoff_of user:gina)" ] || fail "a successful login kept the backoff"
ok "failed logins back off 1, 2, 4 s per user and per source, with 429 + Retry-After; success clears it"

# ---- API rate limit per user ------------------------------------------------------
gtok=$(jq -r .token "$T_DIR/resp")
hcd_stop
hcd_start "${hcd_args[@]}" --api-rate=1 --api-burst=5
codes=()
for i in $(seq 1 12); do
	codes+=("$(curl -s -o /dev/null -D "$T_DIR/hdr" -w '%{http_code}' --unix-socket "$T_STATE/api.sock" \
		-H "Authorization: Bearer $gtok" http://hc/v1/whoami)")
	[ "${codes[-1]}" = 429 ] && break
done
[ "${codes[*]:0:5}" = "200 200 200 200 200" ] || fail "the burst was not served: ${codes[*]}"
[ "${codes[-1]}" = 429 ] || fail "no 429 beyond the burst: ${codes[*]}"
ra=$(retry_after)
[ -n "$ra" ] && [ "$ra" -ge 1 ] || fail "429 without Retry-After"
[ "$(api GET /v1/whoami | jq -r .name)" = root ] || fail "root on the socket was limited by gina's bucket"
ok "a burst beyond the bucket gets 429 with Retry-After ${ra}s (tokens survive an hcd restart)"

# ---- LDAP, a real slapd --------------------------------------------------------------
slapd_start "$LDAP_DIR" "$LDAP_PORT" "$T_NS" || fail "slapd did not start"
T_ON_EXIT+=('slapd_stop "$LDAP_DIR"')
hc user create alice --auth ldap >/dev/null || fail "create an ldap user"
hc user create ghost --auth ldap >/dev/null || fail "create a user LDAP does not know"
# Every checked attempt runs argon2id once (the user's hash or the dummy),
# LDAP users and unknown names too: a failure's cost tells nothing.
password_checks() { api GET /metrics | awk '$1 == "hackcloud_password_checks_total" { print $2 }'; }
checks_before=$(password_checks)
one_check() {   # one_check WHAT: exactly one argon2id since the last call
	local now
	now=$(password_checks)
	[ "$now" = $((checks_before + 1)) ] || fail "$1: $((now - checks_before)) password checks, not 1"
	checks_before=$now
}
[ "$(login_status alice "$SLAPD_ALICE_PW")" = 200 ] ||
	fail "the right LDAP password was refused: $(cat "$T_DIR/resp")"
one_check "the right LDAP password"
[ "$(login_status alice wrong-password)" = 401 ] || fail "a wrong LDAP password: $(cat "$T_DIR/resp")"
one_check "a wrong LDAP password"
backoff_wait
[ "$(login_status ghost whatever-password)" = 401 ] || fail "a user unknown to LDAP: $(cat "$T_DIR/resp")"
one_check "a user unknown to LDAP"
backoff_wait
[ "$(login_status nobody-here whatever-password)" = 401 ] || fail "an unknown name: $(cat "$T_DIR/resp")"
one_check "an unknown name"
backoff_wait
slapd_stop "$LDAP_DIR"
start=$(date +%s)
[ "$(login_status alice "$SLAPD_ALICE_PW")" = 503 ] ||
	fail "LDAP down did not give 503: $(cat "$T_DIR/resp")"
jq -e '.error.code == "auth_unavailable"' "$T_DIR/resp" >/dev/null || fail "503 body: $(cat "$T_DIR/resp")"
[ "$(api GET /v1/whoami | jq -r .name)" = root ] || fail "the API hung after LDAP went away"
down_s=$(( $(date +%s) - start ))
# A server that accepts and then says nothing: the timeout must end it.
ip netns exec "$T_NS" socat TCP-LISTEN:"$LDAP_PORT",bind=127.0.0.1,reuseaddr,fork SYSTEM:'sleep 60' &
SOCAT_PID=$!
T_ON_EXIT+=('kill $SOCAT_PID 2>/dev/null')
for i in $(seq 1 50); do nsexec bash -c "exec 3<>/dev/tcp/127.0.0.1/$LDAP_PORT" 2>/dev/null && break; sleep 0.1; done
start=$(date +%s)
code=$(curl -s -o "$T_DIR/resp" -w '%{http_code}' --max-time 30 --unix-socket "$T_STATE/api.sock" \
	-H 'Content-Type: application/json' --data-binary "{\"user\": \"alice\", \"password\": \"$SLAPD_ALICE_PW\"}" \
	http://hc/v1/login) || true
[ "$code" = 503 ] || fail "a silent LDAP server gave $code: $(cat "$T_DIR/resp")"
[ "$(api GET /v1/whoami | jq -r .name)" = root ] || fail "the API did not recover from a silent LDAP server"
ok "LDAP: right password in, wrong and unknown out, each attempt one argon2id; server down → 503 in ${down_s}s, silent server → 503 in $(( $(date +%s) - start ))s (timeout 3s)"

# ---- LDAP over TLS: StartTLS and ldaps://, verified against the test's CA -----
kill "$SOCAT_PID" 2>/dev/null
TLS_DIR=$T_DIR/ldap-tls
TLS_PORT=3891 LDAPS_PORT=6361
SLAPD_TLS=1 SLAPD_LDAPS_PORT=$LDAPS_PORT slapd_start "$TLS_DIR" "$TLS_PORT" "$T_NS" ||
	fail "slapd with TLS did not start"
T_ON_EXIT+=('slapd_stop "$TLS_DIR"')
ldap_login_with() {   # ldap_login_with EXPECTED-STATUS WHAT hcd-overrides…
	local want=$1 what=$2
	shift 2
	hcd_stop
	hcd_start "${hcd_args[@]}" "$@"
	[ "$(login_status alice "$SLAPD_ALICE_PW")" = "$want" ] ||
		fail "LDAP $what: wanted $want, got $(cat "$T_DIR/resp")"
}
ldap_login_with 200 "StartTLS with the right CA" --auth.ldap-uri="ldap://127.0.0.1:$TLS_PORT" \
	--auth.ldap-starttls=1 --auth.ldap-ca-file="$TLS_DIR/ca.pem"
ldap_login_with 200 "ldaps:// with the right CA" --auth.ldap-uri="ldaps://127.0.0.1:$LDAPS_PORT" \
	--auth.ldap-ca-file="$TLS_DIR/ca.pem"
# A certificate the configured CA did not sign: no login, and no quiet
# fallback to plain LDAP.
ldap_login_with 503 "StartTLS with another CA" --auth.ldap-uri="ldap://127.0.0.1:$TLS_PORT" \
	--auth.ldap-starttls=1 --auth.ldap-ca-file="$T_DIR/tls.crt"
ldap_login_with 503 "ldaps:// with another CA" --auth.ldap-uri="ldaps://127.0.0.1:$LDAPS_PORT" \
	--auth.ldap-ca-file="$T_DIR/tls.crt"
ok "LDAP over StartTLS and ldaps:// logs in with the right CA and refuses a server it cannot verify"

# ---- the password file: hc user passwd, and edits by hand are picked up --------
backoff_wait
printf 'carol-second-pw\n' | hc user passwd carol --password-stdin || fail "hc user passwd"
[ "$(login_status carol carol-second-pw)" = 200 ] || fail "the new password: $(cat "$T_DIR/resp")"
[ "$(login_status carol carol-password)" = 401 ] || fail "the old password still works"
backoff_wait
# An admin edits the file (as an editor does: new file, rename): carol now
# has gina's hash, and the running hcd notices without a restart.
gina_hash=$(awk -F: '$1 == "gina" { print $2 }' "$T_STATE/passwd")
[ -n "$gina_hash" ] || fail "gina has no line in the password file"
awk -F: -v h="$gina_hash" 'BEGIN { OFS = ":" } $1 == "carol" { $2 = h } { print }' \
	"$T_STATE/passwd" >"$T_STATE/passwd.edit"
mv "$T_STATE/passwd.edit" "$T_STATE/passwd"
[ "$(login_status carol gina-password)" = 200 ] || fail "a hand edit of the file was not picked up"
ok "hc user passwd changes the password; a hand edit of the password file is read without a restart"
