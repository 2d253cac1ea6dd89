//! Which kinds are watched: the `--kinds` / `--exclude-kinds` patterns, the default exclusions
//! and the order in which kinds take the places of the watch cap.
//!
//! A pattern is `name` or `name.group`. `name` is matched, case-insensitively, against a kind's
//! name (`Certificate`), its plural (`certificates`), its singular and its short names; `group`
//! against its API group (`cert-manager.io`; `core` or nothing after the dot for the core group).
//! Either part may be a glob (`*`, `?`, `[...]`): `*.cert-manager.io` is every kind of that
//! group, `cert*` every kind whose name starts with `cert`, in any group. A pattern without a
//! group matches the name in every group (`Event` is the core Event and `events.k8s.io`'s).

use std::collections::HashSet;

use astrolabe_model::Kind;
use globset::{GlobBuilder, GlobMatcher};

use crate::{Error, Result};

/// Kinds excluded unless `--exclude-kinds` is given (which replaces this list) or `--kinds`
/// names one of them without a glob: high churn and no graph value. Events (both groups) are a
/// record of what happened, not state; Leases are renewed every few seconds by every controller
/// and node; `Endpoints` duplicates `EndpointSlice`s; `ComponentStatus` is deprecated and
/// answered by probing the control plane on every list; `CustomResourceDefinition`s are
/// schemas (watched anyway, apart, to follow the kinds they define); `Binding` and the review
/// kinds are create-only.
pub const DEFAULT_EXCLUDED: &[&str] = &[
    "Event",
    "Event.events.k8s.io",
    "Lease.coordination.k8s.io",
    "Endpoints.core",
    "ComponentStatus.core",
    "CustomResourceDefinition.apiextensions.k8s.io",
];

/// One `--kinds` / `--exclude-kinds` pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    name: Part,
    /// `None`: any group.
    group: Option<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    /// Lowercase text.
    Exact(String),
    Glob(GlobMatcher),
}

impl Part {
    fn parse(text: &str, pattern: &str) -> Result<Part> {
        if !text.contains(['*', '?', '[']) {
            return Ok(Part::Exact(text.to_ascii_lowercase()));
        }
        GlobBuilder::new(text)
            .case_insensitive(true)
            .build()
            .map(|g| Part::Glob(g.compile_matcher()))
            .map_err(|source| Error::KindPattern {
                pattern: pattern.to_owned(),
                source,
            })
    }

    fn matches(&self, candidate: &str) -> bool {
        match self {
            Part::Exact(text) => candidate.eq_ignore_ascii_case(text),
            Part::Glob(glob) => glob.is_match(candidate),
        }
    }
}

impl Pattern {
    /// Parses one pattern.
    ///
    /// # Errors
    /// [`Error::KindPattern`] for a glob that does not parse (`[a`).
    pub fn parse(text: &str) -> Result<Pattern> {
        let (name, group) = match text.split_once('.') {
            None => (text, None),
            Some((name, "core")) => (name, Some("")),
            Some((name, group)) => (name, Some(group)),
        };
        Ok(Pattern {
            text: text.to_owned(),
            name: Part::parse(name, text)?,
            group: group.map(|g| Part::parse(g, text)).transpose()?,
        })
    }

    /// Whether `kind` matches.
    pub fn matches(&self, kind: &Kind) -> bool {
        if self
            .group
            .as_ref()
            .is_some_and(|group| !group.matches(kind.group()))
        {
            return false;
        }
        [kind.as_str(), kind.plural(), kind.singular()]
            .into_iter()
            .chain(kind.short_names().iter().copied())
            .filter(|n| !n.is_empty())
            .any(|n| self.name.matches(n))
    }

    /// A plain name: no group and no glob (`Pod`, `pods`, `Endpoints`).
    pub fn is_bare_name(&self) -> bool {
        self.group.is_none() && matches!(self.name, Part::Exact(_))
    }

