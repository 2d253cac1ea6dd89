//! `Graph`: the petgraph store, its indexes, and incremental, order-independent edge derivation.
//!
//! Every edge comes from a [`Reference`](astrolabe_model::Reference) some node declares. The
//! graph remembers which end declared each edge (`EdgeData::reverse`) and how the target was
//! found (`Via`), so that:
//! - an update removes exactly the edges the node declared and derives them again;
//! - a reference to an object not yet seen waits in a *pending* map keyed by the missing UID or
//!   key, and becomes an edge when that object appears;
//! - deleting a node turns the by-UID and by-key edges others declared towards it back into
//!   pending references; selector edges simply go, and come back when a match appears.
//!
//! The result depends only on the current set of resources, never on the order of changes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use astrolabe_model::codec::Snapshot;
use astrolabe_model::{
    Change, ChangeOp, EdgeKind, Kind, LabelSelector, ObjectKey, Resource, Str, Target, Uid, now_ms,
};
use hashbrown::HashTable;
use petgraph::Direction::{Incoming, Outgoing};
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::event::{EventSink, GraphChange, GraphEvent};
use crate::keys::KeyView;
use crate::query::EdgeView;
use crate::selectors::{Place, SelectorIndex};

/// Edges per node reserved when loading a snapshot (generated clusters have about 2.6).
const EDGES_PER_NODE_HINT: usize = 3;

/// How an edge's target was found.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Via {
    Uid,
    Key,
    Selector,
}

/// An edge's weight: its kind, which end declared it, and how it was resolved.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EdgeData {
    /// The relationship.
    pub kind: EdgeKind,
    /// `false`: the source declared the edge; `true`: the target did.
    pub(crate) reverse: bool,
    pub(crate) via: Via,
}

/// A reference waiting for its target to appear.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PendingRef {
    declarer: NodeIndex,
    edge: EdgeKind,
    reverse: bool,
}

/// Counts kept up to date on every change, for metrics and `/health`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Nodes per kind, sorted by kind.
    pub nodes_by_kind: Vec<(Kind, usize)>,
    /// Edges per edge kind, sorted by edge kind.
    pub edges_by_kind: Vec<(EdgeKind, usize)>,
    /// Dangling references per edge kind (pending references, and Services selecting nothing).
    pub dangling_by_edge: Vec<(EdgeKind, usize)>,
}

/// What [`Graph::layout`] compares.
#[derive(PartialEq, Eq, Debug)]
pub(crate) struct GraphLayout {
    #[allow(clippy::type_complexity)]
    nodes: Vec<Option<(Uid, Vec<usize>, Vec<usize>)>>,
    edges: Vec<Option<(usize, usize, EdgeData)>>,
    keys: Vec<usize>,
    seq: u64,
    pending: usize,
}

/// Outcome of applying one operation, before it is stamped with a sequence number.
enum Applied {
    Added,
    Updated,
    Removed(ObjectKey),
}

/// The relationship graph. Single-threaded; share it through [`crate::SharedGraph`].
#[derive(Clone, Default)]
pub struct Graph {
    pub(crate) g: StableDiGraph<Arc<Resource>, EdgeData>,
    /// Node indexes hashed by UID; the UID itself is read from the node, not copied.
    by_uid: HashTable<NodeIndex>,
    /// Node indexes in key order; entries share the node's `Arc`, not a copy of its key.
    by_key: BTreeMap<Kind, BTreeMap<Str, FxHashSet<NodeIndex>>>,
    pub(crate) by_release: FxHashMap<Str, FxHashSet<NodeIndex>>,
    /// The nodes that declare selector references, and which of them may match which nodes
    /// (see [`crate::selectors`]).
    selector_index: SelectorIndex,
    /// Node indexes hashed by key, for exact lookups (the ordered index serves ranges).
    by_key_hash: HashTable<NodeIndex>,
    pending_key: FxHashMap<ObjectKey, Vec<PendingRef>>,
    pending_uid: FxHashMap<Uid, Vec<PendingRef>>,
    kind_counts: BTreeMap<Kind, usize>,
    edge_counts: BTreeMap<EdgeKind, usize>,
    pub(crate) ns_counts: BTreeMap<Str, usize>,
    seq: u64,
    /// Edge additions (true) and removals (false) of the change being applied, when recording.
    edge_log: Option<Vec<(NodeIndex, NodeIndex, EdgeKind, bool)>>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence number of the last applied change (0 for an empty history).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Continues the sequence after `seq`: the next change gets at least `seq + 1`. Never moves
    /// backwards. Used after recovery (Redis knows of changes up to `seq`) and to start a fresh
    /// history above any sequence an older log may hold.
    pub fn advance_seq(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// Number of resources.
    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.g.edge_count()
    }

