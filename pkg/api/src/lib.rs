//! Astrolabe's HTTP API: the Go-compatible endpoints, native graph queries, a live change stream
//! (Server-Sent Events), health, readiness, metrics and an OpenAPI document.
//!
//! Data flow: handlers parse the request ([`params`]), take the graph's read lock briefly to run
//! a query from `astrolabe_graph::query` and clone the `Arc<Resource>`s it returns, release the
//! lock, then shape JSON ([`compat`], [`view`], [`json`]). Every graph answer carries the graph
//! sequence it reflects (header `X-Astrolabe-Seq`, and `seq` in object bodies). The apply loop
//! publishes applied changes to a [`ChangeFeed`], which `/api/v1/watch` streams.
//!
//! Layout:
//! - [`mod@router`]: the route table and its layers (CORS, size limits, metrics, tracing,
//!   timeout, authentication, gzip, panics).
//! - [`mod@serve`]: [`serve`], the accept loop with connection bounds ([`ServeOptions`]).
//! - [`cors`]: [`Cors`], the `--cors-allow-origin` policy.
//! - [`mod@auth`]: [`Auth`], bearer tokens decided by an [`auth::Authorizer`] (the Kubernetes
//!   API's reviews, or [`auth::StaticTokens`] from a token file); 401/403/503.
//! - [`state`]: [`AppState`], [`Limits`], [`Heartbeat`].
//! - [`error`]: [`ApiError`], the JSON error body, the 404/405 fallbacks.
//! - [`params`]: the query-string extractor and validated accessors, continue tokens.
//! - [`queries`]: one struct per route's query string, read through [`params`] and listed in
//!   the OpenAPI document.
//! - [`json`]: shared JSON pieces (timestamps, ages, metadata, edges, the seq header), the
//!   sonic-rs [`json::Json`] responder and [`json::ObjectWriter`].
//! - [`fragments`]: the bounded cache of each resource's rendered JSON that node lists reuse.
//! - [`compat`]: the Go server's endpoints and shapes.
//! - [`view`]: native JSON shapes; [`native`]: native endpoints; [`rules`]: the relationship
//!   rules in force.
//! - [`feed`]: [`ChangeFeed`], the ring + broadcast of graph events; [`watch`]: the SSE endpoint.
//! - [`health`]: `/healthz`, `/readyz`, [`ReadinessSource`].
//! - [`metrics`]: HTTP metrics middleware, graph gauges, `/metrics`.
//! - [`min_seq`]: `?minSeq=N` on every route (read-your-writes across replicas).
//! - [`ui`]: the explorer's embedded assets under `/ui/` (public; the API they call is not).
//! - [`openapi`]: the OpenAPI document generated from the handlers and types, `/openapi.json`.

pub mod auth;
pub mod compat;
pub mod cors;
pub mod error;
pub mod feed;
pub mod fragments;
pub mod health;
pub mod history;
pub mod json;
pub mod metrics;
pub mod min_seq;
pub mod native;
pub mod openapi;
pub mod params;
pub mod queries;
pub mod router;
pub mod rules;
pub mod serve;
pub mod state;
pub mod ui;
pub mod view;
pub mod watch;

pub use auth::Auth;
pub use cors::Cors;
pub use error::{ApiError, ApiResult};
pub use feed::{ChangeFeed, FeedEvent};
pub use health::{
    GraphReadiness, KindReadiness, PersistenceReadiness, ReadinessReport, ReadinessSource,
    StaticReadiness,
};
pub use router::router;
pub use serve::{ServeOptions, serve};
pub use state::{AppState, Heartbeat, Limits};
