//! From rules to the model: the edge kinds a rule set declares, and a [`RuleRef`] as the model's
//! [`Reference`], which the graph turns into edges.

use astrolabe_model::{EdgeDeclError, EdgeKind, Kind, Namespaces, Reference, Str, Target};

use crate::reference::{NamespaceScope, RefTarget, RuleRef};
use crate::rule::GroupKind;
use crate::set::RuleSet;

impl GroupKind {
    /// The model's kind: the built-in kind when group and name are one of the table's, else a
    /// kind outside the table (identified by group and name).
    pub fn to_kind(&self) -> Kind {
        let kind = Kind::parse(&self.kind);
        if kind.is_watched() && kind.group() == self.group && kind.as_str() == self.kind {
            kind
        } else {
            Kind::other(self.group.clone(), self.kind.clone())
        }
    }
}

impl RuleSet {
    /// Declares every edge name the rules use, with its dependency and the first description
    /// given for it, so the graph and the API know them.
    ///
    /// # Errors
    /// [`EdgeDeclError`] when a name clashes with a built-in edge kind's direction or the
    /// registry of declared edge kinds is full (validation refuses the first already).
    pub fn declare_edges(&self) -> Result<(), EdgeDeclError> {
        for rule in self.rules() {
            EdgeKind::declare(&rule.edge, rule.dependency, &rule.description)?;
        }
        Ok(())
    }
}

impl RuleRef {
    /// The model's reference, declared by an object in `source_namespace` (empty when
    /// cluster-scoped); `None` when the edge name was never declared ([`RuleSet::declare_edges`]).
    pub fn to_reference(&self, source_namespace: &str) -> Option<Reference> {
        let edge = EdgeKind::parse(&self.edge)?;
        let target = match &self.target {
            RefTarget::Name {
                kind,
                namespace,
                name,
            } => Target::Key(astrolabe_model::ObjectKey::new(
                kind.to_kind(),
                namespace.clone().unwrap_or_default(),
                name.clone(),
            )),
            RefTarget::Selector {
                kind,
                selector,
                namespaces,
            } => {
                let kind = kind.to_kind();
                let selector = selector.clone();
                match namespaces {
                    NamespaceScope::Namespace(ns) if ns == source_namespace => Target::Selector {
                        kind,
                        selector,
                        empty_selects_all: true,
                    },
                    NamespaceScope::Namespace(ns) => Target::SelectorIn {
                        kind,
                        selector,
                        namespaces: Box::new(Namespaces::Names(vec![ns.clone()])),
                    },
                    NamespaceScope::Cluster => Target::SelectorIn {
                        kind,
                        selector,
                        namespaces: Box::new(Namespaces::Names(vec![Str::default()])),
                    },
                    NamespaceScope::All => Target::SelectorIn {
                        kind,
                        selector,
                        namespaces: Box::new(Namespaces::All),
                    },
                    NamespaceScope::Names(names) => Target::SelectorIn {
                        kind,
                        selector,
                        namespaces: Box::new(Namespaces::Names(names.clone())),
                    },
                }
            }
        };
        Some(Reference {
            edge,
            target,
            reverse: false,
            key: None,
            optional: self.optional,
        })
    }
}
