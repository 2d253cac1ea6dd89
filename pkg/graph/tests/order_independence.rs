//! Invariant 1: the graph is a function of the current resource set, whatever the order of
//! upserts and deletes that produced it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use astrolabe_graph::Graph;
use astrolabe_model::{
    Dependency, EdgeKind, Kind, KindInfo, LabelSelector, Namespaces, Reference, Resource, Str,
    Target, Uid,
};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

/// A pool of resources with many cross-references (generated cluster), some of them mutated
/// versions of others (same UID, different labels/references) to exercise updates. Each
/// namespace also gets selectors of every shape the selector index files differently: anchored
/// by `matchLabels`, by a one-value `In`, on a key only variants carry, on another kind, and
/// without an anchor (`Exists`, a two-value `In`, empty selecting everything).
fn pool() -> Vec<Resource> {
    let mut pool = astrolabe_generator::generate(11, 400);
    let namespaces: BTreeSet<Str> = pool
        .iter()
        .map(|r| r.namespace.clone())
        .filter(|ns| !ns.is_empty())
        .collect();
    for ns in namespaces {
        let mut matching = LabelSelector::default();
        matching
            .match_labels
            .insert("app.kubernetes.io/name", "shared");
        let selectors = [
            (Kind::Pod, matching, false),
            (
                Kind::Pod,
                parse("app.kubernetes.io/name in (shared)"),
                false,
            ),
            (Kind::Pod, parse("variant=yes"), false),
            (
                Kind::Deployment,
                parse("app.kubernetes.io/name=shared"),
                false,
            ),
            (Kind::Pod, parse("variant"), false),
            (
                Kind::Pod,
                parse("app.kubernetes.io/name in (shared, other)"),
                false,
            ),
            (Kind::Pod, LabelSelector::default(), true),
        ];
        for (i, (kind, selector, all)) in selectors.into_iter().enumerate() {
            let mut r = Resource::new(
                format!("sel-{ns}-{i}"),
                Kind::NetworkPolicy,
                ns.clone(),
                format!("sel-{i}"),
            );
            r.references.push(Reference::to_selector(
                EdgeKind::AppliesTo,
                kind,
                selector,
                all,
            ));
            pool.push(r);
        }
    }
    pool.extend(custom_kinds(&namespaces_of(&pool)));
    pool
}

fn namespaces_of(pool: &[Resource]) -> Vec<Str> {
    let set: BTreeSet<Str> = pool
        .iter()
        .map(|r| r.namespace.clone())
        .filter(|ns| !ns.is_empty())
        .collect();
    set.into_iter().collect()
}

/// Objects of kinds outside the table, as relationship rules describe them: a kind whose name
/// exists in two groups, references by name to built-in objects, and selectors over other
/// namespaces (every namespace, two named ones; anchored and not) with a declared edge kind.
fn custom_kinds(namespaces: &[Str]) -> Vec<Resource> {
    let monitor = Kind::discovered(&KindInfo {
        kind: "ServiceMonitor".into(),
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        plural: "servicemonitors".into(),
        namespaced: true,
    });
    let certificate = Kind::other("cert-manager.io", "Certificate");
    let gateway_a = Kind::other("gateway.networking.k8s.io", "Gateway");
    let gateway_b = Kind::other("networking.istio.io", "Gateway");
    let monitors = EdgeKind::declare("test-monitors", Dependency::None, "").unwrap();
    let writes = EdgeKind::declare("test-writes", Dependency::TargetNeedsSource, "").unwrap();
    let two: Vec<Str> = namespaces.iter().take(2).cloned().collect();
    let scopes = [
        (parse("app.kubernetes.io/name=shared"), Namespaces::All),
        (parse("variant"), Namespaces::All),
        (
            parse("app.kubernetes.io/name=shared"),
            Namespaces::Names(two.clone()),
        ),
        (LabelSelector::default(), Namespaces::Names(two)),
    ];
    let mut out = Vec::new();
    for (i, (selector, namespaces)) in scopes.into_iter().enumerate() {
        let mut m = Resource::new(
            format!("mon-{i}"),
            monitor.clone(),
            "monitoring",
            format!("m{i}"),
        );
        m.references.push(Reference {
            edge: monitors,
            target: Target::SelectorIn {
                kind: Kind::Pod,
                selector,
                namespaces: Box::new(namespaces),
            },
            reverse: false,
            key: None,
            optional: false,
        });
        out.push(m);
    }
    for ns in namespaces.iter().take(3) {
        for (i, gateway) in [&gateway_a, &gateway_b].into_iter().enumerate() {
            out.push(Resource::new(
                format!("gw-{ns}-{i}"),
                gateway.clone(),
                ns.clone(),
                "edge",
            ));
        }
        let mut c = Resource::new(format!("cert-{ns}"), certificate.clone(), ns.clone(), "tls");
        c.references
            .push(Reference::to_key(writes, Kind::Secret, ns.clone(), "tls"));
        c.references.push(Reference::to_key(
            EdgeKind::RoutesTo,
            gateway_b.clone(),
            ns.clone(),
            "edge",
        ));
        out.push(c);
        out.push(Resource::new(
            format!("secret-tls-{ns}"),
            Kind::Secret,
            ns.clone(),
            "tls",
        ));
    }
    out
}

