//! Core kinds without much state: ConfigMap, Secret (metadata only), ServiceAccount, Namespace
//! and Node.

use astrolabe_model::{EdgeKind, Facts, Health, Kind, Reference, Resource};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret, ServiceAccount};
use kube::core::PartialObjectMeta;

use super::common::{exists, finish, from_meta, non_empty, status};

/// Turns a ConfigMap into a [`Resource`] (its data is not read).
pub fn config_map(obj: &ConfigMap) -> Resource {
    let mut r = from_meta(Kind::ConfigMap, &obj.metadata);
    r.status = exists(&r.kind);
    finish(r)
}

/// Turns a Secret's metadata into a [`Resource`]. Secrets are watched for their metadata only
/// (kube asks the API server for `PartialObjectMetadata`), so `data`, `stringData` and `type`
/// never reach the process.
pub fn secret(obj: &PartialObjectMeta<Secret>) -> Resource {
    let mut r = from_meta(Kind::Secret, &obj.metadata);
    r.status = exists(&r.kind);
    finish(r)
}

/// Turns a ServiceAccount into a [`Resource`]: its image pull Secrets are `pulls-with`.
pub fn service_account(obj: &ServiceAccount) -> Resource {
    let mut r = from_meta(Kind::ServiceAccount, &obj.metadata);
    for s in obj.image_pull_secrets.iter().flatten() {
        if !s.name.is_empty() {
            r.references.push(Reference::to_key(
                EdgeKind::PullsWith,
                Kind::Secret,
                r.namespace.clone(),
                s.name.as_str(),
            ));
        }
    }
    r.status = exists(&r.kind);
    finish(r)
}

/// Turns a Namespace into a [`Resource`] (status from its phase).
pub fn namespace(obj: &Namespace) -> Resource {
    let mut r = from_meta(Kind::Namespace, &obj.metadata);
    let phase = obj
        .status
        .as_ref()
        .and_then(|s| non_empty(s.phase.as_ref()));
    r.status = match phase.as_deref() {
        Some("Active") => status(Health::Ready, "Active"),
        Some("Terminating") => status(Health::Pending, "Terminating"),
        other => status(
            Health::Unknown,
            format!("Phase: {}", other.unwrap_or_default()),
        ),
    };
    r.set_facts(&Facts {
        phase,
        ..Facts::default()
    });
    finish(r)
}

/// Turns a Node into a [`Resource`] (status from its `Ready` condition).
pub fn node(obj: &Node) -> Resource {
    let mut r = from_meta(Kind::Node, &obj.metadata);
    let ready = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    let cordoned = obj
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    r.status = match ready.map(|c| (c.status.as_str(), c.reason.as_deref())) {
        Some(("True", _)) if cordoned => status(Health::Ready, "Node is ready (cordoned)"),
        Some(("True", _)) => status(Health::Ready, "Node is ready"),
        Some(("False", reason)) => status(
            Health::Error,
            format!("Node not ready: {}", reason.unwrap_or("NotReady")),
        ),
        Some((_, _)) => status(Health::Unknown, "Node status unknown"),
        None => status(Health::Unknown, "No Ready condition"),
    };
    finish(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, map, meta};
    use k8s_openapi::api::core::v1::{
        LocalObjectReference, NamespaceStatus, NodeCondition, NodeSpec, NodeStatus,
    };

    #[test]
    fn secret_is_read_from_metadata() {
        let mut m = meta("ns", "creds");
        m.annotations = Some(map(&[
            (
                "kubectl.kubernetes.io/last-applied-configuration",
                "{\"stringData\":{\"password\":\"hunter2-applied\"}}",
            ),
            (
                "kapp.k14s.io/original",
                "{\"stringData\":{\"password\":\"hunter2-original\"}}",
            ),
            ("example.com/password-hint", "hunter2-hint"),
            ("meta.helm.sh/release-name", "shop"),
            ("kubernetes.io/service-account.name", "builder"),
        ]));
        let s = PartialObjectMeta::<Secret> {
            metadata: m,
            ..Default::default()
        };
        let r = secret(&s);
        let json = serde_json::to_string(&r).expect("serializes");
        for needle in ["hunter2", "password"] {
            assert!(!json.contains(needle), "{needle} leaked into {json}");
        }
        let kept: Vec<_> = r.annotations.iter().map(|(k, _)| k).collect();
        assert_eq!(
            kept,
            [
                "kubernetes.io/service-account.name",
                "meta.helm.sh/release-name"
            ]
        );
        assert_eq!(r.release(), "shop");
        assert_eq!(r.key().to_string(), "Secret/ns/creds");
        assert_eq!(r.status, status(Health::Ready, "Secret exists"));
        assert!(r.references.is_empty());
    }

    #[test]
    fn config_map_is_metadata_only() {
        let mut m = meta("ns", "cfg");
        m.annotations = Some(map(&[
            (
                "kapp.k14s.io/original",
                "{\"data\":{\"key\":\"value-in-original\"}}",
            ),
            ("owner", "team-a"),
        ]));
        let cm = ConfigMap {
            metadata: m,
            data: Some(map(&[("key", "value-not-kept")])),
            ..Default::default()
        };
        let r = config_map(&cm);
        let json = serde_json::to_string(&r).expect("serializes");
        assert!(!json.contains("value-not-kept"));
        assert!(!json.contains("value-in-original"));
        assert_eq!(r.annotations.get("owner"), Some("team-a"));
        assert_eq!(r.status, status(Health::Ready, "ConfigMap exists"));
    }

    #[test]
    fn service_account_pulls_with() {
        let sa = ServiceAccount {
            metadata: meta("ns", "builder"),
            image_pull_secrets: Some(vec![LocalObjectReference {
                name: "regcred".into(),
            }]),
            ..Default::default()
        };
        assert_eq!(
            service_account(&sa).references,
            vec![key(EdgeKind::PullsWith, Kind::Secret, "ns", "regcred")]
        );
    }

    #[test]
    fn namespace_phases() {
        let ns = |phase: &str| Namespace {
            metadata: meta("", "team"),
            spec: None,
            status: Some(NamespaceStatus {
                phase: Some(phase.into()),
                conditions: None,
            }),
        };
        assert_eq!(
            namespace(&ns("Active")).status,
            status(Health::Ready, "Active")
        );
        assert_eq!(
            namespace(&ns("Active")).facts().phase.as_deref(),
            Some("Active")
        );
        assert_eq!(namespace(&ns("Terminating")).status.health, Health::Pending);
        assert_eq!(
            namespace(&ns("Odd")).status,
            status(Health::Unknown, "Phase: Odd")
        );
    }

    #[test]
    fn node_ready_condition() {
        let node_with = |s: &str, cordon: bool| Node {
            metadata: meta("", "n1"),
            spec: Some(NodeSpec {
                unschedulable: Some(cordon),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: s.into(),
                    reason: Some("KubeletNotReady".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        assert_eq!(
            node(&node_with("True", false)).status,
            status(Health::Ready, "Node is ready")
        );
        assert_eq!(node(&node_with("True", true)).status.health, Health::Ready);
        assert_eq!(
            node(&node_with("False", false)).status,
            status(Health::Error, "Node not ready: KubeletNotReady")
        );
        assert_eq!(
            node(&node_with("Unknown", false)).status.health,
            Health::Unknown
        );
        let bare = Node {
            metadata: meta("", "n2"),
            ..Default::default()
        };
        assert_eq!(node(&bare).status.health, Health::Unknown);
        assert_eq!(node(&bare).namespace, "");
    }
}
