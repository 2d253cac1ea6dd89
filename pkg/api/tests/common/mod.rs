//! Shared test fixtures: a hand-built release, generated clusters and request helpers;
//! [`wire`] for tests that talk to a served API over a socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod wire;

use std::sync::Arc;

use astrolabe_api::{AppState, StaticReadiness, router};
use astrolabe_graph::{Graph, SharedGraph};
use astrolabe_model::{
    ClaimRef, EdgeKind, Health, Kind, LabelSelector, Labels, OwnerRef, Reference, Replicas,
    Resource, Status,
};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Seconds ago the fixture objects were created (3 days and a bit).
pub const AGE_SECS: i64 = 3 * 86_400 + 5;

fn helm(r: &mut Resource, chart: &str) {
    r.annotations.insert("meta.helm.sh/release-name", "shop");
    r.annotations
        .insert("meta.helm.sh/release-namespace", "shop");
    r.annotations.insert("helm.sh/chart", chart);
}

fn obj(uid: &str, kind: Kind, ns: &str, name: &str) -> Resource {
    let mut r = Resource::new(uid, kind, ns, name);
    r.created_at = jiff::Timestamp::now().as_second() - AGE_SECS;
    r.resource_version = "1".into();
    r.status = Status {
        health: Health::Ready,
        message: "ok".into(),
    };
    r
}

/// A Helm release `shop`: Deployment web → ReplicaSet → Pod (ConfigMap, Secret, SA, PVC),
/// Service selecting the Pod, PVC bound to a PV, plus the Namespace.
pub fn shop() -> Vec<Resource> {
    let mut ns = obj("ns-shop", Kind::Namespace, "", "shop");
    ns.status.message = "Active".into();

    let mut deploy = obj("deploy-web", Kind::Deployment, "shop", "web");
    helm(&mut deploy, "web-1.0.0");
    deploy.status = Status {
        health: Health::Pending,
        message: "Partially ready (1/2)".into(),
    };
    deploy.update_facts(|f| {
        f.replicas = Some(Replicas {
            desired: 2,
            current: 2,
            ready: 1,
            available: 1,
        })
    });
    deploy.update_facts(|f| f.image = Some("ghcr.io/acme/web:1.4".into()));
    deploy.references = vec![
        Reference::to_key(EdgeKind::UsesConfigmap, Kind::ConfigMap, "shop", "web-cfg"),
        Reference::to_key(EdgeKind::UsesSa, Kind::ServiceAccount, "shop", "web"),
    ];

    let mut rs = obj("rs-web", Kind::ReplicaSet, "shop", "web-5d4f");
    rs.owners = vec![OwnerRef {
        kind: Kind::Deployment,
        name: "web".into(),
        uid: "deploy-web".into(),
        controller: true,
    }];
    rs.references = vec![Reference::owned_by("deploy-web", Kind::Deployment, "web")];
    rs.update_facts(|f| {
        f.replicas = Some(Replicas {
            desired: 2,
            current: 2,
            ready: 1,
            available: 1,
        })
    });

    let mut pod = obj("pod-web", Kind::Pod, "shop", "web-5d4f-x7k2p");
    pod.labels = [("app", "web")].into_iter().collect::<Labels>();
    pod.owners = vec![OwnerRef {
        kind: Kind::ReplicaSet,
        name: "web-5d4f".into(),
        uid: "rs-web".into(),
        controller: true,
    }];
    pod.update_facts(|f| f.node_name = Some("node-1".into()));
    pod.update_facts(|f| f.image = Some("ghcr.io/acme/web:1.4".into()));
    pod.update_facts(|f| f.restart_count = Some(2));
    pod.update_facts(|f| f.phase = Some("Running".into()));
    pod.references = vec![
        Reference::owned_by("rs-web", Kind::ReplicaSet, "web-5d4f"),
        Reference::to_key(EdgeKind::UsesConfigmap, Kind::ConfigMap, "shop", "web-cfg"),
        Reference::to_key(EdgeKind::UsesSecret, Kind::Secret, "shop", "web-creds"),
        Reference::to_key(EdgeKind::UsesSecret, Kind::Secret, "shop", "missing").optional(true),
        Reference::to_key(EdgeKind::UsesSa, Kind::ServiceAccount, "shop", "web"),
        Reference::to_key(
            EdgeKind::Mounts,
            Kind::PersistentVolumeClaim,
            "shop",
            "data",
        ),
    ];

    let mut svc = obj("svc-web", Kind::Service, "shop", "web");
    helm(&mut svc, "web-1.0.0");
    svc.update_facts(|f| f.cluster_ip = Some("10.0.12.7".into()));
    svc.update_facts(|f| f.service_type = Some("ClusterIP".into()));
    let mut selector = LabelSelector::default();
    selector.match_labels.insert("app", "web");
    svc.references = vec![Reference::to_selector(
        EdgeKind::Selects,
        Kind::Pod,
        selector,
        false,
    )];

    let mut pvc = obj("pvc-data", Kind::PersistentVolumeClaim, "shop", "data");
    helm(&mut pvc, "web-1.0.0");
    pvc.update_facts(|f| f.volume_name = Some("pv-1".into()));
    pvc.references = vec![Reference::to_key(
        EdgeKind::Binds,
        Kind::PersistentVolume,
        "",
        "pv-1",
    )];

    let mut pv = obj("pv-1", Kind::PersistentVolume, "", "pv-1");
    pv.update_facts(|f| {
        f.claim_ref = Some(ClaimRef {
            namespace: "shop".into(),
            name: "data".into(),
            uid: "pvc-data".into(),
        })
    });

    let mut cfg = obj("cm-web", Kind::ConfigMap, "shop", "web-cfg");
    helm(&mut cfg, "web-1.0.0");
    let mut secret = obj("secret-web", Kind::Secret, "shop", "web-creds");
    helm(&mut secret, "web-1.0.0");
    let mut sa = obj("sa-web", Kind::ServiceAccount, "shop", "web");
    helm(&mut sa, "web-1.0.0");

    vec![ns, deploy, rs, pod, svc, pvc, pv, cfg, secret, sa]
}

