#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replicas with the real binary, a real redis-server and the emulator's Leases: three
//! `astrolabe serve --leader-election` over one log elect one leader; the followers serve the
//! leader's graph; killed under churn (kill -9), the leader is replaced by a follower, which
//! continues the log; once the churn stops every replica serves the emulator's graph at the
//! same sequence, and the log holds every sequence once, in order. A leader paused past its
//! lease (SIGSTOP) is deposed when it wakes (SIGCONT): the log refuses its writes, it exits.
//! A change-stream client watching the leader resumes on a follower with its Last-Event-ID and
//! ends with the emulator's graph: no change lost across the failover.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use astrolabe_persist::EventLog as _;
use astrolabe_testkit::RedisServer;
use common::persist::log;
use common::replicas::the_leader;
use common::{Emulator, Server, Sets, eventually};

/// A fast election: a 2 s lease.
const LEASE: [&str; 3] = ["2s", "1s", "200ms"];

fn replica(emu: &Emulator, logs: &std::path::Path, redis: &RedisServer, id: &str) -> Server {
    common::replicas::replica(emu, logs, redis, id, LEASE)
}

async fn emulator() -> Emulator {
    common::replicas::emulator(11, 300).await
}

/// What a change-stream client knows: the graph it built from the events, and the id to
/// resume after.
#[derive(Default)]
struct Watched {
    sets: Sets,
    last_id: u64,
    /// Every id received: a change the serving replica had in the log.
    ids: Vec<u64>,
}

impl Watched {
    fn apply(&mut self, event: &str, data: &Value) {
        let edge = || {
            let e = &data["edge"];
            let s = |f: &str| e[f].as_str().unwrap_or_default().to_owned();
            (s("from"), s("to"), s("type"))
        };
        let uid = |r: &Value| r["uid"].as_str().unwrap_or_default().to_owned();
        match event {
            "node-added" | "node-updated" => {
                self.sets.nodes.insert(uid(&data["resource"]));
            }
            "node-removed" => {
                self.sets.nodes.remove(&uid(&data["removed"]));
            }
            "edge-added" => {
                self.sets.edges.insert(edge());
            }
            "edge-removed" => {
                self.sets.edges.remove(&edge());
            }
            other => panic!("unexpected event {other:?}: {data}"),
        }
    }
}

/// Watches `port`'s change stream after `watched.last_id`, applying every event, until the
/// stream ends (its server is gone).
async fn watch(port: u16, watched: Arc<Mutex<Watched>>) {
    let last_id = watched.lock().unwrap().last_id;
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/watch"))
        .header("last-event-id", last_id.to_string())
        .send()
        .await;
    let Ok(mut resp) = resp else { return };
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(m) = astrolabe_testkit::sse::take(&mut buf) {
            let (id, event, data) = (m.id.map(|id| id.parse::<u64>().unwrap()), m.event, m.data);
            let mut w = watched.lock().unwrap();
            if !event.is_empty() {
                assert_ne!(event, "resync", "the stream could not resume: {data}");
                w.apply(&event, &serde_json::from_str(&data).unwrap());
            }
            if let Some(id) = id {
                assert!(id >= w.last_id, "ids go forward: {id} after {}", w.last_id);
                w.last_id = id;
                w.ids.push(id);
            }
        }
    }
}

