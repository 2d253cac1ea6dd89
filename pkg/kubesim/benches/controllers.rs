//! Emulator write throughput with its controllers on: 300 Deployments of 3 replicas (10
//! namespaces) created as `kubectl create -f` creates them (one POST each, 8 clients at a time,
//! over HTTP), until the controllers have settled them into ReplicaSets and Running, Ready Pods.
//! The figure is the objects the requests created per second, counted to the settled state; the
//! baseline in the same run is the same requests against the bare API (controllers off), where
//! nothing follows the writes. No target is set for it.
//!
//! `cargo bench -p astrolabe-kubesim --bench controllers`. Figures go to docs/benchmarks.md.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_testkit::bench::figure;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const NAMESPACES: usize = 10;
const DEPLOYMENTS: usize = 300;
const REPLICAS: usize = 3;
const CLIENTS: usize = 8;
const SETTLE: Duration = Duration::from_secs(120);

fn deployment(i: usize) -> Value {
    let name = format!("app-{i}");
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": format!("ns-{}", i % NAMESPACES)},
           "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}})
}

/// Serves an emulator, creates the namespaces, POSTs every Deployment; returns the emulator and
/// the time the POSTs took.
async fn run(controllers: bool) -> Result<(Sim, CancellationToken, Duration)> {
    let sim = Sim::new(SimConfig {
        default_namespaces: true,
        controllers,
        nodes: if controllers { 3 } else { 0 },
        ..SimConfig::default()
    });
    for n in 0..NAMESPACES {
        sim.create(
            "Namespace",
            json!({"metadata": {"name": format!("ns-{n}")}}),
        )?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    tokio::spawn(astrolabe_kubesim::serve(
        sim.clone(),
        listener,
        stop.clone(),
    ));
    if controllers {
        // `serve` starts them once its task runs.
        astrolabe_testkit::until("the controllers run", SETTLE, || sim.controllers_running()).await;
        sim.settle(SETTLE).await?;
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let client = client.clone();
            let url = format!(
                "{url}/apis/apps/v1/namespaces/ns-{}/deployments",
                i % NAMESPACES
            );
            async move {
                client
                    .post(url)
                    .json(&deployment(i))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let posted = started.elapsed();
    if let Some(bad) = statuses.iter().find(|s| **s != 201) {
        bail!("a POST answered {bad}");
    }
    Ok((sim, stop, posted))
}

fn ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (bare, stop, bare_time) = run(false).await?;
        stop.cancel();
        let bare_objects = bare.list("Deployment.apps")?.len();
        let bare_rate = bare_objects as f64 / bare_time.as_secs_f64();

        let started = Instant::now();
        let (sim, stop, _) = run(true).await?;
        sim.settle(SETTLE).await?;
        let settled = started.elapsed();
        stop.cancel();
        let deployments = sim.list("Deployment.apps")?.len();
        let replicasets = sim.list("ReplicaSet.apps")?.len();
        let pods = sim.list("Pod")?;
        let ready_pods = pods.iter().filter(|p| ready(p)).count();
        if deployments != DEPLOYMENTS
            || replicasets != DEPLOYMENTS
            || ready_pods != DEPLOYMENTS * REPLICAS
        {
            bail!(
                "settled into {deployments} Deployments, {replicasets} ReplicaSets, {ready_pods} \
                 Ready Pods of {}",
                pods.len()
            );
        }
        let objects = deployments + replicasets + pods.len();
        println!(
            "controllers: {DEPLOYMENTS} Deployments x {REPLICAS} POSTed by {CLIENTS} clients, \
             settled into {replicasets} ReplicaSets and {ready_pods} Ready Pods in {:.2} s \
             ({objects} objects; bare API: {bare_objects} Deployments POSTed in {:.2} s)",
            settled.as_secs_f64(),
            bare_time.as_secs_f64()
        );
        let per_s = DEPLOYMENTS as f64 / settled.as_secs_f64();
        figure(
            "emulator/bare_deployments_per_s",
            bare_rate,
            "objects/s",
            None,
        );
        // No target is named for this figure: it is printed with its baseline's ratio only.
        println!(
            "  settled with controllers at {:.3}x the bare API's write rate",
            per_s / bare_rate
        );
        figure(
            "emulator/controllers_deployments_per_s",
            per_s,
            "objects/s",
            None,
        );
        figure(
            "emulator/controllers_objects_per_s",
            objects as f64 / settled.as_secs_f64(),
            "objects/s",
            None,
        );
        Ok(())
    })
}
