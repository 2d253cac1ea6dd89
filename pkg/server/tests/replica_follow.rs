#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A follower against a real redis-server: it loads the log and applies the leader's changes
//! into a graph equal to the leader's; held back while the leader writes on and the stream is
//! trimmed past its position, it finds the gap, loads the log again and converges.

use std::sync::Arc;
use std::time::Duration;

use astrolabe_api::ChangeFeed;
use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_informers::SyncStatus;
use astrolabe_model::{ChangeOp, now_ms};
use astrolabe_persist::{EventLog as _, PersistMetrics, RedisTarget};
use astrolabe_server::config::{HistoryConfig, PersistConfig};
use astrolabe_server::persistence::{self, Persistence};
use astrolabe_server::recovery::{RECOVERY_DEADLINE, hydrate};
use astrolabe_server::replica;
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{pod_churn, pods};
use prometheus::Registry;

/// Nodes (with their versions) and edges, comparable.
type State = (
    Vec<String>,
    std::collections::BTreeSet<(
        astrolabe_model::Uid,
        astrolabe_model::Uid,
        astrolabe_model::EdgeKind,
    )>,
);

fn state(g: &Graph) -> State {
    let mut nodes: Vec<String> = g
        .resources()
        .map(|r| format!("{}/{}", r.uid, r.resource_version))
        .collect();
    nodes.sort();
    (nodes, g.edge_set())
}

async fn leader(redis: &RedisServer, graph: &SharedGraph) -> Persistence {
    let config = PersistConfig {
        enabled: true,
        redis: RedisTarget {
            url: Some(redis.url()),
            ..RedisTarget::default()
        },
        cluster_name: "follow".to_owned(),
        // Snapshots every 500 changes, the stream trimmed right behind the older generation:
        // a follower held back finds its position gone.
        snapshot_every_changes: 500,
        stream_retention: 0,
        history: HistoryConfig {
            max_changes: 0,
            ..HistoryConfig::default()
        },
        ..PersistConfig::default()
    };
    let metrics = PersistMetrics::unregistered().unwrap();
    let log = persistence::connect(&config).unwrap();
    log.claim_epoch().await.unwrap();
    let hydrated = hydrate(&log, &metrics, graph, RECOVERY_DEADLINE).await;
    persistence::start_recovered(
        &config,
        metrics,
        log,
        hydrated,
        graph,
        &SyncStatus::new(),
        Duration::from_secs(10),
        || true,
    )
    .await
    .unwrap()
    .0
}

fn apply(graph: &SharedGraph, p: &Persistence, op: ChangeOp) {
    if let Some(change) = graph.write().apply(op, now_ms(), &mut ()) {
        p.sender.send(change);
    }
}

/// Waits (30 s at most) until `follower` holds what `leader` holds.
async fn converged(leader: &SharedGraph, follower: &SharedGraph) {
    let want = state(&leader.read());
    astrolabe_testkit::eventually("the follower converges", Duration::from_secs(30), || {
        let got = state(&follower.read());
        let same = got == want;
        let detail = format!(
            "follower at seq {}, leader at {}",
            follower.read().seq(),
            leader.read().seq()
        );
        async move { if same { Ok(()) } else { Err(detail) } }
    })
    .await;
}

