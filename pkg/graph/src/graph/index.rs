//! The graph's indexes: nodes by UID and by key (hashed for lookups, ordered for listings), and
//! by Helm release.

use std::hash::BuildHasher;
use std::ops::Bound;

use astrolabe_model::{Kind, ObjectKey, Uid};
use petgraph::stable_graph::NodeIndex;
use rustc_hash::{FxBuildHasher, FxHashSet};

use super::Graph;
use crate::keys::KeyView;

impl Graph {
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
    ) -> impl Iterator<Item = (&'a astrolabe_model::Resource, NodeIndex)> + 'a {
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
    ) -> impl Iterator<Item = (&'a astrolabe_model::Resource, NodeIndex)> + 'a {
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

    pub(super) fn index_release(&mut self, idx: NodeIndex, release: &str) {
        if !release.is_empty() {
            self.by_release
                .entry(release.into())
                .or_default()
                .insert(idx);
        }
    }

    pub(super) fn unindex_release(&mut self, idx: NodeIndex, release: &str) {
        if let Some(set) = self.by_release.get_mut(release) {
            set.remove(&idx);
            if set.is_empty() {
                self.by_release.remove(release);
            }
        }
    }
}

pub(super) fn key_hash(key: &ObjectKey) -> u64 {
    key_hash_parts(key.parts())
}

pub(super) fn key_hash_parts(parts: (&Kind, &str, &str)) -> u64 {
    FxBuildHasher.hash_one((parts.0.as_str(), parts.1, parts.2))
}

pub(super) fn uid_hash(uid: &Uid) -> u64 {
    FxBuildHasher.hash_one(uid.as_str())
}
