#!/usr/bin/env bash
# Triggers across hosts (issue 7): two hcd ("a" and "b", each in its own
# namespace and state dir) share one PostgreSQL and have the periodic
# resync ten minutes away.  A VM pinned on b is started through a's API:
# b's agent must start it within seconds, and b's own counters must say a
# store notification woke it, not the resync.  Also: a's agent leaves b's
# VM alone, and b's log names the notification-caused action once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../pg.sh"

RESYNC=600
B_STATE=$T_STATE-b   # lib.sh's cleanup matches QEMUs by the $T_STATE prefix
B_NS=$T_NS-b
B_PID=

# lib.sh's cleanup runs these first: both hcd go before their database.
stop_b_and_pg() {
	[ -z "$B_PID" ] || kill -9 "$B_PID" 2>/dev/null
	[ -z "$HCD_PID" ] || kill -9 "$HCD_PID" 2>/dev/null
	pg_stop
}
T_ON_EXIT+=(stop_b_and_pg)
pg_start

ip netns add "$B_NS"
T_EXTRA_NS+=("$B_NS")
ip -n "$B_NS" link set lo up
# One image store for both (what shared storage would be): b boots what a imported.
mkdir -p "$B_STATE" "$T_DIR/images"
ln -s "$T_DIR/images" "$T_STATE/images"
ln -s "$T_DIR/images" "$B_STATE/images"

# hcd of host NAME in NS on STATE; prints its PID.  A simple command (not
# a function) so that $! is hcd itself.
hcd_host() {
	local name=$1 ns=$2 state=$3 pid
	ip netns exec "$ns" "$HCD_BIN" --state-dir "$state" --accel "${E2E_ACCEL:-tcg}" \
		--stop-timeout=3 --store="$PG_SOCKET_URI" --host-name="$name" \
		--resync-interval=$RESYNC >>"$T_DIR/hcd-$name.log" 2>&1 &
	pid=$!
	hcd_wait_api "$state" "$pid" || return 1
	echo "$pid"
}
# lib.sh's fail() shows one hcd's log: show both.
fail() {
	echo "FAIL [$T_NAME]: $*" >&2
	local h
	for h in a b; do
		echo "---- hcd of $h (last 30 lines)" >&2
		tail -n 30 "$T_DIR/hcd-$h.log" >&2 2>/dev/null
	done
	exit 1
}
info_b() { curl -sf --unix-socket "$B_STATE/api.sock" http://hc/v1/info; }
ms() { date +%s%3N; }

HCD_PID=$(hcd_host a "$T_NS" "$T_STATE") || fail "hcd of a"
B_PID=$(hcd_host b "$B_NS" "$B_STATE") || fail "hcd of b"
ok "hosts a and b up on one PostgreSQL, resync every ${RESYNC}s"

import_tiny tiny
hc vm create x --image tiny --host b --no-start >/dev/null || fail "vm create --host b through a"
[ "$(vm_field x .host)" = b ] || fail "x is not placed on b: $(vm_field x .host)"
id=$(vm_field x .id)
sleep 1   # b's pass for the create, if any, is over: count from here
before=$(info_b | jq -c .wakeups)
[ "$(jq .resync <<<"$before")" = 0 ] || fail "b ran a resync already: $before"

t0=$(ms)
hc vm start x >/dev/null || fail "vm start through a"
acted=
for _ in $(seq 1 50); do
	s=$(vm_field x .state)
	if [ "$s" != stopped ]; then acted=$(( $(ms) - t0 )); break; fi
	sleep 0.1
done
[ -n "$acted" ] || fail "b did not act on the start within 5 s (state $s)"
wait_state x running 30
after=$(info_b | jq -c .wakeups)
[ "$(jq .notify <<<"$after")" -gt "$(jq .notify <<<"$before")" ] ||
	fail "b's notify counter did not move: $before → $after"
[ "$(jq .resync <<<"$after")" = 0 ] || fail "b ran a periodic resync: $before → $after"
ok "start through a: b acted within ${acted} ms (polled), woken by a notification ($before → $after)"

pgrep -f "qemu-system-x86_64.*$B_STATE/vms/$id" >/dev/null || fail "no QEMU of x under b's state dir"
! pgrep -f "qemu-system-x86_64.*$T_STATE/vms/$id" >/dev/null || fail "a started b's VM too"
grep -q "agent: acting on a store notification: vm $id (x): starting" "$T_DIR/hcd-b.log" ||
	fail "b's log does not say a notification made it act"
! grep -q "acting on a store notification" "$T_DIR/hcd-a.log" ||
	fail "a logged acting on a notification, but only b had something to do"
ok "only b runs x; its log names the notification-caused start"

# And the way back: a delete through a is carried out by b.
hc vm delete x >/dev/null
for _ in $(seq 1 300); do
	[ -e "$B_STATE/vms/$id" ] || break
	sleep 0.1
done
[ ! -e "$B_STATE/vms/$id" ] || fail "b did not clean up x after a delete through a"
[ "$(info_b | jq .wakeups.resync)" = 0 ] || fail "b needed a resync for the delete"
ok "delete through a: b stopped and removed x without a resync"
