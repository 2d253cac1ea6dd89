//! Follower lag: a leader's persistence as a replica runs it (the log claimed, so appends go
//! through the fence's script) over the generated cluster, fed Pod status changes at 1,000 and
//! then 5,000 changes a second for `REPLICA_SECONDS` (20) each; a follower
//! (`replica::follow`) tails the same Redis into its own graph. For every change, the lag is the
//! time from the leader applying it to the follower applying it (the follower's change events
//! carry the leader's time). Baseline, same run and changes: the leader's own append, from
//! applying a change to the writer acknowledging it durable, which the follower cannot beat.
//!
//! `cargo bench -q -p astrolabe-server --bench replicas` (`REPLICA_SECONDS` and
//! `REPLICA_SIZE` override the defaults). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use astrolabe_api::ChangeFeed;
use astrolabe_generator as generator;
use astrolabe_graph::SharedGraph;
use astrolabe_informers::SyncStatus;
use astrolabe_model::{ChangeOp, Resource, now_ms};
use astrolabe_persist::{PersistMetrics, RedisTarget};
use astrolabe_server::config::PersistConfig;
use astrolabe_server::persistence;
use astrolabe_server::recovery::{RECOVERY_DEADLINE, hydrate};
use astrolabe_server::replica;
use astrolabe_testkit::RedisServer;
use astrolabe_testkit::bench::{pod_churn, pods};
use common::{Versus, apply_and_send, env_u64, figure, within};
use prometheus::Registry;

const SEED: u64 = 7;
const SIZE: u64 = 100_000;
const SECONDS: u64 = 20;
const RATES: [u64; 2] = [1_000, 5_000];
const TICK: Duration = Duration::from_millis(10);
const TARGET_P99_MS: f64 = 100.0;

fn main() -> Result<()> {
    common::block_on(run())
}

