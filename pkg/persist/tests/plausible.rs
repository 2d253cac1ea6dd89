#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sequences beyond the plausible ceiling against a real redis-server: an entry near 2^64 is
//! corrupt, never trusted for the sequence, and set aside so appends after it succeed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use astrolabe_persist::{
    ChangeSender, DEFAULT_REPLAY_PAGE, EventLog, PersistMetrics, RedisLog, Result, SendOutcome,
    SnapshotBlob, Writer, WriterConfig, WriterHandle, recover, wait_acked,
};
use astrolabe_testkit::RedisServer;
use bytes::Bytes;
use common::{ToyDecoder, batch, log, payload, raw, toy_snapshot};
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

/// Where a stray writer (or garbage) put an entry: 616 sequences below `u64::MAX`.
const NEAR_WRAP: &str = "18446744073709551000-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_near_wraparound_is_set_aside_and_later_changes_persist() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=50)).await.unwrap();
    log.write_snapshot(&toy_snapshot(20)).await.unwrap();
    let events = log.keys().events().to_owned();
    let mut conn = raw(&server).await;
    let _: String = conn
        .xadd(&events, NEAR_WRAP, &[("p", &b"\x02garbage"[..])])
        .await
        .unwrap();

    let m = PersistMetrics::unregistered().unwrap();
    let first = recover(&log, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert_eq!(first.tail, (21..=50).collect::<Vec<_>>());
    assert_eq!(first.last_seq, 50, "the implausible entry is not trusted");
    assert_eq!(first.implausible_top, Some(18_446_744_073_709_551_000));
    assert_eq!(first.skipped_corrupt, 1);
    assert_eq!(m.corrupt_entries.get(), 1);
    assert_eq!(m.streams_set_aside.get(), 1);
    let aside = first.set_aside.clone().expect("the stream is set aside");
    assert_eq!(aside.entries, 1);
    // Nothing is deleted: the whole stream, as found, is under the new key.
    let kept: u64 = conn.xlen(&aside.key).await.unwrap();
    assert_eq!(kept, aside.kept + 1);
    assert!(aside.key.starts_with(&format!("{events}:damaged:")));

    // Continue the sequence as the server does, and append 1,000 changes through the writer.
    let cancel = CancellationToken::new();
    let source = Arc::new(|| -> Result<SnapshotBlob> { Ok(toy_snapshot(20)) });
    let (tx, handle) = writer(&log, source, first.last_seq, &m, &cancel);
    let mut acked = handle.acked_seq();
    let mut last = first.last_seq;
    for _ in 0..1000 {
        last = last.checked_add(1).expect("the sequence never wraps");
        assert_eq!(tx.send((last, payload(last))), SendOutcome::Queued);
    }
    astrolabe_testkit::within(
        Duration::from_secs(30),
        "every change acknowledged",
        wait_acked(&mut acked, last),
    )
    .await
    .unwrap()
    .unwrap();
    cancel.cancel();
    drop(tx);
    handle.join().await.unwrap();
    assert!(!handle_diverged(&m), "no change was dropped");

    // A restart recovers every change.
    let m = PersistMetrics::unregistered().unwrap();
    let second = recover(&log, &ToyDecoder, DEFAULT_REPLAY_PAGE, &m)
        .await
        .unwrap();
    assert_eq!(second.tail, (21..=1050).collect::<Vec<_>>());
    assert_eq!((second.last_seq, second.skipped_corrupt), (1050, 0));
    assert_eq!((second.implausible_top, second.set_aside), (None, None));
}

/// A writer on `log` continuing after `start_seq`, retrying fast.
fn writer(
    log: &RedisLog,
    source: Arc<impl Fn() -> Result<SnapshotBlob> + Send + Sync + 'static>,
    start_seq: u64,
    m: &PersistMetrics,
    cancel: &CancellationToken,
) -> (ChangeSender<(u64, Bytes)>, WriterHandle) {
    Writer::spawn(
        log.clone(),
        source,
        WriterConfig {
            start_seq,
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(100),
            ..WriterConfig::default()
        },
        m.clone(),
        cancel.clone(),
    )
}

fn handle_diverged(m: &PersistMetrics) -> bool {
    m.diverged.get() != 0 || m.dropped_changes.get() != 0
}

#[tokio::test]
async fn read_state_counts_an_implausible_top_but_changes_nothing() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    log.append(&batch(1..=5)).await.unwrap();
    let events = log.keys().events().to_owned();
    let mut conn = raw(&server).await;
    let _: String = conn.xadd(&events, NEAR_WRAP, &[("x", "y")]).await.unwrap();
    let m = PersistMetrics::unregistered().unwrap();
    let r = astrolabe_persist::read_state(&log, &ToyDecoder, 2, &m)
        .await
        .unwrap();
    assert_eq!((r.tail.len(), r.last_seq, r.skipped_corrupt), (5, 5, 1));
    assert_eq!(r.implausible_top, Some(18_446_744_073_709_551_000));
    assert_eq!(r.set_aside, None);
    assert_eq!(
        log.last_seq().await.unwrap(),
        Some(18_446_744_073_709_551_000)
    );
}

/// Another writer's entry (or garbage) near 2^64 lands while the writer runs: its appends are
/// refused as "already present", the missing entries diverge the log, and the writer sets the
/// stream aside before its next append, so later changes reach the stream again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_near_wraparound_written_while_running_is_set_aside_by_the_writer() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let applied = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let state = applied.clone();
    let source = Arc::new(move || -> Result<SnapshotBlob> {
        Ok(toy_snapshot(
            state.load(std::sync::atomic::Ordering::SeqCst),
        ))
    });
    let m = PersistMetrics::unregistered().unwrap();
    let cancel = CancellationToken::new();
    let (tx, handle) = writer(&log, source, 0, &m, &cancel);
    let mut acked = handle.acked_seq();
    let send = |seq: u64| {
        applied.store(seq, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(tx.send((seq, payload(seq))), SendOutcome::Queued);
    };
    for seq in 1..=100 {
        send(seq);
    }
    within(wait_acked(&mut acked, 100)).await.unwrap();
    let mut conn = raw(&server).await;
    let _: String = conn
        .xadd(
            log.keys().events(),
            NEAR_WRAP,
            &[("p", &b"\x02garbage"[..])],
        )
        .await
        .unwrap();

    // One change at a time, each acknowledged, until the stream's top is the last one again.
    let mut seq = 100;
    astrolabe_testkit::eventually(
        "later changes reach the stream",
        Duration::from_secs(30),
        || {
            seq += 1;
            send(seq);
            let (log, mut acked, last) = (log.clone(), acked.clone(), seq);
            async move {
                wait_acked(&mut acked, last)
                    .await
                    .map_err(|e| e.to_string())?;
                let top = log.last_seq().await.map_err(|e| e.to_string())?;
                if top == Some(last) {
                    Ok(())
                } else {
                    Err(format!("top {top:?}, sent {last}"))
                }
            }
        },
    )
    .await;
    assert_eq!(m.streams_set_aside.get(), 1);
    cancel.cancel();
    handle.join().await.unwrap();

    // A restart recovers every change: the divergence snapshot and the stream after it.
    let r = recover(
        &log,
        &ToyDecoder,
        DEFAULT_REPLAY_PAGE,
        &PersistMetrics::unregistered().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((r.last_seq, r.implausible_top), (seq, None));
    assert_eq!(r.tail, (r.snapshot_seq + 1..=seq).collect::<Vec<_>>());
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    astrolabe_testkit::within(Duration::from_secs(30), "acknowledged", f)
        .await
        .unwrap()
}
