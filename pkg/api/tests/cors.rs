#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CORS: preflights and simple requests with and without an allowed origin.

mod common;

use astrolabe_api::{Cors, router};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use tower::ServiceExt;

const ALLOWED: &str = "https://ui.example";

fn app(cors: Cors) -> Router {
    router(common::state(common::graph_of(common::shop())).with_cors(cors))
}

fn allowed() -> Cors {
    Cors::from_origins(&[ALLOWED]).unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap) {
    let resp = app.clone().oneshot(req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

async fn get_from(app: &Router, origin: &str) -> (StatusCode, HeaderMap) {
    let req = Request::get("/api/v1/kinds")
        .header("origin", origin)
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

async fn preflight(app: &Router, origin: &str) -> (StatusCode, HeaderMap) {
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/api/v1/watch")
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "last-event-id")
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

const ALLOW_ORIGIN: &str = "access-control-allow-origin";

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered() {
    let (status, headers) = preflight(&app(allowed()), ALLOWED).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[ALLOW_ORIGIN], ALLOWED);
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("GET"), "{methods}");
    assert!(headers.contains_key("access-control-allow-headers"));
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_cors_headers() {
    let (_, headers) = preflight(&app(allowed()), "https://evil.example").await;
    assert!(!headers.contains_key(ALLOW_ORIGIN), "{headers:?}");
}

#[tokio::test]
async fn a_get_carries_the_header_only_for_an_allowed_origin() {
    let app = app(allowed());
    let (status, headers) = get_from(&app, ALLOWED).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[ALLOW_ORIGIN], ALLOWED);
    let exposed = headers["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("x-astrolabe-seq"), "{exposed}");
    let (status, headers) = get_from(&app, "https://evil.example").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(ALLOW_ORIGIN), "{headers:?}");
}

#[tokio::test]
async fn any_origin_is_a_star() {
    let (_, headers) = get_from(&app(Cors::from_origins(&["*"]).unwrap()), ALLOWED).await;
    assert_eq!(headers[ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn without_a_policy_there_are_no_cors_headers() {
    let app = app(Cors::Off);
    let (_, headers) = get_from(&app, ALLOWED).await;
    assert!(!headers.contains_key(ALLOW_ORIGIN), "{headers:?}");
    let (status, headers) = preflight(&app, ALLOWED).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!headers.contains_key(ALLOW_ORIGIN), "{headers:?}");
}
