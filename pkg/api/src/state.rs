//! `AppState`: what every handler shares — the graph, the change feed, readiness, metrics,
//! limits and the apply loop's heartbeat.

use crate::fragments::FragmentCache;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::auth::Auth;
use crate::cors::Cors;
use crate::error::ApiError;
use crate::feed::ChangeFeed;
use crate::health::ReadinessSource;
use crate::history::{HistorySource, Snapshot};
use crate::metrics::ApiMetrics;
use crate::params::Params;
use astrolabe_graph::SharedGraph;

/// Bounds on what one request may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest traversal depth accepted (`depth`, `maxDepth`).
    pub max_depth: u32,
    /// Largest number of nodes a traversal (neighbours, path, impact) returns.
    pub max_results: usize,
    /// Page size of `/api/v1/objects` when `limit` is absent.
    pub default_limit: usize,
    /// Largest `limit` accepted by `/api/v1/objects`.
    pub max_limit: usize,
    /// How long a request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// Largest number of open `/api/v1/watch` streams; more are answered with 503.
    pub max_watchers: usize,
    /// How long a request with `?minSeq=` waits for the graph to reach that sequence.
    pub min_seq_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 10,
            max_results: 10_000,
            default_limit: 500,
            max_limit: 5_000,
            request_timeout: Duration::from_secs(30),
            max_watchers: 256,
            min_seq_wait: Duration::from_secs(5),
        }
    }
}

/// The apply loop's heartbeat: a millisecond timestamp it touches after every batch (and on an
/// idle tick). Liveness fails when it is older than `max_age`. Cheap to clone; clones share it.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    last_ms: Arc<AtomicI64>,
    max_age: Duration,
}

impl Heartbeat {
    /// A heartbeat that counts as fresh for `max_age`, touched now.
    pub fn new(max_age: Duration) -> Self {
        Heartbeat {
            last_ms: Arc::new(AtomicI64::new(now_ms())),
            max_age,
        }
    }

    /// Records progress now.
    pub fn touch(&self) {
        self.touch_at(now_ms());
    }

    /// Records progress at `ms` (milliseconds since the Unix epoch).
    pub fn touch_at(&self, ms: i64) {
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Milliseconds since the Unix epoch of the last touch.
    pub fn last_ms(&self) -> i64 {
        self.last_ms.load(Ordering::Relaxed)
    }

    /// Time since the last touch (zero if the clock went backwards).
    pub fn age(&self) -> Duration {
        let age = now_ms().saturating_sub(self.last_ms());
        Duration::from_millis(u64::try_from(age).unwrap_or(0))
    }

    /// The threshold past which the loop counts as stuck.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Whether the last touch is recent enough.
    pub fn is_fresh(&self) -> bool {
        self.age() <= self.max_age
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat::new(Duration::from_secs(60))
    }
}

pub use astrolabe_model::now_ms;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The graph read by every query.
    pub graph: SharedGraph,
    /// Recent graph changes and their live subscribers (`/api/v1/watch`).
    pub feed: ChangeFeed,
    /// What `/readyz` reports.
    pub readiness: Arc<dyn ReadinessSource>,
    /// The registry `/metrics` exposes (shared with the rest of the process).
    pub registry: prometheus::Registry,
    /// Request bounds.
    pub limits: Limits,
    /// The apply loop's heartbeat (`/healthz`).
    pub heartbeat: Heartbeat,
    /// The API's own metrics, registered in `registry`.
    pub metrics: ApiMetrics,
    /// Rendered JSON of resources, reused across answers.
    pub fragments: FragmentCache,
    /// One permit per open watch stream, `limits.max_watchers` in all.
    pub watchers: Arc<Semaphore>,
    /// Origins browsers may call the API from (CORS); empty: no CORS headers.
    pub cors: Cors,
    /// Who may call the API (off: everyone).
    pub auth: Auth,
    /// Serve the explorer at `/ui/` (and redirect `/` there).
    pub ui: bool,
    /// The relationship rules in force (`/api/v1/rules`).
    pub rules: astrolabe_rules::ActiveRules,
    /// The log read as history (`at=`, diff, timelines); `None`: the server keeps none.
    pub history: Option<Arc<dyn HistorySource>>,
}

impl AppState {
    /// State with a fresh feed, default limits and a 60 s heartbeat; registers the API's metrics
    /// (HTTP and graph gauges) in `registry`.
    ///
    /// # Errors
    /// When the API's metrics are already registered in `registry`.
    pub fn new(
        graph: SharedGraph,
        readiness: Arc<dyn ReadinessSource>,
        registry: prometheus::Registry,
    ) -> Result<Self, prometheus::Error> {
        let metrics = ApiMetrics::register(&registry)?;
        Ok(AppState {
            graph,
            feed: ChangeFeed::default(),
            readiness,
            registry,
            limits: Limits::default(),
            heartbeat: Heartbeat::default(),
            metrics,
            fragments: FragmentCache::default(),
            watchers: Arc::new(Semaphore::new(Limits::default().max_watchers)),
            cors: Cors::default(),
            auth: Auth::off(),
            ui: false,
            rules: astrolabe_rules::ActiveRules::empty(),
            history: None,
        })
    }

    /// Reads history from `history` (`at=`, diff, timelines).
    pub fn with_history(mut self, history: Arc<dyn HistorySource>) -> Self {
        self.history = Some(history);
        self
    }

    /// The graph the request's `at=` names: the live one without it.
    ///
    /// # Errors
    /// As [`crate::history::graph_at`].
    pub async fn at(&self, p: &Params) -> Result<Snapshot, ApiError> {
        crate::history::graph_at(&self.graph, self.history.as_ref(), p).await
    }

    /// Replaces the rendered-JSON cache (e.g. a smaller budget, or 0 to disable it).
    pub fn with_fragments(mut self, fragments: FragmentCache) -> Self {
        self.fragments = fragments;
        self
    }

    /// Replaces the change feed (to share the apply loop's).
    pub fn with_feed(mut self, feed: ChangeFeed) -> Self {
        self.feed = feed;
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.watchers = Arc::new(Semaphore::new(
            limits.max_watchers.min(Semaphore::MAX_PERMITS),
        ));
        self
    }

    /// Sets the origins browsers may call the API from.
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = cors;
        self
    }

    /// Sets who may call the API.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Reports (and tests objects against) these relationship rules.
    pub fn with_rules(mut self, rules: astrolabe_rules::ActiveRules) -> Self {
        self.rules = rules;
        self
    }

    /// Serves the explorer at `/ui/` (and redirects `/` there) when `on`.
    pub fn with_ui(mut self, on: bool) -> Self {
        self.ui = on;
        self
    }

    /// Replaces the heartbeat (to share the apply loop's).
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_goes_stale() {
        let hb = Heartbeat::new(Duration::from_secs(5));
        assert!(hb.is_fresh());
        hb.touch_at(now_ms() - 10_000);
        assert!(!hb.is_fresh());
        hb.clone().touch();
        assert!(hb.is_fresh());
    }
}
