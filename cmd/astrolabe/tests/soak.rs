//! Soak: kill -9 of the server and of Redis at random points of a churning cluster, round after
//! round, with the real binary, the emulator and a real redis-server. Ignored by `cargo test`;
//! `scripts/soak.sh` runs it in release mode and prints its figures (recorded in
//! `docs/operations.md`).
//!
//! Each round starts churn, waits a random 0.2–2 s, then injects one fault:
//! - **server kill -9**: what Redis holds right after the kill is what the server had
//!   acknowledged. The server restarts with the API server down, so it can only serve what it
//!   recovered; every acknowledged object and edge must be there (and nothing else). Then the
//!   API server comes back and the server must become ready.
//! - **Redis kill -9** for a random 0.5–3 s: queries keep being answered throughout; Redis
//!   restarts from its AOF (losing up to its last second), and the server must bring Redis back
//!   to the graph it serves.
//!
//! After each round the churn stops, the served graph must equal the emulator's and Redis must
//! hold exactly the served graph. Environment: `SOAK_ROUNDS` (default 30), `SOAK_SIZE` (objects,
//! 5,000), `SOAK_CHURN` (changes/s, 100), `SOAK_SEED` (1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use astrolabe_testkit::RedisServer;
use common::persist::{persisted, start, wait_durable, wait_hydrated};
use common::{Emulator, Sets};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// xorshift64*: reproducible fault timing from `SOAK_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration uniformly in `[lo, hi)` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// Objects and edges in `a` missing from `b`.
fn missing(a: &Sets, b: &Sets) -> usize {
    a.nodes.difference(&b.nodes).count() + a.edges.difference(&b.edges).count()
}

fn summary(name: &str, times: &mut [Duration]) -> String {
    if times.is_empty() {
        return format!("{name}: none");
    }
    times.sort();
    format!(
        "{name}: p50 {:.2} s, max {:.2} s over {}",
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        times.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of several minutes: scripts/soak.sh"]
async fn soak_kill9_and_redis_outages() {
    let rounds = env_or("SOAK_ROUNDS", 30);
    let size = env_or("SOAK_SIZE", 5_000) as usize;
    let churn = env_or("SOAK_CHURN", 100) as f64;
    let seed = env_or("SOAK_SEED", 1);
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));

    let mut redis = RedisServer::start().unwrap();
    let mut emu = Emulator::start(seed, size).await;
    let logs = tempfile::tempdir().unwrap();
    let mut server = start(&emu, logs.path(), &redis);
    server.wait_ready().await;
    let namespace = emu.sim.list("namespaces").unwrap()[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    let (mut server_kills, mut redis_kills) = (0, 0);
    let (mut lost, mut invented) = (0, 0);
    let (mut answered, mut failed) = (0u64, 0u64);
    let (mut to_hydrated, mut to_ready) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for round in 0..rounds {
        emu.start_churn(churn, seed.wrapping_add(round));
        tokio::time::sleep(rng.millis(200, 2_000)).await;
        if rng.next().is_multiple_of(2) {
            server_kills += 1;
            server.kill9();
            // The server is gone: Redis now holds exactly what it acknowledged.
            let acked = persisted(&redis)
                .await
                .expect("Redis holds a readable state after the kill");
            emu.stop_server().await;
            let t = Instant::now();
            server = start(&emu, logs.path(), &redis);
            wait_hydrated(&server).await;
            to_hydrated.push(t.elapsed());
            let served = server.sets().await;
            let (l, i) = (missing(&acked, &served), missing(&served, &acked));
            if l + i > 0 {
                eprintln!(
                    "round {round}: recovered graph differs from the acknowledged one: {}",
                    served.diff(&acked)
                );
            }
            lost += l;
            invented += i;
            emu.start_server().await;
            server.wait_ready().await;
            to_ready.push(t.elapsed());
        } else {
            redis_kills += 1;
            redis.kill9();
            let outage = rng.millis(500, 3_000);
            let until = Instant::now() + outage;
            while Instant::now() < until {
                let path = format!("/api/v1/graph?namespace={namespace}");
                match server.get(&path).await {
                    Some((200, _)) => answered += 1,
                    other => {
                        failed += 1;
                        eprintln!("round {round}: a query failed with Redis down: {other:?}");
                    }
                }
            }
            redis.restart().unwrap();
        }
        emu.stop_churn().await;
        server
            .wait_graph("the graph converges after the fault", || {
                Sets::of(&emu.truth())
            })
            .await;
        wait_durable(&server, &redis).await;
    }
    println!(
        "soak: {rounds} rounds in {:.0} s ({size} objects, {churn} changes/s, seed {seed})",
        started.elapsed().as_secs_f64()
    );
    println!("server kill -9 and restart: {server_kills}");
    println!("Redis kill -9 and restart: {redis_kills}");
    println!(
        "acknowledged objects and edges lost: {lost}; recovered but never acknowledged: {invented}"
    );
    println!("queries during Redis outages: {answered} answered, {failed} failed");
    println!(
        "{}",
        summary("restart to serving the recovered graph", &mut to_hydrated)
    );
    println!("{}", summary("restart to ready (relisted)", &mut to_ready));
    assert_eq!(lost, 0, "acknowledged changes lost");
    assert_eq!(invented, 0, "recovered state that was never acknowledged");
    assert_eq!(failed, 0, "queries failed while Redis was down");
}
