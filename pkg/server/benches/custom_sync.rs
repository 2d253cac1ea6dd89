//! Initial sync of N custom objects (cert-manager Certificates, from the emulator's CRD) in the
//! same run and emulator, two ways:
//!
//! - **metadata-only** (the kind without rules): the server's `Ingest` with
//!   `--kinds=Certificate.cert-manager.io` and no rules (discovery, the dynamic metadata-only
//!   watcher, the ingest channel, the apply loop) until the graph holds every object, against a
//!   kube-rs `reflector` over `Api<PartialObjectMeta<DynamicObject>>` until its store is ready;
//! - **with rules** (the built-in pack): the kind read whole (`DynamicObject`) and every object
//!   through the rules, against a kube-rs `reflector` over `Api<DynamicObject>`.
//!
//! `CUSTOM_SYNC_OBJECTS=100000 cargo bench -p astrolabe-server --bench custom_sync` (or
//! `-- --objects 100000`; default 10 000). Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

mod common;

use std::time::Instant;

use anyhow::{Result, bail};
use astrolabe_informers::{Discover, InformerConfig, Rules, RulesFeed};
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
    sim.install_crds()?;
    for i in 0..50 {
        sim.create(
            "Namespace",
            serde_json::json!({"metadata": {"name": format!("ns-{i}")}}),
        )?;
    }
    for i in 0..n {
        let ns = format!("ns-{}", i % 50);
        sim.create(
            "Certificate",
            serde_json::json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                "metadata": {"name": format!("cert-{i}"), "namespace": ns,
                    "labels": {"app": format!("app-{}", i % 100)}},
                "spec": {"secretName": format!("cert-{i}-tls"), "dnsNames": [format!("app-{i}.example.com")],
                    "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}}),
        )?;
    }
    let emulator = Emulator::try_serve(sim.clone()).await?;
    println!("custom_sync: {n} Certificates in the emulator");
    for with_rules in [false, true] {
        let (mut ours, mut theirs) = (0.0f64, 0.0f64);
        for round in 0..ROUNDS {
            if round % 2 == 1 {
                theirs = theirs.max(reflector_sync(&emulator.url(), n, with_rules).await?);
            }
            ours = ours.max(astrolabe_sync(&emulator.url(), n, with_rules).await?);
            if round % 2 == 0 {
                theirs = theirs.max(reflector_sync(&emulator.url(), n, with_rules).await?);
            }
        }
        let ratio = ours / theirs;
        let (mode, baseline) = if with_rules {
            ("rules", "kube DynamicObject reflector")
        } else {
            ("metadata", "kube metadata reflector")
        };
        figure(
            &format!(
                "custom_sync/{}_reflector_objects_per_s",
                if with_rules { "dynamic" } else { "metadata" }
            ),
            theirs,
            "objects/s",
            None,
        );
        figure(
            &format!("custom_sync/astrolabe_{mode}_objects_per_s"),
            ours,
            "objects/s",
            Some(Versus {
                ratio,
                baseline,
                target: ">= 0.80x",
                met: ratio >= TARGET_RATIO,
            }),
        );
    }
    Ok(())
}

/// Discovery and the dynamic watcher into the graph, metadata-only or whole with the built-in
/// rules; objects per second.
async fn astrolabe_sync(url: &str, n: usize, with_rules: bool) -> Result<f64> {
    let mut config =
        InformerConfig::selecting(&["Certificate.cert-manager.io"], None, Discover::All)?;
    config.rules = if with_rules {
        let set = astrolabe_rules::RuleSet::builtin();
        set.declare_edges()?;
        RulesFeed::fixed(astrolabe_server::rules::informer_rules(
            std::sync::Arc::new(set),
        ))
    } else {
        RulesFeed::fixed(Rules::default())
    };
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

/// A kube-rs reflector over the same kind, of metadata or of whole objects; objects per second.
async fn reflector_sync(url: &str, n: usize, whole: bool) -> Result<f64> {
    let client = astrolabe_informers::client_for_url(url)?;
    let ar = ApiResource {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        api_version: "cert-manager.io/v1".into(),
        kind: "Certificate".into(),
        plural: "certificates".into(),
    };
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let stored = if whole {
        reflect(Api::<DynamicObject>::all_with(client, &ar), &ar).await?
    } else {
        reflect(
            Api::<PartialObjectMeta<DynamicObject>>::all_with(client, &ar),
            &ar,
        )
        .await?
    };
    let seconds = started.elapsed().as_secs_f64();
    if stored != n {
        bail!("the reflector store holds {stored} objects, expected {n}");
    }
    println!(
        "  reflector: {stored} objects in {seconds:.3} s ({:.2} CPU-s in the process, emulator included)",
        process_cpu_seconds() - cpu_before
    );
    Ok(stored as f64 / seconds)
}

/// Runs a kube-rs reflector over `api` until its store is ready; the objects it holds then.
async fn reflect<K>(api: Api<K>, ar: &ApiResource) -> Result<usize>
where
    K: kube::Resource<DynamicType = ApiResource>
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
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
    drain.abort();
    Ok(store.state().len())
}
