//! Damaged Redis state end to end: the real binary, the emulator and a real redis-server. A
//! stream entry near 2^64 is skipped and the server keeps persisting; a damaged committed
//! snapshot (flipped bit, truncated or missing chunk, bad metadata) with the API server down
//! loses nothing acknowledged, and a snapshot taken before the relist never shrinks the
//! persisted state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use astrolabe_persist::plausible::seq_ceiling_now;
use astrolabe_persist::{DEFAULT_REPLAY_PAGE, EventLog, PersistMetrics, SnapshotMeta, read_state};
use astrolabe_testkit::RedisServer;
use common::persist::{log, persist_flags, persisted, start, wait_durable, wait_hydrated};
use common::{Emulator, Server, Sets, eventually};

/// Where a stray writer (or garbage) put an entry: 616 sequences below `u64::MAX`.
const NEAR_WRAP: u64 = 18_446_744_073_709_551_000;

/// The persistence flags, with the stream trimmed right behind what snapshots cover.
fn trimming(emu: &Emulator, logs: &Path, redis: &RedisServer) -> Server {
    let mut flags = persist_flags(redis);
    flags.extend(["--stream-retention".to_owned(), "0".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&emu.kubeconfig(), logs, &flags)
}

/// Stops `server` with SIGTERM and checks it exits cleanly.
async fn stop(mut server: Server) {
    server.sigterm();
    assert!(
        server.exit_status().await.success(),
        "{}",
        server.log_tail()
    );
}

async fn metric(server: &Server, name: &str) -> f64 {
    server.metric(name).await
}

/// Waits until the server committed a snapshot or skipped one (the shrink guard).
async fn snapshot_settled(server: &Server) {
    eventually(
        "a snapshot is committed or skipped",
        || server.log_tail(),
        || async {
            let committed = metric(
                server,
                "astrolabe_persist_snapshot_last_success_timestamp_seconds",
            )
            .await;
            let skipped = metric(server, "astrolabe_persist_skipped_snapshots_total").await;
            (committed > 0.0 || skipped > 0.0).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_near_wraparound_is_skipped_and_every_later_change_persists() {
    let redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(27, 300).await;
    let logs = tempfile::tempdir().unwrap();
    let server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    wait_durable(&server, &redis).await;
    stop(server).await;

    // Garbage (or another writer's entry) near 2^64 at the stream's top.
    let events = log(&redis).keys().events().to_owned();
    let reply = redis
        .command_line(&format!("XADD {events} {NEAR_WRAP}-1 p garbage"))
        .unwrap();
    assert!(reply.starts_with('$'), "{reply}");
    let mut server = start(&emu, logs.path(), &redis);
    let body = server.wait_ready().await;
    let detail = body["persistence"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "top sequence {NEAR_WRAP} is beyond any plausible sequence"
        )) && detail.contains(&format!("renamed to {events}:damaged:")),
        "{body}"
    );
    assert!(metric(&server, "astrolabe_persist_corrupt_entries_total").await >= 1.0);
    assert_eq!(
        metric(&server, "astrolabe_persist_streams_set_aside_total").await,
        1.0
    );
    let seq0 = server.seq().await;
    assert!(
        seq0 > 0 && seq0 < seq_ceiling_now(),
        "the sequence does not follow the implausible entry: {seq0}"
    );

    // More changes than the 616 sequences the entry left below 2^64.
    emu.start_churn(250.0, 8);
    eventually(
        "churn reaches the graph",
        || server.log_tail(),
        || async { (server.seq().await > seq0.saturating_add(700)).then_some(()) },
    )
    .await;
    emu.stop_churn().await;
    server
        .wait_graph("graph equals the emulator after churn", || {
            Sets::of(&emu.truth())
        })
        .await;
    let before = wait_durable(&server, &redis).await;
    let (_, body) = server.get("/readyz").await.unwrap();
    assert_eq!(
        (
            &body["persistence"]["connected"],
            &body["persistence"]["diverged"]
        ),
        (&true.into(), &false.into()),
        "{body}"
    );
    let seq1 = server.seq().await;

    // kill -9 (no final snapshot), restart with the API server down: every change is in Redis.
    server.kill9();
    emu.stop_server().await;
    let server = start(&emu, logs.path(), &redis);
    wait_hydrated(&server).await;
    let served = server.sets().await;
    assert_eq!(served, before, "{}", served.diff(&before));
    assert!(server.seq().await >= seq1, "the sequence never goes back");
}

/// A damage done to the committed snapshot.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// One bit flipped in the middle of a chunk.
    FlipBit,
    /// A chunk cut to half its length.
    Truncate,
    /// A chunk deleted.
    MissingChunk,
    /// A metadata field that does not parse.
    BadMetadata,
}

impl Damage {
    fn apply(self, redis: &RedisServer, meta: &SnapshotMeta, meta_key: &str) {
        let chunk = log(redis).keys().chunk(meta.generation, 0);
        let line = match self {
            Damage::FlipBit => format!(
                "EVAL \"local v = redis.call('GET', KEYS[1]) local i = math.floor(#v / 2) \
                 redis.call('SETRANGE', KEYS[1], i, string.char(bit.bxor(string.byte(v, i + 1), 1))) \
                 return i\" 1 {chunk}"
            ),
            Damage::Truncate => format!(
                "EVAL \"local v = redis.call('GET', KEYS[1]) \
                 redis.call('SET', KEYS[1], string.sub(v, 1, math.floor(#v / 2))) return #v\" 1 {chunk}"
            ),
            Damage::MissingChunk => format!("DEL {chunk}"),
            Damage::BadMetadata => format!("HSET {meta_key} chunks lots"),
        };
        let reply = redis.command_line(&line).unwrap();
        assert!(reply.starts_with(':'), "{self:?}: {reply}");
    }
}

/// A server that persisted the emulator's graph in two snapshot generations (the stream
/// trimmed behind the older one) and stopped; returns the persisted graph and the committed
/// generation.
async fn two_generations(
    emu: &mut Emulator,
    logs: &Path,
    redis: &RedisServer,
) -> (Sets, SnapshotMeta) {
    let server = trimming(emu, logs, redis);
    server.wait_ready().await;
    wait_durable(&server, redis).await;
    let first = eventually(
        "a snapshot is committed",
        || server.log_tail(),
        || async { log(redis).snapshot_meta().await.ok().flatten() },
    )
    .await;
    // Many small stream entries after it: trimming removes whole stream nodes.
    emu.start_churn(200.0, 7);
    eventually(
        "churn reaches the graph",
        || server.log_tail(),
        || async { (server.seq().await > first.covered_seq + 600).then_some(()) },
    )
    .await;
    emu.stop_churn().await;
    server
        .wait_graph("graph equals the emulator after churn", || {
            Sets::of(&emu.truth())
        })
        .await;
    let before = wait_durable(&server, redis).await;
    stop(server).await;
    let committed = log(redis).snapshot_meta().await.unwrap().unwrap();
    assert!(committed.generation > first.generation);
    (before, committed)
}

/// The committed snapshot is damaged, and the server restarts with the API server down: the
/// previous generation and the stream after it recover everything acknowledged; the snapshots
/// it takes before the relist never hold less; the restart after that recovers everything
/// again; once the API server answers, a fresh snapshot replaces the damaged one.
async fn a_damaged_snapshot_with_the_api_server_down_loses_nothing(damage: Damage) {
    let redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(26, 300).await;
    let logs = tempfile::tempdir().unwrap();
    let (before, committed) = two_generations(&mut emu, logs.path(), &redis).await;
    let nodes = before.nodes.len() as u64;
    damage.apply(&redis, &committed, log(&redis).keys().snapshot_meta());

    emu.stop_server().await;
    let server = trimming(&emu, logs.path(), &redis);
    let body = wait_hydrated(&server).await;
    let served = server.sets().await;
    assert_eq!(served, before, "{damage:?}: {}", served.diff(&before));
    assert!(
        body["persistence"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("previous generation")),
        "{damage:?}: {body}"
    );
    assert_eq!(
        metric(&server, "astrolabe_persist_recovery_fallbacks_total").await,
        1.0
    );
    // The snapshot requested at start is committed (it holds everything) or skipped (the
    // committed metadata is unreadable, so the guard cannot tell it would not shrink).
    snapshot_settled(&server).await;
    stop(server).await;
    if let Ok(Some(meta)) = log(&redis).snapshot_meta().await {
        assert!(meta.resource_count >= nodes, "{damage:?}: {meta:?}");
    }
    let kept = persisted(&redis).await.expect("the persisted state reads");
    assert_eq!(kept, before, "{damage:?}: {}", kept.diff(&before));

    // Start again, the API server still down: everything acknowledged is recovered.
    let server = trimming(&emu, logs.path(), &redis);
    wait_hydrated(&server).await;
    let served = server.sets().await;
    assert_eq!(served, before, "{damage:?}: {}", served.diff(&before));

    // The API server answers: the graph is complete, and a snapshot that loads is committed.
    emu.start_server().await;
    server
        .wait_graph("graph equals the emulator once it answers", || {
            Sets::of(&emu.truth())
        })
        .await;
    eventually(
        "the committed snapshot loads again",
        || server.log_tail(),
        || async {
            let metrics = PersistMetrics::unregistered().unwrap();
            let r = read_state(
                &log(&redis),
                &astrolabe_server::decoder::DECODER,
                DEFAULT_REPLAY_PAGE,
                &metrics,
            )
            .await
            .ok()?;
            (r.snapshot_refused.is_none() && r.snapshot.is_some()).then_some(())
        },
    )
    .await;
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_a_chunk_with_the_api_server_down_loses_nothing() {
    a_damaged_snapshot_with_the_api_server_down_loses_nothing(Damage::FlipBit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_chunk_with_the_api_server_down_loses_nothing() {
    a_damaged_snapshot_with_the_api_server_down_loses_nothing(Damage::Truncate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_chunk_with_the_api_server_down_loses_nothing() {
    a_damaged_snapshot_with_the_api_server_down_loses_nothing(Damage::MissingChunk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_metadata_with_the_api_server_down_loses_nothing() {
    a_damaged_snapshot_with_the_api_server_down_loses_nothing(Damage::BadMetadata).await;
}

/// Both generations damaged and the stream trimmed: recovery starts empty. With the API server
/// down, neither the snapshot requested at start nor the final one replaces the persisted
/// state with the empty graph; once the API server answers, the relisted graph is committed
/// and the next restart recovers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_before_the_relist_never_shrinks_the_persisted_state() {
    let redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(28, 300).await;
    let logs = tempfile::tempdir().unwrap();
    let (before, committed) = two_generations(&mut emu, logs.path(), &redis).await;
    let previous = log(&redis).load_previous_snapshot().await.unwrap().unwrap();
    assert!(
        log(&redis).first_seq().await.unwrap().unwrap() > 1,
        "the stream is trimmed"
    );
    let meta_key = log(&redis).keys().snapshot_meta().to_owned();
    Damage::MissingChunk.apply(&redis, &committed, &meta_key);
    Damage::MissingChunk.apply(&redis, &previous.meta, &meta_key);

    emu.stop_server().await;
    let server = trimming(&emu, logs.path(), &redis);
    let body = wait_hydrated(&server).await;
    assert!(
        body["persistence"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("started empty")),
        "{body}"
    );
    assert!(server.sets().await.nodes.is_empty());
    snapshot_settled(&server).await;
    stop(server).await;
    let kept = log(&redis).snapshot_meta().await.unwrap().unwrap();
    assert_eq!(kept, committed, "the damaged state is left for repair");

    emu.start_server().await;
    let server = trimming(&emu, logs.path(), &redis);
    server.wait_ready().await;
    server
        .wait_graph("graph equals the emulator after the relist", || {
            Sets::of(&emu.truth())
        })
        .await;
    let relisted = wait_durable(&server, &redis).await;
    assert_eq!(relisted, before, "{}", relisted.diff(&before));
    stop(server).await;
    emu.stop_server().await;
    let server = trimming(&emu, logs.path(), &redis);
    wait_hydrated(&server).await;
    let served = server.sets().await;
    assert_eq!(served, before, "{}", served.diff(&before));
}

/// `astrolabe_persist_damaged_key{key="<role>"}` as `/metrics` shows it.
async fn damaged_key(server: &Server, role: &str) -> Option<f64> {
    let prefix = format!("astrolabe_persist_damaged_key{{key=\"{role}\"}} ");
    server
        .get_text("/metrics")
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
}

/// The snapshot metadata, then the stream key, holding a string: readiness and the metrics
/// name the key, the server serves the graph, and once the key is put right it persists again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_the_wrong_type_are_named_and_the_server_keeps_serving() {
    let redis = RedisServer::start().unwrap();
    let emu = Emulator::start(29, 200).await;
    let logs = tempfile::tempdir().unwrap();
    let server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    let before = wait_durable(&server, &redis).await;
    stop(server).await;

    let keys = log(&redis).keys().clone();
    for (role, key) in [
        ("snapshot", keys.snapshot_meta().to_owned()),
        ("events", keys.events().to_owned()),
    ] {
        // The real key is kept aside; a string takes its place.
        let reply = redis
            .command_line(&format!("RENAME {key} {key}:kept"))
            .unwrap();
        assert!(reply.starts_with("+OK"), "{reply}");
        redis.command_line(&format!("SET {key} garbage")).unwrap();
        let server = start(&emu, logs.path(), &redis);
        let body = server.wait_ready().await;
        let detail = body["persistence"]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!(
                "damaged store: key {key} holds another redis type (WRONGTYPE)"
            )),
            "{role}: {body}"
        );
        assert_eq!(damaged_key(&server, role).await, Some(1.0), "{role}");
        let served = server.sets().await;
        assert_eq!(served, before, "{role}: {}", served.diff(&before));

        // Put right: the next write on the key succeeds, and the damage is no longer named.
        redis.command_line(&format!("DEL {key}")).unwrap();
        redis
            .command_line(&format!("RENAME {key}:kept {key}"))
            .unwrap();
        server
            .wait_readyz("the damage is no longer named", |_, b| {
                !b["persistence"]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("WRONGTYPE")
            })
            .await;
        assert_eq!(damaged_key(&server, role).await, Some(0.0), "{role}");
        wait_durable(&server, &redis).await;
        stop(server).await;
    }
}
