//! Queries: resource, list + pagination, neighbours, path, impact, dangling, compat views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_graph::Graph;
use astrolabe_graph::query::{self, Direction, ListFilter, NeighborQuery};
use astrolabe_model::{EdgeKind as E, Kind, ObjectKey, Reference, Uid};
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
fn path_and_impact() {
    let g = shop();
    let p = query::path(&g, &Uid::from("ing"), &Uid::from("pv"), 10).unwrap();
    assert_eq!(uids(&p.nodes), vec!["ing", "svc", "p1", "pvc", "pv"]);
    assert_eq!(p.edges.len(), 4);
    assert!(
        query::path(&g, &Uid::from("ing"), &Uid::from("other"), 10)
            .unwrap()
            .nodes
            .is_empty()
    );
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
        .map(|x| (x.source.name.to_string(), x.edge.as_str(), x.target.clone()))
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
