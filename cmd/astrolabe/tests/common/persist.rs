//! Persistence helpers of the end-to-end tests: the server's flags for a real redis-server,
//! and what a restarting server would load from it.

use astrolabe_persist::{DEFAULT_REPLAY_PAGE, PersistMetrics, RedisConfig, RedisLog, read_state};
use astrolabe_testkit::RedisServer;

use super::{Emulator, Server, Sets, eventually};

/// The cluster name every persistence test uses.
pub const CLUSTER: &str = "e2e";

/// `serve` flags for persistence on `redis`: snapshots every 2 s, a 15 s grace.
pub fn persist_flags(redis: &RedisServer) -> Vec<String> {
    vec![
        "--enable-persistence".into(),
        "--redis-url".into(),
        redis.url(),
        "--cluster-name".into(),
        CLUSTER.into(),
        "--snapshot-interval".into(),
        "2".into(),
        "--shutdown-grace".into(),
        "15".into(),
    ]
}

/// The server against `emu` and `redis`.
pub fn start(emu: &Emulator, logs: &std::path::Path, redis: &RedisServer) -> Server {
    let flags = persist_flags(redis);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&emu.kubeconfig(), logs, &args)
}

/// The log the server writes.
pub fn log(redis: &RedisServer) -> RedisLog {
    RedisLog::new(&RedisConfig::from_url(&redis.url(), CLUSTER).unwrap()).unwrap()
}

/// What a restarting server would load: snapshot + replayed stream, as a graph. Read-only
/// (`read_state`, not `recover`): the server may be uploading a snapshot generation right now,
/// and sweeping its chunks as orphans would corrupt it.
pub async fn persisted(redis: &RedisServer) -> Option<Sets> {
    let metrics = PersistMetrics::unregistered().unwrap();
    let r = read_state(
        &log(redis),
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
    eventually(
        "persisted state equals the served graph",
        || server.log_tail(),
        || async {
            let served = server.sets().await;
            (persisted(redis).await? == served).then_some(served)
        },
    )
    .await
}

/// Waits until recovery put the graph in place (readiness may still wait for the lists).
pub async fn wait_hydrated(server: &Server) -> serde_json::Value {
    server
        .wait_readyz("recovered graph hydrated", |_, b| {
            b["graph"]["hydrated"] == true
        })
        .await
}
