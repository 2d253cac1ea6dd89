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
//!
//! Layout: this file holds the store and the entry points that change it (apply, replay,
//! loading a snapshot); `index` the lookups by UID, key and release; `apply` node insertions,
//! updates and removals; `derive` the edges a node declares; `pending` references waiting for
//! their target; `stats` the counts, and the comparisons tests use. Queries live in [`crate::query`], which depends on this module, never
//! the reverse.

mod apply;
mod derive;
mod index;
mod pending;
mod stats;

pub use apply::update_keeps_edges;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use astrolabe_model::codec::Snapshot;
use astrolabe_model::{Change, ChangeOp, EdgeKind, Kind, ObjectKey, Resource, Str, Uid, now_ms};
use hashbrown::HashTable;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::event::{EventSink, GraphChange, GraphEvent};
use crate::selectors::SelectorIndex;
pub(crate) use derive::ALL_NAMESPACES;
use pending::PendingRef;
pub(crate) use pending::selects_something_or_should;
pub use stats::GraphStats;

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
    /// When the change `seq` was applied (Unix milliseconds); 0 when unknown (a graph built
    /// from a snapshot, before any change).
    ts_ms: i64,
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

    /// When the last change was applied (Unix milliseconds); 0 when unknown (a graph built from
    /// a snapshot, before any change).
    pub fn ts_ms(&self) -> i64 {
        self.ts_ms
    }

    /// Continues the sequence after `seq`: the next change gets at least `seq + 1`. Never moves
    /// backwards. Used after recovery (Redis knows of changes up to `seq`) and to start a fresh
    /// history above any sequence an older log may hold.
    pub fn advance_seq(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// Moves the graph's point to change `seq` applied at `ts_ms`, as replaying a change that
    /// alters nothing does (a later sequence only).
    pub fn advance_to(&mut self, seq: u64, ts_ms: i64) {
        if seq > self.seq {
            self.seq = seq;
            self.ts_ms = ts_ms;
        }
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
    /// absent UID), which consumes no sequence number, and leaves the graph unchanged when the
    /// sequence is exhausted (`u64::MAX`; sequences never wrap, and persistence keeps them far
    /// below it, see `astrolabe_persist::plausible`).
    pub fn apply(&mut self, op: ChangeOp, ts_ms: i64, sink: &mut impl EventSink) -> Option<Change> {
        let seq = self.seq.checked_add(1)?;
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
        self.seq = seq;
        self.ts_ms = ts_ms;
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
        if change.seq > self.seq {
            self.seq = change.seq;
            self.ts_ms = change.ts_ms;
        }
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
}
