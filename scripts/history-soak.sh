#!/usr/bin/env bash
# History's bound under sustained churn: the release demo at RATE changes/s for MINUTES with a
# short retention (2 minutes, a checkpoint every 30 s), sampling every 30 s the process's memory
# (RSS), the in-memory log (astrolabe_history_log_bytes) and, with --redis, the memory of the
# redis-server the script starts (persistence on: the log is in Redis). Memory must level off
# once retention is reached. Not part of scripts/test.sh (it runs for minutes); its figures go
# to docs/benchmarks.md.
#
#   scripts/history-soak.sh [--redis] [MINUTES=10] [RATE=1000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

redis=false
if [[ "${1:-}" == "--redis" ]]; then
    redis=true
    shift
fi
minutes=${1:-10}
rate=${2:-1000}

cargo build --release -q -p astrolabe
bin=target/release/astrolabe
work=$(mktemp -d)
port=$((20000 + RANDOM % 10000))
sim_port=$((port + 1))
redis_port=$((port + 2))
cleanup() {
    [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null || true
    [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

flags=(--size 5000 --churn-rate "$rate" --listen "127.0.0.1:$port" --sim-listen "127.0.0.1:$sim_port"
    --history-retention 2m --snapshot-interval 30)
if $redis; then
    redis-server --port "$redis_port" --dir "$work" --save '' --appendonly no --daemonize no \
        >"$work/redis.log" 2>&1 &
    redis_pid=$!
    until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.2; done
    flags+=(--enable-persistence --redis-url "redis://127.0.0.1:$redis_port")
fi
"$bin" demo "${flags[@]}" >"$work/demo.out" 2>"$work/demo.err" &
server=$!
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    kill -0 "$server" 2>/dev/null || { cat "$work/demo.err" >&2; exit 1; }
    sleep 0.5
done

metric() {
    curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2; exit }'
}
echo "history soak: $minutes min at $rate changes/s, retention 2m, redis=$redis"
printf '%8s %10s %10s %12s %12s\n' seconds seq changes/s rss_MiB log_MiB
start=$(date +%s)
last_seq=$(curl -s "http://127.0.0.1:$port/health" | sed -E 's/.*"seq":([0-9]+).*/\1/')
last_t=$start
end=$((start + minutes * 60))
while (($(date +%s) < end)); do
    sleep 30
    now=$(date +%s)
    seq=$(curl -s "http://127.0.0.1:$port/health" | sed -E 's/.*"seq":([0-9]+).*/\1/')
    rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")
    if $redis; then
        log=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ { printf "%.1f", $2 / 1048576 }')
    else
        log=$(awk -v b="$(metric astrolabe_history_log_bytes)" 'BEGIN { printf "%.1f", b / 1048576 }')
    fi
    printf '%8d %10d %10d %12s %12s\n' $((now - start)) "$seq" $(((seq - last_seq) / (now - last_t))) "$rss" "$log"
    last_seq=$seq
    last_t=$now
done
