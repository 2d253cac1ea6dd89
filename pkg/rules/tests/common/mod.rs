//! Shared helpers for the rule tests: target builders and a compact view of references.
#![allow(dead_code, clippy::unwrap_used)]

use astrolabe_model::{Dependency, LabelSelector};
use astrolabe_rules::{GroupKind, NamespaceScope, RefTarget, RuleRef, RuleSet};
use serde_json::{Value, json};

/// A group-qualified kind.
pub fn gk(group: &str, kind: &str) -> GroupKind {
    GroupKind {
        group: group.into(),
        kind: kind.into(),
    }
}

/// A by-name target.
pub fn named(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> RefTarget {
    RefTarget::Name {
        kind: gk(group, kind),
        namespace: namespace.map(Into::into),
        name: name.into(),
    }
}

/// A label selector from `matchLabels` pairs and `matchExpressions` (key, operator, values).
pub fn sel(labels: &[(&str, &str)], expressions: &[(&str, &str, &[&str])]) -> LabelSelector {
    let mut selector = LabelSelector::default();
    for (k, v) in labels {
        selector.match_labels.insert(*k, *v);
    }
    for (key, operator, values) in expressions {
        selector
            .push_expression(*key, operator, values.iter().copied())
            .unwrap();
    }
    selector
}

/// A selector target.
pub fn selected(
    group: &str,
    kind: &str,
    selector: LabelSelector,
    namespaces: NamespaceScope,
) -> RefTarget {
    RefTarget::Selector {
        kind: gk(group, kind),
        selector,
        namespaces,
    }
}

/// `(edge, target)` of each reference.
pub fn edges(refs: &[RuleRef]) -> Vec<(String, RefTarget)> {
    refs.iter()
        .map(|r| (r.edge.to_string(), r.target.clone()))
        .collect()
}

/// The targets of the references.
pub fn targets(refs: &[RuleRef]) -> Vec<RefTarget> {
    refs.iter().map(|r| r.target.clone()).collect()
}

/// Evaluates `object` (its kind and namespace read from the object itself) against `rules`.
pub fn evaluate(rules: &RuleSet, object: &Value) -> Vec<RuleRef> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object["kind"].as_str().unwrap();
    let namespace = object["metadata"]["namespace"].as_str();
    rules.evaluate(group, kind, namespace, object)
}

/// The one rule of a file made of `body` under a fixed `from: {group: example.com, kind: Thing}`.
pub fn one_rule(body: &str) -> RuleSet {
    let text = format!(
        "- name: r\n  from: {{group: example.com, kind: Thing}}\n  edge: uses-thing\n  dependency: source-needs-target\n{body}"
    );
    RuleSet::parse(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Evaluates a `Thing` in namespace `ns`.
pub fn thing(rules: &RuleSet, object: &Value) -> Vec<RefTarget> {
    targets(&rules.evaluate("example.com", "Thing", Some("ns"), object))
}

/// Shorthand for the dependency of every reference.
pub fn dependencies(refs: &[RuleRef]) -> Vec<Dependency> {
    refs.iter().map(|r| r.dependency).collect()
}

/// A small object of each kind the built-in pack reads, on which every built-in rule makes at
/// least one reference.
pub fn one_object_per_builtin_kind() -> Vec<Value> {
    vec![
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"namespace": "a"},
            "spec": {"secretName": "s", "issuerRef": {"name": "i"}}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"namespace": "a"},
            "spec": {"gatewayClassName": "c", "listeners": [{"tls": {"certificateRefs": [{"name": "s"}]}}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"namespace": "a"},
            "spec": {"parentRefs": [{"name": "g"}], "rules": [{"backendRefs": [{"name": "b"}]}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "metadata": {"namespace": "a"},
            "spec": {"parentRefs": [{"name": "g"}], "rules": [{"backendRefs": [{"name": "b"}]}]}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"namespace": "a"},
            "spec": {"selector": {"matchLabels": {"app": "x"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
                "namespaceSelector": {"matchNames": ["a", "b"]}}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"namespace": "a"},
            "spec": {"project": "p", "destination": {"server": "https://kubernetes.default.svc", "namespace": "d"}},
            "status": {"resources": [{"kind": "Service", "namespace": "d", "name": "s"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"namespace": "a",
            "annotations": {"cert-manager.io/issuer": "i", "cert-manager.io/cluster-issuer": "c"}}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"namespace": "a"}, "spec": {"selector": {}}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus", "metadata": {"namespace": "a"}, "spec": {"serviceAccountName": "p"}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"namespace": "a"},
            "spec": {"scaleTargetRef": {"name": "w"}, "triggers": [{"authenticationRef": {"name": "t"}}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"namespace": "a"},
            "spec": {"triggers": [{"authenticationRef": {"name": "t"}}]}}),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "x", "namespace": "a"},
            "spec": {"secretStoreRef": {"name": "s"}, "target": {"name": "t"}}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"namespace": "a"},
            "spec": {"gateways": ["g"], "http": [{"route": [{"destination": {"host": "h"}}]}],
                     "tcp": [{"route": [{"destination": {"host": "h"}}]}], "tls": [{"route": [{"destination": {"host": "h"}}]}]}}),
    ]
}
