//! `Change`: one applied mutation of the graph, as persisted and streamed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ObjectKey, Resource, Uid};

/// What a change does.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChangeOp {
    /// Insert or replace a resource (matched by UID).
    Upsert(Arc<Resource>),
    /// Remove a resource.
    Delete {
        /// The removed resource's UID.
        uid: Uid,
        /// The removed resource's key, for consumers that index by name.
        key: ObjectKey,
    },
}

impl ChangeOp {
    /// The UID the change is about.
    pub fn uid(&self) -> &Uid {
        match self {
            ChangeOp::Upsert(r) => &r.uid,
            ChangeOp::Delete { uid, .. } => uid,
        }
    }
}

/// A change that reached the graph: a sequence number (gapless, starting at 1, assigned by the
/// graph), a wall-clock timestamp and the operation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Change {
    /// The change's position in the graph's history.
    pub seq: u64,
    /// When it was applied, in milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// What it did.
    pub op: ChangeOp,
}
