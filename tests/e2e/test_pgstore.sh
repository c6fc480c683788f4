#!/usr/bin/env bash
# hcd on PostgreSQL (store = postgresql://…, issue 7): a throwaway server
# (tests/pg.sh) reached over its unix socket — the one way into it from
# hcd's network namespace.  Images, networks and a VM that boots go into
# PostgreSQL and nothing into a SQLite file; a restarted hcd finds them
# there; a restart of the server under a running hcd costs no request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../pg.sh"

# lib.sh's cleanup exits; stop the server first, keeping the test's status.
stop_all() {
	local rc=$?
	pg_stop
	(exit "$rc")
	cleanup
}
trap stop_all EXIT INT TERM
pg_start
pg_sql() { psql -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U postgres hctest -c "$1"; }

hcd_start --store="$PG_SOCKET_URI"
[ ! -e "$T_STATE/hackcloud.db" ] || fail "hcd created a SQLite database next to PostgreSQL"
[ "$(pg_sql 'SELECT MAX(version) FROM schema_version')" -ge 6 ] || fail "schema not migrated"
ok "hcd migrated the PostgreSQL database"

import_tiny tiny
hc net create lan --ipv6 fd00:e2e:7::/64 --ipv4 10.77.0.0/24 >/dev/null
hc vm create pg1 --image tiny --net lan >/dev/null
[ "$(pg_sql "SELECT n.ipv4 FROM nics n JOIN vms v ON v.id = n.vm WHERE v.name = 'pg1'")" = 10.77.0.2 ] ||
	fail "the VM's NIC is not in PostgreSQL"
hc image list | grep -q tiny || fail "image list"
wait_state pg1 running 60
wait_log pg1 HACKCLOUD-BOOT-OK 120
ok "image, network and a running VM, stored in PostgreSQL"

# The server restarts under a running hcd: the next requests reconnect.
pg_restart
hc net list | grep -q lan || fail "net list after the server restarted"
hc net create wan --ipv6 fd00:e2e:8::/64 >/dev/null || fail "net create after the server restarted"
grep -q "connection lost; reconnected" "$T_DIR/hcd.log" || fail "no reconnect in hcd's log"
ok "a server restart under hcd costs no request"

# hcd restarts: everything is still there, and the VM was adopted.
mac=$(vm_field pg1 '.nics[0].mac')
id=$(vm_field pg1 .id)
hcd_stop
hcd_start --store="$PG_SOCKET_URI"
[ "$(vm_field pg1 '.nics[0].mac')" = "$mac" ] || fail "the VM changed after hcd restarted"
wait_state pg1 running 30
hc vm delete pg1 >/dev/null
wait_purged "$id" 60
[ "$(pg_sql 'SELECT COUNT(*) FROM vms')" = 0 ] || fail "the deleted VM's row stayed"
ok "a restarted hcd finds its VMs in PostgreSQL"
