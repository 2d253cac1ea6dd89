//! The router (every route in one table, so the OpenAPI test can check each) and its layers
//! (CORS, request size limits, metrics, tracing, timeout, authentication, compression, panic
//! catching, JSON fallbacks).

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{OnFailure, TraceLayer};
use tracing::Span;

use crate::error::{self, ApiError};
use crate::state::AppState;
use crate::{auth, compat, health, history, metrics, native, openapi, rules, ui, watch};

/// Longest request URI answered; longer ones get a JSON 414 (hyper itself answers 414 with an
/// empty body past 64 KiB).
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Largest total size of a request's header names and values; larger gets a JSON 431 (hyper
/// itself answers 431 with an empty body past 100 headers or its read buffer).
pub const MAX_HEADER_BYTES: usize = 32 << 10;

/// Every route: its path template and its handlers.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        // Go-compatible
        ("/health", get(compat::health)),
        ("/api/v1/resources", get(compat::resources)),
        ("/api/v1/releases", get(compat::releases)),
        ("/api/v1/charts", get(compat::charts)),
        ("/api/v1/namespaces", get(compat::namespaces)),
        ("/api/v1/graph", get(compat::graph)),
        // native
        ("/api/v1/resources/{uid}", get(native::by_uid)),
        (
            "/api/v1/namespaces/{namespace}/{kind}/{name}",
            get(native::by_key),
        ),
        ("/api/v1/cluster/{kind}/{name}", get(native::by_cluster_key)),
        ("/api/v1/objects", get(native::objects)),
        ("/api/v1/search", get(native::search)),
        ("/api/v1/neighbors/{uid}", get(native::neighbors)),
        ("/api/v1/path", get(native::path)),
        ("/api/v1/impact/{uid}", get(native::impact)),
        ("/api/v1/dangling", get(native::dangling)),
        ("/api/v1/kinds", get(native::kinds)),
        ("/api/v1/edge-kinds", get(native::edge_kinds)),
        ("/api/v1/diff", get(history::diff)),
        ("/api/v1/history/{uid}", get(history::by_uid)),
        (
            "/api/v1/history/namespaces/{namespace}/{kind}/{name}",
            get(history::by_key),
        ),
        (
            "/api/v1/history/cluster/{kind}/{name}",
            get(history::by_cluster_key),
        ),
        ("/api/v1/timeline", get(history::timeline)),
        ("/api/v1/rules", get(rules::rules)),
        ("/api/v1/rules/test", post(rules::test)),
        ("/api/v1/watch", get(watch::watch)),
        // operations
        ("/healthz", get(health::healthz)),
        ("/readyz", get(health::readyz)),
        ("/metrics", get(metrics::metrics)),
        ("/openapi.json", get(openapi::openapi)),
    ]
}

/// The API's router with its state and layers; serve it with [`serve`] or call it with
/// `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (path, handler) in routes() {
        router = router.route(path, handler);
    }
    with_layers(router, state)
}

/// `router` with the JSON fallbacks and every layer, in the order [`router`] uses.
fn with_layers(router: Router<AppState>, state: AppState) -> Router {
    let timeout = state.limits.request_timeout;
    let cors = state.cors.layer();
    let router = router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response));
    // With authentication off the layer would only pass requests through: leave it out.
    let router = if state.auth.is_on() {
        router.layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::require,
        ))
    } else {
        router
    };
    // After the authentication layer: the explorer's assets are public (see `ui`).
    let router = if state.ui { ui::routes(router) } else { router };
    let router = router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_timeout))
        // Inside the timeout: a wait for `minSeq` is bounded by its own limit, and by the
        // request's.
        .layer(axum::middleware::from_fn_with_state(
            crate::min_seq::MinSeq::of(&state),
            crate::min_seq::wait_for_min_seq,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(request_size))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http().on_failure(LogFailure))
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Answers requests past [`MAX_URI_BYTES`] or [`MAX_HEADER_BYTES`] with a JSON 414 or 431.
async fn request_size(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the URI has {uri} bytes; at most {MAX_URI_BYTES} are read"
        ))
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!(
            "the headers have {headers} bytes; at most {MAX_HEADER_BYTES} are read"
        ))
        .into_response();
    }
    next.run(req).await
}

/// The trace layer's failure log, by meaning rather than by status class. A 5xx status is an
/// answer a handler chose: `/readyz` and `/healthz` answer 503 while starting or stalled, a
/// timeout is logged by [`json_timeout`], and internal errors are logged once by [`ApiError`].
/// So a 5xx status is logged at DEBUG here; a response that failed after the handler (its body
/// failed while streaming) is logged at ERROR, as nothing else saw it.
#[derive(Clone, Copy, Debug)]
struct LogFailure;

impl OnFailure<ServerErrorsFailureClass> for LogFailure {
    fn on_failure(&mut self, class: ServerErrorsFailureClass, latency: Duration, _span: &Span) {
        let latency_ms = latency.as_millis();
        match class {
            ServerErrorsFailureClass::StatusCode(status) => {
                tracing::debug!(%status, latency_ms, "answered with a server error status");
            }
            ServerErrorsFailureClass::Error(error) => {
                tracing::error!(%error, latency_ms, "response failed");
            }
        }
    }
}

/// Gives the timeout layer's empty 503 a JSON body, and logs the timeout.
async fn json_timeout(response: axum::response::Response) -> axum::response::Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        tracing::warn!("http: request timed out");
        return ApiError::Unavailable("the request timed out".to_owned()).into_response();
    }
    response
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a handler panicked");
    ApiError::Internal(format!("panic: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use parking_lot::Mutex;
    use tower::ServiceExt;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::health::{ReadinessReport, StaticReadiness};
    use astrolabe_graph::SharedGraph;

    /// Every log line written while it is the default subscriber.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self, level: &str) -> Vec<String> {
            String::from_utf8_lossy(&self.0.lock())
                .lines()
                .filter(|l| l.contains(level))
                .map(str::to_owned)
                .collect()
        }
    }

    fn state(readiness: ReadinessReport) -> AppState {
        AppState::new(
            SharedGraph::new(),
            Arc::new(StaticReadiness::new(readiness)),
            prometheus::Registry::new(),
        )
        .unwrap()
    }

    /// Sends `GET uri` to `app` with every event at every level captured.
    async fn logs_of(app: Router, uri: &str) -> (StatusCode, Capture) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let req = Request::get(uri).body(Body::empty()).unwrap();
        let status = app.oneshot(req).await.unwrap().status();
        (status, capture)
    }

    #[tokio::test]
    async fn a_not_ready_readyz_is_not_logged_as_an_error() {
        let app = router(state(ReadinessReport::default()));
        let (status, capture) = logs_of(app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(capture.lines("ERROR"), Vec::<String>::new());
        assert!(
            !capture.lines("DEBUG").is_empty(),
            "the request is still traced"
        );
    }

    #[tokio::test]
    async fn an_internal_error_is_logged_once() {
        async fn fail() -> ApiError {
            ApiError::Internal("boom".to_owned())
        }
        let app = with_layers(
            Router::new().route("/fail", get(fail)),
            state(ReadinessReport::default()),
        );
        let (status, capture) = logs_of(app, "/fail").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let errors = capture.lines("ERROR");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("boom"), "{errors:?}");
    }
}
