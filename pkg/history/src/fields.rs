//! Field-by-field changes between two versions of one object, over everything the server keeps.
//!
//! Both versions are serialised to JSON and compared leaf by leaf into paths:
//! - objects are compared key by key, keys in sorted order: `labels.app`, `status.health`,
//!   `replicas.ready`; a key that is not a plain word (letters, digits, `_`, `-`) is quoted:
//!   `labels["app.kubernetes.io/name"]`;
//! - arrays of scalars are compared element by element (`images[0]`), an element present on one
//!   side only having `null` on the other; arrays holding objects or arrays (`owners`,
//!   `references`) are compared as a whole;
//! - the kind-specific facts appear at the top level under their own names (`replicas`,
//!   `image`, `phase`, `nodeName`, ...), and every top-level name is camelCase
//!   (`resourceVersion`, `createdAt`);
//! - the UID is never compared (both versions are the same object); kind, namespace and name
//!   appear only in the rare case a UID is reused under another identity.
//!
//! A field absent on one side has `null` there. The order is deterministic: paths in the order
//! of a depth-first walk over sorted keys.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use astrolabe_model::Resource;
use serde::Serialize;
use serde_json::{Map, Value};

/// One changed field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// Where the field is (`labels.app`, `replicas.ready`, `images[0]`, `owners`).
    pub field: String,
    /// Its value in the older version (`null` when absent).
    pub old: Value,
    /// Its value in the newer version (`null` when absent).
    pub new: Value,
}

/// The fields that differ between two versions of an object, in deterministic order; empty when
/// they are equal.
pub fn field_changes(old: &Resource, new: &Resource) -> Vec<FieldChange> {
    // Only the top-level fields that differ are serialised: the others would compare equal, and
    // most changes (a status update) differ in two or three of them.
    let (mut old, mut new) = (old.clone(), new.clone());
    macro_rules! equal_ones_emptied {
        ($($field:ident),*) => {
            $(
                if old.$field == new.$field {
                    old.$field = Default::default();
                    new.$field = Default::default();
                }
            )*
        };
    }
    equal_ones_emptied!(
        namespace,
        name,
        labels,
        annotations,
        created_at,
        resource_version,
        owners,
        status,
        facts,
        references
    );
    let mut out = Vec::new();
    compare_maps(&mut String::new(), &flatten(&old), &flatten(&new), &mut out);
    out
}

/// The resource as the JSON object compared: camelCase top-level names, facts hoisted to the
/// top level, no UID.
fn flatten(r: &Resource) -> Map<String, Value> {
    let mut out = Map::new();
    let Ok(Value::Object(fields)) = serde_json::to_value(r) else {
        return out;
    };
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("uid", _) => {}
            ("facts", Value::Array(facts)) => {
                // Each fact is an externally tagged enum: `{"Replicas": {...}}`.
                for fact in facts {
                    if let Value::Object(tagged) = fact {
                        for (tag, v) in tagged {
                            out.insert(camel_case(&tag), v);
                        }
                    }
                }
            }
            (_, value) => {
                out.insert(camel_case(&name), value);
            }
        }
    }
    out
}

/// `resource_version` and `RestartCount` both become `resourceVersion`/`restartCount`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            upper = true;
        } else if i == 0 {
            out.push(c.to_ascii_lowercase());
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn compare_maps(
    path: &mut String,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<FieldChange>,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        compare_child(path, |p| push_key(p, key), old.get(key), new.get(key), out);
    }
}

/// Compares one child (a key's or an element's value, `None` when absent) of the values at
/// `path`, the child's name appended by `name`.
fn compare_child(
    path: &mut String,
    name: impl FnOnce(&mut String),
    old: Option<&Value>,
    new: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    let len = path.len();
    name(path);
    compare(
        path,
        old.unwrap_or(&Value::Null),
        new.unwrap_or(&Value::Null),
        out,
    );
    path.truncate(len);
}

fn compare(path: &mut String, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => compare_maps(path, a, b, out),
        (Value::Object(a), Value::Null) => compare_maps(path, a, &Map::new(), out),
        (Value::Null, Value::Object(b)) => compare_maps(path, &Map::new(), b, out),
        (a, b) if scalars(a) && scalars(b) => {
            let (a, b) = (elements(a), elements(b));
            for i in 0..a.len().max(b.len()) {
                let index = |p: &mut String| {
                    let _ = write!(p, "[{i}]");
                };
                compare_child(path, index, a.get(i), b.get(i), out);
            }
        }
        _ => out.push(FieldChange {
            field: path.clone(),
            old: old.clone(),
            new: new.clone(),
        }),
    }
}

/// Whether a value is an array of scalars, or absent (compared with such an array).
fn scalars(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(|i| !i.is_array() && !i.is_object()),
        Value::Null => true,
        _ => false,
    }
}

