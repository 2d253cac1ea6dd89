//! What is wrong in the graph of the checked manifests: each [`Finding`] names the object of the
//! input it is about (file and line), the field, the edge kind and the missing or empty target.
//! Only objects of the input are reported: what the controllers made from them (ReplicaSets,
//! Pods) repeats their templates' references, which their owner's finding already names.

use std::collections::{BTreeSet, HashMap};

use astrolabe_graph::Graph;
use astrolabe_graph::query::dangling;
use astrolabe_model::{EdgeKind, Kind, ObjectKey, Resource, Target, Uid};
use serde::Serialize;
use serde_json::Value;

use super::cluster::CheckCluster;
use super::load::Document;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (a ConfigMap nothing uses).
    Info,
    /// Probably a mistake (a Service that selects no Pod).
    Warning,
    /// Breaks the application (a Pod's ConfigMap that does not exist).
    Error,
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!("{other:?}: expected error, warning or info")),
        }
    }
}

impl Severity {
    /// The lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing wrong with one object of the input.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// The check's id (`missing-reference`, `selects-nothing`, ...; see [`CHECKS`]).
    pub check: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// The object, `Kind/namespace/name` (`Kind/name` when cluster-scoped).
    pub object: String,
    /// The file it is in.
    pub file: String,
    /// The line its document starts at.
    pub line: usize,
    /// The field that makes the reference (`spec.template.spec.volumes[0].configMap.name`);
    /// empty when it is the object as a whole.
    pub field: String,
    /// The edge the reference would make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// The missing or empty target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// Every check: id, severity, description.
pub const CHECKS: &[(&str, Severity, &str)] = &[
    (
        "refused",
        Severity::Error,
        "The API server would refuse the object.",
    ),
    (
        "missing-reference",
        Severity::Error,
        "A reference to an object that does not exist (ConfigMap, Secret, PersistentVolumeClaim, StorageClass, IngressClass, PersistentVolume, Node, or a rule's target).",
    ),
    (
        "missing-service-account",
        Severity::Error,
        "A workload or binding names a ServiceAccount that does not exist.",
    ),
    (
        "missing-backend-service",
        Severity::Error,
        "An Ingress backend names a Service that does not exist.",
    ),
    (
        "missing-scale-target",
        Severity::Error,
        "A HorizontalPodAutoscaler targets a workload that does not exist.",
    ),
    (
        "missing-role",
        Severity::Error,
        "A RoleBinding or ClusterRoleBinding grants a Role or ClusterRole that does not exist.",
    ),
    (
        "missing-owner",
        Severity::Error,
        "An owner reference names an object that does not exist.",
    ),
    (
        "selects-nothing",
        Severity::Warning,
        "A selector (Service, NetworkPolicy, PodDisruptionBudget, a rule's) that matches no object.",
    ),
    (
        "peer-selects-nothing",
        Severity::Warning,
        "A NetworkPolicy ingress or egress peer whose podSelector matches no Pod of its namespace.",
    ),
    (
        "backend-without-pods",
        Severity::Warning,
        "An Ingress backend Service that selects no Pod.",
    ),
    (
        "unused-configmap",
        Severity::Info,
        "A ConfigMap nothing refers to.",
    ),
    (
        "unused-secret",
        Severity::Info,
        "A Secret nothing refers to.",
    ),
];

fn severity_of(check: &str) -> Severity {
    CHECKS
        .iter()
        .find(|(id, ..)| *id == check)
        .map_or(Severity::Error, |(_, s, _)| *s)
}

/// `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object.
pub(super) fn object_text(key: &ObjectKey) -> String {
    if key.namespace.is_empty() {
        format!("{}/{}", key.kind, key.name)
    } else {
        format!("{}/{}/{}", key.kind, key.namespace, key.name)
    }
}

/// Every finding of `cluster`, sorted by file, line and object.
#[must_use]
pub fn findings(cluster: &CheckCluster) -> Vec<Finding> {
    let g = &cluster.graph;
    let mut out = cluster.refused.clone();
    let mut make = |check: &'static str,
                    r: &Resource,
                    doc: &Document,
                    field: String,
                    edge: Option<EdgeKind>,
                    target: Option<String>,
                    message: String| {
        out.push(Finding {
            check,
            severity: severity_of(check),
            object: object_text(&r.key()),
            file: doc.file.clone(),
            line: doc.line,
            field,
            edge: edge.map(|e| e.as_str().to_owned()),
            target,
            message,
        });
    };
    for d in dangling(g, None, None) {
        if d.optional {
            continue;
        }
        let Some(doc) = cluster.sources.get(&d.source.key()) else {
            continue;
        };
        let target = d.target_text();
        let (check, field, message) = match &d.target {
            // Every selector of the input is looked at below, whatever its edge.
            Target::Selector { .. } | Target::SelectorIn { .. } => continue,
            Target::Uid { uid, kind, name } => (
                "missing-owner",
                owner_field(&doc.value, uid),
                format!("its owner {kind}/{name} (uid {uid}) does not exist"),
            ),
            Target::Key(key) => {
                let check = match d.edge {
                    EdgeKind::UsesSa | EdgeKind::BindsSubject => "missing-service-account",
                    EdgeKind::RoutesTo => "missing-backend-service",
                    EdgeKind::Scales => "missing-scale-target",
                    EdgeKind::Grants => "missing-role",
                    _ => "missing-reference",
                };
                let field = name_field(&doc.value, &key.name);
                let message = format!(
                    "{} names {} {}, which does not exist ({})",
                    field_or_object(&field),
                    key.kind,
                    if key.namespace.is_empty() {
                        key.name.to_string()
                    } else {
                        format!("{}/{}", key.namespace, key.name)
                    },
                    d.edge
                );
                (check, field, message)
            }
        };
        make(
            check,
            &d.source,
            doc,
            field,
            Some(d.edge),
            Some(target),
            message,
        );
    }
    let edges = g.edge_set();
    // Edges into each object, and the edge kinds each object is an end of.
    let mut incoming: HashMap<&Uid, usize> = HashMap::new();
    let mut made: HashMap<(&Uid, EdgeKind), usize> = HashMap::new();
    for (from, to, kind) in &edges {
        *incoming.entry(to).or_default() += 1;
        *made.entry((from, *kind)).or_default() += 1;
        *made.entry((to, *kind)).or_default() += 1;
    }
    for (key, doc) in &cluster.sources {
        let Some(r) = g.get_by_key(key) else { continue };
        for reference in &r.references {
            let selector = match &reference.target {
                Target::Selector { selector, .. } | Target::SelectorIn { selector, .. } => selector,
                Target::Uid { .. } | Target::Key(_) => continue,
            };
            if selector.is_empty() || made.contains_key(&(&r.uid, reference.edge)) {
                continue;
            }
            let field = selector_field(&doc.value);
            let message = format!(
                "its selector ({}: {selector}) matches no {}",
                field_or_object(&field),
                reference.target.kind()
            );
            make(
                "selects-nothing",
                r,
                doc,
                field,
                Some(reference.edge),
                Some(selector.to_string()),
                message,
            );
        }
        match &key.kind {
            Kind::ConfigMap | Kind::Secret if !incoming.contains_key(&r.uid) => {
                let service_account_token = doc.value.pointer("/type").and_then(Value::as_str)
                    == Some("kubernetes.io/service-account-token");
                if service_account_token {
                    continue;
                }
                let (check, what) = if key.kind == Kind::ConfigMap {
                    ("unused-configmap", "ConfigMap")
                } else {
                    ("unused-secret", "Secret")
                };
                make(
                    check,
                    r,
                    doc,
                    String::new(),
                    None,
                    None,
                    format!("no object of the input refers to this {what}"),
                );
            }
            Kind::Ingress => {
                for (from, to, kind) in &edges {
                    if *from != r.uid || *kind != EdgeKind::RoutesTo {
                        continue;
                    }
                    let Some(service) = g.get(to) else { continue };
                    let has_selector = service
                        .references
                        .iter()
                        .any(|x| x.edge == EdgeKind::Selects);
                    if has_selector && !made.contains_key(&(&service.uid, EdgeKind::Selects)) {
                        let field = name_field(&doc.value, &service.name);
                        let message = format!(
                            "{} routes to Service {}/{}, which selects no Pod",
                            field_or_object(&field),
                            service.namespace,
                            service.name
                        );
                        make(
                            "backend-without-pods",
                            r,
                            doc,
                            field,
                            Some(EdgeKind::RoutesTo),
                            Some(object_text(&service.key())),
                            message,
                        );
                    }
                }
            }
            Kind::NetworkPolicy => {
                for (field, selector) in empty_peers(g, r, &doc.value) {
                    let message = format!(
                        "the peer {field} matches no Pod in namespace {}",
                        r.namespace
                    );
                    make(
                        "peer-selects-nothing",
                        r,
                        doc,
                        field,
                        None,
                        Some(selector),
                        message,
                    );
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, &a.object, &a.field, a.check)
            .cmp(&(&b.file, b.line, &b.object, &b.field, b.check))
    });
    out.dedup();
    out
}

fn field_or_object(field: &str) -> &str {
    if field.is_empty() {
        "the object"
    } else {
        field
    }
}

/// The NetworkPolicy's ingress `from` and egress `to` peers (without a namespaceSelector) whose
/// podSelector matches no Pod of its namespace: (field, selector as text).
fn empty_peers(g: &Graph, policy: &Resource, object: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let pods: Vec<&Resource> = g
        .resources()
        .filter(|p| p.kind == Kind::Pod && p.namespace == policy.namespace)
        .map(|p| &**p)
        .collect();
    for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
        let Some(rules_list) = object
            .pointer(&format!("/spec/{rules}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (i, rule) in rules_list.iter().enumerate() {
            let Some(list) = rule.get(peers).and_then(Value::as_array) else {
                continue;
            };
            for (j, peer) in list.iter().enumerate() {
                if peer.get("namespaceSelector").is_some() {
                    continue;
                }
                let Some(sel) = peer.get("podSelector") else {
                    continue;
                };
                let Ok(parsed) = serde_json::from_value::<
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
                >(sel.clone()) else {
                    continue;
                };
                let selector = astrolabe_informers::processors::common::selector(&parsed);
                if selector.is_empty() {
                    continue;
                }
                if !pods.iter().any(|p| selector.matches(&p.labels)) {
                    out.push((
                        format!("spec.{rules}[{i}].{peers}[{j}].podSelector"),
                        selector.to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// A JSON path segment list as text (`spec.volumes[0].name`).
fn path_text(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Depth-first search for the first leaf (outside `metadata`, unless `in_metadata`) that `hit`
/// accepts.
fn find(
    value: &Value,
    path: &mut Vec<Seg>,
    in_metadata: bool,
    hit: &impl Fn(&[Seg], &Value) -> bool,
) -> Option<String> {
    if hit(path, value) {
        return Some(path_text(path));
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && k == "metadata" && !in_metadata {
                    continue;
                }
                path.push(Seg::Key(k.clone()));
                let found = find(v, path, in_metadata, hit);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                let found = find(v, path, in_metadata, hit);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

/// The field holding the name `name` (a key ending in `name`/`Name`), e.g.
/// `spec.template.spec.volumes[1].configMap.name`.
fn name_field(object: &Value, name: &str) -> String {
    find(object, &mut Vec::new(), false, &|path, v| {
        v.as_str() == Some(name)
            && matches!(path.last(), Some(Seg::Key(k)) if k == "name" || k.ends_with("Name") || k == "serviceAccount")
    })
    .unwrap_or_default()
}

/// The field of the object's selector (`spec.selector`, `spec.podSelector`, ...).
fn selector_field(object: &Value) -> String {
    find(object, &mut Vec::new(), false, &|path, v| {
        v.is_object()
            && matches!(path.last(), Some(Seg::Key(k)) if k == "selector" || k == "podSelector")
            && !path
                .iter()
                .any(|s| matches!(s, Seg::Key(k) if k == "template"))
    })
    .unwrap_or_default()
}

/// The owner reference naming `uid` (`metadata.ownerReferences[0]`).
fn owner_field(object: &Value, uid: &Uid) -> String {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .position(|r| r["uid"].as_str() == Some(uid.as_str()))
        })
        .map(|i| format!("metadata.ownerReferences[{i}]"))
        .unwrap_or_default()
}

/// The ids of `findings` (for tests and summaries).
#[must_use]
pub fn ids(findings: &[Finding]) -> BTreeSet<(&'static str, String)> {
    findings
        .iter()
        .map(|f| (f.check, f.object.clone()))
        .collect()
}