    /// No glob in it: it names one kind (`Pod`, `Certificate.cert-manager.io`).
    fn is_literal(&self) -> bool {
        matches!(self.name, Part::Exact(_)) && !matches!(self.group, Some(Part::Glob(_)))
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The kinds selected by `--kinds` and `--exclude-kinds`.
#[derive(Clone, Debug)]
pub struct Selection {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    /// `exclude` is [`DEFAULT_EXCLUDED`]: a kind `include` names literally is still selected.
    default_exclusions: bool,
}

impl Default for Selection {
    fn default() -> Self {
        match Selection::new(&[], None) {
            Ok(s) => s,
            Err(err) => unreachable!("the default exclusions are valid patterns: {err}"),
        }
    }
}

impl PartialEq for Selection {
    fn eq(&self, other: &Self) -> bool {
        let texts = |v: &[Pattern]| v.iter().map(|p| p.text.clone()).collect::<Vec<_>>();
        texts(&self.include) == texts(&other.include)
            && texts(&self.exclude) == texts(&other.exclude)
            && self.default_exclusions == other.default_exclusions
    }
}

impl Eq for Selection {}

impl Selection {
    /// The selection of `kinds` (empty: every kind) minus `exclude` (`None`: the
    /// [`DEFAULT_EXCLUDED`] kinds). Values may hold comma-separated lists; blanks are ignored, so
    /// an empty `--exclude-kinds=` excludes nothing.
    ///
    /// # Errors
    /// [`Error::KindPattern`] for a glob that does not parse.
    pub fn new(kinds: &[String], exclude: Option<&[String]>) -> Result<Selection> {
        let parse = |values: Vec<&str>| -> Result<Vec<Pattern>> {
            values.into_iter().map(Pattern::parse).collect()
        };
        let default_exclusions = exclude.is_none();
        let exclude = match exclude {
            Some(values) => parse(split(values).collect())?,
            None => parse(DEFAULT_EXCLUDED.to_vec())?,
        };
        Ok(Selection {
            include: parse(split(kinds).collect())?,
            exclude,
            default_exclusions,
        })
    }

    /// Whether `kind` is watched.
    pub fn selects(&self, kind: &Kind) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|p| p.matches(kind));
        if !included {
            return false;
        }
        let named = || {
            self.include
                .iter()
                .any(|p| p.is_literal() && p.matches(kind))
        };
        !self.exclude.iter().any(|p| p.matches(kind)) || (self.default_exclusions && named())
    }

    /// The first plain name (see [`Pattern::is_bare_name`]) of either list that matches none
    /// of `known`: a misspelling, since a kind that may appear later is written with its group
    /// or as a glob.
    pub fn unknown_name<'a>(&'a self, known: &[Kind]) -> Option<&'a str> {
        self.include
            .iter()
            .chain(if self.default_exclusions {
                &[][..]
            } else {
                &self.exclude[..]
            })
            .filter(|p| p.is_bare_name())
            .find(|p| !known.iter().any(|k| p.matches(k)))
            .map(Pattern::as_str)
    }
}

/// Comma-separated values, trimmed, blanks dropped.
pub(crate) fn split(values: &[String]) -> impl Iterator<Item = &str> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// How a kind is read, which decides what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// A built-in kind: its Kubernetes type and processor.
    Typed,
    /// Metadata only (`PartialObjectMetadata`): identity, labels, kept annotations, owners.
    Metadata,
    /// The whole object as JSON, for the relationship rules.
    Full,
}

impl Mode {
    /// The name in the readiness detail and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Typed => "typed",
            Mode::Metadata => "metadata",
            Mode::Full => "full",
        }
    }
}

/// Whether a kind holds a watch or is listed periodically (beyond the watch cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// A list, then a watch.
    Watch,
    /// A list every `--list-interval`.
    Poll,
}

impl Access {
    /// The name in the readiness detail and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Watch => "watch",
            Access::Poll => "poll",
        }
    }
}

