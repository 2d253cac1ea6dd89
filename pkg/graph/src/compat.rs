//! The views behind the Go Astrolabe server's endpoints (`/api/v1/resources`, `/graph`,
//! `/releases`, `/charts`, `/namespaces`): the same intent, without its bugs.
//!
//! Differences from the Go server, on purpose:
//! - results are in a deterministic order (key order: kind, namespace, name);
//! - a release view includes what the release's objects own, transitively (ReplicaSets, Pods,
//!   EndpointSlices, Jobs, PVCs from StatefulSet templates), the Pods its Services select, and the
//!   PersistentVolumes its claims bind — not only objects one hop from an annotated one;
//! - a namespace view includes the namespace's objects, the Namespace object itself and the
//!   PersistentVolumes and StorageClasses its claims use — not every cluster-scoped object;
//! - releases are listed from the release index, charts from the `helm.sh/chart` label or
//!   annotation, namespaces from Namespace objects as well as from namespaced objects.

use std::collections::BTreeSet;
use std::sync::Arc;

use astrolabe_model::{EdgeKind, Kind, Resource, Str};
use petgraph::Direction::{Incoming, Outgoing};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::Graph;
use crate::keys::KeyView as _;
use crate::query::{EdgeView, Subgraph};

/// Kinds a release view may pull in although they carry no release annotation.
const EXPANDABLE: &[Kind] = &[
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::EndpointSlice,
    Kind::ConfigMap,
    Kind::Secret,
    Kind::ServiceAccount,
    Kind::Service,
    Kind::PersistentVolume,
    Kind::PersistentVolumeClaim,
    Kind::StorageClass,
    Kind::Job,
];

/// Edges along which an unannotated object pulls in what it owns or uses.
const FORWARD: &[EdgeKind] = &[
    EdgeKind::Owns,
    EdgeKind::Endpoints,
    EdgeKind::Selects,
    EdgeKind::Mounts,
    EdgeKind::Binds,
    EdgeKind::ClaimsFromTemplate,
    EdgeKind::UsesConfigmap,
    EdgeKind::UsesSecret,
    EdgeKind::UsesSa,
    EdgeKind::UsesStorageClass,
];

fn sorted(g: &Graph, set: impl IntoIterator<Item = NodeIndex>) -> Vec<NodeIndex> {
    let mut v: Vec<NodeIndex> = set.into_iter().collect();
    // A stable sort: the input is mostly runs already in key order (per-kind buckets), which
    // it merges in close to linear time.
    v.sort_by(|&a, &b| g.g[a].parts().cmp(&g.g[b].parts()));
    v.dedup();
    v
}

fn in_scope(r: &Resource, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| r.namespace.is_empty() || r.namespace == ns)
}

/// The nodes of a release: annotated members (within `namespace`, cluster-scoped ones included),
/// expanded along ownership and use to unannotated objects of the expandable kinds.
fn release_nodes(g: &Graph, release: &str, namespace: Option<&str>) -> Vec<NodeIndex> {
    let Some(members) = g.by_release.get(release) else {
        return Vec::new();
    };
    let base: Vec<NodeIndex> = sorted(
        g,
        members
            .iter()
            .copied()
            .filter(|&i| in_scope(&g.g[i], namespace)),
    );
    let mut seen: FxHashSet<NodeIndex> = base.iter().copied().collect();
    let mut queue: Vec<NodeIndex> = base.clone();
    while let Some(n) = queue.pop() {
        let from_member = g.g[n].release() == release;
        let mut visit = |other: NodeIndex| {
            let r = &g.g[other];
            let ok = !seen.contains(&other)
                && (namespace.is_none_or(|ns| r.namespace.is_empty() || r.namespace == ns))
                && (r.release().is_empty() && EXPANDABLE.contains(&r.kind));
            if ok {
                seen.insert(other);
                queue.push(other);
            }
        };
        for e in g.g.edges_directed(n, Outgoing) {
            if from_member || FORWARD.contains(&e.weight().kind) {
                visit(e.target());
            }
        }
        if from_member {
            // What uses a release's ConfigMap, Secret, ServiceAccount or PVC belongs to it.
            for e in g.g.edges_directed(n, Incoming) {
                if e.weight().kind != EdgeKind::RunsOn {
                    visit(e.source());
                }
            }
        }
    }
    sorted(g, seen)
}

