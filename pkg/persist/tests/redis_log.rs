#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Redis event log against a real redis-server.

mod common;

use std::time::Duration;

use astrolabe_persist::{EventLog, HistoryRetention, PersistError};
use astrolabe_testkit::RedisServer;
use common::{all_seqs, append_in, batch, behaviour, blob, commit_each, log, log_with, raw};
use rand::RngCore;
use redis::AsyncCommands;

#[tokio::test]
async fn append_is_idempotent() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    behaviour::appends_are_idempotent(&log).await;
    // An overlapping batch packed differently is one new entry: all of it counts as appended.
    let overlap = log.append(&batch(14..=20)).await.unwrap();
    assert_eq!((overlap.appended, overlap.already_present), (7, 0));
}

#[tokio::test]
async fn a_batch_is_one_entry_and_a_retry_after_partial_success_completes_it() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let mut conn = raw(&server).await;
    let events = log.keys().events().to_owned();
    // 3000 changes: three entries of at most ENTRY_MAX_CHANGES.
    let big = batch(1..=3000);
    let out = log.append(&big).await.unwrap();
    assert_eq!(out.appended, 3000);
    let len: u64 = conn.xlen(&events).await.unwrap();
    assert_eq!(len, 3);
    // What a cut-off pipeline leaves: the first entries of a batch written, the rest not.
    let _: () = conn.del(&events).await.unwrap();
    log.append(&big[..1024]).await.unwrap();
    let retry = log.append(&big).await.unwrap();
    assert_eq!((retry.appended, retry.already_present), (3000 - 1024, 1024));
    assert_eq!(all_seqs(&log).await, (1..=3000).collect::<Vec<_>>());
}

#[tokio::test]
async fn empty_stream_reads() {
    let server = RedisServer::start().unwrap();
    behaviour::an_empty_log_reads_empty(&log(&server)).await;
}

#[tokio::test]
async fn read_after_pages_by_entries_and_starts_inside_an_entry() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    append_in(&log, 1..=2500, 100).await;
    let mut after = 0;
    let mut sizes = Vec::new();
    loop {
        let page = log.read_after(after, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert_eq!(page[0].seq, after + 1, "exclusive start");
        assert_eq!(page[0].payload, common::payload(after + 1));
        sizes.push(page.len());
        after = page.last().unwrap().seq;
    }
    assert_eq!(sizes, vec![1000, 1000, 500], "10 entries of 100 per page");
    // A start in the middle of an entry (a snapshot covering part of a batch).
    let page = log.read_after(1234, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1235..=1400).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn legacy_single_change_entries_are_read_and_unknown_formats_are_defects() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let mut conn = raw(&server).await;
    let events = log.keys().events().to_owned();
    // Format 1: one change per entry in field `c`, as earlier builds wrote.
    for seq in 1..=3u64 {
        let _: String = conn
            .xadd(
                &events,
                format!("{seq}-1"),
                &[("c", &common::payload(seq)[..])],
            )
            .await
            .unwrap();
    }
    log.append(&batch(4..=6)).await.unwrap();
    // A packed entry of a future format version, then a good one.
    let _: String = conn
        .xadd(&events, "9-1", &[("p", &[9u8, 1, 0, 0, 0][..])])
        .await
        .unwrap();
    log.append(&batch(10..=11)).await.unwrap();
    let page = log.read_after(0, 100).await.unwrap();
    let good: Vec<u64> = page
        .iter()
        .filter(|e| e.defect.is_none())
        .map(|e| e.seq)
        .collect();
    assert_eq!(good, vec![1, 2, 3, 4, 5, 6, 10, 11]);
    let defect = page.iter().find(|e| e.defect.is_some()).unwrap();
    assert_eq!(defect.seq, 9);
    assert!(
        defect
            .defect
            .as_deref()
            .unwrap()
            .contains("unknown entry format version 9"),
        "{defect:?}"
    );
    assert_eq!(log.first_seq().await.unwrap(), Some(1));
    assert_eq!(log.last_seq().await.unwrap(), Some(11));
}

