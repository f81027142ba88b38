#!/usr/bin/env bash
# Builds the example plugins in other languages into target/examples/.
#   examples/python-check -> target/examples/python_check.wasm (componentize-py, pinned
#   by scripts/setup.sh into .venv/)
# Rebuilds only when the sources or the WIT changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/examples"
CPY="$ROOT/.venv/bin/componentize-py"
mkdir -p "$OUT"

if [ ! -x "$CPY" ]; then
    echo "componentize-py not found in .venv: run scripts/setup.sh" >&2
    exit 1
fi

build_python_check() {
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

build_python_check
