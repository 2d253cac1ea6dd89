//! `SharedGraph`: the graph behind one lock, with one writer and many readers.

use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::Graph;

/// The graph shared between the apply loop (the only writer) and readers (API handlers,
/// snapshotter). Readers hold the read lock only while they copy out `Arc`s and edge views.
#[derive(Clone, Default)]
pub struct SharedGraph {
    inner: Arc<RwLock<Graph>>,
}

impl SharedGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps an existing graph (a recovered one, say).
    pub fn from_graph(graph: Graph) -> Self {
        SharedGraph {
            inner: Arc::new(RwLock::new(graph)),
        }
    }

    /// A read guard. Keep it short: build responses after dropping it.
    pub fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.inner.read()
    }

    /// The write guard, for the apply loop.
    pub fn write(&self) -> RwLockWriteGuard<'_, Graph> {
        self.inner.write()
    }

    /// Replaces the whole graph (after recovery).
    pub fn replace(&self, graph: Graph) {
        *self.inner.write() = graph;
    }
}
