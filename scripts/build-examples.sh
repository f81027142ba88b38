#!/usr/bin/env bash
# Builds the example plugins into target/examples/.
#   examples/rust-check   -> target/examples/rust_check.wasm (cargo, wasm32-wasip2, with the
#                            guest SDK in plugins/sdk)
#   examples/python-check -> target/examples/python_check.wasm (componentize-py, pinned
#                            by scripts/setup.sh into .venv/)
# Rebuilds only when the sources or the WIT changed (cargo decides for the Rust one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/examples"
CPY="$ROOT/.venv/bin/componentize-py"
mkdir -p "$OUT"

build_rust_check() {
    local target_dir="$OUT/rust-check"
    echo "rust_check.wasm: cargo build (wasm32-wasip2, release)"
    (cd "$ROOT/examples/rust-check" &&
        cargo build --release --locked --target wasm32-wasip2 --target-dir "$target_dir")
    cp "$target_dir/wasm32-wasip2/release/rust_check.wasm" "$OUT/rust_check.wasm.tmp"
    mv "$OUT/rust_check.wasm.tmp" "$OUT/rust_check.wasm"
}

build_python_check() {
    if [ ! -x "$CPY" ]; then
        echo "componentize-py not found in .venv: run scripts/setup.sh" >&2
        exit 1
    fi
    local out="$OUT/python_check.wasm"
    local newest
    newest="$(find "$ROOT/examples/python-check" "$ROOT/wit" -maxdepth 1 -type f -newer "$out" 2>/dev/null | head -1 || true)"
    if [ -f "$out" ] && [ -z "$newest" ]; then
        echo "python_check.wasm: up to date"
        return
    fi
    echo "python_check.wasm: building (componentize-py, ~30 s)"
    (cd "$ROOT/examples/python-check" &&
        "$CPY" -d "$ROOT/wit" -w health-check componentize app -o "$out.tmp")
    mv "$out.tmp" "$out"
}

build_rust_check
build_python_check
