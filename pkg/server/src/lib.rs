//! The Astrolabe application: everything `astrolabe` runs, behind a few narrow entry points that
//! take a plain [`Config`] and a shutdown token. The binary (`cmd/astrolabe`) only turns flags
//! into that configuration and errors into exit codes.
//!
//! # Data flow of `serve` ([`run`])
//!
//! ```text
//! start:  Redis ──recovery (deadline, backoff)──► GraphDecoder ──► SharedGraph   (persistence on)
//! then:   informers ──IngestEvent (bounded mpsc)──► apply loop ──batch under one write lock──►
//!         SharedGraph ──► API (axum: queries, /readyz from AppReadiness, /metrics, SSE feed)
//!                        apply loop ──Change──► persist writer ──► Redis stream
//!                                               snapshotter ───► Redis snapshot
//!         health task: pings Redis; readiness detail, superseding snapshot after an outage
//! stop:   shutdown token → informers stop → apply loop drains → writer flushes, final
//!         snapshot → HTTP stops; all within the grace period
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`Config`] (cluster, persistence, server) and [`DemoConfig`], [`SimConfig`].
//! - [`app`]: [`run`] / [`serve`], the wiring above, and [`ServerError`].
//! - [`ingest`]: informers → bounded channel → [`apply`] loop, started together.
//! - [`apply`]: the apply loop, the graph's single writer.
//! - [`auth`]: who may call the API: off, a token file, or the Kubernetes API's reviews
//!   ([`auth::KubeAuthorizer`]).
//! - [`readiness`]: what `/readyz` reports ([`readiness::AppReadiness`]).
//! - [`persistence`]: starting and stopping the writer, snapshotter and health task.
//! - [`recovery`]: the graph from Redis at start, with a deadline; [`recovery::rebuild`].
//! - [`decoder`]: [`decoder::GraphDecoder`], the snapshot decoded straight into a graph.
//! - [`status`]: where the graph came from and the state of Redis, for readiness.
//! - [`health`]: the task that pings Redis.
//! - [`emulator`]: [`demo`] and [`sim`], the built-in Kubernetes API emulator.
//! - [`rules`]: the relation rules in force, loaded at start and reloaded when their file changes.
//! - [`snapshot`]: [`snapshot::export`] and [`snapshot::import`] of the persisted state.

pub mod app;
pub mod apply;
pub mod auth;
pub mod check;
pub mod config;
pub mod decoder;
pub mod durable_feed;
pub mod emulator;
pub mod health;
pub mod history;
pub mod ingest;
pub mod persistence;
pub mod readiness;
pub mod recovery;
pub mod replica;
pub mod rules;
pub mod snapshot;
pub mod status;

pub use app::{ServerError, run, serve};
pub use config::{
    AuthConfig, AuthMode, ClusterConfig, Config, DemoConfig, HistoryConfig, PersistConfig,
    ServerConfig, SimConfig,
};
pub use emulator::{EmulatorError, demo, sim};
pub use snapshot::SnapshotError;
