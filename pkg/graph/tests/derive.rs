//! Edge derivation: every edge kind, selector semantics, pending resolution, stale edges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use astrolabe_graph::{Graph, GraphChange, GraphEvent};
use astrolabe_model::{ChangeOp, EdgeKind as E, Kind, Reference, Uid};
use common::*;

#[test]
fn every_edge_kind_is_derived_from_its_reference() {
    let mut g = Graph::new();
    // Targets.
    g.upsert(res("cm", Kind::ConfigMap, "ns", "cfg"));
    g.upsert(res("sec", Kind::Secret, "ns", "s"));
    g.upsert(res("tls", Kind::Secret, "ns", "tls"));
    g.upsert(res("pull", Kind::Secret, "ns", "pull"));
    g.upsert(res("sa", Kind::ServiceAccount, "ns", "sa"));
    g.upsert(res("pvc", Kind::PersistentVolumeClaim, "ns", "data"));
    g.upsert(res("pv", Kind::PersistentVolume, "", "pv1"));
    g.upsert(res("sc", Kind::StorageClass, "", "fast"));
    g.upsert(res("node", Kind::Node, "", "n1"));
    g.upsert(res("ic", Kind::IngressClass, "", "nginx"));
    g.upsert(res("role", Kind::Role, "ns", "r"));
    g.upsert(res("crole", Kind::ClusterRole, "", "view"));
    g.upsert(res("dep", Kind::Deployment, "ns", "web"));
    let rs = refs(
        res("rs", Kind::ReplicaSet, "ns", "web-1"),
        vec![Reference::owned_by("dep", Kind::Deployment, "web")],
    );
    g.upsert(rs);
    let pod = refs(
        labelled(res("pod", Kind::Pod, "ns", "web-1-a"), &[("app", "web")]),
        vec![
            Reference::owned_by("rs", Kind::ReplicaSet, "web-1"),
            key(E::UsesConfigmap, Kind::ConfigMap, "ns", "cfg").with_key("k"),
            key(E::UsesSecret, Kind::Secret, "ns", "s"),
            key(E::UsesSa, Kind::ServiceAccount, "ns", "sa"),
            key(E::PullsWith, Kind::Secret, "ns", "pull"),
            key(E::Mounts, Kind::PersistentVolumeClaim, "ns", "data"),
            key(E::RunsOn, Kind::Node, "", "n1"),
        ],
    );
    g.upsert(pod);
    g.upsert(refs(
        res("pvc2", Kind::PersistentVolumeClaim, "ns", "data2"),
        vec![
            key(E::Binds, Kind::PersistentVolume, "", "pv1"),
            key(E::UsesStorageClass, Kind::StorageClass, "", "fast"),
        ],
    ));
    g.upsert(refs(
        res("svc", Kind::Service, "ns", "web"),
        vec![Reference::to_selector(
            E::Selects,
            Kind::Pod,
            sel("app=web"),
            false,
        )],
    ));
    g.upsert(refs(
        res("eps", Kind::EndpointSlice, "ns", "web-x"),
        vec![
            key(E::Endpoints, Kind::Service, "ns", "web").reversed(),
            key(E::Targets, Kind::Pod, "ns", "web-1-a"),
        ],
    ));
    g.upsert(refs(
        res("ing", Kind::Ingress, "ns", "web"),
        vec![
            key(E::RoutesTo, Kind::Service, "ns", "web"),
            key(E::UsesTlsSecret, Kind::Secret, "ns", "tls"),
            key(E::UsesIngressClass, Kind::IngressClass, "", "nginx"),
        ],
    ));
    g.upsert(refs(
        res("sts", Kind::StatefulSet, "ns", "db"),
        vec![key(
            E::ClaimsFromTemplate,
            Kind::PersistentVolumeClaim,
            "ns",
            "data",
        )],
    ));
    g.upsert(refs(
        res("hpa", Kind::HorizontalPodAutoscaler, "ns", "web"),
        vec![key(E::Scales, Kind::Deployment, "ns", "web")],
    ));
    g.upsert(refs(
        res("pdb", Kind::PodDisruptionBudget, "ns", "web"),
        vec![Reference::to_selector(
            E::Protects,
            Kind::Pod,
            sel("app=web"),
            true,
        )],
    ));
    g.upsert(refs(
        res("np", Kind::NetworkPolicy, "ns", "all"),
        vec![Reference::to_selector(
            E::AppliesTo,
            Kind::Pod,
            sel(""),
            true,
        )],
    ));
    g.upsert(refs(
        res("rb", Kind::RoleBinding, "ns", "rb"),
        vec![
            key(E::Grants, Kind::Role, "ns", "r"),
            key(E::BindsSubject, Kind::ServiceAccount, "ns", "sa"),
        ],
    ));
    g.upsert(refs(
        res("crb", Kind::ClusterRoleBinding, "", "crb"),
        vec![key(E::Grants, Kind::ClusterRole, "", "view")],
    ));

    let expected = [
        ("dep", "rs", E::Owns),
        ("rs", "pod", E::Owns),
        ("pod", "cm", E::UsesConfigmap),
        ("pod", "sec", E::UsesSecret),
        ("pod", "sa", E::UsesSa),
        ("pod", "pull", E::PullsWith),
        ("pod", "pvc", E::Mounts),
        ("pod", "node", E::RunsOn),
        ("pvc2", "pv", E::Binds),
        ("pvc2", "sc", E::UsesStorageClass),
        ("svc", "pod", E::Selects),
        ("svc", "eps", E::Endpoints),
        ("eps", "pod", E::Targets),
        ("ing", "svc", E::RoutesTo),
        ("ing", "tls", E::UsesTlsSecret),
        ("ing", "ic", E::UsesIngressClass),
        ("sts", "pvc", E::ClaimsFromTemplate),
        ("hpa", "dep", E::Scales),
        ("pdb", "pod", E::Protects),
        ("np", "pod", E::AppliesTo),
        ("rb", "role", E::Grants),
        ("rb", "sa", E::BindsSubject),
        ("crb", "crole", E::Grants),
    ];
    for (a, b, k) in expected {
        assert!(has(&g, a, b, k), "missing {a} -{k}-> {b}");
    }
    assert_eq!(g.edge_count(), expected.len(), "{:#?}", edges(&g));
    assert_eq!(g.pending_count(), 0);
    let mut covered: Vec<E> = expected.iter().map(|e| e.2).collect();
    covered.sort();
    covered.dedup();
    assert_eq!(covered.len(), E::ALL.len(), "every edge kind is exercised");
}

