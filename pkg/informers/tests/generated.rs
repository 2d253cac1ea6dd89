#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Initial sync of a generated cluster through the emulator and the real kube-rs client: what the
//! informers emit matches the generator's resources by key, kind, references, owners, status
//! (health and message) and facts, object for object.

mod common;

use std::collections::{BTreeMap, HashSet};

use astrolabe_generator as generator;
use astrolabe_informers::IngestEvent;
use astrolabe_kubesim::Sim;
use astrolabe_model::{Kind, ObjectKey, Resource};
use common::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_cluster_round_trips_through_the_emulator() {
    let expected = generator::generate(11, 800);
    let sim = Sim::with_generated(11, 800).unwrap();
    let mut h = Harness::start(sim, &[]).await;
    let events = h.until_listed(Kind::WATCHED).await;
    assert!(h.status.all_listed(), "{:?}", h.status.report());

    let mut got: BTreeMap<ObjectKey, Resource> = BTreeMap::new();
    let mut started = HashSet::new();
    let mut completed_seen = 0;
    for ev in events {
        match ev {
            IngestEvent::ListStarted { kind, namespace } => {
                assert!(namespace.is_none());
                started.insert(kind);
            }
            IngestEvent::Upsert(r) => {
                assert!(
                    started.contains(&r.kind),
                    "{} upserted before its list started",
                    r.key()
                );
                got.insert(r.key(), r);
            }
            IngestEvent::ListCompleted { seen, .. } => completed_seen += seen.len(),
            IngestEvent::Delete { key, .. } => panic!("unexpected delete of {key}"),
            IngestEvent::Gap { kind, reason, .. } => panic!("unexpected gap of {kind}: {reason}"),
        }
    }
    assert_eq!(started.len(), Kind::WATCHED.len());
    assert_eq!(completed_seen, got.len());

    let mut mismatches = Vec::new();
    for want in &expected {
        let Some(have) = got.get(&want.key()) else {
            mismatches.push(format!("missing {}", want.key()));
            continue;
        };
        assert_eq!(have.uid, want.uid, "{}", want.key());
        assert_eq!(have.kind, want.kind);
        if have.references != want.references {
            mismatches.push(format!(
                "{}: references differ\n  want {:?}\n  have {:?}",
                want.key(),
                want.references,
                have.references
            ));
        }
        if have.owners != want.owners {
            mismatches.push(format!("{}: owners differ", want.key()));
        }
        if have.status != want.status {
            mismatches.push(format!(
                "{}: status {:?} {:?}, generator says {:?} {:?}",
                want.key(),
                have.status.health,
                have.status.message,
                want.status.health,
                want.status.message
            ));
        }
        if have.facts() != want.facts() {
            mismatches.push(format!(
                "{}: facts differ\n  want {:?}\n  have {:?}",
                want.key(),
                want.facts(),
                have.facts()
            ));
        }
        if have.release() != want.release() || have.chart() != want.chart() {
            mismatches.push(format!("{}: helm identity differs", want.key()));
        }
    }
    assert_eq!(got.len(), expected.len(), "object count");
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(40)].join("\n")
    );
}
