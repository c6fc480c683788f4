#!/usr/bin/env bash
# The audit trail (issue 15 §2):
#   - every mutating request is recorded — who (the user, or nobody for a
#     refused login), from where, method, route pattern, the resource, the
#     status and the result — and no read is;
#   - no secret anywhere: not the password of a login or a password
#     change, not a token — neither in `hc audit`, nor in the journal, nor
#     in the database;
#   - `hc audit` for admins only, with --user and --since;
#   - an answered request survives a kill -9 of hcd before its batch
#     reached the store (the journal), and a journal written again after
#     its batch committed adds nothing twice;
#   - entries older than audit_retention_days are pruned.
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is needed (scripts/deps.sh)"
DB=$T_STATE/hackcloud.db
JOURNAL=$T_STATE/audit.journal
PW=correct-horse-battery
hcd_start --audit-retention-days=1

hc image import tiny --kernel "$E2E_GUEST/vmlinuz" --initrd "$E2E_GUEST/initrd.img" \
	--cmdline "$(cat "$E2E_GUEST/cmdline")" --public >/dev/null
printf '%s\n' "$PW" | hc user create alice --auth file --password-stdin >/dev/null
login_as() {   # login_as USER PASSWORD → body; status in API_STATUS
	API_TOKEN= api POST /v1/login "{\"user\": \"$1\", \"password\": \"$2\"}"
}
login_as alice wrong-password-123 >/dev/null
[ "$API_STATUS" = 401 ] || fail "a wrong password: $API_STATUS"
sleep 1.1   # the failed login's backoff
tok=$(login_as alice "$PW" | jq -r .token)
[[ $tok == hct_* ]] || fail "alice's login"
t_mid=$(date +%s)
sleep 1
API_TOKEN=$tok api POST /v1/vms '{"name": "v1", "image": "tiny", "start": false}' >"$T_DIR/v1.json"
[ "$API_STATUS" = 201 ] || fail "alice's create: $API_STATUS"
v1=$(jq -r .id "$T_DIR/v1.json")
API_TOKEN=$tok api POST /v1/vms/nosuch/start '{}' >/dev/null
[ "$API_STATUS" = 404 ] || fail "start of nosuch: $API_STATUS"
API_TOKEN=$tok api GET /v1/vms >/dev/null
API_TOKEN=$tok api POST "/v1/users/alice/password" \
	"{\"password\": \"new-$PW\", \"current_password\": \"$PW\"}" >/dev/null
[ "$API_STATUS" = 200 ] || fail "alice's password change: $API_STATUS $(cat "$T_DIR/v1.json")"
tok2=$(login_as alice "new-$PW" | jq -r .token)
API_TOKEN=$tok2 api DELETE "/v1/vms/$v1" >/dev/null
[ "$API_STATUS" = 202 ] || fail "alice's delete: $API_STATUS"
API_TOKEN=$tok2 api GET /v1/audit >/dev/null
[ "$API_STATUS" = 403 ] || fail "a member read the audit trail: $API_STATUS"

hc --json audit --user alice >"$T_DIR/alice.json" || fail "hc audit --user alice"
row() { jq -c --arg m "$1" --arg r "$2" '.[] | select(.method == $m and .route == $r)' "$T_DIR/alice.json"; }
# The refused login has no user: it is found by its resource, the name tried.
hc --json audit >"$T_DIR/all.json"
jq -e '.[] | select(.route == "/v1/login" and .status == 401) |
	.user == null and .ref == "alice" and .result == "invalid_credentials" and .source == "unix:0"' \
	"$T_DIR/all.json" >/dev/null || fail "the refused login: $(jq -c '.[] | select(.route == "/v1/login")' "$T_DIR/all.json")"
[ "$(row POST /v1/login | jq -s 'map(select(.status == 200)) | length')" = 2 ] ||
	fail "alice's two logins: $(row POST /v1/login)"
row POST /v1/vms | jq -e --arg id "$v1" '.status == 201 and .ref == $id and .result == "ok"' >/dev/null ||
	fail "the create: $(row POST /v1/vms)"
row POST '/v1/vms/{}/start' | jq -e '.status == 404 and .ref == "nosuch" and .result == "not_found"' \
	>/dev/null || fail "the refused start: $(row POST '/v1/vms/{}/start')"
row DELETE '/v1/vms/{}' | jq -e --arg id "$v1" '.status == 202 and .ref == $id' >/dev/null ||
	fail "the delete: $(row DELETE '/v1/vms/{}')"
