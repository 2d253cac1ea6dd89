#!/usr/bin/env bash
# Sizing of the server process: builds the release binary, then for each cluster size runs the
# emulator (`astrolabe sim --generate N`) as a process of its own and `astrolabe serve` against it
# through a kubeconfig, once without persistence and once with a real redis-server (the repository's
# redis.conf, AOF everysec, in a temporary directory), plus a restart from that Redis. For each run:
# time from the server's start to /readyz 200, its peak RSS (VmHWM) and RSS at ready (VmRSS), and its
# CPU time (utime + stime) up to ready. The emulator's memory and CPU are not counted.
# Prints a markdown table; --write-docs also replaces the table in docs/operations.md.
#
#   scripts/sizing.sh                        sizes 10000 100000 300000
#   scripts/sizing.sh 10000                  one size
#   scripts/sizing.sh --write-docs [SIZES]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WRITE_DOCS=
sizes=()
for arg in "$@"; do
    case $arg in
    --write-docs) WRITE_DOCS=1 ;;
    -*) echo "usage: scripts/sizing.sh [--write-docs] [SIZE...]" >&2 && exit 2 ;;
    *) sizes+=("$arg") ;;
    esac
done
((${#sizes[@]})) || sizes=(10000 100000 300000)
READY_TIMEOUT=${READY_TIMEOUT:-900} # seconds, per start
command -v redis-server >/dev/null || { echo "sizing.sh: redis-server is not installed" >&2 && exit 1; }

cargo build --release -p astrolabe --quiet
load=$(cut -d' ' -f1 /proc/loadavg)
bin=${CARGO_TARGET_DIR:-target}/release/astrolabe
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# until_status URL CODE: poll until the URL answers CODE; fails after READY_TIMEOUT seconds.
until_status() {
    local deadline=$(($(date +%s) + READY_TIMEOUT))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == "$2" ]]; do
        (($(date +%s) < deadline)) || { echo "sizing.sh: $1 did not answer $2 within ${READY_TIMEOUT}s" >&2 && return 1; }
        sleep 0.05
    done
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
# stop PID: SIGTERM and wait (bounded) for the exit; prints the seconds it took.
stop() {
    local started deadline
    started=$(now)
    deadline=$(($(date +%s) + 60))
    kill -TERM "$1"
    while kill -0 "$1" 2>/dev/null; do
        (($(date +%s) < deadline)) || { kill -KILL "$1" && echo "sizing.sh: $1 ignored SIGTERM" >&2; }
        sleep 0.05
    done
    wait "$1" 2>/dev/null || true
    echo "$(now) - $started" | bc
}

rows=()
notes=()
# serve_once LABEL SIZE ARGS...: start the server, wait until ready, record a row, leave it running
# (its pid in $server).
serve_once() {
    local label=$1 size=$2
    shift 2
    local port started ready nodes code up=
    port=$(free_port)
    started=$(now)
    "$bin" serve --kubeconfig "$tmp/kubeconfig" --listen "127.0.0.1:$port" "$@" >>"$tmp/serve.log" 2>&1 &
    server=$!
    pids+=("$server")
    local deadline=$(($(date +%s) + READY_TIMEOUT))
    # The HTTP server answers (503) once recovery is done; /readyz turns 200 after every list.
    until code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") && [[ $code == 200 ]]; do
        [[ -z $up && $code != 000 ]] && up=$(echo "$(now) - $started" | bc)
        (($(date +%s) < deadline)) || { echo "sizing.sh: not ready within ${READY_TIMEOUT}s" >&2 && return 1; }
        sleep 0.05
    done
    ready=$(echo "$(now) - $started" | bc)
    up=${up:-$ready}
    nodes=$(curl -s "http://127.0.0.1:$port/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"])')
    rows+=("| $size | $nodes | $label | $(printf '%.2f' "$up") s | $(printf '%.2f' "$ready") s | $(cpu_s "$server") s | $(($(status_kib "$server" VmHWM) / 1024)) MiB | $(($(status_kib "$server" VmRSS) / 1024)) MiB |")
    echo "  $label: ready after $(printf '%.2f' "$ready") s, $nodes resources" >&2
}

for size in "${sizes[@]}"; do
    echo "size $size" >&2
    sim_port=$(free_port)
    "$bin" sim --generate "$size" --listen "127.0.0.1:$sim_port" >>"$tmp/sim.log" 2>&1 &
    sim=$!
    pids+=("$sim")
    until_status "http://127.0.0.1:$sim_port/version" 200
    cat >"$tmp/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: sim, cluster: {server: "http://127.0.0.1:$sim_port"}}]
users: [{name: u, user: {}}]
contexts: [{name: sim, context: {cluster: sim, user: u}}]
current-context: sim
YAML

    serve_once "off" "$size"
    stop "$server" >/dev/null

    redis_port=$(free_port)
    mkdir -p "$tmp/redis-$size"
    redis-server redis.conf --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis-$size" \
        --logfile "$tmp/redis-$size/redis.log" --daemonize no &
    redis=$!
    pids+=("$redis")
    deadline=$(($(date +%s) + 30))
    until redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; do
        (($(date +%s) < deadline)) || { echo "sizing.sh: redis-server did not start" >&2 && exit 1; }
        sleep 0.05
    done
    persist=(--enable-persistence --redis-url "redis://127.0.0.1:$redis_port" --cluster-name sizing)
    serve_once "on, first start" "$size" "${persist[@]}"
    shutdown=$(stop "$server")
    serve_once "on, restart from Redis" "$size" "${persist[@]}"
    stop "$server" >/dev/null
    redis_mib=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {printf "%.1f", $2 / 1048576}')
    snapshot_mib=$(redis-cli -p "$redis_port" hget 'astrolabe:{sizing}:snapshot:meta' bytes | awk '{printf "%.1f", $1 / 1048576}')
    aof_mib=$(du -sm "$tmp/redis-$size/appendonlydir" | cut -f1)
    notes+=("- $size: graceful shutdown with persistence (drain, flush, final snapshot) $(printf '%.2f' "$shutdown") s; Redis \`used_memory\` $redis_mib MiB, snapshot ${snapshot_mib:-?} MiB compressed, AOF directory $aof_mib MiB")
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    wait "$redis" 2>/dev/null || true
    kill "$sim" && wait "$sim" 2>/dev/null || true
done

table=$(
    echo "Measured $(date -u +%F), commit $(git rev-parse --short HEAD), $(nproc) cores (load average $load at the start), \`scripts/sizing.sh ${sizes[*]}\`."
    echo
    echo "| Size (\`--generate\`) | Resources | Persistence | HTTP up | Ready | CPU to ready | Peak RSS | RSS at ready |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    printf '%s\n' "${notes[@]}"
)
echo "$table"
if [[ -n $WRITE_DOCS ]]; then
    TABLE=$table python3 - docs/operations.md <<'PY'
import os, sys
path, begin, end = sys.argv[1], "<!-- sizing-table -->", "<!-- /sizing-table -->"
text = open(path, encoding="utf-8").read()
a, b = text.find(begin), text.find(end)
if a < 0 or b < a:
    sys.exit(f"{path}: no {begin} ... {end} markers")
open(path, "w", encoding="utf-8").write(text[: a + len(begin)] + "\n" + os.environ["TABLE"] + "\n" + text[b:])
PY
fi
