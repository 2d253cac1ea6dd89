//! `EdgeKind`: the relationships Astrolabe derives, with their stable API names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which end of an edge depends on the other, for impact analysis ("what breaks if this goes").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dependency {
    /// The source needs the target (a Pod needs its ConfigMap).
    SourceNeedsTarget,
    /// The target needs the source (a ReplicaSet's Pods need the ReplicaSet).
    TargetNeedsSource,
    /// Neither breaks when the other goes (a NetworkPolicy and the Pods it applies to).
    None,
}

macro_rules! edges {
    ($( $variant:ident => $name:literal, $dep:ident, $doc:literal; )*) => {
        /// A kind of relationship between two resources. The string names are stable: they are
        /// used in the API, in metrics and in persisted data.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum EdgeKind {
            $( #[doc = $doc] $variant, )*
        }

        impl EdgeKind {
            /// Every edge kind, in a fixed order.
            pub const ALL: &'static [EdgeKind] = &[$(EdgeKind::$variant,)*];

            /// The stable name (`uses-configmap`).
            pub fn as_str(self) -> &'static str {
                match self { $(EdgeKind::$variant => $name,)* }
            }

            /// Which end depends on the other.
            pub fn dependency(self) -> Dependency {
                match self { $(EdgeKind::$variant => Dependency::$dep,)* }
            }

            /// Parses a stable name; `None` when unknown.
            pub fn parse(name: &str) -> Option<EdgeKind> {
                match name { $($name => Some(EdgeKind::$variant),)* _ => None }
            }
        }
    };
}

edges! {
    Owns => "owns", TargetNeedsSource, "Owner → owned object (ownerReferences).";
    Selects => "selects", SourceNeedsTarget, "Service → Pod (label selector).";
    Endpoints => "endpoints", TargetNeedsSource, "Service → EndpointSlice (`kubernetes.io/service-name`).";
    Targets => "targets", SourceNeedsTarget, "EndpointSlice → Pod (`endpoints[].targetRef`).";
    RoutesTo => "routes-to", SourceNeedsTarget, "Ingress → Service (rule or default backend).";
    UsesTlsSecret => "uses-tls-secret", SourceNeedsTarget, "Ingress → Secret (`spec.tls[].secretName`).";
    UsesIngressClass => "uses-ingress-class", SourceNeedsTarget, "Ingress → IngressClass.";
    Mounts => "mounts", SourceNeedsTarget, "Pod or workload → PersistentVolumeClaim.";
    Binds => "binds", SourceNeedsTarget, "PersistentVolumeClaim → PersistentVolume.";
    UsesStorageClass => "uses-storage-class", SourceNeedsTarget, "PVC or PV → StorageClass.";
    ClaimsFromTemplate => "claims-from-template", TargetNeedsSource, "StatefulSet → PVC made from its volumeClaimTemplates.";
    UsesConfigmap => "uses-configmap", SourceNeedsTarget, "Pod or workload → ConfigMap.";
    UsesSecret => "uses-secret", SourceNeedsTarget, "Pod or workload → Secret.";
    UsesSa => "uses-sa", SourceNeedsTarget, "Pod or workload → ServiceAccount.";
    PullsWith => "pulls-with", SourceNeedsTarget, "Pod, workload or ServiceAccount → image pull Secret.";
    RunsOn => "runs-on", SourceNeedsTarget, "Pod → Node.";
    Scales => "scales", SourceNeedsTarget, "HorizontalPodAutoscaler → workload.";
    Protects => "protects", None, "PodDisruptionBudget → Pod.";
    AppliesTo => "applies-to", None, "NetworkPolicy → Pod.";
    Grants => "grants", SourceNeedsTarget, "RoleBinding or ClusterRoleBinding → Role or ClusterRole.";
    BindsSubject => "binds-subject", SourceNeedsTarget, "RoleBinding or ClusterRoleBinding → ServiceAccount.";
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an edge kind name that is not one of ours.
#[derive(Debug, thiserror::Error)]
#[error("unknown edge kind {0:?}")]
pub struct UnknownEdgeKind(pub String);

impl FromStr for EdgeKind {
    type Err = UnknownEdgeKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EdgeKind::parse(s).ok_or_else(|| UnknownEdgeKind(s.to_owned()))
    }
}

impl Serialize for EdgeKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EdgeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Parsed from the borrowed text: no string is built.
        struct EdgeKindVisitor;
        impl serde::de::Visitor<'_> for EdgeKindVisitor {
            type Value = EdgeKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an edge kind name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<EdgeKind, E> {
                EdgeKind::parse(name).ok_or_else(|| E::custom(UnknownEdgeKind(name.into())))
            }
        }
        deserializer.deserialize_str(EdgeKindVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for kind in EdgeKind::ALL {
            assert!(seen.insert(kind.as_str()), "duplicate name {kind}");
            assert_eq!(EdgeKind::parse(kind.as_str()), Some(*kind));
        }
        assert!(EdgeKind::parse("uses-configmaps").is_none());
        assert!("nope".parse::<EdgeKind>().is_err());
    }
}