/// Every sequence the log holds, in stream order.
async fn logged_seqs(redis: &RedisServer) -> Vec<u64> {
    let log = log(redis);
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = log.read_after(after, 1_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seqs.extend(page.iter().map(|e| e.seq));
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_leads_when_the_leader_is_killed_and_every_replica_serves_the_cluster() {
    let logs = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().unwrap();
    let mut emu = emulator().await;
    let mut servers: Vec<Option<Server>> = ["r0", "r1", "r2"]
        .iter()
        .map(|id| Some(replica(&emu, logs.path(), &redis, id)))
        .collect();
    let all: Vec<(usize, &Server)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.as_ref().unwrap()))
        .collect();
    let leader = the_leader(&all).await;
    for (_, s) in &all {
        s.wait_ready().await;
    }
    for (_, s) in &all {
        s.wait_graph("a replica serves the cluster", || Sets::of(&emu.truth()))
            .await;
    }
    // A change-stream client of the leader, from the graph as it is now.
    let watched = Arc::new(Mutex::new(Watched {
        sets: all[leader].1.sets().await,
        last_id: all[leader].1.seq().await,
        ids: Vec::new(),
    }));
    let on_leader = tokio::spawn(watch(all[leader].1.port, Arc::clone(&watched)));

    // Churn, then kill the leader while it writes.
    emu.start_churn(100.0, 5);
    let seq0 = all[leader].1.seq().await;
    eventually("the churn reaches the followers", String::new, || async {
        let mut behind = false;
        for (i, s) in &all {
            if *i != leader && s.seq().await < seq0 + 100 {
                behind = true;
            }
        }
        (!behind).then_some(())
    })
    .await;
    drop(all);
    servers[leader].as_mut().unwrap().kill9();
    servers[leader] = None;
    on_leader.await.unwrap();
    let (seen_on_leader, acknowledged) = {
        let w = watched.lock().unwrap();
        (w.last_id, w.ids.clone())
    };
    assert!(seen_on_leader > seq0, "the client saw changes of the churn");
    let rest: Vec<(usize, &Server)> = servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .collect();
    // The client resumes on a replica (the first still running) with its Last-Event-ID.
    let on_follower = tokio::spawn(watch(rest[0].1.port, Arc::clone(&watched)));
    let next = the_leader(&rest).await;
    assert_ne!(next, leader);
    let at_takeover = rest.iter().find(|(i, _)| *i == next).unwrap().1.seq().await;
    eventually("the new leader continues the log", String::new, || async {
        let s = rest.iter().find(|(i, _)| *i == next).unwrap().1;
        (s.seq().await > at_takeover + 50).then_some(())
    })
    .await;
    emu.stop_churn().await;

    for (_, s) in &rest {
        s.wait_graph("after the failover, a replica serves the cluster", || {
            Sets::of(&emu.truth())
        })
        .await;
    }
    let seqs = eventually(
        "the replicas agree on the sequence",
        String::new,
        || async {
            let mut seqs = Vec::new();
            for (_, s) in &rest {
                seqs.push(s.seq().await);
            }
            seqs.windows(2).all(|w| w[0] == w[1]).then_some(seqs)
        },
    )
    .await;
    let logged = logged_seqs(&redis).await;
    assert!(
        logged.windows(2).all(|w| w[0] < w[1]),
        "every sequence once, in order"
    );
    // The old leader streamed a change once the log acknowledged it: each is in the log.
    let in_log: std::collections::BTreeSet<u64> = logged.iter().copied().collect();
    let lost: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|seq| *seq >= logged[0] && !in_log.contains(seq))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged changes missing from the log: {lost:?}"
    );
    eventually(
        "the watch client reaches the replicas' sequence",
        String::new,
        || async { (watched.lock().unwrap().last_id >= seqs[0]).then_some(()) },
    )
    .await;
    let truth = Sets::of(&emu.truth());
    let built = std::mem::take(&mut watched.lock().unwrap().sets);
    assert!(
        built == truth,
        "the client's graph, from the leader's events then the follower's, is the cluster's: {}",
        built.diff(&truth)
    );
    on_follower.abort();
    assert_eq!(
        logged.last().copied(),
        Some(seqs[0]),
        "the log ends where the replicas are"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_is_fenced_off_and_exits() {
    let logs = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().unwrap();
    let mut emu = emulator().await;
    let mut a = replica(&emu, logs.path(), &redis, "a");
    eventually(
        "a leads",
        || a.log_tail(),
        || async { (a.try_metric("astrolabe_leader").await == Some(1.0)).then_some(()) },
    )
    .await;
    let b = replica(&emu, logs.path(), &redis, "b");
    b.wait_ready().await;
    assert_eq!(a.metric("astrolabe_leader").await, 1.0);

    // Pause `a` past its lease; `b` takes over and writes.
    emu.start_churn(50.0, 9);
    signal(&a, "STOP");
    eventually(
        "b leads",
        || b.log_tail(),
        || async { (b.try_metric("astrolabe_leader").await == Some(1.0)).then_some(()) },
    )
    .await;
    let seq = b.seq().await;
    eventually(
        "b writes the log",
        || b.log_tail(),
        || async { (b.seq().await > seq + 20).then_some(()) },
    )
    .await;

    // `a` wakes up with changes to write: refused, it stops.
    signal(&a, "CONT");
    let status = a.exit_status().await;
    assert!(!status.success(), "a deposed leader exits with an error");
    assert!(
        a.log_text().contains("no longer the leader"),
        "{}",
        a.log_tail()
    );
    emu.stop_churn().await;
    b.wait_graph("b serves the cluster", || Sets::of(&emu.truth()))
        .await;
    let logged = logged_seqs(&redis).await;
    assert!(
        logged.windows(2).all(|w| w[0] < w[1]),
        "every sequence once, in order"
    );
}

fn signal(server: &Server, sig: &str) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `astrolabe_leader` of the server at `port`, `None` while it does not answer.
async fn leader_metric(port: u16) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("astrolabe_leader "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_with_three_replicas_has_one_leader_and_two_followers() {
    let logs = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().unwrap();
    let mut flags = common::persist::persist_flags(&redis);
    flags.extend(
        [
            "--replicas",
            "3",
            "--lease-duration",
            "2s",
            "--lease-renew-deadline",
            "1s",
            "--lease-retry-period",
            "200ms",
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    // Every replica on a port of its own (port + i could be another test's).
    let (demo, _) = Server::demo_on(logs.path(), 300, &args, 0);
    let ports: Vec<u16> = eventually(
        "three replicas listening",
        || demo.log_tail(),
        || async {
            let ports = demo.announced_ports();
            (ports.len() == 3).then_some(ports)
        },
    )
    .await;
    let roles = eventually(
        "one leader and two followers",
        || demo.log_tail(),
        || async {
            let mut roles = Vec::new();
            for &port in &ports {
                roles.push(leader_metric(port).await?);
            }
            let leaders = roles.iter().filter(|r| **r == 1.0).count();
            (leaders == 1 && roles.iter().all(|r| *r == 0.0 || *r == 1.0)).then_some(roles)
        },
    )
    .await;
    assert_eq!(roles.iter().sum::<f64>(), 1.0, "{roles:?}");
    // The followers serve the leader's graph.
    let leader = ports[roles.iter().position(|r| *r == 1.0).unwrap()];
    let seq = |port: u16| async move {
        let body: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["seq"].as_u64()
    };
    eventually(
        "every replica at the leader's sequence",
        || demo.log_tail(),
        || async {
            let want = seq(leader).await?;
            for &port in &ports {
                if seq(port).await? != want {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}
