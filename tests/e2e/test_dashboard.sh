#!/usr/bin/env bash
# test_dashboard — the web dashboard in a real browser (issue 15 §3).
#
# hcd serves the page and the API on a TLS listener in the test's
# namespace; headless Chromium, in a namespace of its own beside it, driven by Selenium
# (dashboard.py), logs in as a member with a password and a TOTP code,
# creates a network, adds an SSH key, uploads a disk image and creates a
# VM through the forms, sees the VM reach
# "running" without reloading, reads the guest's prompt in the console
# (xterm.js over the WebSocket) and gets an answer to a command typed
# there, deletes the VM and sees it go; no URL the browser asked for held
# the token.  Around the browser, with curl: the page's headers (its
# Content-Security-Policy among them), files that must not be served,
# and the WebSocket refused without a token or from another origin; and
# by hand (ws_console.py) the protocol a browser hides: the handshake's
# answer, pings, fragments, the close handshake, an unmasked frame, and
# an open console closed (1008) when its token is revoked.
# Screenshots and the browser's logs are kept in
# BUILD/test-artefacts/test_dashboard/.
source "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
ART=$E2E_BUILD/test-artefacts/test_dashboard
PY=/usr/bin/python3      # Debian's, with python3-selenium
for t in /usr/bin/chromium /usr/bin/chromedriver oathtool openssl; do
	command -v "$t" >/dev/null || fail "$t is missing: run scripts/deps.sh"
done
"$PY" -c 'import selenium' 2>/dev/null || fail "python3-selenium is missing: run scripts/deps.sh"
[ -f "$SRC/web/node_modules/@xterm/xterm/lib/xterm.mjs" ] ||
	fail "xterm.js is missing from web/node_modules: run scripts/deps.sh"
rm -rf "$ART"
mkdir -p "$ART"
T_ON_EXIT+=("cp '$T_DIR/hcd.log' '$ART/hcd.log'")

# The browser sits in a namespace of its own, linked to hcd's by a veth
# pair, as on another machine: Chromium aborts what it has in flight
# (ERR_NETWORK_CHANGED) whenever an interface comes or goes where it
# runs, and hcd makes bridges and taps in its own namespace.
B_NS=$T_NS-b
T_EXTRA_NS+=("$B_NS")
ip netns add "$B_NS"
ip -n "$B_NS" link set lo up
ip link add hcdash0 netns "$T_NS" type veth peer name hcdash1 netns "$B_NS"
ip -n "$T_NS" addr add fd00:da5b::1/64 dev hcdash0 nodad
ip -n "$B_NS" addr add fd00:da5b::2/64 dev hcdash1 nodad
ip -n "$T_NS" link set hcdash0 up
ip -n "$B_NS" link set hcdash1 up
bexec() { ip netns exec "$B_NS" "$@"; }

make_tls_cert "$T_DIR" "IP:fd00:da5b::1"
hcd_start --listen='[fd00:da5b::1]:8443' --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key"
URL=https://[fd00:da5b::1]:8443
tcurl() { bexec curl -gsk "$@"; }
for i in $(seq 1 50); do tcurl -o /dev/null "$URL/" && break; sleep 0.1; done

# ---- the page's answers ---------------------------------------------------------
tcurl -D "$T_DIR/h" -o "$T_DIR/index.html" "$URL/" || fail "GET / failed"
head -n 1 "$T_DIR/h" | grep -q ' 200' || fail "GET /: $(head -n 1 "$T_DIR/h")"
csp=$(sed -n 's/^content-security-policy: //Ip' "$T_DIR/h" | tr -d '\r')
for d in "default-src 'self'" "script-src 'self'" "style-src 'self'" "connect-src 'self'" \
	"frame-ancestors 'none'" "form-action 'none'"; do
	grep -qF "$d" <<<"$csp" || fail "the page's policy lacks $d: $csp"
done
grep -qi "^x-content-type-options: nosniff" "$T_DIR/h" || fail "no nosniff on the page"
grep -qi "^referrer-policy: no-referrer" "$T_DIR/h" || fail "no Referrer-Policy on the page"
grep -qi "^content-type: text/html; charset=utf-8" "$T_DIR/h" || fail "the page's type"
grep -qi "<script\b[^>]*>[^<]" "$T_DIR/index.html" && fail "the page has an inline script"
grep -qi " style=" "$T_DIR/index.html" && fail "the page has an inline style"
[ "$(tcurl -o /dev/null -w '%{content_type}' "$URL/ui/main.js")" = "text/javascript; charset=utf-8" ] ||
	fail "main.js is not served as JavaScript"
[ "$(tcurl -o /dev/null -w '%{content_type}' "$URL/ui/xterm/lib/xterm.mjs")" = "text/javascript; charset=utf-8" ] ||
	fail "xterm.js is not served"
