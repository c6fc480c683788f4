#!/usr/bin/env bash
# Prometheus metrics (issue 15 §1) read by Debian's real Prometheus:
#   - GET /metrics passes `promtool check metrics` while a guest runs;
#   - who may scrape: root/admins, and the bearer of metrics_token_file —
#     which opens nothing else; members and strangers are refused;
#   - a `prometheus` server started here (its own data dir, scrape every
#     1 s, over the TLS listener with the metrics token) scrapes hcd and
#     answers PromQL for the running guest: state running, vCPU seconds
#     and RSS above zero, disk reads from QMP, NIC packets both ways after
#     the host pinged it;
#   - the NIC counters are the tap's, turned round to the guest's side
#     (bracketed by the kernel's own counters read before and after).
. "$(dirname "$0")/lib.sh"

for t in promtool prometheus openssl; do
	command -v "$t" >/dev/null || fail "$t is needed (apt-get install prometheus; see scripts/deps.sh)"
done

PORT=8443
PROM_PORT=9090
URL="https://[::1]:$PORT"
make_tls_cert "$T_DIR" IP:::1
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T_DIR/metrics.token"
chmod 600 "$T_DIR/metrics.token"
hcd_start --listen="[::1]:$PORT" --tls-cert="$T_DIR/tls.crt" --tls-key="$T_DIR/tls.key" \
	--auth.metrics-token-file="$T_DIR/metrics.token"

tcp_curl() { ip netns exec "$T_NS" curl -s --cacert "$T_DIR/tls.crt" "$@"; }
scrape_status() {   # scrape_status [curl args] → HTTP status of GET /metrics over TLS
	tcp_curl -o "$T_DIR/scrape" -w '%{http_code}' "$@" "$URL/metrics"
}

import_tiny tiny
hc net create lan --ipv6 fd00:e2e:15::/64 --ipv4 10.79.0.0/24 >/dev/null
hc vm create m1 --image tiny --net lan --disk 64M >/dev/null
hc vm create idle --image tiny --no-start >/dev/null
wait_state m1 running 60
wait_log m1 HACKCLOUD-NET-UP 180
m1_id=$(vm_field m1 .id)
tap=$(vm_field m1 '.nics[0].ifname')
v4=$(vm_field m1 '.nics[0].ipv4')
ok "guest m1 runs and has its network"

# ---- the text format -----------------------------------------------------------
curl -sf --unix-socket "$T_STATE/api.sock" http://hc/metrics >"$T_DIR/m.txt" || fail "GET /metrics as root"
promtool check metrics <"$T_DIR/m.txt" >"$T_DIR/promtool.out" 2>&1 ||
	fail "promtool check metrics: $(head -20 "$T_DIR/promtool.out")"
grep -q "^hackcloud_vm_state{vm=\"$m1_id\",name=\"m1\",owner=\"root\",state=\"running\"} 1$" "$T_DIR/m.txt" ||
	fail "no running state for m1: $(grep hackcloud_vm_state "$T_DIR/m.txt" | head)"
grep -q '^hackcloud_vm_state{vm="[0-9a-f]*",name="idle",owner="root",state="stopped"} 1$' "$T_DIR/m.txt" ||
	fail "no stopped state for idle"
! grep -q 'hackcloud_vm_cpu_seconds_total{[^}]*name="idle"' "$T_DIR/m.txt" ||
	fail "a stopped VM has CPU time"
grep -q '^hackcloud_host_vms{host="[^"]*",state="running"} 1$' "$T_DIR/m.txt" || fail "host VMs by state"
grep -q '^hackcloud_api_request_duration_seconds_bucket{route="/v1/vms",method="POST",le="+Inf"} ' \
	"$T_DIR/m.txt" || fail "no latency histogram of POST /v1/vms"
ok "GET /metrics passes promtool check metrics, with m1 running and idle stopped"

# The NIC counters are the tap's, from the guest's side: what the tap
# sent, the guest received.  Bracketed by the kernel's counters before and
# after the scrape, so background traffic cannot make this flaky.
tap_stat() { nsexec ip -s -j link show "$1" | jq ".[0].stats64.$2.packets"; }
nsexec ping -c 3 -W 3 "$v4" >/dev/null || fail "host cannot ping m1"
tx0=$(tap_stat "$tap" tx); rx0=$(tap_stat "$tap" rx)
curl -sf --unix-socket "$T_STATE/api.sock" http://hc/metrics >"$T_DIR/m.txt"
tx1=$(tap_stat "$tap" tx); rx1=$(tap_stat "$tap" rx)
metric() { awk -v s="$1{" 'index($0, s) == 1 { print $NF }' "$T_DIR/m.txt" | head -1; }
grx=$(metric hackcloud_vm_nic_receive_packets_total)
gtx=$(metric hackcloud_vm_nic_transmit_packets_total)
[ -n "$grx" ] && [ "$grx" -ge "$tx0" ] && [ "$grx" -le "$tx1" ] ||
	fail "guest received $grx packets, tap sent $tx0..$tx1"
