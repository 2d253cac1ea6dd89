#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what a fresh Debian machine lacks (redis-server for
# the persistence tests, kubectl for the emulator's kubectl round trip), then: format check, clippy
# with warnings as errors, every test of the workspace, and the deployment checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
if ((${#need[@]})); then
    echo "test.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

scripts/bench-table.py --check
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-features --locked
scripts/check-deploy.sh
