//! Keys as borrowed parts: anything with a kind, namespace and name compares and hashes through
//! [`KeyView`] without building an [`ObjectKey`].

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
