#!/usr/bin/env bash
# Attacks on the API and its authentication (issue 11 §6, §7, §8, §10;
# issue 12 §3), each tried as an attacker would and shown closed:
#  - 2,000 idle TCP connections (and one that trickles its headers) from
#    many addresses: an authenticated client is still answered over TLS and
#    on the unix socket, the flood is held to the per-/64 and total limits,
#    and every idle connection is cut at the header deadline;
#    /v1/login takes no body over 4 KiB;
#  - failed logins of unknown, disabled, backend-less and OTP-only users and
#    of a wrong password all get the same answer, and each one is counted;
#  - failures from different addresses of one IPv6 /64 share one backoff;
#  - a new password, an OTP enrolment and disabling a user revoke tokens
#    (self-service keeps the token used); a token alone cannot disable OTP
#    or change the password; an open console ends when its token is revoked;
#  - a TCP listener without a certificate does not start unless
#    listen_insecure is set and the address is loopback;
#  - the local account nobody is not the hackcloud user "nobody", a
#    person's account is;
#  - a login waiting on a silent LDAP server: its client hanging up, and
#    hcd stopping, are both handled (hcd keeps serving, then exits 0).
. "$(dirname "$0")/lib.sh"

for t in openssl oathtool python3 socat useradd setpriv sqlite3; do
	command -v "$t" >/dev/null || fail "$t is needed (see scripts/deps.sh)"
done

PORT=8443
URL="https://[::1]:$PORT"
make_tls_cert "$T_DIR" IP:::1
LDAP_PORT=3890
HEADER_TIMEOUT=4
hcd_args=(--listen="[::]:$PORT" --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key"
	--api-max-connections=200 --api-max-per-peer=16 --api-header-timeout=$HEADER_TIMEOUT
	--auth.ldap-uri="ldap://127.0.0.1:$LDAP_PORT" --auth.ldap-base=dc=example --auth.ldap-timeout=3)
hcd_start "${hcd_args[@]}"

# Source addresses for the test's peers: 2001:db8:a::/64 is one attacker
# with many addresses, 2001:db8:b<N>::/64 are others, 2001:db8:7<N>:: are
# the login probes, each from its own /64.
addr() { nsexec ip addr add "$1/128" dev lo nodad; }
for i in $(seq 1 40); do addr "2001:db8:a::$i"; done
for i in $(seq 1 20); do addr "2001:db8:b$i::1"; done
for i in $(seq 1 9); do addr "2001:db8:7$i::1"; done
addr 2001:db8:a::100
addr 2001:db8:a::101

tls_curl() { nsexec curl -s --cacert "$T_DIR/tls.crt" "$@"; }
# tcp_login SRC USER PASSWORD [OTP] → HTTP status; body in $T_DIR/resp
tcp_login() {
	local body="{\"user\": \"$2\", \"password\": \"$3\"${4:+, \"otp\": \"$4\"}}"
	tls_curl --interface "$1" -o "$T_DIR/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$body" "$URL/v1/login"
}
# token USER PASSWORD → a fresh token, over the unix socket
token() {
	api POST /v1/login "{\"user\": \"$1\", \"password\": \"$2\"}" >"$T_DIR/login"
	[ "$API_STATUS" = 200 ] || fail "login $1: $API_STATUS $(cat "$T_DIR/login")"
	jq -r .token "$T_DIR/login"
}
# as TOKEN METHOD PATH [BODY] → body; API_STATUS
as() { local tok=$1; shift; API_TOKEN=$tok api "$@"; }
backoff_of() { api GET /v1/auth/backoff | jq -c --arg k "$1" '.[] | select(.key == $k) | [.failures, .delay]'; }
backoff_wait() {
	local s
	s=$(api GET /v1/auth/backoff | jq '[.[].retry_after] | max // 0 | ceil')
	sleep "$s"; sleep 0.2
}
mkuser() {   # mkuser NAME PASSWORD [role]
	api POST /v1/users "{\"name\": \"$1\", \"auth\": \"file\", \"password\": \"$2\", \"role\": \"${3:-member}\"}" >/dev/null
	[ "$API_STATUS" = 201 ] || fail "create $1: $API_STATUS"
}

mkuser ada ada-password
ADA=$(token ada ada-password)

