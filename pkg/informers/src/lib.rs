//! Astrolabe's ingestion: kube-rs watchers per kind and processors that turn Kubernetes objects
//! into the model's [`Resource`](astrolabe_model::Resource)s. Nothing downstream of this crate
//! sees a Kubernetes type.
//!
//! # Data flow
//!
//! ```text
//! discovery + CRD watch ──► dynamic::Supervisor: which kinds outside the table, in which mode
//!     │ (select: --kinds / --exclude-kinds; the watch cap: watch, or poll past it)
//!     ▼
//! API server ──list/watch──► kube::runtime::watcher (one per kind × namespace, default backoff;
//!     │                      typed for the built-in kinds, PartialObjectMeta<DynamicObject> or
//!     │                      DynamicObject for the rest; periodic lists past the cap)
//!     │ Event::Init / InitApply / InitDone / Apply / Delete
//!     ▼
//! watch::Translator ──► processors::<kind>(&obj), dynamic::metadata_only, rules hook -> Resource
//!     │ IngestEvent::ListStarted / Upsert / ListCompleted{seen} / Delete
//!     ▼
//! tokio mpsc channel ──► the graph (which applies them; objects of a kind not in `seen`
//!                        when a list completes were deleted while nobody watched)
//! ```
//!
//! No reflector store is kept: the graph is the cache. A kind the API server refuses (403) is
//! marked forbidden in [`SyncStatus`] and retried with backoff; since its list never completes,
//! no `ListCompleted` can empty it. Errors are retried with kube's default backoff and logged
//! once per kind and state change (its first error, each new reason, its recovery; again every
//! [`watch::STILL_FAILING_EVERY`]), not per retry nor per namespace; the retrying state is in
//! [`SyncStatus`] and [`InformerMetrics`].
//!
//! # Layout
//!
//! - [`processors`]: `fn(&K) -> Resource` for every watched kind, one file per family, with the
//!   status rules; [`processors::Processor`] ties each type to its kind, generated from the
//!   model's table of kinds ([`astrolabe_model::for_each_kind!`]). Secrets are watched as
//!   `PartialObjectMeta<Secret>`: kube asks for metadata only, so Secret data never enters the
//!   process.
//! - [`watch`]: [`spawn`], the watcher tasks and the event translation, shared by every kind
//!   of watch (typed, metadata-only, whole dynamic objects; watched or polled).
//! - [`discovery`]: the API server's listable and watchable kinds (aggregated or legacy).
//! - [`crd`]: CustomResourceDefinitions after start, and the kind each serves.
//! - [`dynamic`]: the supervisor of the kinds outside the table: starts, re-watches (new
//!   version, new mode) and stops them, purging a stopped kind's objects from the graph.
//! - [`select`]: kind patterns, the default exclusions, [`Mode`], [`Access`] and the cap's order.
//! - [`event`]: [`IngestEvent`], the output.
//! - [`config`]: [`InformerConfig`], which kinds, namespaces, selector, cap; [`Rules`], the
//!   kinds with relationship rules and their hook.
//! - [`status`]: [`SyncStatus`], per-kind sync state for readiness.
//! - [`lease`]: leader election with a `coordination.k8s.io/v1` Lease ([`lease::Elector`]).
//! - [`metrics`]: [`InformerMetrics`], the Prometheus series.
//! - [`mod@client`]: building a `kube::Client` (kubeconfig, in-cluster, emulator URL).
//! - [`error`]: the [`Error`] enum and [`Result`] alias.

pub mod client;
pub mod config;
pub mod crd;
pub mod discovery;
pub mod dynamic;
pub mod error;
pub mod event;
pub mod lease;
pub mod metrics;
pub mod processors;
pub mod select;
pub mod status;
pub mod watch;

pub use client::{client, client_for_url};
pub use config::{Discover, InformerConfig, RuleHook, Rules, RulesFeed, RulesSender};
pub use error::{Error, Result};
pub use event::IngestEvent;
pub use metrics::InformerMetrics;
pub use select::{Access, Mode, Selection};
pub use status::{KindReport, OpenGap, SyncStatus};
pub use watch::spawn;

/// Log directives (`tracing_subscriber::EnvFilter` syntax) for kube's own log targets, which the
/// binary adds to its log filter. The watchers report every API server error themselves, once per
/// kind and state change (see [`watch::STILL_FAILING_EVERY`]), with the state in [`SyncStatus`]
/// and [`InformerMetrics`]; kube would otherwise repeat it on every retry: its HTTP client's
/// trace layer logs each failed request at ERROR (`kube_client::client::builder`), and the
/// watcher logs each 403 at WARN (`kube_runtime::watcher`).
pub const KUBE_LOG_DIRECTIVES: &str = "kube_runtime=warn,kube_runtime::watcher=error,\
                                       kube_client=warn,kube_client::client::builder=off";