/// Gives each kind its [`Access`] under a cap of `max_watches` watched kinds: the built-in
/// kinds first (in the table's order), then the kinds with rules, then the rest, each group in
/// its given order; the kinds past the cap are polled. Returns the kinds in that order.
pub fn cap_order(
    kinds: impl IntoIterator<Item = Kind>,
    with_rules: &HashSet<Kind>,
    max_watches: usize,
) -> Vec<(Kind, Access)> {
    let mut kinds: Vec<Kind> = kinds.into_iter().collect();
    // Stable: within a rank, the given order stays.
    kinds.sort_by_key(|k| match k {
        k if k.is_watched() => 0,
        k if with_rules.contains(k) => 1,
        _ => 2,
    });
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let access = if i < max_watches {
                Access::Watch
            } else {
                Access::Poll
            };
            (k, access)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrolabe_model::KindInfo;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn crd(group: &str, kind: &str, plural: &str) -> Kind {
        Kind::discovered(&KindInfo {
            kind: kind.into(),
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            namespaced: true,
        })
    }

    #[test]
    fn pattern_forms() {
        let cert = crd("cert-manager.io", "Certificate", "certificates");
        let issuer = crd("cert-manager.io", "ClusterIssuer", "clusterissuers");
        let other_cert = crd("example.com", "Certificate", "certificates");
        let p = |t: &str| Pattern::parse(t).expect("valid");
        assert!(p("Certificate").matches(&cert) && p("Certificate").matches(&other_cert));
        assert!(p("certificate.cert-manager.io").matches(&cert));
        assert!(!p("Certificate.cert-manager.io").matches(&other_cert));
        assert!(p("certificates.cert-manager.io").matches(&cert));
        assert!(p("*.cert-manager.io").matches(&issuer));
        assert!(!p("*.cert-manager.io").matches(&other_cert));
        assert!(p("cert*").matches(&cert) && !p("cert*").matches(&issuer));
        assert!(p("*.*.io").matches(&cert) && !p("*.*.io").matches(&other_cert));
        // Built-in kinds by name, plural, short name; the core group by `.core` or `.`.
        for t in ["Pod", "pods", "PODS", "po", "Pod.core", "pods."] {
            assert!(p(t).matches(&Kind::Pod), "{t}");
        }
        assert!(!p("Pod.apps").matches(&Kind::Pod));
        assert!(p("deploy").matches(&Kind::Deployment));
        assert!(p("*.apps").matches(&Kind::StatefulSet));
        assert!(matches!(
            Pattern::parse("[a"),
            Err(Error::KindPattern { .. })
        ));
        assert!(p("Pod").is_bare_name() && !p("Pod.core").is_bare_name());
        assert!(!p("cert*").is_bare_name());
    }

    #[test]
    fn default_exclusions_and_overrides() {
        let endpoints = crd("", "Endpoints", "endpoints");
        let event = crd("", "Event", "events");
        let event_v1 = crd("events.k8s.io", "Event", "events");
        let lease = crd("coordination.k8s.io", "Lease", "leases");
        let cert = crd("cert-manager.io", "Certificate", "certificates");
        let all = Selection::default();
        for k in [&endpoints, &event, &event_v1, &lease] {
            assert!(!all.selects(k), "{k:?} excluded by default");
        }
        assert!(all.selects(&cert) && all.selects(&Kind::Pod));
        // Named in --kinds: in, despite the defaults; a glob does not override them.
        let named = Selection::new(&s(&["Endpoints,Pod"]), None).expect("valid");
        assert!(named.selects(&endpoints) && named.selects(&Kind::Pod));
        assert!(!named.selects(&cert));
        let globbed = Selection::new(&s(&["*"]), None).expect("valid");
        assert!(!globbed.selects(&endpoints) && globbed.selects(&cert));
        // --exclude-kinds replaces the defaults; empty excludes nothing.
        let none = Selection::new(&[], Some(&s(&[""]))).expect("valid");
        assert!(none.selects(&endpoints) && none.selects(&lease));
        let own = Selection::new(&s(&["Endpoints"]), Some(&s(&["endpoints"]))).expect("valid");
        assert!(!own.selects(&endpoints), "an explicit exclusion wins");
        let groups = Selection::new(&[], Some(&s(&["*.cert-manager.io, secrets"]))).expect("ok");
        assert!(!groups.selects(&cert) && !groups.selects(&Kind::Secret));
        assert!(groups.selects(&event));
    }

    #[test]
    fn unknown_plain_names() {
        let known = [Kind::Pod, crd("", "Endpoints", "endpoints")];
        let sel = Selection::new(
            &s(&["pods", "Endpoints", "Rollout.argoproj.io", "x*"]),
            None,
        )
        .expect("valid");
        assert_eq!(sel.unknown_name(&known), None);
        let sel = Selection::new(&s(&["Deploymnet"]), None).expect("valid");
        assert_eq!(sel.unknown_name(&known), Some("Deploymnet"));
        let sel = Selection::new(&[], Some(&s(&["Podz"]))).expect("valid");
        assert_eq!(sel.unknown_name(&known), Some("Podz"));
    }

    #[test]
    fn cap_puts_builtin_then_rules_then_the_rest() {
        let a = crd("a.io", "A", "as");
        let b = crd("b.io", "B", "bs");
        let c = crd("c.io", "C", "cs");
        let rules: HashSet<Kind> = [c.clone()].into_iter().collect();
        let order = cap_order(
            [a.clone(), Kind::Pod, b.clone(), c.clone(), Kind::Node],
            &rules,
            3,
        );
        assert_eq!(
            order,
            vec![
                (Kind::Pod, Access::Watch),
                (Kind::Node, Access::Watch),
                (c, Access::Watch),
                (a, Access::Poll),
                (b, Access::Poll),
            ]
        );
        assert!(cap_order([Kind::Pod], &rules, 0)[0].1 == Access::Poll);
    }
}
