//! Evaluation: one rule applied to one object's JSON, yielding [`RuleRef`]s. Total: whatever the
//! object holds, evaluation returns (a field that does not fit makes no reference).

use astrolabe_model::{LabelSelector, Labels, Str};
use serde_json::{Map, Value};

use crate::reference::{NamespaceScope, RefTarget, RuleRef};
use crate::rule::{
    GroupKind, Match, NamespacePolicy, NamespacesPolicy, Rule, Target, Targets,
    group_of_api_version,
};

/// A non-empty string, or nothing.
fn non_empty(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}

/// An optional string field of a reference object: `Ok(None)` when absent, null or empty,
/// `Err` when odd-typed (the whole reference is then dropped).
fn text_field<'v>(object: &'v Map<String, Value>, key: &str) -> Result<Option<&'v str>, ()> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
        Some(_) => Err(()),
    }
}

impl Rule {
    /// Appends to `out` the references this rule finds in `object`, a source of the rule's
    /// `from` kind living in `source_namespace` (`None` when cluster-scoped). Within one rule
    /// the references are sorted and free of repeats.
    pub fn evaluate_into(
        &self,
        source_namespace: Option<&str>,
        object: &Value,
        out: &mut Vec<RuleRef>,
    ) {
        if !self.when_any.is_empty()
            && !self.when_any.iter().any(|c| {
                c.path
                    .first(object)
                    .and_then(Value::as_str)
                    .is_some_and(|v| c.values.iter().any(|x| x == v))
            })
        {
            return;
        }
        let start = out.len();
        let mut push = |target: RefTarget| {
            out.push(RuleRef {
                rule: self.name.clone(),
                edge: self.edge.clone(),
                dependency: self.dependency,
                optional: self.optional,
                target,
            });
        };
        match &self.matcher {
            Match::Name { default, ignore } => {
                let mut found = false;
                let mut any_odd = false;
                self.path.for_each(object, &mut |v| match v {
                    Value::Null => {}
                    Value::String(s) if s.is_empty() => {}
                    Value::String(name) => {
                        found = true;
                        if !ignore.iter().any(|i| i == name) {
                            push_named(self, source_namespace, object, None, name, &mut push);
                        }
                    }
                    _ => any_odd = true,
                });
                if !found
                    && !any_odd
                    && let Some(name) = default.as_ref().and_then(|d| d.first(object))
                    && let Some(name) = non_empty(name)
                {
                    push_named(self, source_namespace, object, None, name, &mut push);
                }
            }
            Match::Host { ignore } => self.path.for_each(object, &mut |v| {
                if let Some(host) = non_empty(v)
                    && !ignore.iter().any(|i| i == host)
                    && let Some((name, namespace)) = parse_host(host)
                {
                    push_named(self, source_namespace, object, namespace, name, &mut push);
                }
            }),
            Match::Ref { kind, group } => self.path.for_each(object, &mut |v| {
                if let Some(r) = v.as_object() {
                    push_ref(
                        self,
                        r,
                        kind.as_deref(),
                        group.as_deref(),
                        source_namespace,
                        object,
                        &mut push,
                    );
                }
            }),
            Match::Selector { namespaces } => self.path.for_each(object, &mut |v| {
                let Some(selector) = label_selector(v) else {
                    return;
                };
                let Some(namespaces) = namespace_scope(namespaces, source_namespace, object) else {
                    return;
                };
                if let Targets::Listed(list) = &self.to
                    && let [target] = list.as_slice()
                {
                    push(RefTarget::Selector {
                        kind: target.kind.clone(),
                        selector,
                        namespaces,
                    });
                }
            }),
        }
        let added = &mut out[start..];
        if added.len() > 1 {
            added.sort_unstable_by(|a, b| a.target.cmp(&b.target));
            let mut kept = start + 1;
            for i in start + 1..out.len() {
                if out[i].target != out[kept - 1].target {
                    out.swap(i, kept);
                    kept += 1;
                }
            }
            out.truncate(kept);
        }
    }

    /// The references this rule finds in `object`; see [`Rule::evaluate_into`].
    pub fn evaluate(&self, source_namespace: Option<&str>, object: &Value) -> Vec<RuleRef> {
        let mut out = Vec::new();
        self.evaluate_into(source_namespace, object, &mut out);
        out
    }
}

/// The namespace of a by-name target: `Some(None)` for no namespace, `None` when the reference
/// must be dropped (an odd-typed namespace field).
fn target_namespace(
    rule: &Rule,
    target: &Target,
    explicit: Option<&str>,
    source_namespace: Option<&str>,
    object: &Value,
) -> Option<Option<Str>> {
    if target.cluster_scoped {
        return Some(None);
    }
    if let Some(ns) = explicit {
        return Some(Some(ns.into()));
    }
    match &rule.namespace {
        NamespacePolicy::Same => Some(source_namespace.map(Str::from)),
        NamespacePolicy::Cluster => Some(None),
        NamespacePolicy::Field(path) => match path.first(object) {
            None | Some(Value::Null) => Some(source_namespace.map(Str::from)),
            Some(Value::String(s)) if s.is_empty() => Some(source_namespace.map(Str::from)),
            Some(Value::String(s)) => Some(Some(s.as_str().into())),
            Some(_) => None,
        },
    }
}

/// Pushes a by-name reference to the rule's only target kind.
fn push_named(
    rule: &Rule,
    source_namespace: Option<&str>,
    object: &Value,
    explicit_namespace: Option<&str>,
    name: &str,
    push: &mut impl FnMut(RefTarget),
) {
    let Targets::Listed(list) = &rule.to else {
        return;
    };
    let [target] = list.as_slice() else {
        return;
    };
    if let Some(namespace) =
        target_namespace(rule, target, explicit_namespace, source_namespace, object)
    {
        push(RefTarget::Name {
            kind: target.kind.clone(),
            namespace,
            name: name.into(),
        });
    }
}

