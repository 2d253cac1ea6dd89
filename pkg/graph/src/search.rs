//! Free-text search over resources (the explorer's search box): terms matched against kind,
//! name, namespace, Helm release and labels, best name matches first.
//!
//! A query is whitespace-separated terms, every one of which must match (case-insensitive):
//! - `kind:X` — the kind is `X`; `ns:X` (or `namespace:X`) — the namespace is `X`;
//!   `release:X` — the Helm release is `X`;
//! - `key=value` — the label `key` has a value containing `value`;
//! - any other term — a substring of the name, namespace, Helm release, a label key or value,
//!   or a prefix of the kind.
//!
//! A full scan of the nodes, which is a few milliseconds for tens of thousands of resources;
//! results are ordered by how the first free-text term matches the name (equal, prefix,
//! contained, elsewhere), then by key (kind, namespace, name).

use std::sync::Arc;

use astrolabe_model::Resource;

use crate::Graph;
use crate::keys::KeyView;

/// One parsed term of a search query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Kind(String),
    Namespace(String),
    Release(String),
    Label(String, String),
    Text(String),
}

impl Term {
    fn parse(raw: &str) -> Term {
        let lower = raw.to_lowercase();
        if let Some((field, value)) = lower.split_once(':') {
            match field {
                "kind" => return Term::Kind(value.to_owned()),
                "ns" | "namespace" => return Term::Namespace(value.to_owned()),
                "release" => return Term::Release(value.to_owned()),
                _ => {}
            }
        }
        match lower.split_once('=') {
            Some((key, value)) if !key.is_empty() => Term::Label(key.to_owned(), value.to_owned()),
            _ => Term::Text(lower),
        }
    }

    fn matches(&self, r: &Resource) -> bool {
        match self {
            Term::Kind(kind) => r.kind.as_str().eq_ignore_ascii_case(kind),
            Term::Namespace(ns) => r.namespace.eq_ignore_ascii_case(ns),
            Term::Release(rel) => r.release().eq_ignore_ascii_case(rel),
            Term::Label(key, value) => r
                .labels
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(key) && contains(v, value)),
            Term::Text(text) => {
                contains(&r.name, text)
                    || contains(&r.namespace, text)
                    || contains(r.release(), text)
                    || r.kind.as_str().to_lowercase().starts_with(text.as_str())
                    || r.labels
                        .iter()
                        .any(|(k, v)| contains(k, text) || contains(v, text))
            }
        }
    }
}

/// Whether `haystack` contains `needle` (already lowercase), ignoring ASCII case.
fn contains(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() {
        haystack.to_ascii_lowercase().contains(needle)
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

/// How well `text` matches the name: 0 equal, 1 prefix, 2 contained, 3 elsewhere.
fn rank(r: &Resource, text: Option<&str>) -> u8 {
    let Some(text) = text else { return 3 };
    let name = r.name.to_lowercase();
    if name == text {
        0
    } else if name.starts_with(text) {
        1
    } else if name.contains(text) {
        2
    } else {
        3
    }
}

/// The resources matching every term of `query`, best first, at most `limit`; empty for a
/// query without terms.
pub fn search(g: &Graph, query: &str, limit: usize) -> Vec<Arc<Resource>> {
    let terms: Vec<Term> = query.split_whitespace().map(Term::parse).collect();
    if terms.is_empty() {
        return Vec::new();
    }
    let first_text = terms.iter().find_map(|t| match t {
        Term::Text(text) => Some(text.as_str()),
        _ => None,
    });
    let mut hits: Vec<(u8, &Arc<Resource>)> = g
        .resources()
        .filter(|r| terms.iter().all(|t| t.matches(r)))
        .map(|r| (rank(r, first_text), r))
        .collect();
    hits.sort_unstable_by(|(ra, a), (rb, b)| ra.cmp(rb).then_with(|| a.parts().cmp(&b.parts())));
    hits.into_iter()
        .take(limit)
        .map(|(_, r)| Arc::clone(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrolabe_model::Kind;

    fn graph() -> Graph {
        let mut g = Graph::new();
        let mut web = Resource::new("d1", Kind::Deployment, "shop", "web");
        web.labels.insert("app", "web");
        web.annotations
            .insert("meta.helm.sh/release-name", "shop-rel");
        g.upsert(web);
        let mut pod = Resource::new("p1", Kind::Pod, "shop", "web-5d4f-x7k2p");
        pod.labels.insert("app", "web");
        g.upsert(pod);
        g.upsert(Resource::new("s1", Kind::Service, "shop", "frontend-web"));
        g.upsert(Resource::new("c1", Kind::ConfigMap, "other", "settings"));
        g
    }

    fn names(g: &Graph, q: &str) -> Vec<String> {
        search(g, q, 10)
            .iter()
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect()
    }

    #[test]
    fn name_matches_rank_equal_then_prefix_then_contained() {
        let g = graph();
        assert_eq!(
            names(&g, "web"),
            [
                "Deployment/web",
                "Pod/web-5d4f-x7k2p",
                "Service/frontend-web"
            ]
        );
        assert_eq!(names(&g, "WEB-5"), ["Pod/web-5d4f-x7k2p"]);
    }

    #[test]
    fn fields_narrow_and_every_term_must_match() {
        let g = graph();
        assert_eq!(names(&g, "web kind:pod"), ["Pod/web-5d4f-x7k2p"]);
        assert_eq!(names(&g, "ns:other"), ["ConfigMap/settings"]);
        assert_eq!(names(&g, "release:shop-rel"), ["Deployment/web"]);
        assert_eq!(names(&g, "app=we kind:Deployment"), ["Deployment/web"]);
        assert_eq!(names(&g, "deploy"), ["Deployment/web"], "a kind prefix");
        assert_eq!(
            names(&g, "shop-r"),
            ["Deployment/web"],
            "a release substring"
        );
        assert!(names(&g, "web ns:other").is_empty());
        assert!(names(&g, "   ").is_empty());
    }

    #[test]
    fn the_limit_keeps_the_best() {
        let g = graph();
        assert_eq!(search(&g, "web", 1)[0].name, "web");
    }
}
