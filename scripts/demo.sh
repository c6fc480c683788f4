#!/usr/bin/env bash
# The README's first command: start hcd on the embedded store, import the
# tiny guest, create a default network and boot a demo VM, then say how to
# look at it.  hcd keeps running in the background; `make demo-stop`
# deletes the demo VM and stops it.
set -euo pipefail

STATE=${HC_DEMO_STATE:-/var/lib/hackcloud}
LOG=${HC_DEMO_LOG:-/var/log/hackcloud-demo.log}
PIDFILE=$STATE/hcd-demo.pid

if [ "${1-}" = "--stop" ]; then
	export HC_URL="unix:$STATE/api.sock"
	hc=build/hc
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		id=$("$hc" --json vm show demo 2>/dev/null | sed -n 's/.*"id": *"\([0-9a-f]\{10\}\)".*/\1/p' || true)
		"$hc" vm delete demo >/dev/null 2>&1 || true
		# The host finishes a delete in the background: wait for it, then
		# drop the network so its bridge, dnsmasq and rules go too.
		for _ in $(seq 1 120); do [ -n "$id" ] && [ -e "$STATE/vms/$id" ] || break; sleep 0.5; done
		"$hc" net delete default >/dev/null 2>&1 || true
		sleep 2
		kill -TERM "$(cat "$PIDFILE")"
		rm -f "$PIDFILE"
		echo "demo stopped"
	else
		echo "no demo hcd is running"
	fi
	exit 0
fi

BUILD=$(cd "${1:?build dir}" && pwd)
GUEST=$(cd "${2:?guest dir}" && pwd)
hc="$BUILD/hc"
export HC_URL="unix:$STATE/api.sock"

mkdir -p "$STATE"
if ! [ -f "$PIDFILE" ] || ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	echo "starting hcd (state $STATE, log $LOG)"
	setsid "$BUILD/hcd" --state-dir "$STATE" --accel "${HC_ACCEL:-auto}" >>"$LOG" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 300); do
		"$hc" info >/dev/null 2>&1 && break
		kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOG"; exit 1; }
		sleep 0.1
	done
fi
"$hc" info

if ! "$hc" image show tiny >/dev/null 2>&1; then
	"$hc" image import tiny --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
		--cmdline "$(cat "$GUEST/cmdline")"
fi
if ! "$hc" net show default >/dev/null 2>&1; then
	"$hc" net create default --ipv6 fd42:4843:1::/64 --ipv4 10.42.0.0/24
fi
if ! "$hc" vm show demo >/dev/null 2>&1; then
	"$hc" vm create demo --image tiny --net default
fi
"$hc" vm start demo >/dev/null

echo "waiting for the demo VM to boot (TCG can take a few seconds)..."
for _ in $(seq 1 240); do
	"$hc" vm log demo 2>/dev/null | grep -q HACKCLOUD-BOOT-OK && break
	sleep 0.5
done
"$hc" vm list
echo
if "$hc" vm log demo | grep -q HACKCLOUD-BOOT-OK; then
	echo "The demo VM has booted. Try:"
else
	echo "The demo VM has not printed its boot marker yet; look at:"
fi
cat <<EOT
  export HC_URL=unix:$STATE/api.sock
  $hc vm list
  $hc vm log demo
  $hc vm console demo        # Ctrl-] detaches
  make demo-stop             # delete the demo VM and stop hcd
EOT
