#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Redis event log on a real Redis Cluster of three masters: the log's behaviours, the
//! fence, a follower's tail, the orphan sweep (a keyless SCAN sent to the log's master),
//! wrong-type keys, recovery and the writer; every key of one log on the one master its slot
//! names; a password on every node, and TLS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use astrolabe_persist::{
    AuthFailure, DEFAULT_REPLAY_PAGE, EventLog, HistoryRetention, KeyRole, PersistMetrics,
    RedisConfig, RedisLog, RedisTarget, RedisTls, SnapshotBlob, Writer, WriterConfig, recover,
};
use astrolabe_testkit::{RedisCluster, TestPki};
use bytes::Bytes;
use common::{ToyDecoder, all_seqs, batch, behaviour, blob, payload, toy_snapshot};
use tokio_util::sync::CancellationToken;

const MASTERS: usize = 3;

/// The flags that reach `cluster`: its nodes, with `tweak` applied.
fn target(cluster: &RedisCluster, tweak: impl FnOnce(&mut RedisTarget)) -> RedisTarget {
    let mut target = RedisTarget {
        addr: cluster.nodes()[0].clone(),
        cluster_nodes: cluster.nodes(),
        ..RedisTarget::default()
    };
    tweak(&mut target);
    target
}

/// A log named `name` on the cluster `target` describes, with `tweak` applied to its config.
fn log_on(target: &RedisTarget, name: &str, tweak: impl FnOnce(&mut RedisConfig)) -> RedisLog {
    let mut config = RedisConfig::new(target.connection_info().unwrap(), name);
    config.redis_cluster = target.cluster().unwrap();
    assert!(config.redis_cluster.is_some());
    config.connect_timeout = Duration::from_millis(500);
    tweak(&mut config);
    RedisLog::new(&config).unwrap()
}

/// A log named `name` on `cluster`.
fn log(cluster: &RedisCluster, name: &str) -> RedisLog {
    log_on(&target(cluster, |_| {}), name, |_| {})
}

/// Keeps every checkpoint of the last hour.
const KEEP_ALL: HistoryRetention = HistoryRetention {
    max_age: Duration::from_secs(3600),
    max_changes: u64::MAX,
};

#[tokio::test]
async fn every_behaviour_of_the_log_holds_on_a_cluster() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let on =
        |name: &str, tweak: fn(&mut RedisConfig)| log_on(&target(&cluster, |_| {}), name, tweak);
    behaviour::appends_are_idempotent(&log(&cluster, "idempotent")).await;
    behaviour::an_empty_log_reads_empty(&log(&cluster, "empty")).await;
    behaviour::reads_page_and_start_inside_a_batch(&log(&cluster, "pages")).await;
    behaviour::snapshots_keep_the_previous_and_refuse_stale(&on("stale", |c| {
        c.chunk_size = 1000;
    }))
    .await;
    behaviour::a_compressed_snapshot_is_stored_as_it_is(&log(&cluster, "compressed")).await;
    behaviour::the_stream_is_trimmed_behind_the_previous_generation(&on("trim", |c| {
        c.chunk_size = 4;
    }))
    .await;
    behaviour::a_refused_generation_is_not_kept(&log(&cluster, "refused")).await;
    behaviour::a_refused_generation_goes_and_older_checkpoints_stay(&on("refused-older", |c| {
        c.chunk_size = 16;
        c.retention = KEEP_ALL;
    }))
    .await;
    behaviour::changes_beyond_a_ceiling_are_set_aside(&log(&cluster, "aside")).await;
    behaviour::every_retained_checkpoint_loads(&on("checkpoints", |c| {
        c.chunk_size = 256;
        c.retention = KEEP_ALL;
    }))
    .await;
    behaviour::retention_drops_what_no_point_inside_it_needs(&on("retention", |c| {
        c.chunk_size = 16;
        c.retention = HistoryRetention {
            max_changes: 1500,
            ..KEEP_ALL
        };
    }))
    .await;
    behaviour::gaps_are_kept_and_read_by_overlap(&on("gaps", |c| {
        c.retention = HistoryRetention {
            max_age: Duration::from_secs(3_600),
            ..KEEP_ALL
        };
    }))
    .await;
}

