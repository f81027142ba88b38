#!/usr/bin/env bash
# Mixed-cluster propagation benchmark (docs/benchmarks.md, "Migration: mixed Go/Rust
# cluster"): a health change on one node until another serves it, Go->Go, Go->Rust,
# Rust->Go, Rust->Rust (memberlist wire) and Rust->Rust (native wire), measured in one
# run. Every node runs in a network namespace of its own, joined by a bridge in a
# namespace of its own (root; needs ../shared/tools/go-sidecar/).
# Usage: scripts/bench-memberlist.sh [CHANGES]   (default 30; SIDECAR_BIN: the daemon)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release --locked -q -p sidecar -p sidecar-e2e --bin sidecar --bin bench-memberlist)
export SIDECAR_BIN="${SIDECAR_BIN:-$TARGET/release/sidecar}"
exec "$TARGET/release/bench-memberlist" "$@"
