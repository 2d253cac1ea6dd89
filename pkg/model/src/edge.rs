//! `EdgeKind`: the relationships Astrolabe derives, with their stable API names.

use std::fmt;
use std::str::FromStr;
use std::sync::{OnceLock, RwLock};

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

impl Dependency {
    /// The API name (`source-needs-target`, `target-needs-source`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::SourceNeedsTarget => "source-needs-target",
            Dependency::TargetNeedsSource => "target-needs-source",
            Dependency::None => "none",
        }
    }

    /// Parses an API name.
    pub fn parse(name: &str) -> Option<Dependency> {
        [
            Dependency::SourceNeedsTarget,
            Dependency::TargetNeedsSource,
            Dependency::None,
        ]
        .into_iter()
        .find(|d| d.as_str() == name)
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! edges {
    ($( $variant:ident => $name:literal, $dep:ident, $doc:literal; )*) => {
        /// A kind of relationship between two resources: a built-in one, or one declared by a
        /// relationship rule ([`EdgeKind::declare`]). The string names are stable: they are used
        /// in the API, in metrics and in persisted data.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum EdgeKind {
            $( #[doc = $doc] $variant, )*
            /// An edge kind declared at run time, by its number in the process's registry.
            Declared(DeclaredEdge),
        }

        impl EdgeKind {
            /// Every built-in edge kind, in a fixed order.
            pub const ALL: &'static [EdgeKind] = &[$(EdgeKind::$variant,)*];

            /// The stable name (`uses-configmap`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EdgeKind::$variant => $name,)*
                    EdgeKind::Declared(d) => d.entry().name,
                }
            }

            /// Which end depends on the other.
            pub fn dependency(self) -> Dependency {
                match self {
                    $(EdgeKind::$variant => Dependency::$dep,)*
                    EdgeKind::Declared(d) => d.entry().dependency,
                }
            }

            /// What the edge means, for people.
            pub fn description(self) -> &'static str {
                match self {
                    $(EdgeKind::$variant => $doc,)*
                    EdgeKind::Declared(d) => d.entry().description,
                }
            }

            /// The built-in edge kind of this name.
            fn builtin(name: &str) -> Option<EdgeKind> {
                match name { $($name => Some(EdgeKind::$variant),)* _ => None }
            }
        }
    };
}

/// An edge kind declared at run time: its number in the process's registry of declared edge
/// kinds. Declared names live as long as the process (they are few: one per rule edge name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DeclaredEdge(u16);

#[derive(Clone, Copy)]
struct DeclaredEntry {
    name: &'static str,
    dependency: Dependency,
    description: &'static str,
    /// Whether a rule declared it (else it was only read from persisted data, and its
    /// dependency is not known yet).
    declared: bool,
}

/// Declared edge kinds at most, so damaged persisted data cannot grow the registry without bound.
const DECLARED_CAP: usize = 4096;

fn registry() -> &'static RwLock<Vec<DeclaredEntry>> {
    static REGISTRY: OnceLock<RwLock<Vec<DeclaredEntry>>> = OnceLock::new();
    REGISTRY.get_or_init(RwLock::default)
}

impl DeclaredEdge {
    fn entry(self) -> DeclaredEntry {
        let registry = registry()
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        registry
            .get(usize::from(self.0))
            .copied()
            .unwrap_or(DeclaredEntry {
                name: "",
                dependency: Dependency::None,
                description: "",
                declared: false,
            })
    }
}

/// Why an edge kind could not be declared.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EdgeDeclError {
    /// The name is not lowercase letters, digits and single dashes.
    #[error("edge name {0:?} is not lowercase letters, digits and dashes (like `issued-by`)")]
    BadName(String),
    /// The name is a built-in edge kind's, with another dependency direction.
    #[error("edge {name:?} is built in with dependency {existing}")]
    Conflict {
        /// The name.
        name: String,
        /// The direction it has.
        existing: Dependency,
    },
    /// Too many distinct names.
    #[error("more than {DECLARED_CAP} declared edge kinds")]
    Full,
}

