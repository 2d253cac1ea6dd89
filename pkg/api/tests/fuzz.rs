#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Random query strings on every route: never a 5xx, never a panic; every 4xx is a JSON error.

mod common;

use axum::http::StatusCode;
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "/health",
    "/api/v1/resources",
    "/api/v1/releases",
    "/api/v1/charts",
    "/api/v1/namespaces",
    "/api/v1/graph",
    "/api/v1/resources/pod-web",
    "/api/v1/namespaces/shop/Pod/web-5d4f-x7k2p",
    "/api/v1/cluster/PersistentVolume/pv-1",
    "/api/v1/objects",
    "/api/v1/neighbors/pod-web",
    "/api/v1/path",
    "/api/v1/impact/cm-web",
    "/api/v1/dangling",
    "/api/v1/kinds",
    "/api/v1/edge-kinds",
    "/api/v1/watch",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
];

const KEYS: &[&str] = &[
    "release",
    "namespace",
    "kind",
    "labelSelector",
    "name",
    "limit",
    "continue",
    "depth",
    "direction",
    "edgeKinds",
    "edgeKind",
    "from",
    "to",
    "maxDepth",
    "lastEventId",
    "junk",
];

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,16}",
        "-?[0-9]{1,22}",
        Just("pod-web".to_owned()),
        Just("owns,binds".to_owned()),
        Just("in".to_owned()),
        Just("app=web".to_owned()),
        Just("k1".to_owned()),
        "\\PC{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_queries_never_fail_the_server(
        path in prop::sample::select(PATHS),
        pairs in prop::collection::vec((prop::sample::select(KEYS), value()), 0..5),
        raw in prop::option::of("[ -~]{0,12}"),
    ) {
        let mut query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if let Some(raw) = raw {
            // raw text, URI-safe characters only (anything else could not be a URI at all)
            query.push(raw.chars().filter(|c| c.is_ascii_alphanumeric() || "=&%;,-".contains(*c)).collect());
        }
        let uri = format!("{path}?{}", query.join("&"));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let reply = rt.block_on(async {
            let app = common::shop_app();
            if path == "/api/v1/watch" {
                // the stream never ends: look at the head only
                let req = axum::http::Request::get(&uri).body(axum::body::Body::empty()).unwrap();
                let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
                if resp.status() == StatusCode::OK {
                    return None;
                }
                return Some(common::Reply {
                    status: resp.status(),
                    headers: resp.headers().clone(),
                    text: String::new(),
                    json: serde_json::json!({"error": "", "detail": ""}),
                });
            }
            Some(common::get(&app, &uri).await)
        });
        if let Some(reply) = reply {
            prop_assert!(!reply.status.is_server_error(), "{uri}: {} {}", reply.status, reply.text);
            if reply.status.is_client_error() {
                prop_assert!(reply.json["error"].is_string(), "{uri}: {}", reply.text);
                prop_assert!(
                    reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_FOUND,
                    "{uri}: {}", reply.status
                );
            }
        }
    }
}
