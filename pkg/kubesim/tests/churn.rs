#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The churn driver keeps the cluster consistent and is deterministic for a seed.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use astrolabe_kubesim::{ChurnAction, ChurnConfig, Churner, Sim, SimConfig, run_churn};
use common::{Served, fast_config, fixture, wait_until};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn owned_by(o: &Value, uid: &str) -> bool {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x["uid"] == uid))
}

fn check_consistent(sim: &Sim) {
    let deploy = sim.get("Deployment", "shop", "web").unwrap();
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap();
    let pods = sim.list_in("Pod", "shop").unwrap();
    let sets: Vec<Value> = sim.list_in("ReplicaSet", "shop").unwrap();
    let live: Vec<&Value> = sets
        .iter()
        .filter(|r| r["spec"]["replicas"].as_i64() != Some(0))
        .collect();
    assert_eq!(live.len(), 1, "exactly one active ReplicaSet");
    let rs = live[0];
    let rs_pods: Vec<&Value> = pods
        .iter()
        .filter(|p| owned_by(p, s(rs, "/metadata/uid")))
        .collect();
    assert_eq!(i64::try_from(rs_pods.len()).unwrap(), replicas);
    assert_eq!(
        rs_pods.len(),
        pods.len(),
        "old ReplicaSets have no Pods left"
    );
    for p in &rs_pods {
        assert_eq!(s(p, "/metadata/labels/app"), "web");
        assert_eq!(
            s(p, "/metadata/labels/pod-template-hash"),
            s(rs, "/metadata/labels/pod-template-hash")
        );
    }
    let slices = sim.list_in("EndpointSlice", "shop").unwrap();
    assert_eq!(slices.len(), 1);
    let targets: HashSet<&str> = slices[0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(e, "/targetRef/name"))
        .collect();
    let names: HashSet<&str> = pods.iter().map(|p| s(p, "/metadata/name")).collect();
    assert_eq!(targets, names, "endpoints follow the pods");
}

#[test]
fn churn_keeps_the_cluster_consistent() {
    let sim = Sim::new(SimConfig::default());
    fixture(&sim);
    let mut churner = Churner::new(sim.clone(), 7);
    let mut kinds = HashSet::new();
    for _ in 0..300 {
        let action = churner.step().unwrap();
        kinds.insert(std::mem::discriminant(&action));
        if matches!(
            action,
            ChurnAction::RollingUpdate(..) | ChurnAction::Scale(..)
        ) {
            check_consistent(&sim);
        }
    }
    assert!(kinds.len() >= 4, "all action kinds happen: {kinds:?}");
}

fn actions(seed: u64) -> Vec<String> {
    let sim = Sim::new(SimConfig::default());
    fixture(&sim);
    let mut churner = Churner::new(sim, seed);
    (0..50)
        .map(|_| format!("{:?}", churner.step().unwrap()))
        .map(|a| a.chars().take(40).collect())
        .collect()
}

#[test]
fn churn_is_deterministic_for_a_seed() {
    // Generated names differ in suffix only by the seed, so the action sequence (kind + target) repeats.
    let strip = |v: Vec<String>| {
        v.into_iter()
            .map(|a| a.split('(').next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(actions(3)), strip(actions(3)));
    assert_eq!(actions(3), actions(3));
}

#[tokio::test]
async fn churn_task_feeds_watchers_and_stops() {
    let served = Served::start(fast_config()).await;
    fixture(&served.sim);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_churn(
        served.sim.clone(),
        ChurnConfig {
            rate: 200.0,
            seed: 1,
        },
        shutdown.clone(),
    ));
    let api: Api<Pod> = Api::all(served.client());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let watch = tokio::spawn(async move {
        let mut w = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = w.next().await {
            if matches!(ev, Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    wait_until(20, "pod events from churn", || {
        seen.load(Ordering::Relaxed) >= 10
    })
    .await;
    shutdown.cancel();
    let steps = common::within(5, "churn stops", task).await.unwrap();
    assert!(steps > 0);
    watch.abort();
}
