//! Field sets of managed fields (`FieldsV1`): the leaf fields an object sets, their encoding,
//! and reading, removing and printing one field of an object.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::keys::{ListStrategy, list_strategy};

/// One path into an object, as the keys of a `FieldsV1` document (`f:name`, `k:{"name":"a"}`,
/// `v:"x"`, `.` for a keyed item itself).
pub(super) type FieldPath = Vec<String>;

/// A set of owned fields.
pub(super) type FieldSet = BTreeSet<FieldPath>;

/// Collects the leaf fields of `v` into `out`.
fn collect<'v>(
    kind: &str,
    names: &mut Vec<&'v str>,
    prefix: &mut FieldPath,
    v: &'v Value,
    out: &mut FieldSet,
) {
    let Value::Object(map) = v else {
        out.insert(prefix.clone());
        return;
    };
    if map.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
        return;
    }
    for (k, child) in map {
        prefix.push(format!("f:{k}"));
        names.push(k);
        match child {
            Value::Array(items) => match list_strategy(kind, names) {
                ListStrategy::Key(key) => {
                    for item in items {
                        let Some(id) = item.get(key) else { continue };
                        prefix.push(format!("k:{}", json!({key: id})));
                        prefix.push(".".into());
                        out.insert(prefix.clone());
                        prefix.pop();
                        if item.as_object().is_some_and(|o| o.len() > 1) {
                            collect(kind, names, prefix, item, out);
                        }
                        prefix.pop();
                    }
                }
                ListStrategy::Set => {
                    for item in items {
                        prefix.push(format!("v:{item}"));
                        out.insert(prefix.clone());
                        prefix.pop();
                    }
                }
                ListStrategy::Atomic => {
                    out.insert(prefix.clone());
                }
            },
            other => collect(kind, names, prefix, other, out),
        }
        names.pop();
        prefix.pop();
    }
}

/// The fields an applied configuration sets (identity and `status` excluded).
pub(super) fn fields_of(kind: &str, applied: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut prefix = FieldPath::new();
    collect(kind, &mut Vec::new(), &mut prefix, applied, &mut out);
    out.retain(|p| {
        !matches!(
            p.first().map(String::as_str),
            Some("f:apiVersion" | "f:kind" | "f:status")
        ) && !matches!(
            p.get(..2),
            Some([m, f]) if m == "f:metadata"
                && !matches!(f.as_str(), "f:labels" | "f:annotations" | "f:finalizers" | "f:ownerReferences")
        )
    });
    out
}

/// A field set as a `FieldsV1` document.
pub(super) fn encode(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for seg in path {
            let next = node
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(m) = next else { break };
            node = m;
        }
    }
    Value::Object(root)
}

/// A `FieldsV1` document as a field set.
pub(super) fn decode(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    let Value::Object(map) = v else { return };
    if map.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (k, child) in map {
        prefix.push(k.clone());
        decode(child, prefix, out);
        prefix.pop();
    }
}

/// The value at `path` in `obj`, if present.
pub(super) fn value_at<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path {
        cur = if let Some(f) = seg.strip_prefix("f:") {
            cur.get(f)?
        } else if let Some(k) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur.as_array()?
                .iter()
                .find(|i| key.iter().all(|(kf, kv)| i.get(kf) == Some(kv)))?
        } else if let Some(v) = seg.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur.as_array()?.iter().find(|i| **i == want)?
        } else {
            cur
        };
    }
    Some(cur)
}

/// Removes the field at `path` from `obj` (nothing when absent).
pub(super) fn remove_at(obj: &mut Value, path: &[String]) {
    let (last, parent_path) = match path.split_last() {
        Some((l, p)) if l == "." => match p.split_last() {
            Some((item, pp)) => (item, pp),
            None => return,
        },
        Some(x) => x,
        None => return,
    };
    let mut cur = obj;
    for seg in parent_path {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = seg.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) else {
                return;
            };
            cur.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|i| key.iter().all(|(kf, kv)| i.get(kf) == Some(kv)))
            })
        } else {
            None
        };
        let Some(next) = next else { return };
        cur = next;
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(key), Some(a)) = (
            serde_json::from_str::<Map<String, Value>>(k),
            cur.as_array_mut(),
        ) {
            a.retain(|i| !key.iter().all(|(kf, kv)| i.get(kf) == Some(kv)));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Ok(want), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut())
    {
        a.retain(|i| *i != want);
    }
}

/// A field path as kubectl prints it: `.spec.containers[name="app"].image`.
pub(super) fn display(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(kf, kv)| format!("{kf}={kv}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = seg.strip_prefix("v:") {
            out.push_str(&format!("[{v}]"));
        }
    }
    out
}