fn parse(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, bool),
    Delete(usize),
}

fn variant(r: &Resource) -> Resource {
    // A different version of the same object: labels and references change.
    let mut v = r.clone();
    v.resource_version = "variant".into();
    v.labels.insert("variant", "yes");
    // Moves the object from its own selectors to the pool's `shared` ones.
    if v.labels.get("app.kubernetes.io/name").is_some() {
        v.labels.insert("app.kubernetes.io/name", "shared");
    }
    if let Some(first) = v.references.first().cloned() {
        v.references.retain(|x| *x != first);
    }
    v
}

fn ops_strategy(n: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..n, any::<bool>()).prop_map(|(i, v)| Op::Upsert(i, v)),
            1 => (0..n).prop_map(Op::Delete),
        ],
        0..600,
    )
}

fn run(pool: &[Resource], ops: &[Op]) -> (Graph, BTreeMap<Uid, Resource>) {
    let mut g = Graph::new();
    let mut live: BTreeMap<Uid, Resource> = BTreeMap::new();
    for op in ops {
        match *op {
            Op::Upsert(i, v) => {
                let r = if v {
                    variant(&pool[i])
                } else {
                    pool[i].clone()
                };
                live.insert(r.uid.clone(), r.clone());
                g.upsert(r);
            }
            Op::Delete(i) => {
                live.remove(&pool[i].uid);
                g.delete(&pool[i].uid);
            }
        }
    }
    (g, live)
}

/// The properties' configuration. Failures are saved to, and replayed first from,
/// `order_independence.proptest-regressions` next to this file (the source path with its
/// extension replaced).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// The committed regressions file, read by the properties through [`config`].
const REGRESSIONS: &str = include_str!("order_independence.proptest-regressions");

/// The saved failures run: a runner configured as the properties are (the same [`config`] and
/// source file, no new cases) generates one case from each `cc` seed of the committed file.
#[test]
fn saved_failures_are_replayed() {
    let saved = REGRESSIONS
        .lines()
        .filter(|line| line.starts_with("cc "))
        .count();
    assert!(saved >= 1, "the committed regressions file holds seeds");
    let mut config = config();
    config.source_file = Some(file!());
    config.cases = 0;
    let replayed = AtomicUsize::new(0);
    TestRunner::new(config)
        .run(&(ops_strategy(pool().len()), any::<u64>()), |_| {
            replayed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    assert_eq!(replayed.into_inner(), saved, "every saved seed replayed");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_order_reaching_the_same_set_gives_the_same_graph(ops in ops_strategy(pool().len()), seed in any::<u64>()) {
        let pool = pool();
        let (g, live) = run(&pool, &ops);
        // The same final set, inserted fresh in a shuffled order.
        let mut fresh: Vec<Resource> = live.values().cloned().collect();
        let mut rng = seed;
        for i in (1..fresh.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            fresh.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut h = Graph::new();
        for r in fresh {
            h.upsert(r);
        }
        prop_assert_eq!(g.node_set(), h.node_set());
        prop_assert_eq!(g.edge_set(), h.edge_set());
        prop_assert_eq!(g.pending_count(), h.pending_count());
        prop_assert_eq!(g.stats(), h.stats());
    }

    #[test]
    fn deleting_everything_leaves_nothing_behind(ops in ops_strategy(pool().len())) {
        let pool = pool();
        let (mut g, live) = run(&pool, &ops);
        for uid in live.keys() {
            g.delete(uid);
        }
        prop_assert_eq!(g.node_count(), 0);
        prop_assert_eq!(g.edge_count(), 0);
        prop_assert_eq!(g.pending_count(), 0, "pending references leaked");
        prop_assert!(g.stats().nodes_by_kind.is_empty() && g.stats().edges_by_kind.is_empty());
        prop_assert!(g.stats().dangling_by_edge.is_empty(), "a selector declarer left behind");
    }
}