fn elements(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        _ => &[],
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_owned()).to_string());
        path.push(']');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use astrolabe_model::{EdgeKind, Health, Kind, OwnerRef, Reference, Replicas, Uid};
    use serde_json::json;

    use super::*;

    /// Serialising only the fields that differ gives what comparing the whole objects gives,
    /// for every pair of versions of the generated cluster's objects (each field changed alone
    /// and several at once).
    #[test]
    fn only_the_fields_that_differ_are_needed() {
        let whole = |old: &Resource, new: &Resource| {
            let mut out = Vec::new();
            compare_maps(&mut String::new(), &flatten(old), &flatten(new), &mut out);
            out
        };
        for (i, r) in astrolabe_generator::generate(3, 300)
            .into_iter()
            .enumerate()
        {
            let mut variants = vec![r.clone()];
            let mut v = r.clone();
            v.resource_version = format!("{i}-next").into();
            variants.push(v.clone());
            v.status.message = "changed".into();
            v.status.health = Health::Error;
            variants.push(v.clone());
            v.labels.insert("variant", "yes");
            variants.push(v.clone());
            v.references.pop();
            v.owners.clear();
            v.update_facts(|f| f.restart_count = Some(7));
            variants.push(v.clone());
            v.name = format!("{}-renamed", v.name).into();
            variants.push(v);
            for a in &variants {
                for b in &variants {
                    assert_eq!(field_changes(a, b), whole(a, b), "{}", r.name);
                }
            }
        }
    }

    fn deployment() -> Resource {
        let mut r = Resource::new("u1", Kind::Deployment, "shop", "web");
        r.labels.insert("app", "web");
        r.labels.insert("app.kubernetes.io/name", "web");
        r.resource_version = "10".into();
        r.update_facts(|f| {
            f.replicas = Some(Replicas {
                desired: 3,
                current: 3,
                ready: 3,
                available: 3,
            });
            f.image = Some("web:1".into());
        });
        r
    }

    fn fields(changes: &[FieldChange]) -> Vec<&str> {
        changes.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn equal_versions_have_no_changes() {
        assert!(field_changes(&deployment(), &deployment()).is_empty());
    }

    #[test]
    fn leaves_are_named_by_dotted_paths() {
        let old = deployment();
        let mut new = old.clone();
        new.labels.insert("app", "shop");
        new.labels.remove("app.kubernetes.io/name");
        new.labels.insert("tier", "front");
        new.resource_version = "11".into();
        new.status.health = Health::Error;
        new.status.message = "0/3 ready".into();
        new.update_facts(|f| {
            f.replicas = Some(Replicas::default());
            f.image = Some("web:2".into());
            f.phase = Some("Failed".into());
        });
        let changes = field_changes(&old, &new);
        assert_eq!(
            fields(&changes),
            [
                "image",
                "labels.app",
                r#"labels["app.kubernetes.io/name"]"#,
                "labels.tier",
                "phase",
                "replicas.available",
                "replicas.current",
                "replicas.desired",
                "replicas.ready",
                "resourceVersion",
                "status.health",
                "status.message",
            ]
        );
        assert_eq!(changes[0].old, json!("web:1"));
        assert_eq!(changes[0].new, json!("web:2"));
        assert_eq!(changes[2].new, Value::Null);
        assert_eq!(changes[3].old, Value::Null);
        assert_eq!(changes[4].old, Value::Null);
        assert_eq!(changes[4].new, json!("Failed"));
        assert_eq!(changes[5].old, json!(3));
        assert_eq!(changes[5].new, json!(0));
    }

    #[test]
    fn arrays_of_objects_are_compared_whole() {
        let old = deployment();
        let mut new = old.clone();
        new.owners.push(OwnerRef {
            kind: Kind::ReplicaSet,
            name: "web-1".into(),
            uid: Uid::from("rs1"),
            controller: true,
        });
        new.references.push(Reference::to_key(
            EdgeKind::Mounts,
            Kind::ConfigMap,
            "shop",
            "conf",
        ));
        let changes = field_changes(&old, &new);
        assert_eq!(fields(&changes), ["owners", "references"]);
        assert_eq!(changes[0].old, json!([]));
        assert_eq!(changes[0].new.as_array().unwrap().len(), 1);
    }

    #[test]
    fn arrays_of_scalars_are_compared_by_element() {
        let mut path = String::from("images");
        let mut out = Vec::new();
        compare(
            &mut path,
            &json!(["a", "b"]),
            &json!(["a", "c", "d"]),
            &mut out,
        );
        assert_eq!(fields(&out), ["images[1]", "images[2]"]);
        assert_eq!(out[1].old, Value::Null);
    }

    #[test]
    fn identity_and_uid() {
        let old = deployment();
        let mut new = old.clone();
        new.uid = Uid::from("other");
        assert!(
            field_changes(&old, &new).is_empty(),
            "the uid is not compared"
        );
        new.name = "api".into();
        assert_eq!(fields(&field_changes(&old, &new)), ["name"]);
    }
}