#[test]
fn service_empty_selector_selects_nothing_but_policy_selects_all() {
    let mut g = Graph::new();
    g.upsert(labelled(res("p1", Kind::Pod, "ns", "a"), &[("app", "x")]));
    g.upsert(res("p2", Kind::Pod, "ns", "b"));
    g.upsert(res("p3", Kind::Pod, "other", "c"));
    g.upsert(refs(
        res("svc", Kind::Service, "ns", "s"),
        vec![Reference::to_selector(
            E::Selects,
            Kind::Pod,
            sel(""),
            false,
        )],
    ));
    g.upsert(refs(
        res("np", Kind::NetworkPolicy, "ns", "n"),
        vec![Reference::to_selector(
            E::AppliesTo,
            Kind::Pod,
            sel(""),
            true,
        )],
    ));
    g.upsert(refs(
        res("pdb", Kind::PodDisruptionBudget, "ns", "d"),
        vec![Reference::to_selector(
            E::Protects,
            Kind::Pod,
            sel("app in (x,y),!canary"),
            true,
        )],
    ));
    assert!(!has(&g, "svc", "p1", E::Selects));
    assert!(has(&g, "np", "p1", E::AppliesTo) && has(&g, "np", "p2", E::AppliesTo));
    assert!(
        !has(&g, "np", "p3", E::AppliesTo),
        "selectors stay in their namespace"
    );
    assert!(has(&g, "pdb", "p1", E::Protects) && !has(&g, "pdb", "p2", E::Protects));
}

