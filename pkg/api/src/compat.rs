//! The Go-compatible endpoints (`/health`, `/api/v1/{resources,releases,charts,namespaces,graph}`)
//! with the Go server's field names, types and omitempty rules. Selection is the graph crate's
//! (`compat_resources`, `compat_graph`); this module only shapes.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use astrolabe_model::{EdgeKind, Kind, Replicas, Resource, Str};

use crate::error::ApiResult;
use crate::fragments::{FragmentCache, View};
use crate::history::stamp;
use crate::json::{
    ClaimRefJson, EdgeJson, KindName, Metadata, ObjectWriter, ReplicasSchema, StatusName, age,
    json_response, now_seconds, size_hint, timestamp, with_seq,
};
use crate::params::Params;
use crate::queries::{NamespaceQuery, ScopeQuery};
use crate::state::AppState;
use astrolabe_graph::Graph;
use astrolabe_graph::query::{self, Subgraph};

/// The far ends of the edges a Go Resource object reports, resolved under the read lock.
#[derive(Debug, Default)]
pub struct Related {
    /// Sources of incoming `owns` edges.
    pub owners: Vec<Arc<Resource>>,
    /// Targets of outgoing edges, with the edge kind.
    pub targets: Vec<(EdgeKind, Arc<Resource>)>,
}

/// Edge kinds whose targets appear in a Go Resource object.
const TARGET_EDGES: &[EdgeKind] = &[
    EdgeKind::Selects,
    EdgeKind::Targets,
    EdgeKind::Protects,
    EdgeKind::Mounts,
    EdgeKind::UsesConfigmap,
    EdgeKind::UsesSecret,
    EdgeKind::UsesSa,
];

impl Related {
    /// Resolves `r`'s owners and relevant targets in `g` (far ends that do not exist are skipped).
    pub fn of(g: &Graph, r: &Resource) -> Self {
        let owners = query::in_edges(g, &r.uid)
            .into_iter()
            .filter(|e| e.kind == EdgeKind::Owns)
            .filter_map(|e| g.get(&e.from).cloned())
            .collect();
        let targets = query::out_edges(g, &r.uid)
            .into_iter()
            .filter(|e| TARGET_EDGES.contains(&e.kind))
            .filter_map(|e| g.get(&e.to).map(|t| (e.kind, Arc::clone(t))))
            .collect();
        Related { owners, targets }
    }

    fn names(&self, kinds: &[EdgeKind]) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .targets
            .iter()
            .filter(|(k, _)| kinds.contains(k))
            .map(|(_, t)| t.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Go's Resource object (`/api/v1/resources`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatResource<'a> {
    name: &'a str,
    namespace: &'a str,
    kind: &'a str,
    api_version: &'a str,
    #[schema(value_type = StatusName)]
    status: &'static str,
    message: &'a str,
    chart: &'a str,
    release: &'a str,
    age: String,
    creation_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    restart_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ReplicasSchema>)]
    replicas: Option<Replicas>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    owner_references: Vec<KindName<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claim_ref: Option<ClaimRefJson<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    target_pods: Vec<&'a str>,
    #[serde(rename = "mountedPVCs", skip_serializing_if = "Vec::is_empty")]
    mounted_pvcs: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    used_config_maps: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    used_secrets: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_account_name: Option<&'a str>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<'a> CompatResource<'a> {
    /// Shapes `r`; `release` (the requested release) fills in an empty release, as Go does.
    pub fn new(r: &'a Resource, rel: &'a Related, release: Option<&'a str>, now: i64) -> Self {
        let meta = Metadata::compat(&r.facts);
        let mut owners: Vec<KindName<'a>> = rel
            .owners
            .iter()
            .map(|o| KindName {
                kind: o.kind.as_str(),
                name: &o.name,
            })
            .collect();
        owners.sort();
        owners.dedup();
        let release = match (r.release(), release) {
            ("", Some(requested)) => requested,
            (own, _) => own,
        };
        CompatResource {
            name: &r.name,
            namespace: &r.namespace,
            kind: r.kind.as_str(),
            api_version: r.api_version(),
            status: r.status.health.as_str(),
            message: &r.status.message,
            chart: r.chart(),
            release,
            age: age(r.created_at, now),
            creation_timestamp: timestamp(r.created_at),
            image: meta.image,
            node_name: meta.node_name,
            restart_count: meta.restart_count,
            replicas: meta.replicas,
            owner_references: owners,
            volume_name: meta.volume_name,
            claim_ref: meta.claim_ref,
            target_pods: rel.names(&[EdgeKind::Selects, EdgeKind::Targets, EdgeKind::Protects]),
            mounted_pvcs: rel.names(&[EdgeKind::Mounts]),
            used_config_maps: rel.names(&[EdgeKind::UsesConfigmap]),
            used_secrets: rel.names(&[EdgeKind::UsesSecret]),
            service_account_name: rel.names(&[EdgeKind::UsesSa]).first().copied(),
        }
    }
}

