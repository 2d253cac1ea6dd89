//! Processors: pure functions from a Kubernetes object to a [`Resource`], one file per kind
//! family. Only this module (and the watchers that call it) knows Kubernetes types.
//!
//! - [`common`]: metadata, label selectors, status helpers.
//! - [`pod_spec`]: the references a pod spec makes (Pods and every workload template).
//! - [`mod@pod`], [`core`], [`storage`], [`workloads`], [`networking`], [`policy`], [`rbac`]: the
//!   kinds.

use std::fmt::Debug;

use astrolabe_model::{Kind, Resource};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::{Api, Client};
use serde::de::DeserializeOwned;

pub mod common;
pub mod core;
pub mod networking;
pub mod pod;
pub mod pod_spec;
pub mod policy;
pub mod rbac;
pub mod storage;
pub mod workloads;

#[cfg(test)]
pub(crate) mod fixtures;

pub use self::core::{config_map, namespace, node, secret, service_account};
pub use networking::{endpoint_slice, ingress, ingress_class, network_policy, service};
pub use pod::pod;
pub use policy::{horizontal_pod_autoscaler, pod_disruption_budget};
pub use rbac::{cluster_role, cluster_role_binding, role, role_binding};
pub use storage::{persistent_volume, persistent_volume_claim, storage_class};
pub use workloads::{cron_job, daemon_set, deployment, job, replica_set, stateful_set};

/// A Kubernetes type Astrolabe watches: its [`Kind`], how to reach it, and its processor.
pub trait Processor:
    kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// The kind this type is.
    fn kind() -> Kind;

    /// The API for this type: in `namespace` when given and the kind is namespaced, else
    /// cluster-wide (all namespaces).
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;

    /// Turns the object into a [`Resource`].
    fn process(&self) -> Resource;
}

macro_rules! processors {
    (namespaced { $($nty:ty => $nkind:ident, $nf:path;)* } cluster { $($cty:ty => $ckind:ident, $cf:path;)* }) => {
        $(
            impl Processor for $nty {
                fn kind() -> Kind {
                    Kind::$nkind
                }
                fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
                    match namespace {
                        Some(ns) => Api::namespaced(client, ns),
                        None => Api::all(client),
                    }
                }
                fn process(&self) -> Resource {
                    $nf(self)
                }
            }
        )*
        $(
            impl Processor for $cty {
                fn kind() -> Kind {
                    Kind::$ckind
                }
                fn api(client: Client, _namespace: Option<&str>) -> Api<Self> {
                    Api::all(client)
                }
                fn process(&self) -> Resource {
                    $cf(self)
                }
            }
        )*
    };
}

processors! {
    namespaced {
    Pod => Pod, pod;
    Service => Service, service;
    EndpointSlice => EndpointSlice, endpoint_slice;
    ConfigMap => ConfigMap, config_map;
    Secret => Secret, secret;
    ServiceAccount => ServiceAccount, service_account;
    PersistentVolumeClaim => PersistentVolumeClaim, persistent_volume_claim;
    Deployment => Deployment, deployment;
    ReplicaSet => ReplicaSet, replica_set;
    StatefulSet => StatefulSet, stateful_set;
    DaemonSet => DaemonSet, daemon_set;
    Job => Job, job;
    CronJob => CronJob, cron_job;
    Ingress => Ingress, ingress;
    NetworkPolicy => NetworkPolicy, network_policy;
    HorizontalPodAutoscaler => HorizontalPodAutoscaler, horizontal_pod_autoscaler;
    PodDisruptionBudget => PodDisruptionBudget, pod_disruption_budget;
    Role => Role, role;
    RoleBinding => RoleBinding, role_binding;
    }
    cluster {
    PersistentVolume => PersistentVolume, persistent_volume;
    StorageClass => StorageClass, storage_class;
    Namespace => Namespace, namespace;
    Node => Node, node;
    IngressClass => IngressClass, ingress_class;
    ClusterRole => ClusterRole, cluster_role;
    ClusterRoleBinding => ClusterRoleBinding, cluster_role_binding;
    }
}