async fn run() -> Result<()> {
    let seconds = env_u64("REPLICA_SECONDS", SECONDS)?;
    let size = usize::try_from(env_u64("REPLICA_SIZE", SIZE)?)?;
    let redis = RedisServer::start().context("starting redis-server")?;
    let config = PersistConfig {
        enabled: true,
        redis: RedisTarget {
            url: Some(redis.url()),
            ..RedisTarget::default()
        },
        cluster_name: "replicas".to_owned(),
        ..PersistConfig::default()
    };
    let grace = Duration::from_secs(30);

    // The leader, as `--leader-election` starts it once it leads.
    let leader = SharedGraph::new();
    let metrics = PersistMetrics::register(&Registry::new())?;
    let log = persistence::connect(&config)?;
    let epoch = log.claim_epoch().await?;
    let hydrated = hydrate(&log, &metrics, &leader, RECOVERY_DEADLINE).await;
    let (p, _) = persistence::start_recovered(
        &config,
        metrics,
        log,
        hydrated,
        &leader,
        &SyncStatus::new(),
        grace,
        || true,
    )
    .await?;
    let generated = generator::generate(SEED, size);
    for r in &generated {
        apply_and_send(&leader, &p.sender, ChangeOp::Upsert(Arc::new(r.clone())));
    }

    // The follower.
    let follower = SharedGraph::new();
    let feed = ChangeFeed::new(1_024, 1 << 16);
    let following = replica::follow(
        persistence::connect(&config)?,
        PersistMetrics::unregistered()?,
        &follower,
        feed.clone(),
        &Registry::new(),
    )?;
    caught_up(&leader, &follower).await?;
    println!(
        "replicas: {} resources (epoch {epoch}), the follower caught up at seq {}; then each rate for {seconds} s",
        leader.read().node_count(),
        follower.read().seq()
    );

    let pods: Vec<Arc<Resource>> = pods(leader.read().resources())?;
    let mut i: usize = 0;
    let mut created = None;
    for rate in RATES {
        let start_seq = leader.read().seq();
        let stop = tokio_util::sync::CancellationToken::new();
        // Lags, from the follower's change events (several per change: its first counts).
        let mut live = feed.subscribe_live();
        let collector = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut lags = Vec::new();
                let mut seen = HashSet::new();
                let mut missed = 0u64;
                loop {
                    let event = tokio::select! {
                        biased;
                        e = live.recv() => e,
                        () = stop.cancelled() => break,
                    };
                    match event {
                        Ok(e) if e.event.seq > start_seq && seen.insert(e.event.seq) => {
                            lags.push((now_ms() - e.event.ts_ms) as f64);
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => missed += n,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
                (lags, missed)
            }
        });
        // The leader's acknowledgements of the same changes.
        let applied_at: Arc<parking_lot::Mutex<Vec<(u64, i64)>>> = Arc::default();
        let mut acked = p.acked_seq();
        let acks = tokio::spawn({
            let (applied_at, stop) = (applied_at.clone(), stop.clone());
            async move {
                let mut lags = Vec::new();
                let mut next = 0usize;
                loop {
                    tokio::select! {
                        changed = acked.changed() => if changed.is_err() { break },
                        () = stop.cancelled() => break,
                    }
                    let upto = *acked.borrow_and_update();
                    let now = now_ms();
                    let applied = applied_at.lock();
                    while next < applied.len() && applied[next].0 <= upto {
                        lags.push((now - applied[next].1) as f64);
                        next += 1;
                    }
                }
                lags
            }
        });

        let per_tick = usize::try_from((rate * TICK.as_millis() as u64 / 1_000).max(1))?;
        let started = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0usize;
        while started.elapsed() < Duration::from_secs(seconds) {
            tick.tick().await;
            for _ in 0..per_tick {
                let op = pod_churn(&pods, i, "replicas", &mut created);
                let ts = now_ms();
                if let Some(change) = leader.write().apply(op, ts, &mut ()) {
                    applied_at.lock().push((change.seq, ts));
                    let _ = p.sender.send(change);
                }
                i += 1;
                n += 1;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        caught_up(&leader, &follower).await?;
        stop.cancel();
        let (mut lags, missed) = collector.await?;
        let mut ack_lags = acks.await?;
        if lags.is_empty() || ack_lags.is_empty() {
            bail!("{rate}/s: no lag measured");
        }
        let (p50, p99) = percentiles(&mut lags);
        let (a50, a99) = percentiles(&mut ack_lags);
        println!(
            "  {rate}/s: {n} changes in {elapsed:.1} s ({:.0}/s); follower lag p50 {p50:.0} ms, \
             p99 {p99:.0} ms over {} changes ({missed} events not seen); the leader's append \
             p50 {a50:.0} ms, p99 {a99:.0} ms",
            n as f64 / elapsed,
            lags.len()
        );
        figure(
            &format!("replicas/follower_lag_p99_{}k_ms", rate / 1_000),
            p99,
            "ms",
            Some(Versus {
                ratio: p99 / a99.max(1.0),
                baseline: "the leader's append (applied to acknowledged)",
                target: "<= 100 ms",
                met: p99 <= TARGET_P99_MS,
            }),
        );
        figure(
            &format!("replicas/leader_append_p99_{}k_ms", rate / 1_000),
            a99,
            "ms",
            None,
        );
        figure(
            &format!("replicas/follower_lag_p50_{}k_ms", rate / 1_000),
            p50,
            "ms",
            None,
        );
    }
    // Query throughput: the leader's graph and the follower's, each behind the API, and the
    // same clients sending all their requests to one, or to both in turn.
    let stop = tokio_util::sync::CancellationToken::new();
    let (a, b) = (
        serve_api(&leader, &stop).await?,
        serve_api(&follower, &stop).await?,
    );
    let paths: Vec<String> = pods
        .iter()
        .step_by(97)
        .take(256)
        .map(|p| format!("/api/v1/neighbors/{}?depth=2", p.uid))
        .collect();
    let one = throughput(&[a], &paths).await?;
    let two = throughput(&[a, b], &paths).await?;
    println!(
        "  query throughput, neighbours depth 2 of a Pod, {CLIENTS} clients for {} s: one replica \
         {one:.0} req/s, two in turn {two:.0} req/s (on this machine's {} cores, shared by both \
         replicas and the clients)",
        LOAD_FOR.as_secs(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    figure("replicas/query_one_replica_per_s", one, "req/s", None);
    figure("replicas/query_two_replicas_per_s", two, "req/s", None);
    stop.cancel();

    following.stop.cancel();
    let _ = following.task.await;
    within(grace, "persistence shutdown", p.shutdown()).await??;
    Ok(())
}

/// Waits (two minutes at most) until the follower's graph is at the leader's sequence.
async fn caught_up(leader: &SharedGraph, follower: &SharedGraph) -> Result<()> {
    let want = leader.read().seq();
    within(Duration::from_secs(120), "the follower catches up", async {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        while follower.read().seq() < want {
            tick.tick().await;
        }
    })
    .await?;
    Ok(())
}

/// The median and the 99th percentile of `values` (sorted in place).
fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Concurrent clients of the throughput measurement.
const CLIENTS: usize = 16;
/// How long each throughput measurement runs.
const LOAD_FOR: Duration = Duration::from_secs(10);

/// The API over `graph` on a free local port, until `stop`.
async fn serve_api(
    graph: &SharedGraph,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<std::net::SocketAddr> {
    let state = astrolabe_api::AppState::new(
        graph.clone(),
        Arc::new(astrolabe_api::StaticReadiness::ready()),
        Registry::new(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(astrolabe_api::serve(
        listener,
        astrolabe_api::router(state),
        astrolabe_api::ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1_024,
        },
        stop.clone(),
    ));
    Ok(addr)
}

/// Requests per second [`CLIENTS`] keep-alive clients complete in [`LOAD_FOR`], each sending
/// its requests to `servers` in turn, over `paths` in turn.
async fn throughput(servers: &[std::net::SocketAddr], paths: &[String]) -> Result<f64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, servers, paths) = (client.clone(), servers.to_vec(), paths.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut i = c;
            while started.elapsed() < LOAD_FOR {
                let server = servers[i % servers.len()];
                let url = format!("http://{server}{}", paths[i % paths.len()]);
                let resp = client.get(url).send().await?;
                if !resp.status().is_success() {
                    bail!("{} from {server}", resp.status());
                }
                resp.bytes().await?;
                done += 1;
                i += 1;
            }
            Ok::<u64, anyhow::Error>(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
