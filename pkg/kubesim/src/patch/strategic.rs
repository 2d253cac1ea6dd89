//! Strategic merge patch: a JSON merge patch whose lists merge by the keys of [`super::keys`],
//! with the directives `$patch: replace|delete|merge`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` is accepted and ignored (items
//! keep the order of the live object, new ones are appended).

use serde_json::{Map, Value};

use super::keys::{ListStrategy, list_strategy};
use crate::error::{Result, SimError};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

fn bad(msg: &str) -> SimError {
    SimError::BadRequest(format!("invalid strategic merge patch: {msg}"))
}

/// The patch object without its directive keys.
fn without_directives(patch: &Map<String, Value>) -> Map<String, Value> {
    patch
        .iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip(v)))
        .collect()
}

/// A patch value with every directive removed (for values that are inserted, not merged).
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(without_directives(m)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| i.get(PATCH).is_none())
                .map(strip)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies a strategic merge `patch` to `target`, an object of `kind`.
///
/// # Errors
/// [`SimError::BadRequest`] for a patch that is not an object or carries an unknown directive.
pub fn apply(kind: &str, target: &mut Value, patch: &Value) -> Result<()> {
    let Value::Object(patch) = patch else {
        return Err(bad("the patch must be a JSON object"));
    };
    merge_object(kind, &mut Vec::new(), target, patch)
}

fn merge_object<'p>(
    kind: &str,
    path: &mut Vec<&'p str>,
    target: &mut Value,
    patch: &'p Map<String, Value>,
) -> Result<()> {
    match patch.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(bad(&format!("unknown $patch value {other:?}"))),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return Ok(());
    };
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE) {
            let drop: Vec<&Value> = v.as_array().map(|a| a.iter().collect()).unwrap_or_default();
            if let Some(Value::Array(items)) = map.get_mut(field) {
                items.retain(|i| !drop.contains(&i));
            }
            continue;
        }
        if k.starts_with('$') {
            // $setElementOrder/<field> and $retainKeys (handled below): nothing to merge.
            continue;
        }
        path.push(k.as_str());
        match v {
            Value::Null => {
                map.remove(k);
            }
            Value::Object(sub) => {
                let slot = map.entry(k.clone()).or_insert(Value::Null);
                merge_object(kind, path, slot, sub)?;
                if slot.is_null() {
                    map.remove(k);
                }
            }
            Value::Array(items) => {
                let strategy = list_strategy(kind, path);
                let slot = map.entry(k.clone()).or_insert(Value::Null);
                merge_list(kind, path, strategy, slot, items)?;
            }
            scalar => {
                map.insert(k.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or_else(|| bad("$retainKeys must be a list"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        map.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn merge_list<'p>(
    kind: &str,
    path: &mut Vec<&'p str>,
    strategy: ListStrategy,
    target: &mut Value,
    patch: &'p [Value],
) -> Result<()> {
    let replace_all = patch
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"));
    let live = match target {
        Value::Array(items) if !replace_all && strategy != ListStrategy::Atomic => items,
        _ => {
            *target = strip(&Value::Array(patch.to_vec()));
            return Ok(());
        }
    };
    match strategy {
        ListStrategy::Set => {
            for item in patch {
                if !live.contains(item) {
                    live.push(item.clone());
                }
            }
        }
        ListStrategy::Key(key) => {
            for item in patch {
                let Some(obj) = item.as_object() else {
                    return Err(bad(&format!(
                        "the items of {} must be objects",
                        path.join(".")
                    )));
                };
                let id = obj.get(key).ok_or_else(|| {
                    bad(&format!(
                        "an item of {} lacks its merge key {key:?}",
                        path.join(".")
                    ))
                })?;
                let pos = live.iter().position(|l| l.get(key) == Some(id));
                let delete = obj.get(PATCH).and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(p), true) => {
                        live.remove(p);
                    }
                    (None, true) => {}
                    (Some(p), false) => merge_object(kind, path, &mut live[p], obj)?,
                    (None, false) => live.push(Value::Object(without_directives(obj))),
                }
            }
        }
        ListStrategy::Atomic => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> Value {
        json!({"spec": {"template": {"spec": {
            "containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "side", "image": "side:1"}
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "tolerations": [{"key": "a"}]
        }}}})
    }

    #[test]
    fn lists_merge_by_key() {
        let mut d = deploy();
        let patch = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}]},
                           {"name": "new", "image": "new:1"}],
            "tolerations": [{"key": "b"}]
        }}}});
        apply("Deployment", &mut d, &patch).expect("patch");
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "app:2");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
        );
        assert_eq!(c[1]["image"], "side:1");
        assert_eq!(c[2]["name"], "new");
        assert_eq!(
            d["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "b"}])
        );
    }

    #[test]
    fn directives() {
        let mut d = deploy();
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
            "containers": [{"name": "side", "$patch": "delete"}],
            "volumes": [{"$patch": "replace"}, {"name": "w", "configMap": {"name": "c"}}]
        }}}});
        apply("Deployment", &mut d, &patch).expect("patch");
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            spec["volumes"],
            json!([{"name": "w", "configMap": {"name": "c"}}])
        );

        let mut m = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"],
                                        "labels": {"$patch": "replace", "z": "3"}}});
        apply("ConfigMap", &mut m, &patch).expect("patch");
        assert_eq!(m["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(m["metadata"]["labels"], json!({"z": "3"}));

        let mut v = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        apply("Deployment", &mut v, &patch).expect("patch");
        assert_eq!(v["spec"]["strategy"], json!({"type": "Recreate"}));
        assert!(apply("Pod", &mut v, &json!({"$patch": "bogus"})).is_err());
    }
}
