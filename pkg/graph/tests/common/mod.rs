//! Fixtures shared by the graph's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use astrolabe_graph::Graph;
use astrolabe_model::{EdgeKind, Kind, LabelSelector, Labels, Reference, Resource, Uid};

/// A resource builder.
pub fn res(uid: &str, kind: Kind, ns: &str, name: &str) -> Resource {
    Resource::new(uid, kind, ns, name)
}

pub fn labelled(mut r: Resource, pairs: &[(&str, &str)]) -> Resource {
    r.labels = pairs.iter().copied().collect::<Labels>();
    r
}

pub fn refs(mut r: Resource, refs: Vec<Reference>) -> Resource {
    r.references.extend(refs);
    r.normalize();
    r
}

pub fn sel(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap()
}

pub fn key(edge: EdgeKind, kind: Kind, ns: &str, name: &str) -> Reference {
    Reference::to_key(edge, kind, ns, name)
}

/// Edges as (from uid, to uid, kind name) for readable assertions.
pub fn edges(g: &Graph) -> BTreeSet<(String, String, &'static str)> {
    g.edge_set()
        .into_iter()
        .map(|(a, b, k)| (a.to_string(), b.to_string(), k.as_str()))
        .collect()
}

pub fn has(g: &Graph, from: &str, to: &str, kind: EdgeKind) -> bool {
    g.edge_set()
        .contains(&(Uid::from(from), Uid::from(to), kind))
}
