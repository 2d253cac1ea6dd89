#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Secrets are watched for their metadata only: no Secret value is ever sent to the informers.

mod common;

use astrolabe_informers::{InformerConfig, IngestEvent};
use astrolabe_kubesim::{Sim, SimConfig};
use astrolabe_model::Kind;
use common::Harness;
use serde_json::json;

/// `base64("hunter2-planted-value")`, as a Secret's `data` holds it.
const PLANTED: &str = "aHVudGVyMi1wbGFudGVkLXZhbHVl";

fn secret(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": "shop", "labels": {"app": "shop"}},
           "type": "Opaque",
           "data": {"password": PLANTED}})
}

async fn no_secret_value_is_sent(streaming_lists: bool) {
    let sim = Sim::new(SimConfig::default());
    sim.create("Secret", secret("listed")).unwrap();
    let config = InformerConfig {
        kinds: vec![Kind::Secret],
        streaming_lists,
        ..InformerConfig::default()
    };
    let (mut h, recorder) = Harness::start_recorded(sim, config).await;
    let listed = h.until_listed(&[Kind::Secret]).await;
    assert!(
        listed
            .iter()
            .any(|e| matches!(e, IngestEvent::Upsert(r) if r.name == "listed"))
    );

    h.sim.create("Secret", secret("watched")).unwrap();
    h.sim
        .update("Secret", "shop", "watched", |o| {
            o["metadata"]["labels"]["v"] = json!("2");
        })
        .unwrap();
    let updated = h
        .until("watched secret update", |e| {
            matches!(e, IngestEvent::Upsert(r) if r.name == "watched" && r.labels.get("v") == Some("2"))
        })
        .await;
    let IngestEvent::Upsert(r) = updated.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(r.labels.get("app"), Some("shop"));
    h.sim.delete("Secret", "shop", "watched").unwrap();
    h.until(
        "watched secret delete",
        |e| matches!(e, IngestEvent::Delete { key, .. } if key.name == "watched"),
    )
    .await;

    let sent = String::from_utf8_lossy(&recorder.received()).into_owned();
    assert!(!sent.contains(PLANTED), "a Secret value was sent: {sent}");
    assert!(sent.contains("PartialObjectMetadata"), "{sent}");
    assert!(sent.contains("\"watched\""), "{sent}");
    assert!(!sent.contains("Opaque"), "a Secret's type was sent: {sent}");
}

#[tokio::test]
async fn secrets_are_listed_and_watched_as_metadata() {
    no_secret_value_is_sent(false).await;
}

#[tokio::test]
async fn secrets_stream_as_metadata() {
    no_secret_value_is_sent(true).await;
}
