//! Node insertions, updates and removals: each keeps the indexes, the counts, the pending
//! references and the derived edges in step.

use std::sync::Arc;

use astrolabe_model::{Resource, Uid};
use petgraph::stable_graph::{EdgeIndex, NodeIndex};

use super::index::{key_hash, key_hash_parts, uid_hash};
use super::pending::{PendingRef, wait_for};
use super::stats::decrement;
use super::{Applied, Graph, Via};
use crate::keys::KeyView;

/// Whether updating `old` to `new` (one object) leaves every edge where it is: the same
/// identity, labels, owners and references. [`Graph::upsert`] then swaps the object's version
/// and touches no edge, which history's diff relies on (the log's patches say the same from
/// their field mask: `astrolabe_model::codec::keeps_edges`).
#[must_use]
pub fn update_keeps_edges(old: &Resource, new: &Resource) -> bool {
    same_identity(old, new) && !references_changed(old, new) && !labels_changed(old, new)
}

/// A change of kind, namespace or name under one UID: a removal and a fresh insertion.
fn same_identity(old: &Resource, new: &Resource) -> bool {
    old.kind == new.kind && old.namespace == new.namespace && old.name == new.name
}

/// What the object's own edges derive from: its references and owners.
fn references_changed(old: &Resource, new: &Resource) -> bool {
    old.references != new.references || old.owners != new.owners
}

/// What selectors of other objects match.
fn labels_changed(old: &Resource, new: &Resource) -> bool {
    old.labels != new.labels
}

impl Graph {
    pub(super) fn upsert_inner(&mut self, r: &Arc<Resource>) -> Option<Applied> {
        let Some(idx) = self.index_of(&r.uid) else {
            self.insert_new(r);
            return Some(Applied::Added);
        };
        let old = self.g[idx].clone();
        if *old == **r {
            return None;
        }
        if !same_identity(&old, r) {
            // Identity changed under the same UID: treat as a removal and a fresh insertion.
            self.remove_node(idx);
            self.insert_new(r);
            return Some(Applied::Updated);
        }
        // Most updates (status, resourceVersion) change no reference: then the node's own edges
        // and pending references stay as they are, and only the weight is swapped.
        let references_changed = references_changed(&old, r);
        if references_changed {
            self.undeclare(idx, &old);
        }
        let labels_changed = labels_changed(&old, r);
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

    pub(super) fn delete_inner(&mut self, uid: &Uid) -> Option<Applied> {
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
                Via::Uid => wait_for(&mut self.pending_uid, old.uid.clone(), pending),
                Via::Key => wait_for(&mut self.pending_key, key.clone(), pending),
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
}
