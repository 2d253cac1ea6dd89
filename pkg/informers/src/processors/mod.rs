//! Processors: pure functions from a Kubernetes object to a [`Resource`], one file per kind
//! family. Only this module (and the watchers that call it) knows Kubernetes types.
//!
//! - [`common`]: metadata, label selectors, status helpers.
//! - [`annotations`]: which annotations are kept (none carrying a whole object; on Secrets only
//!   an allowlist).
//! - [`pod_spec`]: the references a pod spec makes (Pods and every workload template).
//! - [`mod@pod`], [`core`], [`storage`], [`workloads`], [`networking`], [`policy`], [`rbac`]: the
//!   kinds.

use std::fmt::Debug;

use astrolabe_model::{Kind, Resource};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

pub mod annotations;
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

/// The type a watcher of a kind receives: the whole object, or only its metadata for the kinds
/// [`Kind::is_metadata_only`] names (kube then asks the API server for metadata alone).
macro_rules! watched_type {
    (true, $($path:ident)::+) => {
        kube::core::PartialObjectMeta<k8s_openapi::api::$($path)::+>
    };
    (false, $($path:ident)::+) => {
        k8s_openapi::api::$($path)::+
    };
}

/// The API of a kind in `namespace` (all namespaces when `None`), or cluster-wide for a kind that
/// is not namespaced.
macro_rules! scoped_api {
    (true, $client:ident, $namespace:ident) => {
        match $namespace {
            Some(ns) => Api::namespaced($client, ns),
            None => Api::all($client),
        }
    };
    (false, $client:ident, $namespace:ident) => {{
        let _ = $namespace;
        Api::all($client)
    }};
}

/// Implements [`Processor`] for every watched type in the table of kinds
/// ([`astrolabe_model::for_each_kind!`]); a kind's processor is the function named after it in
/// snake_case.
macro_rules! impl_processors {
    ([] $(
        $variant:ident => $name:literal, group $group:tt, version $version:tt, plural $plural:tt,
        singular $singular:tt, namespaced $namespaced:tt, short [$($short:tt),*],
        metadata_only $metadata_only:tt, snake $snake:ident, rust $($path:ident)::+;
    )*) => {
        $(
            impl Processor for watched_type!($metadata_only, $($path)::+) {
                fn kind() -> Kind {
                    Kind::$variant
                }
                fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
                    scoped_api!($namespaced, client, namespace)
                }
                fn process(&self) -> Resource {
                    $snake(self)
                }
            }
        )*

        /// Calls [`KindVisitor::visit`] once with the watched type of every kind, in the table's
        /// order: code that needs one thing per watched type (a watcher, a reflector) gets the
        /// whole set from the one table.
        pub fn visit_kinds(visitor: &mut impl KindVisitor) {
            $(visitor.visit::<watched_type!($metadata_only, $($path)::+)>();)*
        }
    };
}

astrolabe_model::for_each_kind!(impl_processors);

/// Something done once per watched type ([`visit_kinds`]).
pub trait KindVisitor {
    /// Called with the watched type of one kind.
    fn visit<K: Processor>(&mut self);
}

/// Calls `$body` with the watched type of a [`Kind`] (see [`Processor`]) bound to `$ty`;
/// `$other` for kinds that are not watched. Callers import [`kind_type_match!`] with it (the
/// table's callback is named where the table is expanded).
macro_rules! with_kind_type {
    ($kind:expr, $ty:ident => $body:expr, _ => $other:expr) => {
        astrolabe_model::for_each_kind!(
            kind_type_match,
            ($kind, $ty => $body, _ => $other)
        )
    };
}
pub(crate) use with_kind_type;

/// The callback [`with_kind_type!`] gives the table of kinds: one match arm per kind.
macro_rules! kind_type_match {
    ([($kind:expr, $ty:ident => $body:expr, _ => $other:expr)] $(
        $variant:ident => $name:literal, group $group:tt, version $version:tt, plural $plural:tt,
        singular $singular:tt, namespaced $namespaced:tt, short [$($short:tt),*],
        metadata_only $metadata_only:tt, snake $snake:ident, rust $($path:ident)::+;
    )*) => {
        match $kind {
            $(
                astrolabe_model::Kind::$variant => {
                    type $ty = $crate::processors::watched_type!($metadata_only, $($path)::+);
                    $body
                }
            )*
            astrolabe_model::Kind::Other(_) => $other,
        }
    };
}
pub(crate) use {kind_type_match, watched_type};

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

/// A Kubernetes object of any kind given as JSON, made a resource as the informers make it: a
/// watched kind by its processor ([`process_json`]), another kind from its metadata as the
/// dynamic watchers make it; then the edges `rules` declare for its kind. The entry point for
/// tools that hold objects as JSON and rules (`astrolabe check`).
///
/// # Errors
/// [`crate::Error::Decode`] when the JSON is not an object of that kind.
pub fn process_json_with_rules(
    kind: &Kind,
    value: serde_json::Value,
    rules: &crate::Rules,
) -> crate::Result<Resource> {
    let mut r = if kind.is_watched() {
        process_json(kind, value.clone())?
    } else {
        let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(value.get("metadata").cloned().unwrap_or_default()).map_err(
                |source| crate::Error::Decode {
                    kind: kind.to_string(),
                    source,
                },
            )?;
        let mut r = common::from_meta(kind.clone(), &meta);
        r.status = common::exists(kind);
        common::finish(r)
    };
    rules.apply(kind, &mut r, || Some(value));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_watched_kind_has_a_processor_and_is_served() {
        use std::any::TypeId;
        for kind in Kind::WATCHED {
            let found = with_kind_type!(kind, K => {
                assert_eq!(&<K as Processor>::kind(), kind);
                assert_eq!(<K as kube::Resource>::kind(&()), kind.as_str());
                assert_eq!(<K as kube::Resource>::group(&()), kind.group());
                assert_eq!(<K as kube::Resource>::version(&()), kind.version());
                assert_eq!(<K as kube::Resource>::api_version(&()), kind.api_version());
                assert_eq!(<K as kube::Resource>::plural(&()), kind.plural());
                let scope = TypeId::of::<<K as kube::Resource>::Scope>();
                let namespaced = TypeId::of::<k8s_openapi::NamespaceResourceScope>();
                assert_eq!(scope == namespaced, kind.is_namespaced(), "{kind}");
                true
            }, _ => false);
            assert!(found, "{kind}");
            let served =
                astrolabe_kubesim::kinds::by_path(kind.group(), kind.version(), kind.plural())
                    .unwrap_or_else(|| panic!("{kind} is not served by the emulator"));
            assert_eq!(served.kind, kind.as_str());
            assert_eq!(served.namespaced, kind.is_namespaced(), "{kind}");
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
        assert!(process_json(&Kind::other("", "X"), serde_json::json!({})).is_err());
    }
}
