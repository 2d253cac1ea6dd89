//! End-to-end initial sync of a generated 100k-object cluster served by the emulator.
//!
//! (a) Astrolabe's path, as `astrolabe serve` runs it (without persistence and HTTP): the
//!     server's `Ingest` (the informers for every kind with the default `InformerConfig` → the
//!     ingest channel → the apply loop, batches under one write lock, the change feed) → the
//!     graph; until the server's readiness says ready and every object is applied.
//! (b) Baseline, same run and emulator: one plain kube-rs reflector `Store` per kind (default
//!     watcher config) until every store is ready.
//! (c) Steady state, the same pipeline under two loads of 10 s each: the churner as fast as it
//!     goes (rolling updates, scaling, edits; slow per step), then Pod updates paced at 20k/s;
//!     graph changes applied per second against the emulator's writes per second.
//!
//! `cargo bench -p astrolabe-server --bench initial_sync` (add `-- --sync-only` to skip (c), e.g. under
//! a profiler). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use astrolabe_generator as generator;
use astrolabe_informers::processors::{KindVisitor, Processor, visit_kinds};
use astrolabe_kubesim::{Churner, Sim, SimConfig};
use common::pipeline::{SYNC_TIMEOUT, process_cpu_seconds};
use common::{Emulator, Pipeline, Versus, figure, within};
use futures::StreamExt;
use futures::future::BoxFuture;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio_util::sync::CancellationToken;

const SEED: u64 = 42;
const SIZE: usize = 100_000;
/// Alternating rounds of (a) and (b); the best of each is reported.
const ROUNDS: usize = 3;
/// How long each load of (c) runs.
const LOAD_FOR: Duration = Duration::from_secs(10);
/// Target rate of the Pod-update load of (c), paced in ticks of [`POD_TICK`].
const POD_UPDATE_RATE: u64 = 20_000;
const POD_TICK: Duration = Duration::from_millis(10);
/// Target of (a) against (b).
const TARGET_RATIO: f64 = 0.8;

fn main() -> Result<()> {
    common::block_on(run())
}

async fn run() -> Result<()> {
    // The generated cluster of `Sim::with_generated(42, 100_000)`, with a larger live-event
    // buffer so the churn phase measures the ingest path and not relists after ERROR 410.
    let sim = Sim::new(SimConfig {
        watch_buffer: 1 << 20,
        ..SimConfig::default()
    });
    sim.load_resources(&generator::generate(SEED, SIZE))?;
    let objects = sim.object_count();
    let emulator = Emulator::try_serve(sim.clone()).await?;
    println!("initial_sync: {objects} objects in the emulator (generate({SEED}, {SIZE}))");

    let mut astrolabe_best = 0.0f64;
    let mut reflector_best = 0.0f64;
    let sync_only = std::env::args().any(|a| a == "--sync-only");
    let mut kept: Option<Pipeline> = None;
    for round in 0..ROUNDS {
        let last = round + 1 == ROUNDS;
        // Alternate the order so neither path always runs on a cold process.
        if round % 2 == 1 {
            reflector_best = reflector_best.max(reflector_sync(&emulator.url(), objects).await?);
        }
        let (rate, ingest) = astrolabe_sync(&emulator.url(), objects).await?;
        astrolabe_best = astrolabe_best.max(rate);
        if last && !sync_only {
            kept = Some(ingest);
        } else {
            ingest.stop().await?;
        }
        if round % 2 == 0 {
            reflector_best = reflector_best.max(reflector_sync(&emulator.url(), objects).await?);
        }
    }
    let ratio = astrolabe_best / reflector_best;
    figure(
        "initial_sync/reflector_objects_per_s",
        reflector_best,
        "objects/s",
        None,
    );
    figure(
        "initial_sync/astrolabe_objects_per_s",
        astrolabe_best,
        "objects/s",
        Some(Versus {
            ratio,
            baseline: "kube reflector",
            target: ">= 0.80x",
            met: ratio >= TARGET_RATIO,
        }),
    );

    if sync_only {
        return Ok(());
    }
    let ingest = kept.context("no pipeline kept for the churn phase")?;
    churn(&sim, ingest).await
}

/// (a) Informers → graph until every kind listed; objects per second.
async fn astrolabe_sync(url: &str, objects: usize) -> Result<(f64, Pipeline)> {
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let pipeline = Pipeline::start(url)?;
    pipeline.until_synced(objects).await?;
    let seconds = started.elapsed().as_secs_f64();
    let (batches, lock_seconds) = pipeline
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "astrolabe_apply_batch_seconds")
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_histogram())
        .fold((0, 0.0), |(n, s), h| {
            (n + h.get_sample_count(), s + h.get_sample_sum())
        });
    println!(
        "  astrolabe: {objects} objects in {seconds:.3} s ({:.2} CPU-s in the process, emulator \
         included; {lock_seconds:.3} s applying under the graph's write lock, in {batches} \
         batches)",
        process_cpu_seconds() - cpu_before
    );
    Ok((objects as f64 / seconds, pipeline))
}

