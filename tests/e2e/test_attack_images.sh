#!/usr/bin/env bash
# Attacks on the image store, as a member would try them (issue 11):
#   1. image poisoning (item 1): a PUT holds its headers open while a
#      second PUT and finalize complete; its late body names /etc/shadow as
#      backing file.  finalize refuses while the first PUT is open; a body
#      that arrives after the upload phase ended (the image deleted) is
#      refused; a placed file is read-only and no hcd handle has it open;
#      an images/<sha256>/ that does not hold what its name says (what the
#      race used to leave) is replaced, never deduplicated onto;
#      qemu-img runs as nobody with RLIMIT_AS/RLIMIT_CPU and -f;
#   2. durability (item 11): a ready image whose rename into the store was
#      lost (a power cut after the commit) survives the staging sweep and
#      is restored;
#   3. SSRF (item 3): a member's import may not reach this host (bridge
#      gateways, its other interfaces, loopback in any spelling, the
#      metadata addresses), a hackcloud network, or private ranges unless
#      import_allow says so — not by DNS, not by a redirect; public
#      servers work; admins keep their rights; hcd's environment proxy is
#      ignored, import_proxy is used;
#   4. caps (item 12): concurrent URL imports per user and in total → 429.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- a qemu-img that says who runs it ---------------------------------------
# First in hcd's PATH: logs its uid, limits and arguments, then runs the
# real one.  T_DIR is 0711, so nobody reaches the script and the log.
mkdir -p "$T_DIR/bin"
chmod 755 "$T_DIR/bin"
qlog=$T_DIR/qemu-img.log
: >"$qlog"
chmod 666 "$qlog"
cat >"$T_DIR/bin/qemu-img" <<EOF
#!/bin/sh
echo "uid=\$(id -u) as=\$(ulimit -v) cpu=\$(ulimit -t) args=\$*" >>$qlog
exec /usr/bin/qemu-img "\$@"
EOF
chmod 755 "$T_DIR/bin/qemu-img"

# ---- the network around hcd ----------------------------------------------------
# A peer namespace stands for the world: a public address (TEST-NET-2,
# 2001:db8:66::/64) and a private one (10.66.0.0/24, fd66::/64).  This
# host has the .1 of each.
peer=hcpeer-$$
T_EXTRA_NS+=("$peer")
ip netns add "$peer"
ip -n "$peer" link set lo up
ip link add "hca$$" type veth peer name "hcb$$"
ip link set "hca$$" netns "$T_NS"
ip link set "hcb$$" netns "$peer"
nsexec ip link set "hca$$" up
ip -n "$peer" link set "hcb$$" up
for a in 10.66.0.1/24 198.51.100.1/24; do nsexec ip addr add "$a" dev "hca$$"; done
for a in fd66::1/64 2001:db8:66::1/64; do nsexec ip addr add "$a" dev "hca$$" nodad; done
for a in 10.66.0.2/24 198.51.100.2/24; do ip -n "$peer" addr add "$a" dev "hcb$$"; done
for a in fd66::2/64 2001:db8:66::2/64; do ip -n "$peer" addr add "$a" dev "hcb$$" nodad; done
# Names as a rebinding DNS would give them (ip netns exec mounts this
# file over /etc/hosts for hcd).
mkdir -p "/etc/netns/$T_NS"
T_ON_EXIT+=("rm -rf /etc/netns/$T_NS")
printf '127.0.0.1 localhost\n10.77.0.1 gw.hc.test\n198.51.100.2 pub.hc.test\n' >"/etc/netns/$T_NS/hosts"

