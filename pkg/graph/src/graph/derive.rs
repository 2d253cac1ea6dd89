//! Edge derivation: the edges (or pending references) a node's references make, and the edges
//! themselves, added and removed with their counts, and the edge events of one change.

use std::collections::BTreeMap;

use astrolabe_model::{
    ChangeOp, EdgeKind, Kind, LabelSelector, Namespaces, ObjectKey, Resource, Str, Target, Uid,
};
use petgraph::Direction::{Incoming, Outgoing};
use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use super::pending::{PendingRef, drop_pending, wait_for};
use super::stats::decrement;
use super::{EdgeData, Graph, Via};
use crate::event::{EdgeView, EventSink, GraphChange, GraphEvent};
use crate::selectors::{Place, SelectorIndex};

impl Graph {
    /// Derives edges (or pending references) from every reference `r` declares.
    pub(super) fn declare(&mut self, idx: NodeIndex, r: &Resource) {
        for (edge, reverse, target) in declared(r) {
            let waiting = PendingRef {
                declarer: idx,
                edge,
                reverse,
            };
            match target {
                Declared::Uid(uid) => match self.index_of(uid) {
                    Some(t) => self.link(idx, t, edge, reverse, Via::Uid),
                    None => wait_for(&mut self.pending_uid, uid.clone(), waiting),
                },
                Declared::Key(key) => match self.index_of_key(key) {
                    Some(t) => self.link(idx, t, edge, reverse, Via::Key),
                    None => wait_for(&mut self.pending_key, key.clone(), waiting),
                },
                Declared::Selector(kind, selector, empty_selects_all, scope) => {
                    let place = SelectorIndex::place(selector, empty_selects_all);
                    for filed in filings(&r.namespace, scope) {
                        let new_key = self.selector_index.add_selector(filed, kind, &place, idx);
                        // A key selectors of this kind did not anchor on yet: the kind's
                        // objects are filed by it now, whoever else later looks them up by it.
                        if let Place::Anchored(key, _) = place
                            && new_key
                        {
                            let all: Vec<NodeIndex> = self.members(kind, None).collect();
                            for t in all {
                                self.selector_index.file_by(t, &self.g[t], key);
                            }
                        }
                        let candidates: Vec<NodeIndex> = match place {
                            Place::Nowhere => continue,
                            // Every namespace: tried against every object of the kind (such
                            // selectors are few: a ServiceMonitor with `any: true`).
                            _ if filed == ALL_NAMESPACES => self.members(kind, None).collect(),
                            Place::Unanchored => self.members(kind, Some(filed)).collect(),
                            Place::Anchored(key, value) => self
                                .selector_index
                                .targets(filed, kind, key, value)
                                .to_vec(),
                        };
                        for t in candidates {
                            let target = &self.g[t];
                            if target.kind == *kind
                                && covers(&r.namespace, scope, &target.namespace)
                                && selector.matches_with_empty(&target.labels, empty_selects_all)
                            {
                                self.link(idx, t, edge, reverse, Via::Selector);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Removes every edge and pending reference `old` (the node's previous state) declared.
    pub(super) fn undeclare(&mut self, idx: NodeIndex, old: &Resource) {
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
                Declared::Selector(kind, selector, empty_selects_all, scope) => {
                    for filed in filings(&old.namespace, scope) {
                        self.selector_index.remove_selector(
                            filed,
                            kind,
                            &SelectorIndex::place(selector, empty_selects_all),
                            idx,
                        );
                    }
                }
            }
        }
    }

    /// Links every selector in `idx`'s namespace that targets its kind and matches it.
    pub(super) fn match_selectors_for(&mut self, idx: NodeIndex) {
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
            let declarer = &self.g[s];
            for reference in &declarer.references {
                if let Some((kind, selector, empty_selects_all, scope)) =
                    reference.target.as_selector()
                    && *kind == r.kind
                    && covers(&declarer.namespace, scope, &r.namespace)
                    && selector.matches_with_empty(&r.labels, empty_selects_all)
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
    pub(super) fn incident(&self, idx: NodeIndex) -> Vec<EdgeIndex> {
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

    /// The end of edge `e` that declared it.
    pub(super) fn declarer(&self, e: EdgeIndex) -> NodeIndex {
        let (a, b) = self
            .g
            .edge_endpoints(e)
            .unwrap_or_else(|| unreachable!("edge index from this graph"));
        if self.g[e].reverse { b } else { a }
    }

    pub(super) fn link(
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

    pub(super) fn unlink(&mut self, e: EdgeIndex) {
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

    /// Nets out the edge log of one change (an edge removed and derived again is no event) and
    /// reports what is left.
    pub(super) fn emit_edges(
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

/// A target as declared: by UID, by key or by selector (with the namespaces it selects in;
/// `None`: its declarer's).
enum Declared<'a> {
    Uid(&'a Uid),
    Key(&'a ObjectKey),
    Selector(&'a Kind, &'a LabelSelector, bool, Option<&'a Namespaces>),
}

/// The namespace a selector covering every namespace is filed under in the selector index: no
/// namespace is named so (names are DNS labels).
pub(crate) const ALL_NAMESPACES: &str = "*";

/// The namespaces a selector is filed under: its declarer's, the ones it names, or
/// [`ALL_NAMESPACES`].
fn filings<'a>(declarer_namespace: &'a str, scope: Option<&'a Namespaces>) -> Vec<&'a str> {
    match scope {
        None => vec![declarer_namespace],
        Some(Namespaces::All) => vec![ALL_NAMESPACES],
        Some(Namespaces::Names(names)) => names.iter().map(Str::as_str).collect(),
    }
}

/// Whether a selector declared in `declarer_namespace` with `scope` selects in `namespace`.
fn covers(declarer_namespace: &str, scope: Option<&Namespaces>, namespace: &str) -> bool {
    match scope {
        None => declarer_namespace == namespace,
        Some(namespaces) => namespaces.contains(namespace),
    }
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
            } => Declared::Selector(kind, selector, *empty_selects_all, None),
            Target::SelectorIn {
                kind,
                selector,
                namespaces,
            } => Declared::Selector(kind, selector, true, Some(&**namespaces)),
        };
        (x.edge, x.reverse, target)
    });
    owners.chain(references)
}
