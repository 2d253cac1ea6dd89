//! `Reference`: a relationship an object declares, from which the graph derives an edge.

use serde::{Deserialize, Serialize};

use crate::{EdgeKind, Kind, LabelSelector, ObjectKey, Str, Uid};

/// What a reference points at.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum Target {
    /// An object by UID (owner references). Kind and name are kept for reporting a missing target.
    Uid {
        /// The target's UID.
        uid: Uid,
        /// The target's kind, as declared.
        kind: Kind,
        /// The target's name, as declared.
        name: Str,
    },
    /// An object by kind, namespace and name (`configMapRef`, `claimName`, `volumeName`, ...).
    Key(ObjectKey),
    /// Every object of `kind` in the source's namespace whose labels match `selector`.
    Selector {
        /// The kind selected (Pod for Services, PDBs and NetworkPolicies).
        kind: Kind,
        /// The selector.
        selector: LabelSelector,
        /// What an empty selector selects: nothing for a Service, everything for a
        /// NetworkPolicy's podSelector or a PodDisruptionBudget.
        empty_selects_all: bool,
    },
    /// Every object of `kind` in `namespaces` whose labels match `selector` (an empty selector
    /// matches every object there): a ServiceMonitor's `selector` with its `namespaceSelector`.
    SelectorIn {
        /// The kind selected.
        kind: Kind,
        /// The selector.
        selector: LabelSelector,
        /// The namespaces it selects in (boxed: rare, and kept out of every reference's size).
        namespaces: Box<Namespaces>,
    },
}

/// The namespaces a [`Target::SelectorIn`] selects in.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum Namespaces {
    /// Every namespace.
    All,
    /// These namespaces (sorted, without repeats).
    Names(Vec<Str>),
}

impl Namespaces {
    /// Whether `namespace` is one of them.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Names(names) => names.iter().any(|n| n == namespace),
        }
    }
}

impl Target {
    /// The kind of what it points at.
    pub fn kind(&self) -> &Kind {
        match self {
            Target::Uid { kind, .. }
            | Target::Selector { kind, .. }
            | Target::SelectorIn { kind, .. } => kind,
            Target::Key(key) => &key.kind,
        }
    }
    /// The selector of a selector target, what its empty form selects, and the namespaces it
    /// selects in relative to its declarer's namespace (`None`: the declarer's own).
    pub fn as_selector(&self) -> Option<(&Kind, &LabelSelector, bool, Option<&Namespaces>)> {
        match self {
            Target::Selector {
                kind,
                selector,
                empty_selects_all,
            } => Some((kind, selector, *empty_selects_all, None)),
            Target::SelectorIn {
                kind,
                selector,
                namespaces,
            } => Some((kind, selector, true, Some(&**namespaces))),
            Target::Uid { .. } | Target::Key(_) => None,
        }
    }
}

/// A relationship an object declares. The graph turns it into an edge when the target exists and
/// keeps it pending until then.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Reference {
    /// The kind of edge this reference makes.
    pub edge: EdgeKind,
    /// What it points at.
    pub target: Target,
    /// Whether the edge runs from the target to the declaring object (an owner reference makes
    /// `owner -owns-> object`; an EndpointSlice's service-name label makes
    /// `Service -endpoints-> slice`).
    pub reverse: bool,
    /// A key inside the target the reference is about (`configMapKeyRef.key`), if any.
    pub key: Option<Str>,
    /// Whether the reference is `optional: true` (a missing target is then not an error).
    pub optional: bool,
}

impl Reference {
    /// A forward reference by kind/namespace/name.
    pub fn to_key(
        edge: EdgeKind,
        kind: Kind,
        namespace: impl Into<Str>,
        name: impl Into<Str>,
    ) -> Self {
        let namespace = if kind.is_namespaced() {
            namespace.into()
        } else {
            Str::default()
        };
        Reference {
            edge,
            target: Target::Key(ObjectKey::new(kind, namespace, name)),
            reverse: false,
            key: None,
            optional: false,
        }
    }

    /// A forward selector reference to objects of `kind` in the declaring object's namespace.
    pub fn to_selector(
        edge: EdgeKind,
        kind: Kind,
        selector: LabelSelector,
        empty_selects_all: bool,
    ) -> Self {
        Reference {
            edge,
            target: Target::Selector {
                kind,
                selector,
                empty_selects_all,
            },
            reverse: false,
            key: None,
            optional: false,
        }
    }

    /// The `owns` reference an ownerReference makes (edge from the owner to the declaring object).
    pub fn owned_by(uid: impl Into<Uid>, kind: Kind, name: impl Into<Str>) -> Self {
        Reference {
            edge: EdgeKind::Owns,
            target: Target::Uid {
                uid: uid.into(),
                kind,
                name: name.into(),
            },
            reverse: true,
            key: None,
            optional: false,
        }
    }

    /// The same reference with the edge reversed.
    pub fn reversed(mut self) -> Self {
        self.reverse = !self.reverse;
        self
    }

    /// The same reference about one key of the target.
    pub fn with_key(mut self, key: impl Into<Str>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The same reference, optional or not.
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// The target's kind.
    pub fn target_kind(&self) -> &Kind {
        self.target.kind()
    }
}