fn reloads(registry: &Registry) -> u64 {
    registry
        .gather()
        .iter()
        .find(|m| m.name() == "astrolabe_follower_reloads_total")
        .map_or(0, |m| m.get_metric()[0].get_counter().get_value() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_held_back_past_a_trim_loads_the_log_again_and_converges() {
    let redis = RedisServer::start().unwrap();
    let leader_graph = SharedGraph::new();
    let p = leader(&redis, &leader_graph).await;
    for r in astrolabe_generator::generate(3, 600) {
        apply(&leader_graph, &p, ChangeOp::Upsert(Arc::new(r)));
    }

    let follower = SharedGraph::new();
    let registry = Registry::new();
    let log = persistence::connect(&PersistConfig {
        redis: RedisTarget {
            url: Some(redis.url()),
            ..RedisTarget::default()
        },
        cluster_name: "follow".to_owned(),
        ..PersistConfig::default()
    })
    .unwrap();
    let following = replica::follow(
        log.clone(),
        PersistMetrics::unregistered().unwrap(),
        &follower,
        ChangeFeed::default(),
        &registry,
    )
    .unwrap();
    converged(&leader_graph, &follower).await;
    assert_eq!(reloads(&registry), 0);

    // Hold the follower back: it cannot apply while the test holds its graph.
    let held = follower.write();
    let held_at = held.seq();
    let pods = pods(leader_graph.read().resources()).unwrap();
    let mut created = None;
    // Rounds of 1,000 changes (a snapshot every 500) until the stream is trimmed past the
    // follower: the older of the two kept generations is then past it. When a snapshot lands
    // within a round does not matter; each round waits only for the log to hold it.
    let mut trimmed = false;
    for round in 0..8 {
        for i in 0..1_000 {
            apply(
                &leader_graph,
                &p,
                pod_churn(&pods, round * 1_000 + i, "follow", &mut created),
            );
        }
        let top = leader_graph.read().seq();
        let (first, _) = astrolabe_testkit::eventually(
            "the log holds the round",
            Duration::from_secs(30),
            || {
                let log = log.clone();
                async move {
                    let first = log.first_seq().await.ok().flatten().unwrap_or(0);
                    let last = log.last_seq().await.ok().flatten().unwrap_or(0);
                    if last >= top {
                        Ok((first, last))
                    } else {
                        Err(format!("stream {first}..={last}, the round ends at {top}"))
                    }
                }
            },
        )
        .await;
        if first > held_at + 1 {
            trimmed = true;
            break;
        }
    }
    assert!(
        trimmed,
        "the stream was trimmed past the follower at {held_at}"
    );
    drop(held);

    converged(&leader_graph, &follower).await;
    assert!(reloads(&registry) >= 1, "the follower loaded the log again");
    following.stop.cancel();
    following.task.await.unwrap();
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_change_in_the_stream_is_skipped_and_counted_and_what_follows_applies() {
    use astrolabe_model::codec;
    use astrolabe_model::{Change, Kind, Resource};

    let redis = RedisServer::start().unwrap();
    let config = PersistConfig {
        redis: RedisTarget {
            url: Some(redis.url()),
            ..RedisTarget::default()
        },
        cluster_name: "malformed".to_owned(),
        ..PersistConfig::default()
    };
    let log = persistence::connect(&config).unwrap();
    let change = |seq: u64, name: &str| {
        let op = ChangeOp::Upsert(Arc::new(Resource::new(name, Kind::ConfigMap, "ns", name)));
        let bytes = codec::encode_change(&Change {
            seq,
            ts_ms: now_ms(),
            op,
        })
        .unwrap();
        (seq, bytes::Bytes::from(bytes))
    };
    log.append(&[change(1, "a")]).await.unwrap();

    let follower = SharedGraph::new();
    let metrics = PersistMetrics::unregistered().unwrap();
    let registry = Registry::new();
    let following = replica::follow(
        log.clone(),
        metrics.clone(),
        &follower,
        ChangeFeed::default(),
        &registry,
    )
    .unwrap();
    let at = |seq: u64| {
        let follower = follower.clone();
        async move {
            astrolabe_testkit::eventually(
                "the follower's sequence",
                Duration::from_secs(30),
                || {
                    let now = follower.read().seq();
                    async move {
                        if now >= seq {
                            Ok(())
                        } else {
                            Err(format!("at {now}"))
                        }
                    }
                },
            )
            .await;
        }
    };
    at(1).await;
    // While it follows, the stream's newest change does not decode: skipped, counted, not a
    // reason to load the log again (which would meet it again).
    log.append(&[(2, bytes::Bytes::from_static(b"\xff not a change"))])
        .await
        .unwrap();
    at(2).await;
    assert_eq!(
        metrics.corrupt_entries.get(),
        1,
        "the malformed change is counted"
    );
    assert_eq!(reloads(&registry), 0);
    log.append(&[change(3, "c")]).await.unwrap();
    at(3).await;
    assert!(follower.read().get(&"a".into()).is_some());
    assert!(follower.read().get(&"c".into()).is_some());
    following.stop.cancel();
    following.task.await.unwrap();
}
