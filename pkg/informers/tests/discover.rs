#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Kinds outside the table, discovered from the emulator: core `Endpoints` (served, not in the
//! table) is excluded by default, enters metadata-only with its owners when selected, is polled
//! past the watch cap, and is not discovered with `Discover::Builtin`.

mod common;

use std::time::Duration;

use astrolabe_informers::{Discover, InformerConfig, IngestEvent, Selection};
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_model::{EdgeKind, Kind};
use common::{Harness, eventually};
use serde_json::json;

fn endpoints_kind() -> Kind {
    Kind::parse("Endpoints")
}

/// A Service and the Endpoints it owns, with a harmless annotation and a big one.
fn cluster() -> Sim {
    let sim = Sim::new(SimConfig::default());
    let svc = sim
        .create(
            "Service",
            json!({"metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )
        .unwrap();
    let uid = svc["metadata"]["uid"].as_str().unwrap().to_owned();
    sim.create(
        "Endpoints",
        json!({"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                            "annotations": {"note": "kept",
                                            "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": uid, "controller": true}]},
               "subsets": [{"addresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 80}]}]}),
    )
    .unwrap();
    sim
}

fn config(kinds: &[&str], exclude: Option<&[&str]>, discover: Discover) -> InformerConfig {
    let mut c = InformerConfig::selecting(kinds, exclude, discover).unwrap();
    c.list_interval = Duration::from_millis(300);
    c
}

fn report_of(h: &Harness, name: &str) -> Option<astrolabe_informers::KindReport> {
    h.status.report().into_iter().find(|r| r.kind == name)
}

#[tokio::test]
async fn endpoints_are_excluded_by_default() {
    let mut h = Harness::start_config(cluster(), config(&[], None, Discover::All)).await;
    let events = h.until_listed(Kind::WATCHED).await;
    eventually(10, "discovery done and all listed", || {
        h.status.all_listed()
    })
    .await;
    assert!(events.iter().all(|e| e.kind() != &endpoints_kind()));
    let kinds: Vec<String> = h.status.report().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds.len(), Kind::WATCHED.len(), "{kinds:?}");
    assert_eq!(InformerConfig::default().selection, Selection::default());
}

#[tokio::test]
async fn selected_endpoints_enter_metadata_only_with_their_owner() {
    for (kinds, exclude) in [(&["Endpoints"][..], None), (&[][..], Some(&[""][..]))] {
        let mut h = Harness::start_config(cluster(), config(kinds, exclude, Discover::All)).await;
        let events = h
            .until(
                "the Endpoints listed",
                |e| matches!(e, IngestEvent::ListCompleted { kind, .. } if *kind == endpoints_kind()),
            )
            .await;
        let ep = events
            .iter()
            .find_map(|e| match e {
                IngestEvent::Upsert(r) if r.kind == endpoints_kind() => Some(r.clone()),
                _ => None,
            })
            .expect("the Endpoints object");
        assert_eq!((ep.namespace.as_str(), ep.name.as_str()), ("shop", "web"));
        assert_eq!(ep.kind.api_version(), "v1");
        assert_eq!(ep.labels.get("app"), Some("web"));
        assert_eq!(ep.annotations.get("note"), Some("kept"));
        assert!(
            !ep.annotations
                .contains_key("kubectl.kubernetes.io/last-applied-configuration")
        );
        assert_eq!(ep.owners.len(), 1, "{ep:?}");
        assert_eq!(ep.owners[0].kind, Kind::Service);
        assert!(ep.references.iter().all(|r| r.edge == EdgeKind::Owns));
        let report = report_of(&h, "Endpoints").expect("reported");
        assert_eq!(
            (report.mode, report.access, report.state),
            ("metadata", "watch", "watched")
        );
        assert!(
            h.metrics_text().contains(
                "astrolabe_informer_kind_watched{access=\"watch\",kind=\"Endpoints\",mode=\"metadata\"} 1"
            ),
            "{}",
            h.metrics_text()
        );
        // Watched: a new object arrives without a relist.
        h.sim
            .create(
                "Endpoints",
                json!({"metadata": {"name": "api", "namespace": "shop"}}),
            )
            .unwrap();
        h.until(
            "the new Endpoints",
            |e| matches!(e, IngestEvent::Upsert(r) if r.name == "api" && r.kind == endpoints_kind()),
        )
        .await;
        if kinds.is_empty() {
            // Every default exclusion the emulator serves is in with the list emptied.
            eventually(10, "the Events watched too", || {
                report_of(&h, "Event.events.k8s.io").is_some() && report_of(&h, "Event").is_some()
            })
            .await;
        } else {
            assert!(report_of(&h, "Event").is_none());
        }
    }
}

#[tokio::test]
async fn builtin_discovers_nothing() {
    let mut h = Harness::start_config(cluster(), config(&[], Some(&[""]), Discover::Builtin)).await;
    let events = h.until_listed(Kind::WATCHED).await;
    assert!(h.status.all_listed());
    assert!(events.iter().all(|e| e.kind().is_watched()));
    assert_eq!(h.status.report().len(), Kind::WATCHED.len());
}

#[tokio::test]
async fn past_the_cap_a_kind_is_listed_periodically_and_deletions_are_found() {
    let mut c = config(&["Endpoints", "Service"], None, Discover::All);
    c.max_watches = 1;
    let mut h = Harness::start_config(cluster(), c).await;
    h.until(
        "the Endpoints listed",
        |e| matches!(e, IngestEvent::ListCompleted { kind, .. } if *kind == endpoints_kind()),
    )
    .await;
    let report = report_of(&h, "Endpoints").expect("reported");
    assert_eq!(
        (report.mode, report.access, report.state),
        ("metadata", "poll", "polled")
    );
    assert_eq!(report_of(&h, "Service").expect("typed").access, "watch");
    // Deleted between two lists: the next list completes without it.
    h.sim.delete("Endpoints", "shop", "web").unwrap();
    h.until("a list without the deleted Endpoints", |e| {
        matches!(e, IngestEvent::ListCompleted { kind, seen, .. } if *kind == endpoints_kind() && seen.is_empty())
    })
    .await;
    assert!(report_of(&h, "Endpoints").unwrap().relists >= 2);
}

#[tokio::test]
async fn a_misspelt_plain_name_stops_the_informers_with_the_valid_names() {
    let mut h = Harness::start_config(cluster(), config(&["Endpointz"], None, Discover::All)).await;
    let outcome = common::within(20, "the informers end", &mut h.task).await;
    let err = outcome.unwrap().expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("Endpointz") && text.contains("Endpoints") && text.contains("Pod"),
        "{text}"
    );
}
