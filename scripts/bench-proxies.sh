#!/usr/bin/env bash
# Proxy benchmarks against the real HAProxy 2.6 and Envoy 1.40 (loopback only, bounded):
# catalog change -> serving latency, large EDS pushes, failed requests during endpoint
# changes under load, reload rate under churn. Figures: docs/benchmarks.md ("Proxies").
#   scripts/bench-proxies.sh            # both
#   scripts/bench-proxies.sh envoy      # or haproxy
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh setup_haproxy setup_envoy >/dev/null
cargo bench -p sidecar --bench proxies -- "$@" 2>&1 | grep -E '^(envoy|haproxy):'
