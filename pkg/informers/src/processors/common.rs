//! Shared pieces of every processor: object metadata, label selectors and status helpers.

use std::collections::BTreeMap;

use astrolabe_model::{
    Health, Kind, LabelSelector, Labels, OwnerRef, Reference, Resource, Status, Str,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

/// Builds a [`Resource`] of `kind` from the object's metadata: identity, labels, the
/// annotations [`super::annotations::keep`] keeps, creation time, resourceVersion and owners (with their reverse `owns`
/// references). Helm identity and `managed-by` are read from the kept labels and annotations
/// by the model. Status, facts and other references are the caller's.
pub fn from_meta(kind: Kind, m: &meta::ObjectMeta) -> Resource {
    let namespace = if kind.is_namespaced() {
        m.namespace.as_deref().unwrap_or_default()
    } else {
        ""
    };
    let mut r = Resource::new(
        m.uid.as_deref().unwrap_or_default(),
        kind,
        namespace,
        m.name.as_deref().unwrap_or_default(),
    );
    r.labels = labels(m.labels.as_ref());
    let kept = m
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| super::annotations::keep(&r.kind, k, v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    r.annotations = kept;
    r.created_at = m.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second());
    r.resource_version = m.resource_version.as_deref().unwrap_or_default().into();
    for o in m.owner_references.iter().flatten() {
        let kind = Kind::from_api_version(&o.api_version, &o.kind);
        r.owners.push(OwnerRef {
            kind: kind.clone(),
            name: o.name.as_str().into(),
            uid: o.uid.as_str().into(),
            controller: o.controller.unwrap_or(false),
        });
        r.references
            .push(Reference::owned_by(o.uid.as_str(), kind, o.name.as_str()));
    }
    r
}

/// Copies a Kubernetes string map into [`Labels`].
pub fn labels(map: Option<&BTreeMap<String, String>>) -> Labels {
    map.iter()
        .flat_map(|m| m.iter())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Converts a Kubernetes label selector. A `matchExpressions` entry with an unknown operator is
/// logged and turns the whole selector into one that matches nothing (a requirement `In` with no
/// values), as the API server would refuse to select anything with it.
pub fn selector(sel: &meta::LabelSelector) -> LabelSelector {
    let mut out = LabelSelector {
        match_labels: labels(sel.match_labels.as_ref()),
        match_expressions: Vec::new(),
    };
    for expr in sel.match_expressions.iter().flatten() {
        let values = expr.values.iter().flatten().map(String::as_str);
        if let Err(err) = out.push_expression(expr.key.as_str(), &expr.operator, values) {
            tracing::warn!(%err, key = %expr.key, "label selector matches nothing");
            return match_nothing(&expr.key);
        }
    }
    out
}

/// A selector no label set satisfies: `key in ()`.
fn match_nothing(key: &str) -> LabelSelector {
    let mut out = LabelSelector::default();
    // "In" is a known operator, so this cannot fail; an error would leave the selector empty,
    // which `selects nothing` users (Services) still treat as nothing.
    let _ = out.push_expression(key, "In", std::iter::empty::<&str>());
    out
}

/// A status from its parts.
pub fn status(health: Health, message: impl Into<Str>) -> Status {
    Status {
        health,
        message: message.into(),
    }
}

/// `Ready`, "`<Kind>` exists": the status of kinds that have no state of their own.
pub fn exists(kind: &Kind) -> Status {
    status(Health::Ready, format!("{kind} exists"))
}

/// A non-empty string as `Some(Str)`.
pub fn non_empty(s: Option<&String>) -> Option<Str> {
    s.filter(|s| !s.is_empty()).map(|s| Str::from(s.as_str()))
}

/// Finishes a resource: drops empty parts and sorts references.
pub fn finish(mut r: Resource) -> Resource {
    r.normalize();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::meta;
    use astrolabe_model::{EdgeKind, Target};

    #[test]
    fn metadata_helm_owners_and_annotations() {
        let mut m = meta("shop", "web");
        m.labels = Some(
            [
                ("helm.sh/chart", "web-1.2.0"),
                ("app.kubernetes.io/managed-by", "Helm"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        m.annotations = Some(
            [
                ("meta.helm.sh/release-name", "shop"),
                ("meta.helm.sh/release-namespace", "shop-ns"),
                (
                    "kubectl.kubernetes.io/last-applied-configuration",
                    "{\"big\":1}",
                ),
                ("note", "kept"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        m.owner_references = Some(vec![meta::OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web-abc".into(),
            uid: "rs-uid".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }]);
        m.managed_fields = Some(vec![meta::ManagedFieldsEntry::default()]);
        let raw = from_meta(Kind::Pod, &m);
        // The owner reference is declared; the model's normalize may fold it into `owners`.
        assert_eq!(
            raw.references,
            vec![Reference::owned_by("rs-uid", Kind::ReplicaSet, "web-abc")]
        );
        assert!(raw.references[0].reverse);
        assert_eq!(raw.references[0].edge, EdgeKind::Owns);
        let r = finish(raw);
        assert_eq!(r.uid.as_str(), "uid-web");
        assert_eq!(r.namespace, "shop");
        assert_eq!(r.resource_version, "42");
        assert_eq!(r.created_at, 1_700_000_000);
        assert_eq!(r.release(), "shop");
        assert_eq!(r.chart(), "web-1.2.0");
        assert_eq!(r.release_namespace(), "shop-ns");
        assert_eq!(r.managed_by(), Some("Helm"));
        assert_eq!(r.annotations.get("note"), Some("kept"));
        assert!(
            !r.annotations
                .contains_key("kubectl.kubernetes.io/last-applied-configuration")
        );
        assert_eq!(r.owners.len(), 1);
        assert!(r.owners[0].controller);
        assert!(r.references.iter().all(|x| x.edge == EdgeKind::Owns));
    }

    #[test]
    fn chart_from_annotation_and_no_helm_when_absent() {
        let mut m = meta("ns", "x");
        m.annotations = Some(
            [("helm.sh/chart".to_owned(), "c-1".to_owned())]
                .into_iter()
                .collect(),
        );
        assert_eq!(finish(from_meta(Kind::ConfigMap, &m)).chart(), "c-1");
        assert!(
            finish(from_meta(Kind::ConfigMap, &meta("ns", "y")))
                .helm()
                .is_none()
        );
    }

    #[test]
    fn cluster_scoped_kind_has_no_namespace() {
        let r = from_meta(Kind::Node, &meta("stray", "n1"));
        assert_eq!(r.namespace, "");
    }

    #[test]
    fn selector_expressions_and_unknown_operator() {
        let sel = meta::LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into_iter().collect()),
            match_expressions: Some(vec![meta::LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["fe".into(), "be".into()]),
            }]),
        };
        let s = selector(&sel);
        let good: Labels = [("app", "web"), ("tier", "fe")].into_iter().collect();
        let bad: Labels = [("app", "web"), ("tier", "db")].into_iter().collect();
        assert!(s.matches(&good));
        assert!(!s.matches(&bad));

        let broken = meta::LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![meta::LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Sometimes".into(),
                values: None,
            }]),
        };
        let s = selector(&broken);
        assert!(!s.is_empty());
        assert!(!s.matches_with_empty(&good, true));
        assert!(!s.matches_with_empty(&Labels::new(), true));
        // Used in a reference, it is still a selector target.
        let r = Reference::to_selector(EdgeKind::Protects, Kind::Pod, s, true);
        assert!(matches!(r.target, Target::Selector { .. }));
    }
}
