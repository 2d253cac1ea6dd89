#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Go-compatible endpoints: field names, types, omitempty rules, order.

mod common;

use std::time::Duration;

use astrolabe_api::{Heartbeat, router};
use axum::http::StatusCode;
use common::{get, graph_of, seq_header, shop, shop_app};
use serde_json::{Value, json};

fn by_name<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} missing"))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn health_has_go_fields_and_seq() {
    let app = shop_app();
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "healthy");
    assert_eq!(r.json["nodes"], 10);
    assert!(r.json["edges"].as_u64().unwrap() > 0);
    assert_eq!(r.json["seq"].as_u64(), Some(seq_header(&r)));
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn health_is_unhealthy_while_the_apply_loop_is_stalled() {
    let heartbeat = Heartbeat::new(Duration::from_secs(30));
    let state = common::state(graph_of(shop())).with_heartbeat(heartbeat.clone());
    let app = router(state);
    heartbeat.touch_at(astrolabe_api::state::now_ms() - 60_000);
    let r = get(&app, "/health").await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "body: {}",
        r.text
    );
    assert_eq!(r.json["status"], "unhealthy");
    assert_eq!(r.json["nodes"], 10, "the Go shape is kept");
    heartbeat.touch();
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "healthy");
}

#[tokio::test]
async fn resources_have_go_field_names_types_and_omitempty() {
    let app = shop_app();
    let r = get(&app, "/api/v1/resources?release=shop").await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.json.as_array().unwrap();
    assert!(seq_header(&r) > 0);

    for item in items {
        for field in [
            "name",
            "namespace",
            "kind",
            "apiVersion",
            "status",
            "message",
            "chart",
            "release",
            "age",
            "creationTimestamp",
        ] {
            assert!(item[field].is_string(), "{field} in {item}");
        }
        assert!(item.get("uid").is_none(), "Go resources have no uid");
    }

    let deploy = by_name(items, "Deployment", "web");
    assert_eq!(deploy["apiVersion"], "apps/v1");
    assert_eq!(deploy["status"], "Pending");
    assert_eq!(deploy["message"], "Partially ready (1/2)");
    assert_eq!(deploy["chart"], "web-1.0.0");
    assert_eq!(deploy["release"], "shop");
    assert_eq!(deploy["age"], "3d");
    assert!(
        deploy["creationTimestamp"].as_str().unwrap().ends_with('Z'),
        "{deploy}"
    );
    assert_eq!(
        deploy["replicas"],
        json!({"desired": 2, "current": 2, "ready": 1, "available": 1})
    );
    assert_eq!(deploy["image"], "ghcr.io/acme/web:1.4");
    assert_eq!(deploy["usedConfigMaps"], json!(["web-cfg"]));
    assert_eq!(deploy["serviceAccountName"], "web");
    assert!(deploy.get("ownerReferences").is_none(), "omitempty");
    assert!(deploy.get("restartCount").is_none(), "omitempty");
    assert!(deploy.get("targetPods").is_none(), "omitempty");

    let svc = by_name(items, "Service", "web");
    assert_eq!(
        svc["targetPods"],
        json!(["web-5d4f-x7k2p"]),
        "Services now have targetPods"
    );
    assert!(svc.get("clusterIP").is_none(), "not a Go Resource field");

    let pvc = by_name(items, "PersistentVolumeClaim", "data");
    assert_eq!(pvc["volumeName"], "pv-1");

    let pv = by_name(items, "PersistentVolume", "pv-1");
    assert_eq!(
        pv["release"], "shop",
        "PVs get the requested release filled in"
    );
    assert_eq!(pv["chart"], "");
    assert_eq!(
        pv["claimRef"],
        json!({"kind": "PersistentVolumeClaim", "namespace": "shop", "name": "data", "uid": "pvc-data"})
    );
}

#[tokio::test]
async fn pods_show_relations_from_edges() {
    let app = shop_app();
    let r = get(&app, "/api/v1/resources?namespace=shop").await;
    let items = r.json.as_array().unwrap();
    let pod = by_name(items, "Pod", "web-5d4f-x7k2p");
    assert_eq!(pod["nodeName"], "node-1");
    assert_eq!(pod["restartCount"], 2);
    assert_eq!(
        pod["ownerReferences"],
        json!([{"kind": "ReplicaSet", "name": "web-5d4f"}])
    );
    assert_eq!(pod["mountedPVCs"], json!(["data"]));
    assert_eq!(pod["usedConfigMaps"], json!(["web-cfg"]));
    assert_eq!(
        pod["usedSecrets"],
        json!(["web-creds"]),
        "missing targets are not listed"
    );
    assert_eq!(pod["serviceAccountName"], "web");
    assert_eq!(pod["release"], "", "no release requested: no fill-in");
    // namespace filter keeps cluster-scoped objects, as Go does
    assert!(items.iter().any(|r| r["kind"] == "PersistentVolume"));
    // deterministic order: two calls give the same bytes
    let again = get(&app, "/api/v1/resources?namespace=shop").await;
    assert_eq!(
        r.text.replace(|c: char| c.is_ascii_digit(), ""),
        again.text.replace(|c: char| c.is_ascii_digit(), "")
    );
}