# ---- §6: the listener cannot be filled ---------------------------------------
# flood NAME SRC:COUNT… — idle connections in the background; status in $T_DIR/NAME
flood() {
	local name=$1
	shift
	ip netns exec "$T_NS" python3 "$(dirname "$0")/idle_flood.py" ::1 "$PORT" "$T_DIR/$name" "$@" &
	T_ON_EXIT+=("kill $! 2>/dev/null")
	FLOOD_PID=$!
	for _ in $(seq 1 150); do
		grep -q connected "$T_DIR/$name" 2>/dev/null && break
		sleep 0.1
	done
	sleep 2   # connecting, and the server sorting them out
	grep -q connected "$T_DIR/$name" || fail "the flood $name did not start"
}
field() { sed "s/.*$2=\([0-9a-z]*\).*/\1/" "$T_DIR/$1"; }
answered() {   # the client with a token, on both listeners
	local code
	code=$(tls_curl --max-time 20 -o "$T_DIR/resp" -w '%{http_code}' -H "Authorization: Bearer $ADA" "$URL/v1/whoami")
	[ "$code" = 200 ] && [ "$(jq -r .name "$T_DIR/resp")" = ada ] ||
		fail "a client with a token was not answered over TLS during the flood ($code; $1)"
	[ "$(as "$ADA" GET /v1/whoami | jq -r .name)" = ada ] || fail "the unix socket did not answer during the flood"
}
# 2,000 from 40 addresses of one /64: it holds 16 (+1 trickling).
a=()
for i in $(seq 1 40); do a+=("2001:db8:a::$i:50"); done
flood flood-a "${a[@]}"
held_a=$(field flood-a held)
[ "$held_a" -le 17 ] || fail "one /64 holds $held_a connections (limit 16, +1 trickling): $(cat "$T_DIR/flood-a")"
answered "$(cat "$T_DIR/flood-a")"
A_PID=$FLOOD_PID
# 20 more /64s, 16 each: the total (200) is reached; newcomers cut the
# connections that waited longest, and the client still gets in.
b=()
for i in $(seq 1 20); do b+=("2001:db8:b$i::1:16"); done
flood flood-b "${b[@]}"
held=$(( $(field flood-a held) + $(field flood-b held) ))
[ "$held" -le 200 ] || fail "the floods hold $held connections (limit 200)"
answered "$(cat "$T_DIR/flood-a") $(cat "$T_DIR/flood-b")"
# The deadline for headers is absolute: idle and trickling connections go.
for _ in $(seq 1 $((HEADER_TIMEOUT * 10 + 100))); do
	grep -q 'held=0 trickle=closed' "$T_DIR/flood-a" && grep -q 'held=0 trickle=closed' "$T_DIR/flood-b" && break
	sleep 0.1
done
grep -q 'held=0 trickle=closed' "$T_DIR/flood-a" && grep -q 'held=0 trickle=closed' "$T_DIR/flood-b" ||
	fail "idle connections outlived the header deadline: $(cat "$T_DIR/flood-a") $(cat "$T_DIR/flood-b")"
kill "$A_PID" "$FLOOD_PID"
ok "2,320 idle connections: the client is answered (TLS and socket); one /64 held $held_a, all held $held; all cut at the ${HEADER_TIMEOUT}s header deadline"

