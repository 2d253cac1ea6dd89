//! Server-side apply (`application/apply-patch+yaml`): create-or-merge with field ownership kept
//! in `metadata.managedFields` (`FieldsV1`), conflicts, and `force`.
//!
//! How complete it is (see ADR 0015):
//! - Each applier (`Apply` entry) owns the leaf fields of its last applied configuration (items
//!   of keyed lists by their merge key, items of set lists by value, atomic lists whole).
//! - Other writes that name a field manager (create, replace, JSON/merge/strategic patch; kubectl
//!   names one for each command) record an `Update` entry owning the fields they changed, defaults
//!   included, and take those fields from every other manager ([`record_update`]).
//! - Applying a value to a field another manager owns with a different value is a conflict (409
//!   with one cause per field); `force=true` takes the field over. Applying the same value shares
//!   ownership.
//! - A field `kubectl apply` (client-side, manager `kubectl-client-side-apply`) owns and recorded
//!   in its last-applied annotation passes to a server-side applier without a conflict, as the
//!   API server's last-applied manager allows, so switching to `--server-side` works.
//! - A field the applier owned before and leaves out of its new configuration is removed, unless
//!   another manager owns it too.
//! - The configuration merges into the live object with the list keys of [`super::keys`];
//!   `status` is ignored, as on the main resource of a real API server.
//! - Not modelled: per-version field sets (every entry is compared in the served version),
//!   subresource managers, and the reset of managed fields on a body that sends an empty list.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::keys::{ListStrategy, list_strategy};
use super::strategic;
use crate::error::{Result, SimError};

/// One path into an object, as the keys of a `FieldsV1` document (`f:name`, `k:{"name":"a"}`,
/// `v:"x"`, `.` for a keyed item itself).
type FieldPath = Vec<String>;

/// A set of owned fields.
type FieldSet = BTreeSet<FieldPath>;

/// The manager of client-side `kubectl apply`.
const CLIENT_SIDE_APPLY: &str = "kubectl-client-side-apply";

