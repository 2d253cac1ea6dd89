//! Refused rule files: each error names the file, the line, the rule and the reason. Also the
//! merge of the built-in pack with a user file.
#![allow(clippy::unwrap_used)]

use astrolabe_rules::{RuleId, RuleSet, RulesError};

/// A valid rule at the top of every file, so the bad one is rule #1 starting at line 9.
const GOOD: &str = "\
- name: good
  from: {group: example.com, kind: Thing}
  path: spec.secretName
  match: name
  to: {group: \"\", kind: Secret}
  edge: uses-secret
  dependency: source-needs-target
  optional: true
";

fn refuse(bad: &str) -> RulesError {
    let text = format!("{GOOD}{bad}");
    match RuleSet::parse(&text, "rules.yaml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the error is at `line` of rule #1 named `name`, with `reason` in its text.
fn assert_at(err: &RulesError, line: u64, name: Option<&str>, reason: &str) {
    assert_eq!(err.file, "rules.yaml", "{err}");
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(
        err.rule,
        Some(RuleId {
            index: 1,
            name: name.map(str::to_owned)
        }),
        "{err}"
    );
    assert!(err.reason.contains(reason), "{err} lacks {reason:?}");
    assert!(
        err.to_string().starts_with(&format!("rules.yaml:{line}:")),
        "{err}"
    );
}

/// A rule with every required key, `extra` appended, `replace` applied.
fn rule(replace: &[(&str, &str)], extra: &str) -> String {
    let mut lines = [
        ("name", "- name: bad"),
        ("from", "  from: {group: example.com, kind: Thing}"),
        ("path", "  path: spec.other"),
        ("match", "  match: name"),
        ("to", "  to: {group: \"\", kind: Secret}"),
        ("edge", "  edge: feeds"),
        ("dependency", "  dependency: source-needs-target"),
    ];
    for (key, text) in replace {
        let slot = lines.iter_mut().find(|(k, _)| k == key).unwrap();
        slot.1 = text;
    }
    let mut text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    text.push_str(extra);
    text
}

#[test]
fn the_template_is_valid() {
    RuleSet::parse(&format!("{GOOD}{}", rule(&[], "")), "rules.yaml").unwrap();
}

#[test]
fn unknown_key() {
    let err = refuse(&rule(&[], "  optinal: true\n"));
    assert_at(&err, 16, Some("bad"), "unknown field `optinal`");
}

#[test]
fn missing_key() {
    let err = refuse(&rule(&[("edge", "  optional: false")], ""));
    assert_eq!(err.rule.as_ref().unwrap().index, 1, "{err}");
    assert!(err.reason.contains("missing field `edge`"), "{err}");
}

#[test]
fn bad_path_syntax() {
    let err = refuse(&rule(&[("path", "  path: spec..name")], ""));
    assert_at(&err, 11, Some("bad"), "empty segment");
    let err = refuse(&rule(&[("path", "  path: spec.items[0]")], ""));
    assert_at(&err, 11, Some("bad"), "a bracket holds");
}

#[test]
fn bad_edge_name() {
    for edge in [
        "Feeds",
        "feeds_secret",
        "-feeds",
        "feeds-",
        "feeds--x",
        "\"\"",
        "9lives",
    ] {
        let err = refuse(&rule(&[("edge", &format!("  edge: {edge}"))], ""));
        assert_at(&err, 14, Some("bad"), "bad edge name");
    }
}

#[test]
fn bad_rule_name() {
    let err = refuse(&rule(&[("name", "- name: Bad Name")], ""));
    assert_at(&err, 9, Some("Bad Name"), "bad rule name");
}

#[test]
fn duplicate_rule_name() {
    let err = refuse(&rule(&[("name", "- name: good")], ""));
    assert_at(&err, 9, Some("good"), "already used by rule #0 (line 1)");
}

#[test]
fn conflicting_dependency() {
    let text = format!(
        "{GOOD}{}{}",
        rule(&[("edge", "  edge: feeds")], ""),
        rule(
            &[
                ("name", "- name: third"),
                ("edge", "  edge: feeds"),
                ("dependency", "  dependency: none"),
            ],
            ""
        )
    );
    let err = RuleSet::parse(&text, "rules.yaml").unwrap_err();
    assert_eq!(err.line, Some(22), "{err}");
    assert_eq!(err.rule.as_ref().unwrap().index, 2, "{err}");
    assert!(
        err.reason.contains(
            "edge \"feeds\" has dependency none here but source-needs-target in rule \"bad\""
        ),
        "{err}"
    );
}

#[test]
fn a_builtin_edge_kind_keeps_its_dependency() {
    let err = refuse(&rule(
        &[
            ("edge", "  edge: uses-secret"),
            ("dependency", "  dependency: target-needs-source"),
        ],
        "",
    ));
    assert_at(
        &err,
        15,
        Some("bad"),
        "built-in edge kind whose dependency is source-needs-target",
    );
}

#[test]
fn unknown_dependency() {
    let err = refuse(&rule(&[("dependency", "  dependency: sideways")], ""));
    assert_at(&err, 15, Some("bad"), "unknown variant `sideways`");
}

#[test]
fn empty_or_bad_to() {
    let err = refuse(&rule(&[("to", "  to: []")], ""));
    assert_at(&err, 13, Some("bad"), "`to` is an empty list");
    let err = refuse(&rule(&[("to", "  to: everything")], ""));
    assert_at(&err, 13, Some("bad"), "any");
    let err = refuse(&rule(&[("to", "  to: {group: \"\", kind: \"\"}")], ""));
    assert_at(&err, 13, Some("bad"), "bad kind");
    let err = refuse(&rule(
        &[("to", "  to: {group: Bad_Group, kind: Secret}")],
        "",
    ));
    assert_at(&err, 13, Some("bad"), "bad group");
    let err = refuse(&rule(
        &[(
            "to",
            "  to: [{group: \"\", kind: Secret}, {group: \"\", kind: Secret}]",
        )],
        "",
    ));
    assert_at(&err, 13, Some("bad"), "lists Secret twice");
}

#[test]
fn several_targets_need_a_ref_match() {
    let err = refuse(&rule(
        &[(
            "to",
            "  to: [{group: \"\", kind: Secret}, {group: \"\", kind: ConfigMap}]",
        )],
        "",
    ));
    assert_at(&err, 13, Some("bad"), "needs `match: ref`");
    let err = refuse(&rule(&[("to", "  to: any")], ""));
    assert_at(&err, 13, Some("bad"), "needs `match: ref`");
}

#[test]
fn options_must_fit_the_match() {
    let err = refuse(&rule(&[], "  defaults: {kind: Secret}\n"));
    assert_at(
        &err,
        16,
        Some("bad"),
        "`defaults` applies to `match: ref` only",
    );
    let err = refuse(&rule(&[], "  namespaces: all\n"));
    assert_at(
        &err,
        16,
        Some("bad"),
        "`namespaces` applies to `match: selector` only",
    );
    let err = refuse(&rule(
        &[("match", "  match: ref")],
        "  default: metadata.name\n",
    ));
    assert_at(
        &err,
        16,
        Some("bad"),
        "`default` applies to `match: name` only",
    );
    let err = refuse(&rule(
        &[("match", "  match: selector")],
        "  namespace: cluster\n",
    ));
    assert_at(&err, 16, Some("bad"), "with `namespaces`, not `namespace`");
    let err = refuse(&rule(&[("match", "  match: pattern")], ""));
    assert_at(&err, 12, Some("bad"), "unknown variant `pattern`");
}

#[test]
fn default_kind_must_be_a_target() {
    let err = refuse(&rule(
        &[("match", "  match: ref")],
        "  defaults: {kind: ConfigMap}\n",
    ));
    assert_at(
        &err,
        16,
        Some("bad"),
        "default kind \"ConfigMap\" is not one of the kinds in `to`",
    );
}

#[test]
fn single_value_paths_refuse_each() {
    let err = refuse(&rule(&[], "  default: spec.names[*]\n"));
    assert_at(&err, 16, Some("bad"), "`[*]` is not allowed here");
    let err = refuse(&rule(&[], "  namespace: {field: spec..ns}\n"));
    assert_at(&err, 16, Some("bad"), "namespace.field: bad path");
}

#[test]
fn yaml_syntax_and_type_errors_have_lines() {
    let err = RuleSet::parse("- name: a\n  from: {group: x, kind: Y\n", "rules.yaml").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    let err = RuleSet::parse("name: not-a-list\n", "rules.yaml").unwrap_err();
    assert_eq!(err.line, Some(1), "{err}");
    let err = refuse(&rule(&[], "  optional: maybe\n"));
    assert_at(&err, 16, Some("bad"), "");
    let err = refuse(&rule(&[], "  name: twice\n"));
    assert_eq!(err.line, Some(16), "{err}");
    assert!(err.reason.contains("duplicate mapping key `name`"), "{err}");
}

#[test]
fn empty_files_are_empty_sets() {
    for text in ["", "# nothing yet\n", "[]\n"] {
        assert!(
            RuleSet::parse(text, "rules.yaml").unwrap().is_empty(),
            "{text:?}"
        );
    }
}

#[test]
fn user_rules_merge_over_the_builtin_pack() {
    let user = RuleSet::parse(
        "\
- name: cert-manager-certificate-secret
  from: {group: cert-manager.io, kind: Certificate}
  path: spec.keystores.secretName
  match: name
  to: {group: \"\", kind: Secret}
  edge: writes
  dependency: source-needs-target
- name: mine
  from: {group: example.com, kind: Thing}
  path: spec.x
  match: name
  to: {group: \"\", kind: Secret}
  edge: uses-secret
  dependency: source-needs-target
",
        "user.yaml",
    )
    .unwrap();
    let builtin = RuleSet::builtin();
    let count = builtin.rules().len();
    let merged = builtin.merge(user).unwrap();
    assert_eq!(merged.rules().len(), count + 1);
    let replaced: Vec<_> = merged
        .rules()
        .iter()
        .filter(|r| &*r.name == "cert-manager-certificate-secret")
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(&*replaced[0].file, "user.yaml");
    assert_eq!(replaced[0].path.to_string(), "spec.keystores.secretName");
    assert!(merged.kinds().iter().any(|k| k.kind == "Thing"));

    let conflicting = RuleSet::parse(
        "\
- name: mine
  from: {group: example.com, kind: Thing}
  path: spec.x
  match: name
  to: {group: \"\", kind: Secret}
  edge: writes
  dependency: target-needs-source
",
        "user.yaml",
    )
    .unwrap();
    let err = RuleSet::builtin().merge(conflicting).unwrap_err();
    assert_eq!(err.file, "user.yaml");
    assert_eq!(err.line, Some(7), "{err}");
    assert_eq!(err.rule.as_ref().unwrap().name.as_deref(), Some("mine"));
    assert!(
        err.reason
            .contains("edge \"writes\" has dependency target-needs-source here"),
        "{err}"
    );
}

/// The rule file `deploy/` ships in its ConfigMap is a valid rule file (and so is its example,
/// uncommented).
#[test]
fn the_deployed_rule_file_and_its_example_are_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/base/relation-rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let rules = config["data"]["rules.yaml"].as_str().unwrap();
    let shipped = astrolabe_rules::RuleSet::parse(rules, "rules.yaml").unwrap();
    assert!(shipped.is_empty());
    let example: String = rules
        .lines()
        .filter(|l| *l != "[]")
        .map(|l| l.replacen("# ", "", 1))
        .filter(|l| !l.starts_with("An example"))
        .collect::<Vec<_>>()
        .join("\n");
    let set = astrolabe_rules::RuleSet::parse(&example, "example.yaml")
        .unwrap_or_else(|e| panic!("{e}\n{example}"));
    assert_eq!(set.rules().len(), 1);
}
