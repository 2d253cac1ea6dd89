//! Label and field selectors: parsing the Kubernetes string syntax and matching JSON objects.

use serde_json::Value;

use crate::error::SimError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also matches objects without the key).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also matches objects without the key).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// A parsed label selector: every requirement must hold (commas mean AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, all of which must match.
    pub requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the Kubernetes label selector syntax (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`).
    ///
    /// # Errors
    /// [`SimError::BadRequest`] when the text is not a valid selector.
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirement (matches everything).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    #[must_use]
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

fn bad(text: &str) -> SimError {
    SimError::BadRequest(format!(
        "unable to parse requirement: invalid label selector: {text:?}"
    ))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_requirement(part: &str) -> Result<LabelRequirement, SimError> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok(LabelRequirement::DoesNotExist(key.to_owned()))
        } else {
            Err(bad(part))
        };
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = part.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) || !valid_value(v) {
                return Err(bad(part));
            }
            return Ok(if neg {
                LabelRequirement::NotEquals(k.to_owned(), v.to_owned())
            } else {
                LabelRequirement::Equals(k.to_owned(), v.to_owned())
            });
        }
    }
    if let Some(open) = part.find('(') {
        let head = part[..open].trim();
        let body = part[open + 1..].trim_end();
        let body = body.strip_suffix(')').ok_or_else(|| bad(part))?;
        let mut words = head.split_whitespace();
        let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad(part));
        };
        let values: Vec<String> = body
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if !valid_key(key) || values.is_empty() || !values.iter().all(|v| valid_value(v)) {
            return Err(bad(part));
        }
        return match op {
            "in" => Ok(LabelRequirement::In(key.to_owned(), values)),
            "notin" => Ok(LabelRequirement::NotIn(key.to_owned(), values)),
            _ => Err(bad(part)),
        };
    }
    if valid_key(part) {
        Ok(LabelRequirement::Exists(part.to_owned()))
    } else {
        Err(bad(part))
    }
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

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn parses_all_forms() {
        let s = LabelSelector::parse("a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g").expect("parse");
        assert_eq!(s.requirements.len(), 7);
        assert_eq!(
            s.requirements[3],
            LabelRequirement::In("d".into(), vec!["x".into(), "y".into()])
        );
        assert_eq!(
            s.requirements[6],
            LabelRequirement::DoesNotExist("g".into())
        );
        assert!(LabelSelector::parse("").expect("empty").is_empty());
        assert!(LabelSelector::parse("app.kubernetes.io/name=web").is_ok());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["a in x", "a in ()", "=x", "a=b c", "a foo (b)", "a in (b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_semantics() {
        let o = obj(json!({"a": "1", "d": "x"}));
        let m = |s: &str| LabelSelector::parse(s).expect(s).matches(&o);
        assert!(m("a=1"));
        assert!(m("a==1,d in (x,y)"));
        assert!(!m("a=2"));
        assert!(m("c!=3"), "!= matches missing keys");
        assert!(m("e notin (z)"), "notin matches missing keys");
        assert!(!m("d notin (x)"));
        assert!(m("a"));
        assert!(!m("!a"));
        assert!(m("!zz"));
        assert!(!m("zz in (a)"));
        assert!(m(""));
        assert!(
            !LabelSelector::parse("a")
                .expect("a")
                .matches(&json!({"metadata": {}}))
        );
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
