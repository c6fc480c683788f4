#!/usr/bin/env bash
# Images from the web and the disks of a VM (issue 6).
#
# A small HTTP server (http_server.py, on loopback inside the test's
# namespace) serves image files; hcd downloads them itself:
#   - the right checksum: ready, content-addressed, byte-identical, and a
#     boot-sector disk from a URL boots by firmware; progress lines on a
#     non-terminal stderr;
#   - a wrong checksum, a qcow2 backed by /etc/shadow, HTTP 404, a redirect
#     to file://, a member's import from 127.0.0.1: never ready, state
#     error with the reason, no file left;
#   - a server that drops the connection mid-file: resumed with a Range
#     request; one that cannot resume: started over, still right;
#   - hcd killed -9 mid-download: the next hcd resumes from its checkpoint
#     with a Range request; the partial file never becomes an image;
#   - DELETE of an importing image stops the transfer and removes the files.
# Then the VM disks: --disk-size grows a disk image's overlay (and refuses
# to shrink it), --disk adds empty virtio-blk data disks, and the tiny
# guest sees exactly those sizes in /sys/block/vd*/size; all of it goes
# with the VM.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
www=$T_DIR/www
mkdir -p "$www"
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- the files ---------------------------------------------------------------
head -c $((24 * 1024 * 1024)) /dev/urandom >"$www/big.raw"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$www/mid.raw"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$www/wrong.raw"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$www/gone.raw"
head -c $((1024 * 1024)) /dev/urandom >"$T_DIR/up.raw"
qemu-img create -q -f qcow2 -F raw -b /etc/shadow "$www/shadow.qcow2" 1M
# The boot sector of test_lifecycle.sh: prints a marker on COM1 and halts.
{
	printf '\x31\xc0\x8e\xd8\xbe\x18\x7c\xba\xf8\x03\xac\x84\xc0\x74\x03\xee\xeb\xf8\xf4\xeb\xfd\x90\x90\x90'
	printf 'HACKCLOUD-URL-BOOT-OK\n\0'
} >"$T_DIR/boot.img"
truncate -s 510 "$T_DIR/boot.img"
printf '\x55\xaa' >>"$T_DIR/boot.img"
truncate -s 2M "$T_DIR/boot.img"
qemu-img convert -q -f raw -O qcow2 "$T_DIR/boot.img" "$www/boot.qcow2"

# ---- the server ----------------------------------------------------------------
log=$T_DIR/http.log
: >"$log"
# A simple command (not nsexec) so that $! is the server itself.
ip netns exec "$T_NS" python3 "$here/http_server.py" "$www" "$T_DIR/port" "$log" $((2 * 1024 * 1024)) \
	>"$T_DIR/http.err" 2>&1 &
T_ON_EXIT+=("kill -9 $!")
disown # its end is no news
for i in $(seq 1 50); do [ -s "$T_DIR/port" ] && break; sleep 0.1; done
[ -s "$T_DIR/port" ] || fail "the HTTP server did not start: $(cat "$T_DIR/http.err")"
base=http://127.0.0.1:$(cat "$T_DIR/port")

hcd_start

img_field() { api GET "/v1/images/$1" | jq -r "$2"; }

# Wait until an image leaves state importing; prints the final state.
wait_imported() {
	local ref=$1 timeout=${2:-120} i s=
	for i in $(seq 1 $((timeout * 4))); do
		s=$(img_field "$ref" .state)
		[ "$s" != importing ] && { echo "$s"; return 0; }
		sleep 0.25
	done
	fail "image $ref still importing after ${timeout}s"
}

# No image file and no staging directory holds this content or this image.
no_files_of() {
	local content_sha=$1 id=$2 i
	for i in $(seq 1 40); do
		[ ! -e "$T_STATE/images/$content_sha" ] && [ ! -e "$T_STATE/images/staging/$id" ] && return 0
		sleep 0.25
	done
	fail "files left behind: $(ls -R "$T_STATE/images" | head -20)"
}

# ---- the right checksum, through hc ------------------------------------------
hc image import boot --url "$base/range/boot.qcow2" --sha256 "$(sha "$www/boot.qcow2")" \
	>"$T_DIR/out" 2>"$T_DIR/err" || fail "import with the right checksum failed: $(cat "$T_DIR/err")"
