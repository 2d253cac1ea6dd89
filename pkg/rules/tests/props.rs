//! Properties: evaluation is total on any JSON, a field that does not fit makes no reference,
//! and parsing any text returns (an error or a rule set), never panics.
#![allow(clippy::unwrap_used)]

mod common;

use astrolabe_rules::{Match, RuleSet, Segment};
use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Keys the built-in pack reads, so that arbitrary objects reach its paths.
const KEYS: &[&str] = &[
    "spec",
    "status",
    "metadata",
    "name",
    "namespace",
    "kind",
    "group",
    "apiVersion",
    "annotations",
    "cert-manager.io/issuer",
    "secretName",
    "issuerRef",
    "listeners",
    "tls",
    "certificateRefs",
    "parentRefs",
    "rules",
    "backendRefs",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "namespaceSelector",
    "any",
    "matchNames",
    "project",
    "destination",
    "server",
    "resources",
    "scaleTargetRef",
    "triggers",
    "authenticationRef",
    "secretStoreRef",
    "target",
    "http",
    "route",
    "host",
    "gateways",
    "gatewayClassName",
    "serviceAccountName",
];

/// Strings that mean something to some rule.
const WORDS: &[&str] = &[
    "",
    "a",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "Secret",
    "ClusterIssuer",
    "apps/v1",
    "v1",
    "mesh",
    "ns/name",
    "a.b.svc.cluster.local",
    "*.x",
    "https://kubernetes.default.svc",
    "/",
    ".",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Values that do not fit a field holding text (`names_text`) or an object (`None`: the key
/// removed).
fn odd_values(names_text: bool) -> [Option<Value>; 6] {
    [
        None,
        Some(Value::Null),
        Some(Value::Bool(true)),
        Some(Value::from(7)),
        Some(json!([1, 2])),
        Some(if names_text {
            json!({"name": "x"})
        } else {
            json!("x")
        }),
    ]
}

/// Replaces (or removes) every value `segments` reaches.
fn replace_at(value: &mut Value, segments: &[Segment], with: &Option<Value>) {
    match segments {
        [] => {}
        [Segment::Key(k)] => {
            if let Some(o) = value.as_object_mut() {
                match with {
                    Some(v) => {
                        o.insert(k.clone(), v.clone());
                    }
                    None => {
                        o.remove(k);
                    }
                }
            }
        }
        [Segment::Each] => {
            if let (Some(items), Some(v)) = (value.as_array_mut(), with) {
                items.iter_mut().for_each(|i| *i = v.clone());
            } else if let Some(items) = value.as_array_mut() {
                items.clear();
            }
        }
        [Segment::Key(k), rest @ ..] => {
            if let Some(next) = value.get_mut(k.as_str()) {
                replace_at(next, rest, with);
            }
        }
        [Segment::Each, rest @ ..] => {
            if let Some(items) = value.as_array_mut() {
                items.iter_mut().for_each(|i| replace_at(i, rest, with));
            }
        }
    }
}

/// The built-in pack, parsed once for all cases.
static BUILTIN: LazyLock<RuleSet> = LazyLock::new(RuleSet::builtin);

fn kind_of(object: &Value) -> (&str, &str) {
    let api_version = object["apiVersion"].as_str().unwrap();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (group, object["kind"].as_str().unwrap())
}

/// Every JSON pointer into `value` (the root excluded).
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        _ => {}
    }
}

/// A YAML single-quoted scalar.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Text that looks like a path, often a broken one.
fn path_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "a", "spec", ".", "[*]", "[\"", "\"]", "[", "]", "\"", "x.y", "a/b", " ", "\\", "*",
    ]);
    prop::collection::vec(token, 0..7).prop_map(|t| t.concat())
}

