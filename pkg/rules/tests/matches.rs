//! Each match type, namespace policy and option on small rules: what a fitting field makes, and
//! that a missing, null, empty or odd-typed one makes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use astrolabe_model::Dependency;
use astrolabe_rules::NamespaceScope;
use common::{named, one_rule, sel, selected, thing};
use serde_json::json;

const SECRET: &str = "  to: {group: \"\", kind: Secret}\n";

#[test]
fn name_match_reads_every_element_in_the_source_namespace() {
    let rules = one_rule(&format!("  path: spec.secrets[*]\n  match: name\n{SECRET}"));
    let refs = thing(
        &rules,
        &json!({"spec": {"secrets": ["b", "a", "b", "", null, 3]}}),
    );
    assert_eq!(
        refs,
        [
            named("", "Secret", Some("ns"), "a"),
            named("", "Secret", Some("ns"), "b"),
        ]
    );
    for odd in [
        json!({}),
        json!({"spec": null}),
        json!({"spec": {"secrets": "a"}}),
        json!([1]),
    ] {
        assert!(thing(&rules, &odd).is_empty(), "{odd}");
    }
}

#[test]
fn name_match_default_applies_only_when_the_field_is_absent() {
    let rules = one_rule(&format!(
        "  path: spec.target.name\n  match: name\n  default: metadata.name\n{SECRET}"
    ));
    let own = named("", "Secret", Some("ns"), "self");
    let meta = json!({"name": "self"});
    assert_eq!(
        thing(&rules, &json!({"metadata": meta})),
        std::slice::from_ref(&own)
    );
    assert_eq!(
        thing(
            &rules,
            &json!({"metadata": meta, "spec": {"target": {"name": ""}}})
        ),
        std::slice::from_ref(&own)
    );
    assert_eq!(
        thing(
            &rules,
            &json!({"metadata": meta, "spec": {"target": {"name": "other"}}})
        ),
        [named("", "Secret", Some("ns"), "other")]
    );
    // An odd-typed field is not an absent one: no reference, not the default.
    assert!(
        thing(
            &rules,
            &json!({"metadata": meta, "spec": {"target": {"name": 7}}})
        )
        .is_empty()
    );
    assert!(thing(&rules, &json!({"metadata": {"name": 7}})).is_empty());
}

#[test]
fn name_match_ignores_listed_values() {
    let rules = one_rule(&format!(
        "  path: spec.names[*]\n  match: name\n  ignore: [mesh]\n{SECRET}"
    ));
    assert_eq!(
        thing(&rules, &json!({"spec": {"names": ["mesh", "x"]}})),
        [named("", "Secret", Some("ns"), "x")]
    );
}

#[test]
fn quoted_annotation_keys_are_read() {
    let rules = one_rule(&format!(
        "  path: metadata.annotations[\"example.com/secret\"]\n  match: name\n{SECRET}"
    ));
    let obj = json!({"metadata": {"annotations": {"example.com/secret": "s", "example": {"com/secret": "no"}}}});
    assert_eq!(thing(&rules, &obj), [named("", "Secret", Some("ns"), "s")]);
}

#[test]
fn namespace_cluster_and_field_policies() {
    let cluster = one_rule(
        "  path: spec.class\n  match: name\n  namespace: cluster\n  to: {group: example.com, kind: Class}\n",
    );
    assert_eq!(
        thing(&cluster, &json!({"spec": {"class": "c"}})),
        [named("example.com", "Class", None, "c")]
    );
    let field = one_rule(&format!(
        "  path: spec.secret\n  match: name\n  namespace: {{field: spec.secretNamespace}}\n{SECRET}"
    ));
    assert_eq!(
        thing(
            &field,
            &json!({"spec": {"secret": "s", "secretNamespace": "other"}})
        ),
        [named("", "Secret", Some("other"), "s")]
    );
    // Absent or empty: the source's namespace; odd-typed: no reference.
    assert_eq!(
        thing(&field, &json!({"spec": {"secret": "s"}})),
        [named("", "Secret", Some("ns"), "s")]
    );
    assert_eq!(
        thing(
            &field,
            &json!({"spec": {"secret": "s", "secretNamespace": ""}})
        ),
        [named("", "Secret", Some("ns"), "s")]
    );
    assert!(
        thing(
            &field,
            &json!({"spec": {"secret": "s", "secretNamespace": ["x"]}})
        )
        .is_empty()
    );
}

#[test]
fn a_cluster_scoped_source_with_same_namespace_gives_none() {
    let rules = one_rule(&format!("  path: spec.secret\n  match: name\n{SECRET}"));
    let refs = rules.evaluate(
        "example.com",
        "Thing",
        None,
        &json!({"spec": {"secret": "s"}}),
    );
    assert_eq!(common::targets(&refs), [named("", "Secret", None, "s")]);
}

const ISSUERS: &str = "  to:\n    - {group: example.com, kind: Issuer}\n    - {group: example.com, kind: ClusterIssuer, namespace: cluster}\n";