/// A shared graph holding `resources`.
pub fn graph_of(resources: Vec<Resource>) -> SharedGraph {
    let mut g = Graph::new();
    for r in resources {
        g.upsert(r);
    }
    SharedGraph::from_graph(g)
}

/// State over `graph` with a ready readiness source and a fresh registry.
pub fn state(graph: SharedGraph) -> AppState {
    AppState::new(
        graph,
        Arc::new(StaticReadiness::ready()),
        prometheus::Registry::new(),
    )
    .unwrap()
}

/// The router over the `shop` fixture.
pub fn shop_app() -> Router {
    router(state(graph_of(shop())))
}

/// The router over a generated cluster.
pub fn generated_app(seed: u64, n: usize) -> (Router, SharedGraph) {
    let graph = graph_of(astrolabe_generator::generate(seed, n));
    (router(state(graph.clone())), graph)
}

/// A response, its headers and its body parsed as JSON (Null when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Sends `method uri` to `app`.
pub async fn call(app: &Router, method: &str, uri: &str) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

/// `POST uri` with a JSON body.
pub async fn post_json(app: &Router, uri: &str, body: &Value) -> Reply {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

/// Sends `req` to `app` and reads the whole answer.
async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// `GET uri`.
pub async fn get(app: &Router, uri: &str) -> Reply {
    call(app, "GET", uri).await
}

/// Asserts a JSON error body with `status`.
pub fn assert_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "body: {}", reply.text);
    assert!(reply.json["error"].is_string(), "body: {}", reply.text);
    assert!(reply.json["detail"].is_string(), "body: {}", reply.text);
    assert_eq!(
        reply.headers["content-type"], "application/json",
        "error bodies are JSON"
    );
}

/// The `X-Astrolabe-Seq` header as a number.
pub fn seq_header(reply: &Reply) -> u64 {
    reply.headers["x-astrolabe-seq"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