/// (b) One reflector store per kind until every store is ready; objects per second.
async fn reflector_sync(url: &str, objects: usize) -> Result<f64> {
    let client = astrolabe_informers::client_for_url(url)?;
    let stop = CancellationToken::new();
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let mut stores = Reflectors {
        client,
        stop: stop.clone(),
        stores: Vec::new(),
    };
    visit_kinds(&mut stores);
    let stores = stores.stores;
    if stores.len() != astrolabe_model::Kind::WATCHED.len() {
        bail!("the baseline does not cover every watched kind");
    }
    let counts = within(
        SYNC_TIMEOUT,
        "every reflector store to be ready",
        futures::future::try_join_all(stores),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    stop.cancel();
    let stored: usize = counts??.iter().sum();
    if stored != objects {
        bail!("reflector stores hold {stored} objects, expected {objects}");
    }
    println!(
        "  reflector: {stored} objects in {seconds:.3} s ({:.2} CPU-s in the process, emulator \
         included)",
        process_cpu_seconds() - cpu_before
    );
    Ok(stored as f64 / seconds)
}

/// One reflector per watched type ([`visit_kinds`]).
struct Reflectors {
    client: kube::Client,
    stop: CancellationToken,
    stores: Vec<BoxFuture<'static, Result<usize>>>,
}

impl KindVisitor for Reflectors {
    fn visit<K: Processor>(&mut self) {
        self.stores.push(reflect::<K>(&self.client, &self.stop));
    }
}

/// A reflector for `K` (default watcher config, drained in its own task until `stop`); resolves
/// to the store's size once it is ready.
fn reflect<K: Processor>(
    client: &kube::Client,
    stop: &CancellationToken,
) -> BoxFuture<'static, Result<usize>> {
    let (store, writer) = reflector::store::<K>();
    let stream = reflector(
        writer,
        watcher(K::api(client.clone(), None), watcher::Config::default()).default_backoff(),
    );
    let stop = stop.clone();
    tokio::spawn(async move {
        let drain = stream.for_each(|_| futures::future::ready(()));
        tokio::select! {
            () = stop.cancelled() => {}
            () = drain => {}
        }
    });
    Box::pin(async move {
        store
            .wait_until_ready()
            .await
            .map_err(|_| anyhow::anyhow!("reflector for {} stopped", <K as Processor>::kind()))?;
        Ok(store.len())
    })
}

/// (c) Two loads, each for [`LOAD_FOR`], while the informers feed the graph: the churner as fast
/// as it goes (realistic mixed changes), then Pod updates paced at [`POD_UPDATE_RATE`].
async fn churn(sim: &Sim, ingest: Pipeline) -> Result<()> {
    let mut churner = Churner::new(sim.clone(), 7);
    load_phase("churn", sim, &ingest, move || {
        // A failed step (an object deleted under its feet) is skipped, like run_churn.
        let _ = churner.step();
        1
    })
    .await?;

    let pods = sim.keys("Pod")?;
    if pods.is_empty() {
        bail!("the emulator has no Pods");
    }
    let updater = sim.clone();
    let per_tick = (POD_UPDATE_RATE as f64 * POD_TICK.as_secs_f64()) as usize;
    let mut next = 0usize;
    let mut tick = Instant::now();
    load_phase("pod_updates", sim, &ingest, move || {
        for _ in 0..per_tick {
            let (ns, name) = &pods[next % pods.len()];
            next += 1;
            let stamp = next.to_string();
            // A new resourceVersion (and an annotation the processors drop): a status-only change.
            let _ = updater.update("Pod", ns, name, |v| {
                v["metadata"]["annotations"]["bench.astrolabe.dev/tick"] = stamp.into();
            });
        }
        tick += POD_TICK;
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            tick = Instant::now();
        }
        per_tick as u64
    })
    .await?;

    let in_sim = sim.object_count();
    let in_graph = ingest.graph.read().node_count();
    ingest.stop().await?;
    if in_sim != in_graph {
        bail!("after the loads the graph holds {in_graph} resources, the emulator {in_sim}");
    }
    println!("  consistent after the loads: {in_graph} resources in both");
    Ok(())
}

/// Run `step` on a thread of its own for [`LOAD_FOR`] while the informers feed the graph; print
/// the emulator's writes per second and the events applied per second.
async fn load_phase(
    label: &str,
    sim: &Sim,
    ingest: &Pipeline,
    mut step: impl FnMut() -> u64 + Send + 'static,
) -> Result<()> {
    let events_before = ingest.changes();
    let relists_before = ingest.relists();
    let rv_before = sim.current_rv();
    let running = Arc::new(AtomicBool::new(true));
    let steps = Arc::new(AtomicU64::new(0));
    let worker = {
        let (running, steps) = (running.clone(), steps.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                steps.fetch_add(step(), Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    tokio::time::sleep(LOAD_FOR).await;
    running.store(false, Ordering::Relaxed);
    let window = started.elapsed().as_secs_f64();
    let events_in_window = ingest.changes() - events_before;
    let writes = sim.current_rv() - rv_before;
    within(Duration::from_secs(10), "the load thread to stop", async {
        while !worker.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;
    let (total, last_at) = ingest
        .until_quiet(Duration::from_secs(1), Duration::from_secs(120))
        .await?;
    let total = total - events_before;
    let caught_up = (last_at - started).as_secs_f64();
    let relists = ingest.relists() - relists_before;
    let steps = steps.load(Ordering::Relaxed);
    println!(
        "  {label}: {steps} steps, {writes} emulator writes in {window:.1} s; {events_in_window} \
         changes applied in the window, {total} in all after {caught_up:.1} s; {relists} relists"
    );
    let write_rate = writes as f64 / window;
    figure(
        &format!("{label}/emulator_writes_per_s"),
        write_rate,
        "writes/s",
        None,
    );
    let applied = events_in_window as f64 / window;
    let keep_up = applied / write_rate;
    figure(
        &format!("{label}/changes_applied_per_s"),
        applied,
        "changes/s",
        Some(Versus {
            ratio: keep_up,
            baseline: "emulator writes",
            target: ">= 0.95x, keeps up",
            met: keep_up >= 0.95,
        }),
    );
    figure(
        &format!("{label}/lag_after_load_s"),
        (caught_up - window).max(0.0),
        "s",
        None,
    );
    Ok(())
}
