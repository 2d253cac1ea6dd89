//! The graph explorer: the browser assets built from `ui/` (`scripts/ui-build.sh` writes
//! `ui/dist/`, which is committed), embedded at compile time and served under `/ui/`, with `/`
//! redirecting there.
//!
//! The assets are public even when authentication is on: they hold no cluster data, and a
//! browser cannot send a bearer token when it opens a page. Every API call the explorer makes
//! carries the token the user gives it, through the same authentication as any other client.
//!
//! Caching: every asset is answered with `Cache-Control: no-cache` and a strong `ETag` (a hash of
//! its bytes), so a browser revalidates and gets `304 Not Modified` until the binary changes.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// Where the explorer is served.
pub const UI_PATH: &str = "/ui/";

/// The Content-Security-Policy of the explorer's page: its own scripts and API only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file of `ui/dist/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../../ui/dist/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../ui/dist/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../ui/dist/app.css"),
    },
];

/// Adds the explorer's routes to `router`. Call it after the authentication layer, so the
/// assets stay public.
pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        // Relative targets keep working behind a proxy that serves the API under a prefix.
        .route("/", get(|| async { Redirect::temporary("ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("ui/") }))
        .route(UI_PATH, get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move {
                asset(&file, &headers)
            }),
        )
}

/// Total bytes of the embedded assets (uncompressed).
pub fn assets_size() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == name) else {
        return ApiError::NotFound(format!("no explorer asset {name}")).into_response();
    };
    let etag = etag(index);
    let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == etag.as_bytes())
    });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, value);
    }
    if asset.name == "index.html" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    response
}

/// The quoted ETag of `ASSETS[index]`: FNV-1a of its bytes, computed once.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = a.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    });
    tags.get(index).map_or("\"\"", String::as_str)
}
