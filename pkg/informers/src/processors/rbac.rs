//! RBAC: Role, RoleBinding, ClusterRole and ClusterRoleBinding.

use astrolabe_model::{EdgeKind, Kind, Reference, Resource};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};

use super::common::{exists, finish, from_meta};

/// Turns a Role into a [`Resource`].
pub fn role(obj: &Role) -> Resource {
    let mut r = from_meta(Kind::Role, &obj.metadata);
    r.status = exists(&r.kind);
    finish(r)
}

/// Turns a ClusterRole into a [`Resource`].
pub fn cluster_role(obj: &ClusterRole) -> Resource {
    let mut r = from_meta(Kind::ClusterRole, &obj.metadata);
    r.status = exists(&r.kind);
    finish(r)
}

/// Turns a RoleBinding into a [`Resource`]: it `grants` its Role or ClusterRole and
/// `binds-subject` its ServiceAccount subjects (in the subject's namespace, by default the
/// binding's).
pub fn role_binding(obj: &RoleBinding) -> Resource {
    let mut r = from_meta(Kind::RoleBinding, &obj.metadata);
    let ns = r.namespace.clone();
    binding(&mut r, &obj.role_ref, obj.subjects.as_deref(), &ns);
    finish(r)
}

/// Turns a ClusterRoleBinding into a [`Resource`]: it `grants` its ClusterRole and
/// `binds-subject` its ServiceAccount subjects.
pub fn cluster_role_binding(obj: &ClusterRoleBinding) -> Resource {
    let mut r = from_meta(Kind::ClusterRoleBinding, &obj.metadata);
    binding(&mut r, &obj.role_ref, obj.subjects.as_deref(), "");
    finish(r)
}

fn binding(r: &mut Resource, role_ref: &RoleRef, subjects: Option<&[Subject]>, ns: &str) {
    let role_kind = match role_ref.kind.as_str() {
        "Role" => Some(Kind::Role),
        "ClusterRole" => Some(Kind::ClusterRole),
        _ => None,
    };
    if let Some(kind) = role_kind
        && !role_ref.name.is_empty()
    {
        r.references.push(Reference::to_key(
            EdgeKind::Grants,
            kind,
            ns,
            role_ref.name.as_str(),
        ));
    }
    for s in subjects.into_iter().flatten() {
        if s.kind != "ServiceAccount" || s.name.is_empty() {
            continue;
        }
        let subject_ns = s
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(ns);
        r.references.push(Reference::to_key(
            EdgeKind::BindsSubject,
            Kind::ServiceAccount,
            subject_ns,
            s.name.as_str(),
        ));
    }
    r.status = exists(&r.kind);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::fixtures::{key, meta};
    use astrolabe_model::Health;

    fn subject(kind: &str, name: &str, ns: Option<&str>) -> Subject {
        Subject {
            api_group: None,
            kind: kind.into(),
            name: name.into(),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn role_binding_grants_and_binds_service_accounts() {
        let rb = RoleBinding {
            metadata: meta("ns", "app"),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: "app".into(),
            },
            subjects: Some(vec![
                subject("ServiceAccount", "app", None),
                subject("ServiceAccount", "ci", Some("build")),
                subject("User", "alice", None),
            ]),
        };
        let r = role_binding(&rb);
        let mut want = vec![
            key(EdgeKind::Grants, Kind::Role, "ns", "app"),
            key(EdgeKind::BindsSubject, Kind::ServiceAccount, "ns", "app"),
            key(EdgeKind::BindsSubject, Kind::ServiceAccount, "build", "ci"),
        ];
        want.sort();
        assert_eq!(r.references, want);
        assert_eq!(r.status.health, Health::Ready);
    }

    #[test]
    fn role_binding_to_cluster_role_and_cluster_role_binding() {
        let rb = RoleBinding {
            metadata: meta("ns", "view"),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "view".into(),
            },
            subjects: None,
        };
        assert_eq!(
            role_binding(&rb).references,
            vec![key(EdgeKind::Grants, Kind::ClusterRole, "", "view")]
        );
        let crb = ClusterRoleBinding {
            metadata: meta("", "exporter"),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "view".into(),
            },
            subjects: Some(vec![subject(
                "ServiceAccount",
                "default",
                Some("kube-system"),
            )]),
        };
        let mut want = vec![
            key(EdgeKind::Grants, Kind::ClusterRole, "", "view"),
            key(
                EdgeKind::BindsSubject,
                Kind::ServiceAccount,
                "kube-system",
                "default",
            ),
        ];
        want.sort();
        assert_eq!(cluster_role_binding(&crb).references, want);
    }

    #[test]
    fn roles_exist() {
        let r = role(&Role {
            metadata: meta("ns", "app"),
            rules: None,
        });
        assert_eq!(r.status.message, "Role exists");
        let c = cluster_role(&ClusterRole {
            metadata: meta("", "view"),
            ..Default::default()
        });
        assert_eq!(c.namespace, "");
    }
}
