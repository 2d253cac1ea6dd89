//! Shared fixtures for the integration tests: a served emulator and condition waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use astrolabe_kubesim::{Sim, SimConfig, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// An emulator served on an ephemeral port; stops when dropped.
pub struct Served {
    pub sim: Sim,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

impl Served {
    pub async fn start(config: SimConfig) -> Self {
        let sim = Sim::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(sim.clone(), listener, shutdown.clone()));
        Self {
            sim,
            addr,
            shutdown,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> kube::Client {
        let cfg = kube::Config::new(self.url().parse().unwrap());
        kube::Client::try_from(cfg).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

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

/// Awaits `cond` becoming true, polling; panics after `secs` seconds.
pub async fn wait_until<F: FnMut() -> bool>(secs: u64, what: &str, mut cond: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits a future with a timeout; panics on timeout.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
