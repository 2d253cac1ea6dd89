#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OpenAPI document against the router: every documented route exists and every route is
//! documented, and every route's real answer (hand-rendered bodies included) matches the schema
//! documented for its status code.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use astrolabe_api::{AppState, Heartbeat, ReadinessReport, StaticReadiness, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, get, graph_of, shop};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Requests with valid parameters, by documented path: every documented route must have one.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("/health", &["/health"]),
    (
        "/api/v1/resources",
        &[
            "/api/v1/resources",
            "/api/v1/resources?release=shop",
            "/api/v1/resources?namespace=shop",
        ],
    ),
    ("/api/v1/releases", &["/api/v1/releases?namespace=shop"]),
    ("/api/v1/charts", &["/api/v1/charts"]),
    (
        "/api/v1/search",
        &["/api/v1/search?q=web", "/api/v1/search?q=kind:Pod&limit=1"],
    ),
    ("/api/v1/namespaces", &["/api/v1/namespaces"]),
    (
        "/api/v1/graph",
        &["/api/v1/graph", "/api/v1/graph?release=shop"],
    ),
    (
        "/api/v1/resources/{uid}",
        &[
            "/api/v1/resources/pod-web",
            "/api/v1/resources/pv-1",
            "/api/v1/resources/nope",
        ],
    ),
    (
        "/api/v1/namespaces/{namespace}/{kind}/{name}",
        &["/api/v1/namespaces/shop/deployment/web"],
    ),
    (
        "/api/v1/cluster/{kind}/{name}",
        &["/api/v1/cluster/PersistentVolume/pv-1"],
    ),
    (
        "/api/v1/objects",
        &[
            "/api/v1/objects?limit=3",
            "/api/v1/objects?kind=Pod&labelSelector=app%3Dweb",
            "/api/v1/objects?limit=0",
        ],
    ),
    (
        "/api/v1/neighbors/{uid}",
        &[
            "/api/v1/neighbors/pod-web?depth=2&direction=both&edgeKinds=owns,mounts",
            "/api/v1/neighbors/pod-web?depth=x",
        ],
    ),
    (
        "/api/v1/path",
        &[
            "/api/v1/path?from=svc-web&to=pv-1",
            "/api/v1/path?from=pv-1&to=cm-web&maxDepth=1",
            "/api/v1/path?from=pod-web",
        ],
    ),
    ("/api/v1/impact/{uid}", &["/api/v1/impact/cm-web?limit=5"]),
    (
        "/api/v1/dangling",
        &["/api/v1/dangling", "/api/v1/dangling?edgeKind=uses-secret"],
    ),
    ("/api/v1/kinds", &["/api/v1/kinds"]),
    ("/api/v1/edge-kinds", &["/api/v1/edge-kinds"]),
    ("/api/v1/rules", &["/api/v1/rules"]),
    // History: this app keeps none (503), and the parameters are checked first (400).
    (
        "/api/v1/diff",
        &["/api/v1/diff?from=-15m", "/api/v1/diff?from=yesterday"],
    ),
    ("/api/v1/history/{uid}", &["/api/v1/history/pod-web"]),
    (
        "/api/v1/history/namespaces/{namespace}/{kind}/{name}",
        &["/api/v1/history/namespaces/shop/deployment/web"],
    ),
    (
        "/api/v1/history/cluster/{kind}/{name}",
        &["/api/v1/history/cluster/PersistentVolume/pv-1"],
    ),
    ("/api/v1/timeline", &["/api/v1/timeline?bucket=5m"]),
    // POSTed: the body is `rules_test_body`.
    ("/api/v1/rules/test", &["/api/v1/rules/test"]),
    ("/api/v1/watch", &["/api/v1/watch?kind=Pod"]),
    ("/healthz", &["/healthz"]),
    ("/readyz", &["/readyz"]),
    ("/metrics", &["/metrics"]),
    ("/openapi.json", &["/openapi.json"]),
];

/// Requests whose answers are not 200: a server that is starting and whose apply loop stalled.
const STARTING_EXAMPLES: &[&str] = &["/readyz", "/healthz", "/health"];

/// Routes answered to POST (every other route is GET).
const POSTED: &[&str] = &["/api/v1/rules/test"];

/// The object posted to `/api/v1/rules/test` in the examples.
fn rules_test_body() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}})
}

fn document() -> Value {
    serde_json::to_value(astrolabe_api::openapi::document()).unwrap()
}