# Servers: one on this host (every address), one in the peer namespace.
lwww=$T_DIR/lwww pwww=$T_DIR/pwww
mkdir -p "$lwww" "$pwww"
head -c $((1024 * 1024)) /dev/urandom >"$lwww/secret.raw"
head -c $((1024 * 1024)) /dev/urandom >"$lwww/admin.raw"
: >"$pwww/secret.raw"   # only redirected from (away/), to this host's server
head -c $((1024 * 1024)) /dev/urandom >"$pwww/pub.raw"
head -c $((1024 * 1024)) /dev/urandom >"$pwww/pub6.raw"
head -c $((1024 * 1024)) /dev/urandom >"$pwww/priv.raw"
head -c $((1024 * 1024)) /dev/urandom >"$pwww/proxied.raw"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$pwww/big.raw"
# serve runs in a command substitution (a subshell): what it adds to
# T_ON_EXIT would be lost, so each server's pid goes to a file that the
# cleanup reads.
T_ON_EXIT+=("for f in $T_DIR/*.srvpid; do [ -f \"\$f\" ] && kill -9 \$(cat \"\$f\"); done")
serve() { # NS WWW NAME [ENV…]: start a server, print its port
	local ns=$1 www=$2 name=$3
	shift 3
	: >"$T_DIR/$name.log"
	ip netns exec "$ns" env HTTP_BIND=:: "$@" python3 "$here/http_server.py" "$www" "$T_DIR/$name.port" \
		"$T_DIR/$name.log" $((1024 * 1024)) >"$T_DIR/$name.err" 2>&1 &
	echo $! >"$T_DIR/$name.srvpid"
	disown
	for i in $(seq 1 50); do [ -s "$T_DIR/$name.port" ] && break; sleep 0.1; done
	[ -s "$T_DIR/$name.port" ] || fail "server $name did not start: $(cat "$T_DIR/$name.err")"
	cat "$T_DIR/$name.port"
}
lport=$(serve "$T_NS" "$lwww" local HTTP_PROXY_MODE=1)
pport=$(serve "$peer" "$pwww" peer HTTP_AWAY="http://127.0.0.1:$lport")

# hcd with the spying qemu-img first in PATH and a proxy in its
# environment that it must ignore (this host's server, which logs what
# it is asked as a proxy).
start() {
	PATH="$T_DIR/bin:$PATH" http_proxy="http://127.0.0.1:$lport" HTTPS_PROXY="http://127.0.0.1:$lport" \
		ALL_PROXY="http://127.0.0.1:$lport" hcd_start --api-rate=0 "$@"
}
start

printf 'alice-password\n' | hc user create alice --auth file --password-stdin >/dev/null || fail "user create alice"
printf 'bob-password\n' | hc user create bob --auth file --password-stdin >/dev/null || fail "user create bob"
login() { # USER PASSWORD → token
	api POST /v1/login '{"user": "'"$1"'", "password": "'"$2"'"}' | jq -r .token
}
ALICE=$(login alice alice-password)
BOB=$(login bob bob-password)
as_alice() { API_TOKEN=$ALICE api "$@"; }

