//! Persistence fixtures shared by the end-to-end tests: the server's persistence flags, what a
//! restarting server would load from Redis, and waits for the writer to catch up.

use std::path::Path;

use astrolabe_persist::{DEFAULT_REPLAY_PAGE, PersistMetrics, RedisConfig, RedisLog, read_state};
use astrolabe_testkit::RedisServer;

use super::{Emulator, Server, Sets, eventually};

/// The `--cluster-name` of every persistent test server.
pub const CLUSTER: &str = "e2e";

/// Persistence on, against `redis`, with a 2 s snapshot interval.
pub fn persist_flags(redis: &RedisServer) -> Vec<String> {
    persist_flags_to(&["--redis-url", &redis.url()])
}

/// Persistence on, to the Redis `redis_flags` name, with a 2 s snapshot interval.
pub fn persist_flags_to(redis_flags: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = vec!["--enable-persistence".into()];
    flags.extend(redis_flags.iter().map(|f| (*f).to_owned()));
    flags.extend(
        [
            "--cluster-name",
            CLUSTER,
            "--snapshot-interval",
            "2",
            "--shutdown-grace",
            "15",
        ]
        .map(str::to_owned),
    );
    flags
}

/// `astrolabe serve` against the emulator with persistence to `redis`.
pub fn start(emu: &Emulator, logs: &Path, redis: &RedisServer) -> Server {
    let flags = persist_flags(redis);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&emu.kubeconfig(), logs, &args)
}

/// A reader of the test cluster's log in `redis`.
pub fn log(redis: &RedisServer) -> RedisLog {
    RedisLog::new(&RedisConfig::from_url(&redis.url(), CLUSTER).unwrap()).unwrap()
}

/// The last sequence Redis holds: the stream's top, or the committed snapshot's when the stream
/// is empty (it is trimmed behind the older of the two snapshot generations, which may cover
/// everything).
pub async fn top_seq(redis: &RedisServer) -> u64 {
    use astrolabe_persist::EventLog as _;
    let log = log(redis);
    let covered = log
        .snapshot_meta()
        .await
        .unwrap()
        .map_or(0, |meta| meta.covered_seq);
    log.last_seq().await.unwrap().unwrap_or(0).max(covered)
}

/// What a restarting server would load: snapshot + replayed stream, as a graph. Read-only
/// (`read_state`, not `recover`): the server may be uploading a snapshot generation right now,
/// and sweeping its chunks as orphans would corrupt it.
pub async fn persisted(redis: &RedisServer) -> Option<Sets> {
    persisted_in(&log(redis)).await
}

/// [`persisted`] from the log `log` reads (on any Redis, a cluster's included).
pub async fn persisted_in(log: &RedisLog) -> Option<Sets> {
    let metrics = PersistMetrics::unregistered().unwrap();
    let r = read_state(
        log,
        &astrolabe_server::decoder::DECODER,
        DEFAULT_REPLAY_PAGE,
        &metrics,
    )
    .await
    .ok()?;
    Some(Sets::of(&astrolabe_server::recovery::rebuild(r)))
}

/// Waits until Redis holds exactly what the server serves (the writer caught up).
pub async fn wait_durable(server: &Server, redis: &RedisServer) -> Sets {
    wait_durable_in(server, &log(redis)).await
}

/// [`wait_durable`] for the log `log` reads.
pub async fn wait_durable_in(server: &Server, log: &RedisLog) -> Sets {
    eventually(
        "persisted state equals the served graph",
        || server.log_tail(),
        || async {
            let served = server.sets().await;
            (persisted_in(log).await? == served).then_some(served)
        },
    )
    .await
}

/// Waits until the server serves its recovered graph (before or after the relist).
pub async fn wait_hydrated(server: &Server) -> serde_json::Value {
    server
        .wait_readyz("recovered graph hydrated", |_, b| {
            b["graph"]["hydrated"] == true
        })
        .await
}
