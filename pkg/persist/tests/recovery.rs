#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Recovery against a real redis-server: snapshot + replay, corrupt entries, refused snapshots.

mod common;

use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, EventLog, Fallback, PersistMetrics, SnapshotBlob, recover,
};
use astrolabe_testkit::RedisServer;
use bytes::Bytes;
use common::{ToyDecoder, batch, log, raw};
use redis::AsyncCommands;

fn toy_snapshot(seq: u64, version: u8) -> SnapshotBlob {
    SnapshotBlob {
        taken_at_ms: 0,
        zstd_raw_len: None,
        seq,
        copied_until: seq,
        resource_count: 0,
        bytes: Bytes::from(vec![version, 0xaa, 0xbb]),
    }
}

#[tokio::test]
async fn snapshot_plus_tail() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=2500)).await.unwrap();
    log.write_snapshot(&toy_snapshot(1200, 1)).await.unwrap();
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, 1000, &m).await.unwrap();
    assert_eq!(r.snapshot.as_deref(), Some(&[0xaa, 0xbb][..]));
    assert_eq!(r.snapshot_seq, 1200);
    assert_eq!(r.tail, (1201..=2500).collect::<Vec<_>>());
    assert_eq!((r.last_seq, r.skipped_corrupt, r.gaps), (2500, 0, 0));
    assert_eq!(m.replayed_entries.get(), 1300);
}

#[tokio::test]
async fn corrupt_entries_are_skipped_and_counted() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=4)).await.unwrap();
    let mut conn = raw(&server).await;
    let events = log.keys().events().to_owned();
    let _: String = conn
        .xadd(&events, "5-1", &[("c", &b"\x01garbage"[..])])
        .await
        .unwrap();
    let _: String = conn.xadd(&events, "6-1", &[("other", "x")]).await.unwrap();
    // A packed entry of an unknown container version, and one cut short.
    let _: String = conn
        .xadd(&events, "8-1", &[("p", &[9u8, 2, 0, 0, 0][..])])
        .await
        .unwrap();
    let _: String = conn
        .xadd(&events, "10-1", &[("p", &[2u8, 2, 0, 0, 0, 9][..])])
        .await
        .unwrap();
    log.append(&batch(11..=13)).await.unwrap();
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert!(r.snapshot.is_none());
    assert_eq!(r.tail, vec![1, 2, 3, 4, 11, 12, 13]);
    assert_eq!(r.skipped_corrupt, 4);
    assert_eq!(m.corrupt_entries.get(), 4);
    assert_eq!(
        r.gaps, 0,
        "a defective entry is counted as corrupt, not as a hole"
    );
    assert_eq!(r.last_seq, 13);
}

#[tokio::test]
async fn corrupt_snapshot_falls_back_to_full_stream() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=10)).await.unwrap();
    let meta = log.write_snapshot(&toy_snapshot(5, 1)).await.unwrap();
    let mut conn = raw(&server).await;
    let _: () = conn
        .set(log.keys().chunk(meta.generation, 0), "junk")
        .await
        .unwrap();
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, 3, &m).await.unwrap();
    assert!(r.snapshot.is_none());
    assert!(r.snapshot_refused.is_some());
    assert_eq!(
        r.tail,
        (1..=10).collect::<Vec<_>>(),
        "stream still starts at 1"
    );
    assert_eq!(r.last_seq, 10);
    assert_eq!(r.fallback, Some(Fallback::WholeStream));
    assert_eq!(fallbacks(&m, Fallback::WholeStream), 1);
}

fn fallbacks(m: &PersistMetrics, used: Fallback) -> u64 {
    m.recovery_fallbacks
        .with_label_values(&[used.as_str()])
        .get()
}

/// A damage done to the committed snapshot's keys.
#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipByte,
    Truncate,
    DeleteChunk,
    CorruptMeta,
}

