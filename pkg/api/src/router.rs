//! The router (every route in one table, so the OpenAPI test can check each), its layers
//! (metrics, tracing, timeout, compression, panic catching, JSON fallbacks) and `serve`.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{self, ApiError};
use crate::state::AppState;
use crate::{compat, health, metrics, native, openapi, watch};

/// How long `serve` lets in-flight requests finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
        ("/api/v1/neighbors/{uid}", get(native::neighbors)),
        ("/api/v1/path", get(native::path)),
        ("/api/v1/impact/{uid}", get(native::impact)),
        ("/api/v1/dangling", get(native::dangling)),
        ("/api/v1/kinds", get(native::kinds)),
        ("/api/v1/edge-kinds", get(native::edge_kinds)),
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
    let timeout = state.limits.request_timeout;
    let mut router = Router::new();
    for (path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::map_response(json_timeout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Gives the timeout layer's empty 503 a JSON body.
async fn json_timeout(response: axum::response::Response) -> axum::response::Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
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

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish for at most [`SHUTDOWN_GRACE`]. Watch streams end when the feed is closed
/// ([`crate::ChangeFeed::close`]) or at the end of the grace period.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let server =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        r = server => r,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("http: grace period over, closing remaining connections");
            Ok(())
        }
    }
}
