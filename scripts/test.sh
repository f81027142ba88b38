#!/usr/bin/env bash
# Set everything up on a fresh machine and run the whole test suite: formatting, unit
# tests, the simulator campaign and the end-to-end tests against real Docker, HAProxy,
# Envoy and Chromium. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
setup_all

section() { printf '\n==> %s (%ss)\n' "$1" "$SECONDS"; }

section "format"
cargo fmt --all -- --check

section "layering (crate graph, one reader of the environment)"
scripts/check-layering.sh

section "build (daemon, default plugins, test plugins)"
cargo build --release --locked --workspace --all-targets

section "static binary for the container image (musl; a second full release build)"
SIDECAR_STATIC_BIN="$(scripts/build-static.sh)"
export SIDECAR_STATIC_BIN

section "example plugins (Rust, Python)"
scripts/build-examples.sh

section "tests"
cargo test --release --locked --workspace -- --test-threads "${SIDECAR_TEST_THREADS:-2}"

section "plugin guests' own unit tests (native target)"
(cd plugins && cargo test --release --locked --target-dir ../target/plugins)

section "done"
