//! Queries: resource, list + pagination, neighbours, path, impact, dangling, compat views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_graph::Graph;
use astrolabe_graph::query::{self, Direction, ListFilter, NeighborQuery};
use astrolabe_model::{EdgeKind as E, Kind, ObjectKey, OwnerRef, Reference, Target, Uid};
use common::*;

/// Deployment web (release shop) -> RS -> 2 Pods; Service selects them; Ingress routes to the
/// Service; Pods use ConfigMap cfg and a missing Secret; PVC bound to a PV.
fn shop() -> Graph {
    let mut g = Graph::new();
    let helm = |mut r: astrolabe_model::Resource| {
        r.annotations.insert("meta.helm.sh/release-name", "shop");
        r.labels.insert("helm.sh/chart", "web-1.0");
        r
    };
    g.upsert(res("ns", Kind::Namespace, "", "shop"));
    g.upsert(helm(res("dep", Kind::Deployment, "shop", "web")));
    g.upsert(refs(
        res("rs", Kind::ReplicaSet, "shop", "web-1"),
        vec![Reference::owned_by("dep", Kind::Deployment, "web")],
    ));
    for p in ["p1", "p2"] {
        g.upsert(refs(
            labelled(res(p, Kind::Pod, "shop", p), &[("app", "web")]),
            vec![
                Reference::owned_by("rs", Kind::ReplicaSet, "web-1"),
                key(E::UsesConfigmap, Kind::ConfigMap, "shop", "cfg"),
                key(E::UsesSecret, Kind::Secret, "shop", "missing"),
                key(E::Mounts, Kind::PersistentVolumeClaim, "shop", "data"),
            ],
        ));
    }
    g.upsert(helm(res("cfg", Kind::ConfigMap, "shop", "cfg")));
    g.upsert(helm(refs(
        res("svc", Kind::Service, "shop", "web"),
        vec![Reference::to_selector(
            E::Selects,
            Kind::Pod,
            sel("app=web"),
            false,
        )],
    )));
    g.upsert(helm(refs(
        res("ing", Kind::Ingress, "shop", "web"),
        vec![key(E::RoutesTo, Kind::Service, "shop", "web")],
    )));
    g.upsert(refs(
        res("pvc", Kind::PersistentVolumeClaim, "shop", "data"),
        vec![key(E::Binds, Kind::PersistentVolume, "", "pv1")],
    ));
    g.upsert(res("pv", Kind::PersistentVolume, "", "pv1"));
    g.upsert(refs(
        res("lonely", Kind::Service, "shop", "lonely"),
        vec![Reference::to_selector(
            E::Selects,
            Kind::Pod,
            sel("app=none"),
            false,
        )],
    ));
    g.upsert(res("other", Kind::ConfigMap, "other", "x"));
    g
}

fn uids(nodes: &[std::sync::Arc<astrolabe_model::Resource>]) -> Vec<&str> {
    nodes.iter().map(|r| r.uid.as_str()).collect()
}

#[test]
fn resource_with_edges() {
    let g = shop();
    let v = query::resource(&g, &Uid::from("svc")).unwrap();
    assert_eq!(v.outgoing.len(), 2);
    assert_eq!(v.incoming.len(), 1);
    assert!(query::resource(&g, &Uid::from("nope")).is_none());
}

