#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Invariant 2, replay equivalence: for random change histories, random snapshot points and
//! random crash points (before commit, between commit and trim, after trim), and snapshots
//! copied in slices while changes go on (each resource as it was at some point of the copy,
//! recorded as covering the sequence at the copy's start), and snapshots encoded by one
//! `SnapshotEncoder` that keeps the parts that did not change,
//! `load(snapshot) + replay(stream after it)` equals the state at the last acknowledged change.
//! Changes are encoded as the writer encodes them: an update of an object written before is a
//! patch of its last version.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use astrolabe_model::codec::{SlicedSnapshot, Snapshot};
use astrolabe_model::{Change, ChangeOp, Kind, ObjectKey, Resource};
use astrolabe_persist::{
    EventLog, LastVersions, ModelDecoder, PersistError, PersistMetrics, Record, RedisConfig,
    RedisLog, SnapshotEncoder, recover,
};
use astrolabe_testkit::RedisServer;
use proptest::prelude::*;
use redis::AsyncCommands;

#[derive(Debug, Clone)]
enum Op {
    Upsert { id: u8, version: u16 },
    Delete { id: u8 },
}

#[derive(Debug, Clone, Copy)]
enum Crash {
    /// The last snapshot's chunks were uploaded but never committed.
    BeforeCommit,
    /// The last snapshot was committed; the process died before trimming.
    BetweenCommitAndTrim,
    /// Nothing special: committed and trimmed.
    AfterTrim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, any::<u16>()).prop_map(|(id, version)| Op::Upsert { id, version }),
        1 => (0u8..12).prop_map(|id| Op::Delete { id }),
    ]
}

fn crash() -> impl Strategy<Value = Crash> {
    prop_oneof![
        Just(Crash::BeforeCommit),
        Just(Crash::BetweenCommitAndTrim),
        Just(Crash::AfterTrim)
    ]
}

type State = BTreeMap<String, Arc<Resource>>;

/// Three kinds, so that the encoder can give each parts of its own: two built in, one outside
/// the table (a CRD's, group-qualified, with a reference a relationship rule makes).
fn kind(id: u8) -> Kind {
    match id % 3 {
        0 => Kind::Pod,
        1 => Kind::ConfigMap,
        _ => Kind::discovered(&astrolabe_model::KindInfo {
            kind: "Certificate".into(),
            group: "cert-manager.io".into(),
            version: "v1".into(),
            plural: "certificates".into(),
            namespaced: true,
        }),
    }
}

fn resource(id: u8, version: u16) -> Resource {
    let mut r = Resource::new(
        format!("uid-{id}").as_str(),
        kind(id),
        "ns",
        format!("cm-{id}"),
    );
    r.labels.insert("v", version.to_string());
    r.resource_version = version.to_string().into();
    if !r.kind.is_watched() {
        let writes = astrolabe_model::EdgeKind::declare(
            "test-writes",
            astrolabe_model::Dependency::SourceNeedsTarget,
            "",
        )
        .unwrap();
        r.references.push(astrolabe_model::Reference::to_key(
            writes,
            Kind::Secret,
            "ns",
            format!("tls-{version}"),
        ));
    }
    r
}

