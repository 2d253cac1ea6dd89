#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A generated cluster with custom resources: the emulator creates the CRDs, then serves the
//! Certificates, Issuers, Gateways, HTTPRoutes and ServiceMonitors to kubectl and to kube-rs
//! (discovery, list, watch), as JSON from which the built-in rules derive the generator's
//! references.

mod common;

use std::collections::BTreeSet;

use astrolabe_generator::{Cluster, Options, custom_kinds, generate_with, rule_references};
use astrolabe_kubesim::Sim;
use astrolabe_rules::RuleSet;
use astrolabe_testkit::Kubectl;
use common::{Served, fast_config, within};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::Discovery;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;

const SEED: u64 = 3;
const SIZE: usize = 1_500;
const CUSTOM: Options = Options {
    custom_resources: true,
};

fn cluster() -> Cluster {
    generate_with(SEED, SIZE, &CUSTOM)
}

/// `namespace/name` of the generated custom resources of `kind`.
fn generated(cluster: &Cluster, kind: &str) -> BTreeSet<String> {
    cluster
        .resources
        .iter()
        .filter(|r| !r.kind.is_watched() && r.kind.as_str() == kind)
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect()
}

/// `namespace/name` of the items of a JSON list.
fn listed(list: &Value) -> BTreeSet<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
            format!("{ns}/{}", o["metadata"]["name"].as_str().unwrap())
        })
        .collect()
}

async fn served() -> Served {
    Served::serve(Sim::generated_with_options(fast_config(), SEED, SIZE, &CUSTOM).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_the_generated_custom_resources() {
    let cluster = cluster();
    let served = served().await;
    let k = Kubectl::new(&served.url());
    let crds = k.ok(&["get", "crd", "-o", "name"]).await;
    for crd in [
        "certificates.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "servicemonitors.monitoring.coreos.com",
    ] {
        assert!(crds.contains(crd), "{crd} missing from {crds}");
    }
    for (resource, kind) in [
        ("certificates", "Certificate"),
        ("issuers", "Issuer"),
        ("clusterissuers", "ClusterIssuer"),
        ("gatewayclasses", "GatewayClass"),
        ("gateways", "Gateway.gateway.networking.k8s.io"),
        ("httproutes", "HTTPRoute"),
        ("servicemonitors", "ServiceMonitor"),
    ] {
        let out = k.ok(&["get", resource, "-A", "-o", "json"]).await;
        let list: Value = serde_json::from_str(&out).unwrap();
        let want = generated(&cluster, kind.split('.').next().unwrap());
        assert!(!want.is_empty(), "no {kind} generated");
        assert_eq!(listed(&list), want, "kubectl get {resource} -A");
    }
    let table = k.ok(&["get", "certificates", "-A"]).await;
    assert!(table.contains("gateway-tls"), "{table}");
    // The Secret a Certificate writes is there too.
    let secret = k
        .ok(&[
            "get",
            "secret",
            "gateway-tls",
            "-n",
            "team-000",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(secret.trim(), "secret/gateway-tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_discovers_lists_and_watches_custom_kinds() {
    let cluster = cluster();
    let served = served().await;
    let client = served.client();
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    for kind in custom_kinds() {
        let (ar, caps) = d
            .get(kind.group())
            .and_then(|g| {
                g.recommended_resources()
                    .into_iter()
                    .find(|(ar, _)| ar.kind == kind.as_str())
            })
            .unwrap_or_else(|| panic!("{} not discovered", kind.qualified()));
        assert_eq!(ar.api_version, kind.api_version());
        assert_eq!(ar.plural, kind.plural());
        assert_eq!(
            caps.scope == kube::discovery::Scope::Namespaced,
            kind.is_namespaced()
        );
        let want = generated(&cluster, kind.as_str());
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let items = api.list(&Default::default()).await.unwrap().items;
        let got: BTreeSet<String> = items
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap()
                )
            })
            .collect();
        assert_eq!(got, want, "list {}", kind.qualified());
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        let mut seen = BTreeSet::new();
        within(10, "the watcher's initial list", async {
            while let Some(event) = events.next().await {
                match event.unwrap() {
                    Event::InitApply(o) => {
                        seen.insert(format!(
                            "{}/{}",
                            o.metadata.namespace.unwrap_or_default(),
                            o.metadata.name.unwrap()
                        ));
                    }
                    Event::InitDone => break,
                    _ => {}
                }
            }
        })
        .await;
        assert_eq!(seen, want, "watch {}", kind.qualified());
    }
}

#[test]
fn served_objects_make_the_generated_references() {
    let cluster = cluster();
    let sim = Sim::generated_with_options(fast_config(), SEED, SIZE, &CUSTOM).unwrap();
    let rules = RuleSet::builtin();
    rules.declare_edges().unwrap();
    let mut checked = 0;
    for r in cluster.resources.iter().filter(|r| !r.kind.is_watched()) {
        let info = sim.kind_info(&r.kind.qualified()).unwrap();
        assert_eq!(
            (info.version, info.plural, info.namespaced),
            (r.kind.version(), r.kind.plural(), r.kind.is_namespaced()),
            "{} as its CRD serves it",
            r.kind.qualified()
        );
        let served = sim.get(&r.kind.qualified(), &r.namespace, &r.name).unwrap();
        assert_eq!(served["metadata"]["uid"], r.uid.as_str());
        let mut expected = r.clone();
        expected.references = rule_references(&rules, r, &served);
        expected.normalize();
        assert_eq!(expected.references, r.references, "{}", r.key());
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
    assert_eq!(
        sim.object_count(),
        cluster.resources.len() + astrolabe_kubesim::crds::definitions().unwrap().len()
    );
}

#[test]
fn the_plain_generated_cluster_has_no_custom_resources() {
    let sim = Sim::with_generated(SEED, SIZE).unwrap();
    assert!(sim.list("CustomResourceDefinition").unwrap().is_empty());
    assert!(sim.kind_info("Certificate").is_err());
}
