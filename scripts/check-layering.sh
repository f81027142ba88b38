#!/usr/bin/env bash
# The layering rules of docs/architecture.md, checked so a future import can't undo them:
# 1. the catalog crate has no tokio/axum/hyper/wasmtime in its dependency tree, and the
#    cluster core no axum/hyper/wasmtime;
# 2. only the daemon's configuration module reads the process environment.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

forbid() { # crate, forbidden crates...
    local crate="$1"; shift
    local tree
    tree="$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)"
    for bad in "$@"; do
        if grep -qx "$bad" <<<"$tree"; then
            echo "layering: $crate depends on $bad:"
            cargo tree --locked -p "$crate" -e normal -i "$bad" | head -20
            fail=1
        fi
    done
}
forbid sidecar-catalog tokio axum hyper wasmtime
forbid sidecar-cluster axum hyper wasmtime

# Test-only code (the simulator, benchmarks) may read variables; the daemon may not.
readers="$(grep -rnE 'std::env::var|env::var_os|Env::from_process' host/src host/crates/*/src \
    | grep -v '^host/src/config/' | grep -v '^host/crates/cluster/src/sim/' || true)"
if [ -n "$readers" ]; then
    echo "layering: the environment is read outside host/src/config/:"
    echo "$readers"
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "layering: ok (catalog and cluster core free of runtime crates; env read only in config)"