/// Two snapshot generations (at 400 and 800, chunked), the stream trimmed as far as it may be
/// and going on to 1000; then `damage` to the committed one. Recovery must yield the full
/// state: the previous generation and the stream after it.
async fn recovers_through_previous_generation(damage: Damage) {
    let server = RedisServer::start().unwrap();
    let log = common::log_with(&server, |c| c.chunk_size = 16);
    common::append_in(&log, 1..=1000, 100).await;
    let snapshot = |seq: u64| {
        let mut bytes = vec![1u8];
        bytes.extend((0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        bytes.extend_from_slice(&seq.to_le_bytes());
        common::blob(seq, bytes)
    };
    let previous = log.write_snapshot(&snapshot(400)).await.unwrap();
    let committed = log.write_snapshot(&snapshot(800)).await.unwrap();
    assert!(committed.chunks > 2, "{committed:?}");
    assert_eq!(
        log.trim_to(800).await.unwrap().upto,
        400,
        "trimmed behind the previous generation only"
    );
    let first = log.first_seq().await.unwrap().unwrap();
    assert!(first > 1 && first <= 401, "{first}");

    let mut conn = raw(&server).await;
    let chunk = log.keys().chunk(committed.generation, 1);
    match damage {
        Damage::FlipByte => {
            let mut bytes: Vec<u8> = conn.get(&chunk).await.unwrap();
            bytes[3] ^= 0x01;
            let _: () = conn.set(&chunk, bytes).await.unwrap();
        }
        Damage::Truncate => {
            let bytes: Vec<u8> = conn.get(&chunk).await.unwrap();
            let _: () = conn.set(&chunk, &bytes[..bytes.len() / 2]).await.unwrap();
        }
        Damage::DeleteChunk => {
            let _: () = conn.del(&chunk).await.unwrap();
        }
        Damage::CorruptMeta => {
            let _: () = conn
                .hset(log.keys().snapshot_meta(), "chunks", "lots")
                .await
                .unwrap();
        }
    }
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, 7, &m).await.unwrap();
    assert!(r.snapshot_refused.is_some(), "{damage:?}");
    assert_eq!(r.fallback, Some(Fallback::PreviousSnapshot), "{damage:?}");
    assert_eq!(
        r.snapshot.as_deref(),
        Some(&snapshot(400).bytes[1..]),
        "{damage:?}"
    );
    assert_eq!(r.snapshot_seq, previous.covered_seq);
    assert_eq!(r.tail, (401..=1000).collect::<Vec<_>>(), "{damage:?}");
    assert_eq!((r.last_seq, r.gaps, r.skipped_corrupt), (1000, 0, 0));
    assert_eq!(m.refused_snapshots.get(), 1);
    assert_eq!(fallbacks(&m, Fallback::PreviousSnapshot), 1);

    // The next commit replaces the refused generation without keeping it as the previous one:
    // the generation recovery used stays the fallback, and the stream after it stays.
    let repaired = log.write_snapshot(&snapshot(1000)).await.unwrap();
    let kept = log.load_previous_snapshot().await.unwrap().unwrap();
    assert_eq!(kept.meta, previous, "{damage:?}");
    assert_eq!(log.trim_to(1000).await.unwrap().upto, 400, "{damage:?}");
    let r = recover(&log, &ToyDecoder, 7, &m).await.unwrap();
    assert_eq!(r.snapshot_seq, repaired.covered_seq, "{damage:?}");
    assert!(r.snapshot_refused.is_none(), "{damage:?}");
    for i in 0..committed.chunks {
        let gone: Option<Vec<u8>> = conn
            .get(log.keys().chunk(committed.generation, i))
            .await
            .unwrap();
        assert!(gone.is_none(), "{damage:?}: refused chunk {i} is unlinked");
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_chunk_falls_back_to_the_previous_generation() {
    recovers_through_previous_generation(Damage::FlipByte).await;
}

#[tokio::test]
async fn a_truncated_chunk_falls_back_to_the_previous_generation() {
    recovers_through_previous_generation(Damage::Truncate).await;
}

#[tokio::test]
async fn a_missing_chunk_falls_back_to_the_previous_generation() {
    recovers_through_previous_generation(Damage::DeleteChunk).await;
}

#[tokio::test]
async fn corrupt_metadata_falls_back_to_the_previous_generation() {
    recovers_through_previous_generation(Damage::CorruptMeta).await;
}

#[tokio::test]
async fn refused_snapshot_with_trimmed_stream_starts_empty_and_keeps_keys() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    common::append_in(&log, 1..=1000, 100).await;
    // Unknown payload versions inside valid containers, in both kept generations.
    log.write_snapshot(&toy_snapshot(700, 7)).await.unwrap();
    let meta = log.write_snapshot(&toy_snapshot(800, 7)).await.unwrap();
    log.trim_to(800).await.unwrap();
    assert!(log.first_seq().await.unwrap().unwrap() > 1);
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &ToyDecoder, 100, &m).await.unwrap();
    assert!(r.snapshot.is_none());
    assert!(r.tail.is_empty(), "never half-applied");
    assert_eq!(r.fallback, Some(Fallback::Nothing));
    assert_eq!(fallbacks(&m, Fallback::Nothing), 1);
    assert!(
        r.snapshot_refused
            .unwrap()
            .contains("unknown snapshot format version 7")
    );
    assert_eq!(
        r.last_seq, 1000,
        "new changes continue after the stream's top"
    );
    // Old keys untouched.
    assert_eq!(log.snapshot_meta().await.unwrap().unwrap(), meta);
    assert_eq!(log.last_seq().await.unwrap(), Some(1000));
}

/// A keyed decoder (the model's: changes keyed by UID) replays only the last change per
/// object, in order; an undecodable last change falls back to the one before it, as replaying
/// every change would have.
#[tokio::test]
async fn only_the_last_change_per_object_is_decoded() {
    use astrolabe_model::{Change, ChangeOp, Kind, ObjectKey, Resource, codec};
    use std::sync::Arc;

    let upsert = |seq: u64, uid: &str, version: &str| {
        let mut r = Resource::new(uid, Kind::ConfigMap, "ns", uid);
        r.resource_version = version.into();
        Change {
            seq,
            ts_ms: 0,
            op: ChangeOp::Upsert(Arc::new(r)),
        }
    };
    let changes = [
        upsert(1, "a", "1"),
        upsert(2, "b", "1"),
        upsert(3, "a", "2"),
        upsert(4, "c", "1"),
        Change {
            seq: 5,
            ts_ms: 0,
            op: ChangeOp::Delete {
                uid: "b".into(),
                key: ObjectKey::new(Kind::ConfigMap, "ns", "b"),
            },
        },
    ];
    let mut entries: Vec<(u64, Bytes)> = changes
        .iter()
        .map(|c| (c.seq, Bytes::from(codec::encode_change(c).unwrap())))
        .collect();
    // a's last change: its UID is readable, the rest is cut short.
    let cut = codec::encode_change(&upsert(6, "a", "3")).unwrap();
    let uid_end = codec::change_uid_range(&cut).unwrap().end;
    entries.push((6, Bytes::copy_from_slice(&cut[..uid_end + 2])));
    let (_server, r, m) = recovered_from(&entries).await;
    let seqs: Vec<u64> = r.tail.iter().map(codec::Logged::seq).collect();
    assert_eq!(
        seqs,
        vec![3, 4, 5],
        "a's previous change stands in for its corrupt last"
    );
    assert_eq!(r.tail[0], codec::Logged::Change(changes[2].clone()));
    assert_eq!((r.superseded, r.skipped_corrupt, r.last_seq), (2, 1, 6));
    assert_eq!(m.superseded_entries.get(), 2);
    assert_eq!(m.corrupt_entries.get(), 1);
    assert_eq!(m.replayed_entries.get(), 6, "every change read is counted");
}

/// Patches need the changes before them: recovery keeps an object's last change with every
/// patch back to its last whole change (or the start of the tail, whose base is the snapshot).
/// A corrupt patch in a chain ends what can be applied: the patches after it are lost with it.
#[tokio::test]
async fn a_patch_keeps_the_changes_it_needs() {
    use astrolabe_model::{Change, ChangeOp, Kind, Resource, codec};
    use astrolabe_persist::{LastVersions, Record};
    use std::sync::Arc;

    let version = |uid: &str, rv: &str| {
        let mut r = Resource::new(uid, Kind::ConfigMap, "ns", uid);
        r.resource_version = rv.into();
        r.labels.insert("rv", rv);
        Arc::new(r)
    };
    let change = |seq: u64, r: &Arc<Resource>| Change {
        seq,
        ts_ms: 0,
        op: ChangeOp::Upsert(r.clone()),
    };
    // The writer's memory already holds b (the snapshot has it): b's changes are all patches.
    let mut memory = LastVersions::default();
    let mut encode = |c: &Change| {
        let mut out = Vec::new();
        c.encode_remembering(&mut memory, &mut out).unwrap();
        Bytes::from(out)
    };
    encode(&change(0, &version("b", "1")));
    let changes = [
        change(1, &version("a", "1")),
        change(2, &version("b", "2")),
        change(3, &version("a", "2")),
        change(4, &version("b", "3")),
        change(5, &version("a", "3")),
        change(6, &version("a", "4")),
        change(7, &version("c", "1")),
        change(8, &version("c", "2")),
        change(9, &version("c", "3")),
    ];
    let mut entries: Vec<(u64, Bytes)> = changes.iter().map(|c| (c.seq, encode(c))).collect();
    assert!(
        entries
            .iter()
            .filter(|(s, _)| ![1, 7].contains(s))
            .all(|(_, p)| codec::is_patch(p)),
        "every update of an object written before is a patch"
    );
    // c's second change: its UID is readable, the rest is cut short.
    let (_, cut) = &entries[7];
    let end = match codec::change_uid(cut).unwrap() {
        astrolabe_model::patch::UidAt::Text(_) => 4,
        astrolabe_model::patch::UidAt::Range(r) => r.end,
    };
    entries[7].1 = cut.slice(..end + 1);
    let (_server, r, _) = recovered_from(&entries).await;
    let seqs: Vec<u64> = r.tail.iter().map(codec::Logged::seq).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5, 6, 7],
        "a's chain back to its whole change, b's to the start, c's up to its corrupt patch"
    );
    assert_eq!(
        (r.superseded, r.skipped_corrupt),
        (0, 2),
        "c's corrupt patch and the one after it"
    );
    // Resolved in order against the snapshot's b, the chains give each object's last version.
    let mut state: std::collections::HashMap<String, Arc<Resource>> =
        [("b".to_owned(), version("b", "1"))].into();
    for logged in r.tail {
        let c = logged.resolve(|uid| state.get(uid.as_str())).unwrap();
        if let ChangeOp::Upsert(v) = c.op {
            state.insert(v.uid.as_str().to_owned(), v);
        }
    }
    assert_eq!(state["a"], version("a", "4"));
    assert_eq!(state["b"], version("b", "3"));
    assert_eq!(state["c"], version("c", "1"));
}

/// What recovery (2 changes a page, the model's decoder) makes of a log holding `entries`; the
/// server it ran against, and the metrics it counted in.
async fn recovered_from(
    entries: &[(u64, Bytes)],
) -> (
    RedisServer,
    astrolabe_persist::Recovered<astrolabe_model::codec::Snapshot, astrolabe_model::codec::Logged>,
    PersistMetrics,
) {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(entries).await.unwrap();
    let m = PersistMetrics::unregistered().unwrap();
    let r = recover(&log, &astrolabe_persist::ModelDecoder, 2, &m)
        .await
        .unwrap();
    (server, r, m)
}