[ "$(hc --json image show boot | jq -r .state)" = ready ] || fail "boot is not ready"
[ "$(hc --json image show boot | jq -r .format)" = qcow2 ] || fail "boot is not qcow2"
[ "$(hc --json image show boot | jq -r .size)" = $((2 * 1024 * 1024)) ] || fail "virtual size is not 2 MiB"
[ "$(hc --json image show boot | jq -r .source)" = "$base/range/boot.qcow2" ] || fail "source not recorded"
bsha=$(hc --json image show boot | jq -r .sha256)
[ "$bsha" = "$(sha "$www/boot.qcow2")" ] || fail "image sha256 $bsha differs from the file's"
cmp "$T_STATE/images/$bsha/disk" "$www/boot.qcow2" || fail "stored disk differs from the served file"
qemu-img info "$T_STATE/images/$bsha/disk" >/dev/null || fail "stored disk is not valid for qemu-img"
[ -z "$(ls -A "$T_STATE/images/staging" 2>/dev/null)" ] || fail "staging not empty: $(ls "$T_STATE/images/staging")"
ok "URL import with the right checksum: ready, content-addressed, byte-identical"

# A disk from the web boots by firmware; --disk-size grows its overlay,
# --disk adds data disks next to it.
hc vm create webvm --image boot --memory 64 --disk-size 64M --disk 16M >/dev/null ||
	fail "vm create from the imported image failed"
wait_log webvm HACKCLOUD-URL-BOOT-OK 90
wid=$(vm_field webvm .id)
[ "$(vm_field webvm .disk_size)" = $((64 << 20)) ] || fail "disk_size: $(vm_field webvm .disk_size)"
[ "$(vm_field webvm '.disks | map(.size) | join(",")')" = $((16 << 20)) ] || fail "disks: $(vm_field webvm .disks)"
vsize() { qemu-img info -U --output=json "$1" | jq -r '.["virtual-size"]'; }
[ "$(vsize "$T_STATE/vms/$wid/disk.qcow2")" = $((64 << 20)) ] || fail "overlay is not 64 MiB"
qemu-img info -U "$T_STATE/vms/$wid/disk.qcow2" | grep -q "backing file: $T_STATE/images/$bsha/disk" ||
	fail "overlay is not backed by the image"
[ "$(vsize "$T_STATE/vms/$wid/data0.qcow2")" = $((16 << 20)) ] || fail "data0 is not 16 MiB"
ok "the imported disk boots by firmware; overlay grown to 64 MiB, a 16 MiB data disk"

# ---- progress off a terminal, a redirect, equal content -----------------------
hc image import mid --url "$base/slow/mid.raw" >/dev/null 2>"$T_DIR/progress" ||
	fail "import of mid failed: $(cat "$T_DIR/progress")"
[ "$(hc --json image show mid | jq -r .sha256)" = "$(sha "$www/mid.raw")" ] || fail "mid: wrong content"
grep -q '^mid: 100%$' "$T_DIR/progress" || fail "no 100% line: $(cat "$T_DIR/progress")"
lines=$(grep -c '^mid: [0-9]*%$' "$T_DIR/progress")
[ "$lines" -ge 3 ] && [ "$lines" -le 21 ] || fail "$lines progress lines: $(cat "$T_DIR/progress")"
if grep -q $'\r' "$T_DIR/progress"; then fail "terminal control characters in a log"; fi
ok "$lines plain progress lines (at most one per 5 %) on a non-terminal stderr"

hc image import again --url "$base/redirect/boot.qcow2" >/dev/null 2>"$T_DIR/err" ||
	fail "import through a redirect failed: $(cat "$T_DIR/err")"
[ "$(hc --json image show again | jq -r .sha256)" = "$bsha" ] || fail "again: wrong content"
grep -q "^GET /redirect/boot.qcow2 .*status=302" "$log" || fail "no redirect was served"
hc image delete again >/dev/null
[ -f "$T_STATE/images/$bsha/disk" ] || fail "deleting one of two equal images removed the shared file"
ok "a redirect is followed; equal content is stored once and outlives one of its images"

