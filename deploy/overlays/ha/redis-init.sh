#!/bin/sh
# Init step of each astrolabe-redis pod in the ha overlay: writes the runtime configs of redis-server
# and redis-sentinel into $RUN_DIR (an emptyDir both rewrite: Sentinel records failovers there with
# CONFIG REWRITE and in its own file).
#
# Which pod is the master: the sentinels of the other pods are asked first (a restart joins whatever
# master they agree on after a failover); when none answers (first start, or every pod was down),
# pod 0 is the master and the others replicate it.
#
# Environment (set in the StatefulSet): POD_NAME, POD_NAMESPACE, HEADLESS_SERVICE, REPLICAS,
# SENTINEL_MASTER, SENTINEL_QUORUM, REDIS_CONF_SRC (the root redis.conf from the ConfigMap), RUN_DIR,
# REDIS_PASSWORD and REDISCLI_AUTH (the Secret). DNS_WAIT_SECONDS (default 120) bounds the wait for
# the master's name to resolve; redis-sentinel refuses to start on a name it cannot resolve.
set -eu

: "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${HEADLESS_SERVICE:?}" "${REPLICAS:?}"
: "${SENTINEL_MASTER:?}" "${SENTINEL_QUORUM:?}" "${REDIS_CONF_SRC:?}" "${RUN_DIR:?}"
: "${REDIS_PASSWORD:?}"
DNS_WAIT_SECONDS=${DNS_WAIT_SECONDS:-120}
REDIS_PORT=6379
SENTINEL_PORT=26379

set_name=${POD_NAME%-*}
domain=$HEADLESS_SERVICE.$POD_NAMESPACE.svc
host_of() { echo "$set_name-$1.$domain"; }
self=$POD_NAME.$domain

say() { echo "redis-init: $*" >&2; }

# The master as the first sentinel that answers names it (this pod's own sentinel is not running yet).
master=""
i=0
while [ "$i" -lt "$REPLICAS" ]; do
    peer=$(host_of "$i")
    i=$((i + 1))
    [ "$peer" = "$self" ] && continue
    reply=$(timeout 3 redis-cli --no-auth-warning -h "$peer" -p "$SENTINEL_PORT" \
        SENTINEL get-master-addr-by-name "$SENTINEL_MASTER" 2>/dev/null) || continue
    answer=$(echo "$reply" | head -n 1)
    case $answer in
        "" | *ERR* | *NOAUTH* | *WRONGPASS*) continue ;;
    esac
    master=$answer
    say "sentinel at $peer names $master as the master"
    break
done
if [ -z "$master" ]; then
    master=$(host_of 0)
    say "no sentinel answered; $master is the master"
fi

# redis-sentinel resolves the master's name when it reads its config and exits if it cannot; the
# headless Service publishes not-ready pods, so the name appears once the pod has an address.
waited=0
until getent hosts "$master" >/dev/null 2>&1; do
    if [ "$waited" -ge "$DNS_WAIT_SECONDS" ]; then
        say "$master does not resolve after ${DNS_WAIT_SECONDS}s"
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done

# A config value in double quotes: escape backslashes and double quotes.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }
password=$(quote "$REDIS_PASSWORD")

mkdir -p "$RUN_DIR"
umask 077

# The repository's redis.conf (AOF on, noeviction, ...), then what depends on this pod. The
# StatefulSet adds --dir, --maxmemory, --requirepass and --masterauth on the command line.
{
    cat "$REDIS_CONF_SRC"
    echo
    echo "# ---- written by redis-init.sh for $POD_NAME ----"
    echo "replica-announce-ip $self"
    echo "replica-announce-port $REDIS_PORT"
    if [ "$master" != "$self" ]; then
        echo "replicaof $master $REDIS_PORT"
    fi
} >"$RUN_DIR/redis.conf.tmp"
mv "$RUN_DIR/redis.conf.tmp" "$RUN_DIR/redis.conf"

# Sentinel: hostnames throughout (pod IPs change on restart), the same password for the sentinels
# (requirepass, sentinel-pass) as for Redis (auth-pass).
cat >"$RUN_DIR/sentinel.conf.tmp" <<EOF
port $SENTINEL_PORT
daemonize no
protected-mode no
dir /tmp
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $self
sentinel announce-port $SENTINEL_PORT
requirepass $password
sentinel sentinel-pass $password
sentinel monitor $SENTINEL_MASTER $master $REDIS_PORT $SENTINEL_QUORUM
sentinel auth-pass $SENTINEL_MASTER $password
sentinel down-after-milliseconds $SENTINEL_MASTER 5000
sentinel failover-timeout $SENTINEL_MASTER 60000
sentinel parallel-syncs $SENTINEL_MASTER 1
EOF
mv "$RUN_DIR/sentinel.conf.tmp" "$RUN_DIR/sentinel.conf"
say "wrote $RUN_DIR/redis.conf ($([ "$master" = "$self" ] && echo master || echo "replica of $master")) and $RUN_DIR/sentinel.conf"
