//! Shared fixtures for the integration tests: a served emulator, a hand-made cluster and
//! condition waits (from `astrolabe_testkit`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use astrolabe_kubesim::{Sim, SimConfig};
use serde_json::{Value, json};

/// An emulator served on an ephemeral port; stops when dropped.
pub use astrolabe_testkit::Emulator as Served;

/// A config with fast bookmarks, for tests.
pub fn fast_config() -> SimConfig {
    SimConfig {
        bookmark_interval: Duration::from_millis(100),
        ..SimConfig::default()
    }
}

/// A ConfigMap in namespace `ns`.
pub fn configmap(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}})
}

/// A small hand-made cluster: namespaces, a Deployment with its ReplicaSet and Pods, a Service with
/// an EndpointSlice, ConfigMaps.
pub fn fixture(sim: &Sim) {
    for ns in ["default", "shop"] {
        sim.create("Namespace", json!({"metadata": {"name": ns}}))
            .unwrap();
    }
    sim.create(
        "ConfigMap",
        configmap("shop", "web-config", json!({"app": "web"})),
    )
    .unwrap();
    let deploy = sim.create(
        "Deployment",
        json!({"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                              "envFrom": [{"configMapRef": {"name": "web-config"}}]}]}}}}),
    )
    .unwrap();
    let rs = sim
        .create(
            "ReplicaSet",
            json!({"metadata": {"name": "web-5d4f8", "namespace": "shop",
                                "labels": {"app": "web", "pod-template-hash": "5d4f8"},
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                     "uid": deploy["metadata"]["uid"], "controller": true}]},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8"}},
                            "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d4f8"}},
                                         "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
        )
        .unwrap();
    for i in 0..2 {
        sim.create(
            "Pod",
            json!({"metadata": {"name": format!("web-5d4f8-{i}"), "namespace": "shop",
                                "labels": {"app": "web", "pod-template-hash": "5d4f8"},
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f8",
                                                     "uid": rs["metadata"]["uid"], "controller": true}]},
                   "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], "nodeName": "node-1"},
                   "status": {"phase": "Running", "podIP": format!("10.0.0.{i}")}}),
        )
        .unwrap();
    }
    sim.create(
        "Service",
        json!({"metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}),
    )
    .unwrap();
}

/// [`astrolabe_testkit::until`] `cond` holds, for at most `secs` seconds.
pub async fn wait_until<F: FnMut() -> bool>(secs: u64, what: &str, cond: F) {
    astrolabe_testkit::until(what, Duration::from_secs(secs), cond).await;
}

/// [`astrolabe_testkit::within`] `secs` seconds; panics on timeout.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    astrolabe_testkit::within(Duration::from_secs(secs), what, f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// GETs `url` (with `accept`, if any) and decodes the JSON answer.
pub async fn get_json(http: &reqwest::Client, url: &str, accept: Option<&str>) -> Value {
    let mut req = http.get(url);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    req.send().await.unwrap().json().await.unwrap()
}
