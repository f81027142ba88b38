#!/usr/bin/env bash
# DNS benchmark: for each catalog size (default 10 and 10,000 services) our DNS interface
# and, when ../shared/tools/go-sidecar is present, the Go sidecar-dns on the same
# catalog: queries/s and p50/p99 over UDP on loopback (one client thread; dnsperf's
# figure beside it when installed), then catalog change -> new answer (drains).
# Loopback only. Usage: scripts/bench-dns.sh [SERVICES...]
#   BENCH_SECONDS (10), BENCH_WINDOW (64 queries in flight), BENCH_DRAINS (100)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release --locked -q -p sidecar -p sidecar-e2e --bin sidecar --bin bench-dns)
export SIDECAR_BIN="${SIDECAR_BIN:-$TARGET/release/sidecar}"
exec "$TARGET/release/bench-dns" "$@"
