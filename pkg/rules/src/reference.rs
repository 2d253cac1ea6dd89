//! `RuleRef`: a reference a rule found in an object, in the crate's own neutral types.

use std::sync::Arc;

use astrolabe_model::{Dependency, LabelSelector, Str};

use crate::rule::GroupKind;

/// A reference a rule found in an object.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RuleRef {
    /// The name of the rule that found it.
    pub rule: Arc<str>,
    /// The edge name.
    pub edge: Arc<str>,
    /// Which end of the edge depends on the other.
    pub dependency: Dependency,
    /// Whether a missing target is expected.
    pub optional: bool,
    /// What it points at.
    pub target: RefTarget,
}

/// What a [`RuleRef`] points at.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum RefTarget {
    /// One object by kind, namespace and name.
    Name {
        /// The target's group and kind.
        kind: GroupKind,
        /// The target's namespace; `None` for a cluster-scoped target.
        namespace: Option<Str>,
        /// The target's name; never empty.
        name: Str,
    },
    /// Every object of a kind whose labels match a selector, in some namespaces.
    Selector {
        /// The selected group and kind.
        kind: GroupKind,
        /// The selector, as the object states it; an empty selector selects every object (the
        /// `metav1.LabelSelector` convention).
        selector: LabelSelector,
        /// The namespaces the selected objects live in.
        namespaces: NamespaceScope,
    },
}

/// The namespaces a selector reference selects in, resolved against the source object.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum NamespaceScope {
    /// The source's own namespace.
    Namespace(Str),
    /// Cluster-scoped objects (the rule says so, or the source is cluster-scoped and the rule
    /// selects in the source's namespace).
    Cluster,
    /// Every namespace.
    All,
    /// These namespaces (a `matchNames` list); never empty.
    Names(Vec<Str>),
}
