#!/usr/bin/env bash
# pg.sh — a throwaway PostgreSQL server for tests (DESIGN §11: a server a
# test needs is started by the test, on loopback, and always removed).
#
# The server lives in one temporary directory: its data, its log and its
# unix socket.  It listens on 127.0.0.1 only, on a free port, with trust
# authentication (nothing but this machine's own tests can reach it) and
# without fsync (its data is thrown away).  initdb refuses to run as root,
# so as root the server runs as the `postgres` system user.
#
#   tests/pg.sh run CMD [ARG...]
#       Start a server, run CMD with HC_TEST_PG (the database's URI, over
#       TCP), HC_TEST_PG_SOCKET (the same over the unix socket, which works
#       from inside any network namespace of this machine) and
#       HC_TEST_PG_RESTART (a command that restarts the server) in its
#       environment, then stop the server and remove its directory —
#       whatever CMD did.  Exits with CMD's status.
#   tests/pg.sh restart DIR
#       Restart the server of DIR (what HC_TEST_PG_RESTART runs).
#   . tests/pg.sh
#       As a library: pg_start sets PG_URI, PG_SOCKET_URI and PG_DIR;
#       pg_stop stops the server and removes PG_DIR (trap it).
#
# PG_BINDIR overrides where initdb and pg_ctl are looked for.
set -euo pipefail

pg_bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	# Debian keeps the server binaries out of PATH, one dir per major version.
	local d
	d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
	elif command -v initdb >/dev/null; then
		dirname "$(command -v initdb)"
	else
		echo "pg.sh: initdb not found: install postgresql (scripts/deps.sh)" >&2
		return 1
	fi
}

# Run a server binary as the user that owns the data directory.
pg_as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_ctl_() {
	pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" "$@"
}

pg_start() {
	PG_BIN=$(pg_bindir)
	PG_DIR=$(mktemp -d /tmp/hc-pg.XXXXXX)
	[ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR"
	if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1; then
		cat "$PG_DIR/initdb.log" >&2
		return 1
	fi
	# A port that is free now may be taken before the server binds it:
	# try a few, each start waits until the server accepts connections.
	local _
	PG_PORT=
	for _ in 1 2 3 4 5 6 7 8; do
		local port=$((20000 + RANDOM % 40000))
		# One line: pg_ctl hands the options to a shell.
		local opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR"
		opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		if pg_ctl_ -w -t 60 -o "$opts" start >/dev/null 2>&1; then
			PG_PORT=$port
			break
		fi
	done
	if [ -z "$PG_PORT" ]; then
		echo "pg.sh: the server did not start; its log:" >&2
		tail -n 30 "$PG_DIR/server.log" >&2 || true
		return 1
	fi
	pg_as_owner "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres hctest
	PG_URI="postgresql://postgres@127.0.0.1:$PG_PORT/hctest"
	PG_SOCKET_URI="postgresql://postgres@/hctest?host=$PG_DIR&port=$PG_PORT"
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] || return 0
	if [ -f "$PG_DIR/data/postmaster.pid" ]; then
		pg_ctl_ -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$PG_DIR"
	PG_DIR=
}

pg_restart() {
	# pg_ctl restart starts the server with the options it last ran with.
	pg_ctl_ -m fast -w -t 60 restart >/dev/null
}

# Sourced: only the functions.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	return 0
fi

case "${1:-}" in
run)
	shift
	[ $# -gt 0 ] || { echo "usage: $0 run CMD [ARG...]" >&2; exit 2; }
	trap pg_stop EXIT INT TERM
	pg_start
	self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
	rc=0
	HC_TEST_PG=$PG_URI HC_TEST_PG_SOCKET=$PG_SOCKET_URI HC_TEST_PG_RESTART="$self restart $PG_DIR" \
		"$@" || rc=$?
	exit "$rc"
	;;
restart)
	PG_DIR=${2:?usage: $0 restart DIR}
	PG_BIN=$(pg_bindir)
	pg_restart
	;;
*)
	echo "usage: $0 run CMD [ARG...] | restart DIR" >&2
	exit 2
	;;
esac
