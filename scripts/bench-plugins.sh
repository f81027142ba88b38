#!/usr/bin/env bash
# Plugin benchmark (host/benches/plugins.rs): per-check cost of the Rust HttpGet plugin
# vs a native GET, fresh vs warm instances, the Python example plugin, and process start
# to "plugins ready". Prints Markdown tables; copy them into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
setup_rust_targets
setup_python_tools
scripts/build-examples.sh
cargo bench -p sidecar --bench plugins "$@"
