//! Findings as text (one line each, `file:line: severity: object: message [check]`), JSON (an
//! object with the findings and a summary) or SARIF 2.1.0 (for code-scanning tools).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::findings::{CHECKS, Finding, Severity};

/// An output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One line per finding, and a summary.
    #[default]
    Text,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            other => Err(format!("{other:?}: expected text, json or sarif")),
        }
    }
}

/// How many findings of each severity.
fn counts(findings: &[Finding]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::from([("error", 0), ("warning", 0), ("info", 0)]);
    for f in findings {
        *out.entry(f.severity.as_str()).or_default() += 1;
    }
    out
}

/// `findings` of `objects` checked objects in `format`.
#[must_use]
pub fn render(findings: &[Finding], objects: usize, format: Format) -> String {
    match format {
        Format::Text => text(findings, objects),
        Format::Json => {
            let c = counts(findings);
            let doc = json!({
                "findings": findings,
                "summary": {"objects": objects, "errors": c["error"], "warnings": c["warning"], "infos": c["info"]},
            });
            format!("{doc:#}\n")
        }
        Format::Sarif => format!("{:#}\n", sarif(findings)),
    }
}

fn text(findings: &[Finding], objects: usize) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{}:{}: {}: {}: {} [{}]\n",
            f.file,
            f.line,
            f.severity.as_str(),
            f.object,
            f.message,
            f.check
        ));
    }
    let c = counts(findings);
    let n =
        |count: usize, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    if findings.is_empty() {
        out.push_str(&format!("{} checked: no findings\n", n(objects, "object")));
    } else {
        out.push_str(&format!(
            "{} checked: {}, {}, {}\n",
            n(objects, "object"),
            n(c["error"], "error"),
            n(c["warning"], "warning"),
            n(c["info"], "info")
        ));
    }
    out
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = CHECKS
        .iter()
        .map(|(id, severity, description)| {
            json!({
                "id": id,
                "shortDescription": {"text": description},
                "defaultConfiguration": {"level": level(*severity)},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut properties = json!({"object": f.object});
            if !f.field.is_empty() {
                properties["field"] = json!(f.field);
            }
            if let Some(edge) = &f.edge {
                properties["edge"] = json!(edge);
            }
            if let Some(target) = &f.target {
                properties["target"] = json!(target);
            }
            json!({
                "ruleId": f.check,
                "ruleIndex": CHECKS.iter().position(|(id, ..)| *id == f.check).unwrap_or(0),
                "level": level(f.severity),
                "message": {"text": format!("{}: {}", f.object, f.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.file},
                        "region": {"startLine": f.line},
                    },
                    "logicalLocations": [{"fullyQualifiedName": f.object, "kind": "resource"}],
                }],
                "properties": properties,
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "astrolabe check",
                "informationUri": "https://example.invalid/astrolabe",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