/// Every object schema with properties, made to reject undocumented fields: a field renamed in a
/// writer is then both missing (when required) and unknown.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The documented response of `template` for `status`: its content type and JSON schema (with
/// the document's components, so `$ref`s resolve), or a panic when it is not documented.
fn documented(doc: &Value, template: &str, status: StatusCode) -> (String, Value) {
    let method = if POSTED.contains(&template) {
        "post"
    } else {
        "get"
    };
    let responses = &doc["paths"][template][method]["responses"];
    let response = &responses[status.as_str()];
    assert!(
        response.is_object(),
        "{template}: status {status} is not documented (documented: {:?})",
        responses.as_object().map(|r| r.keys().collect::<Vec<_>>())
    );
    let content = response["content"].as_object().expect("content");
    assert_eq!(content.len(), 1, "{template} {status}: one content type");
    let (content_type, media) = content.iter().next().unwrap();
    let mut schema = media["schema"].clone();
    schema["components"] = doc["components"].clone();
    strict(&mut schema);
    (content_type.clone(), schema)
}

/// Asserts that `reply` to a request on `template` is documented and its body matches.
fn assert_matches(doc: &Value, template: &str, uri: &str, reply: &Reply) {
    let (content_type, schema) = documented(doc, template, reply.status);
    let actual = reply.headers["content-type"].to_str().unwrap();
    assert!(
        actual.starts_with(&content_type),
        "{uri}: content type {actual}, documented {content_type}"
    );
    if content_type != "application/json" {
        return;
    }
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{template}: the documented schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&reply.json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{uri} ({}) does not match its documented schema:\n{}\nbody: {}",
        reply.status,
        errors.join("\n"),
        reply.text
    );
}

/// `GET uri` without reading the body (the watch stream never ends).
async fn head_of(app: &Router, uri: &str) -> Reply {
    let req = Request::get(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    Reply {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: String::new(),
        json: Value::Null,
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let r = get(&common::shop_app(), "/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, document());
    assert_eq!(r.json["openapi"], "3.1.0");
}

#[test]
fn documented_routes_are_the_routed_routes() {
    let doc = document();
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let routed: BTreeSet<&str> = astrolabe_api::router::routes()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(documented, routed);
    let examples: BTreeSet<&str> = EXAMPLES.iter().map(|(path, _)| *path).collect();
    assert_eq!(examples, routed, "every route has an example request");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        let method = if POSTED.contains(&path.as_str()) {
            "post"
        } else {
            "get"
        };
        assert_eq!(methods, [method], "{path} documents only {method}");
    }
}

#[tokio::test]
async fn every_answer_matches_its_documented_schema() {
    let doc = document();
    let app = common::shop_app();
    for (template, uris) in EXAMPLES {
        for uri in *uris {
            let reply = if *template == "/api/v1/watch" {
                head_of(&app, uri).await
            } else if POSTED.contains(template) {
                common::post_json(&app, uri, &rules_test_body()).await
            } else {
                get(&app, uri).await
            };
            assert_ne!(
                reply.json["detail"],
                json!(format!("no route for {}", uri.split('?').next().unwrap())),
                "{uri} is documented but not routed"
            );
            assert_matches(&doc, template, uri, &reply);
        }
    }
}

#[tokio::test]
async fn answers_while_starting_and_stalled_match_their_documented_schema() {
    let doc = document();
    let heartbeat = Heartbeat::new(Duration::from_secs(30));
    heartbeat.touch_at(astrolabe_api::state::now_ms() - 60_000);
    let state = AppState::new(
        graph_of(shop()),
        Arc::new(StaticReadiness::new(ReadinessReport::default())),
        prometheus::Registry::new(),
    )
    .unwrap()
    .with_heartbeat(heartbeat);
    let app = router(state);
    for uri in STARTING_EXAMPLES {
        let reply = get(&app, uri).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_matches(&doc, uri, uri, &reply);
    }
}

#[tokio::test]
#[should_panic(expected = "does not match its documented schema")]
async fn a_renamed_field_fails_validation() {
    let doc = document();
    let mut reply = get(&common::shop_app(), "/api/v1/neighbors/pod-web").await;
    let body = reply.json.as_object_mut().unwrap();
    let truncated = body.remove("truncated").unwrap();
    body.insert("truncatd".to_owned(), truncated);
    assert_matches(&doc, "/api/v1/neighbors/{uid}", "renamed", &reply);
}
