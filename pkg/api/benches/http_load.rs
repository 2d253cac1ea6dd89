//! End-to-end HTTP load benchmark: the real router served on loopback over a generated
//! 100k-resource graph, with a background writer applying ~5,000 Pod status changes/s (published
//! to a `ChangeFeed`) while `wrk` loads one endpoint at a time. Prints requests/s, p50 and p99 per
//! endpoint and load (paced at a stated offered rate, which decides the latency targets;
//! saturated; one connection), and exits 1 when a target is missed.
//!
//! Run: `cargo bench -p astrolabe-api --bench http_load` (needs `wrk` on `PATH`). Environment:
//! `ASTROLABE_BENCH_DURATION` (seconds per endpoint, default 10), `ASTROLABE_BENCH_CONNECTIONS`
//! (saturated load, 16), `ASTROLABE_BENCH_THREADS` (wrk threads, 2),
//! `ASTROLABE_BENCH_PACED_CONNECTIONS` (paced load, 4), `ASTROLABE_BENCH_RATE` (changes/s, 5000),
//! `ASTROLABE_BENCH_ONLY` (run only endpoints whose name contains this, for profiling),
//! `ASTROLABE_BENCH_SERIAL=0` (skip the one-connection service-time rows),
//! `ASTROLABE_BENCH_VERBOSE=1` (echo wrk's own report).
#![allow(missing_docs)]

#[path = "http_load/wrk.rs"]
mod wrk;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use astrolabe_api::{
    AppState, ChangeFeed, Heartbeat, ServeOptions, StaticReadiness, router, serve,
};
use astrolabe_graph::query::{self, NeighborQuery};
use astrolabe_graph::{Graph, SharedGraph, now_ms};
use astrolabe_model::{ChangeOp, Kind, Resource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wrk::{Endpoint, Load};

/// Resources in the generated cluster.
const SIZE: usize = 100_000;
/// Namespace size the `/api/v1/graph` figure is taken at.
const NAMESPACE_TARGET_NODES: usize = 1_000;
/// Distinct Pods the neighbours load rotates over.
const NEIGHBOR_PODS: usize = 1_000;
/// The writer wakes this often and applies what the rate calls for since the start.
const WRITE_TICK: Duration = Duration::from_millis(10);
/// How long the idle server (writer only) is sampled to subtract the writer's CPU.
const BASELINE: Duration = Duration::from_secs(2);
/// Unreported load per endpoint before the measured runs.
const WARM_UP: Duration = Duration::from_secs(2);
/// Offered load at which the neighbours p99 target is judged (requests/s).
const NEIGHBORS_RATE: u64 = 2_000;
/// Offered load at which the namespace-graph p99 target is judged (requests/s; ~230 MB/s of
/// JSON).
const NAMESPACE_GRAPH_RATE: u64 = 500;
/// At most this many changes under one write lock (catching up after a stall).
const MAX_WRITE_BATCH: usize = 200;

struct Settings {
    duration_s: u64,
    connections: u32,
    threads: u32,
    paced_connections: u32,
    rate: u64,
    only: Option<String>,
    serial: bool,
    verbose: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid number")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Settings {
            duration_s: env_or("ASTROLABE_BENCH_DURATION", 10)?,
            connections: env_or("ASTROLABE_BENCH_CONNECTIONS", 16)?,
            threads: env_or("ASTROLABE_BENCH_THREADS", 2)?,
            paced_connections: env_or("ASTROLABE_BENCH_PACED_CONNECTIONS", 4)?,
            rate: env_or("ASTROLABE_BENCH_RATE", 5_000)?,
            only: std::env::var("ASTROLABE_BENCH_ONLY").ok(),
            serial: std::env::var("ASTROLABE_BENCH_SERIAL").map_or(true, |v| v != "0"),
            verbose: std::env::var("ASTROLABE_BENCH_VERBOSE").is_ok_and(|v| v == "1"),
        })
    }
}

/// What the background writer did, shared with `main`.
#[derive(Default)]
struct WriterStats {
    /// Changes applied (each a real change).
    applied: AtomicU64,
    /// Write-lock acquisitions.
    batches: AtomicU64,
    /// Total time the write lock was held, in nanoseconds.
    held_ns: AtomicU64,
    /// Longest single hold, in nanoseconds.
    max_held_ns: AtomicU64,
}

