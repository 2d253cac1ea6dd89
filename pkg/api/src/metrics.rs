//! Metrics: the HTTP middleware (`astrolabe_http_*`, labelled by route template), the graph
//! gauges and the watch stream figures refreshed at scrape time (`astrolabe_graph_*`,
//! `astrolabe_watch_*`) and the `/metrics` endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::ApiError;
use crate::state::AppState;

/// Route label for requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The API's collectors, registered once in the shared registry.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    nodes: IntGaugeVec,
    edges: IntGaugeVec,
    dangling: IntGaugeVec,
    seq: IntGauge,
    watchers: IntGauge,
    watchers_dropped: IntCounter,
    /// The feed's dropped count already added to `watchers_dropped`.
    watchers_dropped_seen: Arc<AtomicU64>,
}

impl ApiMetrics {
    /// Creates the collectors and registers them in `registry`.
    ///
    /// # Errors
    /// When a collector of the same name is already registered.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("astrolabe_http_requests_total", "HTTP requests answered."),
            &["route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "astrolabe_http_request_duration_seconds",
                "Time to produce an HTTP response (streams: time to the first byte).",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )?;
        let nodes = IntGaugeVec::new(
            Opts::new("astrolabe_graph_nodes", "Resources in the graph, by kind."),
            &["kind"],
        )?;
        let edges = IntGaugeVec::new(
            Opts::new("astrolabe_graph_edges", "Edges in the graph, by edge kind."),
            &["edge_kind"],
        )?;
        let dangling = IntGaugeVec::new(
            Opts::new(
                "astrolabe_graph_dangling_references",
                "References whose target does not exist, by edge kind.",
            ),
            &["edge_kind"],
        )?;
        let seq = IntGauge::new(
            "astrolabe_graph_seq",
            "Sequence number of the last change applied to the graph.",
        )?;
        let watchers = IntGauge::new("astrolabe_watch_streams", "Open /api/v1/watch streams.")?;
        let watchers_dropped = IntCounter::new(
            "astrolabe_watch_streams_dropped_total",
            "Watch streams closed because their client stopped reading and fell too far behind.",
        )?;
        registry.register(Box::new(watchers.clone()))?;
        registry.register(Box::new(watchers_dropped.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(nodes.clone()))?;
        registry.register(Box::new(edges.clone()))?;
        registry.register(Box::new(dangling.clone()))?;
        registry.register(Box::new(seq.clone()))?;
        Ok(ApiMetrics {
            requests,
            duration,
            nodes,
            edges,
            dangling,
            seq,
            watchers,
            watchers_dropped,
            watchers_dropped_seen: Arc::default(),
        })
    }

    /// Sets the graph gauges from the graph's current statistics.
    fn refresh_graph(&self, state: &AppState) {
        let (stats, seq) = {
            let g = state.graph.read();
            (g.stats(), g.seq())
        };
        self.nodes.reset();
        self.edges.reset();
        self.dangling.reset();
        for (kind, n) in &stats.nodes_by_kind {
            self.nodes
                .with_label_values(&[kind.as_str()])
                .set(gauge(*n));
        }
        for (edge, n) in &stats.edges_by_kind {
            self.edges
                .with_label_values(&[edge.as_str()])
                .set(gauge(*n));
        }
        for (edge, n) in &stats.dangling_by_edge {
            self.dangling
                .with_label_values(&[edge.as_str()])
                .set(gauge(*n));
        }
        self.seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
    }

    /// Sets the watch stream figures from the feed and the watch permits.
    fn refresh_watch(&self, state: &AppState) {
        let open = state
            .limits
            .max_watchers
            .saturating_sub(state.watchers.available_permits());
        self.watchers.set(gauge(open));
        // The counter follows the feed's count; `fetch_max` hands each increment to one scrape
        // only, however many run at once.
        let dropped = state.feed.dropped();
        let counted = self
            .watchers_dropped_seen
            .fetch_max(dropped, Ordering::Relaxed);
        self.watchers_dropped
            .inc_by(dropped.saturating_sub(counted));
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Middleware counting and timing every request by route template, method and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.duration
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    response
}

/// `GET /metrics`: the shared registry in Prometheus text format, graph gauges refreshed first.
#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics.",
    responses((status = 200, description = "Text exposition format.", body = String,
        content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.metrics.refresh_graph(&state);
    state.metrics.refresh_watch(&state);
    let encoder = TextEncoder::new();
    let mut buf = Vec::new();
    encoder
        .encode(&state.registry.gather(), &mut buf)
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(([(CONTENT_TYPE, encoder.format_type().to_owned())], buf).into_response())
}
