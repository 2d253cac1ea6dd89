//! `meta.k8s.io/v1` Table responses, which kubectl asks for when printing (`Accept: ...;as=Table`).

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::kinds::KindInfo;
use crate::list::Page;

/// Whether the client asked for a Table.
#[must_use]
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

/// A short human age (`45s`, `12m`, `3h`, `2d`) since an RFC 3339 timestamp.
fn age(created: Option<&str>) -> String {
    let Some(ts) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = jiff::Timestamp::now()
        .as_second()
        .saturating_sub(ts.as_second())
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Extra columns per kind: (header, JSON pointer).
fn extra_columns(info: &KindInfo) -> &'static [(&'static str, &'static str)] {
    if info.custom {
        return &[];
    }
    match info.kind {
        "Pod" => &[("Status", "/status/phase"), ("Node", "/spec/nodeName")],
        "Service" => &[("Type", "/spec/type"), ("Cluster-IP", "/spec/clusterIP")],
        "Deployment" | "ReplicaSet" | "StatefulSet" => &[("Replicas", "/spec/replicas")],
        "DaemonSet" => &[
            ("Desired", "/status/desiredNumberScheduled"),
            ("Current", "/status/currentNumberScheduled"),
            ("Ready", "/status/numberReady"),
            ("Up-to-date", "/status/updatedNumberScheduled"),
            ("Available", "/status/numberAvailable"),
        ],
        "CronJob" => &[
            ("Schedule", "/spec/schedule"),
            ("Suspend", "/spec/suspend"),
            ("Last Schedule", "/status/lastScheduleTime"),
        ],
        "HorizontalPodAutoscaler" => &[
            ("Reference", "/spec/scaleTargetRef/name"),
            ("MinPods", "/spec/minReplicas"),
            ("MaxPods", "/spec/maxReplicas"),
            ("Replicas", "/status/currentReplicas"),
        ],
        "Event" => &[
            ("Type", "/type"),
            ("Reason", "/reason"),
            ("Object", "/involvedObject/name"),
            ("Message", "/message"),
        ],
        "Namespace" | "PersistentVolumeClaim" | "PersistentVolume" => {
            &[("Status", "/status/phase")]
        }
        _ => &[],
    }
}

fn cell(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => json!(s),
        Some(Value::Null) | None => json!("<none>"),
        Some(other) => json!(other.to_string()),
    }
}

fn row(info: &KindInfo, obj: &Value) -> Value {
    let mut cells = vec![cell(obj.pointer("/metadata/name"))];
    cells.extend(
        extra_columns(info)
            .iter()
            .map(|(_, p)| cell(obj.pointer(p))),
    );
    cells.push(json!(age(obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str))));
    json!({
        "cells": cells,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }
    })
}

fn columns(info: &KindInfo) -> Vec<Value> {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    cols.extend(
        extra_columns(info)
            .iter()
            .map(|(h, _)| json!({"name": h, "type": "string", "format": "", "description": "", "priority": 0})),
    );
    cols.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    cols
}

/// A Table for one page of a list.
#[must_use]
pub fn list_table(info: &KindInfo, page: &Page) -> Value {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(info),
        "rows": page.items.iter().map(|o| row(info, o)).collect::<Vec<_>>(),
    })
}

/// A Table for one object.
#[must_use]
pub fn object_table(info: &KindInfo, obj: &Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)},
        "columnDefinitions": columns(info),
        "rows": [row(info, obj)],
    })
}
