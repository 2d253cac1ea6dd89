//! Selectors for list and watch: label selectors (the model's [`LabelSelector`]) applied to an
//! object's JSON labels, and field selectors.

use astrolabe_model::{LabelSelector, Labels};
use serde_json::Value;

use crate::error::SimError;

/// Parses a `labelSelector` query parameter (full Kubernetes syntax, see [`LabelSelector::parse`]).
///
/// # Errors
/// [`SimError::BadRequest`] when the text is not a valid selector.
pub fn parse_labels(text: &str) -> Result<LabelSelector, SimError> {
    LabelSelector::parse(text)
        .map_err(|e| SimError::BadRequest(format!("unable to parse requirement: {e}")))
}

/// Whether an object's `metadata.labels` satisfy `selector` (an empty selector matches everything).
#[must_use]
pub fn labels_match(selector: &LabelSelector, object: &Value) -> bool {
    selector.is_empty() || selector.matches(&labels_of(object))
}

/// An object's `metadata.labels` as [`Labels`]; non-string values are skipped.
fn labels_of(object: &Value) -> Labels {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed field selector: `field=value`, `field==value` or `field!=value`, commas meaning AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// `(field path, value, negated)` triples, all of which must hold.
    pub terms: Vec<(String, String, bool)>,
}

/// Field paths supported for every kind.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra field paths supported per kind, as in the real API server.
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.serviceAccountName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Secret" => &["type"],
        "Node" => &["spec.unschedulable"],
        "Namespace" => &["status.phase"],
        "ReplicaSet" => &["status.replicas"],
        "Job" => &["status.successful"],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "type",
        ],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses a field selector for objects of `kind`.
    ///
    /// # Errors
    /// [`SimError::BadRequest`] for a malformed term or a field the kind does not support.
    pub fn parse(text: &str, kind: &str) -> Result<Self, SimError> {
        let mut terms = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, neg) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(SimError::BadRequest(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !COMMON_FIELDS.contains(&field) && !kind_fields(kind).contains(&field) {
                return Err(SimError::BadRequest(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), value.trim().to_owned(), neg));
        }
        Ok(Self { terms })
    }

    /// Whether the selector has no term (matches everything).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object satisfies every term.
    #[must_use]
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(field, value, neg)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (actual == *value) != *neg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_read_json_labels() {
        let o = json!({"metadata": {"name": "a", "labels": {"app": "web", "n": 1}}});
        let m = |s: &str| labels_match(&parse_labels(s).expect(s), &o);
        assert!(m(""));
        assert!(m("app in (web,db)"));
        assert!(!m("n"), "non-string values are not labels");
        assert!(!labels_match(
            &parse_labels("app").expect("app"),
            &json!({"metadata": {}})
        ));
        let err = parse_labels("a in x").expect_err("bad");
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"nodeName": "n1"}});
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace!=other", "Pod")
            .expect("parse");
        assert!(f.matches(&o));
        assert!(
            FieldSelector::parse("spec.nodeName==n1", "Pod")
                .expect("p")
                .matches(&o)
        );
        assert!(FieldSelector::parse("spec.nodeName=n1", "ConfigMap").is_err());
        assert!(FieldSelector::parse("foo=bar", "Pod").is_err());
        assert!(
            !FieldSelector::parse("metadata.name=b", "Pod")
                .expect("p")
                .matches(&o)
        );
    }
}
