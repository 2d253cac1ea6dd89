//! `/api/v1/rules` and `/api/v1/rules/test` over the built-in rule pack: what each rule produced
//! in the graph, and what the rules find in a posted object.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_model::{Kind, Resource, Uid};
use astrolabe_rules::{ActiveRules, RuleSet};
use axum::http::StatusCode;
use common::{assert_error, get, post_json};
use serde_json::json;

fn certificate() -> serde_json::Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "shop", "uid": "cert-web"},
        "spec": {"secretName": "web-tls", "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}
    })
}

/// The graph the watchers would build: the Certificate with the references the rules make, and
/// the Secret it writes; the ClusterIssuer is missing.
fn app(rules: &ActiveRules) -> axum::Router {
    let set = rules.get();
    set.declare_edges().unwrap();
    let object = certificate();
    let mut cert = Resource::new(
        Uid::from("cert-web"),
        Kind::from_api_version("cert-manager.io/v1", "Certificate"),
        "shop",
        "web",
    );
    cert.references = set
        .evaluate("cert-manager.io", "Certificate", Some("shop"), &object)
        .iter()
        .filter_map(|r| r.to_reference("shop"))
        .collect();
    cert.normalize();
    let secret = Resource::new(Uid::from("secret-tls"), Kind::Secret, "shop", "web-tls");
    let graph = common::graph_of(vec![cert, secret]);
    astrolabe_api::router(common::state(graph).with_rules(rules.clone()))
}

#[tokio::test]
async fn rules_in_force_report_their_edges_and_dangling_references() {
    let rules = ActiveRules::new(RuleSet::builtin());
    let app = app(&rules);
    let reply = get(&app, "/api/v1/rules").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["generation"], 1);
    assert_eq!(reply.json["refusedReloads"], 0);
    let rules_json = reply.json["rules"].as_array().unwrap();
    let of = |from: &str, edge: &str| {
        rules_json
            .iter()
            .find(|r| r["from"]["kind"] == from && r["edge"] == edge)
            .unwrap_or_else(|| panic!("no {from} {edge} rule in {rules_json:?}"))
    };
    let writes = of("Certificate", "writes");
    assert_eq!(writes["edges"], 1, "{writes}");
    assert_eq!(writes["dangling"], 0);
    assert_eq!(writes["source"], astrolabe_rules::BUILTIN_SOURCE);
    assert_eq!(writes["match"], "name");
    let issuer = rules_json
        .iter()
        .find(|r| r["from"]["kind"] == "Certificate" && r["path"] == "spec.issuerRef")
        .unwrap();
    assert_eq!(issuer["edges"], 0);
    assert_eq!(issuer["dangling"], 1, "the ClusterIssuer is missing");
    // Declared edges are listed with the built-in ones.
    let edges = get(&app, "/api/v1/edge-kinds").await;
    assert!(
        edges
            .json
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "writes"
                && e["declared"] == true
                && e["dependency"] == "source-needs-target"),
        "{}",
        edges.text
    );
}

#[tokio::test]
async fn a_posted_object_gets_the_references_the_rules_would_make() {
    let rules = ActiveRules::new(RuleSet::builtin());
    let app = app(&rules);
    let reply = post_json(&app, "/api/v1/rules/test", &certificate()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["kind"], "Certificate.cert-manager.io");
    let refs = reply.json["references"].as_array().unwrap();
    let secret = refs
        .iter()
        .find(|r| r["target"]["kind"]["kind"] == "Secret")
        .unwrap_or_else(|| panic!("{refs:?}"));
    assert_eq!(secret["target"]["name"], "web-tls");
    assert_eq!(secret["target"]["namespace"], "shop");
    assert_eq!(secret["target"]["exists"], true);
    let issuer = refs
        .iter()
        .find(|r| r["target"]["kind"]["kind"] == "ClusterIssuer")
        .unwrap();
    assert_eq!(issuer["target"]["exists"], false);
    assert!(
        issuer["target"].get("namespace").is_none(),
        "cluster-scoped"
    );

    // Without rules nothing is found; bad bodies are a JSON 400.
    let none = astrolabe_api::router(common::state(common::graph_of(Vec::new())));
    let empty = post_json(&none, "/api/v1/rules/test", &certificate()).await;
    assert_eq!(empty.json["references"], json!([]));
    assert_error(
        &post_json(&app, "/api/v1/rules/test", &json!({"kind": "Certificate"})).await,
        StatusCode::BAD_REQUEST,
    );
    assert_error(
        &post_json(&app, "/api/v1/rules/test", &json!("not an object")).await,
        StatusCode::BAD_REQUEST,
    );
}
