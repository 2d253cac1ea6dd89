#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The in-memory event log: the behaviours every `EventLog` shares (`common::behaviour`), and
//! recovery from it.

mod common;

use std::time::Duration;

use astrolabe_persist::{HistoryRetention, MemoryLog, PersistMetrics, recover};
use common::behaviour;

/// Keeps every checkpoint of the last hour.
const KEEP_ALL: HistoryRetention = HistoryRetention {
    max_age: Duration::from_secs(3600),
    max_changes: u64::MAX,
};

#[tokio::test]
async fn appends_are_idempotent() {
    behaviour::appends_are_idempotent(&MemoryLog::default()).await;
}

#[tokio::test]
async fn an_empty_log_reads_empty() {
    behaviour::an_empty_log_reads_empty(&MemoryLog::default()).await;
}

#[tokio::test]
async fn reads_page_and_start_inside_a_batch() {
    behaviour::reads_page_and_start_inside_a_batch(&MemoryLog::default()).await;
}

#[tokio::test]
async fn snapshots_keep_the_previous_and_refuse_stale() {
    behaviour::snapshots_keep_the_previous_and_refuse_stale(&MemoryLog::default()).await;
}

#[tokio::test]
async fn a_compressed_snapshot_is_stored_as_it_is() {
    behaviour::a_compressed_snapshot_is_stored_as_it_is(&MemoryLog::default()).await;
}

#[tokio::test]
async fn the_stream_is_trimmed_behind_the_previous_generation() {
    behaviour::the_stream_is_trimmed_behind_the_previous_generation(&MemoryLog::default()).await;
}

#[tokio::test]
async fn a_refused_generation_is_not_kept() {
    behaviour::a_refused_generation_is_not_kept(&MemoryLog::default()).await;
}

#[tokio::test]
async fn a_refused_generation_goes_and_older_checkpoints_stay() {
    behaviour::a_refused_generation_goes_and_older_checkpoints_stay(&MemoryLog::new(KEEP_ALL))
        .await;
}

#[tokio::test]
async fn changes_beyond_a_ceiling_are_set_aside() {
    behaviour::changes_beyond_a_ceiling_are_set_aside(&MemoryLog::default()).await;
}

#[tokio::test]
async fn every_retained_checkpoint_loads() {
    behaviour::every_retained_checkpoint_loads(&MemoryLog::new(KEEP_ALL)).await;
}

#[tokio::test]
async fn retention_drops_what_no_point_inside_it_needs() {
    let log = MemoryLog::new(HistoryRetention {
        max_changes: 1500,
        ..KEEP_ALL
    });
    behaviour::retention_drops_what_no_point_inside_it_needs(&log).await;
}

/// Clones share one log: what the writer's clone appends and commits, another clone reads.
#[tokio::test]
async fn clones_share_one_log() {
    let log = MemoryLog::default();
    let reader = log.clone();
    common::append_in(&log, 1..=5, 2).await;
    astrolabe_persist::EventLog::write_snapshot(&log, &common::toy_snapshot(3))
        .await
        .unwrap();
    assert_eq!(common::all_seqs(&reader).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(reader.bytes(), log.bytes());
    let recovered = recover(
        &reader,
        &common::ToyDecoder,
        100,
        &PersistMetrics::unregistered().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(recovered.snapshot, Some(vec![0xaa]));
    assert_eq!(recovered.snapshot_seq, 3);
    assert_eq!(recovered.tail, vec![4, 5]);
    assert_eq!(recovered.last_seq, 5);
}

#[tokio::test]
async fn gaps_are_kept_and_read_by_overlap() {
    let log = MemoryLog::new(HistoryRetention {
        max_age: std::time::Duration::from_secs(3_600),
        ..KEEP_ALL
    });
    behaviour::gaps_are_kept_and_read_by_overlap(&log).await;
}

/// A change is kept in its own allocation, not as a slice of the batch buffer it came in
/// (the writer's buffers are sized for the largest batch: kept slices would pin them whole).
#[tokio::test]
async fn changes_do_not_keep_the_batch_buffer() {
    let log = MemoryLog::default();
    let buffer = bytes::Bytes::from(vec![7u8; 1 << 20]);
    let range = buffer.as_ptr_range();
    astrolabe_persist::EventLog::append(&log, &[(1, buffer.slice(0..10))])
        .await
        .unwrap();
    let read = astrolabe_persist::EventLog::read_after(&log, 0, 10)
        .await
        .unwrap();
    assert_eq!(read[0].payload.len(), 10);
    assert!(
        !range.contains(&read[0].payload.as_ptr()),
        "the kept payload is a copy"
    );
}
