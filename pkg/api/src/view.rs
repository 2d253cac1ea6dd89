//! Native JSON shapes: a resource in full, a resource with its edges, subgraphs, pages and
//! dangling references. Every object body carries `seq`, the graph sequence it reflects.

use std::sync::Arc;

use axum::body::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

use astrolabe_model::{Labels, Resource};

use crate::fragments::{FragmentCache, View};
use crate::json::{EdgeJson, Metadata, ObjectWriter, StatusName, size_hint, timestamp};
use astrolabe_graph::Graph;
use astrolabe_graph::query::{Dangling, EdgeView, ResourceView, Subgraph};

/// An owner reference.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OwnerReference)]
pub struct OwnerJson<'a> {
    /// Owner kind.
    pub kind: &'a str,
    /// Owner name.
    pub name: &'a str,
    /// Owner UID.
    pub uid: &'a str,
    /// Whether it is the managing controller.
    pub controller: bool,
}

/// A resource in full (native views).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Resource)]
pub struct ResourceJson<'a> {
    uid: &'a str,
    kind: &'a str,
    api_version: &'a str,
    /// Empty for cluster-scoped resources.
    namespace: &'a str,
    name: &'a str,
    #[schema(value_type = HashMap<String, String>)]
    labels: &'a Labels,
    #[schema(value_type = HashMap<String, String>)]
    annotations: &'a Labels,
    creation_timestamp: String,
    resource_version: &'a str,
    #[schema(value_type = StatusName)]
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    release: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    release_namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    chart: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed_by: Option<&'a str>,
    owner_references: Vec<OwnerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
}

impl<'a> From<&'a Resource> for ResourceJson<'a> {
    fn from(r: &'a Resource) -> Self {
        let meta = Metadata::native(&r.facts);
        ResourceJson {
            uid: r.uid.as_str(),
            kind: r.kind.as_str(),
            api_version: r.api_version(),
            namespace: &r.namespace,
            name: &r.name,
            labels: &r.labels,
            annotations: &r.annotations,
            creation_timestamp: timestamp(r.created_at),
            resource_version: &r.resource_version,
            status: r.status.health.as_str(),
            message: &r.status.message,
            release: r.release(),
            release_namespace: r.release_namespace(),
            chart: r.chart(),
            managed_by: r.managed_by(),
            owner_references: r
                .owners
                .iter()
                .map(|o| OwnerJson {
                    kind: o.kind.as_str(),
                    name: &o.name,
                    uid: o.uid.as_str(),
                    controller: o.controller,
                })
                .collect(),
            metadata: (!meta.is_empty()).then_some(meta),
        }
    }
}

/// A resource's identity only.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Ref)]
pub struct RefJson<'a> {
    /// UID.
    pub uid: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Namespace ("" for cluster-scoped).
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
}

impl<'a> From<&'a Resource> for RefJson<'a> {
    fn from(r: &'a Resource) -> Self {
        RefJson {
            uid: r.uid.as_str(),
            kind: r.kind.as_str(),
            namespace: &r.namespace,
            name: &r.name,
        }
    }
}

/// An edge of a resource (`{"type", "from", "to"}`, as [`EdgeJson`]) with the resource at its
/// other end, when it exists.
#[derive(Debug, Serialize, ToSchema)]
#[schema(
    as = PeerEdge,
    description = "An edge with the resource at its other end, when it exists."
)]
pub struct PeerEdgeJson<'a> {
    /// The edge kind's stable name (see `/api/v1/edge-kinds`).
    #[serde(rename = "type")]
    kind: &'static str,
    /// Source UID.
    from: &'a str,
    /// Target UID.
    to: &'a str,
    /// The resource at the other end (absent when it does not exist).
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<RefJson<'a>>,
}

/// A resource and its edges, with the far ends resolved under the read lock.
#[derive(Debug)]
pub struct Detail {
    /// The resource.
    pub resource: Arc<Resource>,
    /// Incoming edges and their sources.
    pub incoming: Vec<(EdgeView, Option<Arc<Resource>>)>,
    /// Outgoing edges and their targets.
    pub outgoing: Vec<(EdgeView, Option<Arc<Resource>>)>,
}

impl Detail {
    /// Resolves the far ends of `view`'s edges in `g`.
    pub fn resolve(g: &Graph, view: ResourceView) -> Self {
        let incoming = view
            .incoming
            .into_iter()
            .map(|e| {
                let peer = g.get(&e.from).cloned();
                (e, peer)
            })
            .collect();
        let outgoing = view
            .outgoing
            .into_iter()
            .map(|e| {
                let peer = g.get(&e.to).cloned();
                (e, peer)
            })
            .collect();
        Detail {
            resource: view.resource,
            incoming,
            outgoing,
        }
    }
}