/// Go's graph node object (`/api/v1/graph`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatNode<'a> {
    uid: &'a str,
    name: &'a str,
    namespace: &'a str,
    kind: &'a str,
    #[schema(value_type = StatusName)]
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    chart: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    release: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
}

impl<'a> CompatNode<'a> {
    /// Shapes `r`. Metadata is omitted when empty, except for Pods and PVCs, which Go always
    /// gives a metadata object.
    pub fn new(r: &'a Resource) -> Self {
        let meta = Metadata::compat(&r.facts);
        let always = matches!(r.kind, Kind::Pod | Kind::PersistentVolumeClaim);
        CompatNode {
            uid: r.uid.as_str(),
            name: &r.name,
            namespace: &r.namespace,
            kind: r.kind.as_str(),
            status: r.status.health.as_str(),
            message: &r.status.message,
            chart: r.chart(),
            release: r.release(),
            metadata: (always || !meta.is_empty()).then_some(meta),
        }
    }
}

/// The schema of the `/api/v1/graph` body, which [`compat_graph_body`] writes as bytes.
#[derive(Debug, ToSchema)]
#[schema(as = CompatGraph, description = "Go's graph: nodes and the edges among them.")]
pub struct CompatGraphSchema<'a> {
    /// The nodes.
    pub nodes: Vec<CompatNode<'a>>,
    /// The edges among them.
    pub edges: Vec<EdgeJson<'a>>,
    /// Graph sequence the answer reflects.
    pub seq: u64,
}

/// The `/api/v1/graph` body, `{"nodes", "edges", "seq"}` ([`CompatGraphSchema`]), with nodes
/// from the fragment cache.
fn compat_graph_body(cache: &FragmentCache, seq: u64, sub: &Subgraph) -> sonic_rs::Result<Vec<u8>> {
    let nodes = cache.render_all(&sub.nodes, View::CompatNode, |r| {
        sonic_rs::to_vec(&CompatNode::new(r))
    })?;
    let mut w = ObjectWriter::with_capacity(size_hint(sub.nodes.len(), sub.edges.len()));
    w.raw_array("nodes", &nodes);
    let edges: Vec<EdgeJson<'_>> = sub.edges.iter().map(EdgeJson::from).collect();
    w.field("edges", &edges)?;
    w.field("seq", &seq)?;
    Ok(w.finish())
}

/// Go's health status: `healthy`, or `unhealthy` while the apply loop is stalled.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The apply loop makes progress.
    Healthy,
    /// The apply loop's heartbeat is stale (`/healthz` says `stalled`).
    Unhealthy,
}

/// The `/health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Resources in the graph.
    nodes: usize,
    /// `healthy`, or `unhealthy` while the apply loop is stalled.
    #[schema(value_type = HealthStatus)]
    status: &'static str,
    /// Edges in the graph.
    edges: usize,
    /// Graph sequence the answer reflects.
    seq: u64,
}

