#!/usr/bin/env bash
# Blast radius of the HTTP API: a catalog of N static services (default 10,000), then W
# Server-Sent-Events watchers (default 500) with 4 KiB receive buffers that never read,
# D drains while they stall, and the daemon's RSS (and peak) at each step, plus whether
# /health still answers. Loopback only.
# Usage: scripts/bench-blast-http.sh [N] [W] [D]    (SIDECAR_BIN picks the daemon)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-10000}"
W="${2:-500}"
D="${3:-3}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${SIDECAR_BIN:-$TARGET/release/sidecar}"
(cd "$ROOT" && cargo build --release -q -p sidecar -p sidecar-e2e --bin bench-stalled-sse)
CLIENT="$TARGET/release/bench-stalled-sse"
WORK="$(mktemp -d)"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$N" "$WORK/static.json" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
json.dump([{
    "Service": {
        "ID": f"svc{i:09d}",
        "Name": f"service-{i % (n // 4 or 1):04d}",
        "Image": f"team/svc-{i % 500:03d}:1.{i % 97}",
        "Ports": [{"Type": "tcp", "Port": 20000 + i % 40000, "ServicePort": 10000 + i % 5000, "IP": f"10.1.{i // 250 % 250}.{i % 250}"}],
        "ProxyMode": "http",
    },
    "Check": {"Type": "AlwaysSuccessful", "Args": ""},
} for i in range(n)], open(path, "w"))
PY

PORT=17990
env HAPROXY_DISABLE=true ENVOY_USE_GRPC_API=false SIDECAR_DISCOVERY=static \
    STATIC_CONFIG_FILE="$WORK/static.json" SIDECAR_NODE_NAME=bench SIDECAR_ADVERTISE_IP=127.0.0.1 \
    SIDECAR_BIND_IP=127.0.0.1 SIDECAR_BIND_PORT=17991 \
    SIDECAR_HTTP_ADDR="127.0.0.1:$PORT" SIDECAR_LOGGING_LEVEL=warn "$BIN" >"$WORK/agent.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
    alive="$( (curl -s "http://127.0.0.1:$PORT/metrics" || true) | awk '/^sidecar_services\{status="alive"\}/ {print $2}')"
    [ "${alive:-0}" = "$N" ] && break
    sleep 0.1
done
[ "${alive:-0}" = "$N" ] || { echo "catalog did not reach $N ALIVE services" >&2; exit 1; }
echo "== $N services; watch document $(curl -s "http://127.0.0.1:$PORT/api/watch" --max-time 1 | wc -c) bytes"
sleep 12 # the agent returns freed heap pages every 10 s: measure the steady state
IDS=()
for i in $(seq 1 "$D"); do IDS+=("$(printf 'svc%09d' "$i")"); done
"$CLIENT" "127.0.0.1:$PORT" "$W" "$PID" "${IDS[@]}"
