#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Faults from the API server: 403 marks a kind forbidden and never empties it; an expired watch
//! relists and reconciles; 500s are retried.

mod common;

use astrolabe_informers::IngestEvent;
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_model::{Kind, Uid};
use common::{Harness, eventually};
use serde_json::json;

fn configmap(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": "ns"}, "data": {"k": "v"}})
}

fn secret(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": "ns"}, "type": "Opaque",
           "data": {"password": "aHVudGVyMg=="}})
}

#[tokio::test]
async fn forbidden_kind_is_marked_and_never_completes_a_list() {
    let sim = Sim::new(SimConfig::default());
    sim.create("Secret", secret("s1")).unwrap();
    sim.create("ConfigMap", configmap("c1")).unwrap();
    sim.fail_kind("Secret", 403).unwrap();
    let mut h = Harness::start(sim, &[Kind::ConfigMap, Kind::Secret]).await;

    let events = h.until_listed(&[Kind::ConfigMap]).await;
    let status = h.status.clone();
    eventually(20, "secret forbidden", || {
        status.is_forbidden(&Kind::Secret)
    })
    .await;
    assert!(!h.status.all_listed());
    assert!(!h.status.is_listed(&Kind::Secret));
    let report = h.status.report();
    let secrets = report.iter().find(|r| r.kind == "Secret").unwrap();
    assert!(secrets.forbidden && !secrets.listed);
    assert!(secrets.last_error.is_some());
    assert!(
        h.metrics_text()
            .contains(r#"astrolabe_informer_forbidden{kind="Secret"} 1"#)
    );
    // Nothing about Secrets but (at most) the start of a list that never completes.
    let mut drained = events;
    while let Ok(ev) = h.rx.try_recv() {
        drained.push(ev);
    }
    for ev in &drained {
        if ev.kind() == &Kind::Secret {
            assert!(matches!(ev, IngestEvent::ListStarted { .. }), "{ev:?}");
        }
    }

    // Access granted: the list completes and the kind is no longer forbidden.
    h.sim.clear_failure("Secret").unwrap();
    let done = h.until_listed(&[Kind::Secret]).await;
    let Some(IngestEvent::ListCompleted { seen, .. }) = done.last() else {
        panic!("{done:?}")
    };
    assert_eq!(seen.len(), 1);
    assert!(!h.status.is_forbidden(&Kind::Secret));
    assert!(h.status.all_listed());
    for ev in &done {
        if let IngestEvent::Upsert(r) = ev {
            assert!(!serde_json::to_string(r).unwrap().contains("aHVudGVy"));
        }
    }
}

#[tokio::test]
async fn forbidden_after_sync_never_empties_the_kind() {
    let sim = Sim::new(SimConfig::default());
    sim.create("Secret", secret("s1")).unwrap();
    let mut h = Harness::start(sim, &[Kind::Secret]).await;
    h.until_listed(&[Kind::Secret]).await;

    h.sim.fail_kind("Secret", 403).unwrap();
    h.sim.expire_and_drop_watches();
    let status = h.status.clone();
    eventually(20, "secret forbidden", || {
        status.is_forbidden(&Kind::Secret)
    })
    .await;
    while let Ok(ev) = h.rx.try_recv() {
        assert!(
            !matches!(
                ev,
                IngestEvent::ListCompleted { .. } | IngestEvent::Delete { .. }
            ),
            "{ev:?}"
        );
    }
    // Once allowed again, the relist finds the Secret still there.
    h.sim.clear_failure("Secret").unwrap();
    let done = h.until_listed(&[Kind::Secret]).await;
    let Some(IngestEvent::ListCompleted { seen, .. }) = done.last() else {
        panic!("{done:?}")
    };
    assert_eq!(seen.len(), 1);
    assert!(!h.status.is_forbidden(&Kind::Secret));
}

#[tokio::test]
async fn expired_watch_relists_and_reconciles_deletions_missed_while_disconnected() {
    let sim = Sim::new(SimConfig::default());
    let a = sim.create("ConfigMap", configmap("a")).unwrap();
    sim.create("ConfigMap", configmap("b")).unwrap();
    let mut h = Harness::start(sim, &[Kind::ConfigMap]).await;
    h.until_listed(&[Kind::ConfigMap]).await;

    // Disconnect: the watch is dropped and every reconnect fails with 500 (retried).
    h.sim.fail_kind("ConfigMap", 500).unwrap();
    h.sim.drop_watches();
    let status = h.status.clone();
    eventually(20, "a 500 seen", || {
        status
            .report()
            .iter()
            .any(|r| r.kind == "ConfigMap" && r.errors > 0)
    })
    .await;
    // While disconnected, b is deleted and the history that would replay it expires.
    h.sim.delete("ConfigMap", "ns", "b").unwrap();
    h.sim.expire_history();
    h.sim.clear_failure("ConfigMap").unwrap();

    let events = h
        .until("relist completed", |e| {
            matches!(e, IngestEvent::ListCompleted { .. })
        })
        .await;
    assert!(
        matches!(
            events.first(),
            Some(IngestEvent::ListStarted {
                kind: Kind::ConfigMap,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, IngestEvent::Delete { .. }))
    );
    let Some(IngestEvent::ListCompleted { seen, .. }) = events.last() else {
        unreachable!()
    };
    let a_uid = Uid::from(a["metadata"]["uid"].as_str().unwrap());
    assert_eq!(seen.len(), 1);
    assert!(seen.contains(&a_uid));

    let text = h.metrics_text();
    assert!(text.contains(r#"astrolabe_informer_errors_total{kind="ConfigMap",reason="server"}"#));
    assert!(text.contains(r#"astrolabe_informer_errors_total{kind="ConfigMap",reason="gone"}"#));
    assert!(text.contains(r#"astrolabe_informer_relists_total{kind="ConfigMap"} 2"#));

    // And the watch is live again.
    h.sim.create("ConfigMap", configmap("c")).unwrap();
    h.until(
        "c upsert",
        |e| matches!(e, IngestEvent::Upsert(r) if r.name == "c"),
    )
    .await;
}
