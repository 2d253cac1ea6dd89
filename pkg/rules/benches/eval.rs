//! Criterion benchmark of rule evaluation per object (the built-in pack on a Certificate, an
//! HTTPRoute with several backendRefs and a ServiceMonitor), each next to the cost a watcher
//! already pays for the same object: `serde_json::from_slice::<Value>` of its bytes. A summary
//! line per object states both and their ratio.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use astrolabe_rules::RuleSet;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    group: &'static str,
    kind: &'static str,
    bytes: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let certificate = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web-tls", "namespace": "shop", "uid": "0b6f3c1e-8d1a-4b0e-9a51-3f0e4a7d2c11",
            "resourceVersion": "123456", "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "shop"}},
        "spec": {"secretName": "web-tls", "dnsNames": ["shop.example.com", "www.shop.example.com"],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "duration": "2160h", "renewBefore": "360h"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
            "message": "Certificate is up to date and has not expired",
            "lastTransitionTime": "2026-01-01T00:01:00Z", "observedGeneration": 2}],
            "notAfter": "2026-04-01T00:00:00Z", "notBefore": "2026-01-01T00:00:00Z",
            "renewalTime": "2026-03-16T00:00:00Z", "revision": 3}
    });
    let backends: Vec<Value> = (0..4)
        .map(|i| json!({"name": format!("api-v{i}"), "port": 8080, "weight": 25}))
        .collect();
    let http_route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": "shop", "uid": "5c2d7e9a-1f3b-4c6d-8e0f-a1b2c3d4e5f6",
            "resourceVersion": "654321", "generation": 5, "labels": {"app": "shop"}},
        "spec": {"parentRefs": [{"name": "edge", "namespace": "infra", "sectionName": "https"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": backends},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": [{"name": "web", "port": 80}, {"name": "web-canary", "port": 80, "weight": 5}]},
                {"matches": [{"headers": [{"name": "x-beta", "value": "1"}]}],
                 "backendRefs": [{"name": "beta", "port": 80}]}
            ]},
        "status": {"parents": [{"parentRef": {"name": "edge", "namespace": "infra"},
            "controllerName": "istio.io/gateway-controller",
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}
    });
    let service_monitor = json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "api", "namespace": "monitoring", "uid": "9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9",
            "resourceVersion": "777", "labels": {"release": "kube-prometheus-stack"}},
        "spec": {"selector": {"matchLabels": {"app": "api"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]},
            "namespaceSelector": {"matchNames": ["shop", "shop-staging"]},
            "endpoints": [{"port": "metrics", "interval": "30s", "path": "/metrics"}]}
    });
    [
        ("certificate", "cert-manager.io", "Certificate", certificate),
        (
            "httproute-7-backends",
            "gateway.networking.k8s.io",
            "HTTPRoute",
            http_route,
        ),
        (
            "servicemonitor",
            "monitoring.coreos.com",
            "ServiceMonitor",
            service_monitor,
        ),
    ]
    .into_iter()
    .map(|(name, group, kind, object)| Case {
        name,
        group,
        kind,
        bytes: serde_json::to_vec(&object).unwrap(),
    })
    .collect()
}

fn evaluate(c: &mut Criterion) {
    let rules = RuleSet::builtin();
    for case in cases() {
        let object: Value = serde_json::from_slice(&case.bytes).unwrap();
        assert!(
            !rules
                .evaluate(case.group, case.kind, Some("ns"), &object)
                .is_empty()
        );
        let mut group = c.benchmark_group(case.name);
        group.bench_function("baseline: serde_json::from_slice::<Value>", |b| {
            b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(&case.bytes)).unwrap()))
        });
        group.bench_function("evaluate built-in rules", |b| {
            b.iter(|| {
                black_box(rules.evaluate(case.group, case.kind, Some("shop"), black_box(&object)))
            })
        });
        group.finish();
    }
}

/// Mean time of `f` over a fixed wall-clock budget.
fn mean(mut f: impl FnMut()) -> Duration {
    let budget = Duration::from_millis(300);
    let start = Instant::now();
    let mut n: u32 = 0;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    start.elapsed() / n
}

fn summary(_: &mut Criterion) {
    let rules = RuleSet::builtin();
    println!("\nrule evaluation per object, next to parsing the same object's JSON:");
    for case in cases() {
        let object: Value = serde_json::from_slice(&case.bytes).unwrap();
        let parse = mean(|| {
            black_box(serde_json::from_slice::<Value>(black_box(&case.bytes)).unwrap());
        });
        let eval = mean(|| {
            black_box(rules.evaluate(case.group, case.kind, Some("shop"), black_box(&object)));
        });
        println!(
            "  {:<22} {:>5} bytes  evaluate {:>9.2?}  parse {:>9.2?}  evaluate/parse {:.2}",
            case.name,
            case.bytes.len(),
            eval,
            parse,
            eval.as_secs_f64() / parse.as_secs_f64()
        );
        // The figure line scripts/bench-table.py reads: against parsing the same JSON, which a
        // watcher of a kind with rules does for every object anyway.
        let ratio = eval.as_secs_f64() / parse.as_secs_f64();
        println!(
            "rules/evaluate_{} {:.0} ns {ratio:.2}x parsing its JSON: {:.0} ns (target <= 1.00x) {}",
            case.name,
            eval.as_secs_f64() * 1e9,
            parse.as_secs_f64() * 1e9,
            if ratio <= 1.0 { "MET" } else { "MISSED" }
        );
    }
}

criterion_group!(benches, evaluate, summary);
criterion_main!(benches);