#[tokio::test]
async fn snapshot_round_trip_across_chunks() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| c.chunk_size = 4 << 20);
    let mut data = vec![0u8; 10 << 20];
    rand::rng().fill_bytes(&mut data);
    let meta = log.write_snapshot(&blob(42, data.clone())).await.unwrap();
    assert_eq!(
        meta.chunks, 3,
        "10 MiB of incompressible bytes in 4 MiB chunks"
    );
    assert_eq!(meta.covered_seq, 42);
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(loaded.meta, meta);
    assert!(loaded.decompress().unwrap() == data);

    // A new generation replaces the old one, which stays as the previous generation.
    let meta2 = log.write_snapshot(&blob(43, vec![7u8; 100])).await.unwrap();
    assert!(meta2.generation > meta.generation);
    let mut conn = raw(&server).await;
    let keys: Vec<String> = conn.keys("astrolabe:{test}:snapshot:*").await.unwrap();
    assert_eq!(keys.len(), 6, "two records, 3 + 1 chunks: {keys:?}");
    let previous = log.load_previous_snapshot().await.unwrap().unwrap();
    assert_eq!(previous.meta, meta);
    assert!(previous.decompress().unwrap() == data);
    assert_eq!(
        &log.load_snapshot()
            .await
            .unwrap()
            .unwrap()
            .decompress()
            .unwrap()[..],
        &[7u8; 100][..]
    );

    // An older snapshot never replaces a newer one.
    let stale = log.write_snapshot(&blob(10, vec![1])).await;
    assert!(matches!(
        stale,
        Err(PersistError::SnapshotSuperseded {
            committed_seq: 43,
            ..
        })
    ));
    assert_eq!(log.snapshot_meta().await.unwrap().unwrap().covered_seq, 43);
}

#[tokio::test]
async fn crash_between_upload_and_commit_leaves_previous_snapshot() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| c.chunk_size = 1024);
    let committed = log.write_snapshot(&blob(5, vec![5u8; 3000])).await.unwrap();
    // What an interrupted upload leaves: chunks of a newer generation, no commit.
    let mut conn = raw(&server).await;
    let keys = log.keys().clone();
    let orphan_gen = committed.generation + 1;
    let _: u64 = conn
        .hincr(keys.snapshot_meta(), "next_gen", 1)
        .await
        .unwrap();
    for i in 0..3 {
        let _: () = conn
            .set(keys.chunk(orphan_gen, i), vec![9u8; 1024])
            .await
            .unwrap();
    }
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(loaded.meta.generation, committed.generation);
    assert_eq!(&loaded.decompress().unwrap()[..], &[5u8; 3000][..]);

    assert_eq!(log.sweep_orphans().await.unwrap(), 3);
    assert_eq!(log.sweep_orphans().await.unwrap(), 0);
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(&loaded.decompress().unwrap()[..], &[5u8; 3000][..]);
    // The next snapshot gets a fresh generation, not the orphan's.
    let next = log.write_snapshot(&blob(6, vec![6u8; 10])).await.unwrap();
    assert!(next.generation > orphan_gen);
}

/// A record of an unknown format is refused by recovery and by the sweep, and its chunks stay
/// (they may belong to a newer build); the first new snapshot replaces the record, whatever
/// sequence it claims, and still leaves those chunks.
#[tokio::test]
async fn unknown_snapshot_format_is_refused() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let meta = log.write_snapshot(&blob(50, vec![1u8; 10])).await.unwrap();
    let mut conn = raw(&server).await;
    let _: () = conn
        .hset(log.keys().snapshot_meta(), "format", 99)
        .await
        .unwrap();
    let err = log.load_snapshot().await.unwrap_err();
    assert!(
        matches!(err, PersistError::UnknownFormat { found: 99, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("unknown snapshot format version 99"),
        "{err}"
    );
    // Sweeping refuses too: the chunks of the unknown snapshot stay untouched.
    assert!(log.sweep_orphans().await.is_err());
    let chunk: Option<Vec<u8>> = conn
        .get(log.keys().chunk(meta.generation, 0))
        .await
        .unwrap();
    assert!(chunk.is_some());

    let next = log.write_snapshot(&blob(7, vec![2u8; 10])).await.unwrap();
    assert_eq!(log.snapshot_meta().await.unwrap(), Some(next));
    let chunk: Option<Vec<u8>> = conn
        .get(log.keys().chunk(meta.generation, 0))
        .await
        .unwrap();
    assert!(chunk.is_some());
}

/// A damaged metadata record is refused by recovery, but it must not stop the next snapshot
/// from replacing it: before the commit became one script, every later snapshot failed on it and
/// the stream was never trimmed again.
#[tokio::test]
async fn a_damaged_metadata_record_is_replaced_by_the_next_snapshot() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let first = log.write_snapshot(&blob(5, vec![1u8; 10])).await.unwrap();
    let mut conn = raw(&server).await;
    let _: () = conn
        .hdel(log.keys().snapshot_meta(), "chunks")
        .await
        .unwrap();
    let _: () = conn
        .hset(log.keys().snapshot_meta(), "covered_seq", "many")
        .await
        .unwrap();
    assert!(matches!(
        log.load_snapshot().await.unwrap_err(),
        PersistError::SnapshotMeta(_)
    ));

    let next = log.write_snapshot(&blob(6, vec![2u8; 10])).await.unwrap();
    assert!(next.generation > first.generation);
    let loaded = log.load_snapshot().await.unwrap().unwrap();
    assert_eq!(loaded.meta, next);
    assert_eq!(&loaded.decompress().unwrap()[..], &[2u8; 10][..]);
    // The damaged record could not say how many chunks it had: they are left to the sweep.
    assert_eq!(log.sweep_orphans().await.unwrap(), 1);
}