/// Values for each key of a rule: the first fits, the others may not.
fn values_for(key: &'static str) -> BoxedStrategy<String> {
    // Mostly the fitting value, so that most rules get as far as the key being varied.
    let fixed = |v: Vec<&'static str>| {
        let fit = v[0].to_owned();
        prop_oneof![3 => Just(fit), 1 => prop::sample::select(v).prop_map(str::to_owned)].boxed()
    };
    match key {
        "name" => fixed(vec!["r", "r", "Bad", "''", "a-"]),
        "from" => fixed(vec![
            "{group: x.io, kind: T}",
            "{group: '', kind: ''}",
            "{kind: T}",
            "x",
        ]),
        "path" | "default" => path_text().prop_map(|p| quoted(&p)).boxed(),
        "match" => fixed(vec![
            "name",
            "ref",
            "selector",
            "host",
            "other",
            "{name: {}}",
        ]),
        "to" => fixed(vec![
            "{group: '', kind: Secret}",
            "any",
            "[]",
            "[{group: a, kind: B}, {group: a, kind: C, namespace: cluster}]",
            "[{group: a, kind: B}, {group: a, kind: B}]",
            "{group: a, kind: B, namespace: same}",
            "7",
        ]),
        "edge" => fixed(vec!["e", "uses-secret", "owns", "E", "''"]),
        "dependency" => fixed(vec![
            "source-needs-target",
            "target-needs-source",
            "none",
            "up",
        ]),
        "optional" => fixed(vec!["true", "false", "yes", "[]"]),
        "description" => fixed(vec!["'a → b'", "[]", "''"]),
        "defaults" => fixed(vec![
            "{kind: B}",
            "{kind: C, group: a}",
            "{apiVersion: a/v1, group: a}",
            "{kind: Z}",
            "x",
        ]),
        "namespace" => prop_oneof![
            fixed(vec!["same", "cluster", "all"]),
            path_text().prop_map(|p| format!("{{field: {}}}", quoted(&p))),
        ]
        .boxed(),
        "namespaces" => prop_oneof![
            fixed(vec!["same", "all", "cluster", "every"]),
            path_text().prop_map(|p| format!("{{from: {}}}", quoted(&p))),
        ]
        .boxed(),
        "ignore" => fixed(vec!["[mesh]", "[]", "mesh"]),
        _ => prop_oneof![
            path_text().prop_map(|p| format!("[{{path: {}, in: [a]}}]", quoted(&p))),
            Just("[]".to_owned()),
        ]
        .boxed(),
    }
}

const REQUIRED: &[&str] = &["name", "from", "path", "match", "to", "edge", "dependency"];
const OPTIONAL: &[&str] = &[
    "description",
    "optional",
    "defaults",
    "default",
    "namespace",
    "namespaces",
    "ignore",
    "whenAny",
];

/// One rule: every required key, some optional ones, each with a value that may not fit; now
/// and then a required key left out.
fn rule_text() -> impl Strategy<Value = String> {
    let keys = (
        prop::sample::subsequence(OPTIONAL, 0..4),
        prop::option::weighted(0.1, prop::sample::select(REQUIRED)),
    );
    keys.prop_flat_map(|(optional, dropped)| {
        let keys: Vec<&'static str> = REQUIRED
            .iter()
            .copied()
            .filter(|k| Some(*k) != dropped)
            .chain(optional)
            .collect();
        let values: Vec<BoxedStrategy<String>> = keys.iter().map(|k| values_for(k)).collect();
        (Just(keys), values)
    })
    .prop_map(|(keys, values)| {
        let mut text = String::new();
        for (i, (k, v)) in keys.iter().zip(values).enumerate() {
            text.push_str(if i == 0 { "- " } else { "  " });
            text.push_str(&format!("{k}: {v}\n"));
        }
        text
    })
}