#[test]
fn pending_references_resolve_when_the_target_appears() {
    let mut g = Graph::new();
    g.upsert(refs(
        res("pod", Kind::Pod, "ns", "p"),
        vec![
            key(E::UsesConfigmap, Kind::ConfigMap, "ns", "cfg"),
            Reference::owned_by("rs", Kind::ReplicaSet, "r"),
        ],
    ));
    assert_eq!(g.pending_count(), 2);
    assert_eq!(g.edge_count(), 0);
    g.upsert(res("cm", Kind::ConfigMap, "ns", "cfg"));
    g.upsert(res("rs", Kind::ReplicaSet, "ns", "r"));
    assert!(has(&g, "pod", "cm", E::UsesConfigmap));
    assert!(has(&g, "rs", "pod", E::Owns));
    assert_eq!(g.pending_count(), 0);
    // A ConfigMap of the same name in another namespace is not a match.
    g.upsert(refs(
        res("pod2", Kind::Pod, "other", "p"),
        vec![key(E::UsesConfigmap, Kind::ConfigMap, "other", "cfg")],
    ));
    assert_eq!(g.pending_count(), 1);
}

#[test]
fn deleting_a_target_turns_edges_back_into_pending_references() {
    let mut g = Graph::new();
    g.upsert(res("cm", Kind::ConfigMap, "ns", "cfg"));
    g.upsert(refs(
        res("pod", Kind::Pod, "ns", "p"),
        vec![key(E::UsesConfigmap, Kind::ConfigMap, "ns", "cfg")],
    ));
    assert!(has(&g, "pod", "cm", E::UsesConfigmap));
    g.delete(&Uid::from("cm"));
    assert_eq!(g.edge_count(), 0);
    assert_eq!(g.pending_count(), 1);
    // Recreated under a new UID: the edge comes back without touching the Pod.
    g.upsert(res("cm2", Kind::ConfigMap, "ns", "cfg"));
    assert!(has(&g, "pod", "cm2", E::UsesConfigmap));
    assert_eq!(g.pending_count(), 0);
}

#[test]
fn an_update_removes_edges_that_no_longer_hold() {
    let mut g = Graph::new();
    g.upsert(res("a", Kind::ConfigMap, "ns", "a"));
    g.upsert(res("b", Kind::ConfigMap, "ns", "b"));
    g.upsert(labelled(
        res("p1", Kind::Pod, "ns", "p1"),
        &[("app", "web")],
    ));
    g.upsert(labelled(res("p2", Kind::Pod, "ns", "p2"), &[("app", "db")]));
    g.upsert(refs(
        res("dep", Kind::Deployment, "ns", "d"),
        vec![key(E::UsesConfigmap, Kind::ConfigMap, "ns", "a")],
    ));
    g.upsert(refs(
        res("svc", Kind::Service, "ns", "s"),
        vec![Reference::to_selector(
            E::Selects,
            Kind::Pod,
            sel("app=web"),
            false,
        )],
    ));
    assert!(has(&g, "dep", "a", E::UsesConfigmap) && has(&g, "svc", "p1", E::Selects));

    // The template now uses b; the selector now picks db.
    g.upsert(refs(
        res("dep", Kind::Deployment, "ns", "d"),
        vec![key(E::UsesConfigmap, Kind::ConfigMap, "ns", "b")],
    ));
    g.upsert(refs(
        res("svc", Kind::Service, "ns", "s"),
        vec![Reference::to_selector(
            E::Selects,
            Kind::Pod,
            sel("app=db"),
            false,
        )],
    ));
    assert!(!has(&g, "dep", "a", E::UsesConfigmap) && has(&g, "dep", "b", E::UsesConfigmap));
    assert!(!has(&g, "svc", "p1", E::Selects) && has(&g, "svc", "p2", E::Selects));

    // A Pod relabelled out of the selector loses the edge; relabelled in, gains it.
    g.upsert(labelled(
        res("p2", Kind::Pod, "ns", "p2"),
        &[("app", "web")],
    ));
    assert!(!has(&g, "svc", "p2", E::Selects));
    g.upsert(labelled(res("p1", Kind::Pod, "ns", "p1"), &[("app", "db")]));
    assert!(has(&g, "svc", "p1", E::Selects));
    assert_eq!(g.edge_count(), 2);
    // A reference to a missing target that is dropped by an update leaves no pending entry.
    g.upsert(refs(
        res("dep", Kind::Deployment, "ns", "d"),
        vec![key(E::UsesSecret, Kind::Secret, "ns", "missing")],
    ));
    assert_eq!(g.pending_count(), 1);
    g.upsert(res("dep", Kind::Deployment, "ns", "d"));
    assert_eq!(g.pending_count(), 0);
}

