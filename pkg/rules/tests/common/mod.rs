//! Shared helpers for the rule tests: target builders and a compact view of references.
#![allow(dead_code, clippy::unwrap_used)]

use astrolabe_model::{Dependency, LabelSelector};
use astrolabe_rules::{GroupKind, NamespaceScope, RefTarget, RuleRef, RuleSet};
use serde_json::Value;

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
