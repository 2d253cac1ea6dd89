//! `/api/v1/rules`: the relationship rules in force, with what each produced, and
//! `/api/v1/rules/test`: what they would find in a posted object.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use astrolabe_graph::query;
use astrolabe_model::{EdgeKind, Kind};
use astrolabe_rules::{Match, RefTarget, Rule, RuleRef, Targets};

use crate::error::{ApiError, ApiResult};
use crate::json::{Json, with_seq};
use crate::state::AppState;

/// A group and kind (`group` empty for the core group).
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupKindJson {
    /// The API group.
    group: String,
    /// The kind.
    kind: String,
}

impl From<&astrolabe_rules::GroupKind> for GroupKindJson {
    fn from(k: &astrolabe_rules::GroupKind) -> Self {
        GroupKindJson {
            group: k.group.to_string(),
            kind: k.kind.to_string(),
        }
    }
}

/// One rule in force and what it produced.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleJson {
    /// The rule's name.
    name: String,
    /// What it finds.
    description: String,
    /// The file it came from (`<built-in rules>` for the built-in pack).
    source: String,
    /// The line it starts at.
    line: u64,
    /// The kind it reads.
    from: GroupKindJson,
    /// The path it reads.
    path: String,
    /// `name`, `ref`, `selector` or `host`.
    #[serde(rename = "match")]
    matcher: &'static str,
    /// The kinds it may point at; empty for any kind.
    to: Vec<GroupKindJson>,
    /// The edge kind it makes.
    edge: String,
    /// Which end depends on the other.
    dependency: &'static str,
    /// Whether a missing target is expected.
    optional: bool,
    /// Edges of this kind objects of the rule's kind declare now (rules of one kind making one
    /// edge kind share their count).
    edges: usize,
    /// References of this edge kind from objects of the rule's kind whose target is missing.
    dangling: usize,
}

/// `/api/v1/rules`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulesJson {
    /// The graph sequence the counts were taken at.
    seq: u64,
    /// The rule set's generation: 1 at start, one more per accepted reload.
    generation: u64,
    /// Reloads refused so far (the rules in force stayed).
    refused_reloads: u64,
    /// Why the last reload was refused, when none was accepted since.
    last_refusal: Option<String>,
    /// Every rule in force, built-in first.
    rules: Vec<RuleJson>,
}

fn match_name(rule: &Rule) -> &'static str {
    match rule.matcher {
        Match::Name { .. } => "name",
        Match::Ref { .. } => "ref",
        Match::Selector { .. } => "selector",
        Match::Host { .. } => "host",
    }
}

/// `GET /api/v1/rules`: the relationship rules in force, with the edges and dangling references
/// each produced.
#[utoipa::path(get, path = "/api/v1/rules", summary = "Relationship rules in force.",
    responses((status = 200, description = "The rules and what they produced.", body = RulesJson)))]
pub async fn rules(State(state): State<AppState>) -> ApiResult<Response> {
    let set = state.rules.get();
    let (seq, edges, dangling) = {
        let g = state.graph.read();
        let mut dangling: HashMap<(Kind, EdgeKind), usize> = HashMap::new();
        for d in query::dangling(&g, None, None) {
            *dangling.entry((d.source.kind.clone(), d.edge)).or_default() += 1;
        }
        (g.seq(), query::declared_edge_counts(&g), dangling)
    };
    let (refused_reloads, last_refusal) = state.rules.refusals();
    let rules = set
        .rules()
        .iter()
        .map(|rule| {
            let key = EdgeKind::parse(&rule.edge).map(|e| (rule.from.to_kind(), e));
            let count = |m: &HashMap<(Kind, EdgeKind), usize>| {
                key.as_ref().and_then(|k| m.get(k)).copied().unwrap_or(0)
            };
            RuleJson {
                name: rule.name.to_string(),
                description: rule.description.to_string(),
                source: rule.file.to_string(),
                line: rule.line,
                from: (&rule.from).into(),
                path: rule.path.to_string(),
                matcher: match_name(rule),
                to: match &rule.to {
                    Targets::Any => Vec::new(),
                    Targets::Listed(targets) => targets.iter().map(|t| (&t.kind).into()).collect(),
                },
                edge: rule.edge.to_string(),
                dependency: rule.dependency.as_str(),
                optional: rule.optional,
                edges: count(&edges),
                dangling: count(&dangling),
            }
        })
        .collect();
    let body = RulesJson {
        seq,
        generation: state.rules.generation(),
        refused_reloads,
        last_refusal,
        rules,
    };
    Ok(with_seq(seq, Json(body)))
}