#[test]
fn ref_match_uses_the_objects_kind_to_choose_a_target() {
    let rules = one_rule(&format!(
        "  path: spec.issuerRef\n  match: ref\n  defaults: {{kind: Issuer, group: example.com}}\n{ISSUERS}"
    ));
    let r = |v: serde_json::Value| thing(&rules, &json!({"spec": {"issuerRef": v}}));
    assert_eq!(
        r(json!({"name": "i"})),
        [named("example.com", "Issuer", Some("ns"), "i")]
    );
    assert_eq!(
        r(json!({"name": "c", "kind": "ClusterIssuer"})),
        [named("example.com", "ClusterIssuer", None, "c")]
    );
    // A namespace in the reference wins over the rule's, except for a cluster-scoped target.
    assert_eq!(
        r(json!({"name": "i", "namespace": "x"})),
        [named("example.com", "Issuer", Some("x"), "i")]
    );
    assert_eq!(
        r(json!({"name": "c", "namespace": "x", "kind": "ClusterIssuer"})),
        [named("example.com", "ClusterIssuer", None, "c")]
    );
    // A kind or group outside `to` makes none, as do odd types and an empty name.
    for none in [
        json!({"name": "i", "kind": "AWSPCAIssuer"}),
        json!({"name": "i", "group": "awspca.example.com"}),
        json!({"name": ""}),
        json!({"kind": "Issuer"}),
        json!({"name": 3}),
        json!({"name": "i", "kind": 3}),
        json!({"name": "i", "namespace": false}),
        json!("i"),
        json!(null),
    ] {
        assert!(r(none.clone()).is_empty(), "{none}");
    }
}

#[test]
fn ref_match_group_comes_from_group_then_api_version_then_defaults() {
    let rules = one_rule(
        "  path: spec.targetRef\n  match: ref\n  defaults: {kind: Deployment, apiVersion: apps/v1}\n  to: any\n",
    );
    let r = |v: serde_json::Value| thing(&rules, &json!({"spec": {"targetRef": v}}));
    assert_eq!(
        r(json!({"name": "w"})),
        [named("apps", "Deployment", Some("ns"), "w")]
    );
    assert_eq!(
        r(json!({"name": "w", "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"})),
        [named("argoproj.io", "Rollout", Some("ns"), "w")]
    );
    assert_eq!(
        r(json!({"name": "w", "apiVersion": "v1", "kind": "ReplicationController"})),
        [named("", "ReplicationController", Some("ns"), "w")]
    );
    assert_eq!(
        r(json!({"name": "w", "group": "example.com", "apiVersion": "apps/v1", "kind": "X"})),
        [named("example.com", "X", Some("ns"), "w")]
    );
}

#[test]
fn ref_match_to_any_without_a_kind_makes_none() {
    let rules =
        one_rule("  path: status.resources[*]\n  match: ref\n  namespace: cluster\n  to: any\n");
    let obj = json!({"status": {"resources": [
        {"kind": "ConfigMap", "namespace": "a", "name": "cm"},
        {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cr"},
        {"name": "kindless"}
    ]}});
    assert_eq!(
        thing(&rules, &obj),
        [
            named("", "ConfigMap", Some("a"), "cm"),
            named("rbac.authorization.k8s.io", "ClusterRole", None, "cr"),
        ]
    );
}

#[test]
fn host_match_reads_dns_names_and_namespace_slash_name() {
    let rules = one_rule(
        "  path: spec.hosts[*]\n  match: host\n  ignore: [mesh]\n  to: {group: \"\", kind: Service}\n",
    );
    let hosts = json!({"spec": {"hosts": [
        "a", "b.other", "c.third.svc.cluster.local", "d.fourth.svc", "e.fifth.svc.corp.example",
        "sixth/f", "mesh", "*.example.com", "www.example.com", "", "x..y", "/g", "h/", 4
    ]}});
    let mut expected = vec![
        named("", "Service", Some("ns"), "a"),
        named("", "Service", Some("other"), "b"),
        named("", "Service", Some("third"), "c"),
        named("", "Service", Some("fourth"), "d"),
        named("", "Service", Some("fifth"), "e"),
        named("", "Service", Some("sixth"), "f"),
    ];
    expected.sort();
    assert_eq!(thing(&rules, &hosts), expected);
}

#[test]
fn selector_match_builds_the_selector_and_resolves_namespaces() {
    let rules = one_rule(
        "  path: spec.selector\n  match: selector\n  namespaces: {from: spec.namespaceSelector}\n  to: {group: \"\", kind: Service}\n",
    );
    let object_selector = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"}
    ]});
    let s = sel(
        &[("app", "web")],
        &[
            ("tier", "In", &["a", "b"]),
            ("canary", "DoesNotExist", &[] as &[&str]),
        ],
    );
    let with = |ns: serde_json::Value| {
        thing(
            &rules,
            &json!({"spec": {"selector": object_selector, "namespaceSelector": ns}}),
        )
    };
    let same = NamespaceScope::Namespace("ns".into());
    assert_eq!(
        with(json!(null)),
        [selected("", "Service", s.clone(), same.clone())]
    );
    assert_eq!(
        with(json!({})),
        [selected("", "Service", s.clone(), same.clone())]
    );
    assert_eq!(
        with(json!({"matchNames": []})),
        [selected("", "Service", s.clone(), same)]
    );
    assert_eq!(
        with(json!({"any": true, "matchNames": ["x"]})),
        [selected("", "Service", s.clone(), NamespaceScope::All)]
    );
    assert_eq!(
        with(json!({"matchNames": ["b", "a"]})),
        [selected(
            "",
            "Service",
            s.clone(),
            NamespaceScope::Names(vec!["a".into(), "b".into()])
        )]
    );
    for odd in [
        json!({"any": "yes"}),
        json!({"matchNames": "a"}),
        json!({"matchNames": [1]}),
        json!("x"),
    ] {
        assert!(with(odd.clone()).is_empty(), "{odd}");
    }
}

