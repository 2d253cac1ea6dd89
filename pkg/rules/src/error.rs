//! `RulesError`: why a rule file was refused, with its file, line, rule and reason.

use std::fmt;

/// The rule a [`RulesError`] is about.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RuleId {
    /// Position of the rule in its file, from 0.
    pub index: usize,
    /// The rule's `name`, when it could be read.
    pub name: Option<String>,
}

/// A rule file that cannot be used. Displayed as
/// `rules.yaml:12:5: rule #3 (certificate-secret): reason`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct RulesError {
    /// The file (or other source name) the rules came from.
    pub file: String,
    /// The 1-based line of the offending text, when known.
    pub line: Option<u64>,
    /// The 1-based column of the offending text, when known.
    pub column: Option<u64>,
    /// The rule at fault, when the error is inside one.
    pub rule: Option<RuleId>,
    /// What is wrong, in lowercase words.
    pub reason: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(rule) = &self.rule {
            write!(f, "rule #{}", rule.index)?;
            if let Some(name) = &rule.name {
                write!(f, " ({name})")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_rule_and_reason() {
        let err = RulesError {
            file: "rules.yaml".into(),
            line: Some(12),
            column: Some(5),
            rule: Some(RuleId {
                index: 3,
                name: Some("certificate-secret".into()),
            }),
            reason: "bad edge name".into(),
        };
        assert_eq!(
            err.to_string(),
            "rules.yaml:12:5: rule #3 (certificate-secret): bad edge name"
        );
        let bare = RulesError {
            line: None,
            column: None,
            rule: None,
            ..err
        };
        assert_eq!(bare.to_string(), "rules.yaml: bad edge name");
    }
}