#[test]
fn several_edge_kinds_between_one_pair_are_kept() {
    let mut g = Graph::new();
    g.upsert(res("svc", Kind::Service, "ns", "s"));
    g.upsert(refs(
        res("eps", Kind::EndpointSlice, "ns", "e"),
        vec![
            Reference::owned_by("svc", Kind::Service, "s"),
            key(E::Endpoints, Kind::Service, "ns", "s").reversed(),
        ],
    ));
    assert!(has(&g, "svc", "eps", E::Owns) && has(&g, "svc", "eps", E::Endpoints));
    assert_eq!(g.edge_count(), 2);
}

#[test]
fn identical_upserts_are_no_ops_and_sequence_numbers_are_gapless() {
    let mut g = Graph::new();
    let c1 = g.upsert(res("a", Kind::ConfigMap, "ns", "a")).unwrap();
    assert!(g.upsert(res("a", Kind::ConfigMap, "ns", "a")).is_none());
    let mut changed = res("a", Kind::ConfigMap, "ns", "a");
    changed.resource_version = "2".into();
    let c2 = g.upsert(changed).unwrap();
    assert!(g.delete(&Uid::from("missing")).is_none());
    let c3 = g.delete(&Uid::from("a")).unwrap();
    assert_eq!((c1.seq, c2.seq, c3.seq, g.seq()), (1, 2, 3, 3));
    assert!(matches!(c3.op, ChangeOp::Delete { ref key, .. } if key.name == "a"));
}

#[test]
fn an_exhausted_sequence_never_wraps_and_leaves_the_graph_unchanged() {
    let mut g = Graph::new();
    g.advance_seq(u64::MAX - 1);
    let last = g.upsert(res("a", Kind::ConfigMap, "ns", "a")).unwrap();
    assert_eq!(last.seq, u64::MAX);
    assert!(g.upsert(res("b", Kind::ConfigMap, "ns", "b")).is_none());
    assert!(g.delete(&Uid::from("a")).is_none());
    assert_eq!((g.seq(), g.node_count()), (u64::MAX, 1));
}

#[test]
fn events_report_nodes_and_net_edge_changes() {
    let mut g = Graph::new();
    let mut events: Vec<GraphEvent> = Vec::new();
    g.apply(
        ChangeOp::Upsert(res("cm", Kind::ConfigMap, "ns", "cfg").into()),
        1,
        &mut events,
    );
    let pod = refs(
        res("pod", Kind::Pod, "ns", "p"),
        vec![key(E::UsesConfigmap, Kind::ConfigMap, "ns", "cfg")],
    );
    g.apply(ChangeOp::Upsert(pod.clone().into()), 2, &mut events);
    assert!(matches!(&events[0].change, GraphChange::NodeAdded(r) if r.name == "cfg"));
    assert!(
        matches!(&events[2].change, GraphChange::EdgeAdded(e) if e.from.as_str() == "pod" && e.kind == E::UsesConfigmap)
    );
    assert_eq!(events[2].seq, 2);
    // An update that keeps the edge reports the node only.
    events.clear();
    let mut pod2 = pod.clone();
    pod2.resource_version = "9".into();
    g.apply(ChangeOp::Upsert(pod2.into()), 3, &mut events);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(&events[0].change, GraphChange::NodeUpdated(_)));
    // Deleting the target reports the node and the edge removal.
    events.clear();
    let key = g.get(&Uid::from("cm")).unwrap().key();
    g.apply(
        ChangeOp::Delete {
            uid: Uid::from("cm"),
            key,
        },
        4,
        &mut events,
    );
    assert!(
        matches!(&events[0].change, GraphChange::NodeRemoved { uid, .. } if uid.as_str() == "cm")
    );
    assert!(matches!(&events[1].change, GraphChange::EdgeRemoved(e) if e.to.as_str() == "cm"));
    assert_eq!(events.len(), 2);
}

#[test]
fn stale_lists_what_a_relist_did_not_see() {
    let mut g = Graph::new();
    g.upsert(res("a", Kind::Pod, "ns1", "a"));
    g.upsert(res("b", Kind::Pod, "ns1", "b"));
    g.upsert(res("c", Kind::Pod, "ns2", "c"));
    g.upsert(res("d", Kind::ConfigMap, "ns1", "d"));
    let seen = [Uid::from("a")].into_iter().collect();
    let mut stale = g.stale(&Kind::Pod, None, &seen);
    stale.sort();
    assert_eq!(stale, vec![Uid::from("b"), Uid::from("c")]);
    assert_eq!(
        g.stale(&Kind::Pod, Some("ns2"), &seen),
        vec![Uid::from("c")]
    );
}

