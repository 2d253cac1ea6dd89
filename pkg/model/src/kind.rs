//! `Kind`: the Kubernetes kinds Astrolabe knows, plus any other kind by name, and
//! [`for_each_kind!`](crate::for_each_kind), the one table of the watched kinds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Str;

/// The table of the kinds Astrolabe watches: the one place a watched kind is declared. Each crate
/// that needs a per-kind list (the [`Kind`] enum here, the informers' processors and watched
/// types, the emulator's served kinds) passes a callback macro, which receives the whole table.
///
/// `for_each_kind!(callback)` expands to `callback! { [] <rows> }`; `for_each_kind!(callback, a b c)`
/// to `callback! { [a b c] <rows> }`, so the callback can take arguments of its own. Each row is
///
/// ```text
/// Variant => "Kind", group "g", version "v", plural "p", singular "s", namespaced bool,
///     short ["a", ...], metadata_only bool, snake ident, rust path::to::Type;
/// ```
///
/// where `metadata_only` says Astrolabe reads only the object's metadata (never its contents),
/// `snake` is the kind's name in snake_case (the informers name processor functions after it)
/// and `rust` is the type's path below `k8s_openapi::api` (plain tokens here: the model does not
/// depend on k8s-openapi).
#[macro_export]
macro_rules! for_each_kind {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            [$($($args)*)?]
            Pod => "Pod", group "", version "v1", plural "pods", singular "pod", namespaced true,
                short ["po"], metadata_only false, snake pod, rust core::v1::Pod;
            Service => "Service", group "", version "v1", plural "services", singular "service",
                namespaced true, short ["svc"], metadata_only false, snake service,
                rust core::v1::Service;
            EndpointSlice => "EndpointSlice", group "discovery.k8s.io", version "v1",
                plural "endpointslices", singular "endpointslice", namespaced true, short [],
                metadata_only false, snake endpoint_slice, rust discovery::v1::EndpointSlice;
            ConfigMap => "ConfigMap", group "", version "v1", plural "configmaps",
                singular "configmap", namespaced true, short ["cm"], metadata_only false,
                snake config_map, rust core::v1::ConfigMap;
            Secret => "Secret", group "", version "v1", plural "secrets", singular "secret",
                namespaced true, short [], metadata_only true, snake secret,
                rust core::v1::Secret;
            ServiceAccount => "ServiceAccount", group "", version "v1", plural "serviceaccounts",
                singular "serviceaccount", namespaced true, short ["sa"], metadata_only false,
                snake service_account, rust core::v1::ServiceAccount;
            PersistentVolumeClaim => "PersistentVolumeClaim", group "", version "v1",
                plural "persistentvolumeclaims", singular "persistentvolumeclaim",
                namespaced true, short ["pvc"], metadata_only false,
                snake persistent_volume_claim, rust core::v1::PersistentVolumeClaim;
            PersistentVolume => "PersistentVolume", group "", version "v1",
                plural "persistentvolumes", singular "persistentvolume", namespaced false,
                short ["pv"], metadata_only false, snake persistent_volume,
                rust core::v1::PersistentVolume;
            StorageClass => "StorageClass", group "storage.k8s.io", version "v1",
                plural "storageclasses", singular "storageclass", namespaced false, short ["sc"],
                metadata_only false, snake storage_class, rust storage::v1::StorageClass;
            Namespace => "Namespace", group "", version "v1", plural "namespaces",
                singular "namespace", namespaced false, short ["ns"], metadata_only false,
                snake namespace, rust core::v1::Namespace;
            Node => "Node", group "", version "v1", plural "nodes", singular "node",
                namespaced false, short ["no"], metadata_only false, snake node,
                rust core::v1::Node;
            Deployment => "Deployment", group "apps", version "v1", plural "deployments",
                singular "deployment", namespaced true, short ["deploy"], metadata_only false,
                snake deployment, rust apps::v1::Deployment;
            ReplicaSet => "ReplicaSet", group "apps", version "v1", plural "replicasets",
                singular "replicaset", namespaced true, short ["rs"], metadata_only false,
                snake replica_set, rust apps::v1::ReplicaSet;
            StatefulSet => "StatefulSet", group "apps", version "v1", plural "statefulsets",
                singular "statefulset", namespaced true, short ["sts"], metadata_only false,
                snake stateful_set, rust apps::v1::StatefulSet;
            DaemonSet => "DaemonSet", group "apps", version "v1", plural "daemonsets",
                singular "daemonset", namespaced true, short ["ds"], metadata_only false,
                snake daemon_set, rust apps::v1::DaemonSet;
            Job => "Job", group "batch", version "v1", plural "jobs", singular "job",
                namespaced true, short [], metadata_only false, snake job, rust batch::v1::Job;
            CronJob => "CronJob", group "batch", version "v1", plural "cronjobs",
                singular "cronjob", namespaced true, short ["cj"], metadata_only false,
                snake cron_job, rust batch::v1::CronJob;
            Ingress => "Ingress", group "networking.k8s.io", version "v1", plural "ingresses",
                singular "ingress", namespaced true, short ["ing"], metadata_only false,
                snake ingress, rust networking::v1::Ingress;
            IngressClass => "IngressClass", group "networking.k8s.io", version "v1",
                plural "ingressclasses", singular "ingressclass", namespaced false, short [],
                metadata_only false, snake ingress_class, rust networking::v1::IngressClass;
            NetworkPolicy => "NetworkPolicy", group "networking.k8s.io", version "v1",
                plural "networkpolicies", singular "networkpolicy", namespaced true,
                short ["netpol"], metadata_only false, snake network_policy,
                rust networking::v1::NetworkPolicy;
            HorizontalPodAutoscaler => "HorizontalPodAutoscaler", group "autoscaling",
                version "v2", plural "horizontalpodautoscalers",
                singular "horizontalpodautoscaler", namespaced true, short ["hpa"],
                metadata_only false, snake horizontal_pod_autoscaler,
                rust autoscaling::v2::HorizontalPodAutoscaler;
            PodDisruptionBudget => "PodDisruptionBudget", group "policy", version "v1",
                plural "poddisruptionbudgets", singular "poddisruptionbudget", namespaced true,
                short ["pdb"], metadata_only false, snake pod_disruption_budget,
                rust policy::v1::PodDisruptionBudget;
            Role => "Role", group "rbac.authorization.k8s.io", version "v1", plural "roles",
                singular "role", namespaced true, short [], metadata_only false, snake role,
                rust rbac::v1::Role;
            RoleBinding => "RoleBinding", group "rbac.authorization.k8s.io", version "v1",
                plural "rolebindings", singular "rolebinding", namespaced true, short [],
                metadata_only false, snake role_binding, rust rbac::v1::RoleBinding;
            ClusterRole => "ClusterRole", group "rbac.authorization.k8s.io", version "v1",
                plural "clusterroles", singular "clusterrole", namespaced false, short [],
                metadata_only false, snake cluster_role, rust rbac::v1::ClusterRole;
            ClusterRoleBinding => "ClusterRoleBinding", group "rbac.authorization.k8s.io",
                version "v1", plural "clusterrolebindings", singular "clusterrolebinding",
                namespaced false, short [], metadata_only false, snake cluster_role_binding,
                rust rbac::v1::ClusterRoleBinding;
        }
    };
}