/// Nodes of a namespace view: the namespace's objects, its Namespace object, and the
/// PersistentVolumes/StorageClasses its objects point at.
fn namespace_nodes(g: &Graph, namespace: &str) -> Vec<NodeIndex> {
    let mut set: Vec<NodeIndex> = Vec::new();
    for kind in g.kind_counts_keys() {
        set.extend(g.keys_of(&kind, Some(namespace)));
    }
    let mut extra: Vec<NodeIndex> = Vec::new();
    for &n in &set {
        for e in g.g.edges_directed(n, Outgoing) {
            let t = &g.g[e.target()];
            if matches!(t.kind, Kind::PersistentVolume | Kind::StorageClass) {
                extra.push(e.target());
            }
        }
    }
    // Second hop: PV -> StorageClass.
    for &n in extra.clone().iter() {
        for e in g.g.edges_directed(n, Outgoing) {
            if g.g[e.target()].kind == Kind::StorageClass {
                extra.push(e.target());
            }
        }
    }
    if let Some(ns) = g.index_of_key(&astrolabe_model::ObjectKey::new(
        Kind::Namespace,
        "",
        namespace,
    )) {
        extra.push(ns);
    }
    set.extend(extra);
    sorted(g, set)
}

fn select(g: &Graph, release: Option<&str>, namespace: Option<&str>) -> Vec<NodeIndex> {
    match (release, namespace) {
        (Some(rel), ns) => release_nodes(g, rel, ns),
        (None, Some(ns)) => namespace_nodes(g, ns),
        (None, None) => g
            .key_range(std::ops::Bound::Unbounded)
            .map(|(_, i)| i)
            .collect(),
    }
}

/// The resources `/api/v1/resources?release=&namespace=` returns, in key order.
pub fn compat_resources(
    g: &Graph,
    release: Option<&str>,
    namespace: Option<&str>,
) -> Vec<Arc<Resource>> {
    select(g, release, namespace)
        .into_iter()
        .map(|i| g.g[i].clone())
        .collect()
}

/// The `{nodes, edges}` graph `/api/v1/graph?release=&namespace=` returns: the selected nodes in
/// key order and every edge between two of them.
pub fn compat_graph(g: &Graph, release: Option<&str>, namespace: Option<&str>) -> Subgraph {
    let nodes = select(g, release, namespace);
    // Edges are ordered by (kind, from UID, to UID). Ranking the members by UID once and sorting
    // the edges by rank gives that order without comparing UID strings per edge comparison.
    let mut by_uid = nodes.clone();
    by_uid.sort_unstable_by(|&a, &b| g.g[a].uid.cmp(&g.g[b].uid));
    let rank: FxHashMap<NodeIndex, u32> = by_uid.iter().zip(0u32..).map(|(&i, r)| (i, r)).collect();
    let mut edges: Vec<(EdgeKind, u32, u32)> = Vec::new();
    for (&n, from) in by_uid.iter().zip(0u32..) {
        for e in g.g.edges_directed(n, Outgoing) {
            if let Some(&to) = rank.get(&e.target()) {
                edges.push((e.weight().kind, from, to));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    Subgraph {
        edges: edges
            .into_iter()
            .map(|(kind, a, b)| EdgeView {
                kind,
                from: g.g[by_uid[a as usize]].uid.clone(),
                to: g.g[by_uid[b as usize]].uid.clone(),
            })
            .collect(),
        nodes: nodes.into_iter().map(|i| g.g[i].clone()).collect(),
        truncated: false,
    }
}

/// Helm release names, sorted; with `namespace`, only releases with an object in it.
pub fn releases(g: &Graph, namespace: Option<&str>) -> Vec<Str> {
    let mut out: Vec<Str> = g
        .by_release
        .iter()
        .filter(|(_, members)| {
            namespace.is_none_or(|ns| members.iter().any(|&i| g.g[i].namespace == ns))
        })
        .map(|(name, _)| name.clone())
        .collect();
    out.sort();
    out
}

/// Chart names (`helm.sh/chart`), sorted; with `namespace`, only charts of objects in it.
pub fn charts(g: &Graph, namespace: Option<&str>) -> Vec<Str> {
    let mut out: BTreeSet<Str> = BTreeSet::new();
    for members in g.by_release.values() {
        for &i in members {
            let r = &g.g[i];
            if !r.chart().is_empty() && namespace.is_none_or(|ns| r.namespace == ns) {
                out.insert(r.chart().into());
            }
        }
    }
    out.into_iter().collect()
}

/// Namespaces, sorted: those of namespaced objects and those of Namespace objects.
pub fn namespaces(g: &Graph) -> Vec<Str> {
    let mut out: BTreeSet<Str> = g
        .ns_counts
        .keys()
        .filter(|ns| !ns.is_empty())
        .cloned()
        .collect();
    out.extend(
        g.keys_of(&Kind::Namespace, None)
            .map(|i| g.g[i].name.clone()),
    );
    out.into_iter().collect()
}
