#!/usr/bin/env bash
# The project's bench command: runs every benchmark in release mode, one after the other (run it
# on a quiet machine), and keeps the output in target/bench-results.txt. docs/benchmarks.md records
# the figures with the command for each.
#
#   scripts/bench.sh            all benchmarks
#   scripts/bench.sh graph      only those whose name contains "graph" (graph, memory, persist, ...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

out=target/bench-results.txt
mkdir -p target
: >"$out"
run() {
    local name=$1
    shift
    [[ -n ${FILTER:-} && $name != *"$FILTER"* ]] && return 0
    printf '\n===== %s: %s\n' "$name" "$*" | tee -a "$out"
    # A bench that misses a target exits non-zero; record that and go on with the others.
    "$@" 2>&1 | tee -a "$out" || echo "(${name} exited non-zero: a target was missed or it failed)" | tee -a "$out"
}
FILTER=${1:-}
cargo build --release --benches --workspace --all-features --quiet
run memory cargo bench -q -p astrolabe-graph --bench memory
run graph cargo bench -q -p astrolabe-graph --bench graph
run initial_sync cargo bench -q -p astrolabe-server --bench initial_sync
run restart cargo bench -q -p astrolabe-server --bench restart
run persist cargo bench -q -p astrolabe-persist --all-features --bench persist
run http_load cargo bench -q -p astrolabe-api --bench http_load
echo "results in $out"