# The upload path keeps working (and shows no progress off a terminal).
hc image import up --disk "$T_DIR/up.raw" >/dev/null 2>"$T_DIR/err" || fail "upload failed: $(cat "$T_DIR/err")"
[ ! -s "$T_DIR/err" ] || fail "an upload printed to a non-terminal stderr: $(cat "$T_DIR/err")"
[ "$(hc --json image show up | jq -r .format)" = raw ] || fail "upload: not raw"
hc image delete up >/dev/null
ok "upload of a local disk file still works"

# ---- never ready: wrong checksum, /etc/shadow backing, 404, file:// ----------
zero=$(printf '0%.0s' $(seq 1 64))
if hc image import wrong --url "$base/range/wrong.raw" --sha256 "$zero" >/dev/null 2>"$T_DIR/err"; then
	fail "a wrong checksum was accepted"
fi
grep -q "checksum mismatch" "$T_DIR/err" || fail "hc did not say why: $(cat "$T_DIR/err")"
hc image show wrong >/dev/null 2>&1 && fail "hc left the failed image behind"
ok "hc: a wrong checksum fails with the reason and leaves no image"

# The same through the API, which keeps the failed row for its owner to see.
refuse() {
	local name=$1 body=$2 reason=$3 content_sha=$4 id state
	api POST /v1/images "$body" >"$T_DIR/resp"
	[ "$API_STATUS" = 201 ] || fail "$name: POST answered $API_STATUS: $(cat "$T_DIR/resp")"
	id=$(jq -r .id "$T_DIR/resp")
	state=$(wait_imported "$id" 60)
	[ "$state" = error ] || fail "$name: state $state, wanted error"
	img_field "$id" .error | grep -q "$reason" || fail "$name: error '$(img_field "$id" .error)' lacks '$reason'"
	[ "$(img_field "$id" .sha256)" = null ] || fail "$name: has a sha256"
	no_files_of "$content_sha" "$id"
	api POST /v1/vms '{"name": "never", "image": "'"$id"'"}' >"$T_DIR/resp"
	[ "$API_STATUS" = 409 ] || fail "$name: a VM from an image in error: $API_STATUS"
	api DELETE "/v1/images/$id" >/dev/null
	[ "$API_STATUS" = 200 ] || fail "$name: DELETE answered $API_STATUS"
}
refuse wrong '{"name": "wrong", "url": "'"$base"'/range/wrong.raw", "sha256": "'"$zero"'"}' \
	"checksum mismatch" "$(sha "$www/wrong.raw")"
refuse shadow '{"name": "shadow", "url": "'"$base"'/range/shadow.qcow2"}' \
	"backing" "$(sha "$www/shadow.qcow2")"
refuse missing '{"name": "missing", "url": "'"$base"'/range/no-such.qcow2"}' "HTTP 404" "$zero"
refuse tofile '{"name": "tofile", "url": "'"$base"'/tofile/wrong.raw"}' "" "$zero"
ok "wrong checksum, a qcow2 backed by /etc/shadow, 404, redirect to file://: state error, no files"

# Input the API refuses outright.
for body in '{"name": "u1", "url": "ftp://127.0.0.1/x.qcow2"}' \
	'{"name": "u2", "url": "file:///etc/shadow"}' \
	'{"name": "u3", "url": "http://user:secret@127.0.0.1/x"}' \
	'{"name": "u4", "url": "not a url"}' \
	'{"name": "u5", "url": "/relative/x"}' \
	'{"name": "u6", "url": "http://127.0.0.1/x", "sha256": "abc"}' \
	'{"name": "u7", "boot": "disk", "sha256": "'"$zero"'"}' \
	'{"name": "u8", "url": "http://127.0.0.1/x", "boot": "kernel"}' \
	'{"name": "u9", "url": "http://127.0.0.1/x", "visibility": "everyone"}' \
	'{"name": "u10", "url": 42}'; do
	api POST /v1/images "$body" >"$T_DIR/resp"
	[ "$API_STATUS" = 400 ] || fail "$body: status $API_STATUS: $(cat "$T_DIR/resp")"
	jq -e .error.message "$T_DIR/resp" >/dev/null || fail "$body: not a JSON error"
done
[ "$(api GET /v1/images | jq 'map(select(.name | startswith("u"))) | length')" = 0 ] ||
	fail "a refused import left a row"
ok "ftp://, file://, credentials, relative URLs and bad fields: 400"