/// Pushes the reference a `{name, namespace, kind, group, apiVersion}` object makes, if it fits.
fn push_ref(
    rule: &Rule,
    r: &Map<String, Value>,
    default_kind: Option<&str>,
    default_group: Option<&str>,
    source_namespace: Option<&str>,
    object: &Value,
    push: &mut impl FnMut(RefTarget),
) {
    let read = || -> Result<_, ()> {
        let name = text_field(r, "name")?;
        let namespace = text_field(r, "namespace")?;
        let kind = text_field(r, "kind")?;
        let group = text_field(r, "group")?;
        let api_version = text_field(r, "apiVersion")?;
        Ok((name, namespace, kind, group, api_version))
    };
    let Ok((Some(name), namespace, kind, group, api_version)) = read() else {
        return;
    };
    let kind = kind.or(default_kind);
    let group = group
        .or(api_version.map(group_of_api_version))
        .or(default_group);
    let (target_kind, target) = match &rule.to {
        Targets::Any => {
            let Some(kind) = kind else { return };
            let kind = GroupKind {
                group: group.unwrap_or("").into(),
                kind: kind.into(),
            };
            (kind, None)
        }
        Targets::Listed(list) => {
            let mut fits = list.iter().filter(|t| {
                kind.is_none_or(|k| t.kind.kind == k) && group.is_none_or(|g| t.kind.group == g)
            });
            let (Some(target), None) = (fits.next(), fits.next()) else {
                return;
            };
            (target.kind.clone(), Some(target))
        }
    };
    let namespace = match target {
        Some(target) => target_namespace(rule, target, namespace, source_namespace, object),
        None => {
            let any = Target {
                kind: target_kind.clone(),
                cluster_scoped: false,
            };
            target_namespace(rule, &any, namespace, source_namespace, object)
        }
    };
    if let Some(namespace) = namespace {
        push(RefTarget::Name {
            kind: target_kind,
            namespace,
            name: name.into(),
        });
    }
}

/// Splits a host into a Service name and, when it says one, a namespace: `svc`, `svc.ns`,
/// `svc.ns.svc[.<cluster domain>]`, or `ns/name`. Anything else (wildcards, outside names,
/// empty parts) names no Service.
pub(crate) fn parse_host(host: &str) -> Option<(&str, Option<&str>)> {
    let label = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some((namespace, name)) = host.split_once('/') {
        let dns_name = |s: &str| s.split('.').all(label);
        return (label(namespace) && dns_name(name)).then_some((name, Some(namespace)));
    }
    let mut parts = host.split('.');
    let name = parts.next().filter(|s| label(s))?;
    let Some(namespace) = parts.next() else {
        return Some((name, None));
    };
    if !label(namespace) {
        return None;
    }
    match parts.next() {
        None => Some((name, Some(namespace))),
        Some("svc") if parts.all(label) => Some((name, Some(namespace))),
        Some(_) => None,
    }
}

/// A `metav1.LabelSelector` object; `None` when it is not one (odd types, unknown operators,
/// values that do not fit the operator).
pub(crate) fn label_selector(value: &Value) -> Option<LabelSelector> {
    let object = value.as_object()?;
    let mut selector = LabelSelector::default();
    match object.get("matchLabels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            let mut map = Labels::new();
            for (k, v) in labels {
                map.insert(k.as_str(), v.as_str()?);
            }
            selector.match_labels = map;
        }
        Some(_) => return None,
    }
    match object.get("matchExpressions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(expressions)) => {
            for e in expressions {
                let e = e.as_object()?;
                let key = non_empty(e.get("key")?)?;
                let operator = e.get("operator")?.as_str()?;
                let values = match e.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vs)) => {
                        vs.iter().map(Value::as_str).collect::<Option<Vec<_>>>()?
                    }
                    Some(_) => return None,
                };
                let needs_values = matches!(operator, "In" | "NotIn");
                if needs_values == values.is_empty() {
                    return None;
                }
                selector.push_expression(key, operator, values).ok()?;
            }
        }
        Some(_) => return None,
    }
    Some(selector)
}

/// Resolves a selector rule's namespaces for one source; `None` when the field it reads is
/// odd-typed.
fn namespace_scope(
    policy: &NamespacesPolicy,
    source_namespace: Option<&str>,
    object: &Value,
) -> Option<NamespaceScope> {
    let same = || match source_namespace {
        Some(ns) => NamespaceScope::Namespace(ns.into()),
        None => NamespaceScope::Cluster,
    };
    match policy {
        NamespacesPolicy::Same => Some(same()),
        NamespacesPolicy::All => Some(NamespaceScope::All),
        NamespacesPolicy::Cluster => Some(NamespaceScope::Cluster),
        NamespacesPolicy::From(path) => match path.first(object) {
            None | Some(Value::Null) => Some(same()),
            Some(Value::Object(ns)) => {
                match ns.get("any") {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                    Some(Value::Bool(true)) => return Some(NamespaceScope::All),
                    Some(_) => return None,
                }
                let names: Vec<Str> = match ns.get("matchNames") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(names)) => names
                        .iter()
                        .map(|n| n.as_str().map(Str::from))
                        .collect::<Option<Vec<_>>>()?,
                    Some(_) => return None,
                };
                let mut names: Vec<Str> = names.into_iter().filter(|n| !n.is_empty()).collect();
                names.sort();
                names.dedup();
                Some(if names.is_empty() {
                    same()
                } else {
                    NamespaceScope::Names(names)
                })
            }
            Some(_) => None,
        },
    }
}
