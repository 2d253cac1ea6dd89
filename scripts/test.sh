#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what a fresh Debian machine lacks (redis-server,
# redis-sentinel for the persistence tests, kubectl for the emulator's kubectl round trip, npm, chromium and
# chromedriver for the explorer, cargo-machete), then: the explorer's bundle check, format check,
# the layering check, unused dependencies, clippy with warnings as errors, every test of the
# workspace, and the deployment checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The explorer: npm to rebuild its bundle, Chromium and chromedriver for its browser tests.
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if ((${#need[@]})); then
    echo "test.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Unused dependencies (a pinned release, so that a new one cannot fail the build by itself).
MACHETE_VERSION=0.9.2
if [[ $(cargo machete --version 2>/dev/null) != "$MACHETE_VERSION" ]]; then
    echo "test.sh: installing cargo-machete $MACHETE_VERSION" >&2
    cargo install --locked --quiet cargo-machete --version "$MACHETE_VERSION"
fi

# A clean build gains nothing from incremental artefacts, which would only take disk.
export CARGO_INCREMENTAL=0

scripts/bench-table.py --check
scripts/ui-build.sh --check
cargo fmt --all --check
scripts/check-layers.sh
cargo machete
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-features --locked
scripts/check-deploy.sh
