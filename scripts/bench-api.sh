#!/usr/bin/env bash
# Daemon/API benchmark: a catalog of N static services (default 10,000), then
#   * wrk -t2 -c16 on /api/services.json and /api/state.json (requests/s, p99),
#   * the daemon's RSS with that catalog,
#   * W concurrent /api/watch streams (default 1,000) receiving one change (a drain),
#     for the big catalog and for a realistic one (default 100 services),
#   * the RSS again with both proxy drivers on (HAProxy really running on loopback, the
#     xDS server building Envoy snapshots).
# The API figures are taken with the proxy drivers off, so that HAProxy verifying and
# reloading a 10,000-service config does not share the two cores with the measurement.
# Loopback only. Usage: scripts/bench-api.sh [N] [W] [SMALL_N]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-10000}"
W="${2:-1000}"
SMALL="${3:-100}"
DURATION="${BENCH_DURATION:-15s}"
BIN="${SIDECAR_BIN:-$ROOT/target/release/sidecar}"
(cd "$ROOT" && cargo build --release -q -p sidecar -p sidecar-e2e)
WATCHERS="$ROOT/target/release/bench-watchers"
WORK="$(mktemp -d)"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    [ -f "$WORK/haproxy.pid" ] && kill "$(cat "$WORK/haproxy.pid")" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

gen() { # gen COUNT FILE
    python3 - "$1" "$2" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
targets = [{
    "Service": {
        "ID": f"svc{i:09d}",
        "Name": f"service-{i % (n // 4 or 1):04d}",
        "Image": f"team/svc-{i % 500:03d}:1.{i % 97}",
        "Hostname": f"host-{i % 50:02d}",
        "Ports": [{"Type": "tcp", "Port": 20000 + i % 40000, "ServicePort": 10000 + i % 5000, "IP": f"10.1.{i // 250 % 250}.{i % 250}"}],
        "ProxyMode": "http",
    },
    "Check": {"Type": "AlwaysSuccessful", "Args": ""},
} for i in range(n)]
json.dump(targets, open(path, "w"))
PY
}

PROXIES_OFF=(HAPROXY_DISABLE=true ENVOY_USE_GRPC_API=false)
PROXIES_ON=(HAPROXY_DISABLE=false HAPROXY_BIND_IP=127.0.0.1 HAPROXY_CONFIG_FILE="$WORK/haproxy.cfg"
    HAPROXY_PID_FILE="$WORK/haproxy.pid" HAPROXY_STATS_SOCKET="$WORK/stats.sock"
    HAPROXY_MASTER_SOCKET="$WORK/master.sock" HAPROXY_STATS_PORT=0 HAPROXY_USER= HAPROXY_GROUP=
    ENVOY_USE_GRPC_API=true ENVOY_GRPC_PORT=17776)
PROXIES=("${PROXIES_OFF[@]}")

start() { # start COUNT PORT
    gen "$1" "$WORK/static.json"
    env "${PROXIES[@]}" SIDECAR_DISCOVERY=static STATIC_CONFIG_FILE="$WORK/static.json" SIDECAR_NODE_NAME=bench \
        SIDECAR_ADVERTISE_IP=127.0.0.1 SIDECAR_HTTP_ADDR="127.0.0.1:$2" SIDECAR_LOGGING_LEVEL=warn \
        "$BIN" >"$WORK/agent.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 600); do
        alive="$( (curl -s "http://127.0.0.1:$2/metrics" || true) | awk '/^sidecar_services\{status="alive"\}/ {print $2}')"
        [ "${alive:-0}" = "$1" ] && return 0
        sleep 0.1
    done
    echo "catalog did not reach $1 ALIVE services" >&2; exit 1
}

rss() { awk '/^VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$PID/status"; }

PORT=17999
start "$N" "$PORT"
echo "== catalog: $N services; services.json $(curl -s "http://127.0.0.1:$PORT/api/services.json" | wc -c) bytes, state.json $(curl -s "http://127.0.0.1:$PORT/api/state.json" | wc -c) bytes"
sleep 12 # the agent returns freed heap pages every 10 s: measure the steady state
echo "== RSS after load (steady): $(rss) (peak $(hwm))"
for path in /api/services.json /api/state.json; do
    echo "== wrk -t2 -c16 -d$DURATION --latency http://127.0.0.1:$PORT$path"
    wrk -t2 -c16 -d"$DURATION" --latency "http://127.0.0.1:$PORT$path" | grep -E 'Requests/sec|Transfer/sec| 50%| 99%|Socket errors|Non-2xx'
done
echo "== RSS after wrk: $(rss) (peak $(hwm))"
echo "== $W watchers, one change, $N services"
"$WATCHERS" "127.0.0.1:$PORT" "$W" svc000000001
echo "== RSS after watchers: $(rss) (peak $(hwm))"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

PORT=17998
start "$SMALL" "$PORT"
echo "== $W watchers, one change, $SMALL services ($(curl -s "http://127.0.0.1:$PORT/api/watch" --max-time 1 | wc -c) bytes per document)"
"$WATCHERS" "127.0.0.1:$PORT" "$W" svc000000001
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

PORT=17997
PROXIES=("${PROXIES_ON[@]}")
start "$N" "$PORT"
sleep 12
echo "== $N services with both proxy drivers on: RSS $(rss) (peak $(hwm)); HAProxy: $(curl -s "http://127.0.0.1:$PORT/api/proxy.json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d.get("haproxy", d))[:300])')"
