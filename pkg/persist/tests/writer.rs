#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The writer and snapshotter against a real redis-server: crash and restart, overflow and
//! divergence, graceful flush; the flush and the snapshot cycle on the in-memory log too.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use astrolabe_persist::{
    ChangeSender, EventLog, MemoryLog, PersistMetrics, RedisLog, Result, SendOutcome, ShrinkGuard,
    SnapshotBlob, Snapshotter, SnapshotterConfig, Writer, WriterConfig, WriterHandle, wait_acked,
};
use astrolabe_testkit::RedisServer;
use bytes::Bytes;
use common::{all_seqs, blob, log, payload};
use tokio_util::sync::CancellationToken;

type Rec = (u64, Bytes);

/// A stand-in for the graph: the last applied sequence, encoded as the snapshot.
#[derive(Default)]
struct Applied(AtomicU64);

impl Applied {
    fn apply(&self, seq: u64) -> Rec {
        self.0.store(seq, Ordering::SeqCst);
        (seq, payload(seq))
    }
}

fn source(
    applied: &Arc<Applied>,
) -> Arc<impl Fn() -> Result<SnapshotBlob> + Send + Sync + 'static> {
    let applied = applied.clone();
    Arc::new(move || {
        let seq = applied.0.load(Ordering::SeqCst);
        Ok(SnapshotBlob {
            taken_at_ms: 0,
            zstd_raw_len: None,
            seq,
            copied_until: seq,
            resource_count: seq,
            bytes: Bytes::from(seq.to_le_bytes().to_vec()),
        })
    })
}

fn fast_retry() -> WriterConfig {
    WriterConfig {
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        ..WriterConfig::default()
    }
}

/// A server, a log on it, the applied state, metrics and a cancellation token.
fn fixture() -> (
    RedisServer,
    RedisLog,
    Arc<Applied>,
    PersistMetrics,
    CancellationToken,
) {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let metrics = PersistMetrics::unregistered().unwrap();
    (
        server,
        log,
        Arc::new(Applied::default()),
        metrics,
        CancellationToken::new(),
    )
}

