#!/usr/bin/env bash
# The persistence soak: kill -9 of the server and of Redis at random points of a churning
# cluster (cmd/astrolabe/tests/soak.rs), in release mode. Not part of scripts/test.sh: it runs
# for several minutes. Its figures go to docs/operations.md.
#
#   scripts/soak.sh                       30 rounds, 5,000 objects, 100 changes/s
#   SOAK_ROUNDS=100 SOAK_SEED=7 scripts/soak.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v redis-server >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
}
exec cargo test --release -q -p astrolabe --test soak -- --ignored --nocapture
