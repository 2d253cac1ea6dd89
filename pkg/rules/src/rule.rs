//! `Rule`: one validated relationship rule, and its compilation from the file's text.

use std::fmt;
use std::sync::Arc;

use astrolabe_model::{Dependency, Str};
use serde_saphyr::{Location, Spanned};

use crate::error::{RuleId, RulesError};
use crate::path::FieldPath;
use crate::spec::{
    RawDependency, RawMatch, RawNamespace, RawNamespaces, RawRule, RawTarget, RawTargetNamespace,
    RawTo,
};

/// A group-qualified kind; group `""` is the core group.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct GroupKind {
    /// The API group (`cert-manager.io`; `""` for core).
    pub group: Str,
    /// The kind (`Certificate`).
    pub kind: Str,
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// One kind a rule may point at.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Target {
    /// The target's group and kind.
    pub kind: GroupKind,
    /// Whether the kind is cluster-scoped (`namespace: cluster` in the entry): its references
    /// carry no namespace whatever the rule or the reference says.
    pub cluster_scoped: bool,
}

/// The kinds a rule may point at (`to`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Targets {
    /// Whatever kind the reference names (`to: any`); a reference naming no kind makes none.
    Any,
    /// These kinds only; a reference naming another kind makes none. Never empty.
    Listed(Vec<Target>),
}

/// How the value at a rule's path names its target (`match`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Match {
    /// The value is the target's name.
    Name {
        /// Where the name is read when the path holds none (`default: metadata.name`).
        default: Option<FieldPath>,
        /// Values that name no object (`mesh`).
        ignore: Vec<String>,
    },
    /// The value is an object with `name` and optionally `namespace`, `kind`, `group`,
    /// `apiVersion`.
    Ref {
        /// The kind assumed when the object has none.
        kind: Option<Str>,
        /// The group assumed when the object has neither `group` nor `apiVersion`.
        group: Option<Str>,
    },
    /// The value is a label selector (`matchLabels`, `matchExpressions`).
    Selector {
        /// Which namespaces the selected objects live in.
        namespaces: NamespacesPolicy,
    },
    /// The value is a DNS name or `namespace/name`.
    Host {
        /// Values that name no object (`mesh`).
        ignore: Vec<String>,
    },
}

/// Where a name-matched target's namespace comes from (`namespace`), when the reference itself
/// names none.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NamespacePolicy {
    /// The source's own namespace.
    Same,
    /// No namespace: the target is cluster-scoped.
    Cluster,
    /// The string at this path of the source object; the source's namespace when absent.
    Field(FieldPath),
}

/// Which namespaces a selector rule selects in (`namespaces`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NamespacesPolicy {
    /// The source's own namespace.
    Same,
    /// Every namespace.
    All,
    /// The selected kind is cluster-scoped.
    Cluster,
    /// A Prometheus Operator style `{any: bool, matchNames: [..]}` at this path; the source's
    /// namespace when absent or empty.
    From(FieldPath),
}

/// A condition of `whenAny`: the first value at `path` is one of `values`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Condition {
    /// Where the value is read.
    pub path: FieldPath,
    /// The values that satisfy the condition.
    pub values: Vec<String>,
}

/// A validated relationship rule. Built only by [`crate::RuleSet::parse`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Rule {
    /// The rule's unique name.
    pub name: Arc<str>,
    /// What the rule finds, in a sentence (for listings of rules and edge kinds); may be empty.
    pub description: Arc<str>,
    /// The file the rule came from.
    pub file: Arc<str>,
    /// The rule's position in its file, from 0.
    pub index: usize,
    /// The 1-based line the rule starts at.
    pub line: u64,
    /// The kind whose objects the rule reads.
    pub from: GroupKind,
    /// Where the references are.
    pub path: FieldPath,
    /// The kinds the references may point at.
    pub to: Targets,
    /// The edge name.
    pub edge: Arc<str>,
    /// Which end of the edge depends on the other.
    pub dependency: Dependency,
    /// Whether a missing target is expected (not reported as dangling).
    pub optional: bool,
    /// How the value at the path names the target.
    pub matcher: Match,
    /// Where a name-matched target's namespace comes from.
    pub namespace: NamespacePolicy,
    /// The rule applies only when one of these holds; always when empty.
    pub when_any: Vec<Condition>,
    /// The line of the `dependency` key, for conflict reports.
    pub(crate) dependency_line: u64,
}

impl Rule {
    /// Every path the rule reads in a source object, its own path first.
    pub fn paths(&self) -> Vec<&FieldPath> {
        let mut paths = vec![&self.path];
        match &self.matcher {
            Match::Name {
                default: Some(p), ..
            } => paths.push(p),
            Match::Selector {
                namespaces: NamespacesPolicy::From(p),
            } => paths.push(p),
            _ => {}
        }
        if let NamespacePolicy::Field(p) = &self.namespace {
            paths.push(p);
        }
        paths.extend(self.when_any.iter().map(|c| &c.path));
        paths
    }

