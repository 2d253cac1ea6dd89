//! `IngestEvent`: what the informers send to the graph.

use std::collections::HashSet;

use astrolabe_model::{Kind, ObjectKey, Resource, Str, Uid};

/// One change the informers observed. The graph applies these in order.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestEvent {
    /// An object was listed, created or changed.
    Upsert(Resource),
    /// An object was deleted.
    Delete {
        /// Its UID.
        uid: Uid,
        /// Its key (kind, namespace, name).
        key: ObjectKey,
    },
    /// A (re)list of `kind` (in `namespace`, or cluster-wide when None) began.
    ListStarted {
        /// The kind being listed.
        kind: Kind,
        /// The namespace listed, or None for all namespaces / cluster-scoped kinds.
        namespace: Option<Str>,
    },
    /// It completed; every resource of `kind` in scope whose UID is not in `seen` must be
    /// deleted.
    ListCompleted {
        /// The kind listed.
        kind: Kind,
        /// The namespace listed, or None for all namespaces / cluster-scoped kinds.
        namespace: Option<Str>,
        /// The UIDs the list returned.
        seen: HashSet<Uid>,
    },
    /// A watcher of `kind` failed from `from_ms` until `to_ms` (its first error until it was
    /// answered again, or, when it had to list again, until that list completed): the graph may
    /// not have reflected the cluster for that kind meanwhile.
    Gap {
        /// The kind watched.
        kind: Kind,
        /// The namespace watched, or None for all namespaces / cluster-scoped kinds.
        namespace: Option<Str>,
        /// The first error, Unix milliseconds.
        from_ms: i64,
        /// The recovery, Unix milliseconds.
        to_ms: i64,
        /// The first error's reason and message.
        reason: String,
    },
}

impl IngestEvent {
    /// The kind this event is about.
    pub fn kind(&self) -> &Kind {
        match self {
            IngestEvent::Upsert(r) => &r.kind,
            IngestEvent::Delete { key, .. } => &key.kind,
            IngestEvent::ListStarted { kind, .. }
            | IngestEvent::ListCompleted { kind, .. }
            | IngestEvent::Gap { kind, .. } => kind,
        }
    }
}
