#!/usr/bin/env bash
# Builds the container image from a static sidecar binary (FROM scratch; no registry).
#   packaging/build-image.sh [STATIC_BINARY]
# Without an argument it builds the static binary first (scripts/build-static.sh).
# The tags are sidecar:<version> and sidecar:latest, or $SIDECAR_IMAGE when set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-}"
if [ -z "$bin" ]; then
    bin="$("$root/scripts/build-static.sh")"
fi
if readelf -l "$bin" 2>/dev/null | grep -q 'program interpreter'; then
    echo "build-image: $bin is dynamically linked; a FROM scratch image needs a static binary" >&2
    exit 1
fi
version="$("$bin" --version | awk '{print $2}')"
tags=(-t "${SIDECAR_IMAGE:-sidecar:$version}")
[ -n "${SIDECAR_IMAGE:-}" ] || tags+=(-t sidecar:latest)
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$root/packaging/Dockerfile" "$ctx/Dockerfile"
cp "$bin" "$ctx/sidecar"
strip --strip-unneeded "$ctx/sidecar" 2>/dev/null || true
docker build -q "${tags[@]}" "$ctx" >/dev/null
echo "${tags[1]}"
