//! Counts kept up to date on every change (for metrics and `/health`), and whole-graph
//! comparisons for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use astrolabe_model::{EdgeKind, Kind, Uid};
use petgraph::Direction::{Incoming, Outgoing};
use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use super::{EdgeData, Graph};

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

impl Graph {
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
}

/// Counts one `key` less, forgetting it at zero.
pub(super) fn decrement<K: Ord>(counts: &mut BTreeMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}
