//! Pending references: references whose target is not in the graph (yet), keyed by the missing
//! UID or key, and selectors that match nothing although they should.

use astrolabe_model::{EdgeKind, Kind, Str, Target, Uid};
use petgraph::Direction::Outgoing;
use petgraph::stable_graph::NodeIndex;
use rustc_hash::FxHashMap;

use super::{Graph, Via};

/// A reference waiting for its target to appear.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct PendingRef {
    pub(super) declarer: NodeIndex,
    pub(super) edge: EdgeKind,
    pub(super) reverse: bool,
}

impl Graph {
    /// Number of pending references (waiting for a target), for leak checks.
    pub fn pending_count(&self) -> usize {
        self.pending_key
            .values()
            .chain(self.pending_uid.values())
            .map(Vec::len)
            .sum()
    }

    /// Pending references as `(declarer, edge kind, target as declared)`. A target by UID
    /// carries the kind and name its declarer gave (an owner reference's, or a reference's).
    pub(crate) fn pending(&self) -> impl Iterator<Item = (NodeIndex, EdgeKind, Target)> + '_ {
        let by_key = self.pending_key.iter().flat_map(|(key, waiting)| {
            waiting
                .iter()
                .map(move |p| (p.declarer, p.edge, Target::Key(key.clone())))
        });
        let by_uid = self.pending_uid.iter().flat_map(move |(uid, waiting)| {
            waiting
                .iter()
                .map(move |p| (p.declarer, p.edge, self.declared_uid_target(p, uid)))
        });
        by_key.chain(by_uid)
    }

    /// The target by UID that `p`'s declarer declared for the missing `uid`.
    fn declared_uid_target(&self, p: &PendingRef, uid: &Uid) -> Target {
        let declarer = &self.g[p.declarer];
        let owner = (p.edge == EdgeKind::Owns && p.reverse)
            .then(|| declarer.owners.iter().find(|o| o.uid == *uid))
            .flatten()
            .map(|o| Target::Uid {
                uid: uid.clone(),
                kind: o.kind.clone(),
                name: o.name.clone(),
            });
        owner
            .or_else(|| {
                declarer
                    .references
                    .iter()
                    .find(|r| {
                        r.edge == p.edge
                            && r.reverse == p.reverse
                            && matches!(&r.target, Target::Uid { uid: u, .. } if u == uid)
                    })
                    .map(|r| r.target.clone())
            })
            .unwrap_or_else(|| Target::Uid {
                uid: uid.clone(),
                kind: Kind::other("", ""),
                name: Str::default(),
            })
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
                    target if selects_something_or_should(target) => {
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
}

/// Files `p` as waiting for `key` to appear.
pub(super) fn wait_for<K: std::hash::Hash + Eq>(
    map: &mut FxHashMap<K, Vec<PendingRef>>,
    key: K,
    p: PendingRef,
) {
    map.entry(key).or_default().push(p);
}

/// Forgets the references `idx` declared towards `key`.
pub(super) fn drop_pending<K: std::hash::Hash + Eq>(
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

/// Whether a selector reference that matches nothing is worth reporting: a Service's (an empty
/// one selects nothing, by design), or a non-empty selector over namespaces (a ServiceMonitor's).
pub(crate) fn selects_something_or_should(target: &Target) -> bool {
    match target {
        Target::Selector {
            empty_selects_all, ..
        } => !empty_selects_all,
        Target::SelectorIn { selector, .. } => !selector.is_empty(),
        Target::Uid { .. } | Target::Key(_) => false,
    }
}
