//! Persistence end to end: the real binary, the emulator and a real redis-server (AOF
//! everysec, the root redis.conf). Restarts after SIGTERM and kill -9 serve the persisted graph
//! before any relist; changes made while the server was down converge; Redis killed during churn
//! converges; the first update of a recovered object is logged as a patch, and patches rebuild
//! the served graph; corrupt entries and snapshots are counted and survived; export/import
//! round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_persist::EventLog;
use astrolabe_testkit::RedisServer;
use common::persist::{CLUSTER, log, persisted, start, top_seq, wait_durable, wait_hydrated};
use common::{Emulator, Sets, eventually};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_serve_the_persisted_graph_and_converge() {
    let redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(21, 700).await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    emu.start_churn(50.0, 3);
    let seq0 = server.seq().await;
    eventually(
        "churn reaches the graph",
        || server.log_tail(),
        || async { (server.seq().await > seq0 + 100).then_some(()) },
    )
    .await;
    assert!(emu.stop_churn().await > 0);
    server
        .wait_graph("graph equals the emulator after churn", || {
            Sets::of(&emu.truth())
        })
        .await;
    let before = wait_durable(&server, &redis).await;

    // SIGTERM: drain, flush, final snapshot, exit 0.
    server.sigterm();
    assert!(
        server.exit_status().await.success(),
        "{}",
        server.log_tail()
    );
    let meta = log(&redis)
        .snapshot_meta()
        .await
        .unwrap()
        .expect("final snapshot");
    assert_eq!(
        Some(meta.covered_seq),
        log(&redis).last_seq().await.unwrap(),
        "final snapshot covers the whole log"
    );

    // Restart with the API server down: the persisted graph is served at once.
    emu.stop_server().await;
    let mut server = start(&emu, logs.path(), &redis);
    let body = wait_hydrated(&server).await;
    assert_eq!(body["graph"]["source"], "recovered, not yet synced");
    let (status, _) = server.get("/readyz").await.unwrap();
    assert_eq!(status, 503, "not ready before the relist");
    let after_sigterm = server.sets().await;
    assert_eq!(after_sigterm, before, "{}", after_sigterm.diff(&before));

    // kill -9, restart: the same graph again.
    server.kill9();
    let mut server = start(&emu, logs.path(), &redis);
    wait_hydrated(&server).await;
    let after_kill = server.sets().await;
    assert_eq!(after_kill, before, "{}", after_kill.diff(&before));
    server.kill9();

    // Changes while the server is down, then the API server comes back: deletions included.
    let victim = emu
        .sim
        .list_in("deployments", "team-000")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let name = victim["metadata"]["name"].as_str().unwrap().to_owned();
    let victim_uid = victim["metadata"]["uid"].as_str().unwrap().to_owned();
    emu.sim.delete("deployments", "team-000", &name).unwrap();
    emu.sim
        .create("configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "while-down", "namespace": "team-000"}}))
        .unwrap();
    emu.start_server().await;
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    server
        .wait_graph("converges after changes made while down", || {
            Sets::of(&emu.truth())
        })
        .await;
    assert!(!server.sets().await.nodes.contains(&victim_uid));
    assert!(
        server.log_text().contains("deleted while unwatched"),
        "the deletion is logged"
    );

    // The writer starts remembering the recovered state: the first update of a recovered
    // object is logged as a patch.
    let seq1 = server.seq().await;
    let recovered = emu
        .sim
        .list_in("services", "team-000")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let (name, uid) = (
        recovered["metadata"]["name"].as_str().unwrap().to_owned(),
        recovered["metadata"]["uid"].as_str().unwrap().to_owned(),
    );
    emu.sim
        .update("services", "team-000", &name, |o| {
            o["metadata"]["labels"]["edited"] = json!("after-recovery");
        })
        .unwrap();
    let update = eventually(
        "the update of a recovered object reaches the log",
        || server.log_tail(),
        || async {
            let entries = log(&redis).read_after(seq1, 10_000).await.ok()?;
            entries.into_iter().find(|e| {
                astrolabe_model::codec::change_uid(&e.payload).is_some_and(|at| match at {
                    astrolabe_model::patch::UidAt::Text(t) => t == uid,
                    astrolabe_model::patch::UidAt::Range(r) => e.payload[r] == *uid.as_bytes(),
                })
            })
        },
    )
    .await;
    assert!(
        astrolabe_model::codec::is_patch(&update.payload),
        "the first update of a recovered object is a patch"
    );

    // Churn after the recovery: what Redis holds still rebuilds the served graph.
    emu.start_churn(50.0, 4);
    eventually(
        "churn after the recovery reaches the graph",
        || server.log_tail(),
        || async { (server.seq().await > seq1 + 100).then_some(()) },
    )
    .await;
    assert!(emu.stop_churn().await > 0);
    server
        .wait_graph("graph equals the emulator after more churn", || {
            Sets::of(&emu.truth())
        })
        .await;
    wait_durable(&server, &redis).await;
    server.sigterm();
    assert!(server.exit_status().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_during_churn_converges() {
    let mut redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(22, 600).await;
    let logs = tempfile::tempdir().unwrap();
    let server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    emu.start_churn(50.0, 4);
    redis.kill9();
    server
        .wait_readyz("readiness says redis is unreachable", |_, b| {
            b["persistence"]["connected"] == false
        })
        .await;
    // Still serving and still applying changes while Redis is down.
    let seq = server.seq().await;
    eventually(
        "changes keep flowing without redis",
        || server.log_tail(),
        || async { (server.seq().await > seq + 20).then_some(()) },
    )
    .await;
    assert_eq!(
        server.get("/healthz").await.unwrap().0,
        200,
        "liveness never depends on redis"
    );
    assert!(server.metric("astrolabe_persist_redis_errors_total").await >= 1.0);
    redis.restart().unwrap();
    server
        .wait_readyz("redis answers again", |_, b| {
            b["persistence"]["connected"] == true
        })
        .await;
    emu.stop_churn().await;
    server
        .wait_graph("graph equals the emulator", || Sets::of(&emu.truth()))
        .await;
    let served = wait_durable(&server, &redis).await;
    assert_eq!(served, Sets::of(&emu.truth()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_then_a_snapshot_supersedes_the_old_log() {
    let mut redis = RedisServer::start().unwrap();
    let emu = Emulator::start(23, 400).await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    wait_durable(&server, &redis).await;
    server.sigterm();
    assert!(server.exit_status().await.success());
    let old_seq = top_seq(&redis).await;

    redis.kill9();
    // A deletion while the server is down: the new server never sees it as a change, so only a
    // full snapshot can take the object out of what Redis holds. Appending the new server's
    // changes to the old log is not enough.
    let victim = emu
        .sim
        .list_in("configmaps", "team-000")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let victim_name = victim["metadata"]["name"].as_str().unwrap().to_owned();
    emu.sim
        .delete("configmaps", "team-000", &victim_name)
        .unwrap();
    emu.sim
        .create("configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after", "namespace": "team-000"}}))
        .unwrap();
    let server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    server
        .wait_graph("serves without redis", || Sets::of(&emu.truth()))
        .await;
    redis.restart().unwrap();
    // The writer may flush its buffer before the superseding snapshot commits; wait for the
    // snapshot itself, not only for Redis to hold the served graph.
    eventually(
        "a snapshot above the old log is committed",
        || server.log_tail(),
        || async {
            let meta = log(&redis).snapshot_meta().await.ok()??;
            (meta.covered_seq > old_seq).then_some(())
        },
    )
    .await;
    let served = wait_durable(&server, &redis).await;
    assert_eq!(served, Sets::of(&emu.truth()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_entries_and_snapshots_are_counted_and_survived() {
    let redis = RedisServer::start().unwrap();
    let emu = Emulator::start(24, 400).await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    wait_durable(&server, &redis).await;
    server.sigterm();
    assert!(server.exit_status().await.success());

    // A garbage entry after the last one (the stream may be empty: it is trimmed behind the
    // older of the two snapshot generations, which may cover everything).
    let covered = log(&redis)
        .snapshot_meta()
        .await
        .unwrap()
        .unwrap()
        .covered_seq;
    let last = log(&redis)
        .last_seq()
        .await
        .unwrap()
        .map_or(covered, |top| top.max(covered));
    let reply = redis
        .command_line(&format!(
            "XADD {} {}-1 d garbage",
            log(&redis).keys().events(),
            last + 1
        ))
        .unwrap();
    assert!(reply.contains('-'), "{reply}");
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    assert!(
        server
            .metric("astrolabe_persist_corrupt_entries_total")
            .await
            >= 1.0
    );
    server
        .wait_graph("graph intact after a corrupt entry", || {
            Sets::of(&emu.truth())
        })
        .await;
    wait_durable(&server, &redis).await;
    server.sigterm();
    assert!(server.exit_status().await.success());

    // Corrupt the committed snapshot's first chunk.
    let meta = log(&redis).snapshot_meta().await.unwrap().unwrap();
    let chunk = log(&redis).keys().chunk(meta.generation, 0);
    redis
        .command_line(&format!("SETRANGE {chunk} 16 XXXXXXXXXXXXXXXX"))
        .unwrap();
    let server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    assert!(
        server
            .metric("astrolabe_persist_refused_snapshots_total")
            .await
            >= 1.0
    );
    server
        .wait_graph("graph rebuilt after a corrupt snapshot", || {
            Sets::of(&emu.truth())
        })
        .await;
    wait_durable(&server, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_export_and_import_round_trip() {
    let redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(25, 400).await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    let before = wait_durable(&server, &redis).await;
    server.sigterm();
    assert!(server.exit_status().await.success());

    let file = logs.path().join("backup.snap");
    let astrolabe = |args: &[&str], cluster: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_astrolabe"))
            .args(args)
            .args(["--redis-url", &redis.url(), "--cluster-name", cluster])
            .output()
            .unwrap()
    };
    let run = |args: &[&str]| {
        let out = astrolabe(args, CLUSTER);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A mistyped cluster name is an error, not an empty backup.
    let wrong = astrolabe(
        &[
            "snapshot",
            "export",
            logs.path().join("x").to_str().unwrap(),
        ],
        "typo",
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("nothing is persisted"));
    let said = run(&["snapshot", "export", file.to_str().unwrap()]);
    assert!(said.contains("exported"), "{said}");
    redis.command_line("FLUSHALL").unwrap();
    assert!(persisted(&redis).await.unwrap().nodes.is_empty());
    let said = run(&["snapshot", "import", file.to_str().unwrap()]);
    assert!(said.contains("imported"), "{said}");
    assert_eq!(persisted(&redis).await.unwrap(), before);

    emu.stop_server().await;
    let server = start(&emu, logs.path(), &redis);
    wait_hydrated(&server).await;
    assert_eq!(server.sets().await, before);
}