/// The target of a reference a rule would make.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleTargetJson {
    /// The target kind.
    kind: GroupKindJson,
    /// The target's namespace (by name; absent for a cluster-scoped target).
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// The target's name (by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The label selector (by selector), in Kubernetes syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    /// The namespaces selected in (by selector): names, or `*` for every namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespaces: Option<Vec<String>>,
    /// Whether the named target is in the graph now (by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
}

/// A reference a rule would make.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleRefJson {
    /// The rule that finds it.
    rule: String,
    /// The edge kind.
    edge: String,
    /// Which end depends on the other.
    dependency: &'static str,
    /// Whether a missing target is expected.
    optional: bool,
    /// What it points at.
    target: RuleTargetJson,
}

/// `/api/v1/rules/test`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleTestJson {
    /// The posted object's kind, group-qualified.
    kind: String,
    /// The references the rules in force find in it.
    references: Vec<RuleRefJson>,
}

fn target_json(r: &RuleRef, exists: impl Fn(&Kind, &str, &str) -> bool + Copy) -> RuleTargetJson {
    match &r.target {
        RefTarget::Name {
            kind,
            namespace,
            name,
        } => RuleTargetJson {
            kind: kind.into(),
            namespace: namespace.as_ref().map(ToString::to_string),
            name: Some(name.to_string()),
            selector: None,
            namespaces: None,
            exists: Some(exists(
                &kind.to_kind(),
                namespace.as_deref().unwrap_or_default(),
                name,
            )),
        },
        RefTarget::Selector {
            kind,
            selector,
            namespaces,
        } => RuleTargetJson {
            kind: kind.into(),
            namespace: None,
            name: None,
            selector: Some(selector.to_string()),
            namespaces: Some(match namespaces {
                astrolabe_rules::NamespaceScope::Namespace(ns) => vec![ns.to_string()],
                astrolabe_rules::NamespaceScope::Cluster => vec![String::new()],
                astrolabe_rules::NamespaceScope::All => vec!["*".to_owned()],
                astrolabe_rules::NamespaceScope::Names(names) => {
                    names.iter().map(ToString::to_string).collect()
                }
            }),
            exists: None,
        },
    }
}

/// `POST /api/v1/rules/test`: the references the rules in force find in the posted object (a
/// Kubernetes object as JSON, with `apiVersion`, `kind` and `metadata`).
#[utoipa::path(post, path = "/api/v1/rules/test", summary = "Evaluate the rules against an object.",
    request_body(content = Object, description = "A Kubernetes object.", content_type = "application/json"),
    responses((status = 200, description = "The references the rules find.", body = RuleTestJson)))]
pub async fn test(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let object: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid object", format!("body: {e}")))?;
    let text = |field: &str| object.get(field).and_then(serde_json::Value::as_str);
    let (Some(api_version), Some(kind)) = (text("apiVersion"), text("kind")) else {
        return Err(ApiError::bad_request(
            "invalid object",
            "body: an object with string apiVersion and kind is required",
        ));
    };
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(serde_json::Value::as_str)
        .filter(|ns| !ns.is_empty());
    let found = state.rules.get().evaluate(group, kind, namespace, &object);
    let g = state.graph.read();
    let exists = |kind: &Kind, ns: &str, name: &str| {
        let ns = if kind.is_namespaced() { ns } else { "" };
        g.get_by_key(&astrolabe_model::ObjectKey::new(kind.clone(), ns, name))
            .is_some()
    };
    let references = found
        .iter()
        .map(|r| RuleRefJson {
            rule: r.rule.to_string(),
            edge: r.edge.to_string(),
            dependency: r.dependency.as_str(),
            optional: r.optional,
            target: target_json(r, exists),
        })
        .collect();
    let body = RuleTestJson {
        kind: Kind::from_api_version(api_version, kind)
            .qualified()
            .into_owned(),
        references,
    };
    Ok(Json(body).into_response())
}
