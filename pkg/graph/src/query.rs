//! Read-only queries over a [`Graph`]: one resource with its edges, filtered listing with
//! pagination, neighbours, shortest path, impact, and (re-exported from `dangling` and
//! [`crate::compat`]) dangling references and the views the Go server's endpoints return.
//!
//! Every function copies out `Arc<Resource>`s and small edge views, so callers can hold the read
//! lock only for the call and build their response after releasing it.

use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use astrolabe_model::{Dependency, EdgeKind, Kind, LabelSelector, ObjectKey, Resource, Str, Uid};
use petgraph::Direction::{Incoming, Outgoing};
use petgraph::stable_graph::{EdgeReference, NodeIndex};
use petgraph::visit::EdgeRef;
use rustc_hash::FxHashSet;

use crate::Graph;
pub use crate::compat::{charts, compat_graph, compat_resources, namespaces, releases};
pub use crate::dangling::{Dangling, dangling};
pub use crate::event::EdgeView;
use crate::graph::EdgeData;
use crate::keys::KeyView as _;

/// A resource with its incoming and outgoing edges.
#[derive(Clone, Debug)]
pub struct ResourceView {
    /// The resource.
    pub resource: Arc<Resource>,
    /// Edges pointing at it, sorted.
    pub incoming: Vec<EdgeView>,
    /// Edges leaving it, sorted.
    pub outgoing: Vec<EdgeView>,
}

/// A set of resources and the edges between them.
#[derive(Clone, Debug, Default)]
pub struct Subgraph {
    /// The resources (in query-specific order: BFS order, path order, key order).
    pub nodes: Vec<Arc<Resource>>,
    /// The edges, sorted.
    pub edges: Vec<EdgeView>,
    /// Whether a size cap cut the result short.
    pub truncated: bool,
}

/// Which edges a traversal follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Edges pointing at the node (towards its sources).
    In,
    /// Edges leaving the node (towards its targets).
    Out,
    /// Both.
    #[default]
    Both,
}

/// Parameters of [`neighbors`].
#[derive(Clone, Debug)]
pub struct NeighborQuery {
    /// How many hops (0 returns the node alone).
    pub depth: u32,
    /// Which edges to follow.
    pub direction: Direction,
    /// Only these edge kinds (all when `None`).
    pub edge_kinds: Option<Vec<EdgeKind>>,
    /// At most this many nodes.
    pub limit: usize,
}

impl Default for NeighborQuery {
    fn default() -> Self {
        NeighborQuery {
            depth: 1,
            direction: Direction::Both,
            edge_kinds: None,
            limit: 1000,
        }
    }
}

/// Parameters of [`list`].
#[derive(Clone, Debug)]
pub struct ListFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this namespace ("" for cluster-scoped objects).
    pub namespace: Option<Str>,
    /// Only objects whose labels match.
    pub selector: Option<LabelSelector>,
    /// Only objects with this exact name.
    pub name: Option<Str>,
    /// Only objects of this Helm release.
    pub release: Option<Str>,
    /// Continue after this key (exclusive).
    pub after: Option<ObjectKey>,
    /// At most this many items.
    pub limit: usize,
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter {
            kind: None,
            namespace: None,
            selector: None,
            name: None,
            release: None,
            after: None,
            limit: 500,
        }
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The items, in key order (kind, namespace, name).
    pub items: Vec<Arc<Resource>>,
    /// Where the next page starts (exclusive), when there is one.
    pub next: Option<ObjectKey>,
}

fn view(g: &Graph, e: EdgeReference<'_, EdgeData>) -> EdgeView {
    EdgeView {
        kind: e.weight().kind,
        from: g.g[e.source()].uid.clone(),
        to: g.g[e.target()].uid.clone(),
    }
}

