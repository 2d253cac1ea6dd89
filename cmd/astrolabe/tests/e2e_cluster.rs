#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Redis Cluster end to end: the real binary persisting to a real cluster of three masters
//! (`--redis-cluster-nodes`), against the emulator under churn. Stopped, then started again
//! with the API server down, it serves from the cluster alone the graph it served before.

mod common;

use astrolabe_persist::{RedisConfig, RedisLog, RedisTarget};
use astrolabe_testkit::RedisCluster;
use common::persist::{CLUSTER, persist_flags_to, wait_durable_in, wait_hydrated};
use common::{Emulator, Server, Sets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_redis_cluster_restarts_from_the_cluster_alone() {
    let cluster = RedisCluster::start(3).unwrap();
    let mut emu = Emulator::start(41, 500).await;
    let logs = tempfile::tempdir().unwrap();
    let nodes = cluster.nodes().join(",");
    // Only the cluster's nodes say where the log's master is.
    let flags = persist_flags_to(&[
        "--redis-addr",
        "127.0.0.1:1",
        "--redis-cluster-nodes",
        &nodes,
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start(&emu.kubeconfig(), logs.path(), &flags);
    server.wait_ready().await;
    emu.start_churn(50.0, 3);
    let seq0 = server.seq().await;
    server
        .wait_seq_above("churn reaches the graph", seq0 + 100)
        .await;
    assert!(emu.stop_churn().await > 0);
    server
        .wait_graph("the graph equals the emulator", || Sets::of(&emu.truth()))
        .await;
    let target = RedisTarget {
        addr: cluster.nodes()[0].clone(),
        cluster_nodes: cluster.nodes(),
        ..RedisTarget::default()
    };
    let mut config = RedisConfig::new(target.connection_info().unwrap(), CLUSTER);
    config.redis_cluster = target.cluster().unwrap();
    let log = RedisLog::new(&config).unwrap();
    let live = wait_durable_in(&server, &log).await;
    assert_eq!(live, Sets::of(&emu.truth()));

    // SIGTERM: flush, final snapshot, exit 0.
    server.sigterm();
    assert!(
        server.exit_status().await.success(),
        "{}",
        server.log_tail()
    );

    // Started again with the API server down: the graph comes from the cluster alone.
    emu.stop_server().await;
    let server = Server::start(&emu.kubeconfig(), logs.path(), &flags);
    let body = wait_hydrated(&server).await;
    assert_eq!(body["graph"]["source"], "recovered, not yet synced");
    let restarted = server.sets().await;
    assert_eq!(restarted, live, "{}", restarted.diff(&live));
}