/// A rule file of such rules.
fn rule_file() -> impl Strategy<Value = String> {
    prop::collection::vec(rule_text(), 0..4).prop_map(|rules| rules.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn evaluation_never_panics_on_mangled_objects(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), json_value()), 1..4),
    ) {
        let objects = common::one_object_per_builtin_kind();
        let mut object = objects[which.index(objects.len())].clone();
        let (group, kind) = {
            let (g, k) = kind_of(&object);
            (g.to_owned(), k.to_owned())
        };
        for (at, value) in edits {
            let mut all = Vec::new();
            pointers(&object, "", &mut all);
            if all.is_empty() {
                break;
            }
            if let Some(slot) = object.pointer_mut(&all[at.index(all.len())]) {
                *slot = value;
            }
        }
        let rules = &*BUILTIN;
        for r in rules.evaluate(&group, &kind, Some("a"), &object) {
            if let astrolabe_rules::RefTarget::Name { name, .. } = &r.target {
                prop_assert!(!name.is_empty());
            }
        }
    }

    #[test]
    fn parsing_generated_rule_files_never_panics(text in rule_file()) {
        match RuleSet::parse(&text, "gen.yaml") {
            Ok(set) => {
                for rule in set.rules() {
                    let _ = rule.evaluate(Some("a"), &json!({}));
                }
            }
            Err(e) => prop_assert_eq!(e.file.as_str(), "gen.yaml"),
        }
    }

    #[test]
    fn evaluation_never_panics_on_any_json(object in json_value(), ns in prop::option::of("[a-z]{0,3}")) {
        let rules = &*BUILTIN;
        for kind in rules.kinds() {
            let refs = rules.evaluate(&kind.group, &kind.kind, ns.as_deref(), &object);
            for r in refs {
                if let astrolabe_rules::RefTarget::Name { name, .. } = &r.target {
                    prop_assert!(!name.is_empty());
                }
            }
        }
    }

    #[test]
    fn a_field_that_does_not_fit_makes_no_reference(
        pick in any::<prop::sample::Index>(),
        odd in any::<prop::sample::Index>(),
    ) {
        let rules = &*BUILTIN;
        let rule = &rules.rules()[pick.index(rules.rules().len())];
        let object = common::one_object_per_builtin_kind()
            .into_iter()
            .find(|o| kind_of(o) == (rule.from.group.as_str(), rule.from.kind.as_str()))
            .unwrap();
        prop_assert!(!rule.evaluate(Some("a"), &object).is_empty(), "{} makes nothing to begin with", rule.name);
        let names_text = matches!(rule.matcher, Match::Name { .. } | Match::Host { .. });
        let mut paths = vec![(rule.path.segments().to_vec(), names_text)];
        if matches!(rule.matcher, Match::Ref { .. }) {
            let mut name = rule.path.segments().to_vec();
            name.push(Segment::Key("name".into()));
            paths.push((name, true));
        }
        for (path, text) in paths {
            let odds = odd_values(text);
            let odd = &odds[odd.index(odds.len())];
            let mut broken = object.clone();
            replace_at(&mut broken, &path, odd);
            let defaulted = matches!(rule.matcher, Match::Name { default: Some(_), .. })
                && matches!(odd, None | Some(Value::Null));
            let refs = rule.evaluate(Some("a"), &broken);
            prop_assert_eq!(refs.is_empty(), !defaulted, "{} with {:?} at {:?}: {:?}", rule.name, odd, path, refs);
        }
    }

    #[test]
    fn parsing_any_text_never_panics(text in ".{0,400}") {
        let _ = RuleSet::parse(&text, "fuzz.yaml");
    }

    #[test]
    fn parsing_a_mangled_builtin_pack_never_panics(
        cuts in prop::collection::vec((any::<prop::sample::Index>(), 0usize..40, ".{0,8}"), 1..4),
    ) {
        let mut text = include_str!("../src/builtin.yaml").to_owned();
        for (at, len, insert) in cuts {
            let mut start = at.index(text.len());
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, &insert);
        }
        match RuleSet::parse(&text, "mangled.yaml") {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.file.as_str(), "mangled.yaml"),
        }
    }
}
