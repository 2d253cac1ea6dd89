//! Dangling references: references whose target does not exist, kept as the target the source
//! declared (by UID, key or selector) and rendered to text only for display.

use std::sync::Arc;

use astrolabe_model::{EdgeKind, Kind, Namespaces, Resource, Target};

use crate::Graph;

/// A reference whose target does not exist.
#[derive(Clone, Debug)]
pub struct Dangling {
    /// The object making the reference.
    pub source: Arc<Resource>,
    /// The edge it would make.
    pub edge: EdgeKind,
    /// The missing target, as the source declared it (an owner reference is a target by UID
    /// with the owner's kind and name).
    pub target: Target,
    /// Whether the reference is optional (not an error when missing).
    pub optional: bool,
}

impl Dangling {
    /// The missing target's kind.
    pub fn target_kind(&self) -> &Kind {
        self.target.kind()
    }

    /// The missing target as text: `ConfigMap/ns/name`, `uid:<uid> (Kind/name)`, or
    /// `Pod matching <selector>`.
    pub fn target_text(&self) -> String {
        match &self.target {
            Target::Uid { uid, kind, name } => format!("uid:{uid} ({kind}/{name})"),
            Target::Key(key) => key.to_string(),
            Target::Selector { kind, selector, .. } => format!("{kind} matching {selector}"),
            Target::SelectorIn {
                kind,
                selector,
                namespaces,
            } => match &**namespaces {
                Namespaces::Names(names) => {
                    format!("{kind} matching {selector} in {}", names.join(","))
                }
                Namespaces::All => format!("{kind} matching {selector} in every namespace"),
            },
        }
    }
}

/// References whose target does not exist, and Services whose selector matches nothing,
/// sorted by source key and edge kind.
pub fn dangling(g: &Graph, namespace: Option<&str>, edge: Option<EdgeKind>) -> Vec<Dangling> {
    let wanted = |src: &Resource, e: EdgeKind| {
        namespace.is_none_or(|ns| src.namespace == ns) && edge.is_none_or(|k| k == e)
    };
    let mut out: Vec<Dangling> = Vec::new();
    for (idx, e, target) in g.pending() {
        let source = &g.g[idx];
        if !wanted(source, e) {
            continue;
        }
        let optional = source
            .references
            .iter()
            .any(|r| r.edge == e && r.optional && r.target == target);
        out.push(Dangling {
            source: source.clone(),
            edge: e,
            target,
            optional,
        });
    }
    for (idx, e) in g.selectors_matching_nothing() {
        let source = &g.g[idx];
        if !wanted(source, e) {
            continue;
        }
        for r in &source.references {
            if crate::graph::selects_something_or_should(&r.target) && r.edge == e {
                out.push(Dangling {
                    source: source.clone(),
                    edge: e,
                    target: r.target.clone(),
                    optional: false,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.source.key(), a.edge, &a.target).cmp(&(b.source.key(), b.edge, &b.target))
    });
    out.dedup_by(|a, b| a.source.uid == b.source.uid && a.edge == b.edge && a.target == b.target);
    out
}