#[tokio::test]
async fn every_key_of_a_log_is_on_the_master_its_slot_names() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let log = log_on(&target(&cluster, |_| {}), "one-slot", |c| c.chunk_size = 16);
    log.claim_epoch().await.unwrap();
    common::append_in(&log, 1..=300, 10).await;
    common::commit_each(&log, &[100, 200, 300], 7, 100).await;
    log.record_gap(&astrolabe_persist::Gap {
        kind: None,
        namespace: None,
        from_ms: astrolabe_model::now_ms() - 10,
        to_ms: astrolabe_model::now_ms(),
        reason: "test".into(),
    })
    .await
    .unwrap();
    let holder = cluster.index_of_key(log.keys().events()).unwrap();
    let counts: Vec<u64> = (0..MASTERS)
        .map(|i| cluster.key_count(i).unwrap())
        .collect();
    // Events, fence, gaps, two records and the chunks of two generations at least.
    assert!(counts[holder] > 5, "{counts:?}");
    for (i, count) in counts.iter().enumerate() {
        if i != holder {
            assert_eq!(*count, 0, "node {i} of {counts:?}");
        }
    }
}

#[tokio::test]
async fn an_older_epoch_is_refused_on_a_cluster() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let (old, new) = (log(&cluster, "fence"), log(&cluster, "fence"));
    common::an_older_epoch_is_refused_whole_and_the_newer_writes(&old, &new).await;
}

/// The tail's blocking read waits on the master of the log's slot.
#[tokio::test]
async fn a_tail_waits_for_the_next_entries_on_a_cluster() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let log = log(&cluster, "tail");
    let holder = cluster.index_of_key(log.keys().events()).unwrap();
    common::a_tail_waits_for_the_next_entries_and_starts_inside_a_batch(&log, || {
        cluster.command(holder, "CLIENT LIST").unwrap_or_default()
    })
    .await;
}

/// Orphan chunks are found by a keyless SCAN: it must reach the master of the log's slot, not
/// any node (with three masters, a node picked at random finds them a third of the time; eight
/// rounds make a lucky pass unlikely).
#[tokio::test]
async fn the_sweep_finds_orphans_on_the_logs_master() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let log = log_on(&target(&cluster, |_| {}), "sweep", |c| c.chunk_size = 16);
    let committed = log.write_snapshot(&blob(5, vec![5u8; 40])).await.unwrap();
    let holder = cluster.index_of_key(log.keys().events()).unwrap();
    for round in 0..8u64 {
        // What an interrupted upload leaves: chunks of a generation never committed.
        let orphan = committed.generation + 1 + round;
        for i in 0..3 {
            let reply = cluster
                .command(holder, &format!("SET {} x", log.keys().chunk(orphan, i)))
                .unwrap();
            assert!(reply.starts_with("+OK"), "{reply}");
        }
        assert_eq!(log.sweep_orphans().await.unwrap(), 3, "round {round}");
    }
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(loaded.meta.generation, committed.generation);
    assert_eq!(&loaded.decompress().unwrap()[..], &[5u8; 40][..]);
}

#[tokio::test]
async fn a_key_of_another_type_is_named_on_a_cluster() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let log = log(&cluster, "wrong-type");
    assert!(log.wrong_type_keys().await.unwrap().is_empty());
    let holder = cluster.index_of_key(log.keys().events()).unwrap();
    let reply = cluster
        .command(holder, &format!("SET {} garbage", log.keys().events()))
        .unwrap();
    assert!(reply.starts_with("+OK"), "{reply}");
    assert_eq!(log.wrong_type_keys().await.unwrap(), vec![KeyRole::Events]);
}