#[test]
fn snapshot_round_trip_rebuilds_the_same_graph() {
    let mut g = Graph::new();
    for r in astrolabe_generator::generate(5, 3_000) {
        g.upsert(r);
    }
    let snap = g.snapshot();
    let bytes = astrolabe_model::codec::encode_snapshot(&snap).unwrap();
    let back = Graph::from_snapshot(&astrolabe_model::codec::decode_snapshot(&bytes).unwrap());
    assert_eq!(back.seq(), g.seq());
    assert_eq!(back.node_set(), g.node_set());
    assert_eq!(back.edge_set(), g.edge_set());
    assert_eq!(back.pending_count(), g.pending_count());
}

/// A selector over other namespaces (a ServiceMonitor's `namespaceSelector`), with an edge kind
/// a rule declares: it links matching objects in the namespaces it names (or in every one),
/// whichever arrives first, follows label changes, and is reported when it matches nothing.
#[test]
fn a_selector_over_other_namespaces_links_there_in_either_order() {
    use astrolabe_model::{Dependency, Namespaces, Target};
    let monitors = E::declare("test-scrapes", Dependency::None, "").unwrap();
    let monitor_kind = Kind::other("monitoring.coreos.com", "ServiceMonitor");
    let monitor = |uid: &str, selector: &str, namespaces: Namespaces| {
        refs(
            res(uid, monitor_kind.clone(), "monitoring", uid),
            vec![Reference {
                edge: monitors,
                target: Target::SelectorIn {
                    kind: Kind::Service,
                    selector: sel(selector),
                    namespaces: Box::new(namespaces),
                },
                reverse: false,
                key: None,
                optional: false,
            }],
        )
    };
    let svc = |uid: &str, ns: &str, app: &str| {
        labelled(res(uid, Kind::Service, ns, uid), &[("app", app)])
    };
    let named = Namespaces::Names(vec!["a".into(), "b".into()]);
    for monitors_first in [true, false] {
        let mut g = Graph::new();
        let services = [
            svc("svc-a", "a", "web"),
            svc("svc-b", "b", "web"),
            svc("svc-c", "c", "web"),
            svc("svc-a-db", "a", "db"),
            svc("svc-mon", "monitoring", "web"),
        ];
        let mons = [
            monitor("named", "app=web", named.clone()),
            monitor("every", "app=web", Namespaces::All),
            monitor("every-unanchored", "app", Namespaces::All),
        ];
        if monitors_first {
            mons.iter().cloned().for_each(|m| drop(g.upsert(m)));
            services.iter().cloned().for_each(|s| drop(g.upsert(s)));
        } else {
            services.iter().cloned().for_each(|s| drop(g.upsert(s)));
            mons.iter().cloned().for_each(|m| drop(g.upsert(m)));
        }
        for (from, to, linked) in [
            ("named", "svc-a", true),
            ("named", "svc-b", true),
            ("named", "svc-c", false),
            ("named", "svc-mon", false),
            ("named", "svc-a-db", false),
            ("every", "svc-a", true),
            ("every", "svc-c", true),
            ("every", "svc-mon", true),
            ("every", "svc-a-db", false),
            ("every-unanchored", "svc-a-db", true),
        ] {
            assert_eq!(
                has(&g, from, to, monitors),
                linked,
                "{from} -> {to} (monitors first: {monitors_first})"
            );
        }
        // A relabelled Service leaves the anchored selectors.
        g.upsert(svc("svc-b", "b", "api"));
        assert!(!has(&g, "named", "svc-b", monitors));
        g.delete(&Uid::from("every"));
        assert!(!has(&g, "every", "svc-c", monitors));
        assert!(has(&g, "every-unanchored", "svc-c", monitors));
    }
    // Matching nothing is dangling.
    let mut g = Graph::new();
    g.upsert(monitor("lonely", "app=none", Namespaces::All));
    let dangling = astrolabe_graph::query::dangling(&g, None, None);
    assert_eq!(dangling.len(), 1);
    assert_eq!(
        dangling[0].target_text(),
        "Service matching app=none in every namespace"
    );
}