/// Every edge at the resource (leaving it, then pointing at it) that `keep` keeps given the
/// resources at its two ends (source, target), unsorted; empty when unknown. The ends are read
/// without building a view of edges `keep` refuses.
pub fn edges_at_where(
    g: &Graph,
    uid: &Uid,
    mut keep: impl FnMut(&Arc<Resource>, &Arc<Resource>) -> bool,
) -> Vec<EdgeView> {
    let Some(idx) = g.index_of(uid) else {
        return Vec::new();
    };
    [Outgoing, Incoming]
        .into_iter()
        .flat_map(|dir| g.g.edges_directed(idx, dir))
        .filter(|e| keep(&g.g[e.source()], &g.g[e.target()]))
        .map(|e| view(g, e))
        .collect()
}

/// Edges leaving the resource, sorted; empty when unknown.
pub fn out_edges(g: &Graph, uid: &Uid) -> Vec<EdgeView> {
    edges_of(g, uid, Outgoing)
}

/// Edges pointing at the resource, sorted; empty when unknown.
pub fn in_edges(g: &Graph, uid: &Uid) -> Vec<EdgeView> {
    edges_of(g, uid, Incoming)
}

fn edges_of(g: &Graph, uid: &Uid, dir: petgraph::Direction) -> Vec<EdgeView> {
    let Some(idx) = g.index_of(uid) else {
        return Vec::new();
    };
    let mut edges: Vec<EdgeView> = g.g.edges_directed(idx, dir).map(|e| view(g, e)).collect();
    edges.sort();
    edges.dedup();
    edges
}

/// The resource with its edges; `None` when unknown.
pub fn resource(g: &Graph, uid: &Uid) -> Option<ResourceView> {
    let resource = g.get(uid)?.clone();
    Some(ResourceView {
        resource,
        incoming: in_edges(g, uid),
        outgoing: out_edges(g, uid),
    })
}

/// A filtered, paginated listing in key order (kind, namespace, name).
pub fn list(g: &Graph, f: &ListFilter) -> Page {
    let keep = |i: NodeIndex| {
        let r = &g.g[i];
        f.namespace.as_ref().is_none_or(|ns| r.namespace == *ns)
            && f.kind.as_ref().is_none_or(|k| r.kind == *k)
            && f.name.as_ref().is_none_or(|n| r.name == *n)
            && f.release
                .as_ref()
                .is_none_or(|rel| r.release() == rel.as_str())
            && f.selector.as_ref().is_none_or(|s| s.matches(&r.labels))
    };
    let after = |i: &NodeIndex| f.after.as_ref().is_none_or(|a| g.g[*i].key() > *a);
    let limit = f.limit.max(1);
    let mut items: Vec<NodeIndex> = Vec::with_capacity(limit.min(1024) + 1);
    let mut push = |i: NodeIndex| {
        if keep(i) {
            items.push(i);
        }
        items.len() > limit
    };
    if let Some(release) = &f.release {
        let mut members: Vec<NodeIndex> = g
            .by_release
            .get(release)
            .map(|s| s.iter().copied().filter(after).collect())
            .unwrap_or_default();
        members.sort_unstable_by(|&a, &b| g.g[a].parts().cmp(&g.g[b].parts()).then(a.cmp(&b)));
        for i in members {
            if push(i) {
                break;
            }
        }
    } else if let Some(kind) = &f.kind {
        let first = ObjectKey::new(kind.clone(), f.namespace.clone().unwrap_or_default(), "");
        let start = match &f.after {
            Some(a) if a.kind == *kind && *a >= first => Bound::Excluded(a),
            _ => Bound::Included(&first),
        };
        for (k, i) in g.key_range(start) {
            if k.kind != *kind
                || f.namespace.as_ref().is_some_and(|ns| k.namespace != *ns)
                || push(i)
            {
                break;
            }
        }
    } else if let Some(ns) = &f.namespace {
        'kinds: for kind in g.kind_counts_keys() {
            let indexes: Vec<NodeIndex> = g.keys_of(&kind, Some(ns)).filter(after).collect();
            for i in indexes {
                if push(i) {
                    break 'kinds;
                }
            }
        }
    } else {
        let start = f.after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
        for (_, i) in g.key_range(start) {
            if push(i) {
                break;
            }
        }
    }
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|&i| g.g[i].key())
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|i| g.g[i].clone()).collect(),
        next,
    }
}