/// Sequences are compared exactly past 2^53, where a double (Lua's number) would round them
/// equal.
#[tokio::test]
async fn sequences_past_two_to_the_53_are_compared_exactly() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let high = (1u64 << 53) + 1;
    log.write_snapshot(&blob(high, vec![1u8; 10]))
        .await
        .unwrap();
    let stale = log.write_snapshot(&blob(high - 1, vec![2u8; 10])).await;
    assert!(
        matches!(
            stale,
            Err(PersistError::SnapshotSuperseded { committed_seq, .. }) if committed_seq == high
        ),
        "{stale:?}"
    );
    let newer = log
        .write_snapshot(&blob(high + 1, vec![3u8; 10]))
        .await
        .unwrap();
    assert_eq!(newer.covered_seq, high + 1);
    // The two kept generations' chunks and records are left, not the refused one's.
    let keys: Vec<String> = raw(&server)
        .await
        .keys("astrolabe:{test}:snapshot:*")
        .await
        .unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
}

/// The committed generation and the previous one are kept (a third commit unlinks the first),
/// the sweep leaves both, and the stream is trimmed only behind the previous one.
#[tokio::test]
async fn two_generations_are_kept_and_the_stream_is_trimmed_behind_the_older() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| c.chunk_size = 4);
    let [first, second, third] =
        behaviour::the_stream_is_trimmed_behind_the_previous_generation(&log).await;
    let mut conn = raw(&server).await;
    for i in 0..first.chunks {
        let gone: Option<Vec<u8>> = conn
            .get(log.keys().chunk(first.generation, i))
            .await
            .unwrap();
        assert!(
            gone.is_none(),
            "the oldest generation's chunk {i} is unlinked"
        );
    }
    let keys: Vec<String> = conn.keys("astrolabe:{test}:snapshot:*").await.unwrap();
    assert_eq!(
        keys.len() as u64,
        2 + second.chunks + third.chunks,
        "{keys:?}"
    );
}

#[tokio::test]
async fn snapshots_keep_the_previous_and_refuse_stale() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| c.chunk_size = 1000);
    behaviour::snapshots_keep_the_previous_and_refuse_stale(&log).await;
}

#[tokio::test]
async fn a_compressed_snapshot_is_stored_as_it_is() {
    let server = RedisServer::start().unwrap();
    behaviour::a_compressed_snapshot_is_stored_as_it_is(&log(&server)).await;
}

#[tokio::test]
async fn reads_page_and_start_inside_a_batch() {
    let server = RedisServer::start().unwrap();
    behaviour::reads_page_and_start_inside_a_batch(&log(&server)).await;
}

#[tokio::test]
async fn a_refused_generation_is_not_kept() {
    let server = RedisServer::start().unwrap();
    behaviour::a_refused_generation_is_not_kept(&log(&server)).await;
}

#[tokio::test]
async fn changes_beyond_a_ceiling_are_set_aside() {
    let server = RedisServer::start().unwrap();
    behaviour::changes_beyond_a_ceiling_are_set_aside(&log(&server)).await;
}

