#!/usr/bin/env bash
# First-start benchmark (tests/benches/first_start.rs): one agent with every default
# plugin from an empty compile cache (spawn -> API, idle and peak RSS; warm start for
# comparison), and three agents started together -> every service ALIVE everywhere.
# Usage: scripts/bench-start.sh [runs]   (SIDECAR_BIN defaults to the release build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export SIDECAR_BIN="${SIDECAR_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/sidecar}"
[ -x "$SIDECAR_BIN" ] || cargo build --release --locked -p sidecar
cargo bench --locked -p sidecar-e2e --bench first_start -- "$@"
