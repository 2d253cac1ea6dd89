//! `LabelSelector`: Kubernetes label selectors, their string syntax and their matching rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Labels, Str};

/// A set-based requirement's operator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum Operator {
    /// The key is present and its value is one of the values.
    In,
    /// The key is absent, or its value is none of the values.
    NotIn,
    /// The key is present.
    Exists,
    /// The key is absent.
    DoesNotExist,
}

/// One requirement of a selector (`matchExpressions` entry, or a term of the string syntax).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Requirement {
    /// The label key.
    pub key: Str,
    /// The operator.
    pub operator: Operator,
    /// The values (`In`/`NotIn`), sorted; empty for `Exists`/`DoesNotExist`.
    pub values: Vec<Str>,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A Kubernetes label selector: `matchLabels` and `matchExpressions`, all of which must hold.
///
/// What an *empty* selector selects depends on who uses it (nothing for a Service, everything for
/// a NetworkPolicy or a PodDisruptionBudget); `matches` answers for the non-empty case and
/// [`LabelSelector::matches_with_empty`] lets the caller say.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct LabelSelector {
    /// Exact key=value pairs.
    pub match_labels: Labels,
    /// Set-based requirements.
    pub match_expressions: Vec<Requirement>,
}

/// Why a selector string or expression could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// The string is not valid selector syntax.
    #[error("invalid label selector {input:?}: {reason}")]
    Syntax {
        /// The whole selector string.
        input: String,
        /// What was wrong.
        reason: String,
    },
    /// An operator name in `matchExpressions` is not one of In/NotIn/Exists/DoesNotExist.
    #[error("unknown label selector operator {0:?}")]
    UnknownOperator(String),
}

impl LabelSelector {
    /// Whether the selector has no terms at all.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` satisfy every term. An empty selector matches everything here.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// A label every object this selector matches carries, if the selector names one: its first
    /// `matchLabels` entry, else the value of its first `In` requirement with a single value.
    /// Indexes use it to find candidates without testing the selector against every object.
    pub fn anchor(&self) -> Option<(&str, &str)> {
        self.match_labels.iter().next().or_else(|| {
            self.match_expressions
                .iter()
                .find_map(|r| match r.values.as_slice() {
                    [only] if r.operator == Operator::In => Some((r.key.as_str(), only.as_str())),
                    _ => None,
                })
        })
    }

    /// Like [`LabelSelector::matches`], but an empty selector matches `empty_selects_all`.
    pub fn matches_with_empty(&self, labels: &Labels, empty_selects_all: bool) -> bool {
        if self.is_empty() {
            empty_selects_all
        } else {
            self.matches(labels)
        }
    }

    /// Adds a `matchExpressions` entry given by operator name, as in Kubernetes objects.
    ///
    /// # Errors
    /// [`SelectorError::UnknownOperator`] when `operator` is not a Kubernetes operator.
    pub fn push_expression(
        &mut self,
        key: impl Into<Str>,
        operator: &str,
        values: impl IntoIterator<Item = impl Into<Str>>,
    ) -> Result<(), SelectorError> {
        let operator = match operator {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(SelectorError::UnknownOperator(other.to_owned())),
        };
        let mut values: Vec<Str> = values.into_iter().map(Into::into).collect();
        values.sort();
        values.dedup();
        self.match_expressions.push(Requirement {
            key: key.into(),
            operator,
            values,
        });
        Ok(())
    }