/// Calls `$body` with the Kubernetes type of a watched [`Kind`] bound to `$ty`; `$other` for
/// kinds that are not watched.
macro_rules! with_kind_type {
    ($kind:expr, $ty:ident => $body:expr, _ => $other:expr) => {{
        use k8s_openapi::api::apps::v1 as apps;
        use k8s_openapi::api::core::v1 as core;
        use k8s_openapi::api::{autoscaling, batch, discovery, networking, policy, rbac, storage};
        match $kind {
            astrolabe_model::Kind::Pod => {
                type $ty = core::Pod;
                $body
            }
            astrolabe_model::Kind::Service => {
                type $ty = core::Service;
                $body
            }
            astrolabe_model::Kind::EndpointSlice => {
                type $ty = discovery::v1::EndpointSlice;
                $body
            }
            astrolabe_model::Kind::ConfigMap => {
                type $ty = core::ConfigMap;
                $body
            }
            astrolabe_model::Kind::Secret => {
                type $ty = core::Secret;
                $body
            }
            astrolabe_model::Kind::ServiceAccount => {
                type $ty = core::ServiceAccount;
                $body
            }
            astrolabe_model::Kind::PersistentVolumeClaim => {
                type $ty = core::PersistentVolumeClaim;
                $body
            }
            astrolabe_model::Kind::PersistentVolume => {
                type $ty = core::PersistentVolume;
                $body
            }
            astrolabe_model::Kind::StorageClass => {
                type $ty = storage::v1::StorageClass;
                $body
            }
            astrolabe_model::Kind::Namespace => {
                type $ty = core::Namespace;
                $body
            }
            astrolabe_model::Kind::Node => {
                type $ty = core::Node;
                $body
            }
            astrolabe_model::Kind::Deployment => {
                type $ty = apps::Deployment;
                $body
            }
            astrolabe_model::Kind::ReplicaSet => {
                type $ty = apps::ReplicaSet;
                $body
            }
            astrolabe_model::Kind::StatefulSet => {
                type $ty = apps::StatefulSet;
                $body
            }
            astrolabe_model::Kind::DaemonSet => {
                type $ty = apps::DaemonSet;
                $body
            }
            astrolabe_model::Kind::Job => {
                type $ty = batch::v1::Job;
                $body
            }
            astrolabe_model::Kind::CronJob => {
                type $ty = batch::v1::CronJob;
                $body
            }
            astrolabe_model::Kind::Ingress => {
                type $ty = networking::v1::Ingress;
                $body
            }
            astrolabe_model::Kind::IngressClass => {
                type $ty = networking::v1::IngressClass;
                $body
            }
            astrolabe_model::Kind::NetworkPolicy => {
                type $ty = networking::v1::NetworkPolicy;
                $body
            }
            astrolabe_model::Kind::HorizontalPodAutoscaler => {
                type $ty = autoscaling::v2::HorizontalPodAutoscaler;
                $body
            }
            astrolabe_model::Kind::PodDisruptionBudget => {
                type $ty = policy::v1::PodDisruptionBudget;
                $body
            }
            astrolabe_model::Kind::Role => {
                type $ty = rbac::v1::Role;
                $body
            }
            astrolabe_model::Kind::RoleBinding => {
                type $ty = rbac::v1::RoleBinding;
                $body
            }
            astrolabe_model::Kind::ClusterRole => {
                type $ty = rbac::v1::ClusterRole;
                $body
            }
            astrolabe_model::Kind::ClusterRoleBinding => {
                type $ty = rbac::v1::ClusterRoleBinding;
                $body
            }
            astrolabe_model::Kind::Other(_) => $other,
        }
    }};
}
pub(crate) use with_kind_type;

/// Processes a Kubernetes object given as JSON, by kind: the entry point for tools and tests
/// that hold objects as JSON.
///
/// # Errors
/// [`crate::Error::Decode`] when the JSON is not an object of that kind, and
/// [`crate::Error::UnknownKind`] for a kind that is not watched.
pub fn process_json(kind: &Kind, value: serde_json::Value) -> crate::Result<Resource> {
    with_kind_type!(kind, K => {
        let obj: K = serde_json::from_value(value).map_err(|source| crate::Error::Decode {
            kind: kind.to_string(),
            source,
        })?;
        Ok(obj.process())
    }, _ => Err(crate::Error::UnknownKind {
        name: kind.to_string(),
        valid: crate::config::valid_kind_names(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_watched_kind_has_a_processor() {
        for kind in Kind::WATCHED {
            let found = with_kind_type!(kind, K => {
                assert_eq!(&<K as Processor>::kind(), kind);
                assert_eq!(<K as kube::Resource>::kind(&()), kind.as_str());
                assert_eq!(<K as kube::Resource>::api_version(&()), kind.api_version());
                true
            }, _ => false);
            assert!(found, "{kind}");
        }
    }

    #[test]
    fn process_json_decodes_and_rejects() {
        let value = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u1"},
            "data": {"k": "v"}
        });
        let r = process_json(&Kind::ConfigMap, value).expect("decodes");
        assert_eq!(r.key().to_string(), "ConfigMap/ns/c");
        assert!(process_json(&Kind::Pod, serde_json::json!({"spec": 3})).is_err());
        assert!(process_json(&Kind::Other("X".into()), serde_json::json!({})).is_err());
    }
}
