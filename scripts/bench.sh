#!/usr/bin/env bash
# The project's bench command: runs every benchmark in release mode, one after the other (run it
# on a quiet machine, in one sitting), keeps the output in target/bench-results.txt and writes the
# table of docs/benchmarks.md from it to target/bench-table.md (scripts/bench-table.py).
#
#   scripts/bench.sh               all benchmarks
#   scripts/bench.sh --write-docs  all benchmarks, then replace the table in docs/benchmarks.md
#   scripts/bench.sh graph         only those whose name contains "graph" (graph, memory, ...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FILTER=
WRITE_DOCS=
for arg in "$@"; do
    case $arg in
    --write-docs) WRITE_DOCS=1 ;;
    -*) echo "usage: scripts/bench.sh [--write-docs | NAME]" >&2 && exit 2 ;;
    *) FILTER=$arg ;;
    esac
done
if [[ -n $WRITE_DOCS && -n $FILTER ]]; then
    echo "bench.sh: --write-docs runs every benchmark; the table's figures come from one run" >&2
    exit 2
fi

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
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
printf '===== run: %s commit %s, %s cores, %s\n' "$(date -u +%F)" "$commit" "$(nproc)" \
    "$(redis-server --version | grep -o 'v=[0-9.]*')" | tee -a "$out"
run() {
    local name=$1
    shift
    [[ -n $FILTER && $name != *"$FILTER"* ]] && return 0
    printf '\n===== %s: %s\n' "$name" "$*" | tee -a "$out"
    # A bench that misses a target exits non-zero; record that and go on with the others.
    "$@" 2>&1 | tee -a "$out" || echo "(${name} exited non-zero: a target was missed or it failed)" | tee -a "$out"
}
cargo build --release --benches --workspace --all-features --quiet
run memory cargo bench -q -p astrolabe-graph --bench memory
run graph cargo bench -q -p astrolabe-graph --bench graph
run initial_sync cargo bench -q -p astrolabe-server --bench initial_sync
run restart cargo bench -q -p astrolabe-server --bench restart
run history cargo bench -q -p astrolabe-server --bench history
run replicas cargo bench -q -p astrolabe-server --bench replicas
run failover cargo bench -q -p astrolabe --bench failover
run controllers cargo bench -q -p astrolabe-kubesim --bench controllers
run check cargo bench -q -p astrolabe-server --bench check
run custom_sync env CUSTOM_SYNC_OBJECTS=100000 cargo bench -q -p astrolabe-server --bench custom_sync
run persist cargo bench -q -p astrolabe-persist --all-features --bench persist
run rules_eval cargo bench -q -p astrolabe-rules --bench eval
run http_load cargo bench -q -p astrolabe-api --bench http_load
echo "results in $out"

table=(scripts/bench-table.py "$out")
[[ -n $WRITE_DOCS ]] && table+=(--write-docs docs/benchmarks.md)
"${table[@]}" >target/bench-table.md
echo "table in target/bench-table.md${WRITE_DOCS:+ and docs/benchmarks.md}"
