//! Initial sync of N objects of a kind outside the table, metadata-only: Astrolabe's dynamic
//! watcher into the graph against a plain kube-rs reflector over `PartialObjectMeta` of the
//! same kind, in the same run and emulator. The objects are core `Endpoints` (served by the
//! emulator, outside the table of built-in kinds, so discovered and watched as any custom kind
//! would be) until the emulator serves CRDs.
//!
//! (a) The server's `Ingest` with `--kinds=Endpoints` (discovery, the dynamic metadata-only
//!     watcher, the ingest channel, the apply loop) until readiness says ready and the graph
//!     holds every object.
//! (b) A kube-rs `reflector` over `Api<PartialObjectMeta<DynamicObject>>` (default watcher
//!     config) until its store is ready.
//!
//! `CUSTOM_SYNC_OBJECTS=100000 cargo bench -p astrolabe-server --bench custom_sync` (or
//! `-- --objects 100000`; default 10 000). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::time::Instant;

use anyhow::{Result, bail};
use astrolabe_informers::{Discover, InformerConfig};
use astrolabe_kubesim::{Sim, SimConfig};
use common::pipeline::{SYNC_TIMEOUT, process_cpu_seconds};
use common::{Emulator, Pipeline, Versus, figure, within};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, reflector, watcher};

const DEFAULT_OBJECTS: usize = 10_000;
/// Alternating rounds of (a) and (b); the best of each is reported.
const ROUNDS: usize = 3;
const TARGET_RATIO: f64 = 0.8;

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    common::block_on(run())
}

/// N from `--objects N`, else `CUSTOM_SYNC_OBJECTS`, else [`DEFAULT_OBJECTS`].
fn objects_wanted() -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    let flag = args
        .iter()
        .position(|a| a == "--objects")
        .and_then(|i| args.get(i + 1).cloned());
    match flag.or_else(|| std::env::var("CUSTOM_SYNC_OBJECTS").ok()) {
        Some(n) => Ok(n.parse()?),
        None => Ok(DEFAULT_OBJECTS),
    }
}

async fn run() -> Result<()> {
    let n = objects_wanted()?;
    let sim = Sim::new(SimConfig::default());
    for i in 0..n {
        sim.create(
            "Endpoints",
            serde_json::json!({"metadata": {"name": format!("ep-{i}"), "namespace": format!("ns-{}", i % 50),
                "labels": {"app": format!("app-{}", i % 100)}},
                "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        )?;
    }
    let emulator = Emulator::try_serve(sim.clone()).await?;
    println!("custom_sync: {n} Endpoints objects in the emulator");
    let (mut ours, mut theirs) = (0.0f64, 0.0f64);
    for round in 0..ROUNDS {
        if round % 2 == 1 {
            theirs = theirs.max(reflector_sync(&emulator.url(), n).await?);
        }
        ours = ours.max(astrolabe_sync(&emulator.url(), n).await?);
        if round % 2 == 0 {
            theirs = theirs.max(reflector_sync(&emulator.url(), n).await?);
        }
    }
    let ratio = ours / theirs;
    figure(
        "custom_sync/metadata_reflector_objects_per_s",
        theirs,
        "objects/s",
        None,
    );
    figure(
        "custom_sync/astrolabe_metadata_objects_per_s",
        ours,
        "objects/s",
        Some(Versus {
            ratio,
            baseline: "kube metadata reflector",
            target: ">= 0.80x",
            met: ratio >= TARGET_RATIO,
        }),
    );
    Ok(())
}

/// (a) Discovery and the dynamic metadata-only watcher into the graph; objects per second.
async fn astrolabe_sync(url: &str, n: usize) -> Result<f64> {
    let config = InformerConfig::selecting(&["Endpoints"], None, Discover::All)?;
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let pipeline = Pipeline::start_config(url, config)?;
    pipeline.until_synced(n).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  astrolabe: {n} objects in {seconds:.3} s ({:.2} CPU-s in the process, emulator included)",
        process_cpu_seconds() - cpu_before
    );
    pipeline.stop().await?;
    Ok(n as f64 / seconds)
}

/// (b) A kube-rs metadata reflector over the same kind; objects per second.
async fn reflector_sync(url: &str, n: usize) -> Result<f64> {
    let client = astrolabe_informers::client_for_url(url)?;
    let ar = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Endpoints".into(),
        plural: "endpoints".into(),
    };
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &ar);
    let writer = reflector::store::Writer::new(ar.clone());
    let store = writer.as_reader();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let drain = tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    within(
        SYNC_TIMEOUT,
        "the reflector store to be ready",
        store.wait_until_ready(),
    )
    .await??;
    let seconds = started.elapsed().as_secs_f64();
    drain.abort();
    let stored = store.state().len();
    if stored != n {
        bail!("the reflector store holds {stored} objects, expected {n}");
    }
    println!(
        "  reflector: {stored} objects in {seconds:.3} s ({:.2} CPU-s in the process, emulator included)",
        process_cpu_seconds() - cpu_before
    );
    Ok(stored as f64 / seconds)
}
