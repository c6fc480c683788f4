#!/usr/bin/env bash
# The event stream GET /v1/events (issue 15 §2), read the way a browser's
# fetch() + ReadableStream reads it: a bearer header over the TLS
# listener, events arriving while the response stays open.
#   - a member's stream sees its own VM created, going starting → running,
#     and deleted, in order, and nothing of another member's VM; the other
#     member's (read by `hc events --json`) the reverse; an admin's both;
#   - the headers: text/event-stream, no caching, chunked;
#   - Last-Event-ID resumes right after that event without a sync, an
#     unknown one starts with a sync;
#   - events_max_per_user streams at most (429), a reader that does not
#     read is cut while the others get every event, and hcd stays well;
#   - `hc vm wait` follows the stream;
#   - two hcd on one PostgreSQL: a VM created through host a and started
#     by a's agent shows on host b's stream, states included, and b read
#     them because a announced them.
. "$(dirname "$0")/lib.sh"

PORT=8443
URL="https://[::1]:$PORT"
make_tls_cert "$T_DIR" IP:::1
hcd_start --listen="[::1]:$PORT" --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key" \
	--events-max-per-user=2 --events-buffer=65536 --stop-timeout=3

tcp_curl() { ip netns exec "$T_NS" curl -s --cacert "$T_DIR/tls.crt" "$@"; }
as() {   # as TOKEN METHOD PATH [BODY] → body
	local tok=$1 method=$2 path=$3 body=${4-}
	tcp_curl -X "$method" -H "Authorization: Bearer $tok" ${body:+-H 'Content-Type: application/json'} \
		${body:+--data-binary "$body"} "$URL$path"
}
login() {
	tcp_curl -H 'Content-Type: application/json' \
		--data-binary "{\"user\": \"$1\", \"password\": \"$1-password\"}" "$URL/v1/login" | jq -r .token
}
# A raw stream, as fetch() reads it: curl -N keeps nothing back.
stream() {   # stream TOKEN FILE [HEADER...]: in the background; its PID in STREAM_PID
	local tok=$1 file=$2
	shift 2
	ip netns exec "$T_NS" curl -sN --cacert "$T_DIR/tls.crt" -D "$file.hdr" \
		-H "Authorization: Bearer $tok" "$@" "$URL/v1/events" >"$file" 2>/dev/null &
	STREAM_PID=$!
	T_ON_EXIT+=("kill $STREAM_PID 2>/dev/null")
}
wait_for() {   # wait_for FILE REGEX [SECONDS]
	for _ in $(seq 1 $((${3:-60} * 5))); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	fail "no '$2' in $1 within ${3:-60}s: $(tail -c 600 "$1" 2>/dev/null)"
}
# The events of a raw stream as "ID EVENT KIND REF ACTION STATE" lines.
events_of() {
	awk '/^id: / { id = $2 } /^event: / { ev = $2 } /^data: / { sub(/^data: /, ""); print id "\t" ev "\t" $0 }' "$1" |
		while IFS=$'\t' read -r id ev data; do
			printf '%s %s %s\n' "$id" "$ev" "$(jq -r '"\(.kind) \(.id) \(.action) \(.object.state? // "-")"' <<<"$data")"
		done
}

hc image import tiny --kernel "$E2E_GUEST/vmlinuz" --initrd "$E2E_GUEST/initrd.img" \
	--cmdline "$(cat "$E2E_GUEST/cmdline")" --public >/dev/null
for u in alice bob; do
	printf '%s-password\n' "$u" | hc user create "$u" --auth file --password-stdin >/dev/null
done
ta=$(login alice)
tb=$(login bob)
[[ $ta == hct_* && $tb == hct_* ]] || fail "logins"

# ---- scope and order ------------------------------------------------------------------
stream "$ta" "$T_DIR/alice.sse"
ALICE_PID=$STREAM_PID
HC_TOKEN=$tb HC_CACERT=$T_DIR/tls.crt ip netns exec "$T_NS" "$HC_BIN" --url "$URL" --json events \
	>"$T_DIR/bob.json" 2>"$T_DIR/bob.err" &
BOB_PID=$!
T_ON_EXIT+=("kill $BOB_PID 2>/dev/null")
"$HC_BIN" events >"$T_DIR/admin.txt" 2>&1 &
ADMIN_PID=$!
T_ON_EXIT+=("kill $ADMIN_PID 2>/dev/null")
wait_for "$T_DIR/alice.sse" '^event: sync'
wait_for "$T_DIR/bob.json" '"kind":"sync"'
wait_for "$T_DIR/admin.txt" ' sync: '
tr -d '\r' <"$T_DIR/alice.sse.hdr" >"$T_DIR/h"
grep -qi '^content-type: text/event-stream' "$T_DIR/h" || fail "content type: $(cat "$T_DIR/h")"
grep -qiE '^cache-control: no-(cache|store)' "$T_DIR/h" || fail "cache-control: $(cat "$T_DIR/h")"
grep -qi '^transfer-encoding: chunked' "$T_DIR/h" || fail "not chunked: $(cat "$T_DIR/h")"
ok "streams open: text/event-stream, not cached, chunked, a sync first"

a1=$(as "$ta" POST /v1/vms '{"name": "a1", "image": "tiny"}' | jq -r .id)
b1=$(as "$tb" POST /v1/vms '{"name": "b1", "image": "tiny", "start": false}' | jq -r .id)
[[ $a1 =~ ^[0-9a-f]{10}$ && $b1 =~ ^[0-9a-f]{10}$ ]] || fail "creates: $a1 $b1"
wait_for "$T_DIR/alice.sse" "\"id\":\"$a1\",\"object\":\\{[^}]*\"state\":\"running\""
as "$ta" DELETE "/v1/vms/$a1" >/dev/null
wait_for "$T_DIR/alice.sse" '^event: vm.deleted'
events_of "$T_DIR/alice.sse" >"$T_DIR/alice.ev"
grep -q "$b1" "$T_DIR/alice.sse" && fail "alice saw bob's VM: $(grep "$b1" "$T_DIR/alice.sse")"
grep -q '"kind":"host"' "$T_DIR/alice.sse" && fail "a member saw a host"
awk '{ print $1 }' "$T_DIR/alice.ev" | sort -n -c 2>/dev/null || fail "ids not increasing: $(cat "$T_DIR/alice.ev")"
awk -v id="$a1" '$4 == id { print $5, $6 }' "$T_DIR/alice.ev" | uniq >"$T_DIR/alice.seq"
head -1 "$T_DIR/alice.seq" | grep -q '^created ' || fail "a1 did not start with created: $(cat "$T_DIR/alice.seq")"
[ "$(tail -1 "$T_DIR/alice.seq")" = "deleted -" ] || fail "a1 did not end deleted: $(cat "$T_DIR/alice.seq")"
s_start=$(grep -n '^updated starting$' "$T_DIR/alice.seq" | head -1 | cut -d: -f1)
s_run=$(grep -n '^updated running$' "$T_DIR/alice.seq" | head -1 | cut -d: -f1)
[ -n "$s_start" ] && [ -n "$s_run" ] && [ "$s_start" -lt "$s_run" ] ||
	fail "a1 did not go starting → running: $(cat "$T_DIR/alice.seq")"
ok "alice's stream: a1 $(paste -sd, "$T_DIR/alice.seq"), nothing of bob's"

wait_for "$T_DIR/bob.json" "\"id\":\"$b1\""
grep -q "$a1" "$T_DIR/bob.json" && fail "bob saw alice's VM"
jq -e --arg id "$b1" 'select(.id == $id) | .action == "created" and .object.owner == "bob"' \
	"$T_DIR/bob.json" >/dev/null || fail "bob's created event: $(cat "$T_DIR/bob.json")"
wait_for "$T_DIR/admin.txt" "vm.deleted $a1"
grep -q "vm.created $b1 b1 " "$T_DIR/admin.txt" || fail "the admin did not see b1: $(cat "$T_DIR/admin.txt")"
ok "bob's stream (hc events --json) has b1 and not a1; the admin's (hc events) both"

# ---- resuming ------------------------------------------------------------------------------
created=$(awk -v id="$a1" '$4 == id && $5 == "created" { print $1 }' "$T_DIR/alice.ev")
stream "$ta" "$T_DIR/resume.sse" -H "Last-Event-ID: $created"
wait_for "$T_DIR/resume.sse" '^event: vm.deleted'
kill "$STREAM_PID" 2>/dev/null
events_of "$T_DIR/resume.sse" >"$T_DIR/resume.ev"
grep -q ' sync ' "$T_DIR/resume.ev" && fail "a resumed stream began with a sync"
first=$(head -1 "$T_DIR/resume.ev" | awk '{ print $1 }')
[ "$first" -gt "$created" ] || fail "resumed at $first, asked after $created"
diff <(awk -v c="$created" '$1 > c' "$T_DIR/alice.ev") "$T_DIR/resume.ev" >/dev/null ||
	fail "the resumed stream differs: $(cat "$T_DIR/resume.ev") vs $(cat "$T_DIR/alice.ev")"
stream "$ta" "$T_DIR/unknown.sse" -H "Last-Event-ID: 99999999"
wait_for "$T_DIR/unknown.sse" '^event: sync'
kill "$STREAM_PID" 2>/dev/null
ok "Last-Event-ID $created resumes right after it, without a sync; an unknown ID gets a sync"

# ---- limits ------------------------------------------------------------------------------------
stream "$ta" "$T_DIR/second.sse"
wait_for "$T_DIR/second.sse" '^event: sync'
code=$(tcp_curl -o "$T_DIR/third" -D "$T_DIR/third.hdr" -w '%{http_code}' --max-time 5 \
	-H "Authorization: Bearer $ta" "$URL/v1/events")
[ "$code" = 429 ] || fail "a third stream of alice: $code"
tr -d '\r' <"$T_DIR/third.hdr" | grep -qi '^retry-after: ' || fail "429 without Retry-After"
kill "$STREAM_PID" "$ALICE_PID" 2>/dev/null
ok "events_max_per_user = 2: the third stream is refused 429 with Retry-After"

# A reader that reads nothing: cut once it is events_buffer behind, while
# a reader that keeps up gets every event.
rm -f "$T_DIR/go"
python3 "$(dirname "$0")/sse_slow.py" "$T_STATE/api.sock" "$T_DIR/go" >"$T_DIR/slow.out" &
SLOW_PID=$!
T_ON_EXIT+=("kill $SLOW_PID 2>/dev/null")
wait_for "$T_DIR/slow.out" '^headers'
host=$(hc --json host list | jq -r '.[0].name')
before=$(grep -c '^[0-9]* host.updated ' "$T_DIR/admin.txt" || true)
N=1500
for i in $(seq 1 $N); do   # one curl, N requests on one connection
	[ "$i" = 1 ] || echo next
	printf 'url = "http://hc/v1/hosts/%s/drain"\nunix-socket = "%s"\nheader = "Content-Type: application/json"\ndata = "{\\"drain\\": %s}"\noutput = "/dev/null"\n' \
		"$host" "$T_STATE/api.sock" "$( [ $((i % 2)) = 1 ] && echo true || echo false)"
done >"$T_DIR/toggles.curl"
curl -s -K "$T_DIR/toggles.curl" || fail "the drain toggles"
for _ in $(seq 1 150); do
	[ "$(grep -c '^[0-9]* host.updated ' "$T_DIR/admin.txt")" -ge $((before + N)) ] && break
	sleep 0.2
done
got=$(( $(grep -c '^[0-9]* host.updated ' "$T_DIR/admin.txt") - before ))
[ "$got" = $N ] || fail "the keeping-up reader got $got of $N host events"
curl -sf --unix-socket "$T_STATE/api.sock" http://hc/metrics >"$T_DIR/m.txt"
cut=$(awk '$1 == "hackcloud_event_streams_cut_total" { print $2 }' "$T_DIR/m.txt")
[ "${cut:-0}" -ge 1 ] || fail "no stream was cut: $(grep event_ "$T_DIR/m.txt")"
touch "$T_DIR/go"
wait "$SLOW_PID" || true
read -r how bytes <"$T_DIR/slow.out" < <(tail -1 "$T_DIR/slow.out")
[ "$how" = eof ] || fail "the slow reader's stream was not closed: $(cat "$T_DIR/slow.out")"
hc info >/dev/null || fail "hcd does not answer after cutting a stream"
ok "a reader that does not read is cut after $bytes bytes; the one that reads got all $N events"

# ---- hc vm wait on the stream ----------------------------------------------------------------
# Stopping takes seconds (ACPI, then quit after stop_timeout): long enough
# that a poller would ask many times.  On the stream, hc asks once.
metric() {
	curl -sf --unix-socket "$T_STATE/api.sock" http://hc/metrics |
		awk -v s="$1" 'index($0, s) == 1 { print $NF }'
}
gets() { metric 'hackcloud_api_requests_total{route="/v1/vms/{}",method="GET",code="200"}'; }
hc vm create w1 --image tiny >/dev/null
hc vm wait w1 --state running --timeout 60 || fail "hc vm wait --state running"
hc vm stop w1 >/dev/null
g0=$(gets); s0=$(metric hackcloud_event_syncs_total)
hc --json vm wait w1 --state stopped --timeout 90 | jq -e '.state == "stopped"' >/dev/null ||
	fail "hc vm wait --state stopped"
g1=$(gets); s1=$(metric hackcloud_event_syncs_total)
[ $((g1 - g0)) = 1 ] && [ $((s1 - s0)) = 1 ] ||
	fail "hc vm wait polled: $((g1 - g0)) GETs, $((s1 - s0)) streams"
ok "hc vm wait follows the stream: one GET, one stream, no polling"
# Without a stream (the user's streams are all taken), it polls.
ip netns exec "$T_NS" curl -sN --unix-socket "$T_STATE/api.sock" http://hc/v1/events >/dev/null &
EXTRA_PID=$!
T_ON_EXIT+=("kill $EXTRA_PID 2>/dev/null")
hc vm start w1 >/dev/null
hc vm wait w1 --state running --timeout 60 >/dev/null || fail "vm wait while no stream is free"
hc vm stop w1 >/dev/null
g0=$(gets)
hc vm wait w1 --state stopped --timeout 90 || fail "hc vm wait --state stopped by polling"
g1=$(gets)
[ $((g1 - g0)) -gt 1 ] || fail "no polling without a stream: $((g1 - g0)) GETs"
kill "$EXTRA_PID" 2>/dev/null
hc vm delete w1 >/dev/null
hc vm wait w1 --gone --timeout 60 || fail "hc vm wait --gone"
ok "without a free stream it polls ($((g1 - g0)) GETs) and still gets there"
kill "$ADMIN_PID" "$BOB_PID" 2>/dev/null

# hc events across a restart of hcd: it comes back on its own and resumes
# where it was (Last-Event-ID), without a second sync.
"$HC_BIN" events >"$T_DIR/follow.txt" 2>&1 &
FOLLOW_PID=$!
T_ON_EXIT+=("kill $FOLLOW_PID 2>/dev/null")
wait_for "$T_DIR/follow.txt" ' sync: '
hcd_stop
hcd_start --listen="[::1]:$PORT" --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key" \
	--events-max-per-user=2 --events-buffer=65536 --stop-timeout=3
hc host drain "$host" >/dev/null
wait_for "$T_DIR/follow.txt" "host.updated $host state=live drain=yes"
[ "$(grep -c ' sync: ' "$T_DIR/follow.txt")" = 1 ] ||
	fail "hc events took a new sync after the restart: $(cat "$T_DIR/follow.txt")"
kill "$FOLLOW_PID" 2>/dev/null
ok "hc events follows across a restart of hcd, resuming with Last-Event-ID"
hcd_stop

# ---- across hosts -------------------------------------------------------------------------------
. "$(dirname "$0")/cluster.sh"
# shellcheck disable=SC2034 # cluster.sh reads it
CL_HCD_ARGS=(--stop-timeout=3 --resync-interval=600)
cl_setup a b
cl_hcd_start a
cl_hcd_start b
hc_on b --json events >"$T_DIR/b.json" 2>"$T_DIR/b.err" &
BSTREAM_PID=$!
T_ON_EXIT+=("kill $BSTREAM_PID 2>/dev/null")
wait_for "$T_DIR/b.json" '"kind":"sync"'
import_tiny tiny
x=$(hc --json vm create x --image tiny --host a | jq -r .id)
wait_state x running 60
wait_for "$T_DIR/b.json" "\"id\":\"$x\",\"object\":\\{[^}]*\"state\":\"running\""
jq -r --arg id "$x" 'select(.id == $id) | "\(.action) \(.object.state)"' "$T_DIR/b.json" | uniq \
	>"$T_DIR/b.seq"
head -1 "$T_DIR/b.seq" | grep -q '^created ' || fail "b: x not created first: $(cat "$T_DIR/b.seq")"
grep -q '^updated starting$' "$T_DIR/b.seq" || fail "b did not see a's agent start x: $(cat "$T_DIR/b.seq")"
ann=$(api_on b GET /metrics | awk '$1 == "hackcloud_event_announcements_total" { print $2 }')
[ "${ann:-0}" -gt 0 ] || fail "b read no event because a announced it"
ok "host b's stream shows x made through a and started by a's agent ($(paste -sd, "$T_DIR/b.seq")), announced"
hc vm delete x >/dev/null
wait_for "$T_DIR/b.json" "\"action\":\"deleted\",\"id\":\"$x\""
ok "and its deletion"