#[tokio::test]
async fn corrupt_or_missing_chunks_are_refused() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| c.chunk_size = 16);
    let mut data = vec![0u8; 200];
    rand::rng().fill_bytes(&mut data);
    let meta = log.write_snapshot(&blob(5, data)).await.unwrap();
    assert!(meta.chunks > 2);
    let mut conn = raw(&server).await;
    let key = log.keys().chunk(meta.generation, 1);
    let original: Vec<u8> = conn.get(&key).await.unwrap();
    let mut flipped = original.clone();
    flipped[0] ^= 0xff;
    let _: () = conn.set(&key, flipped).await.unwrap();
    let err = log.load_snapshot().await.unwrap_err();
    assert!(matches!(err, PersistError::SnapshotCorrupt { .. }), "{err}");
    let _: () = conn.del(&key).await.unwrap();
    let err = log.load_snapshot().await.unwrap_err();
    assert!(
        matches!(err, PersistError::SnapshotMissingChunk { index: 1, .. }),
        "{err}"
    );
}

/// A payload whose decompressed length is not the one its metadata names is refused, whether
/// it is shorter or longer, when it is read whole or streamed.
#[tokio::test]
async fn a_payload_of_another_length_than_its_metadata_is_refused() {
    use std::io::Read;
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.write_snapshot(&blob(5, vec![3u8; 5000])).await.unwrap();
    let mut conn = raw(&server).await;
    for claimed in [4999u64, 5001] {
        let _: () = conn
            .hset(log.keys().snapshot_meta(), "raw_bytes", claimed)
            .await
            .unwrap();
        let loaded = log.load_snapshot().await.unwrap().unwrap();
        let err = loaded.decompress().unwrap_err();
        assert!(
            matches!(
                err,
                PersistError::SnapshotCorrupt { .. } | PersistError::SnapshotDecode(_)
            ),
            "claimed {claimed}: {err}"
        );
        let mut stream = loaded.stream().unwrap();
        let mut first = [0u8; 100];
        stream.read_exact(&mut first).unwrap();
        assert!(stream.finish().is_err(), "claimed {claimed}");
    }
}

/// Keeps every checkpoint of the last hour.
const KEEP_ALL: HistoryRetention = HistoryRetention {
    max_age: Duration::from_secs(3600),
    max_changes: u64::MAX,
};

/// A log with small chunks that keeps every checkpoint of the last hour.
fn keep_all(server: &RedisServer) -> astrolabe_persist::RedisLog {
    log_with(server, |c| {
        c.chunk_size = 16;
        c.retention = KEEP_ALL;
    })
}

/// Three commits with a retention that keeps them all: three checkpoints, each loads and
/// verifies, the stream is trimmed behind the oldest only; older checkpoints have a record of
/// their own in the checkpoint set.
#[tokio::test]
async fn every_retained_checkpoint_loads() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| {
        c.chunk_size = 256;
        c.retention = KEEP_ALL;
    });
    let listed = behaviour::every_retained_checkpoint_loads(&log).await;
    let mut conn = raw(&server).await;
    let older: Vec<String> = conn.zrange(log.keys().checkpoints(), 0, -1).await.unwrap();
    assert_eq!(older, vec![listed[0].generation.to_string()]);
}

/// A retention that drops the oldest checkpoint: its chunks and record are gone, the
/// checkpoints it keeps load, and the stream is never trimmed past the oldest kept one.
#[tokio::test]
async fn retention_drops_what_no_point_inside_it_needs() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| {
        c.chunk_size = 16;
        c.retention = HistoryRetention {
            max_changes: 1500,
            ..KEEP_ALL
        };
    });
    let dropped = behaviour::retention_drops_what_no_point_inside_it_needs(&log).await;
    let mut conn = raw(&server).await;
    for i in 0..dropped.chunks {
        let gone: Option<Vec<u8>> = conn
            .get(log.keys().chunk(dropped.generation, i))
            .await
            .unwrap();
        assert!(gone.is_none(), "chunk {i} of the dropped checkpoint");
    }
    let record: bool = conn
        .exists(log.keys().checkpoint_meta(dropped.generation))
        .await
        .unwrap();
    assert!(!record, "the dropped checkpoint's record");
    let older: Vec<String> = conn.zrange(log.keys().checkpoints(), 0, -1).await.unwrap();
    assert_eq!(older, vec![(dropped.generation + 1).to_string()]);
    assert_eq!(log.sweep_orphans().await.unwrap(), 0, "nothing left over");
}

