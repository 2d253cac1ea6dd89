//! Strict field validation (`fieldValidation=Strict`, which kubectl sends with create, apply,
//! replace and edit; checked on bodies and on the result of a patch): a body is decoded into
//! its kind's `k8s-openapi` type and encoded back; a field of the body missing from the result is
//! unknown to the type, and a body that does not decode has a value of the wrong type. Both are
//! answered 400, as the API server's strict decoding does.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Result, SimError};
use crate::kinds::KindInfo;

/// Decodes `obj` as `T` and encodes it back.
fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> std::result::Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

macro_rules! typed_round_trip {
    ([] $(
        $variant:ident => $name:literal, group $group:literal, version $version:literal,
        plural $plural:literal, singular $singular:literal, namespaced $namespaced:literal,
        short [$($short:literal),*], metadata_only $metadata_only:tt, snake $snake:ident,
        rust $($path:ident)::+;
    )*) => {
        /// The round trip of `obj` through the type of `(group, kind)`, None for an untyped kind.
        fn typed(group: &str, kind: &str, obj: &Value) -> Option<std::result::Result<Value, String>> {
            use k8s_openapi::api as k8s;
            match (group, kind) {
                $(($group, $name) => Some(round_trip::<k8s::$($path)::+>(obj)),)*
                ("", "Endpoints") => Some(round_trip::<k8s::core::v1::Endpoints>(obj)),
                ("", "Event") => Some(round_trip::<k8s::core::v1::Event>(obj)),
                ("events.k8s.io", "Event") => Some(round_trip::<k8s::events::v1::Event>(obj)),
                ("coordination.k8s.io", "Lease") => {
                    Some(round_trip::<k8s::coordination::v1::Lease>(obj))
                }
                ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(round_trip::<
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
                >(obj)),
                _ => None,
            }
        }
    };
}

astrolabe_model::for_each_kind!(typed_round_trip);

/// Appends the paths of fields of `input` that `output` lacks.
fn unknown(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    None if !v.is_null() => out.push(p),
                    Some(ov) => unknown(v, ov, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o).enumerate() {
                unknown(iv, ov, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Checks `obj` strictly against the type of `info`'s kind (kinds without a type pass).
///
/// # Errors
/// [`SimError::BadRequest`] naming the unknown fields, or the value that does not decode.
pub fn strict(info: &KindInfo, obj: &Value) -> Result<()> {
    let mut typed_obj = obj.clone();
    if let Some(m) = typed_obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(info.api_version()));
        m.insert("kind".into(), json!(info.kind));
    }
    let cannot = |why: String| {
        SimError::BadRequest(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {why}",
            kind = info.kind,
            v = info.version
        ))
    };
    let Some(back) = typed(info.group, info.kind, &typed_obj) else {
        return Ok(());
    };
    let back = back.map_err(|e| cannot(format!("strict decoding error: {e}")))?;
    let mut fields = Vec::new();
    unknown(&typed_obj, &back, "", &mut fields);
    if fields.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Err(cannot(format!(
        "strict decoding error: {}",
        list.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::lookup;

    #[test]
    fn unknown_and_mistyped_fields() {
        let cm = lookup("ConfigMap").expect("cm");
        assert!(strict(cm, &json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).is_ok());
        let err = strict(cm, &json!({"metadata": {"name": "a"}, "dataa": {"k": "v"}}))
            .expect_err("unknown");
        assert!(err.to_string().contains("unknown field \"dataa\""), "{err}");
        let deploy = lookup("Deployment").expect("deploy");
        let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagee": "x"}]}}}});
        let err = strict(deploy, &d).expect_err("unknown");
        assert!(
            err.to_string()
                .contains("spec.template.spec.containers[0].imagee"),
            "{err}"
        );
        // A partial apply configuration lacks required fields; that is not a decoding error.
        assert!(
            strict(
                deploy,
                &json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}})
            )
            .is_ok()
        );
        let typed = json!({"metadata": {"name": "d"}, "spec": {"replicas": "three"}});
        assert!(strict(deploy, &typed).is_err());
    }
}