# PUT a file as alice: prints the body, sets PUT_STATUS.
put() { # ID PART FILE
	local out
	out=$(curl -s -X PUT --unix-socket "$T_STATE/api.sock" -H "Authorization: Bearer $ALICE" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$3" -w '\n%{http_code}' \
		"http://hc/v1/images/$1/files/$2")
	PUT_STATUS=${out##*$'\n'}
	printf '%s\n' "${out%$'\n'*}"
}

# A PUT whose body waits until $T_DIR/$2 exists; output in $T_DIR/$2.out.
held_put() { # ID GOFILE FILE
	python3 "$here/slow_put.py" "$T_STATE/api.sock" "/v1/images/$1/files/disk" "$3" "$T_DIR/$2" \
		"$ALICE" >"$T_DIR/$2.out" 2>&1 &
	local i
	for i in $(seq 1 100); do grep -q "^OPEN" "$T_DIR/$2.out" && return 0; sleep 0.1; done
	fail "the held PUT did not open: $(cat "$T_DIR/$2.out")"
}
held_status() { # GOFILE: let it send, print the HTTP status of its answer
	touch "$T_DIR/$1"
	local i
	for i in $(seq 1 100); do grep -q "^STATUS" "$T_DIR/$1.out" && break; sleep 0.1; done
	sed -n 's/^STATUS //p' "$T_DIR/$1.out"
}

qemu-img create -q -f qcow2 "$T_DIR/harmless.qcow2" 1M
qemu-img create -q -f qcow2 -F raw -b /etc/shadow "$T_DIR/shadow.qcow2" 1M
qemu-img create -q -f qcow2 "$T_DIR/official.qcow2" 2M
hsha=$(sha "$T_DIR/harmless.qcow2")

# ---- 1. the race of issue 11 item 1 -------------------------------------------------
as_alice POST /v1/images '{"name": "victim", "boot": "disk"}' >"$T_DIR/resp"
[ "$API_STATUS" = 201 ] || fail "create victim: $API_STATUS $(cat "$T_DIR/resp")"
vid=$(jq -r .id "$T_DIR/resp")
held_put "$vid" go1 "$T_DIR/shadow.qcow2"
put "$vid" disk "$T_DIR/harmless.qcow2" >"$T_DIR/resp"
[ "$PUT_STATUS" = 200 ] || fail "the second PUT: $PUT_STATUS $(cat "$T_DIR/resp")"
[ "$(jq -r .sha256 "$T_DIR/resp")" = "$hsha" ] || fail "PUT's sha256 (hashed on arrival): $(cat "$T_DIR/resp")"
as_alice POST "/v1/images/$vid/finalize" '{}' >"$T_DIR/resp"
[ "$API_STATUS" = 409 ] || fail "finalize with a PUT still open answered $API_STATUS: $(cat "$T_DIR/resp")"
jq -e '.error.code == "upload_open"' "$T_DIR/resp" >/dev/null || fail "finalize: $(cat "$T_DIR/resp")"
ok "finalize refuses (409) while another PUT of the image is open"

# The first PUT's body still belongs to the upload phase: it becomes the
# disk, and the checks judge it.
[ "$(held_status go1)" = 200 ] || fail "the held PUT: $(cat "$T_DIR/go1.out")"
as_alice POST "/v1/images/$vid/finalize" '{}' >"$T_DIR/resp"
[ "$API_STATUS" = 422 ] || fail "finalize of the shadow-backed disk: $API_STATUS $(cat "$T_DIR/resp")"
jq -r .error.message "$T_DIR/resp" | grep -q backing || fail "reason: $(cat "$T_DIR/resp")"
put "$vid" disk "$T_DIR/harmless.qcow2" >/dev/null
as_alice POST "/v1/images/$vid/finalize" '{}' >"$T_DIR/resp"
[ "$API_STATUS" = 200 ] || fail "finalize of the harmless disk: $API_STATUS $(cat "$T_DIR/resp")"
[ "$(jq -r .sha256 "$T_DIR/resp")" = "$hsha" ] || fail "victim's sha256: $(cat "$T_DIR/resp")"
placed=$T_STATE/images/$hsha/disk
cmp "$placed" "$T_DIR/harmless.qcow2" || fail "the placed file is not the harmless disk"
[ "$(stat -c %a "$placed")" = 444 ] || fail "placed file mode $(stat -c %a "$placed")"
[ "$(stat -c %a "$T_STATE/images/$hsha")" = 755 ] || fail "placed dir mode $(stat -c %a "$T_STATE/images/$hsha")"
fds=$(ls -l "/proc/$HCD_PID/fd")
[[ "$fds" != *"images/$hsha"* ]] || fail "hcd holds the placed file open: $fds"
put "$vid" disk "$T_DIR/shadow.qcow2" >"$T_DIR/resp"
[ "$PUT_STATUS" = 409 ] || fail "a PUT to a ready image: $PUT_STATUS"
[ "$(sha "$placed")" = "$hsha" ] || fail "the placed file changed"
[ -z "$(ls -A "$T_STATE/images/staging" 2>/dev/null)" ] || fail "staging left: $(ls -R "$T_STATE/images/staging")"
ok "a late PUT's body never reaches the placed file: 0444, no open handle, hash unchanged"

# A body that arrives after the upload phase ended is refused, and
# nothing of it is written anywhere.
as_alice POST /v1/images '{"name": "late", "boot": "disk"}' >"$T_DIR/resp"
lid=$(jq -r .id "$T_DIR/resp")
held_put "$lid" go2 "$T_DIR/shadow.qcow2"
as_alice DELETE "/v1/images/$lid" >/dev/null
[ "$API_STATUS" = 200 ] || fail "delete with a PUT open: $API_STATUS"
st=$(held_status go2)
[ "$st" = 409 ] || fail "a body after the image was deleted: $st $(cat "$T_DIR/go2.out")"
[ ! -e "$T_STATE/images/staging/$lid" ] || fail "the late body left $(ls -R "$T_STATE/images/staging/$lid")"
[ ! -e "$T_STATE/images/$(sha "$T_DIR/shadow.qcow2")" ] || fail "the shadow-backed disk was placed"
ok "a body arriving after the upload phase ended (image deleted) is refused (409), nothing written"

# What the race used to leave behind: images/<sha of the official disk>/
# holding the shadow-backed qcow2.  Root's upload of the official disk
# must not be deduplicated onto it.
osha=$(sha "$T_DIR/official.qcow2")
mkdir -p "$T_STATE/images/$osha"
cp "$T_DIR/shadow.qcow2" "$T_STATE/images/$osha/disk"
hc image import official --disk "$T_DIR/official.qcow2" >/dev/null || fail "root's upload of official"
[ "$(hc --json image show official | jq -r .sha256)" = "$osha" ] || fail "official's sha256"
cmp "$T_STATE/images/$osha/disk" "$T_DIR/official.qcow2" ||
	fail "root's image was deduplicated onto the poisoned file"
info=$(qemu-img info "$T_STATE/images/$osha/disk")
[[ "$info" != *"backing file"* ]] || fail "a backing file in place: $info"
[ "$(stat -c %a "$T_STATE/images/$osha/disk")" = 444 ] || fail "official: mode $(stat -c %a "$T_STATE/images/$osha/disk")"
grep -q "does not hold what its name says" "$T_DIR/hcd.log" || fail "the replacement was not logged"
ino=$(stat -c %i "$T_STATE/images/$osha/disk")
hc image import official2 --disk "$T_DIR/official.qcow2" >/dev/null || fail "second upload of official"
[ "$(stat -c %i "$T_STATE/images/$osha/disk")" = "$ino" ] || fail "a verified stored file was replaced"
ok "an images/<sha256>/ that lies is replaced; equal content dedups only onto a verified file"

# Every qemu-img that read an uploaded file: nobody, limited, told the format.
grep -E "args=(info|check) " "$qlog" >"$T_DIR/qruns" || fail "qemu-img never ran: $(cat "$qlog")"
if grep -v "^uid=65534 as=1048576 cpu=30 args=\(info\|check\) -f \(raw\|qcow2\) --output=json /dev/fd/3$" \
	"$T_DIR/qruns"; then
	fail "a qemu-img run was not confined (above)"
fi
grep -q "args=check -f qcow2" "$T_DIR/qruns" || fail "no qemu-img check of a qcow2"
ok "$(wc -l <"$T_DIR/qruns") qemu-img runs: all as nobody, RLIMIT_AS 1 GiB, RLIMIT_CPU 30 s, -f given"

# ---- 3. SSRF ---------------------------------------------------------------------
hc net create n1 --ipv6 2001:db8:77::/64 --ipv4 10.77.0.0/24 >/dev/null
gw_up() { [[ "$(nsexec ip -o addr show b000001 2>/dev/null)" == *" 10.77.0.1/24 "* ]]; }
for i in $(seq 1 150); do gw_up && break; sleep 0.2; done
gw_up || fail "the bridge has no gateway address: $(nsexec ip -o addr)"

img_field() { API_TOKEN=${2:-} api GET "/v1/images/$1" | jq -r "$3"; }
wait_imported() { # ID TOKEN → final state
	local i s=
	for i in $(seq 1 240); do
		s=$(img_field "$1" "$2" .state)
		[ "$s" != importing ] && { echo "$s"; return 0; }
		sleep 0.25
	done
	fail "image $1 still importing"
}
import_as() { # TOKEN NAME URL → image ID (201 expected)
	API_TOKEN=$1 api POST /v1/images '{"name": "'"$2"'", "url": "'"$3"'"}' >"$T_DIR/resp"
	[ "$API_STATUS" = 201 ] || fail "import $2: $API_STATUS $(cat "$T_DIR/resp")"
	jq -r .id "$T_DIR/resp"
}
refused() { # NAME URL REASON
	local id
	id=$(import_as "$ALICE" "$1" "$2")
	[ "$(wait_imported "$id" "$ALICE")" = error ] || fail "$1: a member imported from $2"
	img_field "$id" "$ALICE" .error | grep -q "only an admin" || fail "$1: $(img_field "$id" "$ALICE" .error)"
	img_field "$id" "$ALICE" .error | grep -q "$3" || fail "$1: '$(img_field "$id" "$ALICE" .error)' lacks '$3'"
	API_TOKEN=$ALICE api DELETE "/v1/images/$id" >/dev/null
}
L=$lport
refused gw4 "http://10.77.0.1:$L/range/secret.raw" "an address of this host"
refused gw6 "http://[2001:db8:77::1]:$L/range/secret.raw" "an address of this host"
refused uplink "http://10.66.0.1:$L/range/secret.raw" "an address of this host"
refused uplink6 "http://[2001:db8:66::1]:$L/range/secret.raw" "an address of this host"
refused lo4 "http://127.0.0.1:$L/range/secret.raw" "loopback"
refused lo6 "http://[::1]:$L/range/secret.raw" "loopback"
refused mapped "http://[::ffff:127.0.0.1]:$L/range/secret.raw" "loopback"
refused zero "http://0.0.0.0:$L/range/secret.raw" "not a unicast"
refused md4 "http://169.254.169.254/latest/meta-data/" "this host"
refused md6 "http://[fd00:ec2::254]/latest/meta-data/" "an address of this host"
refused net6 "http://[2001:db8:77::99]:$L/range/secret.raw" "inside a hackcloud network"
refused net4 "http://10.77.0.99:$L/range/secret.raw" "inside a hackcloud network"
refused priv4 "http://10.66.0.2:$pport/range/priv.raw" "private address"
refused priv6 "http://[fd66::2]:$pport/range/priv.raw" "private address"
refused dns "http://gw.hc.test:$L/range/secret.raw" "an address of this host"
refused away "http://198.51.100.2:$pport/away/secret.raw" "loopback"
if grep -q "secret.raw" "$T_DIR/local.log" || grep -q "priv.raw" "$T_DIR/peer.log"; then
	fail "a refused import reached a server: $(cat "$T_DIR/local.log" "$T_DIR/peer.log")"
fi
grep -q "^GET /away/secret.raw .*status=302" "$T_DIR/peer.log" || fail "the redirect was not tried"
ok "a member cannot import from this host, its networks, metadata or private ranges (not via DNS or a redirect)"

id=$(import_as "$ALICE" pub "http://pub.hc.test:$pport/range/pub.raw")
[ "$(wait_imported "$id" "$ALICE")" = ready ] || fail "pub: $(img_field "$id" "$ALICE" .error)"
[ "$(img_field "$id" "$ALICE" .sha256)" = "$(sha "$pwww/pub.raw")" ] || fail "pub: wrong content"
id=$(import_as "$ALICE" pub6 "http://[2001:db8:66::2]:$pport/range/pub6.raw")
[ "$(wait_imported "$id" "$ALICE")" = ready ] || fail "pub6: $(img_field "$id" "$ALICE" .error)"
if grep -q "^GET http://" "$T_DIR/local.log"; then fail "hcd used its environment's proxy"; fi
ok "public servers (IPv4 by name, IPv6) work for members, directly: the environment's proxy is ignored"

id=$(import_as "" admin "http://10.77.0.1:$L/range/admin.raw")
[ "$(wait_imported "$id" "")" = ready ] || fail "admin: $(img_field "$id" "" .error)"
ok "an admin may still import from this host"

# ---- 2. durability: a rename lost after the commit ----------------------------------
head -c $((1024 * 1024)) /dev/urandom >"$T_DIR/durable.raw"
hc image import durable --disk "$T_DIR/durable.raw" >/dev/null || fail "upload durable"
did=$(hc --json image show durable | jq -r .id)
dsha=$(sha "$T_DIR/durable.raw")
# Another upload acknowledged (PUT 200) but not finalized.
api POST /v1/images '{"name": "pending", "boot": "disk"}' >"$T_DIR/resp"
pid_=$(jq -r .id "$T_DIR/resp")
curl -sf -X PUT --unix-socket "$T_STATE/api.sock" --data-binary "@$T_DIR/durable.raw" \
	"http://hc/v1/images/$pid_/files/disk" >/dev/null || fail "PUT pending"
hcd_kill9
# What a power cut leaves when the directory was not synced after the
# rename: the row says ready, the files are back in staging.
mv "$T_STATE/images/$dsha" "$T_STATE/images/staging/$did"
start --import-allow=10.66.0.0/24,fd66::/64 --import-max-per-user=1 --import-max-total=2
[ -f "$T_STATE/images/$dsha/disk" ] || fail "the image's files were not restored: $(ls -R "$T_STATE/images")"
cmp "$T_STATE/images/$dsha/disk" "$T_DIR/durable.raw" || fail "restored file differs"
[ ! -e "$T_STATE/images/staging/$did" ] || fail "staging of durable left"
[ "$(hc --json image show durable | jq -r .state)" = ready ] || fail "durable is not ready"
grep -q "restored to the store" "$T_DIR/hcd.log" || fail "the restore was not logged"
api POST "/v1/images/$pid_/finalize" '{}' >"$T_DIR/resp"
[ "$API_STATUS" = 200 ] || fail "finalize after kill -9: $API_STATUS $(cat "$T_DIR/resp")"
ok "after kill -9: a committed image whose rename was lost is restored, an acknowledged PUT survives"

# ---- 3 again: import_allow ----------------------------------------------------------
ALICE=$(login alice alice-password)
id=$(import_as "$ALICE" priv4 "http://10.66.0.2:$pport/range/priv.raw")
[ "$(wait_imported "$id" "$ALICE")" = ready ] || fail "priv4 with import_allow: $(img_field "$id" "$ALICE" .error)"
id=$(import_as "$ALICE" priv6 "http://[fd66::2]:$pport/range/priv.raw")
[ "$(wait_imported "$id" "$ALICE")" = ready ] || fail "priv6 with import_allow: $(img_field "$id" "$ALICE" .error)"
refused uplink2 "http://10.66.0.1:$L/range/secret.raw" "an address of this host"
ok "import_allow opens chosen private ranges, never this host's addresses in them"

# ---- 4. caps on concurrent imports ----------------------------------------------------
BOB=$(login bob bob-password)
a1=$(import_as "$ALICE" slow1 "http://198.51.100.2:$pport/slow/big.raw")
API_TOKEN=$ALICE api POST /v1/images '{"name": "slow2", "url": "http://198.51.100.2:'"$pport"'/slow/big.raw"}' \
	>"$T_DIR/resp"
[ "$API_STATUS" = 429 ] || fail "alice's second import: $API_STATUS $(cat "$T_DIR/resp")"
jq -e '.error.code == "too_many_imports"' "$T_DIR/resp" >/dev/null || fail "429 body: $(cat "$T_DIR/resp")"
r1=$(import_as "" slowr "http://198.51.100.2:$pport/slow/big.raw")
API_TOKEN=$BOB api POST /v1/images '{"name": "slowb", "url": "http://198.51.100.2:'"$pport"'/slow/big.raw"}' \
	>"$T_DIR/resp"
[ "$API_STATUS" = 429 ] || fail "bob's import beyond the total: $API_STATUS $(cat "$T_DIR/resp")"
grep -q import_max_total "$T_DIR/resp" || fail "429 body: $(cat "$T_DIR/resp")"
[ "$(API_TOKEN=$ALICE api GET /v1/images | jq 'map(select(.name == "slow2")) | length')" = 0 ] ||
	fail "a refused import left a row"
API_TOKEN=$ALICE api DELETE "/v1/images/$a1" >/dev/null
a2=$(import_as "$ALICE" slow3 "http://198.51.100.2:$pport/slow/big.raw")
API_TOKEN=$ALICE api DELETE "/v1/images/$a2" >/dev/null
api DELETE "/v1/images/$r1" >/dev/null
ok "import_max_per_user and import_max_total: a clean 429 beyond them, room again after a delete"

# ---- 3 again: import_proxy -------------------------------------------------------------
hcd_stop
start --import-proxy="http://127.0.0.1:$lport"
ALICE=$(login alice alice-password)
id=$(import_as "$ALICE" proxied "http://198.51.100.2:$pport/plain/proxied.raw")
[ "$(wait_imported "$id" "$ALICE")" = ready ] || fail "through import_proxy: $(img_field "$id" "$ALICE" .error)"
grep -q "^PROXY GET http://198.51.100.2:$pport/plain/proxied.raw status=200" "$T_DIR/local.log" ||
	fail "import_proxy was not used: $(cat "$T_DIR/local.log")"
refused viaproxy "http://10.77.0.1:$L/range/secret.raw" "an address of this host"
if grep -q "secret.raw" "$T_DIR/local.log"; then fail "the proxy was asked for a refused address"; fi
ok "import_proxy is used, and a member's request for this host's address never reaches it"

hcd_stop