/// A crash between upload and commit while older checkpoints are retained: the sweep removes
/// the uncommitted chunks only, and every retained checkpoint still loads.
#[tokio::test]
async fn the_sweep_leaves_retained_checkpoints() {
    let server = RedisServer::start().unwrap();
    let log = keep_all(&server);
    let commits = commit_each(&log, &[10, 20, 30, 40], 1, 100).await;
    let mut conn = raw(&server).await;
    let orphan_gen = commits[3].generation + 1;
    let _: u64 = conn
        .hincr(log.keys().snapshot_meta(), "next_gen", 1)
        .await
        .unwrap();
    for i in 0..3 {
        let _: () = conn
            .set(log.keys().chunk(orphan_gen, i), vec![9u8; 16])
            .await
            .unwrap();
    }
    assert_eq!(log.sweep_orphans().await.unwrap(), 3);
    assert_eq!(log.checkpoints().await.unwrap(), commits);
    for meta in &commits {
        let loaded = log.load_checkpoint(meta.generation).await.unwrap().unwrap();
        assert!(loaded.decompress().unwrap() == vec![1u8; 100]);
    }
}

#[tokio::test]
async fn a_refused_generation_goes_and_older_checkpoints_stay() {
    let server = RedisServer::start().unwrap();
    let log = keep_all(&server);
    behaviour::a_refused_generation_goes_and_older_checkpoints_stay(&log).await;
    assert_eq!(log.sweep_orphans().await.unwrap(), 0, "nothing left over");
}

/// An older checkpoint whose record is gone is left out of the list (it cannot be loaded),
/// the next commit drops it from the set, and the sweep then removes its chunks.
#[tokio::test]
async fn a_checkpoint_without_its_record_is_left_out_then_swept() {
    let server = RedisServer::start().unwrap();
    let log = keep_all(&server);
    let commits = commit_each(&log, &[10, 20, 30], 1, 40).await;
    let lost = commits[0].clone();
    let mut conn = raw(&server).await;
    let _: () = conn
        .del(log.keys().checkpoint_meta(lost.generation))
        .await
        .unwrap();
    assert_eq!(log.checkpoints().await.unwrap(), commits[1..].to_vec());
    assert!(
        log.load_checkpoint(lost.generation)
            .await
            .unwrap()
            .is_none()
    );
    let next = log.write_snapshot(&blob(40, vec![1u8; 40])).await.unwrap();
    let older: Vec<String> = conn.zrange(log.keys().checkpoints(), 0, -1).await.unwrap();
    assert_eq!(older, vec![commits[1].generation.to_string()]);
    assert_eq!(log.sweep_orphans().await.unwrap(), lost.chunks);
    let listed = log.checkpoints().await.unwrap();
    assert_eq!(listed, vec![commits[1].clone(), commits[2].clone(), next]);
}

/// A checkpoint set holding another Redis type never stops a commit: the generations it would
/// keep are unlinked as with two generations, and the key is left as it is.
#[tokio::test]
async fn a_checkpoint_set_of_another_type_does_not_stop_commits() {
    let server = RedisServer::start().unwrap();
    let log = keep_all(&server);
    let mut conn = raw(&server).await;
    let _: () = conn.set(log.keys().checkpoints(), "garbage").await.unwrap();
    let commits = commit_each(&log, &[10, 20, 30], 1, 40).await;
    assert_eq!(
        log.load_previous_snapshot().await.unwrap().unwrap().meta,
        commits[1]
    );
    let gone: Option<Vec<u8>> = conn
        .get(log.keys().chunk(commits[0].generation, 0))
        .await
        .unwrap();
    assert!(gone.is_none());
    let kept: String = conn.get(log.keys().checkpoints()).await.unwrap();
    assert_eq!(kept, "garbage");
}

#[tokio::test]
async fn gaps_are_kept_and_read_by_overlap() {
    let server = RedisServer::start().unwrap();
    let log = log_with(&server, |c| {
        c.retention = HistoryRetention {
            max_age: std::time::Duration::from_secs(3_600),
            ..KEEP_ALL
        };
    });
    behaviour::gaps_are_kept_and_read_by_overlap(&log).await;
    // A record that does not read is skipped, not an error.
    let mut conn = raw(&server).await;
    let _: () = conn
        .zadd(log.keys().gaps(), "not a gap", astrolabe_model::now_ms())
        .await
        .unwrap();
    assert_eq!(log.gaps(i64::MIN, i64::MAX).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_tail_waits_for_the_next_entries_and_starts_inside_a_batch() {
    let server = RedisServer::start().unwrap();
    common::a_tail_waits_for_the_next_entries_and_starts_inside_a_batch(&log(&server), || {
        server.command_line("CLIENT LIST").unwrap_or_default()
    })
    .await;
}