row POST '/v1/users/{}/password' | jq -e '.status == 200 and .ref == "alice"' >/dev/null ||
	fail "the password change"
jq -e 'map(select(.method == "GET")) | length == 0' "$T_DIR/all.json" >/dev/null || fail "a read was recorded"
jq -e '[.[] | select(.user == "root" and .route == "/v1/images")] | length == 1' "$T_DIR/all.json" \
	>/dev/null || fail "root's image import is missing"
ok "recorded: logins (the refused one without a user), create, refused start, password change, delete; no reads"

for secret in "$PW" "new-$PW" wrong-password-123 "$tok" "$tok2" "${tok#hct_}"; do
	for f in "$T_DIR/all.json" "$JOURNAL"; do
		! grep -qF -- "$secret" "$f" || fail "a secret is in $f"
	done
	[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit WHERE host || source || method || route ||
		COALESCE(ref, '') || result LIKE '%' || '$secret' || '%'")" = 0 ] || fail "a secret is in the database"
done
ok "no password or token in hc audit, the journal or the database"

hc audit --since "$t_mid" >"$T_DIR/since.txt"
grep -q '/v1/login' "$T_DIR/since.txt" || fail "--since $t_mid lost the second login"
grep -q ' 401 ' "$T_DIR/since.txt" && fail "--since $t_mid kept the refused login: $(cat "$T_DIR/since.txt")"
head -1 "$T_DIR/since.txt" | grep -q '^TIME *USER *SOURCE *METHOD *ROUTE' || fail "hc audit's table"
[ "$(hc --json audit --since 1h | jq length)" = "$(jq length "$T_DIR/all.json")" ] || fail "--since 1h"
[ "$(hc --json audit --limit 2 | jq -r '.[-1].route')" = "$(jq -r '.[-1].route' "$T_DIR/all.json")" ] ||
	fail "--limit keeps the newest"
ok "hc audit --since (unix seconds, 1h) and --limit"

# ---- kill -9 -----------------------------------------------------------------------
# An answered request whose batch had not reached the store yet.
hc net create n2 --ipv6 fd00:e2e:99::/64 >/dev/null
[ -s "$JOURNAL" ] || fail "the journal is empty right after a request (batched already?)"
hcd_kill9
hcd_start --audit-retention-days=1
[ "$(hc --json audit | jq '[.[] | select(.route == "/v1/networks" and .method == "POST")] | length')" = 1 ] ||
	fail "the network create answered before kill -9 is not in the audit trail"
ok "a request answered just before kill -9 is in the audit trail after the restart"
# A journal written again after its batch committed (a crash between the
# commit and emptying it) adds nothing twice.
hc net delete n2 >/dev/null
cp "$JOURNAL" "$T_DIR/journal.copy"
grep -q '"route":"/v1/networks/{}"' "$T_DIR/journal.copy" || fail "the delete is not journaled"
for _ in $(seq 1 50); do [ -s "$JOURNAL" ] || break; sleep 0.1; done
[ ! -s "$JOURNAL" ] || fail "the journal was not moved into the store within 5 s"
hcd_kill9
cp "$T_DIR/journal.copy" "$JOURNAL"
hcd_start --audit-retention-days=1
[ "$(hc --json audit | jq '[.[] | select(.route == "/v1/networks/{}")] | length')" = 1 ] ||
	fail "a replayed journal recorded the delete twice"
ok "a journal replayed after its batch committed adds nothing twice"

# ---- retention -----------------------------------------------------------------------
old=$(( $(date +%s) - 3 * 86400 ))
sqlite3 "$DB" "INSERT INTO audit (host, seq, time, user_id, user_name, source, method, route, ref,
	status, result) VALUES ('gone-host', 1, $old, 0, 'root', 'unix:0', 'POST', '/v1/vms', 'x', 201, 'ok')"
[ "$(hc --json audit --since 0 --limit 10000 | jq '[.[] | select(.host == "gone-host")] | length')" = 1 ] ||
	fail "the old entry is not listed"
for _ in $(seq 1 60); do
	[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit WHERE host = 'gone-host'")" = 0 ] && break
	sleep 0.5
done
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit WHERE host = 'gone-host'")" = 0 ] ||
	fail "an entry older than audit_retention_days = 1 was not pruned"
[ "$(hc --json audit | jq '[.[] | select(.route == "/v1/networks/{}")] | length')" = 1 ] ||
	fail "pruning took a recent entry"
ok "entries older than audit_retention_days are pruned, recent ones kept"
