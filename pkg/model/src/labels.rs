//! `Labels`: a compact, sorted string map for labels and kept annotations.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Str;

/// A sorted map of label (or annotation) keys to values, stored as one vector. Smaller than a
/// `BTreeMap` for the handful of entries objects carry, and iterates in key order, so every view
/// built from it is deterministic.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Labels(Vec<(Str, Str)>);

impl Labels {
    /// An empty map.
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub fn insert(&mut self, key: impl Into<Str>, value: impl Into<Str>) {
        let key = intern(key.into());
        let value = value.into();
        match self
            .0
            .binary_search_by(|(k, _)| k.as_str().cmp(key.as_str()))
        {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Str> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => Some(self.0.remove(i).1),
            Err(_) => None,
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Releases spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// A map of `entries` whose keys are interned already: sorted by key, the last of equal
    /// keys kept, as with repeated inserts. Entries that come sorted and unique (every encoded
    /// map) are kept as they are.
    fn from_entries(mut entries: Vec<(Str, Str)>) -> Self {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            // Last write wins, as with repeated inserts.
            entries.reverse();
            entries.dedup_by(|a, b| a.0 == b.0);
            entries.reverse();
        }
        entries.shrink_to_fit();
        Labels(entries)
    }

    /// Heap bytes owned by this map (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<(Str, Str)>()
            + self
                .0
                .iter()
                .map(|(k, v)| crate::str_heap(k) + crate::str_heap(v))
                .sum::<usize>()
    }
}

impl<K: Into<Str>, V: Into<Str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels::from_entries(
            iter.into_iter()
                .map(|(k, v)| (intern(k.into()), v.into()))
                .collect(),
        )
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Labels, A::Error> {
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some((k, v)) = access.next_entry::<Str, Str>()? {
                    entries.push((intern(k), v));
                }
                Ok(Labels::from_entries(entries))
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// Label and annotation keys seen on most objects. A key equal to one of these is stored as a
/// reference to the static string instead of a heap copy (most of them are longer than the 24
/// bytes a [`Str`] holds inline).
const WELL_KNOWN_KEYS: &[&str] = &[
    "app",
    "app.kubernetes.io/component",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "controller-revision-hash",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deployment.kubernetes.io/revision",
    "endpointslice.kubernetes.io/managed-by",
    "helm.sh/chart",
    "job-name",
    "kubernetes.io/hostname",
    "kubernetes.io/metadata.name",
    "kubernetes.io/os",
    "kubernetes.io/service-name",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "pod-template-generation",
    "pod-template-hash",
    "statefulset.kubernetes.io/pod-name",
    "storageclass.kubernetes.io/is-default-class",
];

fn intern(key: Str) -> Str {
    if !key.is_heap_allocated() {
        return key;
    }
    match WELL_KNOWN_KEYS.binary_search(&key.as_str()) {
        Ok(i) => Str::const_new(WELL_KNOWN_KEYS[i]),
        Err(_) => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_insert_get_remove() {
        let mut labels: Labels = [("b", "2"), ("a", "1"), ("b", "3")].into_iter().collect();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            vec![("a", "1"), ("b", "3")]
        );
        labels.insert("c", "4");
        labels.insert("a", "0");
        assert_eq!(labels.get("a"), Some("0"));
        assert_eq!(labels.remove("b").as_deref(), Some("3"));
        assert_eq!(labels.len(), 2);
        assert!(!labels.contains_key("b"));
    }

    #[test]
    fn well_known_keys_are_sorted_and_interned() {
        assert!(WELL_KNOWN_KEYS.windows(2).all(|w| w[0] < w[1]));
        let labels: Labels = [("app.kubernetes.io/managed-by", "Helm")]
            .into_iter()
            .collect();
        let (k, _) = labels.0.first().unwrap();
        assert!(!k.is_heap_allocated(), "interned: {k:?}");
        assert_eq!(
            labels.heap_bytes(),
            labels.0.capacity() * std::mem::size_of::<(Str, Str)>()
        );
        assert_eq!(labels.get("app.kubernetes.io/managed-by"), Some("Helm"));
    }

    #[test]
    fn json_round_trip() {
        let labels: Labels = [("app", "web"), ("tier", "fe")].into_iter().collect();
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(json, r#"{"app":"web","tier":"fe"}"#);
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), labels);
        // Decoded maps that are not in order, or repeat a key, are put in order, last wins.
        let unordered: Labels =
            serde_json::from_str(r#"{"tier":"x","app":"web","tier":"fe"}"#).unwrap();
        assert_eq!(unordered, labels);
        let interned: Labels =
            serde_json::from_str(r#"{"app.kubernetes.io/managed-by":"Helm"}"#).unwrap();
        assert!(
            !interned.0[0].0.is_heap_allocated(),
            "decoded keys are interned"
        );
    }
}