# A member may not import from this host's loopback (or link-local)
# addresses: whatever a local service answers would become a disk.
printf 'alice-password\n' | hc user create alice --auth file --password-stdin >/dev/null ||
	fail "user create alice"
api POST /v1/login '{"user": "alice", "password": "alice-password"}' >"$T_DIR/login"
API_TOKEN=$(jq -r .token "$T_DIR/login")
api POST /v1/images '{"name": "sneaky", "url": "'"$base"'/range/mid.raw"}' >"$T_DIR/resp"
[ "$API_STATUS" = 201 ] || fail "member import: $API_STATUS $(cat "$T_DIR/resp")"
id=$(jq -r .id "$T_DIR/resp")
[ "$(wait_imported "$id" 30)" = error ] || fail "a member imported from 127.0.0.1"
img_field "$id" .error | grep -q "only an admin" || fail "reason: $(img_field "$id" .error)"
api DELETE "/v1/images/$id" >/dev/null
unset API_TOKEN
ok "a member's import from 127.0.0.1 is refused at connect time"

# ---- interrupted transfers -----------------------------------------------------
bigsha=$(sha "$www/big.raw")
api POST /v1/images '{"name": "cut", "url": "'"$base"'/cut/mid.raw", "visibility": "public"}' >"$T_DIR/resp"
id=$(jq -r .id "$T_DIR/resp")
[ "$(jq -r .visibility "$T_DIR/resp")" = public ] || fail "visibility not returned"
[ "$(wait_imported "$id" 60)" = ready ] || fail "cut: $(img_field "$id" .error)"
[ "$(img_field "$id" .sha256)" = "$(sha "$www/mid.raw")" ] || fail "cut: wrong content after resume"
grep -q "^GET /cut/mid.raw range=bytes=[1-9][0-9]*- .*status=206" "$log" ||
	fail "no ranged request after the cut: $(grep /cut/ "$log")"
ok "a dropped connection is resumed with a Range request (206)"

api POST /v1/images '{"name": "cutplain", "url": "'"$base"'/cutplain/mid.raw"}' >"$T_DIR/resp"
id=$(jq -r .id "$T_DIR/resp")
[ "$(wait_imported "$id" 60)" = ready ] || fail "cutplain: $(img_field "$id" .error)"
[ "$(img_field "$id" .sha256)" = "$(sha "$www/mid.raw")" ] || fail "cutplain: wrong content after restart"
grep -q "^GET /cutplain/mid.raw range=bytes=[1-9][0-9]*- .*status=200" "$log" ||
	fail "no retry against the server without ranges: $(grep /cutplain/ "$log")"
ok "a server that cannot resume: started over from byte 0, right content"

# hcd killed -9 in the middle of a slow download (2 MiB/s): the next hcd
# resumes from the last checkpoint, and only a complete file becomes the image.
api POST /v1/images '{"name": "big", "url": "'"$base"'/slow/big.raw", "sha256": "'"$bigsha"'"}' >"$T_DIR/resp"
id=$(jq -r .id "$T_DIR/resp")
for i in $(seq 1 120); do
	done_=$(img_field "$id" '.progress.done // 0')
	[ "$done_" -ge $((8 << 20)) ] && break
	sleep 0.25
done
[ "$done_" -ge $((8 << 20)) ] || fail "download did not progress: $(api GET "/v1/images/$id")"
[ "$(img_field "$id" .progress.total)" = $((24 << 20)) ] || fail "progress total: $(img_field "$id" .progress)"
hcd_kill9
[ -e "$T_STATE/images/$bigsha" ] && fail "a partial download became an image file"
[ -s "$T_STATE/images/staging/$id/checkpoint" ] || fail "no checkpoint after kill -9"
hcd_start
[ "$(wait_imported "$id" 90)" = ready ] || fail "big after restart: $(img_field "$id" .error)"
[ "$(img_field "$id" .sha256)" = "$bigsha" ] || fail "big: wrong content after resume"
cmp "$T_STATE/images/$bigsha/disk" "$www/big.raw" || fail "big: stored file differs"
# The first hcd asked for the whole file; only the second can have sent a Range.
grep -q "^GET /slow/big.raw range=bytes=[1-9][0-9]*- if-range=\".* status=206" "$log" ||
	fail "no ranged request with If-Range after the restart: $(grep /slow/big "$log")"
