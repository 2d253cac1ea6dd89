#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Redis Sentinel end to end: the real binary persisting through a master the sentinels name
//! (a real redis-server, its replica, three real redis-sentinels), against the emulator under
//! churn. The master is killed (kill -9) mid-churn; the sentinels promote the replica, the
//! server follows it, and once the churn stops what Redis holds (read on the new master) equals
//! the graph the server serves, which equals the emulator's.

mod common;

use astrolabe_testkit::{RedisServer, Sentinels};
use common::persist::{CLUSTER, wait_durable};
use common::{Emulator, Server, Sets, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_follows_a_sentinel_failover_and_the_persisted_state_converges() {
    let mut master = RedisServer::start().unwrap();
    let replica = RedisServer::start().unwrap();
    replica.replicate(master.port()).unwrap();
    let sentinels = Sentinels::start(master.port(), "mymaster", 2, 3).unwrap();
    let mut emu = Emulator::start(31, 500).await;
    let logs = tempfile::tempdir().unwrap();
    let sentinel_addrs = sentinels.addrs().join(",");
    let server = Server::start(
        &emu.kubeconfig(),
        logs.path(),
        &[
            "--enable-persistence",
            // Only the sentinels know where the master is.
            "--redis-addr",
            "127.0.0.1:1",
            "--redis-sentinels",
            &sentinel_addrs,
            "--redis-sentinel-master",
            "mymaster",
            "--cluster-name",
            CLUSTER,
            "--snapshot-interval",
            "2",
        ],
    );
    server.wait_ready().await;
    emu.start_churn(50.0, 6);
    let seq0 = server.seq().await;
    server
        .wait_seq_above("churn reaches the graph", seq0 + 100)
        .await;

    master.kill9();
    eventually(
        "the sentinels promote the replica",
        || server.log_tail(),
        || async { (sentinels.master_port().ok()? == replica.port()).then_some(()) },
    )
    .await;
    let seq1 = server.seq().await;
    server
        .wait_seq_above("churn goes on reaching the graph", seq1 + 100)
        .await;
    emu.stop_churn().await;
    server
        .wait_graph("the graph equals the emulator", || Sets::of(&emu.truth()))
        .await;
    // What the new master holds is what the server serves.
    let served = wait_durable(&server, &replica).await;
    assert_eq!(served, Sets::of(&emu.truth()));
}