[ -n "$gtx" ] && [ "$gtx" -ge "$rx0" ] && [ "$gtx" -le "$rx1" ] ||
	fail "guest sent $gtx packets, tap received $rx0..$rx1"
[ "$grx" -ge 3 ] && [ "$gtx" -ge 3 ] || fail "the pings are not counted: rx $grx tx $gtx"
ok "NIC packets from the guest's side match the tap's counters ($grx in, $gtx out)"

# ---- who may scrape ----------------------------------------------------------------
[ "$(scrape_status)" = 401 ] || fail "a scrape without a token was answered"
[ "$(scrape_status -H 'Authorization: Bearer not-the-token-not-the-token-not-the')" = 401 ] ||
	fail "a wrong token scraped"
[ "$(scrape_status -H "Authorization: Bearer $(cat "$T_DIR/metrics.token")")" = 200 ] ||
	fail "the metrics token could not scrape: $(head -c 300 "$T_DIR/scrape")"
code=$(tcp_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$T_DIR/metrics.token")" \
	"$URL/v1/vms")
[ "$code" = 401 ] || fail "the metrics token opened /v1/vms ($code)"
printf 'member-password\n' | hc user create mem --auth file --password-stdin >/dev/null
tok=$(tcp_curl -H 'Content-Type: application/json' \
	--data-binary '{"user": "mem", "password": "member-password"}' "$URL/v1/login" | jq -r .token)
[ "$(scrape_status -H "Authorization: Bearer $tok")" = 403 ] || fail "a member scraped /metrics"
ok "scraping: admins and the metrics token only; the token opens nothing else"

# ---- a real Prometheus ----------------------------------------------------------------
mkdir -p "$T_DIR/prom"
cat >"$T_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: hackcloud
    scheme: https
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: $T_DIR/metrics.token
    tls_config:
      ca_file: $T_DIR/tls.crt
    static_configs:
      - targets: ['[::1]:$PORT']
EOF
promtool check config "$T_DIR/prometheus.yml" >/dev/null || fail "promtool check config"
ip netns exec "$T_NS" prometheus --config.file="$T_DIR/prometheus.yml" \
	--storage.tsdb.path="$T_DIR/prom" --web.listen-address="127.0.0.1:$PROM_PORT" \
	>"$T_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
T_ON_EXIT+=("kill $PROM_PID; wait $PROM_PID")

# promql QUERY → how many series answer it
promql() {
	nsexec curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
		jq -r 'if .status == "success" then (.data.result | length) else "error: \(.error)" end'
}
# wait_promql QUERY: until at least one series answers (60 s at most)
wait_promql() {
	local n=
	for _ in $(seq 1 120); do
		n=$(promql "$1" 2>/dev/null || true)
		[[ "$n" =~ ^[1-9] ]] && return 0
		sleep 0.5
	done
	echo "---- prometheus.log" >&2; tail -20 "$T_DIR/prometheus.log" >&2
	echo "---- Prometheus's series of ${1%%\{*}" >&2
	nsexec curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=${1%%\{*}" >&2
	fail "Prometheus has no answer to: $1 (last: $n)"
}
wait_promql 'up{job="hackcloud"} == 1'
ok "Prometheus scrapes hcd over TLS with the metrics token"
wait_promql 'hackcloud_vm_state{name="m1",state="running"} == 1'
wait_promql 'hackcloud_vm_cpu_seconds_total{name="m1"} > 0'
wait_promql 'hackcloud_vm_memory_rss_bytes{name="m1"} > 0'
wait_promql 'hackcloud_vm_disk_read_bytes_total{name="m1",disk="data0"} > 0'
wait_promql 'hackcloud_vm_nic_transmit_packets_total{name="m1"} > 0'
wait_promql 'rate(hackcloud_vm_cpu_seconds_total{name="m1"}[5s]) >= 0'
wait_promql 'hackcloud_api_requests_total{route="/metrics",code="200"} > 0'
[ "$(promql 'hackcloud_vm_cpu_seconds_total{name="idle"}')" = 0 ] || fail "idle has CPU time in Prometheus"
ok "PromQL: m1 running, its vCPU seconds, RSS, disk reads and NIC packets; hcd's own requests"
# Stopping with a scraper at work: a clean exit (ASan builds report leaks here).
hcd_stop
ok "hcd stops cleanly while Prometheus scrapes"