#[test]
fn selector_match_empty_selector_is_kept_and_bad_ones_dropped() {
    let rules =
        one_rule("  path: spec.selector\n  match: selector\n  to: {group: \"\", kind: Pod}\n");
    let same = NamespaceScope::Namespace("ns".into());
    assert_eq!(
        thing(&rules, &json!({"spec": {"selector": {}}})),
        [selected("", "Pod", sel(&[], &[]), same)]
    );
    for bad in [
        json!(null),
        json!("app=web"),
        json!({"matchLabels": {"app": 1}}),
        json!({"matchLabels": ["app"]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        json!({"matchExpressions": [{"operator": "Exists"}]}),
        json!({"matchExpressions": {"key": "a"}}),
    ] {
        assert!(
            thing(&rules, &json!({"spec": {"selector": bad}})).is_empty(),
            "{bad}"
        );
    }
}

#[test]
fn selector_namespaces_all_cluster_and_label_selector() {
    let all = one_rule(
        "  path: s\n  match: selector\n  namespaces: all\n  to: {group: \"\", kind: Pod}\n",
    );
    assert_eq!(
        thing(&all, &json!({"s": {}})),
        [selected("", "Pod", sel(&[], &[]), NamespaceScope::All)]
    );
    let cluster = one_rule(
        "  path: s\n  match: selector\n  namespaces: cluster\n  to: {group: \"\", kind: Node}\n",
    );
    assert_eq!(
        thing(&cluster, &json!({"s": {"matchLabels": {"a": "b"}}})),
        [selected(
            "",
            "Node",
            sel(&[("a", "b")], &[]),
            NamespaceScope::Cluster
        )]
    );
    // Namespaces chosen by their labels are not part of the format.
    let err = astrolabe_rules::RuleSet::parse(
        "- name: r\n  from: {group: g.io, kind: K}\n  path: s\n  match: selector\n  namespaces: {selector: ns}\n  to: {group: \"\", kind: Pod}\n  edge: e\n  dependency: none\n",
        "rules.yaml",
    );
    assert!(err.is_err());
}

#[test]
fn when_any_gates_the_rule() {
    let rules = one_rule(&format!(
        "  path: spec.secret\n  match: name\n  whenAny:\n    - {{path: spec.where, in: [here]}}\n    - {{path: spec.alt, in: [also]}}\n{SECRET}"
    ));
    let s = [named("", "Secret", Some("ns"), "s")];
    assert_eq!(
        thing(&rules, &json!({"spec": {"secret": "s", "where": "here"}})),
        s
    );
    assert_eq!(
        thing(&rules, &json!({"spec": {"secret": "s", "alt": "also"}})),
        s
    );
    assert!(thing(&rules, &json!({"spec": {"secret": "s", "where": "there"}})).is_empty());
    assert!(thing(&rules, &json!({"spec": {"secret": "s"}})).is_empty());
}

#[test]
fn references_carry_the_rule_edge_dependency_and_optional() {
    let rules = astrolabe_rules::RuleSet::parse(
        "- name: r\n  description: Thing → the Secret it feeds.\n  from: {group: example.com, kind: Thing}\n  path: spec.s\n  match: name\n  to: {group: \"\", kind: Secret}\n  edge: feeds\n  dependency: target-needs-source\n  optional: true\n",
        "t.yaml",
    )
    .unwrap();
    let refs = rules.evaluate(
        "example.com",
        "Thing",
        Some("ns"),
        &json!({"spec": {"s": "x"}}),
    );
    assert_eq!(refs.len(), 1);
    assert_eq!(&*refs[0].rule, "r");
    assert_eq!(
        &*rules.rules()[0].description,
        "Thing → the Secret it feeds."
    );
    assert_eq!(&*refs[0].edge, "feeds");
    assert_eq!(refs[0].dependency, Dependency::TargetNeedsSource);
    assert!(refs[0].optional);
    // Another kind, or the same kind name in another group, has no rules.
    assert!(
        rules
            .evaluate(
                "other.com",
                "Thing",
                Some("ns"),
                &json!({"spec": {"s": "x"}})
            )
            .is_empty()
    );
}
