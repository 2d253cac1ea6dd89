//! Candidate lookup for selector references, so that neither a new selector nor a new object is
//! tested against everything in its namespace.
//!
//! Most selectors name a label every match must carry (their *anchor*, see
//! [`LabelSelector::anchor`]): a Service selecting `app=web` only ever matches objects labelled
//! `app=web`. So:
//! - a selector with an anchor is filed under (namespace, target kind, anchor key, value); an
//!   object looks up one bucket per label it carries. Selectors without an anchor (only `NotIn`,
//!   `Exists`, multi-valued `In`…) are filed per (namespace, target kind) and tried against every
//!   object there, as before;
//! - objects of a kind some selector targets are filed under (namespace, kind, key, value) for
//!   every key some selector of that kind anchors on (the first such selector files the objects
//!   already there); a new selector looks up its anchor's bucket.
//!
//! Buckets are keyed by a hash, not by the strings: the index only proposes candidates, and the
//! graph tests each (namespace, kind and the whole selector) before it links anything, so a hash
//! collision costs a test, never a wrong edge. Buckets are vectors: removing an entry scans its
//! bucket, which holds the objects of one kind sharing one label value in one namespace.
//!
//! [`LabelSelector::anchor`]: astrolabe_model::LabelSelector::anchor

use std::hash::BuildHasher;

use astrolabe_model::{Kind, LabelSelector, Labels, Resource, Str};
use petgraph::stable_graph::NodeIndex;

use crate::graph::ALL_NAMESPACES;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

/// The selector and target indexes. Owned by the graph, which keeps them in step with its nodes.
#[derive(Clone, Default)]
pub(crate) struct SelectorIndex {
    /// Every node that declares a selector reference (filed or not: an empty selector that
    /// selects nothing is reported as dangling).
    declarers: FxHashSet<NodeIndex>,
    /// Declarers of selectors with an anchor, by (namespace, target kind, anchor key, value).
    anchored: FxHashMap<u64, Vec<NodeIndex>>,
    /// Declarers of selectors without an anchor that can match something, by (namespace, target
    /// kind).
    unanchored: FxHashMap<u64, Vec<NodeIndex>>,
    /// The keys selectors anchor on, per target kind: objects of the kind are filed by them.
    keys: FxHashMap<Kind, Vec<Str>>,
    /// Objects by (namespace, kind, key, value), for each key in `keys` of their kind.
    targets: FxHashMap<u64, Vec<NodeIndex>>,
    /// Selectors filed under [`ALL_NAMESPACES`] (objects look there too while there are any).
    every_namespace: usize,
}

/// Where a selector is filed, as [`SelectorIndex::place`] decides.
pub(crate) enum Place<'a> {
    /// It can match nothing (an empty selector that selects nothing): not filed.
    Nowhere,
    /// Under its anchor.
    Anchored(&'a str, &'a str),
    /// With the selectors tried against every object.
    Unanchored,
}

