//! `RuleSet`: the rules in force, parsed from files, merged, indexed by source kind.

use std::collections::HashMap;
use std::sync::Arc;

use astrolabe_model::{EdgeKind, Str};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::error::{RuleId, RulesError};
use crate::path::FieldPath;
use crate::reference::RuleRef;
use crate::rule::{Compiler, GroupKind, Rule};
use crate::spec::{LooseRule, RawRule};

/// The built-in rule pack's text.
const BUILTIN: &str = include_str!("builtin.yaml");

/// The name the built-in pack's errors and rules carry as their file.
pub const BUILTIN_SOURCE: &str = "<built-in rules>";

/// A validated set of rules, indexed by the kind they read.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// group → kind → positions in `rules`.
    by_kind: HashMap<Str, HashMap<Str, Vec<usize>>>,
}

impl RuleSet {
    /// Parses and validates a rule file. `source` names the file in errors and in the rules.
    ///
    /// # Errors
    /// [`RulesError`] with the file, line, rule and reason for the first problem: YAML syntax,
    /// an unknown or missing key, a bad path, name, edge name or kind, an empty `to`, options
    /// that do not fit the `match`, a rule name used twice, or an edge name used with two
    /// dependency directions (also against Astrolabe's built-in edge kinds).
    pub fn parse(text: &str, source: &str) -> Result<RuleSet, RulesError> {
        let file: Arc<str> = source.into();
        let raw: Option<Vec<Spanned<RawRule>>> =
            serde_saphyr::from_str(text).map_err(|e| yaml_error(text, source, &e))?;
        let mut rules: Vec<Rule> = Vec::new();
        for (index, raw) in raw.unwrap_or_default().iter().enumerate() {
            let compiler = Compiler {
                file: &file,
                index,
                name: Some(raw.value.name.value.clone()),
            };
            let rule = compiler.compile(raw)?;
            if let Some(first) = rules.iter().find(|r| r.name == rule.name) {
                return Err(rule.error(
                    raw.value.name.referenced.line(),
                    format!(
                        "rule name {:?} is already used by rule #{} (line {})",
                        &*rule.name, first.index, first.line
                    ),
                ));
            }
            rules.push(rule);
        }
        RuleSet::from_rules(rules)
    }

    /// The built-in rule pack: cert-manager, Gateway API, Prometheus Operator, Argo CD, KEDA,
    /// External Secrets and Istio (`src/builtin.yaml`).
    ///
    /// # Panics
    /// Never in a tested build: the pack is compiled in and a unit test parses it.
    pub fn builtin() -> RuleSet {
        match RuleSet::parse(BUILTIN, BUILTIN_SOURCE) {
            Ok(rules) => rules,
            Err(e) => panic!("the built-in rule pack is invalid: {e}"),
        }
    }

    /// This set with `other`'s rules added; a rule of `other` replaces the rule of the same
    /// name here (a user file overriding a built-in rule).
    ///
    /// # Errors
    /// [`RulesError`] naming a rule of `other` whose edge name is used here with another
    /// dependency direction.
    pub fn merge(self, other: RuleSet) -> Result<RuleSet, RulesError> {
        let mut rules: Vec<Rule> = self
            .rules
            .into_iter()
            .filter(|r| !other.rules.iter().any(|o| o.name == r.name))
            .collect();
        rules.extend(other.rules);
        RuleSet::from_rules(rules)
    }