    /// Parses the Kubernetes string syntax: comma-separated terms `k=v`, `k==v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. The empty string is the empty selector.
    ///
    /// # Errors
    /// [`SelectorError::Syntax`] with the reason when the string is not valid.
    pub fn parse(input: &str) -> Result<LabelSelector, SelectorError> {
        Parser { input, pos: 0 }.selector()
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: impl Into<String>) -> SelectorError {
        SelectorError::Syntax {
            input: self.input.to_owned(),
            reason: reason.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// A key or value: label characters only (alphanumerics, `-`, `_`, `.`, `/`).
    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
            .unwrap_or(self.rest().len());
        let start = self.pos;
        self.pos += len;
        &self.input[start..self.pos]
    }

    fn key(&mut self) -> Result<Str, SelectorError> {
        let word = self.word();
        if word.is_empty() {
            return Err(self.err(format!("expected a label key at offset {}", self.pos)));
        }
        if word.len() > 317 {
            return Err(self.err("label key too long"));
        }
        Ok(Str::from(word))
    }

    fn value(&mut self) -> Result<Str, SelectorError> {
        let word = self.word();
        if word.contains('/') || word.len() > 63 {
            return Err(self.err(format!("invalid label value {word:?}")));
        }
        Ok(Str::from(word))
    }

    fn values(&mut self) -> Result<Vec<Str>, SelectorError> {
        if !self.eat("(") {
            return Err(self.err("expected '(' after in/notin"));
        }
        if self.eat(")") {
            return Err(self.err("empty value set"));
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            if self.eat(")") {
                break;
            }
            if !self.eat(",") {
                return Err(self.err("expected ',' or ')' in value set"));
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }

    fn selector(mut self) -> Result<LabelSelector, SelectorError> {
        let mut selector = LabelSelector::default();
        self.skip_ws();
        if self.rest().is_empty() {
            return Ok(selector);
        }
        loop {
            self.term(&mut selector)?;
            self.skip_ws();
            if self.rest().is_empty() {
                return Ok(selector);
            }
            if !self.eat(",") {
                return Err(self.err(format!("unexpected {:?}", self.rest())));
            }
        }
    }

    fn term(&mut self, selector: &mut LabelSelector) -> Result<(), SelectorError> {
        if self.eat("!") {
            let key = self.key()?;
            selector.match_expressions.push(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            });
            return Ok(());
        }
        let key = self.key()?;
        let (operator, values) = if self.eat("!=") {
            (Operator::NotIn, vec![self.value()?])
        } else if self.eat("==") || self.eat("=") {
            let value = self.value()?;
            // `k=v` is kept as an In requirement so a repeated key with two values stays
            // unsatisfiable, as in Kubernetes, instead of overwriting.
            (Operator::In, vec![value])
        } else {
            let save = self.pos;
            let word = self.word().to_owned();
            match word.as_str() {
                "in" => (Operator::In, self.values()?),
                "notin" => (Operator::NotIn, self.values()?),
                _ => {
                    self.pos = save;
                    (Operator::Exists, Vec::new())
                }
            }
        };
        selector.match_expressions.push(Requirement {
            key,
            operator,
            values,
        });
        Ok(())
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if !std::mem::take(&mut first) {
                f.write_str(",")
            } else {
                Ok(())
            }
        };
        for (k, v) in self.match_labels.iter() {
            sep(f)?;
            write!(f, "{k}={v}")?;
        }
        for r in &self.match_expressions {
            sep(f)?;
            let join = r.values.join(",");
            match r.operator {
                Operator::In if r.values.len() == 1 => write!(f, "{}={}", r.key, join)?,
                Operator::In => write!(f, "{} in ({})", r.key, join)?,
                Operator::NotIn if r.values.len() == 1 => write!(f, "{}!={}", r.key, join)?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, join)?,
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_anchor_is_a_label_every_match_carries() {
        let anchor = |s: &str| {
            LabelSelector::parse(s)
                .unwrap()
                .anchor()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        };
        let pair = |k: &str, v: &str| Some((k.to_owned(), v.to_owned()));
        assert_eq!(anchor("tier!=db,app=web"), pair("app", "web"));
        assert_eq!(anchor("env in (prod),app=web"), pair("env", "prod"));
        for none in [
            "",
            "env in (prod,dev)",
            "tier!=db",
            "team",
            "!canary",
            "x notin (a)",
        ] {
            assert_eq!(anchor(none), None, "{none:?}");
        }
        let mut s = LabelSelector::parse("app=web").unwrap();
        s.match_labels.insert("b", "2");
        s.match_labels.insert("a", "1");
        assert_eq!(
            s.anchor(),
            Some(("a", "1")),
            "matchLabels first, smallest key"
        );
        // Whatever it matches carries the anchor.
        let sel = LabelSelector::parse("tier!=db,app in (web),team").unwrap();
        let (k, v) = sel.anchor().unwrap();
        let ok = labels(&[("app", "web"), ("team", "x")]);
        assert!(sel.matches(&ok) && ok.get(k) == Some(v));
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let s = LabelSelector::parse("app=web, tier != db,env in (prod, staging),!canary,team")
            .unwrap();
        assert_eq!(s.match_expressions.len(), 5);
        let ok = labels(&[("app", "web"), ("env", "prod"), ("team", "x")]);
        assert!(s.matches(&ok));
        assert!(
            !s.matches(&labels(&[("app", "web"), ("env", "prod")])),
            "team must exist"
        );
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("team", "x"),
            ("canary", "1")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("team", "x"),
            ("tier", "db")
        ])));
        let notin = LabelSelector::parse("env notin (prod)").unwrap();
        assert!(notin.matches(&labels(&[])), "notin matches an absent key");
        assert!(
            LabelSelector::parse("a==b")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
    }

    #[test]
    fn empty_selector_semantics_are_the_callers() {
        let empty = LabelSelector::parse("  ").unwrap();
        assert!(empty.is_empty());
        assert!(!empty.matches_with_empty(&labels(&[("a", "b")]), false));
        assert!(empty.matches_with_empty(&labels(&[("a", "b")]), true));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "a in b",
            "a in (b",
            "=b",
            "a=b,",
            "a=b c",
            "a notin ()",
            "a in (b/c)",
            "a=(b)",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn match_expressions_from_objects() {
        let mut s = LabelSelector::default();
        s.match_labels.insert("app", "db");
        s.push_expression("role", "In", ["primary", "replica"])
            .unwrap();
        assert!(s.push_expression("role", "Near", ["x"]).is_err());
        assert!(s.matches(&labels(&[("app", "db"), ("role", "replica")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("role", "arbiter")])));
        assert_eq!(s.to_string(), "app=db,role in (primary,replica)");
    }

    #[test]
    fn display_round_trips() {
        let s = LabelSelector::parse("a=1,b!=2,c in (x,y),!d,e").unwrap();
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }
}