#[tokio::test]
async fn a_new_log_recovers_the_snapshot_and_the_stream_after_it() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let writer = log(&cluster, "recovery");
    writer.append(&batch(1..=2500)).await.unwrap();
    writer.write_snapshot(&toy_snapshot(1200)).await.unwrap();
    drop(writer);
    let reader = log(&cluster, "recovery");
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&reader, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert_eq!(r.snapshot.as_deref(), Some(&[0xaa][..]));
    assert_eq!(r.snapshot_seq, 1200);
    assert_eq!(r.tail, (1201..=2500).collect::<Vec<_>>());
    assert_eq!((r.last_seq, r.skipped_corrupt, r.gaps), (2500, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_appends_everything_once_in_order_on_a_cluster() {
    let cluster = RedisCluster::start(MASTERS).unwrap();
    let log = log(&cluster, "writer");
    let cancel = CancellationToken::new();
    let source = Arc::new(|| -> astrolabe_persist::Result<SnapshotBlob> { Ok(blob(0, vec![])) });
    let (tx, handle) = Writer::<_, _, (u64, Bytes)>::spawn(
        log.clone(),
        source,
        WriterConfig {
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(100),
            ..WriterConfig::default()
        },
        PersistMetrics::unregistered().unwrap(),
        cancel.clone(),
    );
    for seq in 1..=3000 {
        tx.send((seq, payload(seq)));
    }
    let mut acked = handle.acked_seq();
    astrolabe_testkit::within(
        Duration::from_secs(30),
        "acked",
        acked.wait_for(|a| *a >= 3000),
    )
    .await
    .unwrap()
    .unwrap();
    cancel.cancel();
    handle.join().await.unwrap();
    assert_eq!(all_seqs(&log).await, (1..=3000).collect::<Vec<_>>());
}

/// Every character a hand-written URL would have to escape.
const PASSWORD: &str = "p@ss:w/rd%41x";

#[tokio::test]
async fn a_cluster_with_a_password_authenticates_and_refuses_a_wrong_one() {
    let cluster = RedisCluster::start_with_auth(MASTERS, PASSWORD).unwrap();
    let with =
        |password: Option<&str>| target(&cluster, |t| t.password = password.map(str::to_owned));
    let log = log_on(&with(Some(PASSWORD)), "auth", |_| {});
    log.ping().await.unwrap();
    log.append(&batch(1..=3)).await.unwrap();
    log.write_snapshot(&blob(3, vec![3u8; 10])).await.unwrap();
    assert_eq!(all_seqs(&log).await, vec![1, 2, 3]);

    let wrong = log_on(&with(Some("wrong")), "auth", |_| {})
        .ping()
        .await
        .unwrap_err();
    assert!(wrong.is_transient(), "{wrong:?}");
    assert_eq!(
        wrong.auth_failure(),
        Some(AuthFailure::PasswordRefused),
        "{wrong:?}"
    );
    let missing = log_on(&with(None), "auth", |_| {})
        .ping()
        .await
        .unwrap_err();
    assert_eq!(
        missing.auth_failure(),
        Some(AuthFailure::PasswordMissing),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_tls_cluster_serves_the_log_and_names_its_tls_ports() {
    let pki = TestPki::generate().unwrap();
    let cluster = RedisCluster::start_tls(MASTERS, &pki).unwrap();
    let tls = target(&cluster, |t| {
        t.url = Some(format!("rediss://{}", cluster.nodes()[0]));
        t.tls = RedisTls {
            ca_file: Some(pki.path(TestPki::CA)),
            ..RedisTls::default()
        };
    });
    // What the cluster tells a TLS client about its nodes: their TLS ports.
    let mut conn = redis::Client::open(tls.connection_info().unwrap())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut ports: Vec<String> = slots.iter().map(master_addr).collect();
    ports.sort();
    let mut nodes = cluster.nodes();
    nodes.sort();
    assert_eq!(ports, nodes);
    // To a plain client (the fixture's own port) it names the plain ports instead.
    let plain = cluster.node(0).command_line("CLUSTER SLOTS").unwrap();
    for i in 0..MASTERS {
        let port = format!(":{}\r\n", cluster.node(i).port());
        assert!(plain.contains(&port), "{port:?} in {plain:?}");
    }

    let log = log_on(&tls, "tls", |c| c.chunk_size = 16);
    log.append(&batch(1..=20)).await.unwrap();
    log.write_snapshot(&blob(20, vec![2u8; 100])).await.unwrap();
    assert_eq!(all_seqs(&log).await, (1..=20).collect::<Vec<_>>());
    assert_eq!(log.sweep_orphans().await.unwrap(), 0);
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(&loaded.decompress().unwrap()[..], &[2u8; 100][..]);
}

/// `host:port` of the master of one `CLUSTER SLOTS` range (`[first, last, [host, port, id],
/// replicas...]`).
fn master_addr(range: &redis::Value) -> String {
    let redis::Value::Array(parts) = range else {
        panic!("range {range:?}");
    };
    let (host, port): (String, u16) = match &parts[2] {
        redis::Value::Array(node) => (
            redis::from_redis_value_ref(&node[0]).unwrap(),
            redis::from_redis_value_ref(&node[1]).unwrap(),
        ),
        other => panic!("node {other:?}"),
    };
    format!("{host}:{port}")
}
