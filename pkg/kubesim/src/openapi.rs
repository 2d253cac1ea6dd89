//! OpenAPI documents for kubectl's validation (ADR 0015).
//!
//! - v3 (`/openapi/v3`, JSON): per group version, the item paths of each kind with the
//!   `fieldValidation` parameter on PATCH, which tells kubectl the server validates fields
//!   (`fieldValidation=Strict`, see [`crate::validate`]), so it skips client-side schema validation.
//! - v2 (`/openapi/v2`): kubectl still reads it to validate `kind: List` manifests and kinds the
//!   v3 documents do not name. It is served as the protobuf (`gnostic` `Document`) kubectl asks for,
//!   or as JSON, with no schema definitions: client-side validation of those manifests passes, and
//!   each item is then validated strictly by the server when kubectl sends it.

use serde_json::{Map, Value, json};

use crate::kinds::{KindInfo, group_versions, served};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The v2 title and version.
const TITLE: &str = "Kubernetes";
const VERSION: &str = "v1.33.0";

/// `GET /openapi/v2` as JSON: a Swagger 2.0 document without definitions.
#[must_use]
pub fn v2_json() -> Value {
    json!({"swagger": "2.0", "info": {"title": TITLE, "version": VERSION}, "paths": {}, "definitions": {}})
}

/// `GET /openapi/v2` as the protobuf of a `gnostic` `openapi_v2.Document` (`swagger` = 1,
/// `info` = 2 with `title` = 1 and `version` = 2), the same document as [`v2_json`].
#[must_use]
pub fn v2_protobuf() -> Vec<u8> {
    let mut info = Vec::new();
    crate::protobuf::put_bytes(&mut info, 1, TITLE.as_bytes());
    crate::protobuf::put_bytes(&mut info, 2, VERSION.as_bytes());
    let mut doc = Vec::new();
    crate::protobuf::put_bytes(&mut doc, 1, b"2.0");
    crate::protobuf::put_bytes(&mut doc, 2, &info);
    doc
}

/// `GET /openapi/v3`: the index of group-version documents, built-in and `custom`.
#[must_use]
pub fn index(custom: &[&'static KindInfo]) -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions(custom) {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=kubesim1")}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/<api/v1 | apis/group/version>`, or None for an unknown group version.
#[must_use]
pub fn group_version(path: &str, custom: &[&'static KindInfo]) -> Option<Value> {
    let (group, version) = group_versions(custom)
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path)?;
    let mut paths = Map::new();
    for k in served(custom).filter(|k| k.group == group && k.version == version) {
        let item = if k.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", k.plural)
        } else {
            format!("/{path}/{}/{{name}}", k.plural)
        };
        let gvk = json!({"group": k.group, "version": k.version, "kind": k.kind});
        let op = |id: &str| {
            json!({
                "operationId": format!("{id}{}", k.kind),
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
                ],
                "responses": {"200": {"description": "OK"}}
            })
        };
        paths.insert(item, json!({"get": op("read"), "put": op("replace"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "components": {"schemas": {}}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        assert!(index(&[])["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
        let doc = group_version("apis/apps/v1", &[]).expect("apps");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(group_version("apis/foo/v1", &[]).is_none());
        assert!(v2_protobuf().starts_with(b"\x0a\x032.0\x12"));
        assert_eq!(v2_json()["swagger"], "2.0");
    }
}
