#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Leases as leader election uses them, with the real kube-rs client against the emulator over
//! HTTP: an update made from a `resourceVersion` that is no longer current is refused with 409
//! Conflict, one made from the current version succeeds; the kind is discovered.

mod common;

use common::{Served, fast_config, get_json};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const NAME: &str = "astrolabe-leader";

fn lease(holder: &str, transitions: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(NAME.to_owned()),
            namespace: Some("astrolabe".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

fn holder(l: &Lease) -> Option<&str> {
    l.spec.as_ref()?.holder_identity.as_deref()
}

#[tokio::test]
async fn a_lease_changes_only_from_its_current_version() {
    let served = Served::start(fast_config()).await;
    served
        .sim
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "astrolabe"}}),
        )
        .unwrap();
    let api: Api<Lease> = Api::namespaced(served.client(), "astrolabe");
    let pp = PostParams::default();
    let created = api.create(&pp, &lease("a", 0)).await.unwrap();
    assert!(
        api.create(&pp, &lease("b", 0)).await.is_err(),
        "one lease per name"
    );

    // `a` renews from the version it read.
    let mut renew = created.clone();
    renew.spec.as_mut().unwrap().lease_duration_seconds = Some(20);
    let renewed = api.replace(NAME, &pp, &renew).await.unwrap();
    assert_ne!(
        renewed.metadata.resource_version,
        created.metadata.resource_version
    );

    // `b` read the lease before the renewal: its takeover is refused.
    let mut stale = lease("b", 1);
    stale.metadata.resource_version = created.metadata.resource_version.clone();
    match api.replace(NAME, &pp, &stale).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "Conflict")),
        other => panic!("a stale takeover must be a conflict, got {other:?}"),
    }
    assert_eq!(holder(&api.get(NAME).await.unwrap()), Some("a"));

    // From the current version it succeeds.
    let mut takeover = lease("b", 1);
    takeover.metadata.resource_version = renewed.metadata.resource_version.clone();
    let won = api.replace(NAME, &pp, &takeover).await.unwrap();
    assert_eq!(holder(&won), Some("b"));
    assert_eq!(won.spec.unwrap().lease_transitions, Some(1));

    let listed = api.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let http = reqwest::Client::new();
    let resources = get_json(
        &http,
        &format!("{}/apis/coordination.k8s.io/v1", served.url()),
        None,
    )
    .await;
    assert!(
        resources["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "leases" && r["namespaced"] == true),
        "{resources}"
    );
}
