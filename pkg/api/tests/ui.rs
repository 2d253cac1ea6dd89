#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The explorer's assets: served under `/ui/` with their content types and revalidation
//! headers, `/` redirecting there, public while the API they call needs a token, absent when off.

mod common;

use std::sync::Arc;

use astrolabe_api::auth::StaticTokens;
use astrolabe_api::{Auth, router};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{assert_error, get, graph_of, shop, state};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn app(ui: bool) -> axum::Router {
    router(state(graph_of(shop())).with_ui(ui))
}

#[tokio::test]
async fn assets_are_served_with_their_types_and_revalidation() {
    let app = app(true);
    for (path, ty, needle) in [
        ("/ui/", "text/html; charset=utf-8", "<script src=\"app.js\""),
        ("/ui/index.html", "text/html; charset=utf-8", "<title>"),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "api/v1/search",
        ),
        ("/ui/app.css", "text/css; charset=utf-8", "--bg"),
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers[header::CONTENT_TYPE], ty, "{path}");
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(r.text.contains(needle), "{path} lacks {needle}");
        let etag = r.headers[header::ETAG].clone();
        let again = Request::get(path)
            .header(header::IF_NONE_MATCH, etag.clone())
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(again).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(resp.headers()[header::ETAG], etag);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }
    let page = get(&app, "/ui/").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert_error(&get(&app, "/ui/missing.js").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_root_redirects_to_the_explorer() {
    let app = app(true);
    for path in ["/", "/ui"] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{path}");
        assert_eq!(r.headers[header::LOCATION], "ui/", "{path}");
    }
}

#[tokio::test]
async fn off_means_not_found() {
    let app = app(false);
    for path in ["/", "/ui", "/ui/", "/ui/app.js"] {
        assert_error(&get(&app, path).await, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn assets_are_public_when_the_api_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, "s3cret,alice\n").unwrap();
    let tokens = StaticTokens::read(&file).unwrap();
    let auth = Auth::new(Arc::new(tokens), &prometheus::Registry::new()).unwrap();
    let app = router(state(graph_of(shop())).with_ui(true).with_auth(auth));
    assert_eq!(get(&app, "/ui/").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/ui/app.js").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/").await.status, StatusCode::TEMPORARY_REDIRECT);
    assert_error(
        &get(&app, "/api/v1/search?q=web").await,
        StatusCode::UNAUTHORIZED,
    );
}