/// Breadth-first neighbourhood of a resource; `None` when the UID is unknown.
///
/// The walk follows edges of the requested kinds in the requested direction, level by level.
/// The returned edges are every edge between two returned nodes whose kind is one of the
/// requested kinds (all kinds when none are given), whichever its direction: two returned
/// nodes joined by such an edge always appear joined, whether or not the walk went along it.
pub fn neighbors(g: &Graph, uid: &Uid, q: &NeighborQuery) -> Option<Subgraph> {
    let start = g.index_of(uid)?;
    let follows = |k: EdgeKind| q.edge_kinds.as_ref().is_none_or(|ks| ks.contains(&k));
    let dirs = directions(q.direction);
    let limit = q.limit.max(1);
    let mut seen: FxHashSet<NodeIndex> = FxHashSet::from_iter([start]);
    let mut order = vec![start];
    let mut frontier = vec![start];
    let mut truncated = false;
    // Level by level; each level in key order, so the result (and what a cap cuts) does not
    // depend on the order edges were inserted in.
    for _ in 0..q.depth {
        let mut next: Vec<NodeIndex> = Vec::new();
        for &n in &frontier {
            for &dir in dirs {
                for e in g.g.edges_directed(n, dir) {
                    let other = far_end(&e, dir);
                    if follows(e.weight().kind) && seen.insert(other) {
                        next.push(other);
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        // Keys are unique but for a moment of re-creation; the UID breaks such a tie, so an
        // unstable (allocation-free) sort gives one order.
        next.sort_unstable_by(|&a, &b| {
            let (a, b) = (&g.g[a], &g.g[b]);
            a.parts().cmp(&b.parts()).then_with(|| a.uid.cmp(&b.uid))
        });
        let room = limit.saturating_sub(order.len());
        if next.len() > room {
            for cut in next.drain(room..) {
                seen.remove(&cut);
            }
            truncated = true;
        }
        order.extend_from_slice(&next);
        if truncated {
            break;
        }
        frontier = next;
    }
    // `seen` is now exactly the returned nodes; each edge among them is found once, from its
    // source.
    let mut edges: Vec<(EdgeKind, NodeIndex, NodeIndex)> = Vec::new();
    for &n in &order {
        for e in g.g.edges_directed(n, Outgoing) {
            if follows(e.weight().kind) && seen.contains(&e.target()) {
                edges.push((e.weight().kind, n, e.target()));
            }
        }
    }
    Some(Subgraph {
        nodes: order.into_iter().map(|i| g.g[i].clone()).collect(),
        edges: edge_views(g, edges),
        truncated,
    })
}

/// The petgraph directions a traversal in `direction` follows from a node.
fn directions(direction: Direction) -> &'static [petgraph::Direction] {
    match direction {
        Direction::In => &[Incoming],
        Direction::Out => &[Outgoing],
        Direction::Both => &[Outgoing, Incoming],
    }
}

/// The end of `e` a traversal reaches when it follows `e` in `dir` (a self-loop reaches its
/// own node).
fn far_end(e: &EdgeReference<'_, EdgeData>, dir: petgraph::Direction) -> NodeIndex {
    if dir == Outgoing {
        e.target()
    } else {
        e.source()
    }
}

/// Sorts and de-duplicates edges by index (cheap), then resolves their UIDs.
fn edge_views(g: &Graph, mut edges: Vec<(EdgeKind, NodeIndex, NodeIndex)>) -> Vec<EdgeView> {
    edges.sort_unstable();
    edges.dedup();
    edges
        .into_iter()
        .map(|(kind, a, b)| EdgeView {
            kind,
            from: g.g[a].uid.clone(),
            to: g.g[b].uid.clone(),
        })
        .collect()
}

/// A shortest path between two resources of at most `max_depth` hops, following edges in
/// `direction`: [`Direction::Out`] from source to target (from `from` along the arrows to `to`),
/// [`Direction::In`] against them, [`Direction::Both`] either way. `None` when either UID is
/// unknown; empty nodes when there is no such path.
pub fn path(
    g: &Graph,
    from: &Uid,
    to: &Uid,
    max_depth: u32,
    direction: Direction,
) -> Option<Subgraph> {
    let a = g.index_of(from)?;
    let b = g.index_of(to)?;
    let dirs = directions(direction);
    let mut parent: HashMap<NodeIndex, (NodeIndex, EdgeView)> = HashMap::new();
    let mut seen: FxHashSet<NodeIndex> = FxHashSet::from_iter([a]);
    let mut queue = VecDeque::from([(a, 0u32)]);
    while let Some((n, d)) = queue.pop_front() {
        if n == b {
            break;
        }
        if d >= max_depth {
            continue;
        }
        let mut step: Vec<(NodeIndex, EdgeReference<'_, EdgeData>)> = dirs
            .iter()
            .flat_map(|&dir| {
                g.g.edges_directed(n, dir)
                    .map(move |e| (far_end(&e, dir), e))
            })
            .collect();
        step.sort_by(|(x, e), (y, f)| {
            (g.g[*x].parts(), e.weight().kind).cmp(&(g.g[*y].parts(), f.weight().kind))
        });
        for (other, e) in step {
            if seen.insert(other) {
                parent.insert(other, (n, view(g, e)));
                queue.push_back((other, d + 1));
            }
        }
    }
    if a != b && !parent.contains_key(&b) {
        return Some(Subgraph::default());
    }
    let mut nodes = vec![b];
    let mut edges = Vec::new();
    let mut cur = b;
    while let Some((p, e)) = parent.get(&cur) {
        edges.push(e.clone());
        nodes.push(*p);
        cur = *p;
    }
    nodes.reverse();
    edges.reverse();
    Some(Subgraph {
        nodes: nodes.into_iter().map(|i| g.g[i].clone()).collect(),
        edges,
        truncated: false,
    })
}

/// Everything that depends on a resource, transitively: what breaks, or goes with it, if it is
/// deleted. Follows each edge kind's [`Dependency`]. `None` when the UID is unknown. The first
/// node is the resource itself.
pub fn impact(g: &Graph, uid: &Uid, limit: usize) -> Option<Subgraph> {
    let start = g.index_of(uid)?;
    let mut seen: FxHashSet<NodeIndex> = FxHashSet::from_iter([start]);
    let mut order = vec![start];
    let mut edges = Vec::new();
    let mut queue = VecDeque::from([start]);
    let mut truncated = false;
    'bfs: while let Some(n) = queue.pop_front() {
        // Sources that need n, and targets that need n.
        let needers =
            g.g.edges_directed(n, Incoming)
                .filter(|e| e.weight().kind.dependency() == Dependency::SourceNeedsTarget)
                .map(|e| (e.source(), e))
                .chain(
                    g.g.edges_directed(n, Outgoing)
                        .filter(|e| e.weight().kind.dependency() == Dependency::TargetNeedsSource)
                        .map(|e| (e.target(), e)),
                );
        for (other, e) in needers {
            edges.push((e.weight().kind, e.source(), e.target()));
            if seen.insert(other) {
                if order.len() >= limit.max(1) {
                    truncated = true;
                    break 'bfs;
                }
                order.push(other);
                queue.push_back(other);
            }
        }
    }
    Some(Subgraph {
        nodes: order.into_iter().map(|i| g.g[i].clone()).collect(),
        edges: edge_views(g, edges),
        truncated,
    })
}

/// How many edges of each kind objects of each kind declared (the end that holds the reference,
/// whichever way the edge points): what `/api/v1/rules` reports per rule.
pub fn declared_edge_counts(g: &Graph) -> HashMap<(Kind, EdgeKind), usize> {
    let mut counts = HashMap::new();
    for e in petgraph::visit::IntoEdgeReferences::edge_references(&g.g) {
        let declarer = if e.weight().reverse {
            e.target()
        } else {
            e.source()
        };
        *counts
            .entry((g.g[declarer].kind.clone(), e.weight().kind))
            .or_insert(0) += 1;
    }
    counts
}
