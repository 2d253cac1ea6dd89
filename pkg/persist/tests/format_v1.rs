//! Payloads written in format version 1 (changes, batches of changes, a snapshot, each kept as
//! the bytes an older build wrote, next to what they held as JSON) still decode, to what they
//! held, and round-trip through the current format.

use std::path::PathBuf;

use astrolabe_model::codec::{self, FORMAT_VERSION};
use astrolabe_model::{Change, Kind, Resource};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/format-v1")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("json")
}

#[test]
fn a_version_1_snapshot_decodes_to_what_it_held_and_round_trips() {
    let bytes = fixture("snapshot.bin");
    assert_eq!(bytes[0], 1, "the fixture is version 1");
    let snapshot = codec::decode_snapshot(&bytes).expect("decodes");
    assert_eq!(snapshot.seq, 4242);
    let resources: Vec<&Resource> = snapshot.resources.iter().map(|r| &**r).collect();
    let held: serde_json::Value =
        serde_json::from_slice(&fixture("snapshot.json")).expect("json fixture");
    assert_eq!(json(&resources), held);
    // The kind only named by an owner reference reads back as a core-group kind.
    let rollout = resources
        .iter()
        .flat_map(|r| &r.owners)
        .find(|o| o.kind.as_str() == "Rollout")
        .expect("the Rollout owner");
    assert_eq!(rollout.kind, Kind::other("", "Rollout"));

    let again = codec::encode_snapshot(&snapshot).expect("encodes");
    assert_eq!(again[0], FORMAT_VERSION);
    assert_eq!(codec::decode_snapshot(&again).expect("decodes"), snapshot);
}

#[test]
fn version_1_changes_decode_alone_and_in_batches() {
    let held: serde_json::Value =
        serde_json::from_slice(&fixture("changes.json")).expect("json fixture");
    let batch = codec::decode_changes(&fixture("changes.bin")).expect("decodes");
    assert_eq!(json(&batch), held);
    let one: Change = codec::decode_change(&fixture("change.bin")).expect("decodes");
    assert_eq!(Some(&one), batch.last());
    let range = codec::change_uid_range(&fixture("change.bin")).expect("uid found");
    assert_eq!(
        &fixture("change.bin")[range],
        one.op.uid().as_str().as_bytes()
    );

    let again = codec::encode_changes(&batch).expect("encodes");
    assert_eq!(codec::decode_changes(&again).expect("decodes"), batch);
}

#[test]
fn a_kind_outside_the_table_keeps_its_group_version_and_scope_in_the_current_format() {
    let kind = Kind::discovered(&astrolabe_model::KindInfo {
        kind: "ClusterIssuer".into(),
        group: "cert-manager.io".into(),
        version: "v1".into(),
        plural: "clusterissuers".into(),
        namespaced: false,
    });
    let mut r = Resource::new(
        astrolabe_model::Uid::from("uid-ci"),
        kind.clone(),
        "",
        "letsencrypt",
    );
    r.owners.push(astrolabe_model::OwnerRef {
        kind: Kind::from_api_version("argoproj.io/v1alpha1", "Application"),
        name: "app".into(),
        uid: "uid-app".into(),
        controller: false,
    });
    let bytes = codec::encode_snapshot(&codec::Snapshot {
        seq: 1,
        taken_at_ms: 0,
        resources: vec![std::sync::Arc::new(r)],
    })
    .expect("encodes");
    let back = codec::decode_snapshot(&bytes).expect("decodes");
    let read = &back.resources[0];
    assert_eq!(read.kind, kind);
    assert_eq!(read.kind.api_version(), "cert-manager.io/v1");
    assert_eq!(read.kind.plural(), "clusterissuers");
    assert!(!read.kind.is_namespaced());
    assert_eq!(read.owners[0].kind.group(), "argoproj.io");
    assert_eq!(read.owners[0].kind.api_version(), "argoproj.io/v1alpha1");
    assert_ne!(
        read.owners[0].kind,
        Kind::other("", "Application"),
        "the group is part of the identity"
    );
}
