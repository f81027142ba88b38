#!/usr/bin/env bash
# Cluster benchmarks (docs/benchmarks.md, "Cluster"):
#   simulator, N = 100 / 1,000 / 10,000 (virtual time; 10k needs ~4 GB of memory);
#   real processes, N = 50 agents on 127.0.0.1-50 (static discovery).
# Usage: scripts/bench-cluster.sh [sim|real|all]   (SIM_N="100 1000", REAL_N=50, REAL_CHANGES=40)
# The simulator runs the LAN and WAN profiles (BENCH_NET="lan wan"); BENCH_CFG="before after"
# adds the configuration before issue 15 for a same-run comparison; BENCH_ONLY=crash|false|
# dissemination|bandwidth runs one measurement (host/crates/cluster/benches/cluster.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
cargo build --release
if [[ "$what" == sim || "$what" == all ]]; then
    echo "== simulator"
    # shellcheck disable=SC2086
    cargo bench -p sidecar-cluster --features sim --bench cluster -- ${SIM_N:-100 1000 10000}
fi
if [[ "$what" == real || "$what" == all ]]; then
    echo "== real processes"
    cargo bench -p sidecar-e2e --bench cluster_real -- "${REAL_N:-50}" "${REAL_CHANGES:-40}"
fi
