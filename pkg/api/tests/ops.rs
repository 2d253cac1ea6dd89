#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Liveness, readiness, metrics, OpenAPI, fallbacks, compression.

mod common;

use std::sync::Arc;
use std::time::Duration;

use astrolabe_api::{
    AppState, GraphReadiness, Heartbeat, KindReadiness, PersistenceReadiness, ReadinessReport,
    StaticReadiness, router,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{assert_error, call, get, graph_of, shop, shop_app};
use tower::ServiceExt;

#[tokio::test]
async fn healthz_follows_the_heartbeat() {
    let heartbeat = Heartbeat::new(Duration::from_secs(30));
    let state = common::state(graph_of(shop())).with_heartbeat(heartbeat.clone());
    let app = router(state);
    let r = get(&app, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "alive");
    heartbeat.touch_at(astrolabe_api::state::now_ms() - 60_000);
    let r = get(&app, "/healthz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["status"], "stalled");
    heartbeat.touch();
    assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_reports_detail() {
    let readiness = Arc::new(StaticReadiness::new(ReadinessReport {
        ready: false,
        graph: GraphReadiness {
            hydrated: false,
            source: "recovered, not yet synced".into(),
        },
        kinds: vec![KindReadiness {
            kind: "Pod".into(),
            mode: "typed".into(),
            access: "watch".into(),
            state: "forbidden".into(),
            listed: false,
            forbidden: true,
            retrying: true,
            error: Some("pods is forbidden".into()),
        }],
        persistence: Some(PersistenceReadiness {
            enabled: true,
            connected: false,
            diverged: false,
            last_snapshot_age_seconds: Some(12.5),
            detail: None,
        }),
    }));
    let state = AppState::new(
        graph_of(shop()),
        readiness.clone(),
        prometheus::Registry::new(),
    )
    .unwrap();
    let app = router(state);
    let r = get(&app, "/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["ready"], false);
    assert_eq!(r.json["graph"]["source"], "recovered, not yet synced");
    assert_eq!(r.json["kinds"][0]["forbidden"], true);
    assert_eq!(r.json["persistence"]["last_snapshot_age_seconds"], 12.5);
    readiness.set(StaticReadiness::ready().report_now());
    let r = get(&app, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["graph"]["hydrated"], true);
}

trait ReportNow {
    fn report_now(&self) -> ReadinessReport;
}

impl ReportNow for StaticReadiness {
    fn report_now(&self) -> ReadinessReport {
        astrolabe_api::ReadinessSource::report(self)
    }
}

#[tokio::test]
async fn metrics_expose_graph_gauges_and_route_templates() {
    let app = shop_app();
    get(&app, "/api/v1/resources/pod-web").await;
    get(&app, "/api/v1/resources/nope").await;
    get(&app, "/no/such/route").await;
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = &r.text;
    assert!(
        text.contains("astrolabe_graph_nodes{kind=\"Pod\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("astrolabe_graph_edges{edge_kind=\"owns\"}"),
        "{text}"
    );
    assert!(
        text.contains("astrolabe_graph_dangling_references{edge_kind=\"uses-secret\"} 1"),
        "{text}"
    );
    assert!(text.contains("astrolabe_graph_seq 10"), "{text}");
    assert!(text.contains(
        "astrolabe_http_requests_total{method=\"GET\",route=\"/api/v1/resources/{uid}\",status=\"404\"} 1"
    ), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(!text.contains("pod-web"), "raw paths never become labels");
    assert!(text.contains("astrolabe_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn fallbacks_are_json() {
    let app = shop_app();
    assert_error(&get(&app, "/nope").await, StatusCode::NOT_FOUND);
    assert_error(&get(&app, "/api/v1/graph/").await, StatusCode::NOT_FOUND);
    for method in ["POST", "PUT", "DELETE"] {
        assert_error(
            &call(&app, method, "/api/v1/resources").await,
            StatusCode::METHOD_NOT_ALLOWED,
        );
    }
}

#[tokio::test]
async fn large_answers_are_gzipped_on_request() {
    let (app, _) = common::generated_app(3, 300);
    let req = Request::get("/api/v1/resources")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert!(resp.headers().contains_key("x-astrolabe-seq"));
}

#[tokio::test]
async fn registering_twice_in_one_registry_fails() {
    let registry = prometheus::Registry::new();
    let ready = Arc::new(StaticReadiness::ready());
    assert!(AppState::new(graph_of(vec![]), ready.clone(), registry.clone()).is_ok());
    assert!(AppState::new(graph_of(vec![]), ready, registry).is_err());
}