#[test]
fn listing_filters_and_paginates_in_key_order() {
    let g = shop();
    let all = query::list(
        &g,
        &ListFilter {
            limit: 100,
            ..Default::default()
        },
    );
    assert_eq!(all.items.len(), g.node_count());
    assert!(all.items.windows(2).all(|w| w[0].key() < w[1].key()));
    let mut collected = Vec::new();
    let mut after = None;
    loop {
        let page = query::list(
            &g,
            &ListFilter {
                limit: 3,
                after: after.clone(),
                namespace: Some("shop".into()),
                ..Default::default()
            },
        );
        collected.extend(page.items.iter().map(|r| r.uid.clone()));
        match page.next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    assert_eq!(
        collected.len(),
        9,
        "every object in shop exactly once: {collected:?}"
    );
    let pods = query::list(
        &g,
        &ListFilter {
            kind: Some(Kind::Pod),
            selector: Some(sel("app=web")),
            ..Default::default()
        },
    );
    assert_eq!(uids(&pods.items), vec!["p1", "p2"]);
    let rel = query::list(
        &g,
        &ListFilter {
            release: Some("shop".into()),
            ..Default::default()
        },
    );
    assert_eq!(rel.items.len(), 4);
    let by_name = query::list(
        &g,
        &ListFilter {
            name: Some("web".into()),
            kind: Some(Kind::Service),
            ..Default::default()
        },
    );
    assert_eq!(uids(&by_name.items), vec!["svc"]);
    let page = query::list(
        &g,
        &ListFilter {
            kind: Some(Kind::Pod),
            limit: 1,
            ..Default::default()
        },
    );
    assert_eq!(page.next, Some(ObjectKey::new(Kind::Pod, "shop", "p1")));
}

#[test]
fn neighbours_respect_depth_direction_kinds_and_limit() {
    let g = shop();
    let q = |depth, direction, kinds: Option<Vec<E>>, limit| NeighborQuery {
        depth,
        direction,
        edge_kinds: kinds,
        limit,
    };
    let one = query::neighbors(&g, &Uid::from("rs"), &q(1, Direction::Both, None, 100)).unwrap();
    assert_eq!(uids(&one.nodes), vec!["rs", "p1", "p2", "dep"]);
    let out2 = query::neighbors(&g, &Uid::from("dep"), &q(2, Direction::Out, None, 100)).unwrap();
    assert_eq!(uids(&out2.nodes), vec!["dep", "rs", "p1", "p2"]);
    let only = query::neighbors(
        &g,
        &Uid::from("p1"),
        &q(3, Direction::Out, Some(vec![E::Mounts, E::Binds]), 100),
    )
    .unwrap();
    assert_eq!(uids(&only.nodes), vec!["p1", "pvc", "pv"]);
    let capped = query::neighbors(&g, &Uid::from("rs"), &q(5, Direction::Both, None, 2)).unwrap();
    assert!(capped.truncated && capped.nodes.len() == 2);
    assert!(query::neighbors(&g, &Uid::from("nope"), &q(1, Direction::Both, None, 10)).is_none());
}

#[test]
fn neighbours_return_every_edge_among_the_returned_nodes() {
    // a -> b and a -> c are walked at depth 1; c -> b joins two returned nodes without being
    // walked.
    let mut g = Graph::new();
    g.upsert(refs(
        res("a", Kind::Deployment, "ns", "a"),
        vec![
            key(E::UsesConfigmap, Kind::ConfigMap, "ns", "b"),
            key(E::UsesSecret, Kind::Secret, "ns", "c"),
        ],
    ));
    g.upsert(res("b", Kind::ConfigMap, "ns", "b"));
    g.upsert(refs(
        res("c", Kind::Secret, "ns", "c"),
        vec![key(E::Mounts, Kind::ConfigMap, "ns", "b")],
    ));
    let q = |kinds: Option<Vec<E>>, limit| NeighborQuery {
        depth: 1,
        direction: Direction::Out,
        edge_kinds: kinds,
        limit,
    };
    let edges = |s: &astrolabe_graph::query::Subgraph| -> Vec<(E, String, String)> {
        s.edges
            .iter()
            .map(|e| (e.kind, e.from.to_string(), e.to.to_string()))
            .collect()
    };
    let e = |k, a: &str, b: &str| (k, a.to_string(), b.to_string());
    let all = query::neighbors(&g, &Uid::from("a"), &q(None, 10)).unwrap();
    assert_eq!(uids(&all.nodes), vec!["a", "b", "c"]);
    assert_eq!(
        edges(&all),
        vec![
            e(E::Mounts, "c", "b"),
            e(E::UsesConfigmap, "a", "b"),
            e(E::UsesSecret, "a", "c"),
        ]
    );
    // With edge kinds given, only edges of those kinds.
    let kinds = Some(vec![E::UsesConfigmap, E::UsesSecret]);
    let filtered = query::neighbors(&g, &Uid::from("a"), &q(kinds, 10)).unwrap();
    assert_eq!(uids(&filtered.nodes), vec!["a", "b", "c"]);
    assert_eq!(
        edges(&filtered),
        vec![e(E::UsesConfigmap, "a", "b"), e(E::UsesSecret, "a", "c")]
    );
    // A node the cap cuts takes its edges with it.
    let capped = query::neighbors(&g, &Uid::from("a"), &q(None, 2)).unwrap();
    assert!(capped.truncated);
    assert_eq!(uids(&capped.nodes), vec!["a", "b"]);
    assert_eq!(edges(&capped), vec![e(E::UsesConfigmap, "a", "b")]);
}

#[test]
fn path_and_impact() {
    let g = shop();
    let p = query::path(&g, &Uid::from("ing"), &Uid::from("pv"), 10, Direction::Both).unwrap();
    assert_eq!(uids(&p.nodes), vec!["ing", "svc", "p1", "pvc", "pv"]);
    assert_eq!(p.edges.len(), 4);
    assert!(
        query::path(
            &g,
            &Uid::from("ing"),
            &Uid::from("other"),
            10,
            Direction::Both
        )
        .unwrap()
        .nodes
        .is_empty()
    );
    // The Ingress routes to the Service, which selects the Pods: a path from a Pod to the
    // Ingress runs against every edge.
    let path = |from: &str, to: &str, direction| {
        let p = query::path(&g, &Uid::from(from), &Uid::from(to), 10, direction).unwrap();
        uids(&p.nodes)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(path("p1", "ing", Direction::Out).is_empty());
    assert_eq!(path("p1", "ing", Direction::In), ["p1", "svc", "ing"]);
    assert_eq!(path("p1", "ing", Direction::Both), ["p1", "svc", "ing"]);
    assert_eq!(
        path("ing", "pv", Direction::Out),
        ["ing", "svc", "p1", "pvc", "pv"]
    );
    assert!(path("ing", "pv", Direction::In).is_empty());
    // Losing the PV breaks the PVC, the Pods mounting it, the Service selecting them, the Ingress.
    let i = query::impact(&g, &Uid::from("pv"), 100).unwrap();
    let mut hit = uids(&i.nodes);
    hit.sort();
    assert_eq!(hit, vec!["ing", "p1", "p2", "pv", "pvc", "svc"]);
    // Deleting the Deployment takes its ReplicaSet and Pods (and what needs those).
    let d = query::impact(&g, &Uid::from("dep"), 100).unwrap();
    assert!(uids(&d.nodes).contains(&"p2"));
    assert!(!uids(&d.nodes).contains(&"cfg"));
}

#[test]
fn dangling_reports_missing_targets_and_empty_services() {
    let g = shop();
    let d = query::dangling(&g, None, None);
    let described: Vec<(String, &str, String)> = d
        .iter()
        .map(|x| (x.source.name.to_string(), x.edge.as_str(), x.target_text()))
        .collect();
    assert!(described.contains(&("p1".into(), "uses-secret", "Secret/shop/missing".into())));
    assert!(described.contains(&("lonely".into(), "selects", "Pod matching app=none".into())));
    assert_eq!(d.len(), 3);
    assert_eq!(query::dangling(&g, Some("shop"), Some(E::Selects)).len(), 1);
    assert!(query::dangling(&g, Some("other"), None).is_empty());
    let stats = g.stats();
    assert_eq!(
        stats.dangling_by_edge,
        vec![(E::Selects, 1), (E::UsesSecret, 2)]
    );
}

/// A reference by UID to a missing ConfigMap, optional or not.
fn by_uid(uid: &str, name: &str, optional: bool) -> Reference {
    Reference {
        edge: E::UsesConfigmap,
        target: Target::Uid {
            uid: uid.into(),
            kind: Kind::ConfigMap,
            name: name.into(),
        },
        reverse: false,
        key: None,
        optional,
    }
}

#[test]
fn dangling_targets_by_uid_match_by_equality_not_by_prefix() {
    let mut g = Graph::new();
    // UID `a` is a prefix of UID `ab`: neither reference may take the other's `optional`.
    g.upsert(refs(
        res("s1", Kind::Pod, "ns", "s1"),
        vec![by_uid("a", "short", true), by_uid("ab", "long", false)],
    ));
    g.upsert(refs(
        res("s2", Kind::Pod, "ns", "s2"),
        vec![by_uid("a", "short", false), by_uid("ab", "long", true)],
    ));
    let mut found: Vec<(String, String, bool)> = query::dangling(&g, None, None)
        .iter()
        .map(|d| (d.source.uid.to_string(), d.target_text(), d.optional))
        .collect();
    found.sort();
    let expected = [
        ("s1", "uid:a (ConfigMap/short)", true),
        ("s1", "uid:ab (ConfigMap/long)", false),
        ("s2", "uid:a (ConfigMap/short)", false),
        ("s2", "uid:ab (ConfigMap/long)", true),
    ]
    .map(|(s, t, o)| (s.to_string(), t.to_string(), o));
    assert_eq!(found, expected);
}

#[test]
fn a_dangling_owner_shows_its_kind_and_name() {
    let mut g = Graph::new();
    let mut orphan = res("pod", Kind::Pod, "ns", "web-1-x");
    orphan.owners.push(OwnerRef {
        kind: Kind::ReplicaSet,
        name: "web-1".into(),
        uid: "gone".into(),
        controller: true,
    });
    g.upsert(orphan);
    let d = query::dangling(&g, None, None);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].edge, E::Owns);
    assert_eq!(d[0].target_text(), "uid:gone (ReplicaSet/web-1)");
    assert_eq!(*d[0].target_kind(), Kind::ReplicaSet);
    assert!(!d[0].optional);
}