/// The body of the single-resource endpoints.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ResourceDetail)]
pub struct DetailJson<'a> {
    /// Graph sequence the answer reflects.
    seq: u64,
    resource: ResourceJson<'a>,
    incoming: Vec<PeerEdgeJson<'a>>,
    outgoing: Vec<PeerEdgeJson<'a>>,
}

fn peer_edges(edges: &[(EdgeView, Option<Arc<Resource>>)]) -> Vec<PeerEdgeJson<'_>> {
    edges
        .iter()
        .map(|(e, peer)| PeerEdgeJson {
            kind: e.kind.as_str(),
            from: e.from.as_str(),
            to: e.to.as_str(),
            peer: peer.as_deref().map(RefJson::from),
        })
        .collect()
}

impl<'a> DetailJson<'a> {
    /// Shapes `d` at `seq`.
    pub fn new(seq: u64, d: &'a Detail) -> Self {
        DetailJson {
            seq,
            resource: ResourceJson::from(&*d.resource),
            incoming: peer_edges(&d.incoming),
            outgoing: peer_edges(&d.outgoing),
        }
    }
}

/// Each node of `nodes` in the native view, from the fragment cache.
fn native_nodes(cache: &FragmentCache, nodes: &[Arc<Resource>]) -> sonic_rs::Result<Vec<Bytes>> {
    cache.render_all(nodes, View::Native, |r| {
        sonic_rs::to_vec(&ResourceJson::from(r))
    })
}

/// The schema of [`subgraph_body`]'s output (which writes bytes, not this type).
#[derive(Debug, ToSchema)]
#[schema(as = Subgraph, description = "A traversal's answer: resources and the edges among them.")]
pub struct SubgraphSchema<'a> {
    /// Graph sequence the answer reflects.
    pub seq: u64,
    /// Whether a path exists (path only).
    pub found: Option<bool>,
    /// The resources.
    pub nodes: Vec<ResourceJson<'a>>,
    /// The edges among them.
    pub edges: Vec<EdgeJson<'a>>,
    /// Whether the result was cut at the limit.
    pub truncated: bool,
}

/// The body of traversal endpoints (neighbours, path, impact):
/// `{"seq", "found" (path only), "nodes", "edges", "truncated"}` ([`SubgraphSchema`]).
///
/// # Errors
/// When a value cannot be serialised.
pub fn subgraph_body(
    cache: &FragmentCache,
    seq: u64,
    s: &Subgraph,
    found: Option<bool>,
) -> sonic_rs::Result<Vec<u8>> {
    let nodes = native_nodes(cache, &s.nodes)?;
    let mut w = ObjectWriter::with_capacity(size_hint(s.nodes.len(), s.edges.len()));
    w.field("seq", &seq)?;
    if let Some(found) = found {
        w.field("found", &found)?;
    }
    w.raw_array("nodes", &nodes);
    let edges: Vec<EdgeJson<'_>> = s.edges.iter().map(EdgeJson::from).collect();
    w.field("edges", &edges)?;
    w.field("truncated", &s.truncated)?;
    Ok(w.finish())
}

/// The schema of [`page_body`]'s output (which writes bytes, not this type).
#[derive(Debug, ToSchema)]
#[schema(as = Page, description = "One page of a listing.")]
pub struct PageSchema<'a> {
    /// Graph sequence the answer reflects.
    pub seq: u64,
    /// The resources of this page.
    pub items: Vec<ResourceJson<'a>>,
    /// The token for the next page; null on the last page.
    #[schema(required)]
    pub r#continue: Option<String>,
}

/// The body of `/api/v1/objects`: `{"seq", "items", "continue"}` (`continue` is null on the
/// last page; [`PageSchema`]).
///
/// # Errors
/// When a value cannot be serialised.
pub fn page_body(
    cache: &FragmentCache,
    seq: u64,
    items: &[Arc<Resource>],
    next: Option<&str>,
) -> sonic_rs::Result<Vec<u8>> {
    let nodes = native_nodes(cache, items)?;
    let mut w = ObjectWriter::with_capacity(size_hint(items.len(), 0));
    w.field("seq", &seq)?;
    w.raw_array("items", &nodes);
    w.field("continue", &next)?;
    Ok(w.finish())
}

/// One dangling reference.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Dangling)]
pub struct DanglingJson<'a> {
    source: RefJson<'a>,
    edge_kind: &'static str,
    target: String,
    target_kind: &'a str,
    optional: bool,
}

impl<'a> From<&'a Dangling> for DanglingJson<'a> {
    fn from(d: &'a Dangling) -> Self {
        DanglingJson {
            source: RefJson::from(&*d.source),
            edge_kind: d.edge.as_str(),
            target: d.target_text(),
            target_kind: d.target_kind().as_str(),
            optional: d.optional,
        }
    }
}

/// The body of `/api/v1/dangling`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DanglingList)]
pub struct DanglingListJson<'a> {
    /// Graph sequence.
    pub seq: u64,
    /// The dangling references.
    pub items: Vec<DanglingJson<'a>>,
}
