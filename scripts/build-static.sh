#!/usr/bin/env bash
# Builds the fully static sidecar binary (x86_64-unknown-linux-musl) that the container
# image ships, and prints its path. A second full release build (wasmtime included):
# on the project's 2-core machine about as long as the first, so CI runs it as its own
# step. `scripts/setup.sh setup_static_build` installs the target and musl-gcc.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=x86_64-unknown-linux-musl
cd "$root"
cargo build --release --locked --target "$target" -p sidecar >&2
echo "${CARGO_TARGET_DIR:-$root/target}/$target/release/sidecar"
