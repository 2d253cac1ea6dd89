//! `GET /openapi.json`: the hand-written OpenAPI 3.0 description of every route.

use std::sync::OnceLock;

use crate::json::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn q(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn q_req(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": true, "description": description, "schema": {"type": "string"}})
}

fn p(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn s() -> Value {
    json!({"type": "string"})
}

fn int() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array_of(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn err(description: &str) -> Value {
    ok(description, r("Error"))
}

/// A GET operation with parameters, a 200 schema and the usual error responses.
fn op(summary: &str, params: Vec<Value>, schema: Value, extra: &[(&str, &str)]) -> Value {
    let mut responses = json!({
        "200": ok("Success. Header `X-Astrolabe-Seq` carries the graph sequence.", schema),
        "400": err("A malformed query parameter."),
        "405": err("Only GET is served."),
        "500": err("Internal error (logged)."),
        "503": err("Request timed out."),
    });
    for (code, description) in extra {
        responses[*code] = err(description);
    }
    json!({"get": {"summary": summary, "parameters": params, "responses": responses}})
}

fn namespace() -> Value {
    q(
        "namespace",
        "Only this namespace (plus cluster-scoped objects where noted).",
        s(),
    )
}

fn release() -> Value {
    q("release", "Helm release name.", s())
}

fn schemas() -> Value {
    let edge = json!({"type": "object", "required": ["type", "from", "to"], "properties": {
        "type": {"type": "string", "description": "Edge kind, see /api/v1/edge-kinds"},
        "from": s(), "to": s()}});
    let kind_name = json!({"type": "object", "properties": {"kind": s(), "name": s()}});
    let replicas = json!({"type": "object", "properties": {"desired": int(), "current": int(), "ready": int(), "available": int()}});
    let claim_ref = json!({"type": "object", "properties": {"kind": s(), "namespace": s(), "name": s(), "uid": s()}});
    let metadata = json!({"type": "object", "description": "Every field omitted when empty.", "properties": {
        "nodeName": s(), "image": s(), "restartCount": int(), "replicas": r("Replicas"),
        "volumeName": s(), "claimRef": r("ClaimRef"), "clusterIP": s(), "serviceType": s(),
        "ingressClass": s(), "scaleTargetRef": r("KindName"), "minReplicas": int(),
        "maxReplicas": int(), "currentReplicas": int(), "desiredReplicas": int(),
        "storageClass": s(), "phase": s(), "suspended": {"type": "boolean"}}});
    let status = json!({"type": "string", "enum": ["Ready", "Pending", "Error", "Unknown"]});
    let compat_resource = json!({"type": "object",
        "required": ["name", "namespace", "kind", "apiVersion", "status", "message", "chart", "release", "age", "creationTimestamp"],
        "properties": {
            "name": s(), "namespace": s(), "kind": s(), "apiVersion": s(), "status": status,
            "message": s(), "chart": s(), "release": s(), "age": s(), "creationTimestamp": s(),
            "image": s(), "nodeName": s(), "restartCount": int(), "replicas": r("Replicas"),
            "ownerReferences": array_of(r("KindName")), "volumeName": s(), "claimRef": r("ClaimRef"),
            "targetPods": array_of(s()), "mountedPVCs": array_of(s()), "usedConfigMaps": array_of(s()),
            "usedSecrets": array_of(s()), "serviceAccountName": s()}});
    let compat_node = json!({"type": "object", "required": ["uid", "name", "namespace", "kind", "status", "message"],
        "properties": {"uid": s(), "name": s(), "namespace": s(), "kind": s(), "status": status,
            "message": s(), "chart": s(), "release": s(), "metadata": r("Metadata")}});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let resource = json!({"type": "object", "properties": {
        "uid": s(), "kind": s(), "apiVersion": s(), "namespace": s(), "name": s(),
        "labels": string_map, "annotations": string_map, "creationTimestamp": s(),
        "resourceVersion": s(), "status": status, "message": s(), "release": s(),
        "releaseNamespace": s(), "chart": s(), "managedBy": s(),
        "ownerReferences": array_of(json!({"type": "object", "properties": {"kind": s(), "name": s(), "uid": s(), "controller": {"type": "boolean"}}})),
        "metadata": r("Metadata")}});
    let reference = json!({"type": "object", "properties": {"uid": s(), "kind": s(), "namespace": s(), "name": s()}});
    let peer_edge =
        json!({"allOf": [r("Edge"), {"type": "object", "properties": {"peer": r("Ref")}}]});
    let seq = json!({"type": "integer", "description": "Graph sequence the answer reflects."});
    json!({
        "Error": {"type": "object", "required": ["error", "detail"], "properties": {"error": s(), "detail": s()}},
        "Edge": edge, "KindName": kind_name, "Replicas": replicas, "ClaimRef": claim_ref,
        "Metadata": metadata, "CompatResource": compat_resource, "CompatNode": compat_node,
        "CompatGraph": {"type": "object", "properties": {"nodes": array_of(r("CompatNode")), "edges": array_of(r("Edge")), "seq": seq}},
        "Health": {"type": "object", "properties": {"nodes": int(), "status": s(), "edges": int(), "seq": seq}},
        "Resource": resource, "Ref": reference,
        "ResourceDetail": {"type": "object", "properties": {"seq": seq, "resource": r("Resource"),
            "incoming": array_of(peer_edge.clone()), "outgoing": array_of(peer_edge)}},
        "Subgraph": {"type": "object", "properties": {"seq": seq, "found": {"type": "boolean", "description": "Path only."},
            "nodes": array_of(r("Resource")), "edges": array_of(r("Edge")), "truncated": {"type": "boolean"}}},
        "Page": {"type": "object", "properties": {"seq": seq, "items": array_of(r("Resource")),
            "continue": {"type": "string", "nullable": true}}},
        "DanglingList": {"type": "object", "properties": {"seq": seq, "items": array_of(json!({"type": "object", "properties": {
            "source": r("Ref"), "edgeKind": s(), "target": s(), "targetKind": s(), "optional": {"type": "boolean"}}}))}},
        "Liveness": {"type": "object", "properties": {"status": {"type": "string", "enum": ["alive", "stalled"]},
            "lastApplyAgeSeconds": {"type": "number"}, "maxAgeSeconds": {"type": "number"}}},
        "Readiness": {"type": "object", "properties": {"ready": {"type": "boolean"},
            "graph": {"type": "object", "properties": {"hydrated": {"type": "boolean"}, "source": s()}},
            "kinds": array_of(json!({"type": "object", "properties": {"kind": s(), "listed": {"type": "boolean"},
                "forbidden": {"type": "boolean"}, "error": {"type": "string", "nullable": true}}})),
            "persistence": {"type": "object", "nullable": true, "properties": {"enabled": {"type": "boolean"},
                "connected": {"type": "boolean"}, "diverged": {"type": "boolean"},
                "last_snapshot_age_seconds": {"type": "number", "nullable": true},
                "detail": {"type": "string", "nullable": true}}}}},
    })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let limit = q(
        "limit",
        "Page or result size (at least 1, at most the server's maximum).",
        int(),
    );
    let paths = json!({
        "/health": op("Go-compatible health: node count and status.", vec![], r("Health"), &[]),
        "/api/v1/resources": op("Go-compatible flat resource list.", vec![release(), namespace()], array_of(r("CompatResource")), &[]),
        "/api/v1/releases": op("Helm release names, sorted.", vec![namespace()], array_of(s()), &[]),
        "/api/v1/charts": op("Helm chart names, sorted.", vec![namespace()], array_of(s()), &[]),
        "/api/v1/namespaces": op("Namespace names, sorted.", vec![], array_of(s()), &[]),
        "/api/v1/graph": op("Go-compatible {nodes, edges} graph.", vec![release(), namespace()], r("CompatGraph"), &[]),
        "/api/v1/resources/{uid}": op("One resource with its edges.", vec![p("uid", "Resource UID.")], r("ResourceDetail"), &[("404", "Unknown UID.")]),
        "/api/v1/namespaces/{namespace}/{kind}/{name}": op("One namespaced resource by key.",
            vec![p("namespace", "Namespace."), p("kind", "Kind, case-insensitive."), p("name", "Name.")], r("ResourceDetail"), &[("404", "Unknown resource.")]),
        "/api/v1/cluster/{kind}/{name}": op("One cluster-scoped resource by key.",
            vec![p("kind", "Kind, case-insensitive."), p("name", "Name.")], r("ResourceDetail"), &[("404", "Unknown resource.")]),
        "/api/v1/objects": op("Filtered listing, ordered by (kind, namespace, name), paginated.", vec![
            q("kind", "Kind, case-insensitive.", s()), namespace(),
            q("labelSelector", "Kubernetes label selector syntax.", s()), q("name", "Exact name.", s()),
            release(), limit.clone(), q("continue", "Token from the previous page.", s())], r("Page"), &[]),
        "/api/v1/neighbors/{uid}": op("Resources within `depth` edges.", vec![p("uid", "Start UID."),
            q("depth", "Edges to follow (default 1, at most the server's maximum).", int()),
            q("direction", "in, out or both (default).", json!({"type": "string", "enum": ["in", "out", "both"]})),
            q("edgeKinds", "Comma-separated edge kinds to follow.", s()), limit.clone()], r("Subgraph"), &[("404", "Unknown UID.")]),
        "/api/v1/path": op("A shortest path between two resources.", vec![q_req("from", "Start UID."), q_req("to", "End UID."),
            q("maxDepth", "Longest path searched.", int())], r("Subgraph"), &[("404", "Unknown UID.")]),
        "/api/v1/impact/{uid}": op("Everything that depends on a resource, transitively.", vec![p("uid", "Resource UID."), limit],
            r("Subgraph"), &[("404", "Unknown UID.")]),
        "/api/v1/dangling": op("References whose target does not exist.", vec![namespace(),
            q("edgeKind", "Only this edge kind.", s())], r("DanglingList"), &[]),
        "/api/v1/kinds": op("Watched kinds.", vec![], array_of(json!({"type": "object", "properties": {
            "kind": s(), "apiVersion": s(), "namespaced": {"type": "boolean"}}})), &[]),
        "/api/v1/edge-kinds": op("Edge kinds.", vec![], array_of(json!({"type": "object", "properties": {
            "name": s(), "dependency": {"type": "string", "enum": ["source-needs-target", "target-needs-source", "none"]}}})), &[]),
        "/api/v1/watch": {"get": {"summary": "Graph changes as Server-Sent Events (node-added, node-updated, node-removed, edge-added, edge-removed, resync). Resume with the Last-Event-ID header.",
            "parameters": [namespace(), q("kind", "Only this kind.", s()),
                q("lastEventId", "Resume after this id (the Last-Event-ID header wins).", int()),
                {"name": "Last-Event-ID", "in": "header", "required": false, "schema": int()}],
            "responses": {"200": {"description": "An event stream.", "content": {"text/event-stream": {"schema": s()}}},
                "400": err("A malformed parameter or Last-Event-ID.")}}},
        "/healthz": {"get": {"summary": "Liveness: the apply loop makes progress.", "responses": {
            "200": ok("Alive.", r("Liveness")), "503": ok("Stalled.", r("Liveness"))}}},
        "/readyz": {"get": {"summary": "Readiness: the graph is complete.", "responses": {
            "200": ok("Ready.", r("Readiness")), "503": ok("Not ready; the body says which part.", r("Readiness"))}}},
        "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {"description": "Text exposition format.",
            "content": {"text/plain": {"schema": s()}}}}}},
        "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": ok("OpenAPI 3.0.", json!({"type": "object"}))}}},
    });
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Astrolabe", "version": env!("CARGO_PKG_VERSION"),
            "description": "Kubernetes resource graph: Go-compatible endpoints, native queries, a change stream, health and metrics."},
        "paths": paths,
        "components": {"schemas": schemas()},
    })
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document)).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc = super::document();
        for (path, _) in crate::router::routes() {
            assert!(
                doc["paths"].get(path).is_some(),
                "{path} is not in openapi.json"
            );
        }
        assert_eq!(
            doc["paths"].as_object().map(serde_json::Map::len),
            Some(crate::router::routes().len())
        );
    }
}
