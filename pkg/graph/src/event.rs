//! Graph change events, for live subscribers (the API's change stream), and the edge view they
//! carry.

use std::sync::Arc;

use astrolabe_model::{EdgeKind, ObjectKey, Resource, Uid};
use serde::Serialize;

/// An edge as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EdgeView {
    /// The relationship.
    pub kind: EdgeKind,
    /// The source's UID.
    pub from: Uid,
    /// The target's UID.
    pub to: Uid,
}

/// One observable change of the graph.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphChange {
    /// A resource appeared.
    NodeAdded(Arc<Resource>),
    /// A resource changed.
    NodeUpdated(Arc<Resource>),
    /// A resource disappeared.
    NodeRemoved {
        /// Its UID.
        uid: Uid,
        /// Its key.
        key: ObjectKey,
    },
    /// An edge appeared.
    EdgeAdded(EdgeView),
    /// An edge disappeared.
    EdgeRemoved(EdgeView),
}

/// A [`GraphChange`] stamped with the change sequence that caused it. One applied change can
/// produce several events (the node, then its edges), all with the same `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphEvent {
    /// The change sequence number.
    pub seq: u64,
    /// When the change was applied, in milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// What changed.
    pub change: GraphChange,
}

/// Where the graph reports events while applying changes. `()` discards them at no cost;
/// `Vec<GraphEvent>` collects them.
pub trait EventSink {
    /// Whether events are wanted at all (lets the graph skip building them).
    fn enabled(&self) -> bool;
    /// Receives one event.
    fn record(&mut self, event: GraphEvent);
}

impl EventSink for () {
    fn enabled(&self) -> bool {
        false
    }
    fn record(&mut self, _: GraphEvent) {}
}

impl EventSink for Vec<GraphEvent> {
    fn enabled(&self) -> bool {
        true
    }
    fn record(&mut self, event: GraphEvent) {
        self.push(event);
    }
}
