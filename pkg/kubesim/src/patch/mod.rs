//! PATCH bodies: JSON patch (RFC 6902) and JSON merge patch (RFC 7386) with the `json-patch`
//! crate, strategic merge patch ([`strategic`]) and server-side apply ([`apply`]), chosen by the
//! request's `Content-Type`.

pub mod apply;
mod fields;
pub mod keys;
pub mod strategic;

use serde_json::Value;

use crate::error::{Result, SimError};

/// The patch types of the Kubernetes API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; JSON is YAML too).
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value, or None when it is not a patch type.
    #[must_use]
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let mime = ct.split(';').next().unwrap_or_default().trim();
        match mime {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a JSON, merge or strategic merge `patch` to `target`, an object of `kind`.
///
/// # Errors
/// [`SimError::BadRequest`] for a malformed patch, [`SimError::Invalid`] for a JSON patch whose
/// operation fails (a `test` that does not hold, a path that does not exist).
pub fn apply_patch(kind: &str, ty: PatchType, target: &mut Value, patch: &Value) -> Result<()> {
    match ty {
        PatchType::Merge => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| SimError::BadRequest(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &ops)
                .map_err(|e| SimError::Invalid(format!("the JSON patch could not be applied: {e}")))
        }
        PatchType::Strategic => strategic::apply(kind, target, patch),
        PatchType::Apply => Err(SimError::BadRequest(
            "server-side apply is not a plain patch".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn merge_and_json() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        apply_patch(
            "ConfigMap",
            PatchType::Merge,
            &mut t,
            &json!({"a": "z", "c": {"f": null}, "l": [3]}),
        )
        .expect("merge");
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
        apply_patch(
            "ConfigMap",
            PatchType::Json,
            &mut t,
            &json!([{"op": "add", "path": "/l/-", "value": 4}]),
        )
        .expect("json");
        assert_eq!(t["l"], json!([3, 4]));
        let failed = apply_patch(
            "ConfigMap",
            PatchType::Json,
            &mut t,
            &json!([{"op": "test", "path": "/a", "value": "q"}]),
        );
        assert!(matches!(failed, Err(SimError::Invalid(_))));
    }
}