#[test]
fn compat_views() {
    let g = shop();
    let release = query::compat_resources(&g, Some("shop"), None);
    let mut names = uids(&release);
    names.sort();
    // Annotated members plus what they own and use: RS, Pods, PVC, PV.
    assert_eq!(
        names,
        vec!["cfg", "dep", "ing", "p1", "p2", "pv", "pvc", "rs", "svc"]
    );
    let graph = query::compat_graph(&g, Some("shop"), None);
    assert!(
        graph
            .edges
            .iter()
            .any(|e| e.kind == E::Selects && e.from.as_str() == "svc")
    );
    let ns = query::compat_resources(&g, None, Some("shop"));
    assert!(
        uids(&ns).contains(&"pv") && uids(&ns).contains(&"ns") && !uids(&ns).contains(&"other")
    );
    assert!(query::compat_graph(&g, Some("nope"), None).nodes.is_empty());
    assert_eq!(query::releases(&g, None), vec!["shop"]);
    assert!(query::releases(&g, Some("other")).is_empty());
    assert_eq!(query::charts(&g, Some("shop")), vec!["web-1.0"]);
    assert_eq!(query::namespaces(&g), vec!["other", "shop"]);
}

#[test]
fn namespace_graph_has_every_member_edge_once_in_kind_from_to_order() {
    let mut g = Graph::new();
    for r in astrolabe_generator::generate(7, 2_000) {
        g.upsert(r);
    }
    let ns = query::namespaces(&g)
        .into_iter()
        .find(|ns| ns.starts_with("team-"))
        .expect("the generator makes team namespaces");
    let sub = query::compat_graph(&g, None, Some(&ns));
    let members: std::collections::BTreeSet<&str> =
        sub.nodes.iter().map(|r| r.uid.as_str()).collect();
    // Expected: every edge of the whole graph with both ends among the members.
    let mut expected: Vec<(E, &str, &str)> = g
        .edge_set()
        .into_iter()
        .filter(|(a, b, _)| members.contains(a.as_str()) && members.contains(b.as_str()))
        .map(|(a, b, k)| {
            let a = members.get(a.as_str()).copied().unwrap_or_default();
            let b = members.get(b.as_str()).copied().unwrap_or_default();
            (k, a, b)
        })
        .collect();
    expected.sort();
    let got: Vec<(E, &str, &str)> = sub
        .edges
        .iter()
        .map(|e| (e.kind, e.from.as_str(), e.to.as_str()))
        .collect();
    assert!(!got.is_empty());
    assert_eq!(got, expected);
}
