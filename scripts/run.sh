#!/usr/bin/env bash
# Build sidecar and run the agent with its embedded default plugins.
# Extra arguments go to `sidecar agent` (e.g. `scripts/run.sh -c 10.0.0.5 -a 10.0.0.7`;
# seeds on a non-loopback address need SIDECAR_ENCRYPTION_KEYS, see `sidecar keygen`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
setup_rust_targets
cargo build --release --locked -p sidecar
exec target/release/sidecar agent "$@"