    /// The resource with this UID.
    pub fn get(&self, uid: &Uid) -> Option<&Arc<Resource>> {
        self.index_of(uid).map(|i| &self.g[i])
    }

    /// The resource with this key.
    pub fn get_by_key(&self, key: &ObjectKey) -> Option<&Arc<Resource>> {
        self.index_of_key(key).map(|i| &self.g[i])
    }

    /// The node index of a UID.
    pub(crate) fn index_of(&self, uid: &Uid) -> Option<NodeIndex> {
        let g = &self.g;
        self.by_uid
            .find(uid_hash(uid), |&i| g[i].uid == *uid)
            .copied()
    }

    /// The node index of a key.
    pub(crate) fn index_of_key(&self, key: &ObjectKey) -> Option<NodeIndex> {
        let g = &self.g;
        self.by_key_hash
            .find(key_hash(key), |&i| g[i].parts() == key.parts())
            .copied()
    }

    /// Node indexes in key order, from `start` on. The index keeps each (kind, namespace)
    /// bucket unordered; a bucket is sorted by name when the iteration reaches it, so inserts and
    /// updates pay nothing for the order only listings need.
    pub(crate) fn key_range<'a>(
        &'a self,
        start: Bound<&'a ObjectKey>,
    ) -> impl Iterator<Item = (&'a Resource, NodeIndex)> + 'a {
        let first = match start {
            Bound::Included(k) | Bound::Excluded(k) => Some(k),
            Bound::Unbounded => None,
        };
        let kinds = first.map_or(Bound::Unbounded, |k| Bound::Included(&k.kind));
        self.by_key
            .range::<Kind, _>((kinds, Bound::Unbounded))
            .flat_map(move |(kind, by_ns)| {
                let from = first
                    .filter(|k| k.kind == *kind)
                    .map_or(Bound::Unbounded, |k| Bound::Included(k.namespace.as_str()));
                by_ns
                    .range::<str, _>((from, Bound::Unbounded))
                    .map(|(_, set)| set)
            })
            .flat_map(move |set| self.sorted_by_name(set))
            .filter(move |(r, _)| match start {
                Bound::Included(k) => r.parts() >= k.parts(),
                Bound::Excluded(k) => r.parts() > k.parts(),
                Bound::Unbounded => true,
            })
    }

    fn sorted_by_name<'a>(
        &'a self,
        set: &FxHashSet<NodeIndex>,
    ) -> impl Iterator<Item = (&'a Resource, NodeIndex)> + 'a {
        let mut v: Vec<NodeIndex> = set.iter().copied().collect();
        v.sort_unstable_by(|&a, &b| self.g[a].name.cmp(&self.g[b].name).then(a.cmp(&b)));
        v.into_iter().map(move |i| (&*self.g[i], i))
    }

    /// The (kind, namespace) buckets of `kind`: the one of `namespace` when given, else all.
    fn buckets<'a>(
        &'a self,
        kind: &Kind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a FxHashSet<NodeIndex>> + 'a {
        self.by_key
            .get(kind)
            .into_iter()
            .flat_map(move |by_ns| {
                by_ns
                    .iter()
                    .filter(move |(ns, _)| namespace.is_none_or(|n| ns.as_str() == n))
            })
            .map(|(_, set)| set)
    }

    /// Node indexes of `kind` (in `namespace` when given), in no particular order.
    pub(crate) fn members<'a>(
        &'a self,
        kind: &Kind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = NodeIndex> + 'a {
        self.buckets(kind, namespace)
            .flat_map(|set| set.iter().copied())
    }

    /// Every resource, in no particular order.
    pub fn resources(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.g.node_weights()
    }

    /// Upserts a resource now, without event recording. Returns the change, or `None` when the
    /// resource is already present exactly as given.
    pub fn upsert(&mut self, resource: impl Into<Arc<Resource>>) -> Option<Change> {
        self.apply(ChangeOp::Upsert(resource.into()), now_ms(), &mut ())
    }

    /// Deletes a resource now, without event recording. `None` when it is not present.
    pub fn delete(&mut self, uid: &Uid) -> Option<Change> {
        let op = self.delete_op(uid)?;
        self.apply(op, now_ms(), &mut ())
    }

    /// The operation that deletes the resource with this UID, when it is present.
    pub fn delete_op(&self, uid: &Uid) -> Option<ChangeOp> {
        Some(ChangeOp::Delete {
            uid: uid.clone(),
            key: self.get(uid)?.key(),
        })
    }

    /// Applies one operation, stamps it with the next sequence number and reports the node and
    /// edge events to `sink`. Returns `None` for a no-op (an identical upsert, or a delete of an
    /// absent UID), which consumes no sequence number.
    pub fn apply(&mut self, op: ChangeOp, ts_ms: i64, sink: &mut impl EventSink) -> Option<Change> {
        let recording = sink.enabled();
        if recording {
            self.edge_log = Some(Vec::new());
        }
        let applied = match &op {
            ChangeOp::Upsert(r) => self.upsert_inner(r),
            ChangeOp::Delete { uid, .. } => self.delete_inner(uid),
        };
        let edge_log = self.edge_log.take();
        let applied = applied?;
        self.seq += 1;
        let seq = self.seq;
        let op = match (op, &applied) {
            (ChangeOp::Delete { uid, .. }, Applied::Removed(key)) => ChangeOp::Delete {
                uid,
                key: key.clone(),
            },
            (op, _) => op,
        };
        if recording {
            let change = match (&op, applied) {
                (ChangeOp::Upsert(r), Applied::Added) => GraphChange::NodeAdded(r.clone()),
                (ChangeOp::Upsert(r), _) => GraphChange::NodeUpdated(r.clone()),
                (ChangeOp::Delete { uid, key }, _) => GraphChange::NodeRemoved {
                    uid: uid.clone(),
                    key: key.clone(),
                },
            };
            sink.record(GraphEvent { seq, ts_ms, change });
            self.emit_edges(edge_log.unwrap_or_default(), &op, seq, ts_ms, sink);
        }
        Some(Change { seq, ts_ms, op })
    }

    /// Re-applies a persisted change during recovery: the graph takes the change's own sequence
    /// number, whether or not the operation changes anything.
    pub fn replay(&mut self, change: &Change) {
        match &change.op {
            ChangeOp::Upsert(r) => {
                self.upsert_inner(r);
            }
            ChangeOp::Delete { uid, .. } => {
                self.delete_inner(uid);
            }
        }
        self.seq = self.seq.max(change.seq);
    }

    /// Builds a graph from a snapshot; its sequence number is the snapshot's. The node store and
    /// the hash indexes are sized for the snapshot up front (no rehashing while loading).
    pub fn from_snapshot(snapshot: &Snapshot) -> Graph {
        Graph::from_resources(
            snapshot.seq,
            snapshot.resources.len(),
            snapshot.resources.iter().cloned(),
        )
    }

    /// Builds a graph from the resources of a snapshot taken at `seq`, as they come (from a
    /// decoder running on another thread, say); sized for `capacity` resources up front.
    pub fn from_resources(
        seq: u64,
        capacity: usize,
        resources: impl IntoIterator<Item = Arc<Resource>>,
    ) -> Graph {
        let n = capacity;
        let mut graph = Graph {
            g: StableDiGraph::with_capacity(n, n.saturating_mul(EDGES_PER_NODE_HINT)),
            by_uid: HashTable::with_capacity(n),
            by_key_hash: HashTable::with_capacity(n),
            ..Graph::default()
        };
        for r in resources {
            graph.upsert_inner(&r);
        }
        graph.seq = seq;
        graph
    }

    /// The whole resource set at the current sequence number. Copies only `Arc`s, so it is cheap
    /// enough to take under a read lock; encode it after releasing the lock.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            taken_at_ms: now_ms(),
            resources: self.g.node_weights().cloned().collect(),
        }
    }

    /// UIDs of `kind` (in `namespace`, or in every namespace) that are not in `seen`: what a
    /// completed relist says was deleted while nobody watched.
    pub fn stale(&self, kind: &Kind, namespace: Option<&str>, seen: &HashSet<Uid>) -> Vec<Uid> {
        self.members(kind, namespace)
            .filter_map(|i| {
                let r = &self.g[i];
                (!seen.contains(&r.uid)).then(|| r.uid.clone())
            })
            .collect()
    }

    /// Node indexes of `kind`, in `namespace` when given, in key order.
    pub(crate) fn keys_of<'a>(
        &'a self,
        kind: &'a Kind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = NodeIndex> + 'a {
        self.buckets(kind, namespace)
            .flat_map(move |set| self.sorted_by_name(set).map(|(_, i)| i))
    }

    /// Kinds present, in kind order.
    pub(crate) fn kind_counts_keys(&self) -> Vec<Kind> {
        self.kind_counts.keys().cloned().collect()
    }

    /// Counts per kind, per edge kind and of dangling references.
    pub fn stats(&self) -> GraphStats {
        let mut dangling: BTreeMap<EdgeKind, usize> = BTreeMap::new();
        for waiting in self.pending_key.values().chain(self.pending_uid.values()) {
            for p in waiting {
                *dangling.entry(p.edge).or_default() += 1;
            }
        }
        for (_, edge) in self.selectors_matching_nothing() {
            *dangling.entry(edge).or_default() += 1;
        }
        GraphStats {
            nodes_by_kind: self
                .kind_counts
                .iter()
                .map(|(k, &n)| (k.clone(), n))
                .collect(),
            edges_by_kind: self
                .edge_counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(&k, &n)| (k, n))
                .collect(),
            dangling_by_edge: dangling.into_iter().collect(),
        }
    }

    /// Every edge as `(from, to, kind)`, for comparing graphs.
    pub fn edge_set(&self) -> BTreeSet<(Uid, Uid, EdgeKind)> {
        (&self.g)
            .edge_references()
            .map(|e| {
                (
                    self.g[e.source()].uid.clone(),
                    self.g[e.target()].uid.clone(),
                    e.weight().kind,
                )
            })
            .collect()
    }

    /// Every node as its UID, for comparing graphs.
    pub fn node_set(&self) -> BTreeSet<Uid> {
        self.g.node_weights().map(|r| r.uid.clone()).collect()
    }

    /// The graph's exact shape: each node slot's UID with its outgoing and incoming edge slots
    /// in iteration order, each edge slot's ends and weight, key order and the sequence number.
    /// Two graphs with equal layouts answer every query alike and assign the same slots next.
    pub(crate) fn layout(&self) -> GraphLayout {
        use petgraph::visit::{EdgeIndexable, NodeIndexable};
        let nodes = (0..self.g.node_bound())
            .map(NodeIndex::new)
            .map(|i| {
                self.g.node_weight(i).map(|r| {
                    let out = self.g.edges_directed(i, Outgoing).map(|e| e.id().index());
                    let inc = self.g.edges_directed(i, Incoming).map(|e| e.id().index());
                    (r.uid.clone(), out.collect(), inc.collect())
                })
            })
            .collect();
        let edges = (0..EdgeIndexable::edge_bound(&self.g))
            .map(EdgeIndex::new)
            .map(|e| {
                let (a, b) = self.g.edge_endpoints(e)?;
                Some((a.index(), b.index(), self.g[e]))
            })
            .collect();
        let keys = self
            .key_range(Bound::Unbounded)
            .map(|(_, i)| i.index())
            .collect();
        GraphLayout {
            nodes,
            edges,
            keys,
            seq: self.seq,
            pending: self.pending_count(),
        }
    }

    /// Number of pending references (waiting for a target), for leak checks.
    pub fn pending_count(&self) -> usize {
        self.pending_key
            .values()
            .chain(self.pending_uid.values())
            .map(Vec::len)
            .sum()
    }

    /// Pending references as `(declarer, edge kind, target description, target kind)`.
    pub(crate) fn pending(&self) -> impl Iterator<Item = (NodeIndex, EdgeKind, String, Kind)> + '_ {
        let by_key = self.pending_key.iter().flat_map(|(key, waiting)| {
            waiting
                .iter()
                .map(move |p| (p.declarer, p.edge, key.to_string(), key.kind.clone()))
        });
        let by_uid = self.pending_uid.iter().flat_map(move |(uid, waiting)| {
            waiting.iter().map(move |p| {
                let (kind, name) = self.g[p.declarer]
                    .references
                    .iter()
                    .find_map(|r| match &r.target {
                        Target::Uid { uid: u, kind, name } if u == uid => {
                            Some((kind.clone(), name.clone()))
                        }
                        _ => None,
                    })
                    .unwrap_or((Kind::Other(Str::default()), Str::default()));
                (
                    p.declarer,
                    p.edge,
                    format!("uid:{uid} ({kind}/{name})"),
                    kind,
                )
            })
        });
        by_key.chain(by_uid)
    }

    /// Selector references that match nothing and should (a Service with a selector and no Pods).
    pub(crate) fn selectors_matching_nothing(
        &self,
    ) -> impl Iterator<Item = (NodeIndex, EdgeKind)> + '_ {
        self.selector_index.declarers().flat_map(move |idx| {
            self.g[idx]
                .references
                .iter()
                .filter_map(move |r| match &r.target {
                    Target::Selector {
                        empty_selects_all: false,
                        ..
                    } => {
                        let has_edge = self
                            .g
                            .edges_directed(idx, Outgoing)
                            .any(|e| e.weight().kind == r.edge && e.weight().via == Via::Selector);
                        (!has_edge).then_some((idx, r.edge))
                    }
                    _ => None,
                })
        })
    }

    // ---- applying -------------------------------------------------------------------------

    fn upsert_inner(&mut self, r: &Arc<Resource>) -> Option<Applied> {
        let Some(idx) = self.index_of(&r.uid) else {
            self.insert_new(r);
            return Some(Applied::Added);
        };
        let old = self.g[idx].clone();
        if *old == **r {
            return None;
        }
        if old.kind != r.kind || old.namespace != r.namespace || old.name != r.name {
            // Identity changed under the same UID: treat as a removal and a fresh insertion.
            self.remove_node(idx);
            self.insert_new(r);
            return Some(Applied::Updated);
        }
        // Most updates (status, resourceVersion) change no reference: then the node's own edges
        // and pending references stay as they are, and only the weight is swapped.
        let references_changed = old.references != r.references || old.owners != r.owners;
        if references_changed {
            self.undeclare(idx, &old);
        }
        let labels_changed = old.labels != r.labels;
        if labels_changed {
            let by_others: Vec<EdgeIndex> = self
                .incident(idx)
                .into_iter()
                .filter(|&e| {
                    let w = self.g[e];
                    w.via == Via::Selector && self.declarer(e) != idx
                })
                .collect();
            for e in by_others {
                self.unlink(e);
            }
            self.selector_index.remove_object(idx, &old);
        }
        if old.release() != r.release() {
            self.unindex_release(idx, old.release());
            self.index_release(idx, r.release());
        }
        self.g[idx] = r.clone();
        if labels_changed {
            // Before `declare`, which files every node of a kind (this one included) by an
            // anchor key it sees for the first time.
            self.selector_index.add_object(idx, r);
        }
        if references_changed {
            self.declare(idx, r);
        }
        if labels_changed {
            self.match_selectors_for(idx);
        }
        Some(Applied::Updated)
    }

    fn delete_inner(&mut self, uid: &Uid) -> Option<Applied> {
        let idx = self.index_of(uid)?;
        let key = self.g[idx].key();
        self.remove_node(idx);
        Some(Applied::Removed(key))
    }

    fn insert_new(&mut self, r: &Arc<Resource>) {
        let idx = self.g.add_node(r.clone());
        let key = r.key();
        let g = &self.g;
        self.by_uid
            .insert_unique(uid_hash(&r.uid), idx, |&i| uid_hash(&g[i].uid));
        self.index_release(idx, r.release());
        *self.kind_counts.entry(r.kind.clone()).or_default() += 1;
        *self.ns_counts.entry(r.namespace.clone()).or_default() += 1;
        if let Some(waiting) = self.pending_uid.remove(&r.uid) {
            for p in waiting {
                self.link(p.declarer, idx, p.edge, p.reverse, Via::Uid);
            }
        }
        if let Some(waiting) = self.pending_key.remove(&key) {
            for p in waiting {
                self.link(p.declarer, idx, p.edge, p.reverse, Via::Key);
            }
        }
        let g = &self.g;
        match self.by_key_hash.entry(
            key_hash(&key),
            |&i| g[i].parts() == key.parts(),
            |&i| key_hash_parts(g[i].parts()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = idx,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(idx);
            }
        }
        self.by_key
            .entry(r.kind.clone())
            .or_default()
            .entry(r.namespace.clone())
            .or_default()
            .insert(idx);
        // Before `declare` (see `upsert_inner`).
        self.selector_index.add_object(idx, r);
        self.declare(idx, r);
        self.match_selectors_for(idx);
    }

    fn remove_node(&mut self, idx: NodeIndex) {
        let old = self.g[idx].clone();
        let key = old.key();
        self.undeclare(idx, &old);
        self.selector_index.remove_object(idx, &old);
        for e in self.incident(idx) {
            let w = self.g[e];
            let pending = PendingRef {
                declarer: self.declarer(e),
                edge: w.kind,
                reverse: w.reverse,
            };
            match w.via {
                Via::Uid => self
                    .pending_uid
                    .entry(old.uid.clone())
                    .or_default()
                    .push(pending),
                Via::Key => self
                    .pending_key
                    .entry(key.clone())
                    .or_default()
                    .push(pending),
                Via::Selector => {}
            }
            self.unlink(e);
        }
        let g = &self.g;
        if let Ok(entry) = self
            .by_uid
            .find_entry(uid_hash(&old.uid), |&i| g[i].uid == old.uid)
        {
            entry.remove();
        }
        // Does this node hold its key? (Another node may have taken it: recreated under a new
        // UID before this one's deletion arrived.) Both key indexes are cleared before the node
        // goes, while its weight can still be compared.
        let holds_key = self.index_of_key(&key) == Some(idx);
        if holds_key && let Ok(entry) = self.by_key_hash.find_entry(key_hash(&key), |&i| i == idx) {
            entry.remove();
        }
        if let Some(by_ns) = self.by_key.get_mut(&old.kind) {
            if let Some(set) = by_ns.get_mut(old.namespace.as_str()) {
                set.remove(&idx);
                if set.is_empty() {
                    by_ns.remove(old.namespace.as_str());
                }
            }
            if by_ns.is_empty() {
                self.by_key.remove(&old.kind);
            }
        }
        self.g.remove_node(idx);
        if !holds_key
            && let Some(other) = self.index_of_key(&key)
            && let Some(waiting) = self.pending_key.remove(&key)
        {
            for p in waiting {
                self.link(p.declarer, other, p.edge, p.reverse, Via::Key);
            }
        }
        self.unindex_release(idx, old.release());
        decrement(&mut self.kind_counts, &old.kind);
        decrement(&mut self.ns_counts, &old.namespace);
    }

    /// Derives edges (or pending references) from every reference `r` declares.
    fn declare(&mut self, idx: NodeIndex, r: &Resource) {
        for (edge, reverse, target) in declared(r) {
            match target {
                Declared::Uid(uid) => match self.index_of(uid) {
                    Some(t) => self.link(idx, t, edge, reverse, Via::Uid),
                    None => self
                        .pending_uid
                        .entry(uid.clone())
                        .or_default()
                        .push(PendingRef {
                            declarer: idx,
                            edge,
                            reverse,
                        }),
                },
                Declared::Key(key) => match self.index_of_key(key) {
                    Some(t) => self.link(idx, t, edge, reverse, Via::Key),
                    None => self
                        .pending_key
                        .entry(key.clone())
                        .or_default()
                        .push(PendingRef {
                            declarer: idx,
                            edge,
                            reverse,
                        }),
                },
                Declared::Selector(kind, selector, empty_selects_all) => {
                    let place = SelectorIndex::place(selector, empty_selects_all);
                    let new_key = self
                        .selector_index
                        .add_selector(&r.namespace, kind, &place, idx);
                    let candidates: Vec<NodeIndex> = match place {
                        Place::Nowhere => continue,
                        Place::Unanchored => self.members(kind, Some(&r.namespace)).collect(),
                        Place::Anchored(key, value) => {
                            if new_key {
                                let all: Vec<NodeIndex> = self.members(kind, None).collect();
                                for t in all {
                                    self.selector_index.file_by(t, &self.g[t], key);
                                }
                            }
                            self.selector_index
                                .targets(&r.namespace, kind, key, value)
                                .to_vec()
                        }
                    };
                    for t in candidates {
                        let target = &self.g[t];
                        if target.kind == *kind
                            && target.namespace == r.namespace
                            && selector.matches_with_empty(&target.labels, empty_selects_all)
                        {
                            self.link(idx, t, edge, reverse, Via::Selector);
                        }
                    }
                }
            }
        }
    }

    /// Removes every edge and pending reference `old` (the node's previous state) declared.
    fn undeclare(&mut self, idx: NodeIndex, old: &Resource) {
        let own_edges: Vec<EdgeIndex> = self
            .incident(idx)
            .into_iter()
            .filter(|&e| self.declarer(e) == idx)
            .collect();
        for e in own_edges {
            self.unlink(e);
        }
        for (_, _, target) in declared(old) {
            match target {
                Declared::Uid(uid) => drop_pending(&mut self.pending_uid, uid, idx),
                Declared::Key(key) => drop_pending(&mut self.pending_key, key, idx),
                Declared::Selector(kind, selector, empty_selects_all) => {
                    self.selector_index.remove_selector(
                        &old.namespace,
                        kind,
                        &SelectorIndex::place(selector, empty_selects_all),
                        idx,
                    );
                }
            }
        }
    }

    /// Links every selector in `idx`'s namespace that targets its kind and matches it.
    fn match_selectors_for(&mut self, idx: NodeIndex) {
        let r = &self.g[idx];
        let mut selecting = Vec::new();
        self.selector_index
            .selectors_for(&r.namespace, &r.kind, &r.labels, &mut selecting);
        if selecting.is_empty() {
            return;
        }
        selecting.sort_unstable();
        selecting.dedup();
        let mut links = Vec::new();
        for s in selecting {
            if self.g[s].namespace != r.namespace {
                continue;
            }
            for reference in &self.g[s].references {
                if let Target::Selector {
                    kind,
                    selector,
                    empty_selects_all,
                } = &reference.target
                    && *kind == r.kind
                    && selector.matches_with_empty(&r.labels, *empty_selects_all)
                {
                    links.push((s, reference.edge, reference.reverse));
                }
            }
        }
        for (s, edge, reverse) in links {
            self.link(s, idx, edge, reverse, Via::Selector);
        }
    }

    /// Every edge touching `idx`, once (self-loops appear in both directions).
    fn incident(&self, idx: NodeIndex) -> Vec<EdgeIndex> {
        let mut edges: Vec<EdgeIndex> = self
            .g
            .edges_directed(idx, Outgoing)
            .chain(self.g.edges_directed(idx, Incoming))
            .map(|e| e.id())
            .collect();
        edges.sort_unstable();
        edges.dedup();
        edges
    }

    fn declarer(&self, e: EdgeIndex) -> NodeIndex {
        let (a, b) = self
            .g
            .edge_endpoints(e)
            .unwrap_or_else(|| unreachable!("edge index from this graph"));
        if self.g[e].reverse { b } else { a }
    }

    fn link(
        &mut self,
        declarer: NodeIndex,
        target: NodeIndex,
        kind: EdgeKind,
        reverse: bool,
        via: Via,
    ) {
        let (a, b) = if reverse {
            (target, declarer)
        } else {
            (declarer, target)
        };
        let data = EdgeData { kind, reverse, via };
        if self.g.edges_connecting(a, b).any(|e| *e.weight() == data) {
            return;
        }
        self.g.add_edge(a, b, data);
        *self.edge_counts.entry(kind).or_default() += 1;
        if let Some(log) = &mut self.edge_log {
            log.push((a, b, kind, true));
        }
    }

    fn unlink(&mut self, e: EdgeIndex) {
        let Some((a, b)) = self.g.edge_endpoints(e) else {
            return;
        };
        let Some(data) = self.g.remove_edge(e) else {
            return;
        };
        decrement(&mut self.edge_counts, &data.kind);
        if let Some(log) = &mut self.edge_log {
            log.push((a, b, data.kind, false));
        }
    }

    fn index_release(&mut self, idx: NodeIndex, release: &str) {
        if !release.is_empty() {
            self.by_release
                .entry(release.into())
                .or_default()
                .insert(idx);
        }
    }

    fn unindex_release(&mut self, idx: NodeIndex, release: &str) {
        if let Some(set) = self.by_release.get_mut(release) {
            set.remove(&idx);
            if set.is_empty() {
                self.by_release.remove(release);
            }
        }
    }

    /// Nets out the edge log of one change (an edge removed and derived again is no event) and
    /// reports what is left.
    fn emit_edges(
        &self,
        log: Vec<(NodeIndex, NodeIndex, EdgeKind, bool)>,
        op: &ChangeOp,
        seq: u64,
        ts_ms: i64,
        sink: &mut impl EventSink,
    ) {
        let removed_uid = match op {
            ChangeOp::Delete { uid, .. } => Some(uid),
            ChangeOp::Upsert(_) => None,
        };
        // Resolve node indexes to UIDs now; a removed node's index may be vacant already.
        let uid_of = |i: NodeIndex| -> Option<Uid> { self.g.node_weight(i).map(|r| r.uid.clone()) };
        let mut net: BTreeMap<(Uid, Uid, EdgeKind), i32> = BTreeMap::new();
        for (a, b, kind, added) in log {
            let (Some(from), Some(to)) = (
                uid_of(a).or_else(|| removed_uid.cloned()),
                uid_of(b).or_else(|| removed_uid.cloned()),
            ) else {
                continue;
            };
            *net.entry((from, to, kind)).or_default() += if added { 1 } else { -1 };
        }
        for ((from, to, kind), n) in net {
            let view = EdgeView { kind, from, to };
            let change = match n.cmp(&0) {
                std::cmp::Ordering::Greater => GraphChange::EdgeAdded(view),
                std::cmp::Ordering::Less => GraphChange::EdgeRemoved(view),
                std::cmp::Ordering::Equal => continue,
            };
            sink.record(GraphEvent { seq, ts_ms, change });
        }
    }
}

