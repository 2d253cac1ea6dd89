//! The key-ordered index: entries hold the node's own `Arc<Resource>` and compare by its key
//! (kind, namespace, name), so the index stores no copy of names; lookups by an [`ObjectKey`]
//! go through the [`KeyView`] trait object.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use astrolabe_model::{Kind, ObjectKey, Resource};

/// Anything with a key: kind, namespace, name.
pub(crate) trait KeyView {
    fn parts(&self) -> (&Kind, &str, &str);
}

impl KeyView for ObjectKey {
    fn parts(&self) -> (&Kind, &str, &str) {
        (&self.kind, &self.namespace, &self.name)
    }
}

impl KeyView for Resource {
    fn parts(&self) -> (&Kind, &str, &str) {
        (&self.kind, &self.namespace, &self.name)
    }
}

/// An index entry: a resource, ordered by its key.
#[derive(Clone)]
pub(crate) struct KeyEntry(pub(crate) Arc<Resource>);

impl KeyView for KeyEntry {
    fn parts(&self) -> (&Kind, &str, &str) {
        (&self.0.kind, &self.0.namespace, &self.0.name)
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for KeyEntry {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialEq for KeyEntry {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for KeyEntry {}

impl PartialOrd for KeyEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}
