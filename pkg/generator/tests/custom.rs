#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The custom resources of `generate_with`: their references are the built-in rule pack's
//! evaluation of their JSON, every name they reference exists, and the cluster is the same for a
//! seed.

use std::collections::{HashMap, HashSet};

use astrolabe_generator::{Cluster, Options, custom_kinds, generate, generate_with, object_json};
use astrolabe_model::{Kind, Namespaces, ObjectKey, Resource, Target};
use astrolabe_rules::RuleSet;

const CUSTOM: Options = Options {
    custom_resources: true,
};

fn custom(seed: u64, size: usize) -> Cluster {
    generate_with(seed, size, &CUSTOM)
}

#[test]
fn references_are_the_rule_packs_evaluation() {
    let cluster = custom(5, 5_000);
    let rules = RuleSet::builtin();
    rules.declare_edges().unwrap();
    let mut checked = 0;
    for r in cluster.resources.iter().filter(|r| !r.kind.is_watched()) {
        let spec = cluster
            .specs
            .get(&r.uid)
            .expect("a custom resource has a spec");
        let ns = r.kind.is_namespaced().then_some(r.namespace.as_str());
        let object = object_json(r, spec);
        let mut expected = r.clone();
        expected.references = rules
            .evaluate(r.kind.group(), r.kind.as_str(), ns, &object)
            .iter()
            .map(|rr| rr.to_reference(ns.unwrap_or_default()).unwrap())
            .collect();
        expected.normalize();
        let leaf = ["Issuer", "ClusterIssuer", "GatewayClass"].contains(&r.kind.as_str());
        assert_eq!(
            expected.references.is_empty(),
            leaf,
            "{} references {:?}",
            r.key(),
            expected.references
        );
        assert_eq!(r.references, expected.references, "{}", r.key());
        checked += 1;
    }
    assert_eq!(checked, cluster.specs.len());
}

#[test]
fn every_custom_kind_is_generated_and_referenced_names_exist() {
    let cluster = custom(6, 5_000);
    let kinds: HashSet<Kind> = cluster.resources.iter().map(|r| r.kind.clone()).collect();
    for kind in custom_kinds() {
        assert!(kinds.contains(&kind), "no {} generated", kind.qualified());
    }
    let keys: HashSet<ObjectKey> = cluster.resources.iter().map(Resource::key).collect();
    let namespaces: HashSet<&str> = cluster
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Namespace)
        .map(|r| r.name.as_str())
        .collect();
    let mut selectors = 0;
    for r in cluster.resources.iter().filter(|r| !r.kind.is_watched()) {
        for reference in &r.references {
            match &reference.target {
                Target::Key(key) => {
                    assert!(keys.contains(key), "{} names a missing {key:?}", r.key())
                }
                Target::Selector { .. } => selectors += 1,
                Target::SelectorIn {
                    namespaces: scope, ..
                } if matches!(&**scope, Namespaces::Names(_)) => {
                    selectors += 1;
                    let Namespaces::Names(names) = &**scope else {
                        unreachable!("matched above")
                    };
                    for ns in names {
                        assert!(
                            namespaces.contains(ns.as_str()),
                            "{} selects in missing {ns}",
                            r.key()
                        );
                    }
                }
                Target::SelectorIn { .. } => selectors += 1,
                Target::Uid { .. } => panic!("{} references by UID", r.key()),
            }
        }
    }
    assert!(selectors > 0, "no ServiceMonitor selector");
}

#[test]
fn deterministic_and_an_extension_of_generate() {
    let a = custom(7, 3_000);
    assert_eq!(a, custom(7, 3_000));
    assert_ne!(a, custom(8, 3_000));
    let plain = generate(7, 3_000);
    assert_eq!(a.resources[..plain.len()], plain[..]);
    assert!(a.resources.len() > plain.len());
    assert_eq!(
        generate_with(7, 3_000, &Options::default()).resources,
        plain
    );
    let uids: HashSet<_> = a.resources.iter().map(|r| r.uid.clone()).collect();
    assert_eq!(uids.len(), a.resources.len());
    let keys: HashSet<_> = a.resources.iter().map(Resource::key).collect();
    assert_eq!(keys.len(), a.resources.len());
}

#[test]
fn counts_per_size() {
    for size in [1_000, 5_000, 20_000] {
        let cluster = custom(42, size);
        let mut count: HashMap<String, usize> = HashMap::new();
        for r in cluster.resources.iter().filter(|r| !r.kind.is_watched()) {
            *count.entry(r.kind.as_str().to_owned()).or_default() += 1;
        }
        let total: usize = count.values().sum();
        let mut sorted: Vec<_> = count.into_iter().collect();
        sorted.sort();
        println!(
            "size {size}: {} objects, {total} custom: {sorted:?}",
            cluster.resources.len()
        );
        assert!(
            total * 100 < cluster.resources.len() * 15,
            "custom share too high"
        );
    }
}
