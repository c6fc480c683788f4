# shellcheck shell=bash
# A throwaway OpenLDAP server for the tests of LDAP login: its own
# configuration, database and pid file in a directory of the test, listening
# only on ldap://127.0.0.1:PORT/.  A system slapd (the Debian package starts
# one on port 389) is neither used nor touched.
#
#   source tests/e2e/slapd.sh
#   slapd_start DIR PORT [NETNS]   # NETNS: run it inside that network namespace
#   ... ldap_uri=ldap://127.0.0.1:PORT ldap_base=$SLAPD_PEOPLE ...
#   slapd_stop DIR
#
# With SLAPD_TLS=1 (needs openssl) the server also speaks TLS: StartTLS on
# PORT, and ldaps:// on SLAPD_LDAPS_PORT when that is set; its certificate
# (for IP 127.0.0.1) is signed by DIR/ca.pem, the file to give as CA file.
#
# The directory holds, under dc=hackcloud,dc=test:
#   ou=people: alice (password $SLAPD_ALICE_PW), bob ($SLAPD_BOB_PW) and dup;
#   ou=staff:  a second dup, so that uid=dup under the suffix matches two
#              entries (an ambiguous user must be refused).
# Anonymous clients may search and bind; userPassword is never readable.

SLAPD_SUFFIX="dc=hackcloud,dc=test"
SLAPD_PEOPLE="ou=people,$SLAPD_SUFFIX"
SLAPD_ROOTDN="cn=admin,$SLAPD_SUFFIX"
SLAPD_ROOTPW="admin-secret"
SLAPD_ALICE_PW="alice-secret"
SLAPD_BOB_PW="bob-secret"

# Run a command in the namespace the server lives in (if any).
_slapd_in() {
	local ns=$1
	shift
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# A throwaway CA and a server certificate for 127.0.0.1 signed by it.
_slapd_make_certs() {
	local dir=$1

	if ! {
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj /CN=hackcloud-test-ca &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$dir/server.key" -out "$dir/server.csr" -subj /CN=127.0.0.1 &&
		openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
			-CAcreateserial -out "$dir/server.pem" -days 2 \
			-extfile <(printf 'subjectAltName=IP:127.0.0.1\n')
	} >"$dir/certs.log" 2>&1; then
		echo "slapd_start: cannot make test certificates:" >&2
		cat "$dir/certs.log" >&2
		return 1
	fi
}

# slapd_start DIR PORT [NETNS]: 0 once the server answers with its users
# loaded; otherwise 1, with slapd's log on stderr and nothing left running.
slapd_start() {
	local dir=$1 port=$2 ns=${3:-}
	local url="ldap://127.0.0.1:$port/" listen tls_conf=""

	mkdir -p "$dir/data"
	listen=$url
	if [ "${SLAPD_TLS:-0}" = 1 ]; then
		_slapd_make_certs "$dir" || return 1
		tls_conf="TLSCACertificateFile $dir/ca.pem
TLSCertificateFile $dir/server.pem
TLSCertificateKeyFile $dir/server.key"
		if [ -n "${SLAPD_LDAPS_PORT:-}" ]; then
			listen="$listen ldaps://127.0.0.1:$SLAPD_LDAPS_PORT/"
		fi
	fi
	cat >"$dir/slapd.conf" <<-EOF
		include /etc/ldap/schema/core.schema
		include /etc/ldap/schema/cosine.schema
		include /etc/ldap/schema/inetorgperson.schema
		pidfile $dir/slapd.pid
		argsfile $dir/slapd.args
		modulepath /usr/lib/ldap
		moduleload back_mdb
		$tls_conf
		database mdb
		suffix "$SLAPD_SUFFIX"
		rootdn "$SLAPD_ROOTDN"
		rootpw $(slappasswd -s "$SLAPD_ROOTPW")
		directory $dir/data
		maxsize 16777216
		access to attrs=userPassword by anonymous auth by self write by * none
		access to * by * read
	EOF
	cat >"$dir/users.ldif" <<-EOF
		dn: $SLAPD_SUFFIX
		objectClass: dcObject
		objectClass: organization
		dc: hackcloud
		o: hackcloud test

		dn: $SLAPD_PEOPLE
		objectClass: organizationalUnit
		ou: people

		dn: ou=staff,$SLAPD_SUFFIX
		objectClass: organizationalUnit
		ou: staff

		dn: uid=alice,$SLAPD_PEOPLE
		objectClass: inetOrgPerson
		uid: alice
		cn: Alice
		sn: Liddell
		userPassword: $(slappasswd -s "$SLAPD_ALICE_PW")

		dn: uid=bob,$SLAPD_PEOPLE
		objectClass: inetOrgPerson
		uid: bob
		cn: Bob
		sn: Builder
		userPassword: $(slappasswd -s "$SLAPD_BOB_PW")

		dn: uid=dup,$SLAPD_PEOPLE
		objectClass: inetOrgPerson
		uid: dup
		cn: Dup One
		sn: One
		userPassword: $(slappasswd -s dup-secret)

		dn: uid=dup,ou=staff,$SLAPD_SUFFIX
		objectClass: inetOrgPerson
		uid: dup
		cn: Dup Two
		sn: Two
		userPassword: $(slappasswd -s dup-secret)
	EOF
	# slapd forks into the background once it listens; the pid file names it.
	if ! _slapd_in "$ns" /usr/sbin/slapd -h "$listen" -f "$dir/slapd.conf" >"$dir/slapd.log" 2>&1; then
		echo "slapd_start: slapd failed:" >&2
		cat "$dir/slapd.log" >&2
		return 1
	fi
	for _ in $(seq 1 100); do
		if _slapd_in "$ns" ldapsearch -x -LLL -o nettimeo=1 -H "$url" -b "" -s base \
			namingContexts >/dev/null 2>&1; then
			break
		fi
		sleep 0.1
	done
	if ! _slapd_in "$ns" ldapadd -x -H "$url" -D "$SLAPD_ROOTDN" -w "$SLAPD_ROOTPW" \
		-f "$dir/users.ldif" >>"$dir/slapd.log" 2>&1; then
		echo "slapd_start: slapd on $url did not take the users:" >&2
		cat "$dir/slapd.log" >&2
		slapd_stop "$dir"
		return 1
	fi
	return 0
}

# slapd_stop DIR: stop the server started in DIR and wait until it is gone.
slapd_stop() {
	local dir=$1 pid

	pid=$(cat "$dir/slapd.pid" 2>/dev/null) || return 0
	# Only a slapd of this directory: never a recycled pid or the system one.
	if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/slapd.conf"; then
		rm -f "$dir/slapd.pid"
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$dir/slapd.pid"
	return 0
}
