//! Liveness (`/healthz`: the apply loop makes progress) and readiness (`/readyz`: the graph is
//! complete), and the [`ReadinessSource`] the binary implements.

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Where `/readyz` gets its answer (implemented by the binary, which knows the informers and
/// persistence).
pub trait ReadinessSource: Send + Sync {
    /// The current readiness, with detail.
    fn report(&self) -> ReadinessReport;
}

/// Readiness with the detail `/readyz` returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct ReadinessReport {
    /// Whether the server is ready to serve complete answers.
    pub ready: bool,
    /// The graph's state.
    pub graph: GraphReadiness,
    /// Per-kind informer state.
    pub kinds: Vec<KindReadiness>,
    /// Persistence state; absent when persistence is not configured.
    pub persistence: Option<PersistenceReadiness>,
}

/// Where the graph's content comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct GraphReadiness {
    /// Whether the graph is complete.
    pub hydrated: bool,
    /// `empty`, `recovered, not yet synced` or `synced`.
    pub source: String,
}

/// One watched kind's informer state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct KindReadiness {
    /// The kind (`Deployment`; group-qualified outside the built-in kinds:
    /// `Certificate.cert-manager.io`).
    pub kind: String,
    /// How its objects are read: `typed`, `metadata` (metadata only) or `full` (whole objects,
    /// for relationship rules).
    pub mode: String,
    /// `watch`, or `poll` (listed periodically: past the watch cap).
    pub access: String,
    /// `watched`, `polled`, `forbidden` or `failing`.
    pub state: String,
    /// Whether its initial list completed.
    pub listed: bool,
    /// Whether listing it was forbidden (RBAC).
    pub forbidden: bool,
    /// Whether its watcher is retrying after errors (nothing has succeeded since).
    pub retrying: bool,
    /// While it is retrying, the last error listing or watching it.
    pub error: Option<String>,
}

/// Persistence state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct PersistenceReadiness {
    /// Whether persistence is configured.
    pub enabled: bool,
    /// Whether Redis answers.
    pub connected: bool,
    /// Whether the log has diverged from the graph (a full snapshot is pending).
    pub diverged: bool,
    /// Age of the last snapshot, in seconds.
    pub last_snapshot_age_seconds: Option<f64>,
    /// Anything else worth saying.
    pub detail: Option<String>,
}

/// A [`ReadinessSource`] holding a report that is set from outside (tests, simple wiring).
#[derive(Debug, Default)]
pub struct StaticReadiness(Mutex<ReadinessReport>);

impl StaticReadiness {
    /// A source answering `report`.
    pub fn new(report: ReadinessReport) -> Self {
        StaticReadiness(Mutex::new(report))
    }

    /// A source that is ready with a synced graph.
    pub fn ready() -> Self {
        StaticReadiness::new(ReadinessReport {
            ready: true,
            graph: GraphReadiness {
                hydrated: true,
                source: "synced".to_owned(),
            },
            ..ReadinessReport::default()
        })
    }

    /// Replaces the report.
    pub fn set(&self, report: ReadinessReport) {
        *self.0.lock() = report;
    }
}

impl ReadinessSource for StaticReadiness {
    fn report(&self) -> ReadinessReport {
        self.0.lock().clone()
    }
}

/// Liveness status: whether the apply loop makes progress.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum LivenessStatus {
    /// The heartbeat is fresh.
    Alive,
    /// The heartbeat is older than its maximum age.
    Stalled,
}

/// The body of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Liveness {
    /// `alive`, or `stalled` when the heartbeat is too old.
    #[schema(value_type = LivenessStatus)]
    status: &'static str,
    /// Seconds since the apply loop's last heartbeat.
    last_apply_age_seconds: f64,
    /// Age past which the loop counts as stalled.
    max_age_seconds: f64,
}

/// `GET /healthz`: 200 while the apply loop's heartbeat is fresh, 503 when it is stale. Never
/// looks at Redis or the informers.
#[utoipa::path(get, path = "/healthz", summary = "Liveness: the apply loop makes progress.",
    responses((status = 200, description = "Alive.", body = Liveness),
        (status = 503, description = "Stalled.", body = Liveness)))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let hb = &state.heartbeat;
    let fresh = hb.is_fresh();
    let body = Liveness {
        status: if fresh { "alive" } else { "stalled" },
        last_apply_age_seconds: hb.age().as_secs_f64(),
        max_age_seconds: hb.max_age().as_secs_f64(),
    };
    let status = if fresh {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /readyz`: the readiness report; 200 when ready, 503 otherwise.
#[utoipa::path(get, path = "/readyz", summary = "Readiness: the graph is complete.",
    responses((status = 200, description = "Ready.", body = ReadinessReport),
        (status = 503, description = "Not ready; the body says which part.", body = ReadinessReport)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let report = state.readiness.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}
