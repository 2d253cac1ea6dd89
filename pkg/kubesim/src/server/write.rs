//! The write side of the API: request bodies (JSON, protobuf, strict validation), write options
//! (dry run, field manager), server-side apply requests and the Scale subresource.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::{Target, flag, json_response};
use crate::error::SimError;
use crate::kinds::KindInfo;
use crate::patch::apply::{self, Applier};
use crate::patch::{PatchType, apply_patch};
use crate::protobuf;
use crate::sim::Sim;
use crate::store::{Part, Write};
use crate::validate;

/// The `autoscaling/v1` Scale of a workload.
fn scale_of(obj: &Value) -> Value {
    let meta = obj
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let replicas = obj
        .pointer("/spec/replicas")
        .cloned()
        .unwrap_or(serde_json::json!(1));
    serde_json::json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(serde_json::json!(0))},
    })
}

/// Reads, changes (PUT body or PATCH) and writes back the Scale subresource.
pub(super) fn handle_scale(
    sim: &Sim,
    t: &Target,
    method: &Method,
    ct: &str,
    body: &Bytes,
) -> Result<Response, SimError> {
    let (info, ns) = (t.info, t.namespace.as_deref().unwrap_or_default());
    let name = t.name.as_deref().unwrap_or_default();
    let mut state = sim.inner.state.lock();
    let current = state.get(info, ns, name)?;
    let mut scale = scale_of(&current);
    match *method {
        Method::GET => return Ok(json_response(StatusCode::OK, &scale)),
        Method::PUT => scale = parse_body(body)?,
        Method::PATCH => {
            let ty = PatchType::from_content_type(ct).unwrap_or(PatchType::Merge);
            apply_patch("Scale", ty, &mut scale, &parse_body(body)?)?;
        }
        _ => return Err(SimError::MethodNotAllowed),
    }
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let obj = state.update_with(info, ns, name, |o| {
        o["spec"]["replicas"] = serde_json::json!(replicas)
    })?;
    Ok(json_response(StatusCode::OK, &scale_of(&obj)))
}

pub(super) fn parse_body(body: &Bytes) -> Result<Value, SimError> {
    serde_json::from_slice(body).map_err(|e| {
        SimError::BadRequest(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })
}

/// The write options of a request: `dryRun=All`; the field manager (`fieldManager`, else the
/// User-Agent's product, as the API server defaults it); creates need their namespace; the part
/// of the object the target may change (the `status` subresource of a custom kind).
pub(super) fn write_options(q: &HashMap<String, String>, headers: &HeaderMap, t: &Target) -> Write {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|u| u.to_str().ok())
        .and_then(|u| u.split('/').next())
        .filter(|u| !u.is_empty());
    Write {
        manager: q
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .map(String::as_str)
            .or(agent)
            .map(str::to_owned),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        require_namespace: true,
        part: Part::of(t.info, t.subresource.as_deref()),
    }
}

/// The object in a POST or PUT body: JSON, or the Kubernetes protobuf encoding of the kinds
/// [`protobuf`] knows; strictly checked against the kind's type when `fieldValidation=Strict`.
pub(super) fn object_body(
    info: &KindInfo,
    ct: &str,
    body: &Bytes,
    q: &HashMap<String, String>,
) -> Result<Value, SimError> {
    let obj = if ct.contains("protobuf") {
        protobuf::decode(info, body)?
    } else {
        parse_body(body)?
    };
    if q.get("fieldValidation").is_some_and(|v| v == "Strict") {
        validate::strict(info, &obj)?;
    }
    Ok(obj)
}

/// Applies a JSON, merge or strategic `patch` request to `obj`: a `metadata.resourceVersion` in a
/// merge or strategic patch is a precondition, and with `strict` (`fieldValidation=Strict`) the
/// result must decode strictly into the kind's type.
pub(super) fn patch_object(
    info: &KindInfo,
    name: &str,
    ty: PatchType,
    patch: &Value,
    strict: bool,
    obj: &mut Value,
) -> Result<(), SimError> {
    let want = patch
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty());
    let have = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if ty != PatchType::Json && want.is_some_and(|rv| Some(rv) != have) {
        return Err(SimError::Conflict(info.plural.into(), name.to_owned()));
    }
    apply_patch(info.kind, ty, obj, patch)?;
    if strict {
        validate::strict(info, obj)?;
    }
    Ok(())
}

/// A server-side apply (PATCH with `application/apply-patch+yaml`): creates or merges.
pub(super) fn server_side_apply(
    sim: &Sim,
    t: &Target,
    name: &str,
    body: &Bytes,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, SimError> {
    let info = t.info;
    let text = std::str::from_utf8(body)
        .map_err(|_| SimError::BadRequest("the apply configuration is not UTF-8".into()))?;
    let applied: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_saphyr::from_str(text).map_err(|e| {
            SimError::BadRequest(format!("the apply configuration is not valid YAML: {e}"))
        })?,
    };
    if q.get("fieldValidation").is_some_and(|v| v == "Strict") {
        validate::strict(info, &applied)?;
    }
    let body_name = applied.pointer("/metadata/name").and_then(Value::as_str);
    if body_name.is_some_and(|b| b != name) {
        return Err(SimError::BadRequest(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            body_name.unwrap_or_default()
        )));
    }
    let manager = q
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            SimError::BadRequest(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            )
        })?;
    let now = crate::store::now_rfc3339();
    let applier = Applier {
        manager,
        force: flag(q, "force"),
        now: &now,
    };
    // The applier is recorded by the apply itself, not as an Update.
    let write = Write {
        manager: None,
        ..write_options(q, headers, t)
    };
    let ns = t.namespace.as_deref();
    let mut state = sim.inner.state.lock();
    let live = match state.get(info, ns.unwrap_or_default(), name) {
        Ok(obj) => Some(obj),
        Err(SimError::NotFound(..)) => None,
        Err(e) => return Err(e),
    };
    let mut merged = apply::apply(
        info.merge_kind(),
        &info.api_version(),
        live.as_deref(),
        &applied,
        applier,
    )?;
    if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), serde_json::json!(name));
    }
    match live {
        None => {
            let obj = state.create_with(info, merged, ns, false, write)?;
            Ok(json_response(StatusCode::CREATED, &*info.as_served(&obj)))
        }
        Some(_) => {
            if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            let obj = state.replace(info, merged, ns, Some(name), write)?;
            Ok(json_response(StatusCode::OK, &*info.as_served(&obj)))
        }
    }
}
