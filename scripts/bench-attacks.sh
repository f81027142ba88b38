#!/usr/bin/env bash
# Attack benchmark (docs/benchmarks.md, "Blast radius"): every attack of the
# blast-radius issue replayed against a fresh keyed two-node cluster on loopback, with
# the victim's peak RSS, its API latency during the attack and whether routing stayed
# correct. Runs inside a network namespace with only loopback (unshare --net, root).
# Usage: scripts/bench-attacks.sh [ATTACK ...]   (SIDECAR_BIN: the daemon to attack)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release --locked -q -p sidecar -p sidecar-e2e --bin sidecar --bin bench-attacks)
BIN="${SIDECAR_BIN:-$TARGET/release/sidecar}"
exec unshare --net -- sh -c 'ip link set lo up && exec "$0" "$@"' \
    "$TARGET/release/bench-attacks" "$BIN" "$@"
