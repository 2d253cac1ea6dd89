//! Failover time: three `astrolabe serve --leader-election` replicas (the real binary) over one
//! real `redis-server`, against the emulator with churn at 50 changes/s; the leader is killed
//! (kill -9) [`ROUNDS`] times, and each time the figure is the time from the kill to the new
//! leader's first append to the log (the stream's top moving past where the killed leader left
//! it). The lease is 5 s (renew deadline 3 s, retry 1 s), so the target, lease duration + 2 s,
//! is 7 s. The killed replica is started again, as a follower, before the next round.
//!
//! `cargo bench -q -p astrolabe --bench failover`. Figures go to docs/benchmarks.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use astrolabe_persist::EventLog as _;
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{Versus, figure};
use common::persist::log;
use common::replicas::the_leader;
use common::{Emulator, Server};

const ROUNDS: usize = 3;
const LEASE_S: f64 = 5.0;
const LEASE: [&str; 3] = ["5s", "3s", "1s"];

fn replica(emu: &Emulator, logs: &std::path::Path, redis: &RedisServer, id: &str) -> Server {
    common::replicas::replica(emu, logs, redis, id, LEASE)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let logs = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().unwrap();
    let mut emu = common::replicas::emulator(21, 2_000).await;
    let mut servers: Vec<Server> = ["r0", "r1", "r2"]
        .iter()
        .map(|id| replica(&emu, logs.path(), &redis, id))
        .collect();
    for s in &servers {
        s.wait_ready().await;
    }
    emu.start_churn(50.0, 4);
    let stream = log(&redis);
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let numbered: Vec<(usize, &Server)> = servers.iter().enumerate().collect();
        let leader = the_leader(&numbered).await;
        for s in &servers {
            s.wait_ready().await;
        }
        let t0 = Instant::now();
        servers[leader].kill9();
        // Nothing the killed process sent can land after this read.
        let left_at = stream.last_seq().await.unwrap().unwrap_or(0);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
            if stream.last_seq().await.ok().flatten().unwrap_or(0) > left_at {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no new leader appended within 60 s"
            );
        }
        let took = t0.elapsed().as_secs_f64();
        println!(
            "  round {round}: replica {leader} killed; the next leader appended after {took:.2} s"
        );
        times.push(took);
        servers[leader] = replica(&emu, logs.path(), &redis, &format!("r{leader}-{round}"));
    }
    emu.stop_churn().await;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let budget = LEASE_S + 2.0;
    println!(
        "failover: {ROUNDS} kills of the leader, lease {LEASE_S} s: {times:.2?} s (median {median:.2} s)"
    );
    figure(
        "replicas/failover_s",
        median,
        "s",
        Some(Versus {
            ratio: median / budget,
            baseline: "lease duration + 2 s: 7 s budget",
            target: "<= 1.00x",
            met: median <= budget,
        }),
    );
}