/// `apiVersion` from a group and a version: the version alone for the core group. The group must
/// reach this macro as a plain token (`tt`): a captured `literal` no longer matches `""`.
macro_rules! api_version {
    ("", $version:literal) => {
        $version
    };
    ($group:literal, $version:literal) => {
        concat!($group, "/", $version)
    };
}

macro_rules! define_kind {
    ([] $(
        $variant:ident => $name:literal, group $group:tt, version $version:tt,
        plural $plural:literal, singular $singular:literal, namespaced $namespaced:literal,
        short [$($short:literal),*], metadata_only $metadata_only:literal, snake $snake:ident,
        rust $($path:ident)::+;
    )*) => {
        /// A Kubernetes kind. The kinds Astrolabe watches are variants; anything else (a CRD used as
        /// an HPA scale target, say) is `Other` with its name.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum Kind {
            $(
                #[doc = concat!("`", $name, "` (", api_version!($group, $version), ")")]
                $variant,
            )*
            /// A kind Astrolabe does not watch, by its name.
            Other(Str),
        }

        impl Kind {
            /// Every kind Astrolabe watches, in a fixed order.
            pub const WATCHED: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The kind's name, as Kubernetes spells it (`Deployment`).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Kind::$variant => $name,)*
                    Kind::Other(name) => name,
                }
            }

            /// The kind's row in the table of kinds; `None` for `Other`.
            fn row(&self) -> Option<&'static Row> {
                match self {
                    $(Kind::$variant => Some(&Row {
                        api_version: api_version!($group, $version),
                        group: $group,
                        version: $version,
                        plural: $plural,
                        singular: $singular,
                        short_names: &[$($short),*],
                        namespaced: $namespaced,
                        metadata_only: $metadata_only,
                    }),)*
                    Kind::Other(_) => None,
                }
            }

            /// Parses a kind name; unknown names become `Other`. Matching is exact first, then
            /// case-insensitive (`pod`, `POD` and `Pod` are all `Pod`).
            pub fn parse(name: &str) -> Kind {
                match name {
                    $($name => return Kind::$variant,)*
                    _ => {}
                }
                $(if name.eq_ignore_ascii_case($name) { return Kind::$variant; })*
                Kind::Other(Str::from(name))
            }
        }
    };
}

