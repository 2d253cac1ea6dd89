//! `Kind`: the Kubernetes kinds Astrolabe knows, plus any other kind by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Str;

macro_rules! kinds {
    ($( $variant:ident => $name:literal, $api:literal, $namespaced:literal; )*) => {
        /// A Kubernetes kind. The kinds Astrolabe watches are variants; anything else (a CRD used as
        /// an HPA scale target, say) is `Other` with its name.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum Kind {
            $(
                #[doc = concat!("`", $name, "` (", $api, ")")]
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

            /// The apiVersion Astrolabe reads this kind at (`apps/v1`); empty for `Other`.
            pub fn api_version(&self) -> &'static str {
                match self {
                    $(Kind::$variant => $api,)*
                    Kind::Other(_) => "",
                }
            }

            /// Whether objects of this kind live in a namespace (`Other` kinds are assumed to).
            pub fn is_namespaced(&self) -> bool {
                match self {
                    $(Kind::$variant => $namespaced,)*
                    Kind::Other(_) => true,
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

kinds! {
    Pod => "Pod", "v1", true;
    Service => "Service", "v1", true;
    EndpointSlice => "EndpointSlice", "discovery.k8s.io/v1", true;
    ConfigMap => "ConfigMap", "v1", true;
    Secret => "Secret", "v1", true;
    ServiceAccount => "ServiceAccount", "v1", true;
    PersistentVolumeClaim => "PersistentVolumeClaim", "v1", true;
    PersistentVolume => "PersistentVolume", "v1", false;
    StorageClass => "StorageClass", "storage.k8s.io/v1", false;
    Namespace => "Namespace", "v1", false;
    Node => "Node", "v1", false;
    Deployment => "Deployment", "apps/v1", true;
    ReplicaSet => "ReplicaSet", "apps/v1", true;
    StatefulSet => "StatefulSet", "apps/v1", true;
    DaemonSet => "DaemonSet", "apps/v1", true;
    Job => "Job", "batch/v1", true;
    CronJob => "CronJob", "batch/v1", true;
    Ingress => "Ingress", "networking.k8s.io/v1", true;
    IngressClass => "IngressClass", "networking.k8s.io/v1", false;
    NetworkPolicy => "NetworkPolicy", "networking.k8s.io/v1", true;
    HorizontalPodAutoscaler => "HorizontalPodAutoscaler", "autoscaling/v2", true;
    PodDisruptionBudget => "PodDisruptionBudget", "policy/v1", true;
    Role => "Role", "rbac.authorization.k8s.io/v1", true;
    RoleBinding => "RoleBinding", "rbac.authorization.k8s.io/v1", true;
    ClusterRole => "ClusterRole", "rbac.authorization.k8s.io/v1", false;
    ClusterRoleBinding => "ClusterRoleBinding", "rbac.authorization.k8s.io/v1", false;
}

impl Kind {
    /// Whether this is one of the kinds Astrolabe watches.
    pub fn is_watched(&self) -> bool {
        !matches!(self, Kind::Other(_))
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
    }
}
