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

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fields::{FieldPath, FieldSet, decode, display, encode, fields_of, remove_at, value_at};
use super::strategic;
use crate::error::{Result, SimError};

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