impl WriterStats {
    /// `[applied, batches, held_ns, max_held_ns]`; the maximum restarts from zero.
    fn snapshot(&self) -> [u64; 4] {
        [
            self.applied.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
            self.held_ns.load(Ordering::Relaxed),
            self.max_held_ns.swap(0, Ordering::Relaxed),
        ]
    }
}

/// The background writer: Pod status updates alternating between two versions, so every apply
/// is a real change, at `rate` per second in small batches under the write lock; events go to
/// the feed after the lock is released.
async fn mutate(
    graph: SharedGraph,
    feed: ChangeFeed,
    heartbeat: Heartbeat,
    versions: [Vec<Arc<Resource>>; 2],
    rate: u64,
    stats: Arc<WriterStats>,
    stop: CancellationToken,
) {
    let pods = versions[0].len() as u64;
    let start = Instant::now();
    let mut next: u64 = 0; // position in the endless sequence updated, original, updated, ...
    let mut tick = tokio::time::interval(WRITE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        let batch = due.saturating_sub(next).min(MAX_WRITE_BATCH as u64);
        let mut events = Vec::new();
        let mut changed = 0;
        let held = {
            let mut g = graph.write();
            let locked = Instant::now();
            let ts = now_ms();
            for k in next..next + batch {
                let pod = &versions[((k / pods) % 2) as usize][(k % pods) as usize];
                if g.apply(ChangeOp::Upsert(pod.clone()), ts, &mut events)
                    .is_some()
                {
                    changed += 1;
                }
            }
            locked.elapsed().as_nanos() as u64
        };
        next += batch;
        feed.publish(events);
        heartbeat.touch();
        stats.applied.fetch_add(changed, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.held_ns.fetch_add(held, Ordering::Relaxed);
        stats.max_held_ns.fetch_max(held, Ordering::Relaxed);
    }
}

fn pod_versions(resources: &[Arc<Resource>]) -> [Vec<Arc<Resource>>; 2] {
    let pods: Vec<Arc<Resource>> = resources
        .iter()
        .filter(|r| r.kind == Kind::Pod)
        .cloned()
        .collect();
    let updated = pods
        .iter()
        .map(|p| {
            let mut u = (**p).clone();
            u.resource_version = "bench-updated".into();
            u.status.message = "Container not ready: app".into();
            Arc::new(u)
        })
        .collect();
    [updated, pods]
}

/// The namespace whose `/api/v1/graph` answer is closest to [`NAMESPACE_TARGET_NODES`] nodes,
/// with its node and edge counts.
fn pick_namespace(g: &Graph) -> (String, usize, usize) {
    query::namespaces(g)
        .iter()
        .map(|ns| {
            let sub = query::compat_graph(g, None, Some(ns));
            (ns.to_string(), sub.nodes.len(), sub.edges.len())
        })
        .min_by_key(|(_, nodes, _)| nodes.abs_diff(NAMESPACE_TARGET_NODES))
        .unwrap_or_default()
}

/// CPU seconds this process (server and writer; wrk is another process) has used, `None`
/// where the clock is not available.
fn process_cpu_s() -> Option<f64> {
    let t = cpu_time::ProcessTime::try_now().ok()?;
    Some(t.as_duration().as_secs_f64())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The generated cluster and what the load will ask for.
struct Fixture {
    resources: Vec<Arc<Resource>>,
    graph: Graph,
    endpoints: Vec<Endpoint>,
}

/// Generates the cluster, builds the graph, picks the namespace and the Pods, and describes them.
fn fixture(settings: &Settings) -> Fixture {
    let t = Instant::now();
    let resources: Vec<Arc<Resource>> = astrolabe_generator::generate(42, SIZE)
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut graph = Graph::new();
    for r in &resources {
        graph.apply(ChangeOp::Upsert(r.clone()), now_ms(), &mut ());
    }
    let built = t.elapsed().as_secs_f64();
    let (namespace, ns_nodes, ns_edges) = pick_namespace(&graph);
    let pods: Vec<_> = resources.iter().filter(|r| r.kind == Kind::Pod).collect();
    let step = (pods.len() / NEIGHBOR_PODS).max(1);
    let sample: Vec<_> = pods.iter().step_by(step).take(NEIGHBOR_PODS).collect();
    let depth2 = NeighborQuery {
        depth: 2,
        ..NeighborQuery::default()
    };
    let mean_neighbors = sample
        .iter()
        .filter_map(|p| query::neighbors(&graph, &p.uid, &depth2))
        .map(|s| s.nodes.len())
        .sum::<usize>() as f64
        / sample.len().max(1) as f64;
    println!(
        "graph: {} nodes, {} edges, built in {built:.1}s; namespace graph: {namespace} \
         ({ns_nodes} nodes, {ns_edges} edges); neighbors depth 2: {} Pods, {mean_neighbors:.0} \
         nodes per answer on average",
        graph.node_count(),
        graph.edge_count(),
        sample.len(),
    );
    let mut endpoints = vec![
        Endpoint {
            name: "neighbors depth=2 (Pods)".into(),
            paths: sample
                .iter()
                .map(|p| format!("/api/v1/neighbors/{}?depth=2", p.uid))
                .collect(),
            target: Some((1.0, NEIGHBORS_RATE)),
        },
        Endpoint {
            name: format!("graph namespace={namespace}"),
            paths: vec![format!("/api/v1/graph?namespace={namespace}")],
            target: Some((5.0, NAMESPACE_GRAPH_RATE)),
        },
        Endpoint {
            name: "/readyz".into(),
            paths: vec!["/readyz".into()],
            target: None,
        },
        Endpoint {
            name: "/metrics".into(),
            paths: vec!["/metrics".into()],
            target: None,
        },
    ];
    if let Some(only) = &settings.only {
        endpoints.retain(|e| e.name.contains(only.as_str()));
    }
    Fixture {
        resources,
        graph,
        endpoints,
    }
}

/// Loads every endpoint in turn and prints one row each; returns how many targets were missed.
/// Three loads per endpoint with a target:
/// - **paced** (decides PASS/FAIL): wrk paces its requests at the endpoint's offered rate over
///   `paced_connections` connections, so p99 is the latency at a known load below saturation;
/// - **saturated** (information): `threads` x `connections` as fast as answers come back, which
///   gives the most requests/s and, closed-loop, a mean latency of connections / throughput;
/// - **one connection** (information): unpaced, no queueing: the service time.
///
/// Endpoints without a target get the saturated row only. `CPU us` is the server's CPU time per
/// request: this process's CPU during the run, less the writer's share measured idle first.
fn measure(
    settings: &Settings,
    endpoints: &[Endpoint],
    addr: std::net::SocketAddr,
) -> anyhow::Result<usize> {
    let idle = process_cpu_s();
    std::thread::sleep(BASELINE);
    let writer_cpu = match (idle, process_cpu_s()) {
        (Some(a), Some(b)) => (b - a) / BASELINE.as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "writer alone: {:.1}% of a core (subtracted from CPU us)\n",
        writer_cpu * 100.0
    );
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("rotate.lua"), wrk::SCRIPT)?;
    println!(
        "{:<30} {:<10} {:>5} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}  {:<13} result",
        "endpoint",
        "load",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "KiB/resp",
        "CPU us",
        "target"
    );
    let saturated = Load {
        threads: settings.threads,
        connections: settings.connections,
        rate: None,
    };
    let mut runs: Vec<(&Endpoint, &str, Load, bool)> = Vec::new();
    for e in endpoints {
        if let Some((_, rate)) = e.target {
            // One wrk thread per connection: independent clients, each on its own schedule.
            // (wrk delays in whole milliseconds, so connections sharing one thread's schedule
            // would send in lock-step pairs at each millisecond, a burstier load than
            // independent clients.)
            let paced = Load {
                threads: settings.paced_connections,
                connections: settings.paced_connections,
                rate: Some(rate),
            };
            runs.push((e, "paced", paced, true));
        }
        runs.push((e, "saturated", saturated, false));
        if settings.serial && e.target.is_some() {
            let one = Load {
                threads: 1,
                connections: 1,
                rate: None,
            };
            runs.push((e, "1 conn", one, false));
        }
    }
    // Warm-up, not reported: every endpoint once at saturation for WARM_UP, so the first
    // measured run does not pay for first-touch page faults and the first rendering of each
    // resource's JSON (the fragment cache fills as a long-running server's would).
    for e in endpoints {
        wrk::run(saturated, WARM_UP.as_secs(), false, dir.path(), addr, e)
            .with_context(|| format!("warming up {}", e.name))?;
    }
    let mut missed = 0;
    for (endpoint, label, load, decides) in runs {
        let cpu_before = process_cpu_s();
        let s = wrk::run(
            load,
            settings.duration_s,
            settings.verbose,
            dir.path(),
            addr,
            endpoint,
        )
        .with_context(|| format!("loading {}", endpoint.name))?;
        let seconds = s.duration_us as f64 / 1e6;
        let rps = s.requests as f64 / seconds;
        let cpu_us = match (cpu_before, process_cpu_s()) {
            (Some(a), Some(b)) => {
                let serving = (b - a - writer_cpu * seconds).max(0.0);
                format!("{:.0}", serving * 1e6 / s.requests as f64)
            }
            _ => "-".to_owned(),
        };
        let (target, result) = match endpoint.target {
            None => ("(none)".to_owned(), "reported"),
            Some((t, rate)) => {
                let met = ms(s.p99_us) <= t;
                // The offered load must actually have been served (within 5%).
                let served = rps >= 0.95 * rate as f64;
                if decides && !(met && served) {
                    missed += 1;
                }
                let result = match (decides, met && served) {
                    (true, true) => "PASS",
                    (true, false) => "FAIL",
                    (false, true) => "(within)",
                    (false, false) => "(over)",
                };
                let target = if decides {
                    format!("p99 <= {t} ms @ {rate}/s")
                } else {
                    format!("p99 <= {t} ms")
                };
                (target, result)
            }
        };
        println!(
            "{:<30} {label:<10} {:>5} {rps:>9.0} {:>8.3} {:>8.3} {:>8.2} {:>9.1} {cpu_us:>8}  {target:<13} {result}",
            endpoint.name,
            load.connections,
            ms(s.p50_us),
            ms(s.p99_us),
            ms(s.max_us),
            s.bytes as f64 / s.requests as f64 / 1024.0,
        );
        ensure!(
            s.non2xx == 0 && s.socket_errors == 0,
            "{}: {} non-2xx responses, {} socket errors",
            endpoint.name,
            s.non2xx,
            s.socket_errors
        );
    }
    Ok(missed)
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (it is the load generator): `apt-get install -y wrk`");
    }
    let Fixture {
        resources,
        graph,
        endpoints,
    } = fixture(&settings);

    let graph = SharedGraph::from_graph(graph);
    let feed = ChangeFeed::default();
    let heartbeat = Heartbeat::default();
    let state = AppState::new(
        graph.clone(),
        Arc::new(StaticReadiness::ready()),
        prometheus::Registry::new(),
    )?
    .with_feed(feed.clone())
    .with_heartbeat(heartbeat.clone());
    // Every core for the server (wrk shares them; that is part of the figure).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let stop = CancellationToken::new();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let server = rt.spawn(serve(
        listener,
        router(state),
        ServeOptions::default(),
        stop.clone(),
    ));
    let stats = Arc::new(WriterStats::default());
    let writer = rt.spawn(mutate(
        graph,
        feed.clone(),
        heartbeat,
        pod_versions(&resources),
        settings.rate,
        stats.clone(),
        stop.clone(),
    ));
    println!(
        "serving on http://{addr} ({cores} cores, runtime with {cores} workers); writer at {} \
         changes/s; wrk paced over {} connections, saturated with {} threads x {} connections; \
         {}s per run",
        settings.rate,
        settings.paced_connections,
        settings.threads,
        settings.connections,
        settings.duration_s,
    );

    let start = Instant::now();
    let before = stats.snapshot();
    let outcome = measure(&settings, &endpoints, addr);
    let elapsed = start.elapsed().as_secs_f64();
    let after = stats.snapshot();
    let (mutations, batches) = (after[0] - before[0], after[1] - before[1]);
    let held_ms = (after[2] - before[2]) as f64 / 1e6;
    println!(
        "\nmutations applied during the run: {mutations} in {elapsed:.1}s = {:.0}/s (target {}/s); \
         feed events published: {}",
        mutations as f64 / elapsed,
        settings.rate,
        feed.last_pos(),
    );
    println!(
        "writer: {batches} write-lock batches, lock held {held_ms:.0} ms in all ({:.1}% of the \
         run), {:.3} ms per batch on average, {:.2} ms at most",
        held_ms / 10.0 / elapsed,
        held_ms / batches.max(1) as f64,
        after[3] as f64 / 1e6,
    );

    stop.cancel();
    feed.close();
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        let _ = writer.await;
    });
    let missed = outcome?;
    let targets = endpoints.iter().filter(|e| e.target.is_some()).count();
    if missed > 0 {
        println!("RESULT: FAIL ({missed} of {targets} latency targets missed)");
        std::process::exit(1);
    }
    println!("RESULT: PASS ({targets} of {targets} latency targets met)");
    Ok(())
}
