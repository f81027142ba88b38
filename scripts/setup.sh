#!/usr/bin/env bash
# Installs what building and testing sidecar needs. Idempotent: every step checks before
# it installs, so running it again is cheap. One function per component; add yours and
# call it from setup_all(). Run it, or `source` it and call setup_all (scripts/test.sh).
set -euo pipefail

SIDECAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$SIDECAR_ROOT/.venv"
COMPONENTIZE_PY_VERSION="0.25.1"

log() { printf '[setup] %s\n' "$*"; }

# Rust guest plugins are built for wasm32-wasip2 by host/build.rs.
setup_rust_targets() {
    if ! command -v rustup >/dev/null 2>&1; then
        log "rustup not found: install the wasm32-wasip2 target for your toolchain by hand"
        return 0
    fi
    if rustup target list --installed | grep -qx wasm32-wasip2; then
        log "rust target wasm32-wasip2: present"
    else
        log "rust target wasm32-wasip2: installing"
        rustup target add wasm32-wasip2
    fi
}

# componentize-py (pinned) in .venv, for the Python example plugin.
setup_python_tools() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    local have=""
    have="$("$VENV/bin/python" -m pip show componentize-py 2>/dev/null | awk '/^Version:/ {print $2}')" || true
    if [ "$have" = "$COMPONENTIZE_PY_VERSION" ]; then
        log "componentize-py $have: present"
    else
        log "componentize-py: installing $COMPONENTIZE_PY_VERSION"
        "$VENV/bin/python" -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
    fi
}

setup_all() {
    setup_rust_targets
    setup_python_tools
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    setup_all "$@"
fi