fn apply(state: &mut State, change: &Change) {
    match &change.op {
        ChangeOp::Upsert(r) => {
            state.insert(r.uid.as_str().to_owned(), r.clone());
        }
        ChangeOp::Delete { uid, .. } => {
            state.remove(uid.as_str());
        }
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

/// Resources per slice of a snapshot's copy.
const SLICE: usize = 4;

/// A snapshot copied in slices (`astrolabe_graph::snapshot_sliced`): it starts after op
/// `start` (covering its sequence) and ends after op `end`; each resource is copied as it was
/// after some op in `start..=end`, chosen by `pick`.
fn fuzzy_copy(history: &[State], start: usize, end: usize, pick: u64) -> Vec<Arc<Resource>> {
    let span = (end - start + 1) as u64;
    let ids: std::collections::BTreeSet<&String> =
        history[start..=end].iter().flat_map(|s| s.keys()).collect();
    ids.into_iter()
        .filter_map(|id| {
            let salt = id.bytes().fold(pick, |h, b| {
                h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(b))
            });
            let at = start + usize::try_from(salt % span).unwrap();
            history[at].get(id).cloned()
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn run_case(
    server: &RedisServer,
    ops: Vec<Op>,
    snapshot_at: Vec<usize>,
    batch: usize,
    retain: u64,
    crash: Crash,
    lag: usize,
    pick: u64,
) {
    let cluster = format!("prop-{}", CASE.fetch_add(1, Ordering::SeqCst));
    let mut cfg = RedisConfig::from_url(&server.url(), cluster).unwrap();
    cfg.chunk_size = 64; // several chunks even for small states
    let log = RedisLog::new(&cfg).unwrap();
    let mut live = State::new();
    let mut encoder = SnapshotEncoder::default();
    let mut history: Vec<State> = Vec::with_capacity(ops.len());
    let mut pending = Vec::new();
    let mut last_versions = LastVersions::default();
    let last_snapshot = snapshot_at.iter().copied().filter(|i| *i < ops.len()).max();
    for (j, op) in ops.iter().enumerate() {
        let seq = j as u64 + 1;
        let op = match op {
            Op::Upsert { id, version } => ChangeOp::Upsert(Arc::new(resource(*id, *version))),
            Op::Delete { id } => {
                let uid = format!("uid-{id}");
                ChangeOp::Delete {
                    uid: uid.as_str().into(),
                    key: ObjectKey::new(kind(*id), "ns", format!("cm-{id}")),
                }
            }
        };
        let change = Change { seq, ts_ms: 0, op };
        apply(&mut live, &change);
        history.push(live.clone());
        // As the writer encodes it: updates of objects written before are patches.
        let mut payload = Vec::new();
        change
            .encode_remembering(&mut last_versions, &mut payload)
            .unwrap();
        pending.push((seq, bytes::Bytes::from(payload)));
        if pending.len() >= batch {
            log.append(&pending).await.unwrap();
            pending.clear();
        }
        // Snapshots whose sliced copy ends after this op (or at the last op).
        let ending: Vec<usize> = snapshot_at
            .iter()
            .copied()
            .filter(|&i| i < ops.len() && ((i + lag).min(ops.len() - 1)) == j)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for i in ending {
            let seq = i as u64 + 1;
            // The snapshotter commits only after the writer acknowledged everything the copy
            // may reflect (up to op `j`).
            log.append(&pending).await.unwrap();
            pending.clear();
            let resources = fuzzy_copy(&history, i, j, pick);
            // Slices of a few resources, encoded by one encoder for the whole history, as the
            // server keeps it: parts whose resources did not change since the last snapshot
            // go in as the frames kept from it.
            let slices = SlicedSnapshot::even_slices(resources.len(), SLICE);
            let copy = SlicedSnapshot {
                snapshot: Snapshot {
                    seq,
                    taken_at_ms: 0,
                    resources,
                },
                copied_until: j as u64 + 1,
                slices,
            };
            let blob = encoder.encode(&copy).unwrap();
            if Some(i) == last_snapshot && matches!(crash, Crash::BeforeCommit) {
                // Simulate an interrupted upload: orphan chunks of the next generation.
                let mut conn = redis::Client::open(server.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let next: u64 = conn
                    .hincr(log.keys().snapshot_meta(), "next_gen", 1)
                    .await
                    .unwrap();
                let _: () = conn
                    .set(log.keys().chunk(next, 0), &blob.bytes[..])
                    .await
                    .unwrap();
                continue;
            }
            match log.write_snapshot(&blob).await {
                Ok(_) => {}
                // A snapshot started later but copied faster already committed.
                Err(PersistError::SnapshotSuperseded { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
            if Some(i) == last_snapshot && matches!(crash, Crash::BetweenCommitAndTrim) {
                continue;
            }
            log.trim_to(seq.saturating_sub(retain)).await.unwrap();
        }
    }
    log.append(&pending).await.unwrap();

    let metrics = PersistMetrics::unregistered().unwrap();
    let recovered = recover(&log, &ModelDecoder, 7, &metrics).await.unwrap();
    let mut state = State::new();
    if let Some(snap) = &recovered.snapshot {
        assert_eq!(snap.seq, recovered.snapshot_seq);
        for r in &snap.resources {
            state.insert(r.uid.as_str().to_owned(), r.clone());
        }
    }
    // A patch applies to the object's version at hand; one that does not (the fuzzy copy
    // holds a later version) is skipped, and the object's later changes set it right.
    for logged in recovered.tail.iter().cloned() {
        if let Ok(change) = logged.resolve(|uid| state.get(uid.as_str())) {
            apply(&mut state, &change);
        }
    }
    assert_eq!(recovered.skipped_corrupt, 0);
    assert_eq!(recovered.gaps, 0);
    assert_eq!(recovered.last_seq, ops.len() as u64);
    assert_eq!(state, live);
    if matches!(crash, Crash::BeforeCommit) && last_snapshot.is_some() {
        assert!(
            log.sweep_orphans().await.unwrap() == 0,
            "recovery swept the orphans"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn load_plus_replay_equals_live_state(
        ops in prop::collection::vec(op(), 1..80),
        snapshot_at in prop::collection::vec(0usize..80, 0..4),
        batch in 1usize..20,
        retain in 0u64..10,
        crash in crash(),
        lag in prop_oneof![Just(0usize), 1usize..6],
        pick in any::<u64>(),
    ) {
        let server = SERVER.with(|s| s.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_case(&server, ops, snapshot_at, batch, retain, crash, lag, pick));
    }
}

thread_local! {
    static SERVER: Arc<RedisServer> = Arc::new(RedisServer::start().unwrap());
}