body=$(python3 -c 'import json; print(json.dumps({"user": "ada", "password": "x" * 5000}))')
code=$(tls_curl -o "$T_DIR/resp" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$body" "$URL/v1/login")
[ "$code" = 413 ] || fail "a 5 KB login body got $code: $(cat "$T_DIR/resp")"
ok "/v1/login refuses a body over 4 KiB (413) before reading it"

# ---- §7: one answer for every failed login, every one counted ----------------------
mkuser fay fay-password
mkuser dis dis-password
api PATCH /v1/users/dis '{"enabled": false}' >/dev/null
api POST /v1/users '{"name": "nob"}' >/dev/null
api POST /v1/users '{"name": "otpo", "auth": "otp"}' >/dev/null
otpo_secret=$(api POST /v1/users/otpo/otp '{}' | jq -r .uri | sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p')
[ -n "$otpo_secret" ] || fail "otpo has no OTP secret"
i=0
for u in fay nobody-here dis nob otpo; do
	i=$((i + 1))
	[ "$(tcp_login "2001:db8:7$i::1" "$u" wrong-password)" = 401 ] || fail "$u: $(cat "$T_DIR/resp")"
	jq -c . "$T_DIR/resp" >"$T_DIR/answer.$u"
	[ "$(backoff_of "user:$u")" = "[1,1]" ] || fail "the failure of $u was not counted: $(backoff_of "user:$u")"
	[ "$(backoff_of "addr:2001:db8:7$i::/64")" = "[1,1]" ] || fail "the failure from 2001:db8:7$i:: was not counted"
done
for u in nobody-here dis nob otpo; do
	cmp -s "$T_DIR/answer.fay" "$T_DIR/answer.$u" || fail "$u got $(cat "$T_DIR/answer.$u"), fay $(cat "$T_DIR/answer.fay")"
done
backoff_wait
[ "$(tcp_login 2001:db8:76::1 otpo "" "$(oathtool --totp -b "$otpo_secret")")" = 200 ] ||
	fail "OTP-only login with its code: $(cat "$T_DIR/resp")"
ok "wrong password, unknown, disabled, backend-less and OTP-only users: one answer ($(jq -r .error.code "$T_DIR/answer.fay")), each failure counted"

# ---- §8: one IPv6 /64 is one peer ------------------------------------------------------
[ "$(tcp_login 2001:db8:a::100 fay wrong-one)" = 401 ] || fail "first failure from the /64"
[ "$(tcp_login 2001:db8:a::101 ada wrong-two)" = 429 ] ||
	fail "another address of the same /64 was not held back: $(cat "$T_DIR/resp")"
[ "$(backoff_of "addr:2001:db8:a::/64")" = "[1,1]" ] || fail "the /64's backoff: $(backoff_of "addr:2001:db8:a::/64")"
ok "failures from 2001:db8:a::100 hold back 2001:db8:a::101 (one key per /64)"
backoff_wait

# ---- §10: credentials changes revoke tokens; a token alone proves nothing -----------
mkuser pat pat-password-1
T1=$(token pat pat-password-1); T2=$(token pat pat-password-1)
api POST /v1/users/pat/password '{"password": "pat-password-2"}' >/dev/null
[ "$API_STATUS" = 200 ] || fail "admin: new password for pat"
for t in "$T1" "$T2"; do as "$t" GET /v1/whoami >/dev/null; [ "$API_STATUS" = 401 ] || fail "a token outlived an admin's password change"; done
T3=$(token pat pat-password-2); T4=$(token pat pat-password-2)
as "$T3" POST /v1/users/pat/password '{"password": "pat-password-3"}' >"$T_DIR/resp"
[ "$API_STATUS" = 403 ] && jq -e '.error.code == "proof_required"' "$T_DIR/resp" >/dev/null ||
	fail "a token alone changed the password: $API_STATUS $(cat "$T_DIR/resp")"
as "$T3" POST /v1/users/pat/password '{"password": "pat-password-3", "current_password": "wrong-pw-x"}' >"$T_DIR/resp"
[ "$API_STATUS" = 403 ] && jq -e '.error.code == "wrong_proof"' "$T_DIR/resp" >/dev/null || fail "a wrong proof: $API_STATUS"
[ "$(backoff_of user:pat)" = "[1,1]" ] || fail "a wrong proof was not counted: $(backoff_of user:pat)"
backoff_wait
as "$T3" POST /v1/users/pat/password '{"password": "pat-password-3", "current_password": "pat-password-2"}' >/dev/null
[ "$API_STATUS" = 200 ] || fail "pat's own password change with proof: $API_STATUS"
as "$T3" GET /v1/whoami >/dev/null; [ "$API_STATUS" = 200 ] || fail "the token used for the change was revoked"
as "$T4" GET /v1/whoami >/dev/null; [ "$API_STATUS" = 401 ] || fail "pat's other token outlived the password change"
ok "a new password revokes the user's tokens (self-service keeps the one used); the old password is needed"

as "$T3" POST /v1/users/pat/otp '{}' >/dev/null
[ "$API_STATUS" = 403 ] || fail "a token alone enrolled OTP: $API_STATUS"
T5=$(token pat pat-password-3)
as "$T3" POST /v1/users/pat/otp '{"current_password": "pat-password-3"}' >"$T_DIR/resp"
[ "$API_STATUS" = 200 ] || fail "OTP enrolment with proof: $API_STATUS"
pat_secret=$(jq -r .uri "$T_DIR/resp" | sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p')
as "$T5" GET /v1/whoami >/dev/null; [ "$API_STATUS" = 401 ] || fail "a token outlived an OTP enrolment"
as "$T3" DELETE /v1/users/pat/otp >"$T_DIR/resp"
[ "$API_STATUS" = 403 ] || fail "a token alone disabled OTP: $API_STATUS $(cat "$T_DIR/resp")"
[ "$(api GET /v1/users/pat | jq -r .otp)" = true ] || fail "pat's OTP is gone"
as "$T3" DELETE /v1/users/pat/otp "{\"otp\": \"$(oathtool --totp -b "$pat_secret")\"}" >/dev/null
[ "$API_STATUS" = 200 ] || fail "OTP removal with a current code: $API_STATUS"
[ "$(api GET /v1/users/pat | jq -r .otp)" = false ] || fail "pat's OTP stayed"
ok "OTP enrolment revokes tokens; a token alone can neither enrol nor remove OTP (the password or a code can)"

T6=$(token pat pat-password-3)
api PATCH /v1/users/pat '{"enabled": false}' >/dev/null
[ "$(sqlite3 "$T_STATE/hackcloud.db" "SELECT COUNT(*) FROM tokens t JOIN users u ON u.id = t.owner WHERE u.name = 'pat'")" = 0 ] ||
	fail "a disabled user kept tokens in the store"
api PATCH /v1/users/pat '{"enabled": true}' >/dev/null
for t in "$T3" "$T6"; do as "$t" GET /v1/whoami >/dev/null; [ "$API_STATUS" = 401 ] || fail "a token came back with its user"; done
ok "disabling a user revokes its tokens (enabling it again brings none back)"

# ---- §10: plain TCP only by choice, and only on loopback -----------------------------
plain() {   # plain ARGS… → exit status of a short-lived hcd on its own state dir
	local dir=$T_DIR/plain rc=0
	rm -rf "$dir"; mkdir -p "$dir"
	nsexec timeout 5 "$HCD_BIN" --state-dir "$dir" --accel tcg --roles api "$@" >"$T_DIR/plain.log" 2>&1 || rc=$?
	echo "$rc"
}
[ "$(plain --listen='[::1]:8450')" != 124 ] || fail "hcd served plain HTTP without listen_insecure"
grep -q "in clear" "$T_DIR/plain.log" || fail "no reason given: $(cat "$T_DIR/plain.log")"
[ "$(plain --listen='[::]:8451' --listen-insecure=true)" != 124 ] || fail "hcd served plain HTTP on a non-loopback address"
[ "$(plain --listen='127.0.0.1:8452' --listen-insecure=true)" = 124 ] ||
	fail "listen_insecure on loopback did not start: $(cat "$T_DIR/plain.log")"
ok "a TCP listener without tls_cert starts only with listen_insecure = true on loopback"

# ---- §10: system accounts are not users ---------------------------------------------
mkuser nobody nobody-password
as_uid() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups env -u HC_TOKEN "$HC_BIN" "$@"; }
if as_uid 65534 whoami 2>"$T_DIR/err"; then fail "the local account nobody became hackcloud's nobody"; fi
grep -q "not a hackcloud user" "$T_DIR/err" || fail "nobody's refusal: $(cat "$T_DIR/err")"
LOCAL=hce2e$$
LOCAL_UID=$((20000 + $$ % 20000))
useradd -u "$LOCAL_UID" -M -N -g 100 -s /bin/sh "$LOCAL" || fail "useradd $LOCAL"
T_ON_EXIT+=("userdel $LOCAL 2>/dev/null")
mkuser "$LOCAL" local-password
[ "$(as_uid "$LOCAL_UID" --json whoami | jq -r '.name + "/" + .via')" = "$LOCAL/peer" ] ||
	fail "the person's account $LOCAL (uid $LOCAL_UID) is not the hackcloud user"
ok "local account nobody (uid 65534, nologin) is refused even with a user 'nobody'; uid $LOCAL_UID with a shell maps"

# ---- §3: a login on a worker, its client gone, then hcd stopping ------------------------
api POST /v1/users '{"name": "lars", "auth": "ldap"}' >/dev/null
# socat forks a child per connection: its own process group, ended whole.
setsid ip netns exec "$T_NS" socat TCP-LISTEN:"$LDAP_PORT",bind=127.0.0.1,reuseaddr,fork SYSTEM:'sleep 60' &
SOCAT_PID=$!
T_ON_EXIT+=('kill -- -$SOCAT_PID 2>/dev/null')
for _ in $(seq 1 50); do nsexec bash -c "exec 3<>/dev/tcp/127.0.0.1/$LDAP_PORT" 2>/dev/null && break; sleep 0.1; done
lars() { tls_curl --interface "$1" -o "$T_DIR/lars.$1" -w '%{http_code}' --max-time "$2" \
	-H 'Content-Type: application/json' --data-binary '{"user": "lars", "password": "lars-pw"}' "$URL/v1/login"; }
lars 2001:db8:79::1 1 >/dev/null || true        # gives up after 1 s, the bind goes on
[ "$(as "$ADA" GET /v1/whoami | jq -r .name)" = ada ] || fail "hcd stopped serving while a login waited on LDAP"
for _ in $(seq 1 100); do grep -q "LDAP: .*lars" "$T_DIR/hcd.log" && break; sleep 0.1; done
grep -q "LDAP: .*lars" "$T_DIR/hcd.log" || fail "the abandoned login never finished"
backoff_wait
lars 2001:db8:78::1 20 >"$T_DIR/lars.code" &
CURL_PID=$!
sleep 1
hcd_stop                                          # fails unless hcd exits 0
wait "$CURL_PID" || true
[ "$(cat "$T_DIR/lars.code")" = 503 ] || fail "the login suspended at shutdown got $(cat "$T_DIR/lars.code")"
ok "a login waiting on a silent LDAP server: its client may leave, and hcd stops cleanly answering it 503"
hcd_start "${hcd_args[@]}"

# ---- §10: an open console ends when its token is revoked -------------------------------
kill -- "-$SOCAT_PID" 2>/dev/null
hc image import tiny --public --kernel "$E2E_GUEST/vmlinuz" --initrd "$E2E_GUEST/initrd.img" \
	--cmdline "$(cat "$E2E_GUEST/cmdline")" >/dev/null || fail "import the tiny image"
P=$(token pat pat-password-3)
as "$P" POST /v1/vms '{"name": "con", "image": "tiny", "memory_mib": 128}' >"$T_DIR/resp"
[ "$API_STATUS" = 201 ] || fail "vm create for pat: $API_STATUS $(cat "$T_DIR/resp")"
# Root waits by ID: a plain name is always the caller's own (issue 11 item 2).
wait_state "$(jq -r .id "$T_DIR/resp")" running 180
mkfifo "$T_DIR/console.in"
sleep 3600 >"$T_DIR/console.in" &
HOLD_PID=$!
T_ON_EXIT+=('kill $HOLD_PID 2>/dev/null')
HC_TOKEN=$P "$HC_BIN" vm console con <"$T_DIR/console.in" >"$T_DIR/console.out" 2>&1 &
CONSOLE_PID=$!
T_ON_EXIT+=('kill $CONSOLE_PID 2>/dev/null')
sleep 2
kill -0 "$CONSOLE_PID" 2>/dev/null || fail "the console did not stay open: $(cat "$T_DIR/console.out")"
tid=$(as "$P" GET /v1/tokens | jq -r '.[] | select(.current) | .id')
api DELETE "/v1/tokens/$tid" >/dev/null
[ "$API_STATUS" = 200 ] || fail "revoke pat's token: $API_STATUS"
for _ in $(seq 1 100); do kill -0 "$CONSOLE_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$CONSOLE_PID" 2>/dev/null && fail "the console outlived its revoked token"
grep -q "ending a console" "$T_DIR/hcd.log" || fail "hcd did not say why the console ended"
api DELETE /v1/vms/con >/dev/null
ok "an open console ends within a second or so of its token's revocation"
