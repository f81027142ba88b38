#!/usr/bin/env bash
# Installs what building and testing sidecar needs. Idempotent: every step checks before
# it installs, so running it again is cheap. One function per component; add yours and
# call it from main().
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[setup] %s\n' "$*"; }

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

# busybox-static: the test container image; chromium: the UI test; wrk: the API benchmark.
setup_daemon_packages() {
    apt_install busybox-static chromium wrk
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

main() {
    setup_daemon_packages
    setup_daemon_test_image
}

main "$@"
