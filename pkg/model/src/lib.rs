//! Astrolabe's own resource model. No I/O and no Kubernetes types: the informers translate
//! Kubernetes objects into these, the graph stores them, persistence encodes them.
//!
//! Layout:
//! - [`kind`]: [`Kind`], the kinds Astrolabe watches.
//! - [`edge`]: [`EdgeKind`], the relationships, with stable API names.
//! - [`labels`]: [`Labels`], a compact sorted string map.
//! - [`selector`]: [`LabelSelector`], Kubernetes selector syntax and matching.
//! - [`resource`]: [`Resource`] and its identity types ([`Uid`], [`ObjectKey`]).
//! - [`reference`](mod@reference): [`Reference`], what an object points at (by UID, by key, by selector).
//! - [`change`]: [`Change`], one applied mutation.
//! - [`patch`]: [`ResourcePatch`], an update as the fields that changed (how the log keeps
//!   most updates).
//! - [`codec`]: the versioned binary encoding of changes and snapshots.

pub mod change;
pub mod codec;
pub mod edge;
pub mod kind;
pub mod labels;
pub mod patch;
pub mod reference;
pub mod resource;
pub mod selector;

pub use change::{Change, ChangeOp};
pub use edge::{Dependency, EdgeDeclError, EdgeKind, UnknownEdgeKind, valid_edge_name};
pub use kind::{Kind, KindInfo, KindLookupError, OtherKind};
pub use labels::Labels;
pub use patch::{PatchError, ResourcePatch, version_check};
pub use reference::{Namespaces, Reference, Target};
pub use resource::{
    ClaimRef, Fact, FactSet, Facts, Health, Helm, ObjectKey, OwnerRef, Replicas, Resource, Scaling,
    Status, Uid,
};
pub use selector::{LabelSelector, Operator, Requirement, SelectorError};

/// The string type used throughout the model: stores up to 24 bytes inline, which covers most
/// names, namespaces, label keys and values without a heap allocation.
pub type Str = compact_str::CompactString;

/// Milliseconds since the Unix epoch (0 if the clock is before it): the timestamp of changes,
/// snapshots and heartbeats.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Heap bytes a [`Str`] owns (0 when stored inline).
pub fn str_heap(s: &Str) -> usize {
    if s.is_heap_allocated() {
        s.capacity()
    } else {
        0
    }
}

/// Well-known label and annotation keys.
pub mod well_known {
    /// Helm 3's release-name annotation.
    pub const HELM_RELEASE: &str = "meta.helm.sh/release-name";
    /// Helm 3's release-namespace annotation.
    pub const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
    /// The chart label (or annotation).
    pub const HELM_CHART: &str = "helm.sh/chart";
    /// The managed-by label.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The EndpointSlice label naming its Service.
    pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
}