/// The request's applier.
#[derive(Debug, Clone, Copy)]
pub struct Applier<'a> {
    /// `fieldManager`.
    pub manager: &'a str,
    /// `force=true`: take over conflicting fields.
    pub force: bool,
    /// The time recorded in the managed-fields entry (RFC 3339).
    pub now: &'a str,
}

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
fn fields_of(kind: &str, applied: &Value) -> FieldSet {
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
fn encode(set: &FieldSet) -> Value {
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
fn decode(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
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
fn value_at<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
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
fn remove_at(obj: &mut Value, path: &[String]) {
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
fn display(path: &[String]) -> String {
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

/// The managed-fields entries of `obj` by `<operation>/<manager>`, with their field sets.
fn managers(obj: &Value) -> BTreeMap<String, (Value, FieldSet)> {
    let mut out = BTreeMap::new();
    let entries = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for e in entries {
        let Some(name) = e.get("manager").and_then(Value::as_str) else {
            continue;
        };
        let mut set = FieldSet::new();
        if let Some(f) = e.get("fieldsV1") {
            decode(f, &mut FieldPath::new(), &mut set);
        }
        let op = e
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or("Apply");
        out.insert(format!("{op}/{name}"), (e, set));
    }
    out
}

/// A manager as a conflict names it: `"kubectl"`, or `"kubectl-create" using apps/v1 at <time>`
/// for an `Update` entry.
fn describe(entry: &Value) -> String {
    let name = entry
        .get("manager")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if entry.get("operation") == Some(&json!("Update")) {
        let version = entry
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let time = entry
            .get("time")
            .and_then(Value::as_str)
            .unwrap_or_default();
        format!("\"{name}\" using {version} at {time}")
    } else {
        format!("\"{name}\"")
    }
}

/// The managed-fields entries to store: every manager's set written back, empty ones dropped.
fn entries(owners: BTreeMap<String, (Value, FieldSet)>) -> Vec<Value> {
    owners
        .into_values()
        .filter(|(_, set)| !set.is_empty())
        .map(|(mut e, set)| {
            e["fieldsV1"] = encode(&set);
            e
        })
        .collect()
}

fn set_entries(obj: &mut Value, entries: Vec<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// Records a non-apply write by `manager` (`Update` operation): the fields of `new` whose value
/// differs from `old` (None: a create) become the manager's and leave every other manager; fields
/// no longer in `new` leave every manager.
pub fn record_update(
    kind: &str,
    api_version: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    let mut owners = managers(new);
    let changed: FieldSet = fields_of(kind, new)
        .into_iter()
        .filter(|p| old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .collect();
    for (_, set) in owners.values_mut() {
        set.retain(|p| !changed.contains(p) && value_at(new, p).is_some());
    }
    if !changed.is_empty() {
        let id = format!("Update/{manager}");
        let entry = owners.entry(id).or_insert_with(|| {
            (
                json!({"manager": manager, "operation": "Update", "apiVersion": api_version,
                       "fieldsType": "FieldsV1"}),
                FieldSet::new(),
            )
        });
        entry.0["time"] = json!(now);
        entry.1.extend(changed);
    }
    set_entries(new, entries(owners));
}

/// Applies `applied` (the request body) for `applier` to `live` (None: the object does not
/// exist yet) and returns the object to store, with its managed fields updated.
///
/// # Errors
/// [`SimError::ApplyConflicts`] when the configuration changes fields other appliers own (and
/// `force` is off); [`SimError::BadRequest`] for a body that is not an object.
pub fn apply(
    kind: &str,
    api_version: &str,
    live: Option<&Value>,
    applied: &Value,
    applier: Applier<'_>,
) -> Result<Value> {
    if !applied.is_object() {
        return Err(SimError::BadRequest(
            "the apply configuration must be an object".into(),
        ));
    }
    let mut config = applied.clone();
    if let Some(m) = config.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
            ] {
                meta.remove(f);
            }
        }
    }
    let new_set = fields_of(kind, &config);
    let mut base = live.cloned().unwrap_or_else(|| json!({}));
    let mut owners = managers(&base);
    let me = format!("Apply/{}", applier.manager);
    let previous = owners.remove(&me).map(|(_, s)| s).unwrap_or_default();

    // Like the API server's last-applied manager: fields that `kubectl apply` (client-side) set,
    // as its annotation records, pass to a server-side applier without a conflict.
    let client_side: FieldSet = base
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .and_then(Value::as_str)
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .map(|v| fields_of(kind, &v))
        .unwrap_or_default();
    let mut conflicts = Vec::new();
    let mut taken = FieldSet::new();
    for path in new_set
        .iter()
        .filter(|p| p.last().is_some_and(|s| s != "."))
    {
        if value_at(&base, path) == value_at(&config, path) {
            continue;
        }
        for (entry, set) in owners.values() {
            if !set.contains(path) {
                continue;
            }
            taken.insert(path.clone());
            let upgraded = entry.get("manager") == Some(&json!(CLIENT_SIDE_APPLY))
                && client_side.contains(path);
            if !upgraded {
                conflicts.push((describe(entry), display(path)));
            }
        }
    }
    if !conflicts.is_empty() && !applier.force {
        return Err(SimError::ApplyConflicts(conflicts));
    }
    for (_, set) in owners.values_mut() {
        set.retain(|p| !taken.contains(p));
    }

    let others: FieldSet = owners
        .values()
        .flat_map(|(_, s)| s.iter().cloned())
        .collect();
    let mut dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !new_set.contains(*p) && !others.contains(*p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        remove_at(&mut base, path);
    }
    strategic::apply(kind, &mut base, &config)?;

    let mut entries = entries(owners);
    entries.push(json!({
        "manager": applier.manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": applier.now,
        "fieldsType": "FieldsV1",
        "fieldsV1": encode(&new_set),
    }));
    set_entries(&mut base, entries);
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(manager: &str, force: bool) -> Applier<'_> {
        Applier {
            manager,
            force,
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn cfg(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    /// The Deployment `cfg(1, "x:1")` applied by "a".
    fn created() -> Value {
        apply(
            "Deployment",
            "apps/v1",
            None,
            &cfg(1, "x:1"),
            who("a", false),
        )
        .expect("create")
    }

    #[test]
    fn ownership_conflicts_and_force() {
        let first = created();
        let entry = &first["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], "a");
        assert!(entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"c\"}"]["f:image"]
            .is_object(), "{entry}");
        // Same values: shared, no conflict.
        let shared = apply(
            "Deployment",
            "apps/v1",
            Some(&first),
            &json!({"spec": {"replicas": 1}}),
            who("b", false),
        )
        .expect("shared");
        let err = apply(
            "Deployment",
            "apps/v1",
            Some(&shared),
            &json!({"spec": {"replicas": 5}}),
            who("b", false),
        )
        .expect_err("conflict");
        assert_eq!(
            err,
            SimError::ApplyConflicts(vec![("\"a\"".into(), ".spec.replicas".into())])
        );
        let forced = apply(
            "Deployment",
            "apps/v1",
            Some(&shared),
            &json!({"spec": {"replicas": 5}}),
            who("b", true),
        )
        .expect("force");
        assert_eq!(forced["spec"]["replicas"], 5);
        let a = &forced["metadata"]["managedFields"][0];
        assert_eq!(a["manager"], "a");
        assert!(a["fieldsV1"]["f:spec"].get("f:replicas").is_none(), "{a}");
        assert!(a["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."].is_object(), "{a}");
        // "a" lost .spec.replicas, so "a" re-applying 1 conflicts with "b" now.
        let err = apply(
            "Deployment",
            "apps/v1",
            Some(&forced),
            &cfg(1, "x:1"),
            who("a", false),
        )
        .expect_err("conflict");
        assert_eq!(
            err,
            SimError::ApplyConflicts(vec![("\"b\"".into(), ".spec.replicas".into())])
        );
    }

    #[test]
    fn updates_take_fields_and_conflict_with_appliers() {
        let mut live = created();
        let before = live.clone();
        live["spec"]["replicas"] = json!(3);
        live["spec"]["paused"] = json!(true);
        record_update(
            "Deployment",
            "apps/v1",
            Some(&before),
            &mut live,
            "kubectl-edit",
            "t1",
        );
        let fields = &live["metadata"]["managedFields"];
        assert_eq!(fields[0]["manager"], "a");
        assert!(
            fields[0]["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
            "{fields}"
        );
        assert_eq!(fields[1]["manager"], "kubectl-edit");
        assert_eq!(fields[1]["operation"], "Update");
        assert!(
            fields[1]["fieldsV1"]["f:spec"]["f:paused"].is_object(),
            "{fields}"
        );
        let err = apply(
            "Deployment",
            "apps/v1",
            Some(&live),
            &json!({"spec": {"paused": false}}),
            who("b", false),
        )
        .expect_err("conflict");
        assert_eq!(
            err,
            SimError::ApplyConflicts(vec![(
                "\"kubectl-edit\" using apps/v1 at t1".into(),
                ".spec.paused".into()
            )])
        );
        // Nothing changed: no entry.
        let mut same = before.clone();
        record_update(
            "Deployment",
            "apps/v1",
            Some(&before),
            &mut same,
            "noop",
            "t2",
        );
        assert_eq!(same, before);
    }

    #[test]
    fn dropped_fields_are_removed() {
        let first = created();
        let mut smaller = cfg(1, "x:2");
        smaller["metadata"]
            .as_object_mut()
            .map(|m| m.remove("labels"));
        let second = apply(
            "Deployment",
            "apps/v1",
            Some(&first),
            &smaller,
            who("a", false),
        )
        .expect("apply");
        assert!(
            second["metadata"]
                .get("labels")
                .and_then(|l| l.get("a"))
                .is_none(),
            "{second}"
        );
        assert_eq!(
            second["spec"]["template"]["spec"]["containers"][0]["image"],
            "x:2"
        );
        assert_eq!(
            second["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(1)
        );
    }
}