impl SelectorIndex {
    /// Where a selector (`empty_selects_all` as declared) is filed.
    pub(crate) fn place(selector: &LabelSelector, empty_selects_all: bool) -> Place<'_> {
        if selector.is_empty() {
            return if empty_selects_all {
                Place::Unanchored
            } else {
                Place::Nowhere
            };
        }
        match selector.anchor() {
            Some((key, value)) => Place::Anchored(key, value),
            None => Place::Unanchored,
        }
    }

    /// Files `declarer`'s selector on objects of `kind` in `namespace`. Returns `true` when
    /// `kind`'s objects are not yet filed by the selector's anchor key: the caller then files
    /// every existing object of `kind` with [`SelectorIndex::file_by`].
    pub(crate) fn add_selector(
        &mut self,
        namespace: &str,
        kind: &Kind,
        place: &Place<'_>,
        declarer: NodeIndex,
    ) -> bool {
        self.declarers.insert(declarer);
        if namespace == ALL_NAMESPACES && !matches!(place, Place::Nowhere) {
            self.every_namespace += 1;
        }
        let scope = scope_hash(namespace, kind);
        match *place {
            Place::Nowhere => false,
            Place::Unanchored => {
                self.unanchored.entry(scope).or_default().push(declarer);
                false
            }
            Place::Anchored(key, value) => {
                self.anchored
                    .entry(anchor_hash(scope, key, value))
                    .or_default()
                    .push(declarer);
                let keys = self.keys.entry(kind.clone()).or_default();
                let new = !keys.iter().any(|k| k == key);
                if new {
                    keys.push(key.into());
                }
                new
            }
        }
    }

    /// Undoes [`SelectorIndex::add_selector`] (every filing of `declarer` at that place; call it
    /// for every selector the node declared, as the graph does when it undeclares a node).
    pub(crate) fn remove_selector(
        &mut self,
        namespace: &str,
        kind: &Kind,
        place: &Place<'_>,
        declarer: NodeIndex,
    ) {
        self.declarers.remove(&declarer);
        if namespace == ALL_NAMESPACES && !matches!(place, Place::Nowhere) {
            self.every_namespace = self.every_namespace.saturating_sub(1);
        }
        let scope = scope_hash(namespace, kind);
        match *place {
            Place::Nowhere => {}
            Place::Unanchored => remove_from(&mut self.unanchored, scope, declarer),
            Place::Anchored(key, value) => {
                remove_from(&mut self.anchored, anchor_hash(scope, key, value), declarer);
            }
        }
    }

    /// Every node that declares a selector reference, in no particular order.
    pub(crate) fn declarers(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.declarers.iter().copied()
    }

    /// Appends to `out` the declarers whose selectors may match an object of `kind` in
    /// `namespace` with `labels` (possibly more than once; possibly a few that do not match).
    pub(crate) fn selectors_for(
        &self,
        namespace: &str,
        kind: &Kind,
        labels: &Labels,
        out: &mut Vec<NodeIndex>,
    ) {
        if self.anchored.is_empty() && self.unanchored.is_empty() {
            return;
        }
        self.selectors_in(namespace, kind, labels, out);
        if self.every_namespace > 0 {
            self.selectors_in(ALL_NAMESPACES, kind, labels, out);
        }
    }

    /// [`SelectorIndex::selectors_for`] among the selectors filed under `namespace`.
    fn selectors_in(
        &self,
        namespace: &str,
        kind: &Kind,
        labels: &Labels,
        out: &mut Vec<NodeIndex>,
    ) {
        let scope = scope_hash(namespace, kind);
        if let Some(all) = self.unanchored.get(&scope) {
            out.extend_from_slice(all);
        }
        if self.anchored.is_empty() {
            return;
        }
        for (key, value) in labels.iter() {
            if let Some(found) = self.anchored.get(&anchor_hash(scope, key, value)) {
                out.extend_from_slice(found);
            }
        }
    }

    /// Objects of `kind` in `namespace` filed under `key` = `value` (a superset of those that
    /// carry it, when hashes collide). `key` must have been filed ([`SelectorIndex::add_selector`]).
    pub(crate) fn targets(
        &self,
        namespace: &str,
        kind: &Kind,
        key: &str,
        value: &str,
    ) -> &[NodeIndex] {
        self.targets
            .get(&anchor_hash(scope_hash(namespace, kind), key, value))
            .map_or(&[], Vec::as_slice)
    }

    /// Files a new object by every anchor key of its kind.
    pub(crate) fn add_object(&mut self, idx: NodeIndex, r: &Resource) {
        let Some(keys) = self.keys.get(&r.kind) else {
            return;
        };
        let scope = scope_hash(&r.namespace, &r.kind);
        for key in keys {
            file(&mut self.targets, scope, key, &r.labels, idx);
        }
    }

    /// Undoes [`SelectorIndex::add_object`] for the object's state `r` when it was filed.
    pub(crate) fn remove_object(&mut self, idx: NodeIndex, r: &Resource) {
        let Some(keys) = self.keys.get(&r.kind) else {
            return;
        };
        let scope = scope_hash(&r.namespace, &r.kind);
        for key in keys {
            if let Some(value) = r.labels.get(key) {
                remove_from(&mut self.targets, anchor_hash(scope, key, value), idx);
            }
        }
    }

    /// Files an object already in the graph by one newly used anchor key.
    pub(crate) fn file_by(&mut self, idx: NodeIndex, r: &Resource, key: &str) {
        let scope = scope_hash(&r.namespace, &r.kind);
        file(&mut self.targets, scope, key, &r.labels, idx);
    }
}

/// Files `idx` under `key` and its value in `labels`, if it carries the key.
fn file(
    targets: &mut FxHashMap<u64, Vec<NodeIndex>>,
    scope: u64,
    key: &str,
    labels: &Labels,
    idx: NodeIndex,
) {
    if let Some(value) = labels.get(key) {
        targets
            .entry(anchor_hash(scope, key, value))
            .or_default()
            .push(idx);
    }
}

fn scope_hash(namespace: &str, kind: &Kind) -> u64 {
    FxBuildHasher.hash_one((namespace, kind.as_str()))
}

fn anchor_hash(scope: u64, key: &str, value: &str) -> u64 {
    FxBuildHasher.hash_one((scope, key, value))
}

/// Removes every `idx` from the bucket at `at`, and the bucket once empty.
fn remove_from(map: &mut FxHashMap<u64, Vec<NodeIndex>>, at: u64, idx: NodeIndex) {
    if let Some(bucket) = map.get_mut(&at) {
        bucket.retain(|&i| i != idx);
        if bucket.is_empty() {
            map.remove(&at);
        }
    }
}