    fn from_rules(rules: Vec<Rule>) -> Result<RuleSet, RulesError> {
        let mut edges: HashMap<&str, &Rule> = HashMap::new();
        for rule in &rules {
            // Only the built-in kinds: names declared at run time are this set's own business.
            if let Some(builtin) = EdgeKind::ALL.iter().find(|k| k.as_str() == &*rule.edge)
                && builtin.dependency() != rule.dependency
            {
                return Err(rule.error(
                    rule.dependency_line,
                    format!(
                        "edge {:?} is a built-in edge kind whose dependency is {}, not {}",
                        &*rule.edge,
                        builtin.dependency().as_str(),
                        rule.dependency.as_str()
                    ),
                ));
            }
            match edges.get(&*rule.edge) {
                Some(first) if first.dependency != rule.dependency => {
                    return Err(rule.error(
                        rule.dependency_line,
                        format!(
                            "edge {:?} has dependency {} here but {} in rule {:?} ({}:{})",
                            &*rule.edge,
                            rule.dependency.as_str(),
                            first.dependency.as_str(),
                            &*first.name,
                            first.file,
                            first.line
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    edges.insert(&rule.edge, rule);
                }
            }
        }
        let mut by_kind: HashMap<Str, HashMap<Str, Vec<usize>>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            by_kind
                .entry(rule.from.group.clone())
                .or_default()
                .entry(rule.from.kind.clone())
                .or_default()
                .push(i);
        }
        Ok(RuleSet { rules, by_kind })
    }

    /// Every rule, built-in ones first after a merge.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether the set has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The kinds some rule reads, sorted.
    pub fn kinds(&self) -> Vec<GroupKind> {
        let mut kinds: Vec<GroupKind> = self
            .by_kind
            .iter()
            .flat_map(|(group, kinds)| {
                kinds.keys().map(|kind| GroupKind {
                    group: group.clone(),
                    kind: kind.clone(),
                })
            })
            .collect();
        kinds.sort();
        kinds
    }

    /// The rules that read objects of `group`/`kind`.
    pub fn rules_for<'a>(&'a self, group: &str, kind: &str) -> impl Iterator<Item = &'a Rule> {
        self.by_kind
            .get(group)
            .and_then(|kinds| kinds.get(kind))
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i])
    }

    /// Every path the rules for `group`/`kind` read, without repeats: the fields a watcher must
    /// keep of such objects.
    pub fn paths(&self, group: &str, kind: &str) -> Vec<&FieldPath> {
        let mut paths: Vec<&FieldPath> = Vec::new();
        for rule in self.rules_for(group, kind) {
            for path in rule.paths() {
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        paths
    }

    /// The references every rule for `from_group`/`from_kind` finds in `object`, a source living
    /// in `source_namespace` (`None` when cluster-scoped), in rule order.
    pub fn evaluate(
        &self,
        from_group: &str,
        from_kind: &str,
        source_namespace: Option<&str>,
        object: &Value,
    ) -> Vec<RuleRef> {
        let mut out = Vec::new();
        self.evaluate_into(from_group, from_kind, source_namespace, object, &mut out);
        out
    }

    /// [`RuleSet::evaluate`], appending to `out`.
    pub fn evaluate_into(
        &self,
        from_group: &str,
        from_kind: &str,
        source_namespace: Option<&str>,
        object: &Value,
        out: &mut Vec<RuleRef>,
    ) {
        for rule in self.rules_for(from_group, from_kind) {
            rule.evaluate_into(source_namespace, object, out);
        }
    }
}

/// A YAML or shape error, located, and named after the rule it falls in when the file is
/// well-formed enough to tell.
fn yaml_error(text: &str, source: &str, error: &serde_saphyr::Error) -> RulesError {
    let location = error.location().filter(|l| l.line() > 0);
    let line = location.map(|l| l.line());
    let rule = line.and_then(|line| {
        // Lenient about repeated keys, so a rule holding one can still be named.
        let lenient = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        };
        let loose: Vec<Spanned<LooseRule>> =
            serde_saphyr::from_str_with_options(text, lenient).ok()?;
        let index = loose
            .iter()
            .rposition(|r| r.referenced.line() > 0 && r.referenced.line() <= line)?;
        let name = loose[index]
            .value
            .name
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(RuleId { index, name })
    });
    RulesError {
        file: source.to_owned(),
        line,
        column: location.map(|l| l.column()).filter(|c| *c > 0),
        rule,
        reason: reason_of(error),
    }
}

/// The error's message without the location and source snippet the crate adds, with control
/// characters (from the file's own text) made plain spaces.
fn reason_of(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    serde_saphyr::UserMessageFormatter
        .format_message(error.without_snippet())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