/// A watched kind's columns of the table of kinds.
struct Row {
    api_version: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    metadata_only: bool,
}

for_each_kind!(define_kind);

impl Kind {
    /// Whether this is one of the kinds Astrolabe watches.
    pub fn is_watched(&self) -> bool {
        !matches!(self, Kind::Other(_))
    }

    /// The apiVersion Astrolabe reads this kind at (`apps/v1`); empty for `Other`.
    pub fn api_version(&self) -> &'static str {
        self.row().map_or("", |r| r.api_version)
    }

    /// The API group (`apps`; empty for the core group and for `Other`).
    pub fn group(&self) -> &'static str {
        self.row().map_or("", |r| r.group)
    }

    /// The version within the group (`v1`); empty for `Other`.
    pub fn version(&self) -> &'static str {
        self.row().map_or("", |r| r.version)
    }

    /// The plural resource name in URL paths (`deployments`); empty for `Other`.
    pub fn plural(&self) -> &'static str {
        self.row().map_or("", |r| r.plural)
    }

    /// The singular resource name (`deployment`); empty for `Other`.
    pub fn singular(&self) -> &'static str {
        self.row().map_or("", |r| r.singular)
    }

    /// kubectl's short names (`deploy`); none for `Other`.
    pub fn short_names(&self) -> &'static [&'static str] {
        self.row().map_or(&[], |r| r.short_names)
    }

    /// Whether objects of this kind live in a namespace (`Other` kinds are assumed to).
    pub fn is_namespaced(&self) -> bool {
        self.row().is_none_or(|r| r.namespaced)
    }

    /// Whether Astrolabe reads only the metadata of this kind's objects (Secrets), never their
    /// contents.
    pub fn is_metadata_only(&self) -> bool {
        self.row().is_some_and(|r| r.metadata_only)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Kind::parse(s))
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Parsed from the borrowed text: no string is built for the watched kinds.
        struct KindVisitor;
        impl serde::de::Visitor<'_> for KindVisitor {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a kind name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Kind, E> {
                Ok(Kind::parse(name))
            }
        }
        deserializer.deserialize_str(KindVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_every_watched_kind() {
        for kind in Kind::WATCHED {
            assert_eq!(&Kind::parse(kind.as_str()), kind);
            assert_eq!(&Kind::parse(&kind.as_str().to_lowercase()), kind);
        }
        assert_eq!(Kind::WATCHED.len(), 26);
    }

    #[test]
    fn serde_round_trips_by_name() {
        for kind in Kind::WATCHED
            .iter()
            .cloned()
            .chain([Kind::parse("Rollout")])
        {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
            let bytes = postcard::to_allocvec(&kind).unwrap();
            assert_eq!(postcard::from_bytes::<Kind>(&bytes).unwrap(), kind);
        }
        // An escaped name is read through a temporary buffer, not borrowed.
        assert_eq!(
            serde_json::from_str::<Kind>(r#""P\u006fd""#).unwrap(),
            Kind::Pod
        );
    }

    #[test]
    fn unknown_kind_is_other_and_namespaced() {
        let kind = Kind::parse("Rollout");
        assert_eq!(kind, Kind::Other("Rollout".into()));
        assert!(kind.is_namespaced());
        assert!(!kind.is_watched());
        assert!(!Kind::Node.is_namespaced());
        assert_eq!(kind.group(), "");
        assert!(kind.short_names().is_empty());
        assert!(!kind.is_metadata_only());
    }

    #[test]
    fn api_version_is_group_and_version() {
        for kind in Kind::WATCHED {
            let joined = if kind.group().is_empty() {
                kind.version().to_owned()
            } else {
                format!("{}/{}", kind.group(), kind.version())
            };
            assert_eq!(kind.api_version(), joined, "{kind}");
        }
        assert_eq!(Kind::Deployment.api_version(), "apps/v1");
        assert_eq!(Kind::Deployment.short_names(), ["deploy"]);
        assert_eq!(Kind::Ingress.plural(), "ingresses");
        assert!(Kind::Secret.is_metadata_only());
        assert!(!Kind::ConfigMap.is_metadata_only());
    }
}