/// A target as declared: by UID, by key or by selector.
enum Declared<'a> {
    Uid(&'a Uid),
    Key(&'a ObjectKey),
    Selector(&'a Kind, &'a LabelSelector, bool),
}

/// Everything `r` declares, as (edge kind, reverse, target): its owner references (each an
/// `owns` edge from the owner) and its references.
fn declared(r: &Resource) -> impl Iterator<Item = (EdgeKind, bool, Declared<'_>)> {
    let owners = r
        .owners
        .iter()
        .map(|o| (EdgeKind::Owns, true, Declared::Uid(&o.uid)));
    let references = r.references.iter().map(|x| {
        let target = match &x.target {
            Target::Uid { uid, .. } => Declared::Uid(uid),
            Target::Key(key) => Declared::Key(key),
            Target::Selector {
                kind,
                selector,
                empty_selects_all,
            } => Declared::Selector(kind, selector, *empty_selects_all),
        };
        (x.edge, x.reverse, target)
    });
    owners.chain(references)
}

fn key_hash(key: &ObjectKey) -> u64 {
    key_hash_parts(key.parts())
}

fn key_hash_parts(parts: (&Kind, &str, &str)) -> u64 {
    FxBuildHasher.hash_one((parts.0.as_str(), parts.1, parts.2))
}

fn uid_hash(uid: &Uid) -> u64 {
    FxBuildHasher.hash_one(uid.as_str())
}

fn drop_pending<K: std::hash::Hash + Eq>(
    map: &mut FxHashMap<K, Vec<PendingRef>>,
    key: &K,
    idx: NodeIndex,
) {
    if let Some(waiting) = map.get_mut(key) {
        waiting.retain(|p| p.declarer != idx);
        if waiting.is_empty() {
            map.remove(key);
        }
    }
}

fn decrement<K: Ord>(counts: &mut BTreeMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}