grep -q "resuming at byte" "$T_DIR/hcd.log" || fail "hcd did not log the resume"
ok "hcd killed -9 mid-download: resumed from its checkpoint with Range + If-Range"

# DELETE while importing: the transfer stops and nothing is left.
api POST /v1/images '{"name": "gone", "url": "'"$base"'/slow/gone.raw"}' >"$T_DIR/resp"
id=$(jq -r .id "$T_DIR/resp")
for i in $(seq 1 80); do [ "$(img_field "$id" '.progress.done // 0')" -gt 0 ] && break; sleep 0.25; done
api DELETE "/v1/images/$id" >/dev/null
[ "$API_STATUS" = 200 ] || fail "DELETE of an importing image: $API_STATUS"
no_files_of "$(sha "$www/gone.raw")" "$id"
for i in $(seq 1 40); do grep -q "^GET /slow/gone.raw " "$log" && break; sleep 0.25; done
grep -q "^GET /slow/gone.raw " "$log" || fail "the server still sends gone.raw"
sent=$(grep "^GET /slow/gone.raw" "$log" | tail -1 | sed 's/.*sent=//')
[ "$sent" -lt $((8 * 1024 * 1024)) ] || fail "the whole file was sent despite the delete"
ok "DELETE aborts the transfer ($sent of 8 MiB sent) and removes the partial file"

# ---- VM disks in a booted tiny guest ---------------------------------------------
import_tiny tiny
api POST /v1/vms '{"name": "x1", "image": "boot", "disk_size": 1048576}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "disk_size below the image's size: $API_STATUS"
api POST /v1/vms '{"name": "x2", "image": "tiny", "disk_size": 1000}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "disk_size 1000: $API_STATUS"
api POST /v1/vms '{"name": "x3", "image": "tiny", "disks": [{"size": 1048576}, {"size": 1048576},
	{"size": 1048576}, {"size": 1048576}, {"size": 1048576}, {"size": 1048576}, {"size": 1048576},
	{"size": 1048576}, {"size": 1048576}]}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "nine data disks: $API_STATUS"
api POST /v1/vms '{"name": "x4", "image": "tiny", "disks": [{"size": 1048576, "x": 1}]}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "a disk with an unknown field: $API_STATUS"
api POST /v1/vms '{"name": "x5", "image": "tiny", "disks": [1048576]}' >/dev/null
[ "$API_STATUS" = 400 ] || fail "a disk that is not an object: $API_STATUS"
if hc vm create x6 --image tiny --disk 4X >/dev/null 2>&1; then fail "--disk 4X accepted"; fi
[ "$(api GET /v1/vms | jq 'map(select(.name | startswith("x"))) | length')" = 0 ] || fail "a refused VM exists"
ok "bad disk sizes refused (400 from the API, usage error from hc)"

hc vm create disks --image tiny --disk-size 64M --disk 32M --disk 16M >/dev/null || fail "vm create with disks failed"
did=$(vm_field disks .id)
hc vm show disks | grep -q "^data disks: *32.0 MiB, 16.0 MiB$" || fail "hc vm show: $(hc vm show disks)"
wait_log disks HACKCLOUD-BOOT-OK 180
out=$(guest_run disks 60 'for d in vda vdb vdc vdd; do echo "$d=$(cat /sys/block/$d/size 2>/dev/null || echo none)"; done')
echo "$out" | grep -q "^vda=131072$" || fail "vda is not 64 MiB: $out"
echo "$out" | grep -q "^vdb=65536$" || fail "vdb is not 32 MiB: $out"
echo "$out" | grep -q "^vdc=32768$" || fail "vdc is not 16 MiB: $out"
echo "$out" | grep -q "^vdd=none$" || fail "an extra disk appeared: $out"
ok "the tiny guest sees vda 64 MiB (root), vdb 32 MiB and vdc 16 MiB"

for vm in disks webvm; do
	vid=$(vm_field $vm .id)
	hc vm delete $vm >/dev/null
	wait_gone $vm 60
	wait_purged "$vid" 60
done
[ -e "$T_STATE/vms/$did" ] && fail "disks of the VM left behind"
[ -e "$T_STATE/vms/$wid" ] && fail "disks of the VM left behind"
ok "the disks go with their VMs"

hcd_stop