/// `GET /health`: `{"nodes":N,"status":"healthy"}` plus `edges` and `seq`. While the apply
/// loop's heartbeat is stale (`/healthz` says `stalled`) the status is `"unhealthy"` with a 503,
/// so a probe pointed at `/health` (as the Go deployment's are) sees the same as `/healthz`.
#[utoipa::path(get, path = "/health", summary = "Go-compatible health: node count and status.",
    responses((status = 200, description = "The apply loop makes progress.", body = Health),
        (status = 503, description = "The apply loop is stalled.", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let (nodes, edges, seq) = {
        let g = state.graph.read();
        (g.node_count(), g.edge_count(), g.seq())
    };
    let (code, status) = if state.heartbeat.is_fresh() {
        (StatusCode::OK, "healthy")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    };
    let body = Health {
        nodes,
        status,
        edges,
        seq,
    };
    with_seq(seq, (code, Json(body)))
}

/// `GET /api/v1/resources?release=&namespace=`: Go Resource objects.
#[utoipa::path(get, path = "/api/v1/resources", summary = "Go-compatible flat resource list.",
    params(ScopeQuery),
    responses((status = 200, description = "Go Resource objects.", body = Vec<CompatResource>)))]
pub async fn resources(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let q = ScopeQuery::parse(&p);
    let (release, namespace) = (q.release.as_deref(), q.namespace.as_deref());
    let snap = state.at(&p).await?;
    let (seq, rows) = {
        let g = snap.read();
        let rows: Vec<(Arc<Resource>, Related)> = query::compat_resources(&g, release, namespace)
            .into_iter()
            .map(|r| {
                let rel = Related::of(&g, &r);
                (r, rel)
            })
            .collect();
        (g.seq(), rows)
    };
    let now = now_seconds();
    let body: Vec<CompatResource<'_>> = rows
        .iter()
        .map(|(r, rel)| CompatResource::new(r, rel, release, now))
        .collect();
    let size = size_hint(body.len(), 0);
    let response = with_seq(seq, Json(body).into_response_sized(size));
    Ok(stamp(&snap, response).await)
}

/// `GET /api/v1/releases?namespace=`: sorted release names.
#[utoipa::path(get, path = "/api/v1/releases", summary = "Helm release names, sorted.",
    params(NamespaceQuery),
    responses((status = 200, description = "Release names.", body = Vec<String>)))]
pub async fn releases(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let q = NamespaceQuery::parse(&p);
    names(&state, &p, |g| query::releases(g, q.namespace.as_deref())).await
}

/// `GET /api/v1/charts?namespace=`: sorted chart names.
#[utoipa::path(get, path = "/api/v1/charts", summary = "Helm chart names, sorted.",
    params(NamespaceQuery),
    responses((status = 200, description = "Chart names.", body = Vec<String>)))]
pub async fn charts(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let q = NamespaceQuery::parse(&p);
    names(&state, &p, |g| query::charts(g, q.namespace.as_deref())).await
}

/// `GET /api/v1/namespaces`: sorted namespace names.
#[utoipa::path(get, path = "/api/v1/namespaces", summary = "Namespace names, sorted.",
    responses((status = 200, description = "Namespace names.", body = Vec<String>)))]
pub async fn namespaces(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    names(&state, &p, query::namespaces).await
}

async fn names(
    state: &AppState,
    p: &Params,
    f: impl FnOnce(&Graph) -> Vec<Str>,
) -> ApiResult<Response> {
    let snap = state.at(p).await?;
    let (seq, names) = {
        let g = snap.read();
        (g.seq(), f(&g))
    };
    Ok(stamp(&snap, with_seq(seq, Json(names))).await)
}

/// `GET /api/v1/graph?release=&namespace=`: `{nodes, edges}` of Go graph nodes and edges.
#[utoipa::path(get, path = "/api/v1/graph", summary = "Go-compatible {nodes, edges} graph.",
    params(ScopeQuery),
    responses((status = 200, description = "Go graph nodes and edges.", body = CompatGraphSchema)))]
pub async fn graph(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    let q = ScopeQuery::parse(&p);
    let snap = state.at(&p).await?;
    let (seq, sub) = {
        let g = snap.read();
        let (release, namespace) = (q.release.as_deref(), q.namespace.as_deref());
        (g.seq(), query::compat_graph(&g, release, namespace))
    };
    let body = compat_graph_body(&state.fragments, seq, &sub);
    Ok(stamp(&snap, with_seq(seq, json_response(body))).await)
}