/// A writer with [`fast_retry`] on `log`, snapshotting `applied`.
fn writer_on<L: EventLog + Clone>(
    log: &L,
    applied: &Arc<Applied>,
    metrics: &PersistMetrics,
    cancel: &CancellationToken,
) -> (ChangeSender<Rec>, WriterHandle) {
    Writer::spawn(
        log.clone(),
        source(applied),
        fast_retry(),
        metrics.clone(),
        cancel.clone(),
    )
}

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    astrolabe_testkit::within(Duration::from_secs(30), what, f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_kill9_and_restart_without_loss_or_duplicates() {
    let mut server = RedisServer::start().unwrap();
    let log = log(&server);
    let applied = Arc::new(Applied::default());
    let metrics = PersistMetrics::unregistered().unwrap();
    let cancel = CancellationToken::new();
    let (tx, handle) = Writer::<_, _, Rec>::spawn(
        log.clone(),
        source(&applied),
        fast_retry(),
        metrics.clone(),
        cancel.clone(),
    );
    let mut acked = handle.acked_seq();
    for seq in 1..=20_000 {
        assert_eq!(tx.send(applied.apply(seq)), SendOutcome::Queued);
        if seq == 10_000 {
            // Kill while appends are in flight.
            within("first acks", wait_acked(&mut acked, 1))
                .await
                .unwrap();
            tokio::task::block_in_place(|| server.kill9());
            let acked_at_kill = *acked.borrow();
            tokio::task::block_in_place(|| server.restart()).unwrap();
            // Everything acknowledged before the crash survived it (AOF).
            let top = log.last_seq().await.unwrap().unwrap_or(0);
            assert!(top >= acked_at_kill, "top {top} < acked {acked_at_kill}");
        }
    }
    within("all acked", wait_acked(&mut acked, 20_000))
        .await
        .unwrap();
    let seqs = all_seqs(&log).await;
    let missing: Vec<u64> = (1..=20_000u64)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    assert_eq!(
        (seqs.len(), missing.first(), missing.last()),
        (20_000, None, None),
        "no loss, no duplicates (diverged: {}, dropped: {}, log: {})",
        handle.is_diverged(),
        metrics.dropped_changes.get(),
        server.dir().display()
    );
    assert!(!handle.is_diverged());
    assert!(
        metrics.redis_errors.with_label_values(&["append"]).get() > 0 || metrics.batches.get() > 0
    );
    cancel.cancel();
    handle.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_diverges_then_a_snapshot_supersedes_the_log() {
    let mut server = RedisServer::start().unwrap();
    let log = log(&server);
    let applied = Arc::new(Applied::default());
    let metrics = PersistMetrics::unregistered().unwrap();
    let cancel = CancellationToken::new();
    let config = WriterConfig {
        channel_capacity: 8,
        max_batch: 4,
        ..fast_retry()
    };
    let (tx, handle) = Writer::<_, _, Rec>::spawn(
        log.clone(),
        source(&applied),
        config,
        metrics.clone(),
        cancel.clone(),
    );
    let mut acked = handle.acked_seq();
    for seq in 1..=4 {
        tx.send(applied.apply(seq));
    }
    within("first batch", wait_acked(&mut acked, 4))
        .await
        .unwrap();

    tokio::task::block_in_place(|| server.kill9());
    let mut dropped = 0;
    for seq in 5..=200 {
        if tx.send(applied.apply(seq)) == SendOutcome::Diverged {
            dropped += 1;
        }
    }
    assert!(dropped > 0, "the channel overflowed");
    assert!(tx.is_diverged() && handle.is_diverged());
    assert_eq!(metrics.diverged.get(), 1);
    assert_eq!(metrics.dropped_changes.get(), dropped);

    tokio::task::block_in_place(|| server.restart()).unwrap();
    // The snapshot covers everything applied (200), so the writer acknowledges up to it.
    within("snapshot after restart", wait_acked(&mut acked, 200))
        .await
        .unwrap();
    let meta = log
        .snapshot_meta()
        .await
        .unwrap()
        .expect("snapshot written");
    assert_eq!(meta.covered_seq, 200);
    // Drops that raced the first divergence snapshot are covered by it but counted after it was
    // started, so the writer may take one more before it calls the divergence resolved.
    astrolabe_testkit::until("divergence resolved", Duration::from_secs(30), || {
        !handle.is_diverged()
    })
    .await;
    assert_eq!(metrics.diverged.get(), 0);
    // New changes continue after the snapshot (the covered ones left the channel: it has room
    // for a full capacity again).
    for seq in 201..=208 {
        assert_eq!(tx.send(applied.apply(seq)), SendOutcome::Queued);
    }
    within("tail", wait_acked(&mut acked, 208)).await.unwrap();
    let seqs = all_seqs(&log).await;
    assert_eq!(
        &seqs[seqs.len() - 8..],
        &(201..=208).collect::<Vec<_>>()[..]
    );
    cancel.cancel();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn cancel_flushes_everything_queued() {
    let server = RedisServer::start().unwrap();
    cancel_flushes_everything_queued_on(log(&server)).await;
}

#[tokio::test]
async fn cancel_flushes_everything_queued_in_memory() {
    cancel_flushes_everything_queued_on(MemoryLog::default()).await;
}

async fn cancel_flushes_everything_queued_on<L: EventLog + Clone>(log: L) {
    let applied = Arc::new(Applied::default());
    let cancel = CancellationToken::new();
    // A long linger: only the shutdown flush can write the tail in time.
    let config = WriterConfig {
        linger: Duration::from_secs(3600),
        max_batch: 100_000,
        ..fast_retry()
    };
    let (tx, handle) = Writer::<_, _, Rec>::spawn(
        log.clone(),
        source(&applied),
        config,
        PersistMetrics::unregistered().unwrap(),
        cancel.clone(),
    );
    for seq in 1..=5000 {
        assert_eq!(tx.send(applied.apply(seq)), SendOutcome::Queued);
    }
    cancel.cancel();
    within("join", handle.join()).await.unwrap();
    assert_eq!(all_seqs(&log).await, (1..=5000).collect::<Vec<_>>());
}

#[tokio::test]
async fn snapshotter_commits_after_writer_ack_and_trims() {
    let (_server, log, applied, metrics, cancel) = fixture();
    snapshotter_commits_after_writer_ack_and_trims_on(log, applied, metrics, cancel).await;
}

#[tokio::test]
async fn snapshotter_commits_after_writer_ack_and_trims_in_memory() {
    snapshotter_commits_after_writer_ack_and_trims_on(
        MemoryLog::default(),
        Arc::new(Applied::default()),
        PersistMetrics::unregistered().unwrap(),
        CancellationToken::new(),
    )
    .await;
}

async fn snapshotter_commits_after_writer_ack_and_trims_on<L: EventLog + Clone>(
    log: L,
    applied: Arc<Applied>,
    metrics: PersistMetrics,
    cancel: CancellationToken,
) {
    let (tx, writer) = writer_on(&log, &applied, &metrics, &cancel);
    let config = SnapshotterConfig {
        every_changes: 1000,
        retain_changes: 100,
        interval: Duration::from_secs(3600),
        ..SnapshotterConfig::default()
    };
    let snap = Snapshotter::spawn(
        log.clone(),
        source(&applied),
        config,
        writer.acked_seq(),
        metrics.clone(),
        cancel.clone(),
    );
    for seq in 1..=2500 {
        tx.send(applied.apply(seq));
    }
    let mut committed = snap.committed_seq();
    within("snapshot", committed.wait_for(|c| *c >= 1000))
        .await
        .unwrap();
    let meta = log.snapshot_meta().await.unwrap().unwrap();
    assert!(meta.covered_seq >= 1000);
    assert!(
        *writer.acked_seq().borrow() >= meta.covered_seq,
        "committed only after the ack"
    );
    for seq in 2501..=3000 {
        tx.send(applied.apply(seq));
    }
    cancel.cancel();
    writer.join().await.unwrap();
    snap.join().await.unwrap();
    // The final snapshot at shutdown covers everything.
    let meta = log.snapshot_meta().await.unwrap().unwrap();
    assert_eq!(meta.covered_seq, 3000);
    // Trimmed only behind the previous generation (whole stream nodes, `~`): the previous
    // generation and the stream after it stay a complete history.
    let previous = log.load_previous_snapshot().await.unwrap().unwrap().meta;
    assert!(previous.covered_seq >= 1000 && previous.covered_seq <= 2500);
    let first = log.first_seq().await.unwrap().unwrap();
    assert!(
        first <= previous.covered_seq + 1,
        "never trimmed past the previous generation: {first} > {}",
        previous.covered_seq
    );
    assert_eq!(log.trim_to(3000).await.unwrap().upto, previous.covered_seq);
    assert!(metrics.snapshot_seconds.get_sample_count() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_in_flight_append_everything_once_in_order() {
    let server = RedisServer::start().unwrap();
    let log = log(&server);
    let applied = Arc::new(Applied::default());
    let cancel = CancellationToken::new();
    let (tx, handle) = Writer::<_, _, Rec>::spawn(
        log.clone(),
        source(&applied),
        WriterConfig {
            pipelines: 2,
            max_batch: 256,
            ..fast_retry()
        },
        PersistMetrics::unregistered().unwrap(),
        cancel.clone(),
    );
    let mut acked = handle.acked_seq();
    for seq in 1..=20_000 {
        assert_eq!(tx.send(applied.apply(seq)), SendOutcome::Queued);
    }
    within("all acked", wait_acked(&mut acked, 20_000))
        .await
        .unwrap();
    assert_eq!(
        all_seqs(&log).await,
        (1..=20_000).collect::<Vec<_>>(),
        "every change once, in order"
    );
    assert!(!handle.is_diverged());
    cancel.cancel();
    handle.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliced_snapshot_commits_only_once_its_copy_is_durable() {
    let (_server, log, applied, metrics, cancel) = fixture();
    let (tx, writer) = writer_on(&log, &applied, &metrics, &cancel);
    // A copy that started at 100 and reflects changes up to 150, applied while it was being
    // taken: they reach the writer only as the copy ends, so a snapshotter that did not wait
    // for them would commit while they are still in flight.
    let during = (tx.clone(), applied.clone());
    let sliced = Arc::new(move || -> Result<SnapshotBlob> {
        for seq in 121..=150 {
            during.0.send(during.1.apply(seq));
        }
        Ok(SnapshotBlob {
            taken_at_ms: 0,
            seq: 100,
            resource_count: 0,
            bytes: Bytes::from_static(b"x"),
            zstd_raw_len: None,
            copied_until: 150,
        })
    });
    let snap = Snapshotter::spawn(
        log.clone(),
        sliced,
        SnapshotterConfig {
            interval: Duration::from_secs(3600),
            every_changes: u64::MAX / 2,
            snapshot_on_shutdown: false,
            ..SnapshotterConfig::default()
        },
        writer.acked_seq(),
        metrics.clone(),
        cancel.clone(),
    );
    for seq in 1..=120 {
        tx.send(applied.apply(seq));
    }
    let mut acked = writer.acked_seq();
    within("120 acked", wait_acked(&mut acked, 120))
        .await
        .unwrap();
    snap.request_snapshot();
    let mut committed = snap.committed_seq();
    within("snapshot", committed.wait_for(|c| *c >= 100))
        .await
        .unwrap();
    assert!(
        *writer.acked_seq().borrow() >= 150,
        "committed only after everything the copy may reflect was acknowledged"
    );
    assert_eq!(log.snapshot_meta().await.unwrap().unwrap().covered_seq, 100);
    cancel.cancel();
    writer.join().await.unwrap();
    snap.join().await.unwrap();
}

/// Before the graph is complete, a snapshot with fewer resources than the committed one (or
/// than recovery put into the graph) is skipped, the final one at shutdown included; once the
/// graph is complete, the same snapshot commits.
#[tokio::test]
async fn a_shrinking_snapshot_waits_for_the_complete_graph() {
    let (_server, log, _applied, metrics, _cancel) = fixture();
    let persisted = SnapshotBlob {
        taken_at_ms: 0,
        resource_count: 500,
        ..blob(500, b"everything".to_vec())
    };
    log.write_snapshot(&persisted).await.unwrap();
    let smaller = Arc::new(|| -> Result<SnapshotBlob> {
        Ok(SnapshotBlob {
            taken_at_ms: 0,
            resource_count: 3,
            ..blob(600, b"little".to_vec())
        })
    });
    let complete = Arc::new(AtomicBool::new(false));
    let (_acked_tx, acked) = tokio::sync::watch::channel(600u64);
    let run = |recovered: u64| {
        let complete = complete.clone();
        let cancel = CancellationToken::new();
        let snap = Snapshotter::spawn(
            log.clone(),
            smaller.clone(),
            SnapshotterConfig {
                interval: Duration::from_secs(3600),
                start_seq: 500,
                shrink_guard: Some(ShrinkGuard::new(
                    move || complete.load(Ordering::SeqCst),
                    recovered,
                )),
                ..SnapshotterConfig::default()
            },
            acked.clone(),
            metrics.clone(),
            cancel.clone(),
        );
        snap.request_snapshot();
        cancel.cancel();
        snap.join()
    };
    within("guarded final snapshot", run(0)).await.unwrap();
    let meta = log.snapshot_meta().await.unwrap().unwrap();
    assert_eq!((meta.covered_seq, meta.resource_count), (500, 500));
    assert!(metrics.skipped_snapshots.get() >= 1);

    // Nothing committed yet, but recovery put more into the graph than the snapshot holds.
    let (_server2, log2, ..) = fixture();
    let guard = ShrinkGuard::new(|| false, 10);
    let cancel = CancellationToken::new();
    let snap = Snapshotter::spawn(
        log2.clone(),
        smaller.clone(),
        SnapshotterConfig {
            shrink_guard: Some(guard),
            ..SnapshotterConfig::default()
        },
        acked.clone(),
        metrics.clone(),
        cancel.clone(),
    );
    cancel.cancel();
    within("guarded final snapshot", snap.join()).await.unwrap();
    assert!(log2.snapshot_meta().await.unwrap().is_none());

    complete.store(true, Ordering::SeqCst);
    within("final snapshot", run(0)).await.unwrap();
    let meta = log.snapshot_meta().await.unwrap().unwrap();
    assert_eq!((meta.covered_seq, meta.resource_count), (600, 3));
}

/// The snapshot that resolves a divergence goes through the same guard: while the graph is not
/// complete, a smaller state than the committed snapshot is not committed over it (the writer
/// retries); once complete, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_divergence_snapshot_never_shrinks_the_persisted_state_before_the_graph_is_complete() {
    let (server, log, applied, metrics, cancel) = fixture();
    let persisted = SnapshotBlob {
        taken_at_ms: 0,
        resource_count: 500,
        ..blob(500, b"everything".to_vec())
    };
    log.write_snapshot(&persisted).await.unwrap();
    applied.0.store(500, Ordering::SeqCst);
    // The live graph holds 3 resources (the cluster not listed yet), whatever its sequence.
    let small = {
        let applied = applied.clone();
        Arc::new(move || -> Result<SnapshotBlob> {
            let seq = applied.0.load(Ordering::SeqCst);
            Ok(SnapshotBlob {
                taken_at_ms: 0,
                resource_count: 3,
                ..blob(seq, b"little".to_vec())
            })
        })
    };
    let complete = Arc::new(AtomicBool::new(false));
    let guard = {
        let complete = complete.clone();
        ShrinkGuard::new(move || complete.load(Ordering::SeqCst), 0)
    };
    let (tx, handle) = Writer::<_, _, Rec>::spawn(
        log.clone(),
        small,
        WriterConfig {
            channel_capacity: 8,
            max_batch: 4,
            start_seq: 500,
            shrink_guard: Some(guard),
            ..fast_retry()
        },
        metrics.clone(),
        cancel.clone(),
    );
    // Redis holds every write for 3 s: the channel overflows and the log diverges.
    let reply = server.command_line("CLIENT PAUSE 3000 WRITE").unwrap();
    assert!(reply.starts_with("+OK"), "{reply}");
    for seq in 501..=700 {
        tx.send(applied.apply(seq));
    }
    assert!(tx.is_diverged());
    astrolabe_testkit::until(
        "the divergence snapshot is refused by the guard",
        Duration::from_secs(30),
        || metrics.skipped_snapshots.get() >= 1,
    )
    .await;
    let meta = log.snapshot_meta().await.unwrap().unwrap();
    assert_eq!((meta.covered_seq, meta.resource_count), (500, 500));
    assert!(handle.is_diverged());

    complete.store(true, Ordering::SeqCst);
    astrolabe_testkit::until("divergence resolved", Duration::from_secs(30), || {
        !handle.is_diverged()
    })
    .await;
    let meta = log.snapshot_meta().await.unwrap().unwrap();
    assert_eq!((meta.covered_seq, meta.resource_count), (700, 3));
    cancel.cancel();
    handle.join().await.unwrap();
}