    /// The error for this rule at `line`.
    pub(crate) fn error(&self, line: u64, reason: String) -> RulesError {
        RulesError {
            file: self.file.to_string(),
            line: Some(line),
            column: None,
            rule: Some(RuleId {
                index: self.index,
                name: Some(self.name.to_string()),
            }),
            reason,
        }
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → core).
pub(crate) fn group_of_api_version(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map_or("", |(group, _version)| group)
}

/// Compiles one rule as written into a [`Rule`], or says what is wrong and where.
pub(crate) struct Compiler<'a> {
    pub file: &'a Arc<str>,
    pub index: usize,
    pub name: Option<String>,
}

impl Compiler<'_> {
    fn fail(&self, at: Location, reason: impl Into<String>) -> RulesError {
        RulesError {
            file: self.file.to_string(),
            line: (at.line() > 0).then(|| at.line()),
            column: (at.column() > 0).then(|| at.column()),
            rule: Some(RuleId {
                index: self.index,
                name: self.name.clone(),
            }),
            reason: reason.into(),
        }
    }

    fn path(&self, text: &Spanned<String>, what: &str) -> Result<FieldPath, RulesError> {
        FieldPath::parse(&text.value)
            .map_err(|e| self.fail(text.referenced, format!("{what}: {e}")))
    }

    fn single_path(&self, text: &str, at: Location, what: &str) -> Result<FieldPath, RulesError> {
        let path = FieldPath::parse(text).map_err(|e| self.fail(at, format!("{what}: {e}")))?;
        if path.has_each() {
            return Err(self.fail(
                at,
                format!("{what}: {text:?} reads one value; `[*]` is not allowed here"),
            ));
        }
        Ok(path)
    }

    fn kind(
        &self,
        group: &str,
        kind: &str,
        at: Location,
        what: &str,
    ) -> Result<GroupKind, RulesError> {
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(self.fail(at, format!("{what}: bad kind {kind:?}")));
        }
        let group_ok = group
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !group_ok || group.starts_with('.') || group.ends_with('.') {
            return Err(self.fail(at, format!("{what}: bad group {group:?}")));
        }
        Ok(GroupKind {
            group: group.into(),
            kind: kind.into(),
        })
    }

    fn name(&self, name: &Spanned<String>, what: &str) -> Result<(), RulesError> {
        if astrolabe_model::valid_edge_name(&name.value) {
            return Ok(());
        }
        Err(self.fail(
            name.referenced,
            format!(
                "bad {what} {:?}: lowercase letters, digits and single dashes, starting with a letter",
                name.value
            ),
        ))
    }

    fn target(&self, raw: &RawTarget, at: Location) -> Result<Target, RulesError> {
        Ok(Target {
            kind: self.kind(&raw.group, &raw.kind, at, "to")?,
            cluster_scoped: matches!(raw.namespace, Some(RawTargetNamespace::Cluster)),
        })
    }

    /// Validates and compiles `raw`.
    pub fn compile(&self, raw: &Spanned<RawRule>) -> Result<Rule, RulesError> {
        let at = raw.referenced;
        let r = &raw.value;
        self.name(&r.name, "rule name")?;
        self.name(&r.edge, "edge name")?;
        let from = self.kind(
            &r.from.value.group,
            &r.from.value.kind,
            r.from.referenced,
            "from",
        )?;
        let path = self.path(&r.path, "path")?;
        let to_at = r.to.referenced;
        let to = match &r.to.value {
            RawTo::Any => Targets::Any,
            RawTo::One(t) => Targets::Listed(vec![self.target(t, to_at)?]),
            RawTo::Many(list) => {
                if list.is_empty() {
                    return Err(self.fail(to_at, "`to` is an empty list"));
                }
                let mut targets: Vec<Target> = Vec::with_capacity(list.len());
                for t in list {
                    let t = self.target(t, to_at)?;
                    if targets.iter().any(|x| x.kind == t.kind) {
                        return Err(self.fail(to_at, format!("`to` lists {} twice", t.kind)));
                    }
                    targets.push(t);
                }
                Targets::Listed(targets)
            }
        };
        let matcher_kind = r.matcher.value;
        let picks_kind =
            matches!(&to, Targets::Any) || matches!(&to, Targets::Listed(list) if list.len() > 1);
        if picks_kind && matcher_kind != RawMatch::Ref {
            return Err(self.fail(
                to_at,
                "`to: any` or several kinds needs `match: ref`, whose object says its kind",
            ));
        }
        let only_for = |field: &str, at: Location, allowed: &str| {
            self.fail(at, format!("`{field}` applies to `match: {allowed}` only"))
        };
        if let Some(d) = &r.defaults
            && matcher_kind != RawMatch::Ref
        {
            return Err(only_for("defaults", d.referenced, "ref"));
        }
        if let Some(d) = &r.default
            && matcher_kind != RawMatch::Name
        {
            return Err(only_for("default", d.referenced, "name"));
        }
        if let Some(i) = &r.ignore
            && !matches!(matcher_kind, RawMatch::Name | RawMatch::Host)
        {
            return Err(only_for("ignore", i.referenced, "name` or `match: host"));
        }
        if let Some(n) = &r.namespaces
            && matcher_kind != RawMatch::Selector
        {
            return Err(only_for("namespaces", n.referenced, "selector"));
        }
        if let Some(n) = &r.namespace
            && matcher_kind == RawMatch::Selector
        {
            return Err(self.fail(
                n.referenced,
                "a selector rule says where it selects with `namespaces`, not `namespace`",
            ));
        }
        let ignore = r
            .ignore
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let matcher = match matcher_kind {
            RawMatch::Name => Match::Name {
                default: match &r.default {
                    Some(d) => Some(self.single_path(&d.value, d.referenced, "default")?),
                    None => None,
                },
                ignore,
            },
            RawMatch::Host => Match::Host { ignore },
            RawMatch::Ref => self.ref_match(r, &to)?,
            RawMatch::Selector => Match::Selector {
                namespaces: match r.namespaces.as_ref().map(|n| (&n.value, n.referenced)) {
                    None | Some((RawNamespaces::Same, _)) => NamespacesPolicy::Same,
                    Some((RawNamespaces::All, _)) => NamespacesPolicy::All,
                    Some((RawNamespaces::Cluster, _)) => NamespacesPolicy::Cluster,
                    Some((RawNamespaces::From(p), at)) => {
                        NamespacesPolicy::From(self.single_path(p, at, "namespaces.from")?)
                    }
                },
            },
        };
        let namespace = match r.namespace.as_ref().map(|n| (&n.value, n.referenced)) {
            None | Some((RawNamespace::Same, _)) => NamespacePolicy::Same,
            Some((RawNamespace::Cluster, _)) => NamespacePolicy::Cluster,
            Some((RawNamespace::Field(p), at)) => {
                NamespacePolicy::Field(self.single_path(p, at, "namespace.field")?)
            }
        };
        let mut when_any = Vec::new();
        if let Some(conditions) = &r.when_any {
            if conditions.value.is_empty() {
                return Err(self.fail(conditions.referenced, "`whenAny` is an empty list"));
            }
            for c in &conditions.value {
                when_any.push(Condition {
                    path: self.single_path(&c.path, conditions.referenced, "whenAny.path")?,
                    values: c.values.clone(),
                });
            }
        }
        Ok(Rule {
            name: r.name.value.as_str().into(),
            description: r.description.as_deref().unwrap_or("").into(),
            file: self.file.clone(),
            index: self.index,
            line: at.line(),
            from,
            path,
            to,
            edge: r.edge.value.as_str().into(),
            dependency: match r.dependency.value {
                RawDependency::SourceNeedsTarget => Dependency::SourceNeedsTarget,
                RawDependency::TargetNeedsSource => Dependency::TargetNeedsSource,
                RawDependency::None => Dependency::None,
            },
            optional: r.optional,
            matcher,
            namespace,
            when_any,
            dependency_line: r.dependency.referenced.line(),
        })
    }

    fn ref_match(&self, r: &RawRule, to: &Targets) -> Result<Match, RulesError> {
        let Some(defaults) = &r.defaults else {
            return Ok(Match::Ref {
                kind: None,
                group: None,
            });
        };
        let at = defaults.referenced;
        let d = &defaults.value;
        if d.group.is_some() && d.api_version.is_some() {
            return Err(self.fail(at, "`defaults` takes `group` or `apiVersion`, not both"));
        }
        let group = d
            .group
            .as_deref()
            .or(d.api_version.as_deref().map(group_of_api_version));
        if let (Some(kind), Targets::Listed(list)) = (&d.kind, to) {
            let listed = list
                .iter()
                .any(|t| t.kind.kind == kind.as_str() && group.is_none_or(|g| t.kind.group == g));
            if !listed {
                return Err(self.fail(
                    at,
                    format!("default kind {kind:?} is not one of the kinds in `to`"),
                ));
            }
        }
        Ok(Match::Ref {
            kind: d.kind.as_deref().map(Str::from),
            group: group.map(Str::from),
        })
    }
}
