#!/usr/bin/env bash
# Fuzzes the gossip decoders and the sans-IO core (`fuzz/fuzz_targets/decode.rs`) inside
# a network namespace that has only loopback, as every forged-gossip test runs: the
# target feeds arbitrary bytes to the core, whose outputs name arbitrary addresses.
# Needs root (unshare --net) and cargo-fuzz (installed here if missing); nightly
# features come from RUSTC_BOOTSTRAP on the pinned stable toolchain.
# Usage: scripts/fuzz-gossip.sh [SECONDS]   (default 600)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# Dependencies are fetched outside; the build and the run happen with no network.
(cd "$ROOT/fuzz" && cargo fetch)
exec unshare --net -- sh -c '
    ip link set lo up
    cd "$1/fuzz"
    CARGO_NET_OFFLINE=true RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- \
        -max_total_time="$2" -max_len=4096
' sh "$ROOT" "$SECONDS_TO_RUN"