#[tokio::test]
async fn release_chart_and_namespace_lists() {
    let app = shop_app();
    assert_eq!(get(&app, "/api/v1/releases").await.json, json!(["shop"]));
    assert_eq!(
        get(&app, "/api/v1/releases?namespace=shop").await.json,
        json!(["shop"])
    );
    assert_eq!(
        get(&app, "/api/v1/releases?namespace=other").await.json,
        json!([])
    );
    assert_eq!(get(&app, "/api/v1/charts").await.json, json!(["web-1.0.0"]));
    assert_eq!(
        get(&app, "/api/v1/charts?namespace=nope").await.json,
        json!([])
    );
    let ns = get(&app, "/api/v1/namespaces").await;
    assert_eq!(ns.json, json!(["shop"]));
    assert!(seq_header(&ns) > 0);
    // unknown parameters are ignored
    assert_eq!(
        get(&app, "/api/v1/namespaces?foo=bar").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn graph_has_go_node_and_edge_objects() {
    let app = shop_app();
    let r = get(&app, "/api/v1/graph?release=shop&namespace=shop").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["seq"].as_u64(), Some(seq_header(&r)));
    let nodes = r.json["nodes"].as_array().unwrap();
    let edges = r.json["edges"].as_array().unwrap();
    for n in nodes {
        for field in ["uid", "name", "namespace", "kind", "status", "message"] {
            assert!(n[field].is_string(), "{field} in {n}");
        }
    }
    for e in edges {
        assert_eq!(keys(e), ["from", "to", "type"]);
    }
    let svc = by_name(nodes, "Service", "web");
    assert_eq!(
        svc["metadata"],
        json!({"clusterIP": "10.0.12.7", "serviceType": "ClusterIP"})
    );
    assert_eq!(svc["release"], "shop");
    assert_eq!(svc["chart"], "web-1.0.0");
    let pv = by_name(nodes, "PersistentVolume", "pv-1");
    assert!(
        pv.get("release").is_none(),
        "omitempty; no fill-in in /graph"
    );
    assert_eq!(pv["metadata"]["claimRef"]["kind"], "PersistentVolumeClaim");
    if let Some(cm) = nodes.iter().find(|n| n["kind"] == "ConfigMap") {
        assert!(cm.get("metadata").is_none(), "{cm}");
    }
    let pod = by_name(nodes, "Pod", "web-5d4f-x7k2p");
    assert_eq!(pod["metadata"]["restartCount"], 2);
    assert!(pod["metadata"].get("phase").is_none(), "native-only field");
    assert!(
        edges
            .iter()
            .any(|e| e["type"] == "binds" && e["from"] == "pvc-data" && e["to"] == "pv-1")
    );
    // every edge joins two listed nodes
    let uids: Vec<&str> = nodes.iter().map(|n| n["uid"].as_str().unwrap()).collect();
    for e in edges {
        assert!(uids.contains(&e["from"].as_str().unwrap()));
        assert!(uids.contains(&e["to"].as_str().unwrap()));
    }

    let empty = get(&app, "/api/v1/graph?release=nope").await;
    assert_eq!(empty.json["nodes"], json!([]));
    assert_eq!(empty.json["edges"], json!([]));
}

#[tokio::test]
async fn generated_cluster_serialises_everywhere() {
    let (app, _) = common::generated_app(7, 600);
    for uri in [
        "/api/v1/resources",
        "/api/v1/graph",
        "/api/v1/releases",
        "/api/v1/charts",
        "/api/v1/namespaces",
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        assert!(!r.json.is_null());
    }
    let releases = get(&app, "/api/v1/releases").await;
    let first = releases.json[0].as_str().unwrap().to_owned();
    let r = get(&app, &format!("/api/v1/resources?release={first}")).await;
    assert!(!r.json.as_array().unwrap().is_empty());
    let g = get(&app, &format!("/api/v1/graph?release={first}")).await;
    assert!(!g.json["nodes"].as_array().unwrap().is_empty());
}
