//! The in-memory relationship graph of Kubernetes resources. Pure data structures: no tokio,
//! kube, redis or axum.
//!
//! Layout and data flow:
//! - [`graph`]: [`Graph`], a petgraph `StableGraph` of `Arc<Resource>` nodes and typed edges,
//!   indexed by UID, by key (kind, namespace, name — ordered, so listings are stable), by Helm
//!   release, and for selector references by the label every match must carry (`selectors`),
//!   so neither side of a selector is tested against a whole namespace. Changes are applied one
//!   at a time by the single writer (the apply loop), each stamped with a gapless sequence
//!   number and returned as a [`astrolabe_model::Change`] for persistence; node and edge events
//!   go to an [`EventSink`]. One file per concept under `graph/`: the store and its entry
//!   points (`mod.rs`), indexes, edge derivation, pending references, counts.
//! - [`shared`]: [`SharedGraph`], one writer and many readers over two copies of the graph:
//!   readers copy `Arc`s out of the current copy and never wait for the writer, who writes the
//!   other copy and then makes it current.
//! - [`sliced`]: [`snapshot_sliced`], a snapshot copied a few thousand nodes per read lock.
//! - [`query`]: read-only queries (resource, list, neighbours, path, impact, and dangling
//!   references from `dangling`, which keeps their targets typed).
//! - [`search`]: free-text search over kind, name, namespace, Helm release and labels.
//! - [`compat`]: the views the Go Astrolabe server's endpoints return.
//! - [`event`]: [`GraphEvent`], [`GraphChange`], [`EventSink`], and the [`query::EdgeView`]
//!   they carry.
//!
//! The store (`graph`, `event`) never imports the query layer (`query`, `dangling`, `compat`).

pub mod compat;
mod dangling;
pub mod event;
pub mod graph;
mod keys;
pub mod query;
pub mod search;
mod selectors;
pub mod shared;
pub mod sliced;

pub use astrolabe_model::now_ms;
pub use event::{EventSink, GraphChange, GraphEvent};
pub use graph::{Graph, GraphStats, update_keeps_edges};
pub use shared::SharedGraph;
pub use sliced::{SNAPSHOT_SLICE, snapshot_sliced};