/// Whether `name` is a valid edge name: lowercase ASCII letters, digits and dashes, starting with
/// a letter, not ending with a dash, no two dashes in a row, at most 63 bytes.
pub fn valid_edge_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && !name.contains("--")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl EdgeKind {
    /// Parses a name: a built-in edge kind, or one declared in this process; `None` otherwise.
    pub fn parse(name: &str) -> Option<EdgeKind> {
        EdgeKind::builtin(name).or_else(|| {
            let registry = registry()
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let i = registry.iter().position(|e| e.name == name)?;
            u16::try_from(i)
                .ok()
                .map(|i| EdgeKind::Declared(DeclaredEdge(i)))
        })
    }

    /// Declares an edge kind (a relationship rule's `edge`), or returns the one declared before
    /// with the same name, taking the direction and description given now (the rules in force
    /// decide). A built-in name may be reused with its own direction only.
    ///
    /// # Errors
    /// [`EdgeDeclError`] for a bad name, a built-in name with another direction, or a full
    /// registry.
    pub fn declare(
        name: &str,
        dependency: Dependency,
        description: &str,
    ) -> Result<EdgeKind, EdgeDeclError> {
        if let Some(builtin) = EdgeKind::builtin(name) {
            return if builtin.dependency() == dependency {
                Ok(builtin)
            } else {
                Err(EdgeDeclError::Conflict {
                    name: name.to_owned(),
                    existing: builtin.dependency(),
                })
            };
        }
        EdgeKind::register(name, Some((dependency, description)))
    }

    /// The edge kind of a name read from persisted data: built-in, declared, or registered now
    /// with its direction unknown until a rule declares it.
    ///
    /// # Errors
    /// [`EdgeDeclError::BadName`] or [`EdgeDeclError::Full`].
    pub fn intern(name: &str) -> Result<EdgeKind, EdgeDeclError> {
        match EdgeKind::parse(name) {
            Some(kind) => Ok(kind),
            None => EdgeKind::register(name, None),
        }
    }

    fn register(
        name: &str,
        declaration: Option<(Dependency, &str)>,
    ) -> Result<EdgeKind, EdgeDeclError> {
        if !valid_edge_name(name) {
            return Err(EdgeDeclError::BadName(name.to_owned()));
        }
        let mut registry = registry()
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = registry.iter().position(|e| e.name == name);
        let index = match (found, declaration) {
            (Some(i), None) => i,
            (Some(i), Some((dependency, description))) => {
                // The latest declaration wins: a reloaded rule file may turn an edge around.
                // Descriptions are leaked only when they change (reloads are rare).
                let entry = &mut registry[i];
                entry.dependency = dependency;
                if entry.description != description {
                    entry.description = Box::leak(description.into());
                }
                entry.declared = true;
                i
            }
            (None, declaration) => {
                if registry.len() >= DECLARED_CAP {
                    return Err(EdgeDeclError::Full);
                }
                let (dependency, description) = declaration.unwrap_or((Dependency::None, ""));
                registry.push(DeclaredEntry {
                    name: Box::leak(name.into()),
                    dependency,
                    description: Box::leak(description.into()),
                    declared: declaration.is_some(),
                });
                registry.len() - 1
            }
        };
        u16::try_from(index)
            .map(|i| EdgeKind::Declared(DeclaredEdge(i)))
            .map_err(|_| EdgeDeclError::Full)
    }

    /// Every edge kind: the built-in ones, then those declared in this process.
    pub fn all() -> Vec<EdgeKind> {
        let declared = registry()
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        EdgeKind::ALL
            .iter()
            .copied()
            .chain((0..declared).filter_map(|i| {
                u16::try_from(i)
                    .ok()
                    .map(|i| EdgeKind::Declared(DeclaredEdge(i)))
            }))
            .collect()
    }

    /// Whether this is one of the built-in edge kinds.
    pub fn is_builtin(self) -> bool {
        !matches!(self, EdgeKind::Declared(_))
    }
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
                // A name no rule declares (yet) is still read: the rules may be loaded later,
                // or no longer declare it; its edges stay what the log says they were.
                EdgeKind::intern(name).map_err(E::custom)
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

    #[test]
    fn declared_edges_have_a_name_and_the_latest_direction() {
        let issued = EdgeKind::declare("test-issued-by", Dependency::SourceNeedsTarget, "x")
            .expect("declared");
        assert!(!issued.is_builtin());
        assert_eq!(issued.as_str(), "test-issued-by");
        assert_eq!(issued.dependency(), Dependency::SourceNeedsTarget);
        assert_eq!(issued.description(), "x");
        assert_eq!(EdgeKind::parse("test-issued-by"), Some(issued));
        assert_eq!(
            EdgeKind::declare("test-issued-by", Dependency::SourceNeedsTarget, "y"),
            Ok(issued)
        );
        assert_eq!(issued.description(), "y");
        // A reloaded rule file may turn a declared edge around.
        assert_eq!(
            EdgeKind::declare("test-issued-by", Dependency::None, "y"),
            Ok(issued)
        );
        assert_eq!(issued.dependency(), Dependency::None);
        assert!(matches!(
            EdgeKind::declare("owns", Dependency::None, ""),
            Err(EdgeDeclError::Conflict { .. })
        ));
        assert_eq!(
            EdgeKind::declare("owns", Dependency::TargetNeedsSource, ""),
            Ok(EdgeKind::Owns)
        );
        for bad in [
            "",
            "Issued",
            "a--b",
            "-a",
            "a-",
            "a_b",
            "1a",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    EdgeKind::declare(bad, Dependency::None, ""),
                    Err(EdgeDeclError::BadName(_))
                ),
                "{bad:?}"
            );
        }
        assert!(EdgeKind::all().contains(&issued));
    }

    #[test]
    fn a_persisted_name_no_rule_declares_reads_back_and_takes_a_later_declaration() {
        let read: EdgeKind = serde_json::from_str("\"test-read-before-rules\"").expect("read");
        assert_eq!(read.as_str(), "test-read-before-rules");
        assert_eq!(read.dependency(), Dependency::None);
        let declared =
            EdgeKind::declare("test-read-before-rules", Dependency::TargetNeedsSource, "d")
                .expect("declared");
        assert_eq!(declared, read);
        assert_eq!(read.dependency(), Dependency::TargetNeedsSource);
        assert!(serde_json::from_str::<EdgeKind>("\"Not An Edge\"").is_err());
    }
}