for p in /ui/../../etc/passwd /ui/%2e%2e/%2e%2e/etc/passwd /ui/xterm/package.json /ui/xterm/../../../package.json; do
	code=$(tcurl --path-as-is -o "$T_DIR/body" -w '%{http_code}' "$URL$p")
	[ "$code" = 404 ] || fail "GET $p: $code"
	grep -q root: "$T_DIR/body" && fail "GET $p served /etc/passwd"
done
api_csp=$(tcurl -D - -o /dev/null "$URL/v1/info" | sed -n 's/^content-security-policy: //Ip' | tr -d '\r')
[ "$api_csp" = "default-src 'none'; frame-ancestors 'none'" ] || fail "the API's policy: $api_csp"
ok "the page: its policy (no inline script or style), nosniff, no-referrer, types; nothing outside web/"

# ---- a member with OTP, an image for everyone ------------------------------------
printf 'dashboard-pw-1\n' | hc user create alice --auth file --password-stdin >/dev/null || fail "create alice"
uri=$(hc --json user otp enable alice | jq -r .uri)
secret=$(sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p' <<<"$uri")
[ -n "$secret" ] || fail "no OTP secret in $uri"
hc image import tiny --kernel "$E2E_GUEST/vmlinuz" --initrd "$E2E_GUEST/initrd.img" \
	--cmdline "$(cat "$E2E_GUEST/cmdline")" --public >/dev/null || fail "import tiny"

# ---- the WebSocket's gate, before a browser uses it -------------------------------
ws_status() {   # ws_status PATH [curl args…]: the status of a WebSocket handshake
	local path=$1
	shift
	tcurl -o /dev/null -w '%{http_code}' --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
		-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$@" "$URL$path"
}
# (Another member: alice's code of this step must stay unused for the browser.)
printf 'dashboard-pw-2\n' | hc user create bob --auth file --password-stdin >/dev/null || fail "create bob"
login=$(tcurl -H 'Content-Type: application/json' -d '{"user":"bob","password":"dashboard-pw-2"}' "$URL/v1/login")
T=$(jq -r .token <<<"$login")
[[ $T == hct_* ]] || fail "curl login: $login"
code=$(ws_status /v1/vms/nope/console -H 'Sec-WebSocket-Protocol: hackcloud.console')
[ "$code" = 401 ] || fail "a WebSocket without a token: $code"
code=$(ws_status /v1/vms/nope/console -H "Sec-WebSocket-Protocol: hackcloud.console, bearer.$T")
[ "$code" = 404 ] || fail "a WebSocket with the token as subprotocol: $code (want 404 for no such VM)"
code=$(ws_status /v1/vms/nope/console -H "Sec-WebSocket-Protocol: hackcloud.console, bearer.$T" \
	-H 'Origin: https://evil.example')
[ "$code" = 403 ] || fail "a WebSocket from another origin: $code"
code=$(tcurl -o /dev/null -w '%{http_code}' -H "Sec-WebSocket-Protocol: bearer.$T" "$URL/v1/vms")
[ "$code" = 401 ] || fail "a subprotocol token outside the WebSocket route: $code"
ok "the console's WebSocket: 401 without a token, 403 from another origin; a subprotocol token counts only there"

# bob's VM boots meanwhile, for the protocol checks after the browser's run.
tcurl -o "$T_DIR/ws.json" -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
	-d '{"name": "ws", "image": "tiny"}' "$URL/v1/vms"
ws_id=$(jq -r .id "$T_DIR/ws.json")
[ ${#ws_id} = 10 ] || fail "bob's VM: $(cat "$T_DIR/ws.json")"

# ---- the browser -------------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C alice@dashboard -f "$T_DIR/id" || fail "ssh-keygen"
truncate -s 1M "$T_DIR/blank.raw"
DASH_PUBKEY=$(cat "$T_DIR/id.pub") DASH_DISK=$T_DIR/blank.raw DASH_URL=$URL DASH_USER=alice DASH_PASSWORD=dashboard-pw-1 DASH_OTP_SECRET=$secret DASH_OUT=$ART \
	bexec "$PY" "$(dirname "$0")/dashboard.py" ||
	fail "the browser's run failed (screenshots and logs in $ART)"
rm -rf "$ART/profile"

# ---- the WebSocket by hand: pings, fragments, close, errors, revocation -------------
wait_log "$ws_id" "built-in shell" 180
bexec "$PY" "$(dirname "$0")/ws_console.py" fd00:da5b::1 8443 "$ws_id" "$T" ||
	fail "the console's WebSocket, by hand"
grep -q "ending a console" "$T_DIR/hcd.log" || fail "hcd did not say why the console ended"

# ---- what hcd saw -------------------------------------------------------------------
# (root sees every VM: the browser's delete took alice's "web" away.)
id=$(jq -r '.[] | select(.name == "web") | .id' <<<"$(hc --json vm list)")
[ -z "$id" ] || fail "the VM deleted in the browser is still listed"
grep -q "hct_" "$T_DIR/hcd.log" && fail "a token reached hcd's log"
ok "screenshots in $ART"
