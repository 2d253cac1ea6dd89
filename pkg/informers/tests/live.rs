#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Live changes propagate: create, update and delete through the emulator reach the channel.

mod common;

use astrolabe_informers::IngestEvent;
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_model::{EdgeKind, Kind, ObjectKey, Reference, Uid};
use common::Harness;
use serde_json::json;

#[tokio::test]
async fn create_update_delete_propagate() {
    let sim = Sim::new(SimConfig::default());
    let mut h = Harness::start(sim, &[Kind::ConfigMap, Kind::Pod]).await;
    let initial = h.until_listed(&[Kind::ConfigMap, Kind::Pod]).await;
    assert!(initial.iter().all(|e| !matches!(e, IngestEvent::Upsert(_))));
    assert!(h.status.all_listed());

    h.sim
        .create(
            "ConfigMap",
            json!({"metadata": {"name": "cfg", "namespace": "shop", "labels": {"v": "1"}},
                   "data": {"secret-ish": "do-not-keep"}}),
        )
        .unwrap();
    let created = h
        .until(
            "configmap upsert",
            |e| matches!(e, IngestEvent::Upsert(r) if r.name == "cfg"),
        )
        .await;
    let IngestEvent::Upsert(cm) = created.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(cm.labels.get("v"), Some("1"));
    assert!(!serde_json::to_string(cm).unwrap().contains("do-not-keep"));
    let uid = cm.uid.clone();

    h.sim
        .create(
            "Pod",
            json!({"metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"containers": [{"name": "web", "image": "nginx",
                              "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
                            "nodeName": "node-1"},
                   "status": {"phase": "Running"}}),
        )
        .unwrap();
    let pod = h
        .until(
            "pod upsert",
            |e| matches!(e, IngestEvent::Upsert(r) if r.name == "web"),
        )
        .await;
    let IngestEvent::Upsert(pod) = pod.last().unwrap() else {
        unreachable!()
    };
    assert!(pod.references.contains(&Reference::to_key(
        EdgeKind::UsesConfigmap,
        Kind::ConfigMap,
        "shop",
        "cfg"
    )));
    assert!(pod.references.contains(&Reference::to_key(
        EdgeKind::RunsOn,
        Kind::Node,
        "",
        "node-1"
    )));

    h.sim
        .update("ConfigMap", "shop", "cfg", |o| {
            o["metadata"]["labels"]["v"] = json!("2");
        })
        .unwrap();
    let updated = h
        .until("configmap update", |e| {
            matches!(e, IngestEvent::Upsert(r) if r.name == "cfg" && r.labels.get("v") == Some("2"))
        })
        .await;
    let IngestEvent::Upsert(cm2) = updated.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(cm2.uid, uid);
    assert_ne!(cm2.resource_version, cm.resource_version);

    h.sim.delete("ConfigMap", "shop", "cfg").unwrap();
    let deleted = h
        .until("configmap delete", |e| {
            matches!(e, IngestEvent::Delete { .. })
        })
        .await;
    assert_eq!(
        deleted.last().unwrap(),
        &IngestEvent::Delete {
            uid: Uid::from(uid.as_str()),
            key: ObjectKey::new(Kind::ConfigMap, "shop", "cfg"),
        }
    );
    let text = h.metrics_text();
    assert!(text.contains(r#"astrolabe_informer_events_total{kind="ConfigMap",type="delete"} 1"#));
    let report = h.status.report();
    let cm_report = report.iter().find(|r| r.kind == "ConfigMap").unwrap();
    assert_eq!(cm_report.deletes, 1);
    assert!(cm_report.upserts >= 2);
}

#[tokio::test]
async fn shutdown_ends_the_task() {
    let sim = Sim::new(SimConfig::default());
    let mut h = Harness::start(sim, &[Kind::Namespace]).await;
    h.until_listed(&[Kind::Namespace]).await;
    h.shutdown.cancel();
    common::within(10, "informer task end", &mut h.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn dropping_the_receiver_ends_the_task() {
    let sim = Sim::new(SimConfig::default());
    let mut h = Harness::start(sim, &[Kind::Namespace, Kind::Node]).await;
    h.until_listed(&[Kind::Namespace, Kind::Node]).await;
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    drop(std::mem::replace(&mut h.rx, rx));
    common::within(10, "informer task end", &mut h.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn namespaces_scope_namespaced_kinds_only() {
    let sim = Sim::new(SimConfig::default());
    for ns in ["shop", "other"] {
        sim.create("Namespace", json!({"metadata": {"name": ns}}))
            .unwrap();
        sim.create(
            "ConfigMap",
            json!({"metadata": {"name": "cfg", "namespace": ns}}),
        )
        .unwrap();
    }
    let mut h = Harness::start_with(sim, &[Kind::ConfigMap, Kind::Namespace], &["shop"]).await;
    let events = h.until_listed(&[Kind::ConfigMap, Kind::Namespace]).await;
    let mut upserted: Vec<String> = Vec::new();
    for ev in &events {
        match ev {
            IngestEvent::ListStarted { kind, namespace }
            | IngestEvent::ListCompleted {
                kind, namespace, ..
            } => {
                let want = (kind == &Kind::ConfigMap).then(|| "shop".into());
                assert_eq!(namespace, &want, "{kind}");
            }
            IngestEvent::Upsert(r) => upserted.push(r.key().to_string()),
            IngestEvent::Delete { .. } => panic!("unexpected delete"),
            IngestEvent::Gap { .. } => panic!("unexpected gap"),
        }
    }
    upserted.sort();
    assert_eq!(
        upserted,
        vec!["ConfigMap/shop/cfg", "Namespace/other", "Namespace/shop"]
    );
}

/// Streaming lists, and paginated lists (page size 2) with a server-side label selector.
#[tokio::test]
async fn streaming_lists_and_small_pages_with_a_selector() {
    let sim = Sim::new(SimConfig::default());
    for i in 0..7 {
        sim.create(
            "ConfigMap",
            json!({"metadata": {"name": format!("c{i}"), "namespace": "ns", "labels": {"keep": if i % 2 == 0 { "yes" } else { "no" }}}}),
        )
        .unwrap();
    }
    for (streaming, want) in [(true, 7), (false, 4)] {
        let config = astrolabe_informers::InformerConfig::from_flags(
            &["configmaps".to_owned()],
            None,
            astrolabe_informers::Discover::Builtin,
            &[],
            (!streaming).then_some("keep=yes"),
            2,
            streaming,
        )
        .unwrap();
        let mut h = Harness::start_config(sim.clone(), config).await;
        let events = h.until_listed(&[Kind::ConfigMap]).await;
        let Some(IngestEvent::ListCompleted { seen, .. }) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(seen.len(), want, "streaming={streaming}");
    }
}
